"""The report's numbers: leaderboard, per-subject table, significance against the best, cross-subject gap.

Unit of analysis: one (fold, subject) pair — a subject's test trials in one fold — with seeds
averaged first. The leaderboard mean is the mean over units; its 95% CI is a percentile bootstrap
over units ("subjects×folds"), or, with ``ci="trials"`` (and automatically where a row has a single
unit), a bootstrap over trials from ``samples.parquet`` resampled within units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.load import Runs
from reports.metric_info import column_label, is_substitute, metric_info
from reports.published import REPORTED_KIND, matches_column, published_entries
from reports.stats import bootstrap_ci, paired_test, stratified_bootstrap_ci

PROTOCOL_ORDER = ["per-subject", "loso", "pooled"]
KIND_ORDER = ["method", "floor", "oracle", REPORTED_KIND]
METRIC_ORDER = ["ssim", "pixcorr", "clip", "nway", "acc", "is", "fid", "kid"]
ALPHA = 0.05
CI_UNITS = "subjects×folds"
CI_TRIALS = "trials (within subject×fold)"


@dataclass(frozen=True)
class Column:
    metric: str
    backbone: str
    substitute: bool

    @property
    def label(self) -> str:
        return column_label(self.metric, self.backbone, self.substitute)

    @property
    def higher_is_better(self) -> bool:
        return metric_info(self.metric).higher_is_better


def declared_substitutes(runs: Runs) -> frozenset[str]:
    """Backbones a cell's provenance declares as substitutes (``substitute_backbones``: list or mapping)."""
    out: set[str] = set()
    for c in runs.cells:
        declared = c.provenance.get("substitute_backbones") or []
        out.update(str(b) for b in declared)
    return frozenset(out)


def _protocol_rank(p: str) -> int:
    return PROTOCOL_ORDER.index(p) if p in PROTOCOL_ORDER else len(PROTOCOL_ORDER)


def _metric_rank(m: str) -> int:
    return METRIC_ORDER.index(m) if m in METRIC_ORDER else len(METRIC_ORDER)


def columns_of(results: pd.DataFrame, substitutes: frozenset[str] = frozenset()) -> list[Column]:
    pairs = results[["metric", "backbone"]].drop_duplicates().itertuples(index=False)
    cols = [Column(m, b, is_substitute(b, substitutes)) for m, b in pairs]
    return sorted(cols, key=lambda c: (_metric_rank(c.metric), c.metric, c.substitute, c.backbone))


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    keys = frame.assign(
        _p=frame["protocol"].map(_protocol_rank),
        _k=frame["kind"].map(lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER)),
    )
    order = ["dataset", "_p", "protocol", "_k", "method"]
    return keys.sort_values(order, kind="stable").drop(columns=["_p", "_k"]).reset_index(drop=True)


def unit_scores(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (dataset, protocol, method, metric, backbone, fold, subject)."""
    keys = ["dataset", "protocol", "method", "kind", "metric", "backbone", "fold", "subject"]
    return results.groupby(keys, as_index=False, sort=True).agg(value=("value", "mean"), n_seeds=("seed", "nunique"))


def _trial_groups(samples: pd.DataFrame) -> dict[tuple, list[np.ndarray]]:
    """(dataset, protocol, method, metric, backbone) → per-unit arrays of trial values (seeds averaged)."""
    if samples.empty:
        return {}
    s = samples.copy()
    s["backbone"] = s["backbone"].fillna("").astype(str)
    s = s[s["value"].notna()]
    trial = s.groupby(["dataset", "protocol", "method", "metric", "backbone", "fold", "subject", "trial_id"])["value"].mean()
    out: dict[tuple, list[np.ndarray]] = {}
    for key, g in trial.groupby(level=[0, 1, 2, 3, 4, 5, 6]):
        out.setdefault(key[:5], []).append(g.to_numpy())
    return out


def leaderboard(runs: Runs, *, ci: str = "units", n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Long table: dataset, protocol, method, kind, metric, backbone, mean, ci_low, ci_high, n_units, ci_basis."""
    if ci not in ("units", "trials"):
        raise ValueError(f"ci must be 'units' or 'trials', not {ci!r}")
    units = unit_scores(runs.results)
    groups = _trial_groups(runs.samples()) if ci == "trials" or _needs_trials(units) else {}
    rows = []
    for key, g in units.groupby(["dataset", "protocol", "method", "kind", "metric", "backbone"], sort=True):
        dataset, protocol, method, kind, metric, backbone = key
        values = g["value"].to_numpy()
        trial_key = (dataset, protocol, method, metric, backbone)
        use_trials = trial_key in groups and (ci == "trials" or len(values) < 2)
        if use_trials:
            lo, hi = stratified_bootstrap_ci(groups[trial_key], n_boot=n_boot, seed=seed)
            basis = CI_TRIALS
        else:
            lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed)
            basis = CI_UNITS if len(values) >= 2 else "none (one unit, no per-trial values)"
        rows.append(
            {"dataset": dataset, "protocol": protocol, "method": method, "kind": kind, "metric": metric,
             "backbone": backbone, "mean": float(values.mean()), "ci_low": lo, "ci_high": hi,
             "n_units": len(values), "ci_basis": basis}
        )
    return pd.DataFrame(rows)


def _needs_trials(units: pd.DataFrame) -> bool:
    counts = units.groupby(["dataset", "protocol", "method", "metric", "backbone"]).size()
    return bool((counts < 2).any())


def significance(runs: Runs, substitutes: frozenset[str] = frozenset(), seed: int = 0) -> pd.DataFrame:
    """Each method against the best non-oracle, non-floor method of its (dataset, protocol, column).

    Paired over the (fold, subject) units both have; sign-flip permutation test below 20 pairs,
    Wilcoxon from 20. ``significant`` = p < 0.05, uncorrected for multiple comparisons.
    """
    units = unit_scores(runs.results)
    rows = []
    for (dataset, protocol, metric, backbone), g in units.groupby(["dataset", "protocol", "metric", "backbone"]):
        col = Column(metric, backbone, is_substitute(backbone, substitutes))
        wide = g.pivot_table(index=["fold", "subject"], columns="method", values="value")
        means = wide.mean()
        contenders = [m for m in means.index if runs.kinds.get(m) == "method"]
        if not contenders:
            continue
        cm = means[contenders]
        best = cm.idxmax() if col.higher_is_better else cm.idxmin()
        for method in means.index:
            if method == best:
                rows.append(dict(dataset=dataset, protocol=protocol, metric=metric, backbone=backbone, method=method,
                                 best=best, is_best=True, p_value=np.nan, test="", n_pairs=int(wide[best].notna().sum()),
                                 significant=False))
                continue
            pair = wide[[method, best]].dropna()
            p, test = paired_test(pair[method].to_numpy(), pair[best].to_numpy(), seed=seed)
            rows.append(dict(dataset=dataset, protocol=protocol, metric=metric, backbone=backbone, method=method,
                             best=best, is_best=False, p_value=p, test=test, n_pairs=len(pair),
                             significant=bool(p < ALPHA) if not np.isnan(p) else False))
    cols = ["dataset", "protocol", "metric", "backbone", "method", "best", "is_best", "p_value", "test", "n_pairs",
            "significant"]
    return pd.DataFrame(rows, columns=cols)


def per_subject(runs: Runs) -> pd.DataFrame:
    """Long: dataset, protocol, method, kind, subject, metric, backbone, value (mean over folds and seeds)."""
    units = unit_scores(runs.results)
    keys = ["dataset", "protocol", "method", "kind", "subject", "metric", "backbone"]
    return units.groupby(keys, as_index=False)["value"].mean()


def cross_subject_gap(runs: Runs, *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per-subject minus LOSO per method and metric, paired on (fold, subject) — the same test trials."""
    units = unit_scores(runs.results)
    keys = ["dataset", "method", "kind", "metric", "backbone", "fold", "subject"]
    within = units[units["protocol"] == "per-subject"].set_index(keys)["value"]
    across = units[units["protocol"] == "loso"].set_index(keys)["value"]
    paired = pd.concat({"per_subject": within, "loso": across}, axis=1).dropna().reset_index()
    rows = []
    for (dataset, method, kind, metric, backbone), g in paired.groupby(["dataset", "method", "kind", "metric", "backbone"]):
        diff = (g["per_subject"] - g["loso"]).to_numpy()
        lo, hi = bootstrap_ci(diff, n_boot=n_boot, seed=seed)
        p, test = paired_test(g["per_subject"].to_numpy(), g["loso"].to_numpy(), seed=seed)
        rows.append(dict(dataset=dataset, method=method, kind=kind, metric=metric, backbone=backbone,
                         per_subject=g["per_subject"].mean(), loso=g["loso"].mean(), gap=diff.mean(),
                         ci_low=lo, ci_high=hi, p_value=p, test=test, n_pairs=len(diff)))
    cols = ["dataset", "method", "kind", "metric", "backbone", "per_subject", "loso", "gap", "ci_low", "ci_high",
            "p_value", "test", "n_pairs"]
    return pd.DataFrame(rows, columns=cols)


# --- wide tables for display ---------------------------------------------------------------------------
def fmt(x: float) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    a = abs(x)
    return f"{x:.1f}" if a >= 100 else f"{x:.2f}" if a >= 10 else f"{x:.3f}"


def published_rows(board: pd.DataFrame, columns: list[Column], substitutes: frozenset[str]) -> pd.DataFrame:
    """Whole-test-set published values placed in our matching columns, one row per (dataset, protocol, model)."""
    rows = []
    for dataset, protocol in board[["dataset", "protocol"]].drop_duplicates().itertuples(index=False):
        pub = published_entries(dataset, protocol)
        pub = pub[pub["subject"].isna()]
        for model, g in pub.groupby("model", sort=False):
            for e in g.itertuples(index=False):
                for col in columns:
                    if matches_column(e.backbone, e.metric, col.metric, col.backbone, substitutes):
                        rows.append(dict(dataset=dataset, protocol=protocol, method=model, kind=REPORTED_KIND,
                                         metric=col.metric, backbone=col.backbone, mean=float(e.value),
                                         ci_low=np.nan, ci_high=np.nan, n_units=0, ci_basis="", source=e.source,
                                         note=e.note))
    return pd.DataFrame(rows)


def leaderboard_wide(board: pd.DataFrame, sig: pd.DataFrame, columns: list[Column], published: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset × protocol × method; per column: mean, CI bounds, p vs best, marks."""
    full = pd.concat([board, published], ignore_index=True) if len(published) else board
    index = ["dataset", "protocol", "method", "kind"]
    out = full[index].drop_duplicates().reset_index(drop=True)
    sig_idx = sig.set_index(["dataset", "protocol", "metric", "backbone", "method"]) if len(sig) else None
    for col in columns:
        part = full[(full["metric"] == col.metric) & (full["backbone"] == col.backbone)].set_index(index)
        key = out.set_index(index).index
        out[col.label] = part["mean"].reindex(key).to_numpy()
        out[f"{col.label} ci_low"] = part["ci_low"].reindex(key).to_numpy()
        out[f"{col.label} ci_high"] = part["ci_high"].reindex(key).to_numpy()
        p_values, marks = [], []
        for r in out.itertuples(index=False):
            k = (r.dataset, r.protocol, col.metric, col.backbone, r.method)
            if sig_idx is not None and k in sig_idx.index:
                s = sig_idx.loc[k]
                p_values.append(float(s["p_value"]))
                marks.append("best" if s["is_best"] else ("†" if s["significant"] else ""))
            else:
                p_values.append(np.nan)
                marks.append("")
        out[f"{col.label} p_vs_best"] = p_values
        out[f"{col.label} mark"] = marks
    return sort_rows(out)


def cell_text(row: pd.Series, col: Column, markdown: bool = False) -> str:
    mean = row[col.label]
    if pd.isna(mean):
        return ""
    text = fmt(mean)
    lo, hi = row[f"{col.label} ci_low"], row[f"{col.label} ci_high"]
    if pd.notna(lo):
        text += f" [{fmt(lo)}, {fmt(hi)}]"
    mark = row[f"{col.label} mark"]
    if mark == "best" and markdown:
        text = f"**{text}**"
    elif mark == "†":
        text += " †"
    return text


def per_subject_wide(subj: pd.DataFrame, columns: list[Column], runs_datasets: list[tuple[str, str]],
                     substitutes: frozenset[str] = frozenset()) -> pd.DataFrame:
    """per_subject.csv: dataset, protocol, method, kind, subject, one column per metric (plus published rows)."""
    frames = [subj]
    for dataset, protocol in runs_datasets:
        pub = published_entries(dataset, protocol)
        pub = pub[pub["subject"].notna()]
        for e in pub.itertuples(index=False):
            for col in columns:
                if matches_column(e.backbone, e.metric, col.metric, col.backbone, substitutes):
                    frames.append(pd.DataFrame([dict(dataset=dataset, protocol=protocol, method=e.model,
                                                     kind=REPORTED_KIND, subject=e.subject, metric=col.metric,
                                                     backbone=col.backbone, value=float(e.value))]))
    long = pd.concat(frames, ignore_index=True)
    labels = {(c.metric, c.backbone): c.label for c in columns}
    long["column"] = [labels[(m, b)] for m, b in zip(long["metric"], long["backbone"])]
    wide = long.pivot_table(index=["dataset", "protocol", "method", "kind", "subject"], columns="column",
                            values="value", aggfunc="mean").reset_index()
    wide.columns.name = None
    ordered = [c.label for c in columns if c.label in wide.columns]
    wide = wide[["dataset", "protocol", "method", "kind", "subject", *ordered]]
    wide["_s"] = [int(s) if str(s).isdigit() else 10**9 for s in wide["subject"]]
    return sort_rows(wide.sort_values(["_s", "subject"], kind="stable")).drop(columns="_s")

"""The report's numbers: leaderboard, per-subject table, significance against the best, cross-subject gap.

Per-sample metrics (SSIM, PixCorr, CLIP, N-way identification, ACC): the unit of the table is one
(fold, subject) pair — a subject's test trials in one fold — with seeds averaged first. The leaderboard
mean is the mean over units; its 95% CI is a percentile bootstrap over units ("subjects×folds"), or,
with ``ci="trials"`` (and automatically where a row has a single unit), over trials resampled within
units. Comparisons are paired over the matched test trials (every method reconstructs the same trials;
per-subject and LOSO test the same trials), with the unit-level test (MOABB's rule) beside them and a
statement of whether the units could reach p < 0.05 at all.

Set-level metrics (FID, KID, IS) come from the run store's pooled table: one value per (dataset,
protocol, method) over the whole test set, with a bootstrap CI over trials; below the metric's minimum N
the entry is "N < min" and carries no number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics.stats import (
    bootstrap_ci,
    holm,
    min_attainable_p,
    paired_comparison,
    paired_test,
    stratified_bootstrap_ci,
)
from metrics.vocabulary import SET_METRICS, STATUS_OK, spec
from reports.load import Runs
from reports.metric_info import column_label, is_substitute
from reports.published import REPORTED_KIND, matches_column, published_entries

PROTOCOL_ORDER = ["per-subject", "loso", "pooled", "zero-shot", "zero-shot-loso"]
KIND_ORDER = ["method", "submission", "floor", "oracle", REPORTED_KIND]
METRIC_ORDER = ["ssim", "pixcorr", "clip", "nway", "corrdist", "acc", "is", "fid", "kid"]
ALPHA = 0.05
CI_UNITS = "subjects×folds"
CI_TRIALS = "trials (within subject×fold)"
CI_POOLED = "trials (pooled test set)"
COLUMN_KEYS = ["metric", "backbone", "label"]


def column_label_text(label: str) -> str:
    """A set-level label without its N (N goes with each value; the column is the protocol)."""
    return re.sub(r",? ?N=\d+$", "", str(label or "")).strip(", ")


@dataclass(frozen=True)
class Column:
    metric: str
    backbone: str
    substitute: bool
    protocol: str = ""  # the label of the protocol the engine computed the values under ("5-way top-1")

    @property
    def label(self) -> str:
        """The column's heading in every table: ``ACC ↑ [synth-cnn (substitute), 5-way top-1]``."""
        return column_label(self.metric, self.backbone, self.substitute, self.protocol)

    @property
    def higher_is_better(self) -> bool:
        return spec(self.metric).higher_is_better

    @property
    def set_level(self) -> bool:
        return self.metric in SET_METRICS

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        m = (frame["metric"] == self.metric) & (frame["backbone"] == self.backbone)
        return m & (frame["label"] == self.protocol) if "label" in frame.columns else m


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


def set_level_board_rows(runs: Runs) -> pd.DataFrame:
    """Whole-test-set rows of the pooled set-level table, seeds averaged (a value only if every seed has one)."""
    cols = ["dataset", "protocol", "method", "kind", "metric", "backbone", "label", "mean", "ci_low", "ci_high",
            "n_units", "n_trials", "ci_basis", "status", "min_n", "warning"]
    t = runs.set_level
    if t is None or t.empty:
        return pd.DataFrame(columns=cols)
    t = t[t["subject"] == "all"].assign(label=lambda f: f["label"].map(column_label_text))
    rows = []
    for key, g in t.groupby(["dataset", "protocol", "method", "kind", "metric", "backbone", "label"], sort=True):
        ok = (g["status"] == STATUS_OK).all()
        one = len(g) == 1
        rows.append(dict(zip(["dataset", "protocol", "method", "kind", "metric", "backbone", "label"], key),
                         mean=float(g["value"].mean()) if ok else np.nan,
                         ci_low=float(g["ci_low"].iloc[0]) if ok and one else np.nan,
                         ci_high=float(g["ci_high"].iloc[0]) if ok and one else np.nan,
                         n_units=0, n_trials=int(g["n"].min()), ci_basis=CI_POOLED if ok and one else "",
                         status=STATUS_OK if ok else str(g.loc[g["status"] != STATUS_OK, "status"].iloc[0]),
                         min_n=int(g["min_n"].iloc[0]), warning=str(g["warning"].iloc[0])))
    return pd.DataFrame(rows, columns=cols)


def columns_of(results: pd.DataFrame, substitutes: frozenset[str] = frozenset(),
               set_level: pd.DataFrame | None = None) -> list[Column]:
    frames = [results[COLUMN_KEYS] if "label" in results.columns else results[["metric", "backbone"]].assign(label="")]
    if set_level is not None and len(set_level):
        frames.append(set_level[["metric", "backbone", "label"]].assign(label=lambda f: f["label"].map(column_label_text)))
    pairs = pd.concat(frames, ignore_index=True).drop_duplicates().itertuples(index=False)
    cols = [Column(m, b, is_substitute(b, substitutes), lab) for m, b, lab in pairs]
    return sorted(cols, key=lambda c: (_metric_rank(c.metric), c.metric, c.substitute, c.backbone, c.label))


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    keys = frame.assign(
        _p=frame["protocol"].map(_protocol_rank),
        _k=frame["kind"].map(lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER)),
    )
    order = ["dataset", "_p", "protocol", "_k", "method"]
    return keys.sort_values(order, kind="stable").drop(columns=["_p", "_k"]).reset_index(drop=True)


def unit_scores(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (dataset, protocol, method, metric, backbone, label, fold, subject)."""
    keys = ["dataset", "protocol", "method", "kind", *COLUMN_KEYS, "fold", "subject"]
    return results.groupby(keys, as_index=False, sort=True).agg(value=("value", "mean"), n_seeds=("seed", "nunique"))


def trial_values(runs: Runs) -> pd.DataFrame:
    """Per-trial values of the per-sample metrics, seeds averaged, with the label of their column.

    Columns: dataset, protocol, method, metric, backbone, label, fold, subject, trial_id, value. A trial
    id names one test trial of the dataset, so the same id under two methods (or under per-subject and
    LOSO) is the same EEG trial and the same stimulus: the pairing unit of every trial-level test.
    """
    cols = ["dataset", "protocol", "method", *COLUMN_KEYS, "fold", "subject", "trial_id", "value"]
    samples = runs.samples()
    if samples.empty:
        return pd.DataFrame(columns=cols)
    s = samples[samples["value"].notna()].copy()
    s["backbone"] = s["backbone"].fillna("").astype(str)
    s["metric"] = s["metric"].astype(str).str.split("@").str[0]
    labels = runs.results.drop_duplicates(["dataset", "protocol", "metric", "backbone"]).set_index(
        ["dataset", "protocol", "metric", "backbone"])["label"]
    keys = pd.MultiIndex.from_frame(s[["dataset", "protocol", "metric", "backbone"]])
    s["label"] = labels.reindex(keys).fillna("").to_numpy()
    grouped = s.groupby(["dataset", "protocol", "method", *COLUMN_KEYS, "fold", "subject", "trial_id"], sort=True)
    return grouped["value"].mean().reset_index()[cols]


def _trial_groups(trials: pd.DataFrame) -> dict[tuple, list[np.ndarray]]:
    """(dataset, protocol, method, metric, backbone, label) → per-unit arrays of trial values."""
    out: dict[tuple, list[np.ndarray]] = {}
    for key, g in trials.groupby(["dataset", "protocol", "method", *COLUMN_KEYS, "fold", "subject"], sort=True):
        out.setdefault(key[:6], []).append(g["value"].to_numpy())
    return out


def leaderboard(runs: Runs, *, ci: str = "units", n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Long table: dataset, protocol, method, kind, metric, backbone, label, mean, ci_low, ci_high, n_units,
    n_trials, ci_basis, status (``"N < min"``: no value), min_n, warning."""
    if ci not in ("units", "trials"):
        raise ValueError(f"ci must be 'units' or 'trials', not {ci!r}")
    units = unit_scores(runs.results)
    groups = _trial_groups(trial_values(runs))
    rows = []
    for key, g in units.groupby(["dataset", "protocol", "method", "kind", *COLUMN_KEYS], sort=True):
        dataset, protocol, method, kind, metric, backbone, label = key
        values = g["value"].to_numpy()
        trial_key = (dataset, protocol, method, metric, backbone, label)
        use_trials = trial_key in groups and (ci == "trials" or len(values) < 2)
        if use_trials:
            lo, hi = stratified_bootstrap_ci(groups[trial_key], n_boot=n_boot, seed=seed)
            basis = CI_TRIALS
        else:
            lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed)
            basis = CI_UNITS if len(values) >= 2 else "none (one unit, no per-trial values)"
        n_trials = sum(len(a) for a in groups.get(trial_key, []))
        rows.append(
            {"dataset": dataset, "protocol": protocol, "method": method, "kind": kind, "metric": metric,
             "backbone": backbone, "label": label, "mean": float(values.mean()), "ci_low": lo, "ci_high": hi,
             "n_units": len(values), "n_trials": n_trials, "ci_basis": basis, "status": STATUS_OK,
             "min_n": spec(metric).min_n, "warning": ""}
        )
    board = pd.DataFrame(rows)
    sets = set_level_board_rows(runs)
    return pd.concat([board, sets], ignore_index=True) if len(sets) else board


SIGNIFICANCE_COLUMNS = ["dataset", "protocol", "metric", "backbone", "label", "method", "kind", "mean", "best",
                        "is_best", "best_marked", "n_trials", "diff", "diff_ci_low", "diff_ci_high", "p_value",
                        "p_holm", "test", "significant", "n_units", "p_units", "test_units", "units_min_p",
                        "units_can_reach"]


def significance(runs: Runs, substitutes: frozenset[str] = frozenset(), seed: int = 0) -> pd.DataFrame:
    """Each method against the best non-oracle, non-floor method of its (dataset, protocol, column).

    Per-sample metrics only (a set-level value has no per-trial values to pair). For every method:
    the mean paired difference to the best over the trials both reconstructed (``diff``, in the metric's
    unit, with its bootstrap CI over trials), the two-sided sign-flip permutation p-value over those
    trials (``p_value``), Holm-adjusted across the methods of the column (``p_holm``; ``significant`` =
    ``p_holm`` < 0.05), and beside it the unit-level test over (fold, subject) units with MOABB's rule
    (``p_units``), the smallest p those units could give at all (``units_min_p``) and whether that is
    below 0.05 (``units_can_reach``). The best is *marked* (``best_marked``) only when it is unique and
    differs significantly from the runner-up.
    """
    units = unit_scores(runs.results)
    trials = trial_values(runs)
    by_column = {k: g for k, g in trials.groupby(["dataset", "protocol", *COLUMN_KEYS])}
    rows = []
    for key, g in units.groupby(["dataset", "protocol", *COLUMN_KEYS]):
        dataset, protocol, metric, backbone, label = key
        higher = spec(metric).higher_is_better
        wide = g.pivot_table(index=["fold", "subject"], columns="method", values="value")
        means = wide.mean()
        contenders = [m for m in means.index if runs.kinds.get(m) in ("method", "submission")]
        if not contenders:
            continue
        ranked = means[contenders].sort_values(ascending=not higher, kind="stable")
        best = ranked.index[0]
        t = by_column.get(key)
        per_trial = t.pivot_table(index="trial_id", columns="method", values="value") if t is not None else None
        out = []
        for method in means.index:
            row = dict(dataset=dataset, protocol=protocol, metric=metric, backbone=backbone, label=label,
                       method=method, kind=runs.kinds.get(method, "method"), mean=float(means[method]), best=best,
                       is_best=method == best, best_marked=False, n_trials=0, diff=np.nan, diff_ci_low=np.nan,
                       diff_ci_high=np.nan, p_value=np.nan, p_holm=np.nan, test="", significant=False,
                       n_units=int(wide[method].notna().sum()), p_units=np.nan, test_units="",
                       units_min_p=np.nan, units_can_reach=False)
            if method != best:
                pair = wide[[method, best]].dropna()
                row["p_units"], row["test_units"] = paired_test(pair[method].to_numpy(), pair[best].to_numpy(),
                                                                seed=seed)
                row["n_units"] = len(pair)
                row["units_min_p"] = min_attainable_p(len(pair))
                row["units_can_reach"] = bool(row["units_min_p"] < ALPHA)
                if per_trial is not None and method in per_trial and best in per_trial:
                    matched = per_trial[[method, best]].dropna()
                    r = paired_comparison(matched[method].to_numpy(), matched[best].to_numpy(), seed=seed)
                    row.update(n_trials=r["n"], diff=r["diff"], diff_ci_low=r["ci_low"], diff_ci_high=r["ci_high"],
                               p_value=r["p_value"], test=r["test"])
            out.append(row)
        adjusted = holm([r["p_value"] for r in out])
        for r, p in zip(out, adjusted):
            r["p_holm"] = p
            r["significant"] = bool(p < ALPHA) if not np.isnan(p) else False
        if len(ranked) >= 2 and ranked.iloc[0] != ranked.iloc[1]:
            runner_up = next(r for r in out if r["method"] == ranked.index[1])
            next(r for r in out if r["is_best"])["best_marked"] = runner_up["significant"]
        elif len(ranked) == 1:
            next(r for r in out if r["is_best"])["best_marked"] = False  # best of one: nothing to beat
        rows.extend(out)
    return pd.DataFrame(rows, columns=SIGNIFICANCE_COLUMNS)


def power_notes(sig: pd.DataFrame) -> list[str]:
    """One line per (dataset, protocol) whose unit-level tests cannot reach p < 0.05 whatever the data."""
    notes = []
    if sig.empty:
        return notes
    compared = sig[~sig["is_best"] & sig["n_units"].gt(0)]
    for (dataset, protocol), g in compared.groupby(["dataset", "protocol"], sort=True):
        if g["units_can_reach"].any():
            continue
        n = int(g["n_units"].max())
        notes.append(f"{dataset} / {protocol}: with {n} subject×fold unit(s) a paired test over units cannot reach "
                     f"p < {ALPHA} (smallest possible p = {min_attainable_p(n):.3g}); significance is judged over "
                     f"the matched test trials (N = {int(g['n_trials'].max())}).")
    return notes


def per_subject(runs: Runs) -> pd.DataFrame:
    """Long: dataset, protocol, method, kind, subject, metric, backbone, label, value (mean over folds, seeds).

    Set-level metrics appear for the subjects whose test trials reach the metric's minimum N."""
    units = unit_scores(runs.results)
    keys = ["dataset", "protocol", "method", "kind", "subject", *COLUMN_KEYS]
    out = units.groupby(keys, as_index=False)["value"].mean()
    t = runs.set_level
    if t is not None and len(t):
        t = t[(t["subject"] != "all") & (t["status"] == STATUS_OK)]
        t = t.assign(label=t["label"].map(column_label_text))
        out = pd.concat([out, t.groupby(keys, as_index=False)["value"].mean()], ignore_index=True)
    return out


GAP_COLUMNS = ["dataset", "method", "kind", "protocols", "metric", "backbone", "label", "within", "across", "gap",
               "ci_low", "ci_high", "p_value", "test", "n_trials", "n_units", "p_units", "test_units", "units_min_p"]
# (within-subject, leave-one-subject-out) protocols whose fold s tests the same trials of subject s
GAP_PAIRS = (("per-subject", "loso"), ("zero-shot", "zero-shot-loso"))


def cross_subject_gap(runs: Runs, *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Within-subject minus leave-one-subject-out per method and column, paired over the same test trials.

    For each pair of :data:`GAP_PAIRS` (``protocols`` = ``"per-subject − loso"`` or ``"zero-shot −
    zero-shot-loso"``), fold s of both protocols tests the same trials of subject s, so every trial is scored
    by the within-subject and the cross-subject model: ``gap`` is the mean paired difference over trials, with
    a bootstrap CI and a sign-flip p-value over trials; the unit-level test over (fold, subject) pairs stands
    beside it (``p_units``; ``units_min_p`` is the smallest p those units could give).
    """
    units = unit_scores(runs.results)
    all_trials = trial_values(runs)
    keys = ["dataset", "method", "kind", *COLUMN_KEYS, "fold", "subject"]
    rows = []
    for within_protocol, across_protocol in GAP_PAIRS:
        within = units[units["protocol"] == within_protocol].set_index(keys)["value"]
        across = units[units["protocol"] == across_protocol].set_index(keys)["value"]
        paired = pd.concat({"within": within, "across": across}, axis=1).dropna().reset_index()
        if paired.empty:
            continue
        trials = all_trials[all_trials["protocol"].isin([within_protocol, across_protocol])]
        per_trial = {k: g.pivot_table(index="trial_id", columns="protocol", values="value")
                     for k, g in trials.groupby(["dataset", "method", *COLUMN_KEYS])}
        for (dataset, method, kind, metric, backbone, label), g in paired.groupby(
                ["dataset", "method", "kind", *COLUMN_KEYS]):
            diff = (g["within"] - g["across"]).to_numpy()
            p_units, test_units = paired_test(g["within"].to_numpy(), g["across"].to_numpy(), seed=seed)
            row = dict(dataset=dataset, method=method, kind=kind, protocols=f"{within_protocol} − {across_protocol}",
                       metric=metric, backbone=backbone, label=label, within=g["within"].mean(),
                       across=g["across"].mean(), gap=diff.mean(), n_units=len(diff), p_units=p_units,
                       test_units=test_units, units_min_p=min_attainable_p(len(diff)))
            t = per_trial.get((dataset, method, metric, backbone, label))
            if t is not None and {within_protocol, across_protocol} <= set(t.columns):
                matched = t[[within_protocol, across_protocol]].dropna()
                a, b = matched[within_protocol].to_numpy(), matched[across_protocol].to_numpy()
                r = paired_comparison(a, b, n_boot=n_boot, seed=seed)
                row.update(within=float(a.mean()), across=float(b.mean()), gap=r["diff"], ci_low=r["ci_low"],
                           ci_high=r["ci_high"], p_value=r["p_value"], test=r["test"], n_trials=r["n"])
            else:  # no per-trial values: the interval and the test are over units
                lo, hi = bootstrap_ci(diff, n_boot=n_boot, seed=seed)
                row.update(ci_low=lo, ci_high=hi, p_value=p_units, test=test_units, n_trials=0)
            rows.append(row)
    return pd.DataFrame(rows, columns=GAP_COLUMNS)


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
                                         metric=col.metric, backbone=col.backbone, label=col.protocol,
                                         mean=float(e.value), ci_low=np.nan, ci_high=np.nan, n_units=0, n_trials=0,
                                         ci_basis="", status=STATUS_OK, source=e.source, note=e.note))
    return pd.DataFrame(rows)


def leaderboard_wide(board: pd.DataFrame, sig: pd.DataFrame, columns: list[Column], published: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset × protocol × method; per column: mean, CI bounds, p vs best, marks."""
    full = pd.concat([board, published], ignore_index=True) if len(published) else board
    index = ["dataset", "protocol", "method", "kind"]
    out = full[index].drop_duplicates().reset_index(drop=True)
    sig_idx = sig.set_index(["dataset", "protocol", *COLUMN_KEYS, "method"]) if len(sig) else None
    for col in columns:
        part = full[col.mask(full)].set_index(index)
        key = out.set_index(index).index
        out[col.label] = part["mean"].reindex(key).to_numpy()
        out[f"{col.label} ci_low"] = part["ci_low"].reindex(key).to_numpy()
        out[f"{col.label} ci_high"] = part["ci_high"].reindex(key).to_numpy()
        out[f"{col.label} status"] = part["status"].reindex(key).fillna("").to_numpy()
        out[f"{col.label} n"] = part["n_trials"].reindex(key).to_numpy() if "n_trials" in part else np.nan
        out[f"{col.label} min_n"] = part["min_n"].reindex(key).to_numpy() if "min_n" in part else np.nan
        p_values, marks = [], []
        for r in out.itertuples(index=False):
            k = (r.dataset, r.protocol, col.metric, col.backbone, col.protocol, r.method)
            if sig_idx is not None and k in sig_idx.index:
                s = sig_idx.loc[k]
                p_values.append(float(s["p_holm"]))
                marks.append("best" if s["best_marked"] else ("†" if s["significant"] else ""))
            else:
                p_values.append(np.nan)
                marks.append("")
        out[f"{col.label} p_vs_best"] = p_values  # Holm-adjusted, paired over trials
        out[f"{col.label} mark"] = marks
    return sort_rows(out)


def cell_text(row: pd.Series, col: Column, markdown: bool = False) -> str:
    status = row.get(f"{col.label} status", "")
    if isinstance(status, str) and status and status != STATUS_OK:
        n, floor = row.get(f"{col.label} n"), row.get(f"{col.label} min_n")
        return f"{status} ({int(n)} < {int(floor)})" if pd.notna(n) and pd.notna(floor) else status
    mean = row[col.label]
    if pd.isna(mean):
        return ""
    text = fmt(mean)
    lo, hi = row[f"{col.label} ci_low"], row[f"{col.label} ci_high"]
    if pd.notna(lo):
        text += f" [{fmt(lo)}, {fmt(hi)}]"
    n = row.get(f"{col.label} n")
    if col.set_level and pd.notna(n) and n:
        text += f" N={int(n)}"
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
                                                     backbone=col.backbone, label=col.protocol,
                                                     value=float(e.value))]))
    long = pd.concat(frames, ignore_index=True)
    long["label"] = long["label"].fillna("") if "label" in long else ""
    labels = {(c.metric, c.backbone, c.protocol): c.label for c in columns}
    long["column"] = [labels.get((m, b, lab)) for m, b, lab in zip(long["metric"], long["backbone"], long["label"])]
    long = long[long["column"].notna()]
    wide = long.pivot_table(index=["dataset", "protocol", "method", "kind", "subject"], columns="column",
                            values="value", aggfunc="mean").reset_index()
    wide.columns.name = None
    ordered = [c.label for c in columns if c.label in wide.columns]
    wide = wide[["dataset", "protocol", "method", "kind", "subject", *ordered]]
    wide["_s"] = [int(s) if str(s).isdigit() else 10**9 for s in wide["subject"]]
    return sort_rows(wide.sort_values(["_s", "subject"], kind="stable")).drop(columns="_s")


# NeuroImagen Table 3's variants, each with the registered method that ablates the same thing.
ABLATION_VARIANTS = (
    ("label caption + saliency", "neuroimagen"),
    ("label caption", "neuroimagen-label"),
    ("saliency only", "neuroimagen-saliency"),
    ("BLIP caption", "neuroimagen-blip"),
    ("BLIP caption + saliency", "neuroimagen-blip-saliency"),
)
ABLATION_METRICS = ("acc", "ssim")


def ablation_table(board: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """The NeuroImagen ablation as this run measured it, beside the paper's Table 3.

    One row per Table 3 variant. Ours: the leaderboard mean of each (dataset, protocol) for ACC and
    SSIM, headed by the column's full label (backbone, substitute, protocol). The paper's: Table 3 on
    EEG-CVPR40 (pooled), *reported, not reproduced* — a different dataset and backbone, so only the
    pattern across variants can be compared, never the values. Empty when no variant was run.
    """
    from reports.published import table3_ablation

    ours = board[board["method"].isin([m for _, m in ABLATION_VARIANTS]) & board["metric"].isin(ABLATION_METRICS)]
    if ours.empty:
        return pd.DataFrame()
    paper = table3_ablation()
    out = pd.DataFrame({"variant": [v for v, _ in ABLATION_VARIANTS], "method": [m for _, m in ABLATION_VARIANTS]})
    for col in columns:
        if col.metric not in ABLATION_METRICS:
            continue
        part = ours[col.mask(ours)]
        for (dataset, protocol), g in part.groupby(["dataset", "protocol"], sort=True):
            out[f"{dataset} {protocol}: {col.label}"] = out["method"].map(g.set_index("method")["mean"])
    for metric in (*ABLATION_METRICS, "is"):
        values = paper[paper["metric"] == metric].set_index("variant")["value"]
        out[f"Table 3 (EEG-CVPR40, {REPORTED_KIND}): {spec(metric).display}"] = out["variant"].map(values)
    return out[out["method"].isin(ours["method"])].reset_index(drop=True)

"""The claims the embedded benchmark is built to show, checked on a runs directory with their statistics.

The synthetic dataset has known ground truth, so the suite can state in advance what a correct run must
show — and check it on its own output, paired over the matched test trials:

- **ladder**: ``oracle-saliency`` > ``neuroimagen`` > the best floor, on ACC and N-way, per protocol;
- **learned**: every learned baseline beats ``floor-random`` on N-way (per-subject);
- **gap**: NeuroImagen is worse under LOSO than per-subject on ACC (the synthetic subjects differ);
- **zero-shot** (the THINGS-EEG2 track, zero-shot protocol, top-1): every embedding method beats
  ``floor-random``, and the contrastive encoders (``nice``, ``atm``) beat ``embedding-ridge``;
- **zs-gap**: each embedding method is worse under ``zero-shot-loso`` than ``zero-shot`` on top-1;
- **ablation** (NeuroImagen Table 3, qualitatively): on ACC the label-caption variants
  (``neuroimagen``, ``neuroimagen-label``) beat saliency only (``neuroimagen-saliency``); on SSIM the
  saliency variants (``neuroimagen``, ``neuroimagen-saliency``) beat label only (``neuroimagen-label``).

Each claim is a paired comparison over trials (mean difference, bootstrap CI, sign-flip p); the p-values
of all claims of a run form one family, Holm-adjusted. ``holds`` = the difference has the claimed sign
and ``p_holm`` < 0.05; ``holds_on_means`` = the claimed sign alone (what the small quick demo can show).
The gap claims are paired over the same trials under the two protocols.
"""

from __future__ import annotations

import pandas as pd

from metrics.stats import holm, paired_comparison
from metrics.vocabulary import spec
from reports.load import Runs
from reports.tables import ALPHA, trial_values

FLOORS = ("floor-random", "floor-mean", "floor-class-mean")
EMBEDDING_METHODS = ("embedding-ridge", "nice", "atm")
CONTRASTIVE = ("nice", "atm")
# claim → (within-subject protocol, leave-one-subject-out protocol) of a gap claim
GAPS = {"gap": ("per-subject", "loso"), "zs-gap": ("zero-shot", "zero-shot-loso")}
LEARNED_BASELINES = ("brain2image-gan", "brain2image-vae", "dreamdiffusion", "latent-ridge", "retrieval-ridge",
                     "retrieval-triplet")
CLAIM_COLUMNS = ["claim", "protocol", "metric", "better", "worse", "n_trials", "diff", "ci_low", "ci_high", "p_value",
                 "p_holm", "holds", "holds_on_means"]


def _planned(methods: set[str], protocols: set[str], means: pd.Series) -> list[tuple[str, str, str, str, str]]:
    """(claim, protocol, metric, better, worse) for every claim whose methods were run."""
    plan = []
    for protocol in ("per-subject", "loso"):
        if protocol not in protocols:
            continue
        for metric in ("acc", "nway"):
            floors = [f for f in FLOORS if f in methods and (protocol, metric, f) in means.index]
            if floors and "neuroimagen" in methods:
                best_floor = max(floors, key=lambda f: means[(protocol, metric, f)])
                plan.append(("ladder", protocol, metric, "neuroimagen", best_floor))
            if {"oracle-saliency", "neuroimagen"} <= methods:
                plan.append(("ladder", protocol, metric, "oracle-saliency", "neuroimagen"))
    if "per-subject" in protocols and "floor-random" in methods:
        plan += [("learned", "per-subject", "nway", b, "floor-random") for b in LEARNED_BASELINES if b in methods]
    if "per-subject" in protocols:
        for label_variant in ("neuroimagen", "neuroimagen-label"):
            if {label_variant, "neuroimagen-saliency"} <= methods:
                plan.append(("ablation", "per-subject", "acc", label_variant, "neuroimagen-saliency"))
        for saliency_variant in ("neuroimagen", "neuroimagen-saliency"):
            if {saliency_variant, "neuroimagen-label"} <= methods:
                plan.append(("ablation", "per-subject", "ssim", saliency_variant, "neuroimagen-label"))
    if {"per-subject", "loso"} <= protocols and "neuroimagen" in methods:
        plan.append(("gap", "per-subject − loso", "acc", "neuroimagen", "neuroimagen"))
    if "zero-shot" in protocols:
        embedding = [m for m in EMBEDDING_METHODS if m in methods]
        if "floor-random" in methods:
            plan += [("zero-shot", "zero-shot", "top1", m, "floor-random") for m in embedding]
        if "embedding-ridge" in methods:
            plan += [("zero-shot", "zero-shot", "top1", m, "embedding-ridge") for m in CONTRASTIVE if m in methods]
        if "zero-shot-loso" in protocols:
            plan += [("zs-gap", "zero-shot − zero-shot-loso", "top1", m, m) for m in embedding]
    return plan


def demo_claims(runs: Runs, seed: int = 0) -> pd.DataFrame:
    """Every applicable claim of the module docstring, with its paired statistics (``CLAIM_COLUMNS``)."""
    trials = trial_values(runs)
    if trials.empty:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    # One backbone per metric: the in-domain backbone for ACC / N-way, pixels for SSIM (the first listed).
    first_backbone = trials.groupby("metric")["backbone"].first()
    trials = trials[trials["backbone"] == trials["metric"].map(first_backbone)]
    per = trials.pivot_table(index=["protocol", "metric", "trial_id"], columns="method", values="value")
    means = trials.groupby(["protocol", "metric", "method"])["value"].mean()
    rows = []
    for claim, protocol, metric, better, worse in _planned(set(trials["method"]), set(trials["protocol"]), means):
        if claim in GAPS:
            within, across = GAPS[claim]
            present = per.index.droplevel(2)
            if (within, metric) not in present or (across, metric) not in present:
                continue
            a = per.loc[(within, metric)][better]
            b = per.loc[(across, metric)][better]
        else:
            if (protocol, metric) not in per.index.droplevel(2):
                continue
            block = per.loc[(protocol, metric)]
            a, b = block[better], block[worse]
        matched = pd.concat({"a": a, "b": b}, axis=1).dropna()
        if not spec(metric).higher_is_better:
            matched = matched[["b", "a"]].set_axis(["a", "b"], axis=1)
        r = paired_comparison(matched["a"].to_numpy(), matched["b"].to_numpy(), seed=seed)
        rows.append(dict(claim=claim, protocol=protocol, metric=metric, better=better,
                         worse=worse if claim not in GAPS else f"{better} ({GAPS[claim][1]})", n_trials=r["n"],
                         diff=r["diff"],
                         ci_low=r["ci_low"], ci_high=r["ci_high"], p_value=r["p_value"]))
    out = pd.DataFrame(rows, columns=CLAIM_COLUMNS[:-3])
    if out.empty:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    out["p_holm"] = holm(out["p_value"].to_numpy())
    out["holds_on_means"] = out["diff"] > 0
    out["holds"] = out["holds_on_means"] & (out["p_holm"] < ALPHA)
    return out[CLAIM_COLUMNS]


def claims_text(claims: pd.DataFrame) -> str:
    """One line per claim: ``✓ ladder per-subject acc: oracle-saliency > neuroimagen  Δ=0.25 [0.1, 0.4] ...``."""
    lines = []
    for r in claims.itertuples(index=False):
        mark = "✓" if r.holds else ("~" if r.holds_on_means else "✗")
        lines.append(f"{mark} {r.claim:<8} {r.protocol:<18} {r.metric:<5} {r.better} > {r.worse}: "
                     f"Δ={r.diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] over {r.n_trials} trials, "
                     f"p_holm={r.p_holm:.2g}")
    legend = f"✓ holds (p_holm < {ALPHA}), ~ right direction but not significant, ✗ wrong direction"
    return "\n".join([*lines, legend]) if lines else ""


__all__ = ["CLAIM_COLUMNS", "claims_text", "demo_claims"]

"""Confidence intervals and paired tests for the report.

- :func:`bootstrap_ci`: percentile bootstrap of the mean over independent units (subject × fold).
- :func:`stratified_bootstrap_ci`: percentile bootstrap over trials, resampled within each unit, of
  the mean of unit means (the same point estimate as the unit-level table).
- :func:`paired_test`: MOABB's choice for units — an exact paired sign-flip permutation test of the
  mean difference when there are fewer than 20 pairs, the Wilcoxon signed-rank test otherwise.
- :func:`min_attainable_p`: the smallest p-value a paired test over ``n`` units can give at all
  (2/2ⁿ for the exact sign-flip test: 0.5 for 2 subjects, 0.25 for 3), so a report can say where no
  difference could ever be significant.
- :func:`paired_trials`: two methods on the same test trials — mean paired difference (the effect
  size), its bootstrap CI over trials, and the sign-flip permutation p-value over trials (exact up to 19
  pairs, Monte Carlo with 10⁴ sign patterns and the +1 correction above).
- :func:`holm`: Holm's step-down adjustment of a family of p-values (strong control of the FWER).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERMUTATION_MAX_PAIRS = 20  # below this MOABB uses the permutation test, at or above Wilcoxon
EXACT_MAX_PAIRS = 19  # 2**19 sign patterns still enumerate (in chunks) in well under a second
_CHUNK = 1 << 15
_TOL = 1e-12


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean; ``(nan, nan)`` for fewer than two values."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def stratified_bootstrap_ci(
    groups: Sequence[Sequence[float]], n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile CI of the mean of group means, resampling items within each group."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not arrays or sum(len(a) for a in arrays) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    boot = np.zeros(n_boot)
    for a in arrays:
        boot += a[rng.integers(0, len(a), size=(n_boot, len(a)))].mean(axis=1)
    boot /= len(arrays)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def sign_flip_permutation_test(
    diffs: Sequence[float], n_permutations: int | None = None, seed: int = 0
) -> float:
    """Two-sided p-value of the paired sign-flip test on the mean difference.

    Under H0 each difference is symmetric about 0, so every sign pattern is equally likely; the
    p-value is the share of patterns whose |mean| reaches the observed |mean| (the observed pattern
    included, so p ≥ 1/2ⁿ). Exact enumeration up to ``EXACT_MAX_PAIRS`` pairs unless
    ``n_permutations`` asks for a Monte-Carlo estimate (then p = (hits + 1) / (draws + 1)).
    """
    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    if n == 0:
        return float("nan")
    observed = abs(d.mean())
    if n_permutations is None and n <= EXACT_MAX_PAIRS:
        hits = 0
        for start in range(0, 2**n, _CHUNK):
            codes = np.arange(start, min(start + _CHUNK, 2**n), dtype=np.int64)[:, None]
            signs = 1.0 - 2.0 * ((codes >> np.arange(n)) & 1)
            hits += int(np.sum(np.abs(signs @ d) / n >= observed - _TOL * max(1.0, observed)))
        return hits / 2**n
    rng = np.random.default_rng(seed)
    draws = n_permutations or 10_000
    signs = rng.choice([-1.0, 1.0], size=(draws, n))
    stats = np.abs(signs @ d) / n
    hits = int(np.sum(stats >= observed - _TOL * max(1.0, observed)))
    return (hits + 1) / (draws + 1)


def wilcoxon_test(diffs: Sequence[float]) -> float:
    from scipy.stats import wilcoxon

    d = np.asarray(diffs, dtype=np.float64)
    if len(d) == 0:
        return float("nan")
    if np.all(np.abs(d) <= _TOL):
        return 1.0
    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def paired_test(a: Sequence[float], b: Sequence[float], seed: int = 0) -> tuple[float, str]:
    """p-value and test name for paired samples ``a`` vs ``b`` (same units, same order)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.shape} vs {y.shape}")
    d = x - y
    if len(d) < 2:
        return (float("nan"), "none (fewer than 2 pairs)")
    if len(d) < PERMUTATION_MAX_PAIRS:
        return (sign_flip_permutation_test(d, seed=seed), "sign-flip permutation")
    return (wilcoxon_test(d), "Wilcoxon signed-rank")


def min_attainable_p(n_pairs: int) -> float:
    """Smallest p-value :func:`paired_test` can return for ``n_pairs`` pairs (whatever the differences)."""
    if n_pairs < 2:
        return float("nan")
    if n_pairs < PERMUTATION_MAX_PAIRS:
        return 2.0 / 2**n_pairs  # the observed sign pattern and its mirror
    from scipy.stats import wilcoxon

    return float(wilcoxon(np.arange(1.0, n_pairs + 1.0), alternative="two-sided").pvalue)


def paired_trials(a: Sequence[float], b: Sequence[float], n_boot: int = 2000, n_permutations: int = 10_000,
                  seed: int = 0) -> dict:
    """A vs B paired over matched trials: ``{"n", "diff", "ci_low", "ci_high", "p_value", "test"}``.

    ``diff`` is mean(a − b) — the effect size in the metric's own unit — with a percentile-bootstrap CI
    over trials; ``p_value`` is the two-sided sign-flip permutation test of that mean.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.shape} vs {y.shape}")
    d = x - y
    if len(d) < 2:
        return {"n": len(d), "diff": float(d.mean()) if len(d) else float("nan"), "ci_low": float("nan"),
                "ci_high": float("nan"), "p_value": float("nan"), "test": "none (fewer than 2 trials)"}
    lo, hi = bootstrap_ci(d, n_boot=n_boot, seed=seed)
    exact = len(d) <= EXACT_MAX_PAIRS
    p = sign_flip_permutation_test(d, n_permutations=None if exact else n_permutations, seed=seed)
    test = "sign-flip permutation over trials" + ("" if exact else f" ({n_permutations} patterns)")
    return {"n": len(d), "diff": float(d.mean()), "ci_low": lo, "ci_high": hi, "p_value": p, "test": test}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values, in the input order; NaN entries stay NaN and do not count in the family."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out

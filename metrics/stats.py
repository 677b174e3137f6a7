"""Every interval and test the suite prints: one module, seeded, so a result or a report reproduces exactly.

Intervals
- :func:`bootstrap_ci`: percentile bootstrap of the mean over independent values (trials, or subject ×
  fold units); ``(nan, nan)`` below two values.
- :func:`stratified_bootstrap_ci`: trials resampled within each unit, CI of the mean of unit means
  (the point estimate of a unit-level table).
- :func:`bootstrap_set_metric`: set-level metrics (FID, KID, IS) recomputed on trial resamples (the
  same rows of every array, so real/fake pairs stay paired). Resampling with replacement duplicates
  rows, which itself inflates FID: read the interval as the spread of the estimate.
- :func:`per_subject`: mean and CI per subject.

Tests
- :func:`paired_comparison`: two methods on the same trials — the mean paired difference (the effect
  size, in the metric's own unit), its bootstrap CI, and the two-sided sign-flip permutation p-value
  (exact up to ``EXACT_MAX_PAIRS`` pairs, Monte Carlo with the +1 correction above).
- :func:`paired_test`: MOABB's rule for units — the exact sign-flip test below
  ``PERMUTATION_MAX_PAIRS`` pairs, Wilcoxon's signed-rank test from there on.
- :func:`min_attainable_p`: the smallest p a paired test over ``n`` units can give (2/2ⁿ for the exact
  sign-flip test: 0.5 for 2 subjects, 0.25 for 3), so a report can say where nothing can be significant.
- :func:`holm`: Holm's step-down adjustment (strong control of the family-wise error rate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from eeg2img.errors import UserError

PERMUTATION_MAX_PAIRS = 20  # below this MOABB uses the permutation test, at or above Wilcoxon
EXACT_MAX_PAIRS = 19  # 2**19 sign patterns still enumerate (in chunks) in well under a second
_CHUNK = 1 << 15  # sign patterns per enumeration step
_INDICES_PER_CHUNK = 1 << 22  # resampled entries held in memory at once
_TOL = 1e-12


def as_values(x: Any, name: str) -> np.ndarray:
    """A finite 1-D float64 vector of per-sample values."""
    v = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise UserError(f"{name}: expected a non-empty 1-D vector of per-sample values, got shape {v.shape}; "
                        "pass one value per trial")
    if not np.isfinite(v).all():
        raise UserError(f"{name}: {int((~np.isfinite(v)).sum())} of {v.size} values are NaN or inf; "
                        "drop or fix the failed samples before aggregating")
    return v


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise UserError(f"level={level}: must be in (0, 1), e.g. 0.95")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


# --- intervals ----------------------------------------------------------------------------------------
def bootstrap_means(values: Any, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of the values."""
    v = as_values(values, "values")
    if n_boot < 1:
        raise UserError(f"n_boot={n_boot}: need at least 1 resample")
    rng = np.random.default_rng(seed)
    chunk = max(1, _INDICES_PER_CHUNK // len(v))
    return np.concatenate([v[rng.integers(0, len(v), (min(chunk, n_boot - lo), len(v)))].mean(axis=1)
                           for lo in range(0, n_boot, chunk)])


def bootstrap_ci(values: Any, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; ``(nan, nan)`` for fewer than two values."""
    if np.size(values) < 2:
        return (float("nan"), float("nan"))
    return _percentiles(bootstrap_means(values, n_boot, seed), level)


def stratified_bootstrap_ci(groups: Sequence[Sequence[float]], n_boot: int = 2000, seed: int = 0,
                            level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the mean of group means, resampling items within each group."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not arrays or sum(len(a) for a in arrays) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    boot = np.zeros(n_boot)
    for a in arrays:
        boot += a[rng.integers(0, len(a), size=(n_boot, len(a)))].mean(axis=1)
    return _percentiles(boot / len(arrays), level)


def per_subject(values: Any, subjects: Any, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> dict[Any, dict[str, Any]]:
    """``{subject: {"value": mean, "ci95": (lo, hi), "n": trials}}``, subjects in sorted order."""
    v = as_values(values, "values")
    s = np.asarray(subjects)
    if s.shape != v.shape:
        raise UserError(f"subjects: shape {s.shape} does not match values {v.shape}; pass one subject per trial")
    out = {}
    for subject in np.unique(s):
        sv = v[s == subject]
        out[subject.item()] = {"value": float(sv.mean()), "ci95": bootstrap_ci(sv, n_boot, seed, level),
                               "n": int(sv.size)}
    return out


def resample_indices(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """``(n_boot, n)`` trial indices drawn with replacement: the resamples :func:`bootstrap_set_metric` uses."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, n, n) for _ in range(n_boot)]) if n_boot else np.zeros((0, n), dtype=np.int64)


def bootstrap_set_metric(fn: Callable[..., Any], *arrays: Any, n_boot: int = 50, seed: int = 0,
                         level: float = 0.95, batched: Callable[[np.ndarray], np.ndarray] | None = None
                         ) -> tuple[float, float]:
    """Percentile interval of a set-level metric ``fn(*arrays)`` over trial resamples.

    All arrays are resampled with the same row indices (trial ``i`` of each stays together). ``fn`` may
    return a float or a tuple whose first element is the value (KID and IS return (mean, std)).
    ``batched``, when given, computes the metric of every resample at once from the ``(n_boot, n)``
    index array (see :func:`metrics.fid.fid_of_resamples`) and replaces the loop over ``fn``; it must
    equal that loop to round-off. Default 50 resamples: one FID on 2048-d features costs seconds.
    """
    if not arrays:
        raise UserError("bootstrap_set_metric: no arrays given; pass the per-trial features")
    n = len(arrays[0])
    for i, arr in enumerate(arrays[1:], start=2):
        if len(arr) != n:
            raise UserError(f"array {i}: {len(arr)} rows but array 1 has {n}; "
                            "resampling trials needs one row per trial in every array")
    if n_boot < 1:
        raise UserError(f"n_boot={n_boot}: need at least 1 resample")
    indices = resample_indices(n, n_boot, seed)
    if batched is not None:
        return _percentiles(np.asarray(batched(indices), dtype=np.float64), level)
    samples = np.empty(n_boot)
    for k in tqdm(range(n_boot), desc="bootstrap", unit="resample", disable=None, leave=False):
        value = fn(*(arr[indices[k]] for arr in arrays))
        samples[k] = value[0] if isinstance(value, tuple) else value
    return _percentiles(samples, level)


# --- tests --------------------------------------------------------------------------------------------
def sign_flip_permutation_test(diffs: Sequence[float], n_permutations: int | None = None, seed: int = 0) -> float:
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
    # Round-off must not turn the observed pattern (or its mirror) into "less extreme" than itself.
    threshold = observed - _TOL * max(1.0, observed)
    if n_permutations is None and n <= EXACT_MAX_PAIRS:
        hits = 0
        for start in range(0, 2**n, _CHUNK):
            codes = np.arange(start, min(start + _CHUNK, 2**n), dtype=np.int64)[:, None]
            signs = 1.0 - 2.0 * ((codes >> np.arange(n)) & 1)
            hits += int(np.sum(np.abs(signs @ d) / n >= threshold))
        return hits / 2**n
    rng = np.random.default_rng(seed)
    draws = n_permutations or 10_000
    hits, done = 0, 0
    rows = max(1, _INDICES_PER_CHUNK // n)
    while done < draws:
        signs = rng.choice([-1.0, 1.0], size=(min(rows, draws - done), n))
        hits += int(np.sum(np.abs(signs @ d) / n >= threshold))
        done += len(signs)
    return (hits + 1) / (draws + 1)


def wilcoxon_test(diffs: Sequence[float]) -> float:
    from scipy.stats import wilcoxon

    d = np.asarray(diffs, dtype=np.float64)
    if len(d) == 0:
        return float("nan")
    if np.all(np.abs(d) <= _TOL):
        return 1.0
    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def _paired(a: Any, b: Any) -> np.ndarray:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise UserError(f"a: {x.size} values but b has {y.size}; a paired comparison needs the same trials, "
                        "in the same order, for both methods")
    return x - y


def paired_test(a: Sequence[float], b: Sequence[float], seed: int = 0) -> tuple[float, str]:
    """p-value and test name for paired samples ``a`` vs ``b`` (same units, same order)."""
    d = _paired(a, b)
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


def paired_comparison(a: Any, b: Any, n_boot: int = 2000, n_permutations: int = 10_000, seed: int = 0,
                      level: float = 0.95) -> dict[str, Any]:
    """A vs B paired over matched trials: ``{"n", "diff", "ci_low", "ci_high", "p_value", "test"}``.

    ``diff`` is mean(a − b) with a percentile-bootstrap CI over trials; ``p_value`` is the two-sided
    sign-flip permutation test of that mean (exact up to ``EXACT_MAX_PAIRS`` pairs).
    """
    d = _paired(a, b)
    if len(d) < 2:
        return {"n": len(d), "diff": float(d.mean()) if len(d) else float("nan"), "ci_low": float("nan"),
                "ci_high": float("nan"), "p_value": float("nan"), "test": "none (fewer than 2 trials)"}
    d = as_values(d, "a − b")
    lo, hi = bootstrap_ci(d, n_boot=n_boot, seed=seed, level=level)
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

"""Uncertainty over trials: percentile bootstrap CIs, per-subject summaries, paired method comparisons.

Every function is seeded (``np.random.default_rng(seed)``) so a report reproduces exactly.

- Per-sample metrics (SSIM, PixCorr, CLIP score, identification, accuracy): :func:`bootstrap_ci`
  resamples trials and takes percentiles of the resampled means (default 1000 resamples — cheap).
- Set-level metrics (FID, KID, IS): :func:`bootstrap_set_metric` resamples trials (the same rows of
  every array, so real/fake pairs stay paired) and recomputes the whole metric each time. Default 50
  resamples, because one FID on 2048-d features costs seconds; pass more for a publication figure.
  Resampling with replacement duplicates rows, which itself inflates FID: read the interval as the
  spread of the estimate, not as an unbiased interval around it.
- :func:`paired_comparison` compares two methods on the same trials: mean difference, bootstrap CI of
  it, and a two-sided sign-flip permutation p-value (exact enumeration when 2^N ≤ permutations,
  MOABB's choice for few subjects; Monte Carlo with the +1 correction otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from eeg2img.errors import UserError


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


# Resampled index entries held in memory at once.
_INDICES_PER_CHUNK = 1 << 22


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise UserError(f"level={level}: must be in (0, 1), e.g. 0.95")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_means(values: Any, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of the per-trial values."""
    v = as_values(values, "values")
    if n_boot < 1:
        raise UserError(f"n_boot={n_boot}: need at least 1 resample")
    rng = np.random.default_rng(seed)
    chunk = max(1, _INDICES_PER_CHUNK // len(v))
    return np.concatenate([v[rng.integers(0, len(v), (min(chunk, n_boot - lo), len(v)))].mean(axis=1)
                           for lo in range(0, n_boot, chunk)])


def bootstrap_ci(values: Any, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over trials."""
    return _percentiles(bootstrap_means(values, n_boot, seed), level)


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


def _sign_flip_p_value(d: np.ndarray, n_permutations: int, rng: np.random.Generator) -> float:
    observed = abs(d.mean())
    # Round-off must not turn the identity flip (or its mirror) into "less extreme" than itself.
    threshold = observed - 1e-12 * max(1.0, np.abs(d).max())
    n = len(d)
    if 2**n <= n_permutations:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        return float((np.abs(signs @ d / n) >= threshold).mean())
    hits, done = 0, 0
    chunk = max(1, _INDICES_PER_CHUNK // n)
    while done < n_permutations:
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(chunk, n_permutations - done), n))
        hits += int((np.abs(signs @ d / n) >= threshold).sum())
        done += len(signs)
    return (hits + 1) / (n_permutations + 1)


def paired_comparison(a: Any, b: Any, n_boot: int = 1000, n_permutations: int = 10000, seed: int = 0,
                      level: float = 0.95) -> dict[str, Any]:
    """Method A vs B on the same trials: ``{"diff": mean(a−b), "ci95": (lo, hi), "p_value": p, "n": N}``."""
    va, vb = as_values(a, "a"), as_values(b, "b")
    if va.shape != vb.shape:
        raise UserError(f"a: {va.size} values but b has {vb.size}; a paired comparison needs the same trials, "
                        "in the same order, for both methods")
    d = va - vb
    rng = np.random.default_rng(seed)
    return {"diff": float(d.mean()), "ci95": bootstrap_ci(d, n_boot, seed, level),
            "p_value": _sign_flip_p_value(d, n_permutations, rng), "n": int(d.size)}


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
    equal that loop to round-off.
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

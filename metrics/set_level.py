"""Set-level metrics (FID, KID, IS) from features: one value per image set, refused below the metric's minimum N.

The engine computes these for one evaluation; the grid runner computes them once more over the pooled
test trials of every fold of a (dataset, protocol, method, seed) — the whole test set, since per-subject
and LOSO test each trial exactly once. Both go through :func:`set_level_rows`, so the pooled value *is*
the engine's value on the concatenated trials.

Inputs are the per-trial arrays a metric needs, row ``i`` of each array belonging to trial ``i``:
FID and KID take ``(pred_features, ref_features)``, IS takes ``(pred_logits,)``. Rows keep their
order: KID's subsets and IS's split shuffle are seeded, so the order is part of the result.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics.base import SmallSampleWarning
from metrics.vocabulary import SET_METRICS, STATUS_BELOW_MIN, STATUS_OK, is_splits_for, spec

SET_LEVEL_COLUMNS = ["subject", "metric", "backbone", "value", "std", "ci_low", "ci_high", "n", "min_n", "status",
                     "label", "warning"]


@dataclass(frozen=True)
class SetLevelOptions:
    """Everything besides the arrays that decides a set-level value (stored with it as provenance)."""

    seed: int = 0
    n_boot: int = 200  # bootstrap resamples over trials for the CI (0: no CI)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    # False only to prove the formulas against the reference libraries on a handful of images; then IS uses
    # min(is_splits, N) splits as torch-fidelity does.
    enforce_min_n: bool = True

    def splits(self, n: int) -> int:
        return is_splits_for(n, self.is_splits) if self.enforce_min_n else min(self.is_splits, n)


def _fid(arrays: tuple[np.ndarray, ...], options: SetLevelOptions) -> tuple[float, None]:
    from metrics.fid import fid_from_features

    p, r = span_coordinates(*arrays)
    return fid_from_features(p, r, warn_small=False), None


def _kid(arrays: tuple[np.ndarray, ...], options: SetLevelOptions) -> tuple[float, float]:
    from metrics.kid import kid_from_features

    p, r = arrays
    return kid_from_features(p, r, subsets=options.kid_subsets, subset_size=min(options.kid_subset_size, len(p)),
                             seed=options.seed)


def _is(arrays: tuple[np.ndarray, ...], options: SetLevelOptions) -> tuple[float, float]:
    from metrics.inception_score import inception_score_from_logits

    (logits,) = arrays
    return inception_score_from_logits(logits, splits=options.splits(len(logits)))


_FUNCTIONS = {"fid": _fid, "kid": _kid, "is": _is}


def label(metric: str, arrays: Sequence[np.ndarray], options: SetLevelOptions) -> str:
    """The short protocol label of a set-level value: what a reader needs to compare two of them."""
    n, dim = len(arrays[0]), arrays[0].shape[1]
    if metric == "fid":
        return f"{dim}-d, N={n}"
    if metric == "kid":
        return f"{dim}-d, {options.kid_subsets} subsets of {min(options.kid_subset_size, n)}, N={n}"
    splits = options.splits(n)
    if options.enforce_min_n and n < spec("is").min_n:
        return f"{dim} classes, N={n}"  # no value, so no split count to state
    return f"{dim} classes, {splits} split{'s' if splits != 1 else ''}, N={n}"


def compute(metric: str, arrays: Sequence[np.ndarray], options: SetLevelOptions = SetLevelOptions()) -> dict:
    """One set-level value as a row: value, std, ci_low, ci_high, n, min_n, status, label, warning.

    Below the metric's minimum N the row has ``status`` ``"N < min"`` and no value (NaN): a degenerate
    number is never produced. ``warning`` says when a value is shown but biased (FID below 2048).
    """
    if metric not in _FUNCTIONS:
        raise ValueError(f"{metric!r} is not a set-level metric; choose from {', '.join(SET_METRICS)}")
    arrays = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    n = len(arrays[0])
    s = spec(metric)
    row = {"value": np.nan, "std": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": n, "min_n": s.min_n,
           "status": STATUS_OK, "label": label(metric, arrays, options), "warning": ""}
    # Unenforced (reference-equality tests only), the floor is what the formula itself needs.
    floor = s.min_n if options.enforce_min_n else (1 if metric == "is" else 2)
    if n < floor:
        row["status"] = STATUS_BELOW_MIN
        return row
    fn = _FUNCTIONS[metric]
    value, std = fn(arrays, options)
    row["value"] = float(value)
    row["std"] = np.nan if std is None else float(std)
    if options.n_boot > 0:
        row["ci_low"], row["ci_high"] = _bootstrap(fn, arrays, options)
    warn_n = max(s.warn_n, arrays[0].shape[1]) if s.warn_n else 0
    if n < warn_n:
        row["warning"] = (f"N={n} < {warn_n}: the covariance is rank deficient and FID is biased upwards; "
                          "compare FIDs only at equal N")
    return row


def _bootstrap(fn, arrays: tuple[np.ndarray, ...], options: SetLevelOptions) -> tuple[float, float]:
    from metrics.stats import bootstrap_set_metric

    batched = _batched_resamples(fn, arrays, options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        return bootstrap_set_metric(lambda *a: fn(a, options), *arrays, n_boot=options.n_boot, seed=options.seed,
                                    batched=batched)


def _batched_resamples(fn, arrays: tuple[np.ndarray, ...], options: SetLevelOptions):
    """The metric of all bootstrap resamples at once (equal to the loop over ``fn``), or None."""
    if fn is _fid:
        from metrics.fid import fid_of_resamples

        # Resampled rows lie in the span of all rows: project once, then every resample at once.
        p, r = span_coordinates(*arrays)
        return lambda indices: fid_of_resamples(p, r, indices)
    # Only this path pairs distinct trials (kid_of_resamples); the loop over random subsets of a resample
    # (N > kid_subset_size) still pairs a repeated trial with itself.
    if fn is _kid and options.kid_subset_size >= len(arrays[0]):
        from metrics.kid import kid_of_resamples

        return lambda indices: kid_of_resamples(*arrays, indices)
    if fn is _is:
        from metrics.inception_score import inception_score_of_resamples

        splits = options.splits(len(arrays[0]))
        return lambda indices: inception_score_of_resamples(arrays[0], indices, splits=splits)
    return None


def set_level_rows(metric: str, backbone: str, arrays: Sequence[np.ndarray], subjects: Sequence | None,
                   options: SetLevelOptions = SetLevelOptions()) -> list[dict]:
    """Rows of :data:`SET_LEVEL_COLUMNS`: the whole set (subject ``"all"``), then each subject's trials.

    A subject's row is produced only when its trials reach the metric's minimum N; the whole set's row
    is always produced, with ``status`` ``"N < min"`` when it does not.
    """
    rows = [{"subject": "all", "metric": metric, "backbone": backbone, **compute(metric, arrays, options)}]
    if subjects is None:
        return rows
    subjects = np.asarray(subjects)
    for subject in pd.unique(subjects):
        idx = np.flatnonzero(subjects == subject)
        if options.enforce_min_n and len(idx) < spec(metric).min_n:
            continue
        value = compute(metric, tuple(np.asarray(a)[idx] for a in arrays), options)
        rows.append({"subject": subject.item() if hasattr(subject, "item") else subject, "metric": metric,
                     "backbone": backbone, **value})
    return rows


def span_coordinates(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both feature sets in an orthonormal basis of the affine span of their rows (FID-preserving).

    FID depends only on the mean difference and the two covariances, and is unchanged by a
    translation and by any isometry of the space that holds all the data. With N1 + N2 ≤ d (the usual
    case: a few hundred trials, 2048-d features) the rows span at most N1 + N2 − 1 dimensions, so the
    d×d eigenproblem of ``Σ1Σ2`` shrinks to (N1+N2)×(N1+N2) — seconds become milliseconds — while
    the value stays the same to round-off. With more rows than dimensions nothing is changed.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) + len(b) >= a.shape[1]:
        return a, b
    origin = a.mean(axis=0)
    _, _, vt = np.linalg.svd(np.concatenate([a - origin, b - origin]), full_matrices=False)
    return (a - origin) @ vt.T, (b - origin) @ vt.T

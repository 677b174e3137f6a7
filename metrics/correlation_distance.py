"""Correlation distance (MindEye's EffNet-B1 and SwAV columns), per sample; lower is better.

``d_i = 1 − r_i``, with ``r_i`` the Pearson correlation between the features of reconstruction ``i``
and of its own stimulus ``i`` — ``scipy.spatial.distance.correlation(gt[i], fake[i])`` in MindEye's
``Reconstruction_Metrics``, features flattened per image; the reported value is the mean over
samples. It ranges over [0, 2] (0: features proportional up to an offset; 1: uncorrelated). Unlike
two-way identification it compares each reconstruction with its own stimulus only, so it needs no
candidate pool and is defined for a single pair.

A constant feature row has no correlation; as for PixCorr it counts as r = 0 (distance 1) and a
warning says how many, so a degenerate output is penalised instead of turning the mean into NaN.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from eeg2img.errors import UserError
from metrics.base import Metric, as_features, check_same_dim, check_same_length
from metrics.pixcorr import pearson_rows


def correlation_distance(pred_feats: Any, ref_feats: Any) -> np.ndarray:
    """``1 − r`` of each row of ``pred_feats`` with the same row of ``ref_feats`` (float64 ``(N,)``)."""
    p = as_features(pred_feats, "pred_feats")
    r = as_features(ref_feats, "ref_feats")
    check_same_length(p, r, "pred_feats", "ref_feats")
    check_same_dim(p, r, "pred_feats", "ref_feats")
    corr = pearson_rows(p, r.to(p.device)).cpu().numpy()
    constant = ~np.isfinite(corr)
    if constant.any():
        warnings.warn(f"correlation distance: {int(constant.sum())} of {len(corr)} feature pairs contain a "
                      "constant feature vector; their correlation is undefined and counted as 0 (distance 1)",
                      UserWarning, stacklevel=2)
        corr[constant] = 0.0
    return 1.0 - corr


class CorrelationDistance(Metric):
    """Per-sample correlation distance over feature batches: ``update(pred_feats, ref_feats)``; mean."""

    name = "corrdist"
    higher_is_better = False
    protocol = "mindeye-correlation-distance"

    def __init__(self) -> None:
        super().__init__()
        self.add_state("values", [])

    def update(self, pred_feats: Any, ref_feats: Any) -> None:
        self.values.append(correlation_distance(pred_feats, ref_feats))

    @property
    def per_sample(self) -> np.ndarray:
        if not self.values:
            raise UserError("correlation distance: compute() called before any update(); feed feature batches first")
        return np.concatenate(self.values)

    def compute(self) -> float:
        return float(self.per_sample.mean())

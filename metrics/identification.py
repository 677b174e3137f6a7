"""N-way identification (MindEye's "two-way" identification), per sample.

``r[j, i]`` = Pearson correlation between the features of reconstruction ``j`` and stimulus ``i``
(MindEye: ``np.corrcoef(reals, preds)``, features flattened per image). With ``n_way=None`` each
reconstruction scores the fraction of the *other* stimuli whose correlation with it is strictly lower
than its own stimulus' — MindEye's ``two_way_identification``, which is also the exact expected
2-way success. With ``n_way=k`` each trial draws k−1 distractor stimuli and succeeds when the true
one correlates highest (see :mod:`metrics.nway`), averaged over ``draws`` seeded trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from eeg2img.errors import UserError
from metrics.base import Metric, as_features, cat_state, check_same_dim, check_same_length
from metrics.nway import beats_target, nway_success

# Feature columns promoted to float64 at a time (wide conv features would not fit in float64 at once).
_COLUMNS_PER_CHUNK = 16384


def correlation_matrix(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """``r[j, i]`` = Pearson r of row ``j`` of ``a`` with row ``i`` of ``b``, float64, columns in chunks."""
    d = a.shape[1]
    mean_a, mean_b = a.sum(dim=1, dtype=torch.float64) / d, b.sum(dim=1, dtype=torch.float64) / d
    gram = torch.zeros(len(a), len(b), dtype=torch.float64, device=a.device)
    ss_a = torch.zeros(len(a), dtype=torch.float64, device=a.device)
    ss_b = torch.zeros(len(b), dtype=torch.float64, device=a.device)
    for lo in range(0, d, _COLUMNS_PER_CHUNK):
        ca = a[:, lo:lo + _COLUMNS_PER_CHUNK].double() - mean_a[:, None]
        cb = b[:, lo:lo + _COLUMNS_PER_CHUNK].double() - mean_b[:, None]
        gram += ca @ cb.T
        ss_a += ca.square().sum(dim=1)
        ss_b += cb.square().sum(dim=1)
    return (gram / torch.outer(ss_a.sqrt(), ss_b.sqrt())).cpu().numpy()


def nway_identification(pred_feats: Any, ref_feats: Any, n_way: int | None = None, draws: int | None = 50,
                        seed: int = 0) -> np.ndarray:
    """Per-sample identification score (float64 (N,)); chance is 1/2 for ``n_way=None``, 1/k for ``n_way=k``."""
    p = as_features(pred_feats, "pred_feats", dtype=None, min_rows=2)
    r = as_features(ref_feats, "ref_feats", dtype=None, min_rows=2)
    check_same_length(p, r, "pred_feats", "ref_feats")
    check_same_dim(p, r, "pred_feats", "ref_feats")
    if p.shape[1] < 2:
        raise UserError(f"pred_feats: {p.shape[1]} feature per sample; correlation needs at least 2")
    corr = correlation_matrix(p, r.to(p.device))
    target = np.arange(len(corr))
    if n_way is None:
        return 1.0 - beats_target(corr, target).mean(axis=1)
    return nway_success(corr, target, n_way=n_way, top_k=1, draws=draws, seed=seed)


class Identification(Metric):
    """Identification over feature batches: ``update(pred_feats, ref_feats)``; the whole set is the candidate pool."""

    name = "identification"

    def __init__(self, n_way: int | None = None, draws: int | None = 50, seed: int = 0,
                 protocol: str | None = None) -> None:
        super().__init__()
        self.kwargs = dict(n_way=n_way, draws=draws, seed=seed)
        self.protocol = protocol or ("mindeye-2way-all-pairs" if n_way is None else f"{n_way}way-draws{draws}")
        self.add_state("pred_feats", [])
        self.add_state("ref_feats", [])
        self._values: np.ndarray | None = None

    def reset(self) -> None:
        super().reset()
        self._values = None

    def update(self, pred_feats: Any, ref_feats: Any) -> None:
        p = as_features(pred_feats, "pred_feats", dtype=None)
        r = as_features(ref_feats, "ref_feats", dtype=None)
        check_same_length(p, r, "pred_feats", "ref_feats")
        self.pred_feats.append(p.cpu())
        self.ref_feats.append(r.cpu())
        self._values = None

    @property
    def per_sample(self) -> np.ndarray:
        if self._values is None:
            self._values = nway_identification(cat_state(self.pred_feats, "identification pred_feats"),
                                               cat_state(self.ref_feats, "identification ref_feats"), **self.kwargs)
        return self._values

    def compute(self) -> float:
        return float(self.per_sample.mean())

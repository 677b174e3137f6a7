"""Kernel Inception Distance: unbiased MMD² with a polynomial kernel, averaged over random subsets.

Identical to torch-fidelity's ``kid_features_to_metric``: kernel ``(γ·x·yᵀ + coef0)^degree`` with
γ = 1/D by default; ``subsets`` draws, each taking ``subset_size`` rows of each set without
replacement from one ``np.random.RandomState(seed)`` (first set, then second set, per subset); the
unbiased MMD² estimator (diagonals of K_XX and K_YY dropped); mean and population std over subsets.
``subset_size`` is clipped to the smaller set (clean-fid's rule) instead of failing.

Computed in float64. When the sets are small enough the three kernel matrices are built once for
all rows and each subset reads its block, instead of recomputing three D-dimensional products per
subset — the arithmetic per entry is the same, so the result is too (to round-off).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from eeg2img.errors import UserError
from metrics.base import Metric, as_features, cat_state, check_same_dim

# Above this many kernel entries (all three matrices together) subsets are computed one by one.
_FULL_KERNEL_MAX_ENTRIES = 3 * 4096 * 4096


def _poly_kernel(x: torch.Tensor, y: torch.Tensor, degree: int, gamma: float, coef0: float) -> torch.Tensor:
    return (x @ y.transpose(-1, -2) * gamma + coef0) ** degree


def _mmd2_batch(k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² of ``(..., m, m)`` kernel matrices, one value per leading index."""
    m = k_xx.shape[-1]
    off_diag = (k_xx.sum((-2, -1)) - k_xx.diagonal(dim1=-2, dim2=-1).sum(-1)
                + k_yy.sum((-2, -1)) - k_yy.diagonal(dim1=-2, dim2=-1).sum(-1))
    return off_diag / (m * (m - 1)) - 2 * k_xy.sum((-2, -1)) / (m * m)


def _mmd2_unbiased(k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor) -> float:
    return float(_mmd2_batch(k_xx, k_xy, k_yy))


def kid_subset_values(feats1: Any, feats2: Any, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                      gamma: float | None = None, coef0: float = 1.0, seed: int = 2020) -> np.ndarray:
    """The unbiased MMD² of each of the ``subsets`` random subset pairs (float64 array)."""
    x = as_features(feats1, "feats1", min_rows=2)
    y = as_features(feats2, "feats2", min_rows=2)
    check_same_dim(x, y, "feats1", "feats2")
    if subsets < 1 or subset_size < 2:
        raise UserError(f"KID subsets={subsets}, subset_size={subset_size}: need subsets >= 1 and subset_size >= 2; "
                        "use the defaults (100, 1000)")
    n1, n2 = len(x), len(y)
    m = min(subset_size, n1, n2)
    gamma = 1.0 / x.shape[1] if gamma is None else float(gamma)
    kernel = lambda a, b: _poly_kernel(a, b, degree, gamma, coef0)
    if m == n1 == n2:
        # Every draw is then a permutation of all rows of both sets, and the unbiased MMD² does not
        # depend on the order of the rows: each subset has the same value (to round-off), computed once.
        return np.full(subsets, _mmd2_unbiased(kernel(x, x), kernel(x, y), kernel(y, y)))
    rng = np.random.RandomState(seed)
    full = n1 * n1 + n2 * n2 + n1 * n2 <= _FULL_KERNEL_MAX_ENTRIES
    if full:
        k11, k22, k12 = kernel(x, x), kernel(y, y), kernel(x, y)
    mmds = np.zeros(subsets)
    for i in tqdm(range(subsets), desc="KID subsets", unit="subset", disable=None, leave=False):
        # Two draws per subset, in this order, exactly as torch-fidelity consumes its RandomState.
        i1 = torch.from_numpy(rng.choice(n1, m, replace=False)).to(x.device)
        i2 = torch.from_numpy(rng.choice(n2, m, replace=False)).to(x.device)
        if full:
            mmds[i] = _mmd2_unbiased(k11[i1][:, i1], k12[i1][:, i2], k22[i2][:, i2])
        else:
            a, b = x[i1], y[i2]
            mmds[i] = _mmd2_unbiased(kernel(a, a), kernel(a, b), kernel(b, b))
    return mmds


def kid_of_resamples(feats1: Any, feats2: Any, indices: Any, degree: int = 3, gamma: float | None = None,
                     coef0: float = 1.0) -> np.ndarray:
    """KID of every paired resample at once, when each KID subset is the whole resample.

    With ``subset_size`` ≥ N every subset of a resample is a permutation of all its rows, so its KID
    is the unbiased MMD² of the resample (see :func:`kid_subset_values`); value ``k`` is that of rows
    ``indices[k]`` of both sets, batched over resamples in float64 (the bootstrap CI of a set-level KID).

    The within-set terms average over pairs of *distinct trials*: a trial drawn twice is one sample,
    and pairing it with itself would enter ``k(x, x)`` as a between-sample term — the same term the
    unbiased estimator leaves out. Counted, it biased every resample upwards (by about a third of the
    diagonal's share), and the percentile interval of a small set could miss its own estimate (floor-random,
    20 trials: KID −5.2, interval [−4.5, 18.9]). Without repeated trials this is the estimator itself.
    """
    x = as_features(feats1, "feats1", min_rows=2)
    y = as_features(feats2, "feats2", min_rows=2)
    check_same_dim(x, y, "feats1", "feats2")
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    if idx.ndim != 2 or idx.shape[1] < 2:
        raise UserError(f"indices: shape {tuple(idx.shape)}; pass (n_boot, n) row indices with n >= 2")
    m = idx.shape[1]
    gamma = 1.0 / x.shape[1] if gamma is None else float(gamma)
    kernel = lambda a, b: _poly_kernel(a, b, degree, gamma, coef0)  # noqa: E731
    chunk = max(1, int(2e8 // (3 * 8 * m * max(m, x.shape[1]))))
    out = []
    for part in idx.split(chunk):
        a, b = x[part], y[part]
        distinct = (part[:, :, None] != part[:, None, :]).to(x.dtype)  # pairs of two different trials
        within = ((kernel(a, a) + kernel(b, b)) * distinct).sum((-2, -1)) / distinct.sum((-2, -1)).clamp(min=1)
        out.append(within - 2 * kernel(a, b).sum((-2, -1)) / (m * m))
    return torch.cat(out).numpy() if out else np.zeros(0)


def kid_from_features(feats1: Any, feats2: Any, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                      gamma: float | None = None, coef0: float = 1.0, seed: int = 2020) -> tuple[float, float]:
    """KID (mean, population std over subsets) between two ``(N, D)`` feature sets."""
    mmds = kid_subset_values(feats1, feats2, subsets, subset_size, degree, gamma, coef0, seed)
    return float(mmds.mean()), float(mmds.std())


class KID(Metric):
    """Streaming KID: ``update(feats, real=True|False)``, then ``compute() -> (mean, std)``."""

    name = "kid"
    higher_is_better = False
    default_n_boot = 0

    def __init__(self, subsets: int = 100, subset_size: int = 1000, degree: int = 3, gamma: float | None = None,
                 coef0: float = 1.0, seed: int = 2020, protocol: str = "kid-poly3-float64") -> None:
        super().__init__()
        self.kwargs = dict(subsets=subsets, subset_size=subset_size, degree=degree, gamma=gamma, coef0=coef0,
                           seed=seed)
        self.protocol = protocol
        self.add_state("real_features", [])
        self.add_state("fake_features", [])

    def update(self, feats: Any, real: bool) -> None:
        x = as_features(feats, "real features" if real else "fake features", dtype=torch.float32)
        (self.real_features if real else self.fake_features).append(x.cpu())

    def compute(self) -> tuple[float, float]:
        return kid_from_features(cat_state(self.real_features, "KID real features"),
                                 cat_state(self.fake_features, "KID fake features"), **self.kwargs)

    @property
    def n(self) -> int:
        return sum(len(x) for x in self.fake_features)

    def _set_ci(self, n_boot: int, seed: int) -> tuple[float, float]:
        from metrics.stats import bootstrap_set_metric

        real, fake = torch.cat(self.real_features), torch.cat(self.fake_features)
        if len(real) != len(fake):
            raise UserError(f"KID: {len(real)} real and {len(fake)} fake samples; a paired bootstrap over trials "
                            "needs one reconstruction per stimulus (or pass n_boot=0)")
        fn = lambda a, b: kid_from_features(a, b, **self.kwargs)[0]
        return bootstrap_set_metric(fn, real.numpy(), fake.numpy(), n_boot=n_boot, seed=seed)

"""Fréchet distance between two Gaussians fitted to feature sets (FID when the features are Inception pool3).

``FID = ‖μ1−μ2‖² + Tr(Σ1) + Tr(Σ2) − 2·Tr((Σ1Σ2)^½)`` in float64. The trace of the matrix square root
is ``Σ sqrt(eigvals(Σ1Σ2)).real`` as in torch-fidelity ≥0.4 and torchmetrics: the eigenvalues of a
product of two PSD matrices are real and non-negative, so no ``scipy.linalg.sqrtm`` (whose results
changed across SciPy 1.11.2–1.12) is needed. Tiny negative eigenvalues from round-off give a purely
imaginary root whose real part, 0, is what is summed — exactly what the reference libraries do.

FID is biased for small N (the covariance is rank deficient below N = d): a
:class:`~metrics.base.SmallSampleWarning` is raised below 2048 samples; always report N, offer KID.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from eeg2img.errors import UserError
from metrics.base import (
    FID_MIN_SAMPLES,
    Metric,
    SmallSampleWarning,
    as_features,
    as_tensor,
    cat_state,
    check_same_dim,
)


def feature_statistics(feats: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased (N−1) covariance of ``(N, D)`` features, float64 (``np.cov(rowvar=False)``)."""
    x = as_features(feats, "features", min_rows=2)
    mu = x.mean(dim=0)
    xc = x - mu
    return mu, xc.T @ xc / (len(x) - 1)


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64."""
    mu1, mu2 = (as_tensor(m, name) for m, name in ((mu1, "mu1"), (mu2, "mu2")))
    sigma1, sigma2 = (as_tensor(s, name) for s, name in ((sigma1, "sigma1"), (sigma2, "sigma2")))
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    for s, name in ((sigma1, "sigma1"), (sigma2, "sigma2")):
        if s.shape != (d, d) or mu2.shape != mu1.shape:
            raise UserError(f"{name}: shape {tuple(s.shape)} does not match the means {tuple(mu1.shape)} and "
                            f"{tuple(mu2.shape)}; pass (D,) means and (D, D) covariances of the same features")
    for t, name in ((mu1, "mu1"), (mu2, "mu2"), (sigma1, "sigma1"), (sigma2, "sigma2")):
        if not bool(torch.isfinite(t).all()):
            raise UserError(f"{name}: contains NaN or inf; check the features the statistics came from")
    diff = mu1 - mu2
    tr_covmean = torch.linalg.eigvals(sigma1 @ sigma2).sqrt().real.sum()
    return float(diff.dot(diff) + sigma1.trace() + sigma2.trace() - 2 * tr_covmean)


def fid_from_features(feats1: Any, feats2: Any, warn_small: bool = True) -> float:
    """FID between two ``(N, D)`` feature sets (N may differ between the sets)."""
    x1 = as_features(feats1, "feats1", min_rows=2)
    x2 = as_features(feats2, "feats2", min_rows=2)
    check_same_dim(x1, x2, "feats1", "feats2")
    n = min(len(x1), len(x2))
    if warn_small and n < FID_MIN_SAMPLES:
        warnings.warn(f"FID on {n} samples (< {FID_MIN_SAMPLES}) is biased upwards and not comparable across N; "
                      "report N and prefer KID", SmallSampleWarning, stacklevel=2)
    return frechet_distance(*feature_statistics(x1), *feature_statistics(x2))


def fid_of_resamples(feats1: Any, feats2: Any, indices: Any) -> np.ndarray:
    """FID of every paired resample at once: value ``k`` is the FID of rows ``indices[k]`` of both sets.

    Equal to :func:`frechet_distance` on each resample, in float64, batched over resamples (the
    bootstrap CI of a set-level FID: hundreds of resamples). With fewer rows than dimensions
    (n < d, the usual case) the trace term uses the identity tr √(Σ1Σ2) = ‖X̃ Ỹᵀ‖* / (n − 1) for the
    centred rows X̃, Ỹ — the nonzero eigenvalues of Σ1Σ2 are the squared singular values of X̃ Ỹᵀ/(n−1) —
    an n×n singular-value problem instead of a d×d non-symmetric eigenproblem.
    """
    x = as_features(feats1, "feats1", min_rows=2)
    y = as_features(feats2, "feats2", min_rows=2)
    check_same_dim(x, y, "feats1", "feats2")
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    if idx.ndim != 2 or idx.shape[1] < 2 or len(x) != len(y):
        raise UserError(f"indices: shape {tuple(idx.shape)} for {len(x)} and {len(y)} rows; pass (n_boot, n) "
                        "row indices (n >= 2) into two feature sets of the same trials")
    n, d = idx.shape[1], x.shape[1]
    chunk = max(1, int(2e8 // (3 * 8 * d * max(d, n))))  # about 200 MB of float64 per batch
    out = []
    for part in idx.split(chunk):
        xs, ys = x[part], y[part]
        mu1, mu2 = xs.mean(dim=1), ys.mean(dim=1)
        xc, yc = xs - mu1[:, None], ys - mu2[:, None]
        if n < d:
            tr_covmean = torch.linalg.svdvals(xc @ yc.transpose(1, 2)).sum(dim=-1) / (n - 1)
        else:
            sigma1 = xc.transpose(1, 2) @ xc / (n - 1)
            sigma2 = yc.transpose(1, 2) @ yc / (n - 1)
            tr_covmean = torch.linalg.eigvals(sigma1 @ sigma2).sqrt().real.sum(dim=-1)
        diff = mu1 - mu2
        traces = ((xc * xc).sum((1, 2)) + (yc * yc).sum((1, 2))) / (n - 1)
        out.append((diff * diff).sum(-1) + traces - 2 * tr_covmean)
    return torch.cat(out).numpy() if out else np.zeros(0)


class FID(Metric):
    """Streaming FID over feature batches: ``update(feats, real=True|False)``, then ``compute()``.

    Features are kept (not just their running sums) so that :meth:`result` can bootstrap a CI.
    """

    name = "fid"
    higher_is_better = False
    default_n_boot = 0

    def __init__(self, protocol: str = "fid-float64-eigvals") -> None:
        super().__init__()
        self.protocol = protocol
        self.add_state("real_features", [])
        self.add_state("fake_features", [])

    def update(self, feats: Any, real: bool) -> None:
        x = as_features(feats, "real features" if real else "fake features", dtype=torch.float32)
        (self.real_features if real else self.fake_features).append(x.cpu())

    def compute(self) -> float:
        return fid_from_features(cat_state(self.real_features, "FID real features"),
                                 cat_state(self.fake_features, "FID fake features"))

    @property
    def n(self) -> int:
        return sum(len(x) for x in self.fake_features)

    def _set_ci(self, n_boot: int, seed: int) -> tuple[float, float]:
        from metrics.stats import bootstrap_set_metric

        real, fake = torch.cat(self.real_features), torch.cat(self.fake_features)
        if len(real) != len(fake):
            raise UserError(f"FID: {len(real)} real and {len(fake)} fake samples; a paired bootstrap over trials "
                            "needs one reconstruction per stimulus (or pass n_boot=0)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSampleWarning)
            return bootstrap_set_metric(fid_from_features, real.numpy(), fake.numpy(), n_boot=n_boot, seed=seed)


__all__ = ["FID", "feature_statistics", "fid_from_features", "frechet_distance"]

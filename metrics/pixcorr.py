"""PixCorr (MindEye): Pearson r between each flattened reconstruction and its stimulus.

Both images are resized to 425 px (antialiased bilinear, see :mod:`metrics.image_ops`), kept in RGB,
flattened, and correlated — ``np.corrcoef(stim, recon)[0, 1]`` per sample, computed in float64. A
constant image has no correlation (numpy gives NaN); here it scores 0 and a warning says how many,
so a method that outputs blank images is penalised instead of poisoning the mean.

When both images are *enlarged* (the usual case: 32–256 px images scored at 425 px), the 425² pixels
are never formed. The resize is linear and separable, ``up(x) = R_h x R_wᵀ`` per channel with rows of
``R`` summing to 1, so every sum Pearson's r needs is a small quadratic form: with ``x̃ = x − mean(up(x))``,
``Σ up(x̃)·up(ỹ) = Σ x̃ ⊙ (R_hᵀR'_h) ỹ (R'_wᵀR_w)``. ``R`` is read off the resize itself (it resizes
the identity), so this is the same number as resizing first, to float64 rounding, at a fraction of the
cost (425² × 3 values per image otherwise: a third of the demo's evaluation time).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from eeg2img.errors import UserError
from metrics.base import Metric
from metrics.image_ops import as_image_batch, check_pair, resize_square


def pearson_rows(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson r of each row of ``x`` with the same row of ``y`` (``(N, D)``, float64); NaN for a constant row."""
    x = x - x.mean(dim=1, keepdim=True)
    y = y - y.mean(dim=1, keepdim=True)
    return (x * y).sum(dim=1) / (x.norm(dim=1) * y.norm(dim=1))


def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``(n_out, n_in)`` float64: :func:`~metrics.image_ops.resize_square` along one axis, read off by resizing
    the identity (the antialiased bilinear resize is separable: one such matrix per axis)."""
    # Two identical columns, not one: torch 2.x's antialiased kernel mis-resizes a width-1 image.
    eye = torch.eye(n_in, dtype=torch.float64)[:, None, :, None].expand(n_in, 1, n_in, 2).contiguous()
    return F.interpolate(eye, size=(n_out, 2), mode="bilinear", align_corners=False, antialias=True)[:, 0, :, 0].T


def _enlarged_pearson(x: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
    """Pearson r of ``resize_square(x, size)`` with ``resize_square(y, size)`` per sample, without resizing
    (float64 ``(N, C, H, W)`` batches no larger than ``size`` on either axis)."""
    rx = [resize_matrix(n, size) for n in x.shape[-2:]]
    ry = [resize_matrix(n, size) for n in y.shape[-2:]]

    def centred(t, r_h, r_w):  # t − mean(up(t)); rows of R sum to 1, so up(t − m) = up(t) − m
        total = torch.einsum("nchw,h,w->n", t, r_h.sum(0), r_w.sum(0))
        return t - (total / (t.shape[1] * size * size))[:, None, None, None]

    def inner(a, ra, b, rb):  # Σ up(a) ⊙ up(b), per sample
        return torch.einsum("nchw,hk,ncks,ws->n", a, ra[0].T @ rb[0], b, ra[1].T @ rb[1])

    xc, yc = centred(x, *rx), centred(y, *ry)
    r = inner(xc, rx, yc, ry) / (inner(xc, rx, xc, rx) * inner(yc, ry, yc, ry)).sqrt()
    constant = (x.flatten(1).amax(1) == x.flatten(1).amin(1)) | (y.flatten(1).amax(1) == y.flatten(1).amin(1))
    return torch.where(constant, torch.nan, r)  # an enlarged constant image is constant, and no other is


def pixcorr(pred: Any, ref: Any, size: int | None = 425, batch_size: int = 16) -> np.ndarray:
    """Per-sample pixel correlation (float64 array (N,)) of uint8 ``(N, H, W, 3)`` or [0, 1] float images."""
    if len(pred) != len(ref):
        raise UserError(f"pred: {len(pred)} images but ref has {len(ref)}; "
                        "pass one reconstruction per stimulus, in the same trial order")
    out = []
    for i in range(0, len(pred), batch_size):
        x, y = (as_image_batch(a[i:i + batch_size], name, dtype=torch.float64) for a, name in ((pred, "pred"),
                                                                                               (ref, "ref")))
        if size is not None and max(*x.shape[-2:], *y.shape[-2:]) <= size and x.shape[1] == y.shape[1]:
            out.append(_enlarged_pearson(x, y, size))
            continue
        x, y = resize_square(x, size), resize_square(y, size)
        check_pair(x, y)
        out.append(pearson_rows(x.flatten(1), y.flatten(1)).cpu())
    r = torch.cat(out).numpy() if out else np.zeros(0)
    constant = ~np.isfinite(r)
    if constant.any():
        warnings.warn(f"PixCorr: {int(constant.sum())} of {len(r)} image pairs contain a constant image; "
                      "their correlation is undefined and counted as 0", UserWarning, stacklevel=2)
        r[constant] = 0.0
    return r


class PixCorr(Metric):
    """Per-sample PixCorr accumulator: ``update(pred, ref)``, ``compute()`` = mean r."""

    name = "pixcorr"

    def __init__(self, size: int | None = 425) -> None:
        super().__init__()
        self.size = size
        self.protocol = f"mindeye-{'native' if size is None else f'{size}px'}-rgb"
        self.add_state("values", [])

    def update(self, pred: Any, ref: Any) -> None:
        self.values.append(pixcorr(pred, ref, size=self.size))

    def compute(self) -> float:
        return float(self.per_sample.mean())

    @property
    def per_sample(self) -> np.ndarray:
        if not self.values:
            raise UserError("PixCorr: compute() called before any update(); feed image batches first")
        return np.concatenate(self.values)

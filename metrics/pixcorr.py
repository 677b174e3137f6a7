"""PixCorr (MindEye): Pearson r between each flattened reconstruction and its stimulus.

Both images are resized to 425 px (antialiased bilinear, see :mod:`metrics.image_ops`), kept in RGB,
flattened, and correlated — ``np.corrcoef(stim, recon)[0, 1]`` per sample, computed in float64. A
constant image has no correlation (numpy gives NaN); here it scores 0 and a warning says how many,
so a method that outputs blank images is penalised instead of poisoning the mean.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from eeg2img.errors import UserError
from metrics.base import Metric
from metrics.image_ops import as_image_batch, check_pair, resize_square


def pearson_rows(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson r of each row of ``x`` with the same row of ``y`` (``(N, D)``, float64); NaN for a constant row."""
    x = x - x.mean(dim=1, keepdim=True)
    y = y - y.mean(dim=1, keepdim=True)
    return (x * y).sum(dim=1) / (x.norm(dim=1) * y.norm(dim=1))


def pixcorr(pred: Any, ref: Any, size: int | None = 425, batch_size: int = 16) -> np.ndarray:
    """Per-sample pixel correlation (float64 array (N,)) of uint8 ``(N, H, W, 3)`` or [0, 1] float images."""
    if len(pred) != len(ref):
        raise UserError(f"pred: {len(pred)} images but ref has {len(ref)}; "
                        "pass one reconstruction per stimulus, in the same trial order")
    out = []
    for i in range(0, len(pred), batch_size):
        x, y = (resize_square(as_image_batch(a[i:i + batch_size], name), size) for a, name in ((pred, "pred"),
                                                                                               (ref, "ref")))
        check_pair(x, y)
        out.append(pearson_rows(x.flatten(1).double(), y.flatten(1).double()).cpu())
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

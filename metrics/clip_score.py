"""CLIP score from precomputed image and text embeddings; two named variants that give different numbers.

- ``"hessel"`` (Hessel et al. 2021, CLIPScore): per sample ``w·max(cos, 0)`` with w = 2.5, then the
  mean.
- ``"torchmetrics"`` (``torchmetrics.multimodal.CLIPScore``): per sample ``100·cos``; the mean is
  clamped at 0 *after* averaging, so a negative per-sample cosine lowers the result here but not in
  Hessel's.

Per-sample values are what :func:`clip_score_from_embeddings` returns;
:func:`aggregate_clip_score` applies each variant's reduction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from eeg2img.errors import UserError
from metrics.base import Metric, as_features, check_same_dim, check_same_length
from metrics.stats import as_values

VARIANTS = ("hessel", "torchmetrics")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise UserError(f"CLIP score variant {variant!r}: unknown; use one of {', '.join(VARIANTS)}")


def cosine_rows(a: Any, b: Any, name_a: str = "image_emb", name_b: str = "text_emb") -> torch.Tensor:
    """Cosine similarity of each row of ``a`` with the same row of ``b`` (float64)."""
    x, y = as_features(a, name_a), as_features(b, name_b)
    check_same_length(x, y, name_a, name_b)
    check_same_dim(x, y, name_a, name_b)
    norms = x.norm(dim=1) * y.norm(dim=1)
    if bool((norms == 0).any()):
        raise UserError(f"{name_a}/{name_b}: {int((norms == 0).sum())} embeddings are all zeros; "
                        "check the CLIP encoder output")
    return (x * y).sum(dim=1) / norms


def clip_score_from_embeddings(image_emb: Any, text_emb: Any, variant: str = "hessel", w: float = 2.5) -> np.ndarray:
    """Per-sample CLIP score: ``w·max(cos, 0)`` (hessel) or ``100·cos`` (torchmetrics), float64 (N,)."""
    _check_variant(variant)
    cos = cosine_rows(image_emb, text_emb)
    score = w * cos.clamp(min=0) if variant == "hessel" else 100 * cos
    return score.cpu().numpy()


def aggregate_clip_score(values: Any, variant: str = "hessel") -> float:
    """The variant's reduction of per-sample scores: mean (hessel) or ``max(mean, 0)`` (torchmetrics)."""
    _check_variant(variant)
    mean = float(as_values(values, "clip scores").mean())
    return mean if variant == "hessel" else max(mean, 0.0)


class CLIPScore(Metric):
    """Per-sample CLIP score accumulator over embedding batches: ``update(image_emb, text_emb)``."""

    name = "clip_score"

    def __init__(self, variant: str = "hessel", w: float = 2.5) -> None:
        super().__init__()
        _check_variant(variant)
        self.variant, self.w = variant, w
        self.protocol = f"clip-score-hessel-w{w:g}" if variant == "hessel" else "clip-score-torchmetrics-100cos"
        self.add_state("values", [])

    def update(self, image_emb: Any, text_emb: Any) -> None:
        self.values.append(clip_score_from_embeddings(image_emb, text_emb, self.variant, self.w))

    def compute(self) -> float:
        return aggregate_clip_score(self.per_sample, self.variant)

    @property
    def per_sample(self) -> np.ndarray:
        if not self.values:
            raise UserError("CLIP score: compute() called before any update(); feed embeddings first")
        return np.concatenate(self.values)

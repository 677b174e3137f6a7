"""N-way top-k classification accuracy (MinD-Vis protocol, used by NeuroImagen and DreamDiffusion).

The target of sample ``i`` is the class an ImageNet classifier predicts for its *stimulus* (passed in
as ``target_classes``). Each trial draws ``n_way − 1`` other classes and succeeds if the target is
among the top ``k`` of the ``n_way`` classes by the classifier's score for the *reconstruction*; MinD-Vis
uses n=50, k=1 and 50 trials. The per-sample value is the mean over trials; the reported number is
the mean over samples — never the best of several generated samples. Logits rank like MinD-Vis'
softmax probabilities but cannot tie where the probabilities underflow to 0.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from eeg2img.errors import UserError
from metrics.base import Metric, as_features, as_tensor, cat_state, check_same_length
from metrics.nway import nway_success


def nway_topk_accuracy(pred_logits: Any, target_classes: Any, n_way: int = 50, top_k: int = 1,
                       draws: int | None = 50, seed: int = 0) -> np.ndarray:
    """Per-sample N-way top-k success rate (float64 (N,)); ``n_way`` is clipped to the class count."""
    logits = as_features(pred_logits, "pred_logits")
    target = as_tensor(target_classes, "target_classes", dtype=None)
    if target.ndim != 1:
        raise UserError(f"target_classes: expected a 1-D vector of class indices, got shape {tuple(target.shape)}; "
                        "pass one predicted stimulus class per sample")
    check_same_length(logits, target, "pred_logits", "target_classes")
    n_classes = logits.shape[1]
    if bool((target != target.round()).any()) or bool((target < 0).any()) or bool((target >= n_classes).any()):
        raise UserError(f"target_classes: values must be integer class indices in [0, {n_classes}); "
                        "pass the argmax of the classifier's output for each stimulus")
    if n_way > n_classes:
        warnings.warn(f"n_way={n_way} exceeds the {n_classes} classes; using {n_classes}-way", UserWarning,
                      stacklevel=2)
        n_way = n_classes
    return nway_success(logits.cpu().numpy(), target.long().cpu().numpy(), n_way=n_way, top_k=top_k,
                        draws=draws, seed=seed)


class NWayAccuracy(Metric):
    """N-way top-k accuracy over batches: ``update(pred_logits, target_classes)``, ``compute()`` = mean."""

    name = "nway_accuracy"

    def __init__(self, n_way: int = 50, top_k: int = 1, draws: int | None = 50, seed: int = 0,
                 protocol: str | None = None) -> None:
        super().__init__()
        self.kwargs = dict(n_way=n_way, top_k=top_k, draws=draws, seed=seed)
        self.protocol = protocol or f"mindvis-{n_way}way-top{top_k}-draws{draws}"
        self.add_state("logits", [])
        self.add_state("targets", [])
        self._values: np.ndarray | None = None

    def reset(self) -> None:
        super().reset()
        self._values = None

    def update(self, pred_logits: Any, target_classes: Any) -> None:
        logits = as_features(pred_logits, "pred_logits", dtype=None)
        target = as_tensor(target_classes, "target_classes", dtype=torch.float64).reshape(-1)
        check_same_length(logits, target, "pred_logits", "target_classes")
        self.logits.append(logits.cpu())
        self.targets.append(target.cpu())
        self._values = None

    @property
    def per_sample(self) -> np.ndarray:
        # All samples at once: the trial draws come from one generator stream over the whole set.
        if self._values is None:
            self._values = nway_topk_accuracy(cat_state(self.logits, "accuracy logits"),
                                              cat_state(self.targets, "accuracy targets"), **self.kwargs)
        return self._values

    def compute(self) -> float:
        return float(self.per_sample.mean())

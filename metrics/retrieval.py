"""Zero-shot retrieval: identify each trial's stimulus among candidate images from an embedding (THINGS-EEG2).

The score of candidate ``j`` for trial ``i`` is the cosine similarity of the trial's predicted embedding
with the candidate's image embedding (ATM, NICE: ``logits = pred @ cand.T`` on L2-normalised rows; the
temperature of their softmax does not change a ranking). A trial succeeds at top-k when fewer than ``k``
other candidates *beat* its target — a tie or NaN counts against it (:mod:`metrics.nway`), where
``argsort``-based code would let candidate order decide.

- ``n_way=None``: all candidates (THINGS-EEG2's 200-way; here N = the number of distinct test images).
- ``n_way=k``: ATM's 2-, 4-, 10-, 50-, 100-way: each trial draws ``k − 1`` distractors, ``draws`` times,
  from one ``np.random.default_rng(seed)`` (ATM draws unseeded); the value is the success rate over draws.

``retrieval_topk`` is the functional core; :class:`Retrieval` collects batches and calls it once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from eeg2img.errors import UserError
from metrics.base import Metric, as_features, cat_state, check_same_dim
from metrics.nway import nway_success


def cosine_scores(pred: torch.Tensor, candidates: torch.Tensor) -> np.ndarray:
    """``(N, C)`` float64 cosine similarity of each prediction with each candidate."""
    p, c = pred.double(), candidates.double()
    p = p / p.norm(dim=1, keepdim=True)
    c = c / c.norm(dim=1, keepdim=True)
    return (p @ c.T).cpu().numpy()


def retrieval_topk(pred_emb: Any, candidate_emb: Any, target: Any, top_k: int = 1, n_way: int | None = None,
                   draws: int | None = 50, seed: int = 0) -> np.ndarray:
    """Per-trial top-k success (float64 (N,)): is the target among the ``top_k`` best-scored candidates?

    ``pred_emb`` (N, D), ``candidate_emb`` (C, D), ``target`` (N,) the index of each trial's stimulus in the
    candidates. Chance is ``top_k / C`` for ``n_way=None``, ``top_k / n_way`` otherwise.
    """
    p = as_features(pred_emb, "pred_emb", dtype=None)
    c = as_features(candidate_emb, "candidate_emb", dtype=None, min_rows=2)
    check_same_dim(p, c, "pred_emb", "candidate_emb")
    t = np.asarray(target)
    if t.shape != (len(p),) or not np.issubdtype(t.dtype, np.integer):
        raise UserError(f"target: expected {len(p)} integer candidate indices, got shape {t.shape} of {t.dtype}")
    if len(t) and (t.min() < 0 or t.max() >= len(c)):
        raise UserError(f"target: indices must lie in 0..{len(c) - 1} (one per candidate image)")
    zero = torch.cat([p.norm(dim=1) == 0, c.norm(dim=1) == 0])
    if bool(zero.any()):
        raise UserError("pred_emb / candidate_emb: an all-zero embedding has no direction; cosine scores are undefined")
    scores = cosine_scores(p, c.to(p.device))
    if n_way is None:
        return nway_success(scores, t.astype(np.int64), n_way=len(c), top_k=top_k, draws=None)
    return nway_success(scores, t.astype(np.int64), n_way=n_way, top_k=top_k, draws=draws, seed=seed)


def retrieval_metrics(pred_emb: Any, candidate_emb: Any, target: Any, metrics, draws: int = 50,
                      seed: int = 0) -> dict[str, tuple[str, np.ndarray]]:
    """``{metric: (label, per-trial values)}`` for the grid's retrieval metrics (``metrics.vocabulary``):
    ``top1``/``top5`` over all candidates, ``top1-<k>way`` with seeded draws. A metric the candidate count
    cannot support (top-5 of ≤ 5 candidates, k-way with k ≥ the candidates) gets no value rather than a
    degenerate one: ``top1-20way`` of 20 candidates would be ``top1`` again under another name."""
    n_candidates = len(candidate_emb)
    out = {}
    for metric in metrics:
        if metric in ("top1", "top5"):
            k = int(metric[3:])
            if k < n_candidates:
                out[metric] = (f"{n_candidates}-way", retrieval_topk(pred_emb, candidate_emb, target, top_k=k))
        elif metric.startswith("top1-") and metric.endswith("way"):
            n_way = int(metric[5:-3])
            if n_way < n_candidates:
                out[metric] = (f"{n_way}-way, {draws} draws",
                               retrieval_topk(pred_emb, candidate_emb, target, n_way=n_way, draws=draws, seed=seed))
    return out


class Retrieval(Metric):
    """``Retrieval(candidate_emb, top_k, n_way)``; ``update(pred_emb, target)`` per batch, scored once."""

    name = "retrieval"

    def __init__(self, candidate_emb: Any, top_k: int = 1, n_way: int | None = None, draws: int | None = 50,
                 seed: int = 0) -> None:
        super().__init__()
        self.candidates = as_features(candidate_emb, "candidate_emb", dtype=None, min_rows=2).cpu()
        self.kwargs = dict(top_k=top_k, n_way=n_way, draws=draws, seed=seed)
        self.protocol = f"{len(self.candidates) if n_way is None else n_way}-way top-{top_k}"
        self.add_state("pred", [])
        self.add_state("target", [])
        self._values: np.ndarray | None = None

    def reset(self) -> None:
        super().reset()
        self._values = None

    def update(self, pred_emb: Any, target: Any) -> None:
        p = as_features(pred_emb, "pred_emb", dtype=None)
        t = torch.as_tensor(np.asarray(target, dtype=np.int64))
        if t.shape != (len(p),):
            raise UserError(f"target: expected {len(p)} indices for {len(p)} embeddings, got shape {tuple(t.shape)}")
        self.pred.append(p.cpu())
        self.target.append(t)
        self._values = None

    @property
    def per_sample(self) -> np.ndarray:
        if self._values is None:
            self._values = retrieval_topk(cat_state(self.pred, "retrieval pred"), self.candidates,
                                          cat_state(self.target, "retrieval target").numpy(), **self.kwargs)
        return self._values

    def compute(self) -> float:
        return float(self.per_sample.mean())


__all__ = ["Retrieval", "cosine_scores", "retrieval_metrics", "retrieval_topk"]

"""Inception Score from classifier logits, exactly as torch-fidelity's ``isc_features_to_metric``.

Rows are shuffled by ``np.random.RandomState(seed).permutation(N)`` (seed 2020), softmax is taken in
float64, split ``i`` is rows ``i*N//splits : (i+1)*N//splits``, each split scores
``exp(mean_x KL(p(y|x) ‖ p(y)))`` with ``p(y)`` the split's mean, and the result is the mean and the
population std of the split scores. (torchmetrics shuffles without a seed and uses the unbiased std,
so its numbers differ.) IS depends on N, the split count, the order and the weights: report them.
Pass the logits the reference uses (torch-fidelity: ``logits_unbiased``, 1008 classes), not
probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from eeg2img.errors import UserError
from metrics.base import Metric, as_features, cat_state


def inception_score_per_split(logits: Any, splits: int = 10, shuffle: bool = True, seed: int = 2020) -> np.ndarray:
    """The score of each split (float64 array of length ``splits``)."""
    x = as_features(logits, "logits")
    n = len(x)
    if not 1 <= splits <= n:
        raise UserError(f"inception score splits={splits} with {n} samples: need 1 <= splits <= N; "
                        "lower splits or evaluate more samples")
    if shuffle:
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n)).to(x.device)]
    p, log_p = x.softmax(dim=1), x.log_softmax(dim=1)
    scores = np.empty(splits)
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        log_q = p[lo:hi].mean(dim=0, keepdim=True).log()
        scores[i] = (p[lo:hi] * (log_p[lo:hi] - log_q)).sum(dim=1).mean().exp().item()
    return scores


def inception_score_from_logits(logits: Any, splits: int = 10, shuffle: bool = True,
                                seed: int = 2020) -> tuple[float, float]:
    """Inception Score (mean, population std over splits)."""
    scores = inception_score_per_split(logits, splits, shuffle, seed)
    return float(scores.mean()), float(scores.std())


def inception_score_of_resamples(logits: Any, indices: Any, splits: int = 10, shuffle: bool = True,
                                 seed: int = 2020) -> np.ndarray:
    """IS (mean over splits) of every resample at once: value ``k`` is the IS of rows ``indices[k]``.

    The same float64 arithmetic as :func:`inception_score_per_split` on each resample, batched over
    resamples (the bootstrap CI of a set-level IS). The seeded shuffle depends only on N, so it is one
    permutation of the columns of ``indices``.
    """
    x = as_features(logits, "logits")
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    if idx.ndim != 2:
        raise UserError(f"indices: shape {tuple(idx.shape)}; pass (n_boot, n) row indices")
    n = idx.shape[1]
    if not 1 <= splits <= n:
        raise UserError(f"inception score splits={splits} with {n} samples: need 1 <= splits <= N; "
                        "lower splits or evaluate more samples")
    if shuffle:
        idx = idx[:, torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    chunk = max(1, int(2e8 // (3 * 8 * n * x.shape[1])))
    out = []
    for part in idx.split(chunk):
        xs = x[part]
        p, log_p = xs.softmax(dim=2), xs.log_softmax(dim=2)
        scores = []
        for i in range(splits):
            lo, hi = i * n // splits, (i + 1) * n // splits
            log_q = p[:, lo:hi].mean(dim=1, keepdim=True).log()
            scores.append((p[:, lo:hi] * (log_p[:, lo:hi] - log_q)).sum(dim=2).mean(dim=1).exp())
        out.append(torch.stack(scores, dim=1).mean(dim=1))
    return torch.cat(out).numpy() if out else np.zeros(0)


class InceptionScore(Metric):
    """Streaming IS: ``update(logits)``, then ``compute() -> (mean, std)``; ``split_scores`` after compute."""

    name = "inception_score"
    default_n_boot = 200

    def __init__(self, splits: int = 10, shuffle: bool = True, seed: int = 2020,
                 protocol: str = "isc-torch-fidelity-splits10-seed2020") -> None:
        super().__init__()
        self.splits, self.shuffle, self.seed = splits, shuffle, seed
        self.protocol = protocol
        self.add_state("logits", [])
        self.split_scores: np.ndarray | None = None

    def update(self, logits: Any) -> None:
        self.logits.append(as_features(logits, "logits", dtype=torch.float64).cpu())

    def compute(self) -> tuple[float, float]:
        self.split_scores = inception_score_per_split(cat_state(self.logits, "IS logits"), self.splits,
                                                      self.shuffle, self.seed)
        return float(self.split_scores.mean()), float(self.split_scores.std())

    @property
    def n(self) -> int:
        return sum(len(x) for x in self.logits)

    def _set_ci(self, n_boot: int, seed: int) -> tuple[float, float]:
        from metrics.stats import bootstrap_set_metric

        fn = lambda x: inception_score_from_logits(x, self.splits, self.shuffle, self.seed)[0]
        return bootstrap_set_metric(fn, torch.cat(self.logits).numpy(), n_boot=n_boot, seed=seed)

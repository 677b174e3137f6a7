"""The N-way protocol shared by identification (MindEye) and classification accuracy (MinD-Vis).

Each sample has a score per candidate and one target candidate. An N-way trial draws ``n_way − 1``
distractors uniformly without replacement from the other candidates and succeeds when fewer than
``top_k`` of them *beat* the target. A distractor beats the target unless its score is strictly lower
(MindEye's ``r < congruent``): ties and NaN count against the target.

``draws`` trials are run per sample from one ``np.random.default_rng(seed)``: for sample ``i`` the
generator yields a ``(draws, n_candidates − 1)`` block of uniform keys and each trial takes the
``n_way − 1`` smallest keys of its row (a uniform random subset). Samples are processed in order,
in chunks, so the stream is the same as a per-sample loop. ``draws=None`` gives the exact
expectation instead (the number of beating distractors drawn is hypergeometric).
"""

from __future__ import annotations

import numpy as np

from eeg2img.errors import UserError

# Keys held in memory at once when sampling distractors (float64: 32 MiB).
_KEYS_PER_CHUNK = 1 << 22


def beats_target(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(N, C−1)`` bool: does each non-target candidate (in column order) beat the sample's target?"""
    n, c = scores.shape
    rows = np.arange(n)
    beats = ~(scores < scores[rows, target][:, None])
    keep = np.ones((n, c), dtype=bool)
    keep[rows, target] = False
    return beats[keep].reshape(n, c - 1)


def nway_success(scores: np.ndarray, target: np.ndarray, n_way: int, top_k: int = 1, draws: int | None = 50,
                 seed: int = 0) -> np.ndarray:
    """Per-sample success rate (float64 (N,)) of the N-way top-k protocol; see the module docstring."""
    beats = beats_target(np.asarray(scores, dtype=np.float64), np.asarray(target, dtype=np.int64))
    n, m = beats.shape
    if not 2 <= n_way <= m + 1:
        raise UserError(f"n_way={n_way}: must be between 2 and the number of candidates ({m + 1}); "
                        "lower n_way")
    if not 1 <= top_k <= n_way:
        raise UserError(f"top_k={top_k}: must be between 1 and n_way ({n_way}); lower top_k")
    if draws is None:
        from scipy.stats import hypergeom  # heavy import, only this path needs it

        return hypergeom.cdf(top_k - 1, m, beats.sum(axis=1), n_way - 1).astype(np.float64)
    if draws < 1:
        raise UserError(f"draws={draws}: need at least 1 (or None for the exact expectation)")
    rng = np.random.default_rng(seed)
    chunk = max(1, _KEYS_PER_CHUNK // (draws * m))
    out = np.empty(n)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        keys = rng.random((hi - lo, draws, m))
        picked = np.argpartition(keys, n_way - 2, axis=2)[..., : n_way - 1]
        n_beating = np.take_along_axis(beats[lo:hi, None, :], picked, axis=2).sum(axis=2)
        out[lo:hi] = (n_beating < top_k).mean(axis=1)
    return out

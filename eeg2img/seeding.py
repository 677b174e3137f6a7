"""Seeds: one per-trial seed rule for every method, and torch seeded without touching the caller's state.

A trial's seed is derived from (method seed, trial id) only, so a trial gets the same random draw
whatever else is in its batch, its fold or its order. The rule is part of every cell's key
(``TRIAL_SEED_RULE`` in :meth:`eeg2img.grid.runner.FoldJob.inputs`): changing it re-runs the cells.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence

TRIAL_SEED_RULE = "sha256('<seed>:<trial id>')[:8] little-endian mod 2**63"


def trial_seed(seed: int, trial_id: str) -> int:
    """The seed of one trial: ``TRIAL_SEED_RULE`` (fits a torch and a numpy generator)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{trial_id}".encode()).digest()[:8], "little") % (2**63)


def trial_seeds(seed: int, trial_ids: Sequence[str]) -> list[int]:
    return [trial_seed(seed, str(t)) for t in trial_ids]


@contextlib.contextmanager
def torch_seeded(seed: int) -> Iterator[None]:
    """Seed torch inside the block and restore the caller's global RNG state afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield

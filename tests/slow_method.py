"""A deliberately slow floor method, importable by a subprocess the resume test kills."""

from __future__ import annotations

import os
import time

import numpy as np

from eeg2img.methods import Method, register


class SlowMeanImage(Method):
    """Reconstructs the mean training image, after a pause long enough to be killed in."""

    name = "test-slow-mean"

    def __init__(self, delay: float = 0.0, seed: int = 0, pid_file: str = ""):
        self.delay = delay
        self.seed = seed
        self.pid_file = pid_file  # when set, reconstruct appends its process id there first (a test kills it)

    def fit(self, train, val=None):
        import torch

        threads_seen.append(torch.get_num_threads())
        self.mean_ = train.load_images().astype(np.float64).mean(axis=0)
        return self

    def reconstruct(self, test):
        if self.pid_file:
            with open(self.pid_file, "a") as f:
                f.write(f"{os.getpid()}\n")
        time.sleep(self.delay)
        calls.append(len(test))
        return np.repeat(np.round(self.mean_)[None].astype(np.uint8), len(test), axis=0)


calls: list[int] = []
threads_seen: list[int] = []
register("test-slow-mean", SlowMeanImage)

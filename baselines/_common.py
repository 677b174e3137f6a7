"""What every baseline shares: data checks, stimuli at one size, seeding, the cache folder.

Kept free of model code so the floors import nothing heavier than numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError
from eeg2img.methods import Method
from eeg2img.params import check_optional_int, check_seed


class SeededMethod(Method):
    """A baseline whose common parameters are ``seed`` and ``image_size`` (the floors, the retrievals)."""

    def check_params(self) -> None:
        check_seed(self.name, self.seed)
        check_optional_int(self.name, "image_size", self.image_size, minimum=1)

    def _check_fit(self, train: EEGDataset, need_classes: int = 1) -> None:
        self.check_params()
        check_trainable(self.name, train, need_classes)

# ------------------------------------------------------------------------------------ data checks


def check_trainable(method: str, train: EEGDataset, need_classes: int = 1) -> None:
    if train.blinded:
        raise UserError(f"{method}: fit() got a blinded (test) view; pass the training subset")
    if len(train) == 0:
        raise UserError(f"{method}: the training set of {train.name} is empty; choose a split with training trials")
    if not np.all(np.isfinite(train.eeg)):
        raise UserError(f"{train._where()}: training EEG contains NaN or inf; clean or drop those trials")
    n_classes = len(np.unique(train.labels))
    if n_classes < need_classes:
        raise UserError(f"{method}: training set has {n_classes} class(es), needs ≥ {need_classes}; widen the split")


def check_fitted(method: str, fitted: bool) -> None:
    if not fitted:
        raise UserError(f"{method}: reconstruct() called before fit(); call fit(train) first")


def check_test_eeg(method: str, test: EEGDataset, n_channels: int, n_samples: int) -> np.ndarray:
    eeg = np.asarray(test.eeg, dtype=np.float32)
    if eeg.shape[1:] != (n_channels, n_samples):
        raise UserError(f"{test._where()}: test EEG is {eeg.shape[1]}×{eeg.shape[2]} (channels×samples) but "
                        f"{method} was fitted on {n_channels}×{n_samples}; use the same preprocessing")
    if not np.all(np.isfinite(eeg)):
        raise UserError(f"{test._where()}: test EEG contains NaN or inf; clean or drop those trials")
    return eeg


# ------------------------------------------------------------------------------------ stimuli


def distinct_training_images(train: EEGDataset, image_size: int | None) -> tuple[list[str], np.ndarray]:
    """Each training stimulus once (first-seen order) as uint8 ``(M, H, W, 3)``."""
    ids = train.unique_image_ids()
    return ids, train.load_images(ids, size=image_size)


def trial_image_rows(train: EEGDataset, ids: Sequence[str]) -> np.ndarray:
    """Row of each training trial's stimulus in ``ids`` (so per-trial images need not be reloaded)."""
    row = {k: n for n, k in enumerate(ids)}
    return np.array([row[str(i)] for i in train.image_ids], dtype=np.int64)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Square bicubic resize of uint8 ``(N, H, W, 3)`` (the same filter as ``read_rgb``)."""
    if images.shape[1:3] == (size, size):
        return images
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC)) for im in images])


def unit_rows(x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Each row scaled to unit L2 norm (a zero row stays zero), computed in ``dtype``."""
    x = np.asarray(x, dtype=dtype)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float images in [0, 255] to uint8 with rounding (truncation would darken every mean by half a level)."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ cache


def cache_root(method: Any) -> Path:
    """The runner's per-fold cache dir, else ``$EEG2IMG_CACHE``, else ``~/.cache/eeg2img``."""
    from eeg2img.digest import cache_root as root

    return root(getattr(method, "cache_dir", None) or None)

"""Floors: what a method scores without reading the EEG at all.

- ``floor-random``: a training stimulus drawn at random for each trial (seeded per trial id).
- ``floor-mean``: the pixel mean of the distinct training stimuli, for every trial.
- ``floor-class-mean``: the pixel mean of the most frequent training class's distinct stimuli (ties go to the
  lowest class index), for every trial — the "always guess the majority class" floor.

"Distinct" means each training image counts once however many trials (subjects, repetitions) showed it.
"""

from __future__ import annotations

import numpy as np

from baselines._common import (
    SeededMethod,
    check_fitted,
    distinct_training_images,
    to_uint8,
)
from eeg2img.datasets.base import EEGDataset
from eeg2img.methods import register
from eeg2img.seeding import trial_seeds


class _Floor(SeededMethod):
    def __init__(self, seed: int = 0, image_size: int | None = None):
        self.seed = seed
        self.image_size = image_size

    def _fitted(self) -> bool:
        return hasattr(self, "image_")


@register("floor-random")
class RandomTrainingImage(_Floor):
    """A random training stimulus per trial."""

    name = "floor-random"

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> RandomTrainingImage:
        self._check_fit(train)
        self.image_ids_, self.images_ = distinct_training_images(train, self.image_size)
        return self

    def _fitted(self) -> bool:
        return hasattr(self, "images_")

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        check_fitted(self.name, self._fitted())
        picks = [s % len(self.images_) for s in trial_seeds(self.seed, test.trial_ids)]
        self.picked_ids_ = [self.image_ids_[p] for p in picks]
        return self.images_[picks].copy()


@register("floor-mean")
class MeanTrainingImage(_Floor):
    """The mean training stimulus for every trial."""

    name = "floor-mean"

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> MeanTrainingImage:
        self._check_fit(train)
        _, images = distinct_training_images(train, self.image_size)
        self.image_ = to_uint8(images.mean(axis=0, dtype=np.float64))
        return self

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        check_fitted(self.name, self._fitted())
        return np.repeat(self.image_[None], len(test), axis=0)


@register("floor-class-mean")
class MajorityClassMeanImage(_Floor):
    """The mean stimulus of the most frequent training class for every trial."""

    name = "floor-class-mean"

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> MajorityClassMeanImage:
        self._check_fit(train)
        labels = np.asarray(train.labels)
        counts = np.bincount(labels, minlength=train.n_classes)
        self.class_ = int(np.argmax(counts))  # argmax returns the first maximum: ties → lowest index
        ids = [str(i) for i in dict.fromkeys(np.asarray(train.image_ids)[labels == self.class_])]
        images = train.load_images(ids, size=self.image_size)
        self.image_ = to_uint8(images.mean(axis=0, dtype=np.float64))
        return self

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        check_fitted(self.name, self._fitted())
        return np.repeat(self.image_[None], len(test), axis=0)

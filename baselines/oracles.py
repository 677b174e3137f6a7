"""Oracles: upper bounds that are handed the truth, run through NeuroImagen's own diffusion stage.

- ``oracle-caption``: the true class's label caption ("an image of a <class>") → caption embedding →
  text-to-image. What NeuroImagen's "label caption" variant would reach with a perfect EEG → embedding
  regressor.
- ``oracle-saliency``: the true stimulus, downsampled to the saliency resolution and Gaussian-blurred (a
  perfect coarse saliency map), as the img2img init image, with the true label caption. What the full
  NeuroImagen would reach with perfect saliency and caption decoding.

Both set ``is_oracle = True``: they receive the unblinded test view and are marked as oracles in
every table. Neither trains anything of its own; ``fit`` only obtains the shared diffusion stage.
"""

from __future__ import annotations

import inspect

import numpy as np

from baselines._common import resize_images
from baselines.shared_stages import DiffusionBaseline
from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError
from eeg2img.methods import register
from eeg2img.params import check_float, check_int, takes_settings
from reconstruct.pipeline import NeuroImagen
from reconstruct.stages import QUICK_DIFFUSION, DiffusionSettings

# NeuroImagen's saliency resolution: the oracle's map is what a perfect saliency GAN would give it.
SALIENCY_SIZE: int = inspect.signature(NeuroImagen).parameters["saliency_size"].default


def _check_unblinded(method: str, test: EEGDataset) -> None:
    if test.blinded:
        raise UserError(f"{method}: an oracle needs the unblinded test view (it reads the true labels/stimuli); "
                        "the runner passes it for methods with is_oracle=True")


def saliency_map(images: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Stimuli → coarse saliency maps: downsample to ``size`` px, then Gaussian blur (σ in those pixels)."""
    from scipy.ndimage import gaussian_filter

    small = resize_images(images, size).astype(np.float64)
    if sigma > 0:
        small = gaussian_filter(small, sigma=(0, sigma, sigma, 0), mode="nearest")
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


@register("oracle-caption", quick=QUICK_DIFFUSION)
@takes_settings(DiffusionSettings, exclude=("strength",))  # text-to-image: no init image to re-noise
class CaptionOracle(DiffusionBaseline):
    """The true label caption, text-to-image through the shared diffusion model."""

    name = "oracle-caption"
    is_oracle = True

    def __init__(self, seed: int = 0, image_size: int | None = None):
        self.seed = seed
        self.image_size = image_size

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> CaptionOracle:
        self._fit_stage(train)
        return self

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        stage = self._check_fitted()
        _check_unblinded(self.name, test)
        embeds = stage.embed(test.label_captions())
        return self._to_stimulus_size(stage.generate(embeds, None, self._seeds(test)))


@register("oracle-saliency", quick=QUICK_DIFFUSION)
@takes_settings(DiffusionSettings)
class SaliencyOracle(DiffusionBaseline):
    """The true stimulus's blurred low-resolution map plus its label caption, img2img."""

    name = "oracle-saliency"
    is_oracle = True

    def __init__(self, seed: int = 0, image_size: int | None = None, saliency_size: int = SALIENCY_SIZE,
                 blur_sigma: float = 1.0):
        self.seed = seed
        self.image_size = image_size
        self.saliency_size = saliency_size
        self.blur_sigma = blur_sigma

    def check_params(self) -> None:
        super().check_params()
        check_int(self.name, "saliency_size", self.saliency_size, minimum=2)
        check_float(self.name, "blur_sigma", self.blur_sigma, low=0.0, low_open=False)

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> SaliencyOracle:
        self._fit_stage(train)
        return self

    def saliency_maps(self, test: EEGDataset) -> np.ndarray:
        _check_unblinded(self.name, test)
        return saliency_map(test.load_images(size=self.image_size), self.saliency_size, self.blur_sigma)

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        stage = self._check_fitted()
        init = self.saliency_maps(test)
        embeds = stage.embed(test.label_captions())
        return self._to_stimulus_size(stage.generate(embeds, init, self._seeds(test)))

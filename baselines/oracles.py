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

from pathlib import Path

import numpy as np

from baselines._common import check_float, check_int, resize_images
from baselines.shared_stages import DIFFUSION_DEFAULTS, SALIENCY_SIZE, DiffusionBaseline, neuroimagen_quick
from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError
from eeg2img.methods import register

_D = DIFFUSION_DEFAULTS


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


@register("oracle-caption", quick=neuroimagen_quick(DIFFUSION_DEFAULTS))
class CaptionOracle(DiffusionBaseline):
    """The true label caption, text-to-image through the shared diffusion model."""

    name = "oracle-caption"
    is_oracle = True

    def __init__(self, seed: int = 0, image_size: int | None = None, sd_path: str | Path | None = _D["sd_path"],
                 steps: int = _D["steps"], guidance_scale: float = _D["guidance_scale"],
                 demo_size: int = _D["demo_size"], demo_vae_steps: int = _D["demo_vae_steps"],
                 demo_unet_steps: int = _D["demo_unet_steps"], batch_size: int = _D["batch_size"],
                 device: str = _D["device"]):
        self._set_diffusion_params(seed, image_size, sd_path=sd_path, steps=steps, guidance_scale=guidance_scale,
                                   demo_size=demo_size, demo_vae_steps=demo_vae_steps,
                                   demo_unet_steps=demo_unet_steps, batch_size=batch_size, device=device)

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> CaptionOracle:
        self._fit_stage(train)
        return self

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        stage = self._check_fitted()
        _check_unblinded(self.name, test)
        embeds = stage.embed(test.label_captions())
        return self._to_stimulus_size(stage.generate(embeds, None, self._seeds(test)))


@register("oracle-saliency", quick=neuroimagen_quick(DIFFUSION_DEFAULTS))
class SaliencyOracle(DiffusionBaseline):
    """The true stimulus's blurred low-resolution map plus its label caption, img2img."""

    name = "oracle-saliency"
    is_oracle = True

    def __init__(self, seed: int = 0, image_size: int | None = None, saliency_size: int = SALIENCY_SIZE,
                 blur_sigma: float = 1.0, sd_path: str | Path | None = _D["sd_path"], strength: float = _D["strength"],
                 steps: int = _D["steps"], guidance_scale: float = _D["guidance_scale"],
                 demo_size: int = _D["demo_size"], demo_vae_steps: int = _D["demo_vae_steps"],
                 demo_unet_steps: int = _D["demo_unet_steps"], batch_size: int = _D["batch_size"],
                 device: str = _D["device"]):
        self._set_diffusion_params(seed, image_size, sd_path=sd_path, strength=strength, steps=steps,
                                   guidance_scale=guidance_scale, demo_size=demo_size, demo_vae_steps=demo_vae_steps,
                                   demo_unet_steps=demo_unet_steps, batch_size=batch_size, device=device)
        self.saliency_size = check_int(self.name, "saliency_size", saliency_size, minimum=2)
        self.blur_sigma = check_float(self.name, "blur_sigma", blur_sigma, low=0.0, low_open=False)

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

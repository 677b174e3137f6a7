"""``latent-ridge``: direct linear regression into the diffusion model (after Takagi & Nishimoto, CVPR 2023).

Two ridge regressions from the shared EEG features (:mod:`baselines.features`):

1. EEG → the VAE latent of the stimulus (the "z" of Takagi & Nishimoto; posterior mean, scaled as SD's
   training latents);
2. EEG → the caption embedding (the "c"; the full ``(L, D)`` prompt-embeds sequence of the label caption,
   or of the descriptive caption with ``caption="blip"``).

At test time the predicted latent is decoded by the VAE into an init image, which goes through the
shared img2img stage conditioned on the predicted embedding — the same diffusion model NeuroImagen uses,
with the saliency GAN and the nonlinear regressor replaced by linear maps.
"""

from __future__ import annotations

import numpy as np

from baselines._common import check_test_eeg
from baselines.features import EEGFeatures
from baselines.ridge import RidgeMap, check_alpha
from baselines.shared_stages import DiffusionBaseline
from eeg2img.datasets.base import EEGDataset
from eeg2img.methods import register
from eeg2img.params import check_choice, check_int, takes_settings
from reconstruct.stages import QUICK_DIFFUSION, DiffusionSettings


@register("latent-ridge", quick=QUICK_DIFFUSION)
@takes_settings(DiffusionSettings)
class LatentRidge(DiffusionBaseline):
    """Ridge EEG → (VAE latent, caption embedding), decoded by img2img."""

    name = "latent-ridge"

    def __init__(self, seed: int = 0, image_size: int | None = None, n_bins: int = 10, alpha: float | None = None,
                 caption: str = "label"):
        self.seed = seed
        self.image_size = image_size
        self.n_bins = n_bins
        self.alpha = alpha
        self.caption = caption

    def check_params(self) -> None:
        super().check_params()
        check_int(self.name, "n_bins", self.n_bins)
        check_alpha(self.name, self.alpha)
        check_choice(self.name, "caption", self.caption, ("label", "blip"))

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> LatentRidge:
        stage = self._fit_stage(train)
        ids = train.unique_image_ids()
        latents = stage.encode_latents(train.load_images(ids, size=self.image_size))
        row = {k: n for n, k in enumerate(ids)}
        z = latents[[row[str(i)] for i in train.image_ids]]
        self.latent_shape_ = latents.shape[1:]
        captions = train.label_captions() if self.caption == "label" else train.captions()
        c = stage.embed(captions)
        self.embed_shape_ = c.shape[1:]
        self.features_ = EEGFeatures(self.n_bins)
        x = self.features_.fit_transform(train.eeg)
        self.latent_ridge_ = RidgeMap(self.alpha).fit(x, z.reshape(len(z), -1))
        self.embed_ridge_ = RidgeMap(self.alpha).fit(x, c.reshape(len(c), -1))
        return self

    def predict(self, test: EEGDataset) -> tuple[np.ndarray, np.ndarray]:
        """Predicted (VAE latents ``(N, c, h, w)``, prompt embeddings ``(N, L, D)``) for ``test``."""
        self._check_fitted()
        x = self.features_.transform(check_test_eeg(self.name, test, *self.eeg_shape_))
        z = self.latent_ridge_.predict(x).reshape(len(x), *self.latent_shape_)
        c = self.embed_ridge_.predict(x).reshape(len(x), *self.embed_shape_)
        return z, c

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        stage = self._check_fitted()
        z, c = self.predict(test)
        init = stage.decode_latents(z)
        return self._to_stimulus_size(stage.generate(c, init, self._seeds(test)))

"""The reference pipeline's stages, obtained through the same :class:`reconstruct.stages.StageCache` as NeuroImagen.

The oracles, ``latent-ridge`` and ``dreamdiffusion`` must decode through *the same* diffusion model as
NeuroImagen, and ``retrieval-triplet`` must retrieve with *the same* triplet encoder: otherwise a
difference in the tables could come from a different model rather than from the method. A baseline takes
the settings groups (:class:`~reconstruct.stages.DiffusionSettings`, :class:`~reconstruct.stages.EncoderSettings`)
with NeuroImagen's defaults, so at equal settings it gets the same cache keys (and the same files under
the cache dir) as a NeuroImagen run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from baselines._common import cache_root, check_fitted, check_trainable, resize_images
from eeg2img.datasets.base import EEGDataset
from eeg2img.methods import Method
from eeg2img.params import check_optional_int, check_seed, settings_of
from eeg2img.seeding import torch_seeded, trial_seeds
from reconstruct.stages import DiffusionSettings, EncoderSettings, StageCache


def shared_encoder(method: Any, train: EEGDataset):
    """NeuroImagen's triplet EEG encoder for this fold (trained once, cached), a ``TripletEEGEncoder``."""
    stages = StageCache(cache_root(method))
    with torch_seeded(method.seed):  # the stage seeds torch globally; the caller's RNG state is restored
        return stages.encoder(settings_of(EncoderSettings, method), method.seed, train)


class DiffusionStage:
    """NeuroImagen's diffusion model for this fold: generation, caption embeddings and the VAE.

    ``private=True`` gives this stage its own pipeline object (same weights, loaded separately), for a
    method that swaps in a tuned component; otherwise the in-process pipeline NeuroImagen uses is shared.
    """

    def __init__(self, method: Any, train: EEGDataset, private: bool = False, settings: DiffusionSettings | None = None):
        from eeg2img.devices import resolve_device
        from reconstruct.diffusion import Img2ImgDiffusion

        # Settings a baseline does not expose (e.g. strength for text-to-image) keep NeuroImagen's defaults;
        # ``settings`` is for a method one of whose own parameters shares a settings field's name.
        settings = settings or settings_of(DiffusionSettings, method)
        self.device = resolve_device(settings.device, method.name)
        with torch_seeded(method.seed):  # training the demo model seeds torch globally; restore the caller's
            shared = StageCache(cache_root(method)).diffusion(settings, method.seed, train)
        self.source = shared.source
        self.private = private
        self.diffusion = Img2ImgDiffusion(shared.source, settings.diffusion_config()) if private else shared
        self._settings, self._shared = settings, shared
        self._embed_cache: dict[str, np.ndarray] = {}

    # --- captions ------------------------------------------------------------------------------------
    @property
    def embedder(self):
        """The tokenizer + text encoder of the shared model's directory (memoised by NeuroImagen)."""
        return StageCache.caption_embedder(self._shared, self._settings.device)

    def embed(self, captions: Sequence[str]) -> np.ndarray:
        """``(N, L, D)`` prompt embeddings; each distinct caption is encoded once."""
        todo = sorted({c for c in captions if c not in self._embed_cache})
        if todo:
            for c, e in zip(todo, self.embedder.embed(todo)):
                self._embed_cache[c] = e
        if not captions:
            return np.zeros((0, *self.unconditional().shape), np.float32)
        return np.stack([self._embed_cache[c] for c in captions]).astype(np.float32)

    def unconditional(self) -> np.ndarray:
        """``(L, D)``: the empty caption (the negative prompt of classifier-free guidance)."""
        return self.embed([""])[0]

    # --- the model ----------------------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        return self.diffusion.image_size

    @property
    def vae(self):
        return self.diffusion.pipeline.vae

    @property
    def unet(self):
        return self.diffusion.pipeline.unet

    @property
    def scheduler_config(self):
        return self.diffusion.pipeline.scheduler.config

    @torch.no_grad()
    def encode_latents(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """uint8 stimuli → scaled VAE latents ``(N, c, h, w)`` (posterior means, as SD's training targets)."""
        from metrics.image_ops import images_to_tensor

        vae = self.vae
        x = images_to_tensor(images, self.image_size)
        out = []
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size].to(vae.device, vae.dtype)
            out.append(vae.encode(batch).latent_dist.mean.float().cpu() * vae.config.scaling_factor)
        return torch.cat(out).numpy() if out else np.zeros((0,), np.float32)

    @torch.no_grad()
    def decode_latents(self, latents: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Scaled VAE latents → uint8 images at the model's resolution."""
        from metrics.image_ops import tensor_to_images

        vae = self.vae
        z = torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32))
        out = []
        for start in range(0, len(z), batch_size):
            batch = z[start:start + batch_size].to(vae.device, vae.dtype) / vae.config.scaling_factor
            out.append(tensor_to_images(vae.decode(batch).sample.float().cpu()))
        size = self.image_size
        return np.concatenate(out) if out else np.zeros((0, size, size, 3), np.uint8)

    def generate(self, prompt_embeds: np.ndarray, init_images: np.ndarray | None, seeds: Sequence[int],
                 guided: bool = True) -> np.ndarray:
        """Text-to-image (``init_images=None``) or img2img, with classifier-free guidance against ""."""
        negative = self.unconditional() if guided else None
        return self.diffusion.generate(prompt_embeds, init_images, negative, seeds)

    def with_unet(self, unet) -> None:
        """Generate with ``unet`` (a tuned copy) instead of the shared one; needs a ``private`` stage."""
        if not self.private:
            raise RuntimeError("with_unet() on a shared diffusion stage would change it for every method")
        diffusion = self.diffusion.load()
        for pipe in (diffusion.pipeline, diffusion._txt2img):
            pipe.register_modules(unet=unet)


class DiffusionBaseline(Method):
    """A baseline that decodes through NeuroImagen's diffusion stage; subclasses add their own parameters."""

    shared_stage = "diffusion"
    uses_cuda = True

    def check_params(self) -> None:
        check_seed(self.name, self.seed)
        check_optional_int(self.name, "image_size", self.image_size, minimum=8)
        settings_of(DiffusionSettings, self).check(self.name)

    def _fit_stage(self, train: EEGDataset, private: bool = False) -> DiffusionStage:
        self.check_params()
        check_trainable(self.name, train)
        self.out_size_ = int(train.load_images(train.unique_image_ids()[:1], size=self.image_size).shape[1])
        self.eeg_shape_ = train.eeg.shape[1:]
        self.stage_ = DiffusionStage(self, train, private=private)
        return self.stage_

    def _check_fitted(self) -> DiffusionStage:
        check_fitted(self.name, hasattr(self, "stage_"))
        return self.stage_

    def _seeds(self, test: EEGDataset) -> list[int]:
        # NeuroImagen's per-trial seeds: both start from the same noise, so paired comparisons are fair.
        return trial_seeds(self.seed, test.trial_ids)

    def _to_stimulus_size(self, images: np.ndarray) -> np.ndarray:
        return resize_images(images, self.out_size_)

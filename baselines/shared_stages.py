"""The reference pipeline's stages, obtained exactly as NeuroImagen obtains them, so a fold trains each once.

The oracles, ``latent-ridge`` and ``dreamdiffusion`` must decode through *the same* diffusion model as
NeuroImagen, and ``retrieval-triplet`` must retrieve with *the same* triplet encoder: otherwise a
difference in the tables could come from a different model rather than from the method. This module
asks :class:`reconstruct.pipeline.NeuroImagen` for its stages with the baseline's settings, which gives
the same cache keys (and the same files under the cache dir) as a NeuroImagen run with those settings.

Everything that reaches into ``reconstruct`` lives here, so a change of its API is fixed in one place.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines._common import (
    cache_root,
    check_choice,
    check_fitted,
    check_float,
    check_int,
    check_optional_size,
    check_seed,
    check_trainable,
    resize_images,
)
from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError
from eeg2img.methods import Method
from eeg2img.seeding import torch_seeded, trial_seeds


def neuroimagen_defaults(keys: Sequence[str]) -> dict[str, Any]:
    """NeuroImagen's constructor defaults for ``keys``: read from its signature, so they cannot drift apart."""
    from reconstruct.pipeline import NeuroImagen  # light: numpy and eeg2img only

    params = inspect.signature(NeuroImagen.__init__).parameters
    return {k: params[k].default for k in keys}


# The settings of the shared stages, defaulting to NeuroImagen's: a baseline left at these shares its cache
# entries (the sampler settings too, so that a table compares decoders rather than samplers).
DIFFUSION_DEFAULTS: dict[str, Any] = neuroimagen_defaults(
    ("sd_path", "strength", "steps", "guidance_scale", "demo_size", "demo_vae_steps", "demo_unet_steps",
     "batch_size", "device"))
ENCODER_DEFAULTS: dict[str, Any] = neuroimagen_defaults(
    ("encoder", "lstm_readout", "embed_dim", "margin", "mining", "encoder_epochs", "device"))
SALIENCY_SIZE: int = neuroimagen_defaults(("saliency_size",))["saliency_size"]


def neuroimagen_quick(keys: Sequence[str], **extra: Any) -> dict[str, Any]:
    """The quick-demo settings NeuroImagen registers for the shared stages (so quick runs share its cache too)."""
    from eeg2img.methods import quick_params

    shared = quick_params("neuroimagen")  # imports reconstruct, which registers them
    return {**{k: shared[k] for k in keys if k in shared}, **extra}


def check_diffusion_params(method: str, params: dict[str, Any]) -> None:
    """One-line UserErrors at construction time instead of deep inside ``fit``."""
    unknown = sorted(set(params) - set(DIFFUSION_DEFAULTS))
    if unknown:
        raise TypeError(f"unexpected diffusion parameter(s) {unknown}")
    p = {**DIFFUSION_DEFAULTS, **params}
    if p["sd_path"] is not None and not isinstance(p["sd_path"], str | Path):
        raise UserError(f"{method}: sd_path={p['sd_path']!r} is invalid; pass a Stable Diffusion directory or None")
    check_float(method, "strength", p["strength"], low=0.0, high=1.0)
    check_int(method, "steps", p["steps"])
    check_float(method, "guidance_scale", p["guidance_scale"], low=0.0, low_open=False)
    check_int(method, "demo_size", p["demo_size"], minimum=8)
    check_int(method, "demo_vae_steps", p["demo_vae_steps"], minimum=0)
    check_int(method, "demo_unet_steps", p["demo_unet_steps"], minimum=0)
    check_int(method, "batch_size", p["batch_size"])
    check_device(method, p["device"])


def check_device(method: str, device: Any) -> str:
    from eeg2img.devices import resolve_device

    if not isinstance(device, str):
        raise UserError(f"{method}: device={device!r} is invalid; pass 'auto', 'cpu' or 'cuda[:N]'")
    resolve_device(device, method)
    return device


def check_encoder_params(method: str, params: dict[str, Any]) -> None:
    check_choice(method, "encoder", params["encoder"], ("lstm", "eegnet"))
    check_choice(method, "lstm_readout", params["lstm_readout"], ("mean", "last"))
    check_int(method, "embed_dim", params["embed_dim"])
    check_float(method, "margin", params["margin"], low=0.0, low_open=False)
    check_choice(method, "mining", params["mining"], ("semihard", "batch-all"))
    check_int(method, "encoder_epochs", params["encoder_epochs"])
    check_device(method, params["device"])


def diff_augment(x: torch.Tensor, policy: str, generator: torch.Generator) -> torch.Tensor:
    """NeuroImagen's DiffAugment (colour, translation, cutout), with an explicit generator."""
    from reconstruct.saliency_gan import diff_augment as augment

    return augment(x, policy, generator)


def _helper(method: Any, **params: Any):
    """A NeuroImagen configured like ``method``'s shared stages, pointed at the same cache dir."""
    from reconstruct.pipeline import NeuroImagen

    helper = NeuroImagen(seed=method.seed, image_size=getattr(method, "image_size", None), **params)
    helper.cache_dir = str(cache_root(method))
    return helper


def shared_encoder(method: Any, train: EEGDataset):
    """NeuroImagen's triplet EEG encoder for this fold (trained once, cached), a ``TripletEEGEncoder``."""
    helper = _helper(method, **{k: getattr(method, k) for k in ENCODER_DEFAULTS})
    with torch_seeded(method.seed):  # the stage seeds torch globally; the caller's RNG state is restored
        return helper.fit_encoder(train)


class DiffusionStage:
    """NeuroImagen's diffusion model for this fold: generation, caption embeddings and the VAE.

    ``private=True`` gives this stage its own pipeline object (same weights, loaded separately), for a
    method that swaps in a tuned component; otherwise the in-process pipeline NeuroImagen uses is shared.
    """

    def __init__(self, method: Any, train: EEGDataset, private: bool = False):
        from eeg2img.devices import resolve_device
        from reconstruct.diffusion import Img2ImgDiffusion

        # Settings a baseline does not expose (e.g. strength for text-to-image) take NeuroImagen's defaults.
        helper = _helper(method, **{k: getattr(method, k, v) for k, v in DIFFUSION_DEFAULTS.items()})
        self.device = resolve_device(helper.device, method.name)
        with torch_seeded(method.seed):  # training the demo model seeds torch globally; restore the caller's
            shared = helper.diffusion_for(train)
        self.source = shared.source
        self.private = private
        self.diffusion = Img2ImgDiffusion(shared.source, helper.diffusion_config()) if private else shared
        self._helper, self._shared = helper, shared
        self._embed_cache: dict[str, np.ndarray] = {}

    # --- captions ------------------------------------------------------------------------------------
    @property
    def embedder(self):
        """The tokenizer + text encoder of the shared model's directory (memoised by NeuroImagen)."""
        return self._helper.caption_embedder_for(self._shared)

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

    def _set_diffusion_params(self, seed: int, image_size: int | None, **params: Any) -> None:
        self.seed = check_seed(self.name, seed)
        self.image_size = check_optional_size(self.name, "image_size", image_size, minimum=8)
        check_diffusion_params(self.name, params)
        for k, v in params.items():
            setattr(self, k, v)

    def _fit_stage(self, train: EEGDataset, private: bool = False) -> DiffusionStage:
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

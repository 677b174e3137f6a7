"""Stage 4: latent-diffusion img2img from a saliency map and a predicted caption embedding.

Wraps diffusers' ``StableDiffusionImg2ImgPipeline`` (and ``StableDiffusionPipeline`` for the
no-init-image ablation) built *without* tokenizer or text encoder: prompts arrive as
``prompt_embeds`` predicted from EEG, the empty-caption embedding is ``negative_prompt_embeds``.

Real SD 1.x weights and the tiny demo model (:mod:`reconstruct.tiny_sd`) load through the same
:class:`Img2ImgDiffusion`, from a local directory with ``local_files_only=True`` — or from a hub id
when the machine is online.

Every trial gets its own seeded CPU ``torch.Generator``: its image does not depend on the batch it
lands in, nor on the device (noise is drawn on the CPU and moved).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from eeg2img.devices import cpu_threads
from eeg2img.errors import UserError, WeightsNotFoundError
from metrics.image_ops import images_to_tensor
from reconstruct._common import (
    batches,
    check_finite,
    make_config,
    resolve_device,
    seeded_generator,
)

REQUIRED_SUBFOLDERS = ("unet", "vae", "scheduler")
SMALL_UNET_PARAMS = 50_000_000  # SD 1.x's U-Net has 860M


@dataclass
class DiffusionConfig:
    strength: float = 0.6  # img2img: fraction of the schedule that is re-noised and denoised
    steps: int = 20  # runs int(steps * strength) denoising steps with an init image
    guidance_scale: float = 7.5
    batch_size: int = 16
    device: str = "auto"
    dtype: str = "auto"  # "auto" = fp16 on CUDA, fp32 on CPU; or "float32" / "float16" / "bfloat16"
    scheduler: str = "ddim"  # "ddim" | "stored" (the directory's own scheduler class)
    eta: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.strength <= 1.0:
            raise UserError(f"diffusion strength {self.strength}: must lie in (0, 1]")
        if self.steps < 1 or self.batch_size < 1:
            raise UserError("diffusion config: steps and batch_size must be ≥ 1")
        if self.scheduler not in ("ddim", "stored"):
            raise UserError(f"diffusion scheduler {self.scheduler!r}: use 'ddim' or 'stored'")
        if self.dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise UserError(f"diffusion dtype {self.dtype!r}: use auto, float32, float16 or bfloat16")


def _looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return (len(parts) == 2 and all(parts) and not spec.startswith((".", "~"))
            and not os.path.isabs(spec) and "\\" not in spec)


def check_sd_directory(sd_path: str | Path) -> Path | str:
    """A local SD directory with its sub-folders, or a hub id when online; else one-line WeightsNotFoundError."""
    path = Path(sd_path).expanduser()
    if path.is_dir():
        missing = [sub for sub in REQUIRED_SUBFOLDERS if not (path / sub).is_dir()]
        if missing or not (path / "model_index.json").is_file():
            what = ", ".join([f"{m}/" for m in missing] + ([] if (path / "model_index.json").is_file() else ["model_index.json"]))
            raise WeightsNotFoundError(
                f"{path}: not a complete Stable Diffusion 1.x directory (missing {what}); it needs model_index.json, "
                "unet/, vae/, scheduler/ (and text_encoder/, tokenizer/ for caption embeddings) — download e.g. "
                "stable-diffusion-v1-5 there, or pass sd_path=None for the demo-scale model")
        return path
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    if _looks_like_hub_id(str(sd_path)) and not offline:
        return str(sd_path)
    raise WeightsNotFoundError(
        f"{path}: Stable Diffusion weights not found; expected a directory with model_index.json, unet/, vae/, "
        "scheduler/, text_encoder/, tokenizer/ (a diffusers SD 1.x download), or pass sd_path=None for the demo-scale model")


class Img2ImgDiffusion:
    """SD 1.x img2img / text-to-image from embeddings; loads lazily on first use."""

    def __init__(self, sd_path: str | Path, config: DiffusionConfig | dict | None = None, **overrides):
        self.sd_path = sd_path
        self.config = make_config(DiffusionConfig, config, overrides)
        self.source = check_sd_directory(sd_path)
        self._img2img = None
        self._txt2img = None

    # --- loading --------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.device)

    @property
    def dtype(self) -> torch.dtype:
        if self.config.dtype == "auto":
            return torch.float16 if self.device.type == "cuda" else torch.float32
        return getattr(torch, self.config.dtype)

    def load(self) -> Img2ImgDiffusion:
        if self._img2img is not None:
            return self
        from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
        from diffusers.utils import logging as diffusers_logging

        # Loading bars and hints about optional packages would drown the grid's own progress bar.
        diffusers_logging.disable_progress_bar()
        diffusers_logging.set_verbosity_error()
        local = isinstance(self.source, Path)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*torch_dtype.*deprecated", category=FutureWarning)
                pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
                    str(self.source), text_encoder=None, tokenizer=None, safety_checker=None, feature_extractor=None,
                    requires_safety_checker=False, torch_dtype=self.dtype, local_files_only=local,
                    low_cpu_mem_usage=importlib.util.find_spec("accelerate") is not None,
                )
        except (OSError, ValueError) as err:
            raise WeightsNotFoundError(
                f"{self.source}: cannot load Stable Diffusion ({str(err).splitlines()[0][:160]}); it needs "
                "model_index.json, unet/, vae/, scheduler/ with weights in them") from None
        if self.config.scheduler == "ddim":
            pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
        pipe = pipe.to(self.device)
        if self.device.type == "cuda":
            from diffusers.models.attention_processor import AttnProcessor2_0

            pipe.unet.set_attn_processor(AttnProcessor2_0())  # SDPA (flash / memory-efficient kernels)
            pipe.unet.to(memory_format=torch.channels_last)
        pipe.set_progress_bar_config(disable=True)
        self._img2img = pipe
        self._txt2img = StableDiffusionPipeline(**{k: v for k, v in pipe.components.items()},
                                                requires_safety_checker=False)
        self._txt2img.set_progress_bar_config(disable=True)
        return self

    @property
    def pipeline(self):
        """The loaded ``StableDiffusionImg2ImgPipeline`` (components are swappable on it)."""
        return self.load()._img2img

    @property
    def image_size(self) -> int:
        pipe = self.pipeline
        return int(pipe.unet.config.sample_size * pipe.vae_scale_factor)

    @property
    def cross_attention_dim(self) -> int:
        return int(self.pipeline.unet.config.cross_attention_dim)

    def caption_embedder(self, device: str | torch.device = "cpu"):
        """Tokenizer + text encoder of the same directory, for training targets only."""
        from reconstruct.text_encoder import CaptionEmbedder

        return CaptionEmbedder.from_pretrained(self.source, device=device, local_files_only=isinstance(self.source, Path))

    # --- generation -------------------------------------------------------------------------------
    def generate(self, prompt_embeds: np.ndarray, init_images: np.ndarray | None = None,
                 negative_prompt_embeds: np.ndarray | None = None, seeds: Sequence[int] | None = None,
                 progress: bool | None = None) -> np.ndarray:
        """Images uint8 ``(N, S, S, 3)`` at the model's native size ``S``.

        ``prompt_embeds`` ``(N, L, D)``; ``init_images`` uint8 ``(N, h, w, 3)`` (resized to ``S``) or
        None for text-to-image; ``negative_prompt_embeds`` ``(L, D)`` or ``(N, L, D)`` enables
        classifier-free guidance with ``guidance_scale``; ``seeds`` one per trial (default 0..N-1).
        """
        cfg = self.config
        embeds = check_finite("prompt_embeds", prompt_embeds)
        if embeds.ndim != 3 or embeds.shape[-1] != self.cross_attention_dim:
            raise UserError(f"prompt_embeds: expected (N, L, {self.cross_attention_dim}), got {embeds.shape}; "
                            "use caption embeddings of this SD model's text encoder")
        n = len(embeds)
        seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != n:
            raise UserError(f"seeds: {len(seeds)} seeds for {n} trials; pass one seed per trial")
        neg = None
        if negative_prompt_embeds is not None:
            neg = check_finite("negative_prompt_embeds", negative_prompt_embeds)
            neg = np.broadcast_to(neg, embeds.shape) if neg.ndim == 2 else neg
            if neg.shape != embeds.shape:
                raise UserError(f"negative_prompt_embeds: shape {neg.shape} does not match prompt_embeds {embeds.shape}")
        size = self.image_size
        init = None
        if init_images is not None:
            if len(init_images) != n:
                raise UserError(f"init_images: {len(init_images)} images for {n} prompt embeddings")
            init = (images_to_tensor(init_images, size) + 1.0) / 2.0  # the pipeline's processor takes [0, 1]
        if n == 0:
            return np.zeros((0, size, size, 3), np.uint8)
        guidance = cfg.guidance_scale if neg is not None else 1.0
        # demo-scale models are tiny: single-threaded CPU is faster for them (see cpu_threads)
        small = sum(p.numel() for p in self.pipeline.unet.parameters()) < SMALL_UNET_PARAMS
        with cpu_threads(self.device) if small else contextlib.nullcontext():
            return self._generate(embeds, init, neg, seeds, guidance, progress)

    def _generate(self, embeds, init, neg, seeds, guidance, progress) -> np.ndarray:
        cfg = self.config
        n, size = len(embeds), self.image_size
        out = []
        for s in tqdm(list(batches(n, cfg.batch_size)), desc="diffusion", disable=None if progress is None else not progress,
                      leave=False):
            kwargs = dict(
                prompt_embeds=torch.from_numpy(np.ascontiguousarray(embeds[s])).to(self.device, self.dtype),
                negative_prompt_embeds=None if neg is None else torch.from_numpy(np.array(neg[s])).to(
                    self.device, self.dtype),
                num_inference_steps=cfg.steps, guidance_scale=guidance, eta=cfg.eta,
                generator=[seeded_generator(seed) for seed in seeds[s]], output_type="np",
            )
            with torch.inference_mode():
                if init is None:
                    result = self.load()._txt2img(height=size, width=size, **kwargs)
                else:
                    result = self.pipeline(image=init[s].to(self.device, self.dtype), strength=cfg.strength, **kwargs)
            out.append(np.clip(np.asarray(result.images, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8))
        return np.concatenate(out)

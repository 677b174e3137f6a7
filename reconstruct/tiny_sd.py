"""Demo-scale Stable Diffusion: tiny SD-1.x-format components trained here on the training stimuli.

Offline, with no downloadable weights, the diffusion stage still needs a latent diffusion model that
knows the stimuli. This module builds one from configs — ``AutoencoderKL``, ``UNet2DConditionModel``
with cross-attention, a one-layer ``CLIPTextModel`` over the CLIP BPE (see
:func:`reconstruct.text_encoder.build_clip_tokenizer`) — trains it on (image, caption) pairs, and
writes it with ``save_pretrained`` in the exact SD 1.x directory layout. :class:`Img2ImgDiffusion`
then loads it through the same code as real SD weights.

Training, in order: the VAE (L2 reconstruction + a small KL term), then the U-Net and the text
encoder jointly on the noise-prediction loss. Each image is paired with all its captions (label and
descriptive), and with the empty caption with probability ``uncond_prob`` so the model also learns
the unconditional prediction that classifier-free guidance needs. The VAE's ``scaling_factor`` is
set to 1/std of the training latents, as SD does.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from eeg2img.devices import cpu_threads, optimizer_options
from eeg2img.errors import UserError
from metrics.image_ops import images_to_tensor
from reconstruct._common import (
    fingerprint,
    make_config,
    replace_directory,
    resolve_device,
    staging_directory,
)

FORMAT_VERSION = 3  # bump when training changes, so cached models are retrained
INFO_FILE = "eeg2img_tiny_sd.json"


@dataclass
class TinySDConfig:
    image_size: int = 32
    # 2 blocks → latents at image_size / 2. A 4× VAE this small, trained this briefly, loses the
    # stimuli's colours (its reconstructions of held-out stimuli: 30 % in-domain accuracy vs 90 %).
    vae_channels: tuple[int, ...] = (16, 32)
    latent_channels: int = 4
    unet_channels: tuple[int, ...] = (16, 32, 64)  # cross-attention at latent / 2 and / 4
    attention_head_dim: int = 8
    text_dim: int = 32  # = cross_attention_dim
    text_layers: int = 1
    max_length: int = 16  # caption tokens incl. start/end (SD 1.x uses 77)
    vae_steps: int = 800
    vae_batch_size: int = 8
    vae_lr: float = 3e-3  # peak of a one-cycle schedule
    kl_weight: float = 1e-6
    foreground_weight: float = 5.0  # extra reconstruction weight on pixels unlike the background
    unet_steps: int = 600
    unet_lr: float = 2e-3
    batch_size: int = 16
    uncond_prob: float = 0.15
    min_snr_gamma: float | None = 5.0  # Min-SNR loss weighting (Hang et al. 2023): faster convergence; None = plain
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.vae_channels = tuple(int(c) for c in self.vae_channels)
        self.unet_channels = tuple(int(c) for c in self.unet_channels)
        factor = 2 ** (len(self.vae_channels) - 1)
        if self.image_size % (factor * 2 ** (len(self.unet_channels) - 1)):
            raise UserError(f"tiny SD image_size {self.image_size}: must be divisible by the VAE and U-Net downsampling")
        if any(c % 8 for c in self.vae_channels + self.unet_channels):
            raise UserError("tiny SD channels: every width must be a multiple of 8 (GroupNorm with 8 groups)")


def build_components(cfg: TinySDConfig, captions: Sequence[str]):
    """Untrained tiny VAE, U-Net, text encoder, tokenizer and DDIM scheduler (SD 1.x betas)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from reconstruct.text_encoder import build_clip_tokenizer

    torch.manual_seed(cfg.seed)
    n_vae = len(cfg.vae_channels)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n_vae,
        up_block_types=("UpDecoderBlock2D",) * n_vae, block_out_channels=cfg.vae_channels, layers_per_block=1,
        latent_channels=cfg.latent_channels, norm_num_groups=8, sample_size=cfg.image_size,
    )
    n_unet = len(cfg.unet_channels)
    unet = UNet2DConditionModel(
        sample_size=cfg.image_size // 2 ** (n_vae - 1), in_channels=cfg.latent_channels, out_channels=cfg.latent_channels,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n_unet - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n_unet - 1) + ("UpBlock2D",),
        block_out_channels=cfg.unet_channels, layers_per_block=1, cross_attention_dim=cfg.text_dim,
        attention_head_dim=cfg.attention_head_dim, norm_num_groups=8,
    )
    tokenizer = build_clip_tokenizer(list(captions) + [""], model_max_length=cfg.max_length)
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.text_dim, intermediate_size=cfg.text_dim * 4,
        num_hidden_layers=cfg.text_layers, num_attention_heads=max(1, cfg.text_dim // 16),
        max_position_embeddings=cfg.max_length, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    text_encoder = CLIPTextModel(text_config)
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return vae, unet, text_encoder, tokenizer, scheduler


def _check_inputs(images: np.ndarray, captions: Sequence[Sequence[str]]) -> list[list[str]]:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise UserError(f"tiny SD images: expected uint8 (M, H, W, 3), got {images.dtype} {images.shape}")
    if len(captions) != len(images):
        raise UserError(f"tiny SD captions: {len(captions)} caption lists for {len(images)} images; pass one list per image")
    caps = [[c] if isinstance(c, str) else [str(x) for x in c] for c in captions]
    if any(not c for c in caps):
        raise UserError("tiny SD captions: every image needs at least one caption")
    return caps


def train_tiny_sd(images: np.ndarray, captions: Sequence[Sequence[str]], out_dir: str | Path,
                  config: TinySDConfig | dict | None = None, **overrides) -> Path:
    """Train the tiny model on ``images`` (uint8, one per stimulus) and their captions; write ``out_dir``.

    ``captions[i]`` lists the captions of image ``i`` (e.g. its label and descriptive captions).
    Deterministic on CPU for a given seed. The loss curves are kept in ``eeg2img_tiny_sd.json``.
    """
    cfg = make_config(TinySDConfig, config, overrides)
    caps = _check_inputs(images, captions)
    device = resolve_device(cfg.device)
    with cpu_threads(device):
        return _train_and_write(images, caps, Path(out_dir), cfg, device)


def _train_and_write(images: np.ndarray, caps: list[list[str]], target: Path, cfg: TinySDConfig,
                     device: torch.device) -> Path:
    from diffusers import StableDiffusionPipeline

    all_caps = sorted({c for cs in caps for c in cs})
    vae, unet, text_encoder, tokenizer, scheduler = build_components(cfg, all_caps)
    x = images_to_tensor(images, cfg.image_size)
    rng = torch.Generator().manual_seed(cfg.seed)
    vae_losses = train_vae(vae, x, cfg, rng)
    with torch.no_grad():
        post = vae.encode(x.to(device)).latent_dist
        lat_mean, lat_std = post.mean.cpu(), post.std.cpu()
    # SD's convention: latents are scaled to unit variance before diffusion
    vae.register_to_config(scaling_factor=float(1.0 / lat_mean.std().clamp_min(1e-6)))
    unet_losses = train_denoiser(unet, text_encoder, tokenizer, scheduler, lat_mean, lat_std,
                                 vae.config.scaling_factor, caps, cfg, rng)

    pipe = StableDiffusionPipeline(vae=vae.cpu(), text_encoder=text_encoder.cpu(), tokenizer=tokenizer, unet=unet.cpu(),
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    tmp = staging_directory(target)
    try:
        pipe.save_pretrained(tmp)
        info = {"config": asdict(cfg), "format_version": FORMAT_VERSION, "vae_losses": vae_losses,
                "unet_losses": unet_losses, "n_images": len(x), "n_captions": len(all_caps)}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
        return replace_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def train_vae(vae, x: torch.Tensor, cfg: TinySDConfig, rng: torch.Generator) -> list[float]:
    """L2 reconstruction + ``kl_weight``·KL, one-cycle schedule; returns the loss per step."""
    device = resolve_device(cfg.device)
    vae.to(device).train()
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.vae_lr, **optimizer_options(device))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.vae_lr, total_steps=max(2, cfg.vae_steps), pct_start=0.15)
    losses = []
    for _ in tqdm(range(cfg.vae_steps), desc="tiny SD: VAE", disable=None, leave=False):
        idx = torch.randint(0, len(x), (min(cfg.vae_batch_size, len(x)),), generator=rng)
        batch = _flip(x[idx], rng).to(device)
        post = vae.encode(batch).latent_dist
        eps = torch.randn(post.mean.shape, generator=rng).to(device)
        recon = vae.decode(post.mean + post.std * eps).sample
        loss = _weighted_mse(recon, batch, cfg.foreground_weight) + cfg.kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    vae.eval().requires_grad_(False)
    return losses


def _weighted_mse(recon: torch.Tensor, target: torch.Tensor, foreground_weight: float) -> torch.Tensor:
    """MSE with extra weight on pixels far from the image's median colour.

    Stimuli with a small object on a plain background are mostly background: plain MSE teaches the
    VAE the background first and the object's colour last, and a short training run never gets there.
    """
    if foreground_weight <= 0:
        return F.mse_loss(recon, target)
    background = target.flatten(2).median(dim=2).values[:, :, None, None]
    weight = 1.0 + foreground_weight * (target - background).abs().mean(1, keepdim=True)
    return ((recon - target) ** 2 * weight).sum() / (weight.sum() * target.shape[1])


def train_denoiser(unet, text_encoder, tokenizer, scheduler, lat_mean: torch.Tensor, lat_std: torch.Tensor,
                   scaling: float, captions: list[list[str]], cfg: TinySDConfig, rng: torch.Generator) -> list[float]:
    """Joint U-Net + text-encoder training on ε-prediction (SD 1.x objective); returns the loss per step."""
    from diffusers import DDPMScheduler

    device = resolve_device(cfg.device)
    noise_sched = DDPMScheduler.from_config(scheduler.config)
    pairs = [(i, c) for i, cs in enumerate(captions) for c in cs]
    token_ids = tokenizer([c for _, c in pairs] + [""], padding="max_length", max_length=cfg.max_length,
                          truncation=True, return_tensors="pt").input_ids
    pair_image = torch.tensor([i for i, _ in pairs])
    empty = len(pairs)
    unet.to(device).train()
    text_encoder.to(device).train()
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=1e-4, **optimizer_options(device))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.unet_lr, total_steps=max(2, cfg.unet_steps), pct_start=0.1)
    t_max = noise_sched.config.num_train_timesteps
    snr = noise_sched.alphas_cumprod / (1 - noise_sched.alphas_cumprod)
    weight = torch.ones(t_max) if cfg.min_snr_gamma is None else snr.clamp(max=cfg.min_snr_gamma) / snr
    bs = min(cfg.batch_size, len(pairs))
    losses = []
    for _ in tqdm(range(cfg.unet_steps), desc="tiny SD: U-Net", disable=None, leave=False):
        pick = torch.randint(0, len(pairs), (bs,), generator=rng)
        img = pair_image[pick]
        drop = torch.rand(bs, generator=rng) < cfg.uncond_prob
        tokens = token_ids[torch.where(drop, torch.full_like(pick, empty), pick)]
        eps0 = torch.randn(lat_mean[img].shape, generator=rng)
        latents = (lat_mean[img] + lat_std[img] * eps0) * scaling
        noise = torch.randn(latents.shape, generator=rng)
        t = torch.randint(0, t_max, (bs,), generator=rng)
        noisy = noise_sched.add_noise(latents, noise, t)
        cond = text_encoder(tokens.to(device)).last_hidden_state
        pred = unet(noisy.to(device), t.to(device), encoder_hidden_states=cond).sample
        per_sample = (pred - noise.to(device)).pow(2).flatten(1).mean(1)
        loss = (per_sample * weight[t].to(device)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    unet.eval().requires_grad_(False)
    text_encoder.eval().requires_grad_(False)
    return losses


def _flip(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random horizontal flips: more VAE training views from few stimuli."""
    flip = torch.rand(len(x), generator=rng) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def tiny_sd_key(images: np.ndarray, captions: Sequence[Sequence[str]], config: TinySDConfig) -> str:
    """Cache key: the training images (pixels), their captions and the config."""
    caps = _check_inputs(images, captions)
    import diffusers

    return fingerprint(np.asarray(images), caps, asdict(config), FORMAT_VERSION, diffusers.__version__)[:20]


def cached_tiny_sd(images: np.ndarray, captions: Sequence[Sequence[str]], cache_root: str | Path,
                   config: TinySDConfig | dict | None = None, **overrides) -> Path:
    """The trained tiny model for this image set, trained only when ``cache_root`` does not hold it yet."""
    cfg = make_config(TinySDConfig, config, overrides)
    from eeg2img.atomic import build_lock

    target = Path(cache_root) / "tiny-sd" / tiny_sd_key(images, captions, cfg)
    if (target / "model_index.json").is_file():
        return target
    with build_lock(target):  # a parallel cell needing the same model waits for this one, then loads it
        if (target / "model_index.json").is_file():
            return target
        return train_tiny_sd(images, captions, target, cfg)

"""Stage 2: the saliency-map GAN ``G(z, f_θ(x))`` (NeuroImagen §3.2).

The generator turns noise plus the EEG embedding into a small, coarse image (the "saliency map"
that later seeds img2img). Losses, as in the paper:

* hinge adversarial loss, with DiffAugment (Zhao et al. 2020: colour, translation, cutout —
  differentiable, applied to real *and* fake images at the discriminator input, so the few
  training images do not let the discriminator memorise them);
* mode-seeking regulariser ``L_ms = −d_x(G(z1), G(z2)) / d_z(z1, z2)`` (Mao et al. 2019);
* ``L_SSIM = 1 − SSIM(G(z, f(x)), stimulus)``;

``L_G = α1·L_adv + α2·L_ms + α3·L_SSIM``. The discriminator is a projection discriminator
(Miyato & Koyama 2018) conditioned on the same embedding, with spectral norm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from eeg2img.errors import UserError
from metrics.image_ops import images_to_tensor, tensor_to_images
from reconstruct._common import (
    Component,
    batches,
    check_finite,
    on_config_device_threads,
    resolve_device,
    seeded_generator,
)


@dataclass
class SaliencyGANConfig:
    image_size: int = 32
    z_dim: int = 32
    cond_dim: int = 64  # width of the projected EEG embedding fed to G
    base_channels: int = 16
    epochs: int = 80
    batch_size: int = 16
    lr_g: float = 2e-3
    lr_d: float = 2e-3
    # α are not reported by the paper; with tens of training images the SSIM term must lead or the
    # adversarial and mode-seeking terms (EEG2Image: weight 1.0) keep the maps noisy.
    alpha_adv: float = 0.1  # α1
    alpha_ms: float = 0.1  # α2
    alpha_ssim: float = 1.0  # α3
    diffaugment: str = "color,translation,cutout"
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise UserError(f"saliency image_size {self.image_size}: must be a power of two ≥ 8 (e.g. 32, 64, 128)")
        unknown = set(_policy(self.diffaugment)) - set(AUGMENTS)
        if unknown:
            raise UserError(f"diffaugment {self.diffaugment!r}: unknown part(s) {sorted(unknown)}; use {sorted(AUGMENTS)}")


# --- DiffAugment (Zhao et al. 2020), with an explicit generator for reproducibility ------------------
def _rand(shape, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=generator.device if generator else x.device).to(x.device, x.dtype)


def _randint(low: int, high: int, shape, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    dev = generator.device if generator else x.device
    return torch.randint(low, high, shape, generator=generator, device=dev).to(x.device)


def _color(x, g):
    x = x + (_rand((x.size(0), 1, 1, 1), x, g) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand((x.size(0), 1, 1, 1), x, g) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand((x.size(0), 1, 1, 1), x, g) + 0.5) + mean  # contrast


def _translation(x, g, ratio: float = 0.125):
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = _randint(-sh, sh + 1, (b, 1, 1), x, g)
    ty = _randint(-sw, sw + 1, (b, 1, 1), x, g)
    gb, gx, gy = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gx = (gx + tx + 1).clamp(0, h + 1)
    gy = (gy + ty + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[gb, gx, gy].permute(0, 3, 1, 2)


def _cutout(x, g, ratio: float = 0.5):
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = _randint(0, h + (1 - ch % 2), (b, 1, 1), x, g)
    oy = _randint(0, w + (1 - cw % 2), (b, 1, 1), x, g)
    gb, gx, gy = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(ch, device=x.device),
                                torch.arange(cw, device=x.device), indexing="ij")
    gx = (gx + ox - ch // 2).clamp(0, h - 1)
    gy = (gy + oy - cw // 2).clamp(0, w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask[:, None]


AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}


def _policy(policy: str) -> list[str]:
    return [p.strip() for p in policy.split(",") if p.strip()]


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Differentiable augmentation of an image batch in [-1, 1]; gradients flow to ``x``."""
    for name in _policy(policy):
        x = AUGMENTS[name](x, generator)
    return x


# --- differentiable SSIM -----------------------------------------------------------------------------------
def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_torch(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0, win_size: int = 11,
               sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Per-image mean SSIM (Wang et al. 2004), Gaussian window, 'valid' filtering; differentiable.

    Channels are treated independently and averaged. ``data_range`` is explicit (2.0 for [-1, 1]).
    The window shrinks to the image for inputs smaller than ``win_size``.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise UserError(f"ssim: expected two (N, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    win_size = min(win_size, x.shape[-1], x.shape[-2])
    win_size -= 1 - win_size % 2  # keep it odd
    c = x.shape[1]
    w = _gaussian_window(win_size, sigma, c, x.device, x.dtype)
    filt = lambda t: F.conv2d(t, w, groups=c)  # noqa: E731
    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


# --- networks ---------------------------------------------------------------------------------------------
class Generator(nn.Module):
    def __init__(self, feat_dim: int, cfg: SaliencyGANConfig):
        super().__init__()
        n_up = int(math.log2(cfg.image_size // 4))
        chans = [cfg.base_channels * 2 ** min(2, n_up - i) for i in range(n_up + 1)]
        self.cond = nn.Sequential(nn.Linear(feat_dim, cfg.cond_dim), nn.LeakyReLU(0.2))
        self.fc = nn.Linear(cfg.z_dim + cfg.cond_dim, chans[0] * 16)
        self.c0 = chans[0]
        blocks = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1),
                       nn.BatchNorm2d(cout), nn.ReLU()]
        self.blocks = nn.Sequential(nn.BatchNorm2d(chans[0]), nn.ReLU(), *blocks)
        self.out = nn.Conv2d(chans[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.cond(feats)], 1)).view(len(z), self.c0, 4, 4)
        return torch.tanh(self.out(self.blocks(h)))


class ProjectionDiscriminator(nn.Module):
    def __init__(self, feat_dim: int, cfg: SaliencyGANConfig):
        super().__init__()
        sn = nn.utils.spectral_norm
        n_down = int(math.log2(cfg.image_size // 4))
        chans = [3] + [cfg.base_channels * 2 ** min(2, i) for i in range(n_down)]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [sn(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        width = chans[-1] * 16
        self.linear = sn(nn.Linear(width, 1))
        self.embed = sn(nn.Linear(feat_dim, width, bias=False))

    def forward(self, x: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        h = self.features(x).flatten(1)
        return self.linear(h).squeeze(1) + (self.embed(feats) * h).sum(1)


# --- the estimator ---------------------------------------------------------------------------------------
class SaliencyGAN(Component):
    """Conditional GAN from EEG embeddings to coarse stimulus-like images (uint8 in, uint8 out).

    The fitted generator is ``module_`` (also reachable as ``generator_``); the discriminator is used
    only while fitting and is not saved.
    """

    config_class = SaliencyGANConfig
    what = "saliency GAN"
    empty_history = dict

    def __init__(self, config: SaliencyGANConfig | dict | None = None, **overrides):
        super().__init__(config, **overrides)
        self.feat_dim_: int | None = None

    @property
    def generator_(self) -> Generator | None:
        return self.module_

    @on_config_device_threads
    def fit(self, features: np.ndarray, images: np.ndarray) -> SaliencyGAN:
        cfg = self.config
        feats = torch.from_numpy(check_finite("features", features))
        if feats.ndim != 2 or len(feats) != len(images):
            raise UserError(f"features: expected (N, F) with one row per image, got {tuple(feats.shape)} for {len(images)} images")
        real_all = images_to_tensor(images, cfg.image_size)
        torch.manual_seed(cfg.seed)
        device = resolve_device(cfg.device)
        self.feat_dim_ = feats.shape[1]
        gen = Generator(self.feat_dim_, cfg).to(device).train()
        disc = ProjectionDiscriminator(self.feat_dim_, cfg).to(device).train()
        opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
        aug_gen = seeded_generator(cfg.seed + 1, device)
        rng = np.random.default_rng(cfg.seed)
        hist = {k: [] for k in ("d", "adv", "ms", "ssim", "g")}
        n = len(feats)
        bs = min(cfg.batch_size, n)
        for _ in tqdm(range(cfg.epochs), desc="saliency GAN", disable=None, leave=False):
            sums = dict.fromkeys(hist, 0.0)
            order = rng.permutation(n)
            steps = 0
            for s in batches(n - n % bs if n >= 2 * bs else n, bs):
                idx = torch.from_numpy(order[s])
                f, real = feats[idx].to(device), real_all[idx].to(device)
                z = torch.randn(len(idx), cfg.z_dim, generator=aug_gen, device=device)
                # discriminator: hinge loss on augmented real and fake
                with torch.no_grad():
                    fake = gen(z, f)
                d_real = disc(diff_augment(real, cfg.diffaugment, aug_gen), f)
                d_fake = disc(diff_augment(fake, cfg.diffaugment, aug_gen), f)
                loss_d = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                # generator: two noise draws per condition for the mode-seeking term
                z2 = torch.randn(len(idx), cfg.z_dim, generator=aug_gen, device=device)
                both = gen(torch.cat([z, z2]), torch.cat([f, f]))
                fake1, fake2 = both[: len(idx)], both[len(idx):]
                adv = -disc(diff_augment(fake1, cfg.diffaugment, aug_gen), f).mean()
                d_x = (fake1 - fake2).abs().flatten(1).mean(1)
                d_z = (z - z2).abs().mean(1)
                ms = -(d_x / d_z.clamp_min(1e-8)).mean()
                ssim = 1.0 - ssim_torch(fake1, real).mean()
                loss_g = cfg.alpha_adv * adv + cfg.alpha_ms * ms + cfg.alpha_ssim * ssim
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                for k, v in zip(hist, (loss_d, adv, ms, ssim, loss_g)):
                    sums[k] += float(v.detach())
                steps += 1
            for k in hist:
                hist[k].append(sums[k] / max(1, steps))
        self.history_ = hist
        self.module_ = gen.eval()
        return self

    @on_config_device_threads
    @torch.no_grad()
    def generate_tensor(self, features: np.ndarray, seeds: Sequence[int] | None = None) -> torch.Tensor:
        """Saliency maps as float ``(N, 3, s, s)`` in [-1, 1]; one noise vector per seed (default 0..N-1)."""
        gen = self._check_fitted()
        feats = check_finite("features", features)
        if feats.ndim != 2 or feats.shape[1] != self.feat_dim_:
            raise UserError(f"features: expected (N, {self.feat_dim_}), got {feats.shape}; use the encoder the GAN was fitted with")
        seeds = list(range(len(feats))) if seeds is None else list(seeds)
        if len(seeds) != len(feats):
            raise UserError(f"seeds: {len(seeds)} seeds for {len(feats)} feature rows; pass one seed per trial")
        device = next(gen.parameters()).device
        if len(feats) == 0:
            s = self.config.image_size
            return torch.zeros(0, 3, s, s)
        z = torch.stack([torch.randn(self.config.z_dim, generator=seeded_generator(s)) for s in seeds]).to(device)
        return gen(z, torch.from_numpy(feats).to(device)).float().cpu()

    def generate(self, features: np.ndarray, seeds: Sequence[int] | None = None) -> np.ndarray:
        """Saliency maps as uint8 ``(N, s, s, 3)``."""
        return tensor_to_images(self.generate_tensor(features, seeds))

    def _meta(self) -> dict:
        return {"feat_dim": self.feat_dim_}

    def _restore(self, meta: dict) -> None:
        self.feat_dim_ = int(meta["feat_dim"])

    def _rebuild(self, meta: dict) -> Generator:
        return Generator(self.feat_dim_, self.config)

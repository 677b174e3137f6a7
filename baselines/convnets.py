"""Small DCGAN-style convnets shared by the Brain2Image-style VAE and GAN.

Both work at a square power-of-two resolution ``size`` (≥ 8): a decoder grows a 4×4 map by nearest
transposed convolutions, an encoder shrinks the image by strided 4×4 convolutions. Widths double as
the resolution halves, capped so a 64 px model stays small; neither has a hidden layer at full
resolution, which keeps a training step on a CPU in the milliseconds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from eeg2img.errors import UserError


def check_power_of_two(method: str, name: str, size: int) -> int:
    if size < 8 or 2 ** round(math.log2(size)) != size:
        raise UserError(f"{method}: {name}={size} is invalid; pass a power of two ≥ 8 (e.g. 32 or 64)")
    return size


def work_resolution(stimulus_size: int, cap: int = 64) -> int:
    """The power of two nearest the stimulus size (≥ 8, ≤ cap): the nets' working resolution."""
    return int(min(max(2 ** round(math.log2(max(stimulus_size, 1))), 8), cap))


def _widths(size: int, width: int, cap: int = 128) -> list[int]:
    # channels at 4×4, 8×8, …, size×size: ``width`` at the finest hidden map, doubling towards 4×4
    n = int(math.log2(size // 4))
    return [min(width * 2 ** (n - i), cap) for i in range(n + 1)]


class ImageDecoder(nn.Module):
    """Vector ``(B, in_dim)`` → image ``(B, 3, size, size)`` in [-1, 1] (DCGAN: stride-2 transposed convs)."""

    def __init__(self, in_dim: int, size: int, width: int = 16):
        super().__init__()
        chans = _widths(size // 2, width)
        self.stem = nn.Sequential(nn.Linear(in_dim, chans[0] * 16), nn.ReLU())
        self.c0 = chans[0]
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            blocks += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        # The last layer goes straight to RGB: a full-resolution hidden layer would cost most of the compute.
        blocks += [nn.ConvTranspose2d(chans[-1], 3, 4, stride=2, padding=1), nn.Tanh()]
        self.body = nn.Sequential(*blocks)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(v).view(len(v), self.c0, 4, 4))


class ImageEncoder(nn.Module):
    """Image ``(B, 3, size, size)`` → vector ``(B, out_dim)``; ``spectral=True`` for a GAN discriminator."""

    def __init__(self, size: int, out_dim: int, width: int = 16, spectral: bool = False):
        super().__init__()
        chans = [3] + _widths(size // 2, width)[::-1]
        sn = nn.utils.spectral_norm if spectral else (lambda m: m)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [sn(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.head = sn(nn.Linear(chans[-1] * 16, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1))

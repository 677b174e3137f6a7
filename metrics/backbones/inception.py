"""Inception-v3 with the TensorFlow 2015-12-05 weights, read from either published file format.

- clean-fid / StyleGAN2-ADA TorchScript ``inception-2015-12-05.pt``: its ``layers`` submodule maps
  ``(x − 128) / 128`` at 299×299 to pool3 and ``output.weight`` holds the 1008-way classifier;
- torch-fidelity / torchmetrics state dict ``weights-inception-2015-12-05-6726825d.pth`` for the
  TF-compatible architecture of ``FeatureExtractorInceptionV3`` (its blocks are reused here so the
  arithmetic is the same; the file itself is read with ``weights_only=True``).

One forward pass gives both the 2048-d pool3 features (FID, KID, identification) and
``logits_unbiased = pool3 · Wᵀ`` (no bias, the torch-fidelity/IS convention). The resize to 299 is a
selectable, named policy (:mod:`metrics.backbones.resize`).
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eeg2img.errors import UserError, WeightsNotFoundError
from metrics.backbones.base import Backbone, load_into, load_state_dict_file
from metrics.backbones.resize import DESCRIPTIONS, check_policy, resize_batch

INPUT_SIZE = 299


class TFInceptionV3(nn.Module):
    """torch-fidelity's TF-compatible Inception-v3 layout (same parameter names as its state dict)."""

    def __init__(self) -> None:
        from torch_fidelity.feature_extractor_inceptionv3 import (
            BasicConv2d,
            InceptionA,
            InceptionB,
            InceptionC,
            InceptionD,
            InceptionE_1,
            InceptionE_2,
        )

        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.MaxPool_1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.MaxPool_2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE_1(1280)
        self.Mixed_7c = InceptionE_2(2048)
        self.AvgPool = nn.AdaptiveAvgPool2d(output_size=(1, 1))
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``(N, 3, 299, 299)`` → pool3 ``(N, 2048)``."""
        # Spelled out (not a loop over modules) so that the module can be compiled by torch.jit.script.
        x = self.MaxPool_1(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))))
        x = self.MaxPool_2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        x = self.Mixed_6a(self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x))))
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        x = self.AvgPool(self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x))))
        return torch.flatten(x, 1)


def is_torchscript(path: str | Path) -> bool:
    """TorchScript archives carry their code; ``torch.save`` archives (and legacy pickles) do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n for n in z.namelist())


class InceptionTF(Backbone):
    """Inception-v3 (TF weights): pool3 features and unbiased logits in one pass."""

    name = "inception-tf"
    distribution_key = "pool3"
    score_logits_key = "logits_unbiased"
    identification = {"inception-tf": "pool3"}

    def __init__(self, weights: str | Path, resize: str = "clean", device=None, batch_size: int = 32,
                 channels_last: bool = True):
        from eeg2img.weights import weights_record

        super().__init__(device, batch_size)
        self.resize = check_policy(resize)
        # channels-last convolutions are ~1.5× faster on CPU (oneDNN) and on GPU; they sum in another
        # order, so features differ from the NCHW reference by ~1e-6 relative (FID agrees to ~1e-7).
        # channels_last=False reproduces torch-fidelity's features bit for bit.
        self.channels_last = bool(channels_last)
        path = Path(weights)
        if not path.is_file():
            raise WeightsNotFoundError(f"{path}: Inception weights file not found; pass inception-2015-12-05.pt or "
                                       "weights-inception-2015-12-05-6726825d.pth to --inception-weights")
        if is_torchscript(path):
            self.format = "clean-fid-torchscript"
            key = "inception-clean-fid"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # torch's TorchScript deprecation notice
                    model = torch.jit.load(str(path), map_location=self.device).eval()
                self._trunk = model.layers
                fc_weight = model.output.weight.detach()
            except (RuntimeError, AttributeError) as err:
                raise UserError(f"{path}: not the clean-fid TorchScript Inception ({type(err).__name__}); "
                                "pass the official inception-2015-12-05.pt") from None
        else:
            self.format = "torch-fidelity-state-dict"
            key = "inception-torch-fidelity"
            net = load_into(TFInceptionV3(), load_state_dict_file(str(path), "Inception-v3"), str(path),
                            "torch-fidelity's Inception-v3")
            net = net.to(self.device).eval().requires_grad_(False)
            self._trunk = net
            fc_weight = net.fc.weight.detach()
        if tuple(fc_weight.shape) != (1008, 2048):
            raise UserError(f"{path}: classifier weight has shape {tuple(fc_weight.shape)}, expected (1008, 2048); "
                            "pass the TF 2015-12-05 Inception weights")
        self._fc_weight = fc_weight.to(self.device, torch.float32)
        if self.channels_last:
            self._trunk = self._trunk.to(memory_format=torch.channels_last)
        record = weights_record(key, path)
        self.weights_path, self.weights_sha256, self.weights_official = str(path), record["sha256"], record["official"]
        self.preprocessing = f"resize={self.resize} ({DESCRIPTIONS[self.resize]}) to 299, (x-128)/128"

    def fingerprint(self) -> dict:
        return {**super().fingerprint(), "channels_last": self.channels_last, "format": self.format}

    def forward_batch(self, images: np.ndarray) -> dict[str, torch.Tensor]:
        x = resize_batch(images, self.resize, INPUT_SIZE, self.device)
        x = (x - 128) / 128
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        pool = self._trunk(x).reshape(len(x), 2048).to(torch.float32)
        # Same expression as torch-fidelity (mm with the transposed view), so the logits match bit for bit.
        return {"pool3": pool, "logits_unbiased": pool.mm(self._fc_weight.T)}


def build_inception(weights: str | Path | None = None, resize: str = "clean", device=None,
                    batch_size: int = 32, channels_last: bool = True) -> InceptionTF:
    """The Inception backbone from an explicit file, else whichever official file is found or downloaded."""
    from eeg2img.weights import find_local_weights, resolve_weights

    if weights is None:
        weights = find_local_weights("inception-clean-fid") or find_local_weights("inception-torch-fidelity")
    if weights is None:
        try:
            weights = resolve_weights("inception-torch-fidelity")
        except WeightsNotFoundError as err:
            raise WeightsNotFoundError(
                f"{err} — or use clean-fid's inception-2015-12-05.pt in the same places") from None
    return InceptionTF(weights, resize=resize, device=device, batch_size=batch_size, channels_last=channels_last)

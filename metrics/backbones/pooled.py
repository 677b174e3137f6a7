"""Globally pooled features for MindEye's Inception, EffNet-B and SwAV columns.

MindEye's ``Reconstruction_Metrics`` takes the ``avgpool`` output of each network (flattened) for the
stimulus and for its reconstruction; for Inception it reports two-way identification
(:mod:`metrics.identification`), for the other two the mean correlation distance
(:mod:`metrics.correlation_distance`):

- ``inception-tv`` — torchvision's ``inception_v3`` with ``Inception_V3_Weights.DEFAULT`` (IMAGENET1K_V1,
  ``inception_v3_google-0cc3c7bd.pth``; built as torchvision builds it for those weights:
  ``transform_input=True``, with the auxiliary head), 2048-d. Preprocessing as MindEye: [0, 1] →
  ``Resize(342, bilinear)`` → ImageNet normalisation, no crop. This is not the TF-ported Inception of
  FID (``inception-tf``, 299 px): the two give different identification numbers, so each is named.

- ``effnet-b1`` — torchvision ``efficientnet_b1`` with ``EfficientNet_B1_Weights.DEFAULT`` (IMAGENET1K_V2,
  ``efficientnet_b1-c27df63c.pth``), 1280-d. Preprocessing as MindEye: [0, 1] → ``Resize(255,
  bilinear)`` → ImageNet normalisation, no crop. Only ``features.*`` is used (the classifier may be absent).
- ``swav`` — the ResNet-50 trunk of facebookresearch/swav's ``swav_800ep_pretrain.pth.tar`` (what
  ``torch.hub.load("facebookresearch/swav:main", "resnet50")`` loads), 2048-d. That file is a plain
  state dict with every key prefixed ``module.`` and also holds the SwAV projection head and
  prototypes; there is no ``fc`` (the hub model's is random and unused here). Preprocessing as
  MindEye: [0, 1] → ``Resize(224, bilinear)`` → ImageNet normalisation.

The hub loader reads the SwAV file with ``strict=False``, which would silently leave a mistyped trunk
random; here every trunk tensor must be present (the head and prototypes are ignored by name). Both
resize to a square (MindEye's stimuli are square; ``Resize(int)`` keeps the aspect ratio otherwise),
bilinear with antialias as torchvision ≥ 0.17 does on tensors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from eeg2img.errors import UserError, WeightsNotFoundError
from metrics.backbones.alexnet import IMAGENET_MEAN, IMAGENET_STD
from metrics.backbones.base import Backbone, load_into, load_state_dict_file

SWAV_IGNORED_PREFIXES = ("projection_head.", "prototypes.", "fc.")


class PooledFeatures(Backbone):
    """A torchvision trunk whose global average pool is the feature vector (``key = "avgpool"``)."""

    weights_key = ""  # the eeg2img.weights registry entry
    size = 224  # MindEye's Resize(size) for this network
    feature_dim = 2048

    def __init__(self, weights: str | Path, device=None, batch_size: int = 32):
        from eeg2img.weights import get_spec, weights_record

        super().__init__(device, batch_size)
        self.preprocessing = (f"MindEye: [0,1] → Resize({self.size}, bilinear, antialias) → ImageNet normalise; "
                              f"avgpool ({self.feature_dim}-d)")
        path = Path(weights)
        if not path.is_file():
            spec = get_spec(self.weights_key)
            raise WeightsNotFoundError(f"{path}: {self.name} weights not found; pass {spec.filename} to "
                                       f"{spec.cli_flag} (download: {spec.url})")
        self.trunk = self.build_trunk(load_state_dict_file(str(path), self.name), str(path))
        self.trunk = self.trunk.to(self.device).eval().requires_grad_(False)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        record = weights_record(self.weights_key, path)
        self.weights_path, self.weights_sha256, self.weights_official = str(path), record["sha256"], record["official"]

    def build_trunk(self, state: dict, path: str) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_batch(self, images: np.ndarray) -> dict[str, torch.Tensor]:
        x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).contiguous().float() / 255
        x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                      antialias=True)
        return {"avgpool": self.trunk((x - self.mean) / self.std).flatten(1)}


class InceptionTorchvisionFeatures(PooledFeatures):
    name = "inception-tv"
    weights_key = "inception-torchvision"
    size = 342
    identification = {"inception-tv": "avgpool"}

    def build_trunk(self, state: dict, path: str) -> nn.Module:
        import torchvision

        net = torchvision.models.inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
        load_into(net, state, path, "torchvision Inception-v3")  # the whole file, so a wrong one fails here
        net.fc = nn.Identity()  # in eval mode forward() then returns the flattened avgpool (dropout is off)
        return net


class EffNetB1Features(PooledFeatures):
    name = "effnet-b1"
    weights_key = "effnet-b1"
    size = 255
    feature_dim = 1280
    correlation_distance = {"effnet-b1": "avgpool"}

    def build_trunk(self, state: dict, path: str) -> nn.Module:
        import torchvision

        features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        if not features:
            raise UserError(f"{path}: no features.* tensors; pass torchvision's EfficientNet-B1 state dict")
        net = torchvision.models.efficientnet_b1()
        load_into(net.features, features, path, "EfficientNet-B1 features")
        return nn.Sequential(net.features, net.avgpool)


class SwAVFeatures(PooledFeatures):
    name = "swav"
    weights_key = "swav"
    size = 224
    correlation_distance = {"swav": "avgpool"}

    def build_trunk(self, state: dict, path: str) -> nn.Module:
        import torchvision

        trunk_state = {}
        for key, value in state.items():
            key = key.removeprefix("module.")
            if not key.startswith(SWAV_IGNORED_PREFIXES):
                trunk_state[key] = value
        net = torchvision.models.resnet50()
        net.fc = nn.Identity()  # forward() then ends at the flattened avgpool
        return load_into(net, trunk_state, path, "the SwAV ResNet-50 trunk")

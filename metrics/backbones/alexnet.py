"""AlexNet features for MindEye's two-way identification: layers ``features.4`` "(2)" and ``features.11`` "(5)".

torchvision's ``alexnet-owt-7be5be79.pth`` state dict (read with ``weights_only=True``); only the
``features.*`` tensors are needed, so the classifier part may be absent. Preprocessing follows
MindEye's notebook: float [0, 1] → ``Resize(256, bilinear)`` (antialiased on tensors) → ImageNet
normalisation; both layers come out of one forward pass, flattened.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from eeg2img.errors import UserError, WeightsNotFoundError
from metrics.backbones.base import Backbone, load_into, load_state_dict_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LAYERS = {"alexnet2": 4, "alexnet5": 11}


class AlexNetFeatures(Backbone):
    name = "alexnet"
    identification = {"alexnet2": "features.4", "alexnet5": "features.11"}
    preprocessing = "MindEye: [0,1] → Resize(256, bilinear, antialias) → ImageNet normalise"

    def __init__(self, weights: str | Path, device=None, batch_size: int = 32, size: int = 256):
        import torchvision

        from eeg2img.weights import weights_record

        super().__init__(device, batch_size)
        path = Path(weights)
        if not path.is_file():
            raise WeightsNotFoundError(f"{path}: AlexNet weights not found; pass alexnet-owt-7be5be79.pth to "
                                       "--alexnet-weights")
        state = load_state_dict_file(str(path), "AlexNet")
        features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        if not features:
            raise UserError(f"{path}: no features.* tensors; pass torchvision's AlexNet state dict")
        self.features = load_into(torchvision.models.alexnet().features, features, str(path), "AlexNet features")
        self.features = self.features.to(self.device).eval().requires_grad_(False)
        self.size = int(size)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        record = weights_record("alexnet", path)
        self.weights_path, self.weights_sha256, self.weights_official = str(path), record["sha256"], record["official"]
        if self.size != 256:
            self.preprocessing = self.preprocessing.replace("256", str(self.size))

    def forward_batch(self, images: np.ndarray) -> dict[str, torch.Tensor]:
        x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).contiguous().float() / 255
        x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                            antialias=True)
        x = (x - self.mean) / self.std
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == 4:
                out["features.4"] = x.flatten(1)
            if i == 11:
                out["features.11"] = x.flatten(1)
                break
        return out

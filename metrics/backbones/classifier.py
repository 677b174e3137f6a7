"""Any torchvision ImageNet classifier from its state dict: logits for N-way top-k accuracy.

The architecture is named explicitly (``arch="resnet50"``) or read from the official file name
(``resnet50-0676ba61.pth`` → ``resnet50``). When the file is one of torchvision's published weights
its own inference transform (resize, crop, interpolation, normalisation) is used; otherwise the
standard ImageNet one (resize 256 bilinear, centre crop 224).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from eeg2img.errors import UserError, WeightsNotFoundError
from metrics.backbones.base import Backbone, load_into, load_state_dict_file


def arch_from_filename(path: Path) -> str | None:
    import torchvision

    stem = path.name.split(".")[0]
    known = set(torchvision.models.list_models(module=torchvision.models))
    candidates = [stem.rsplit("-", k)[0] for k in (1, 2)] + [stem.split("-")[0], stem.split("_swag")[0],
                                                               stem.split("_lc_swag")[0]]
    for c in candidates:
        if c in known:
            return c
    return None


def official_weights(arch: str, path: Path):
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        return None
    for w in enum:
        if w.url.rsplit("/", 1)[-1] == path.name:
            return w
    return None


class ImageNetClassifier(Backbone):
    class_logits_key = "logits"

    def __init__(self, weights: str | Path, arch: str | None = None, device=None, batch_size: int = 32):
        import torchvision
        from torchvision.transforms._presets import ImageClassification

        from eeg2img.weights import sha256_of

        super().__init__(device, batch_size)
        path = Path(weights)
        if not path.is_file():
            raise WeightsNotFoundError(f"{path}: classifier weights not found; pass a torchvision ImageNet state "
                                       "dict (e.g. resnet50-0676ba61.pth) to --classifier-weights")
        arch = arch or arch_from_filename(path)
        if arch is None or arch not in torchvision.models.list_models(module=torchvision.models):
            raise UserError(f"{path}: cannot tell the torchvision architecture from the file name; "
                            "pass --classifier-arch (e.g. resnet50, vit_h_14)")
        published = official_weights(arch, path)
        kwargs = {}
        if published is not None and "min_size" in published.meta:
            kwargs["image_size"] = max(published.meta["min_size"])  # ViT SWAG weights fix their input size
        try:
            net = torchvision.models.get_model(arch, weights=None, **kwargs)
        except TypeError:
            net = torchvision.models.get_model(arch, weights=None)
        net = load_into(net, load_state_dict_file(str(path), arch), str(path), f"torchvision {arch}")
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.transform = published.transforms() if published is not None else ImageClassification(crop_size=224)
        self.name = arch
        self.identification = {}
        self.weights_path, self.weights_sha256 = str(path), sha256_of(path)
        self.weights_official = published is not None and self.weights_sha256.startswith(
            path.stem.rsplit("-", 1)[-1])
        self.preprocessing = " ".join(repr(self.transform).split())

    def forward_batch(self, images: np.ndarray) -> dict[str, torch.Tensor]:
        x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).contiguous()
        return {"logits": self.net(self.transform(x)).float()}

"""Random weights written in each real file format, for tests and benchmarks without downloads.

The numbers such weights give mean nothing; what they prove is that the engine reads the real formats
and computes exactly what the reference libraries compute from the same file.

- :func:`write_inception_weights` — one random Inception-v3, saved both as torch-fidelity's state dict
  and as a clean-fid-style TorchScript archive (``layers`` + ``output`` + the ``forward(img,
  return_features, use_fp16, no_output_bias)`` signature);
- :func:`write_open_clip` — a tiny open_clip model config and a random checkpoint;
- :func:`write_alexnet_features`, :func:`write_classifier`, :func:`write_inception_torchvision`,
  :func:`write_effnet_b1` — torchvision state dicts;
- :func:`write_swav` — a SwAV checkpoint (``module.``-prefixed ResNet-50 trunk, projection head, prototypes).

Conv weights are He-initialised and BatchNorm statistics randomised so activations keep their scale
through the 20+ layers (PyTorch's default init shrinks them towards zero).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from metrics.backbones.inception import TFInceptionV3


def _randomise(module: nn.Module, seed: int, logit_scale: float = 3.0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(0.8 + 0.4 * torch.rand(m.num_features, generator=gen))
                m.weight.copy_(1 + 0.1 * torch.randn(m.num_features, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=gen))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * logit_scale / m.in_features ** 0.5)
                m.bias.copy_(0.1 * torch.randn(m.out_features, generator=gen))
    return module


def _uninitialised(factory) -> nn.Module:
    # Build on the meta device and allocate afterwards: the default init would be overwritten anyway.
    with torch.device("meta"):
        module = factory()
    return module.to_empty(device="cpu")


def _calibrate_batchnorm(module: nn.Module, size: int, seed: int) -> nn.Module:
    """Set BatchNorm statistics from smooth random images, so activations are centred layer by layer.

    A deep random ReLU network without this maps every image to nearly the same feature vector
    (pairwise correlation ≈ 0.9999), which would make the reference comparisons trivially pass.
    """
    gen = torch.Generator().manual_seed(seed + 1)
    x = F.interpolate(torch.rand(8, 3, 8, 8, generator=gen) * 2 - 1, size=(size, size), mode="bilinear",
                      align_corners=False)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    module.train()
    with torch.no_grad():
        module(x)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
            m.num_batches_tracked.zero_()
    return module.eval()


def random_inception(seed: int = 0) -> TFInceptionV3:
    return _calibrate_batchnorm(_randomise(_uninitialised(TFInceptionV3), seed), 299, seed)


class _Layers(nn.Module):
    def __init__(self, net: TFInceptionV3):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).reshape(-1, 2048, 1, 1)


class _CleanFidInception(nn.Module):
    """The interface of StyleGAN2-ADA's ``inception-2015-12-05.pt`` (input in [0, 255], any size)."""

    def __init__(self, net: TFInceptionV3):
        super().__init__()
        self.output = nn.Linear(2048, 1008)
        with torch.no_grad():
            self.output.weight.copy_(net.fc.weight)
            self.output.bias.copy_(net.fc.bias)
        self.layers = _Layers(net)

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        batch_size, channels, height, width = img.shape
        x = img.to(torch.float32)
        theta = torch.eye(2, 3, device=x.device).unsqueeze(0).repeat(batch_size, 1, 1)
        grid = F.affine_grid(theta, [batch_size, channels, 299, 299], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        x = (x - 128) / 128
        features = self.layers(x).reshape(-1, 2048)
        if return_features:
            return features
        logits = F.linear(features, self.output.weight) if no_output_bias else self.output(features)
        return F.softmax(logits, dim=1)


def write_inception_weights(folder: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``inception-2015-12-05.pt`` (TorchScript) and ``weights-inception-2015-12-05-6726825d.pth``
    (state dict) holding the same random weights; returns (torchscript_path, state_dict_path)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    net = random_inception(seed)
    sd_path = folder / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), sd_path)
    ts_path = folder / "inception-2015-12-05.pt"
    torch.jit.script(_CleanFidInception(net).eval()).save(str(ts_path))
    return ts_path, sd_path


TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def write_open_clip(folder: str | Path, seed: int = 0, name: str = "eeg2img-tiny-clip") -> tuple[Path, Path]:
    """A tiny open_clip model: returns (config JSON path, checkpoint path). Pass the JSON as the model."""
    import open_clip

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model(name, pretrained=None)
    ckpt = folder / f"{name}.pt"
    torch.save(model.state_dict(), ckpt)
    return config, ckpt


def write_alexnet_features(folder: str | Path, seed: int = 0) -> Path:
    """torchvision AlexNet's ``features.*`` tensors under the official file name (the classifier is not used)."""
    import torchvision

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    net = _randomise(_uninitialised(torchvision.models.alexnet), seed)
    path = folder / "alexnet-owt-7be5be79.pth"
    torch.save({k: v for k, v in net.state_dict().items() if k.startswith("features.")}, path)
    return path


def write_classifier(folder: str | Path, arch: str = "squeezenet1_1", seed: int = 0) -> Path:
    """A random torchvision classifier state dict under ``<arch>-<hash>.pth``."""
    import torchvision

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    net = _randomise(_uninitialised(lambda: torchvision.models.get_model(arch, weights=None)), seed)
    path = folder / f"{arch}-00000000.pth"
    torch.save(net.state_dict(), path)
    return path


def write_inception_torchvision(folder: str | Path, seed: int = 0) -> Path:
    """A random torchvision Inception-v3 state dict (with the auxiliary head) under the official file name."""
    import torchvision

    def build():
        return torchvision.models.inception_v3(weights=None, aux_logits=True, transform_input=True,
                                               init_weights=False)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    net = _calibrate_batchnorm(_randomise(_uninitialised(build), seed), 299, seed)
    path = folder / "inception_v3_google-0cc3c7bd.pth"
    torch.save(net.state_dict(), path)
    return path


def write_effnet_b1(folder: str | Path, seed: int = 0) -> Path:
    """A random torchvision EfficientNet-B1 state dict (features and classifier) under the official file name."""
    import torchvision

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    net = _calibrate_batchnorm(_randomise(_uninitialised(torchvision.models.efficientnet_b1), seed), 255, seed)
    path = folder / "efficientnet_b1-c27df63c.pth"
    torch.save(net.state_dict(), path)
    return path


def write_swav(folder: str | Path, seed: int = 0, drop: str | None = None) -> Path:
    """A random SwAV ResNet-50 checkpoint laid out like ``swav_800ep_pretrain.pth.tar``.

    That file is a plain state dict saved from a DistributedDataParallel model: every key starts with
    ``module.``; the trunk uses torchvision's ResNet-50 names, there is no ``fc``, and the SwAV
    projection head (2048 → 2048 → BN → ReLU → 128) and the 3000 prototypes come with it.
    ``drop`` leaves one trunk tensor out (a damaged file that torch hub's ``strict=False`` would accept).
    """
    import torchvision

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    trunk = _calibrate_batchnorm(_randomise(_uninitialised(torchvision.models.resnet50), seed), 224, seed)
    gen = torch.Generator().manual_seed(seed + 2)
    state = {f"module.{k}": v for k, v in trunk.state_dict().items() if not k.startswith("fc.") and k != drop}
    state.update({
        "module.projection_head.0.weight": torch.randn(2048, 2048, generator=gen) / 2048 ** 0.5,
        "module.projection_head.0.bias": torch.zeros(2048),
        "module.projection_head.1.weight": torch.ones(2048),
        "module.projection_head.1.bias": torch.zeros(2048),
        "module.projection_head.1.running_mean": torch.zeros(2048),
        "module.projection_head.1.running_var": torch.ones(2048),
        "module.projection_head.1.num_batches_tracked": torch.tensor(0),
        "module.projection_head.3.weight": torch.randn(128, 2048, generator=gen) / 2048 ** 0.5,
        "module.projection_head.3.bias": torch.zeros(128),
        "module.prototypes.weight": torch.randn(3000, 128, generator=gen),
    })
    path = folder / "swav_800ep_pretrain.pth.tar"
    torch.save(state, path)
    return path

"""Shared inputs of the metric-engine tests: random weights in every real file format (written once per
session) and small deterministic image sets. Each test module wraps these in its own fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np


def smooth_images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Distinct, natural-ish uint8 images: low-frequency colour fields plus a bright square."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=gen)
    x = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    imgs = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    rng = np.random.RandomState(seed)
    for img in imgs:
        s = rng.randint(size // 6, size // 3)
        y0, x0 = rng.randint(0, size - s, 2)
        img[y0:y0 + s, x0:x0 + s] = rng.randint(0, 256, 3)
    return imgs


def perturbed(images: np.ndarray, seed: int = 1, noise: int = 40) -> np.ndarray:
    rng = np.random.RandomState(seed)
    out = images.astype(np.int32) + rng.randint(-noise, noise + 1, images.shape)
    return np.clip(np.roll(out, 2, axis=2), 0, 255).astype(np.uint8)


def _build(folder: Path) -> None:
    from backbone_fixtures import (
        write_alexnet_features,
        write_classifier,
        write_inception_weights,
        write_open_clip,
    )

    write_inception_weights(folder, seed=0)
    write_open_clip(folder, seed=0)
    write_alexnet_features(folder, seed=0)
    write_classifier(folder, "squeezenet1_1", seed=0)
    (folder / "done.json").write_text(json.dumps({"ok": True}))


def fake_weights_dir(tmp_path_factory) -> SimpleNamespace:
    """Random weights in each real format, written once per test session (shared by every module)."""
    import open_clip

    folder = tmp_path_factory.getbasetemp() / "metric-weights"
    if not (folder / "done.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        _build(folder)
    clip_config = folder / "eeg2img-tiny-clip.json"
    open_clip.add_model_config(clip_config)
    return SimpleNamespace(
        folder=folder,
        torchscript=folder / "inception-2015-12-05.pt",
        state_dict=folder / "weights-inception-2015-12-05-6726825d.pth",
        clip_config=clip_config,
        clip_name="eeg2img-tiny-clip",
        clip_ckpt=folder / "eeg2img-tiny-clip.pt",
        alexnet=folder / "alexnet-owt-7be5be79.pth",
        classifier=folder / "squeezenet1_1-00000000.pth",
    )


def private_environment(tmp_path_factory):
    """Module-wide: caches in a temporary folder and no network, so no test writes to ~/.cache."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EEG2IMG_CACHE", str(tmp_path_factory.mktemp("eeg2img-cache")))
        mp.setenv("EEG2IMG_OFFLINE", "1")
        yield


def isolate(tmp_path: Path, monkeypatch) -> Path:
    """A private feature/backbone cache, empty weight caches and no network for the duration of a test."""
    monkeypatch.setenv("EEG2IMG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EEG2IMG_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("EEG2IMG_WEIGHTS", raising=False)
    monkeypatch.setattr("eeg2img.weights.cleanfid_dir", lambda: tmp_path / "cleanfid")  # not the shared /tmp
    return tmp_path / "cache"

"""In-domain backbones: a small CNN trained on a dataset's own stimuli, and a random-init proxy.

ImageNet backbones say little about synthetic stimuli (and need weights that may be unavailable
offline). ``synth-cnn`` is a small classifier trained by the project on the dataset's stimulus images
and class labels: its penultimate features feed FID/KID/identification and its logits over the
dataset's classes feed IS and N-way accuracy, so those metrics mean something offline.

Training is seeded and runs on the CPU (deterministic), takes seconds for the demo sizes, and is
cached under ``$EEG2IMG_CACHE/backbones`` keyed by the image-set hash and the configuration; the
cached file's sha256 is the backbone's weights hash in every result's provenance.

``proxy`` is the same network with seeded random weights: it only shows that the plumbing works and is
never used unless asked for explicitly.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eeg2img.errors import UserError
from metrics.backbones.base import Backbone, check_images


@dataclass(frozen=True)
class SynthCNNConfig:
    input_size: int = 32
    widths: tuple[int, ...] = (16, 32, 64)
    feature_dim: int = 128
    epochs: int = 8
    min_steps: int = 300  # small stimulus sets still get enough optimiser steps
    batch_size: int = 32
    lr: float = 1e-2
    weight_decay: float = 5e-4
    max_shift: int = 2  # random translation (px at input_size) as augmentation
    noise_std: float = 0.03  # additive pixel noise as augmentation, so blurry reconstructions still classify
    holdout_fraction: float = 0.0  # > 0: keep this share of each class's images out, report their accuracy
    seed: int = 0

    def key(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


class SmallCNN(nn.Module):
    """conv-BN-relu-pool blocks, global average pool, a feature layer and a linear classifier.

    Sized for a CPU: about 3 M multiply-adds per 32 px image, so the default set (2,000 stimuli,
    15 epochs) trains in well under a minute on two cores.
    """

    def __init__(self, n_classes: int, widths: Sequence[int] = (16, 32, 64), feature_dim: int = 128):
        super().__init__()
        layers, c_in = [], 3
        for w in widths:
            layers += [nn.Conv2d(c_in, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = w
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(c_in, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.embed(self.body(x))
        return f, self.head(f)


def to_input(images: np.ndarray, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 NHWC → float NCHW in [-1, 1] at ``size`` (antialiased bilinear)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).contiguous().float() / 127.5 - 1
    if x.shape[-2:] != (size, size):
        x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def _augment(x: torch.Tensor, config: SynthCNNConfig, gen: torch.Generator) -> torch.Tensor:
    if config.max_shift > 0:
        s = config.max_shift
        padded = nn.functional.pad(x, (s, s, s, s), mode="replicate")
        dx, dy = (int(v) for v in torch.randint(0, 2 * s + 1, (2,), generator=gen))
        x = padded[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]
    if config.noise_std > 0:
        x = x + config.noise_std * 2 * torch.randn(x.shape, generator=gen)
    return x


def _holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    train, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(fraction * len(idx))) if fraction > 0 else 0
        k = min(k, len(idx) - 1)
        held += list(idx[:k])
        train += list(idx[k:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(held, dtype=np.int64))


def train_small_cnn(images: np.ndarray, labels: np.ndarray, n_classes: int,
                    config: SynthCNNConfig = SynthCNNConfig()) -> tuple[SmallCNN, dict]:
    """Fit on the CPU with a fixed seed; returns the network and a report (train/held-out accuracy).

    Training runs in one CPU thread: the result then does not depend on the machine's core count
    (reduction order), and for tensors this small extra threads only add synchronisation — on a busy
    two-core machine two threads were measured 10× slower than one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(images, labels, n_classes, config)
    finally:
        torch.set_num_threads(threads)


def _train(images: np.ndarray, labels: np.ndarray, n_classes: int, config: SynthCNNConfig) -> tuple[SmallCNN, dict]:
    from tqdm.auto import tqdm

    images = check_images(images, "stimulus images")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(images):
        raise UserError(f"stimulus labels: {len(labels)} labels for {len(images)} images; pass one per image")
    train_idx, held_idx = _holdout_split(labels, config.holdout_fraction, config.seed)
    x_all = to_input(images, config.input_size)
    y_all = torch.from_numpy(labels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = SmallCNN(n_classes, config.widths, config.feature_dim)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(train_idx) / config.batch_size)))
    total = max(config.min_steps, config.epochs * steps_per_epoch) if config.epochs > 0 else 0
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    if total:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total)
        net.train()
        order = torch.randperm(len(x_train), generator=gen)
        pos = 0
        for _ in tqdm(range(total), desc="synth-cnn", unit="step", disable=None, leave=False):
            if pos + config.batch_size > len(order):  # reshuffle once the current pass is used up
                order, pos = torch.randperm(len(x_train), generator=gen), 0
            idx = order[pos:pos + config.batch_size]
            pos += config.batch_size
            _, logits = net(_augment(x_train[idx], config, gen))
            loss = nn.functional.cross_entropy(logits, y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.inference_mode():
        pred = net(x_all)[1].argmax(1).numpy()
    report = {"train_accuracy": float((pred[train_idx] == labels[train_idx]).mean()),
              "holdout_accuracy": float((pred[held_idx] == labels[held_idx]).mean()) if len(held_idx) else None,
              "n_train": int(len(train_idx)), "n_holdout": int(len(held_idx)), "steps": int(total)}
    return net, report


def image_set_hash(images: np.ndarray, labels: Sequence[int] | None = None,
                   class_names: Sequence[str] | None = None) -> str:
    """sha256 of an image set (shape and bytes), optionally with its labels and class names."""
    h = hashlib.sha256()
    h.update(repr((images.shape, str(images.dtype))).encode())
    h.update(np.ascontiguousarray(images).data)
    if labels is not None:
        h.update(np.asarray(labels, dtype=np.int64).tobytes())
    if class_names is not None:
        h.update(json.dumps(list(class_names)).encode())
    return h.hexdigest()


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    from eeg2img.digest import cache_root as root

    return root(cache_dir)


class InDomainCNN(Backbone):
    """A trained :class:`SmallCNN`: features (FID/KID/identification/correlation distance), logits (IS, accuracy)."""

    name = "synth-cnn"
    distribution_key = "features"
    score_logits_key = "logits"
    class_logits_key = "logits"
    identification = {"synth-cnn": "features"}
    correlation_distance = {"synth-cnn": "features"}

    def __init__(self, net: SmallCNN, class_names: Sequence[str], config: SynthCNNConfig, weights_path: str | None,
                 report: dict | None = None, device=None, batch_size: int = 128, name: str | None = None):
        from eeg2img.weights import sha256_of

        super().__init__(device, batch_size)
        if name:
            self.name = name
            self.identification = {name: "features"}
            self.correlation_distance = {name: "features"}
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.class_names = tuple(class_names)
        self.config = config
        self.report = dict(report or {})
        if weights_path is not None:
            self.weights_path, self.weights_sha256 = str(weights_path), sha256_of(weights_path)
        self.weights_official = None
        self.preprocessing = (f"resize to {config.input_size} (bilinear, antialias), x/127.5-1; "
                              f"{len(self.class_names)} classes")

    def forward_batch(self, images: np.ndarray) -> dict[str, torch.Tensor]:
        features, logits = self.net(to_input(images, self.config.input_size, self.device))
        return {"features": features, "logits": logits}

    def provenance(self) -> dict:
        return {**super().provenance(), "training": self.report, "config": self.config.key()}

    # --- building ---------------------------------------------------------------------------------
    @classmethod
    def train(cls, images: np.ndarray, labels: Sequence[int], class_names: Sequence[str],
              config: SynthCNNConfig = SynthCNNConfig(), cache_dir: str | os.PathLike | None = None,
              device=None) -> InDomainCNN:
        """Train on (images, labels) or load the cached network trained on exactly these inputs."""
        from eeg2img.atomic import build_lock, write_with

        images = check_images(images, "stimulus images")
        labels = np.asarray(labels, dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise UserError(f"stimulus labels: values must index {len(class_names)} class names; check the dataset")
        key = hashlib.sha256(json.dumps({"images": image_set_hash(images, labels, class_names),
                                         "config": config.key(), "arch": "SmallCNN-v2"}).encode()).hexdigest()
        path = cache_root(cache_dir) / "backbones" / f"synth-cnn-{key[:20]}.pt"
        cached = cls._load_cached(path, class_names, config, device)
        if cached is not None:
            return cached
        with build_lock(path):  # parallel cells evaluating the same dataset train it once
            cached = cls._load_cached(path, class_names, config, device)
            if cached is not None:
                return cached
            net, report = train_small_cnn(images, labels, len(class_names), config)
            blob = {"state_dict": net.state_dict(), "class_names": list(class_names), "report": json.dumps(report),
                    "config": json.dumps(config.key())}
            write_with(path, lambda p: torch.save(blob, p))
        return cls(net, class_names, config, path, report, device)

    @classmethod
    def _load_cached(cls, path: Path, class_names, config: SynthCNNConfig, device) -> InDomainCNN | None:
        if not path.is_file():
            return None
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            net = SmallCNN(len(class_names), config.widths, config.feature_dim)
            net.load_state_dict(blob["state_dict"])
            return cls(net, blob["class_names"], config, path, json.loads(blob["report"]), device)
        except (RuntimeError, KeyError, OSError, ValueError, EOFError):
            return None  # unreadable cache entry: retrain and overwrite it

    @classmethod
    def for_dataset(cls, dataset, config: SynthCNNConfig = SynthCNNConfig(),
                    cache_dir: str | os.PathLike | None = None, device=None, size: int | None = None) -> InDomainCNN:
        """Train on a dataset's distinct stimulus images and their class labels."""
        ids = dataset.unique_image_ids()
        first: dict[str, int] = {}
        for image_id, label in zip(dataset.image_ids, dataset.labels):
            first.setdefault(str(image_id), int(label))
        labels = np.array([first[i] for i in ids], dtype=np.int64)
        images = dataset.load_images(ids, size=size)
        return cls.train(images, labels, dataset.class_names, config, cache_dir, device)


class RandomProxy(InDomainCNN):
    """A seeded random-init :class:`SmallCNN` (plumbing checks only; its numbers mean nothing)."""

    name = "proxy"
    identification = {"proxy": "features"}
    correlation_distance = {"proxy": "features"}

    def __init__(self, n_classes: int = 10, seed: int = 0, device=None, batch_size: int = 128):
        config = SynthCNNConfig(seed=seed, epochs=0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = SmallCNN(n_classes, config.widths, config.feature_dim)
        super().__init__(net, [f"class{i}" for i in range(n_classes)], config, None, {"trained": False}, device,
                         batch_size)
        digest = hashlib.sha256()
        for t in net.state_dict().values():
            digest.update(t.detach().cpu().numpy().tobytes())
        self.weights_sha256 = digest.hexdigest()
        self.preprocessing += f"; random init seed {seed} (not trained)"

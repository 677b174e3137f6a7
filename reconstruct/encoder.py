"""Stage 1: the EEG feature extractor f_θ trained with a triplet loss (NeuroImagen §3.1).

Two backbones: the Brain2Image LSTM (Kavasidis et al. 2017 / Spampinato et al. 2017: an LSTM over
time on all channels → linear embedding; read out from the mean of its outputs by default, from the
last hidden state as in the original with ``readout="last"``) and a compact EEGNet-style CNN
(Lawhern et al. 2018). The embedding is L2-normalised so the triplet margin has a fixed scale
(squared distances lie in [0, 4]).

Triplets are mined inside each batch. Batches are class-balanced (P classes × K trials) because
random batches over 40 classes would hold almost no positive pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from eeg2img.errors import UserError
from reconstruct._common import (
    Component,
    batches,
    check_eeg,
    on_config_device_threads,
    resolve_device,
)


@dataclass
class EncoderConfig:
    kind: str = "lstm"  # "lstm" (Brain2Image) | "eegnet"
    embed_dim: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    # LSTM read-out: "mean" over the output sequence, or the "last" hidden state (Spampinato et al.'s
    # original). From a few hundred trials the mean generalises better (held-out nearest-class
    # accuracy on the synthetic set, 10 classes, 160 trials per subject: 0.52 vs 0.30).
    readout: str = "mean"
    downsample: int = 10  # temporal average pooling before the backbone (1 kHz EEG is oversampled)
    margin: float = 0.2
    mining: str = "semihard"  # "semihard" | "batch-all"
    epochs: int = 80
    batch_size: int = 64
    samples_per_class: int = 4  # K in the P×K batch
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.25
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.kind not in ("lstm", "eegnet"):
            raise UserError(f"encoder kind {self.kind!r}: unknown; use 'lstm' or 'eegnet'")
        if self.readout not in ("mean", "last"):
            raise UserError(f"encoder readout {self.readout!r}: unknown; use 'mean' or 'last'")
        if self.mining not in ("semihard", "batch-all"):
            raise UserError(f"encoder mining {self.mining!r}: unknown; use 'semihard' or 'batch-all'")
        if self.margin < 0 or self.downsample < 1 or self.embed_dim < 1:
            raise UserError("encoder config: margin must be ≥ 0, downsample ≥ 1 and embed_dim ≥ 1")


# --- triplet losses ------------------------------------------------------------------------------------
def pairwise_sq_distances(emb: torch.Tensor) -> torch.Tensor:
    sq = (emb * emb).sum(1)
    return (sq[:, None] - 2.0 * emb @ emb.T + sq[None, :]).clamp_min(0.0)


def triplet_semihard_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """``max(0, β + d(a,p) − d(a,n))`` over every positive pair, with batch-wise semi-hard negatives.

    For each (anchor, positive) the negative is the closest one *farther* than the positive
    (semi-hard, FaceNet); where none is farther, the farthest negative (TensorFlow Addons'
    ``triplet_semihard_loss`` convention). ``d`` is the squared Euclidean distance.
    """
    d = pairwise_sq_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    if not pos.any() or not neg.any():
        return embeddings.sum() * 0.0
    d_ap = d[:, :, None]  # (a, p, 1)
    d_an = d[:, None, :]  # (a, 1, n)
    farther = neg[:, None, :] & (d_an > d_ap)  # (a, p, n)
    inf = torch.finfo(d.dtype).max
    semihard = torch.where(farther, d_an.expand_as(farther), torch.full_like(farther, inf, dtype=d.dtype)).amin(2)
    easiest = torch.where(neg, d, torch.full_like(d, -inf)).amax(1, keepdim=True).expand_as(d)
    has_semihard = farther.any(2)
    d_neg = torch.where(has_semihard, semihard, easiest)
    loss = F.relu(margin + d - d_neg)
    return loss[pos].mean()


def triplet_batch_all_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over all valid triplets with a positive loss (Hermans et al. 2017 "batch all")."""
    d = pairwise_sq_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    valid = (same & ~eye)[:, :, None] & (~same)[:, None, :]
    loss = F.relu(margin + d[:, :, None] - d[:, None, :])[valid]
    active = loss > 1e-12
    return loss[active].mean() if active.any() else embeddings.sum() * 0.0


# --- backbones -------------------------------------------------------------------------------------------
class LSTMEncoder(nn.Module):
    """Brain2Image encoder: LSTM over time steps whose input is the channel vector."""

    def __init__(self, n_channels: int, cfg: EncoderConfig):
        super().__init__()
        self.lstm = nn.LSTM(n_channels, cfg.hidden_size, cfg.num_layers, batch_first=True,
                            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size, cfg.embed_dim)
        self.readout = cfg.readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, T)
        out, (h, _) = self.lstm(x.transpose(1, 2))
        return self.head(self.dropout(out.mean(1) if self.readout == "mean" else h[-1]))


class EEGNetEncoder(nn.Module):
    """EEGNet-style: temporal conv → depthwise spatial conv → separable conv → linear embedding."""

    def __init__(self, n_channels: int, n_samples: int, cfg: EncoderConfig, f1: int = 8, depth: int = 2, f2: int = 16):
        super().__init__()
        k = max(3, min(32, n_samples // 4) | 1)
        self.features = nn.Sequential(
            nn.Conv2d(1, f1, (1, k), padding=(0, k // 2), bias=False),
            nn.BatchNorm2d(f1),
            nn.Conv2d(f1, f1 * depth, (n_channels, 1), groups=f1, bias=False),
            nn.BatchNorm2d(f1 * depth),
            nn.ELU(),
            nn.AvgPool2d((1, 4), ceil_mode=True),
            nn.Dropout(cfg.dropout),
            nn.Conv2d(f1 * depth, f1 * depth, (1, 9), padding=(0, 4), groups=f1 * depth, bias=False),
            nn.Conv2d(f1 * depth, f2, 1, bias=False),
            nn.BatchNorm2d(f2),
            nn.ELU(),
            nn.AdaptiveAvgPool2d((1, 8)),
            nn.Dropout(cfg.dropout),
        )
        self.head = nn.Linear(f2 * 8, cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x[:, None]).flatten(1))


class EEGEmbedding(nn.Module):
    """Standardise per channel, pool in time, run the backbone, L2-normalise."""

    def __init__(self, n_channels: int, n_samples: int, cfg: EncoderConfig):
        super().__init__()
        self.downsample = cfg.downsample
        self.register_buffer("mean", torch.zeros(n_channels, 1))
        self.register_buffer("std", torch.ones(n_channels, 1))
        pooled = max(1, n_samples // cfg.downsample)
        self.backbone = LSTMEncoder(n_channels, cfg) if cfg.kind == "lstm" else EEGNetEncoder(n_channels, pooled, cfg)

    def forward(self, eeg: torch.Tensor) -> torch.Tensor:
        x = (eeg - self.mean) / self.std
        if self.downsample > 1:
            x = F.avg_pool1d(x, self.downsample, ceil_mode=False)
        return F.normalize(self.backbone(x), dim=1)


# --- the estimator -----------------------------------------------------------------------------------------
class TripletEEGEncoder(Component):
    """f_θ: EEG trials → unit-norm embeddings in which trials of one class lie close together."""

    config_class = EncoderConfig
    what = "EEG encoder"

    def __init__(self, config: EncoderConfig | dict | None = None, **overrides):
        super().__init__(config, **overrides)
        self.n_channels_: int | None = None
        self.n_samples_: int | None = None

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def _build(self, n_channels: int, n_samples: int) -> EEGEmbedding:
        self.n_channels_, self.n_samples_ = int(n_channels), int(n_samples)
        return EEGEmbedding(n_channels, n_samples, self.config)

    @on_config_device_threads
    def fit(self, eeg: np.ndarray, labels: np.ndarray) -> TripletEEGEncoder:
        cfg = self.config
        eeg = check_eeg(eeg)
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) != len(eeg):
            raise UserError(f"labels: {len(labels)} entries for {len(eeg)} EEG trials; pass one label per trial")
        if len(np.unique(labels)) < 2:
            raise UserError("labels: the triplet loss needs at least two classes in the training set")
        torch.manual_seed(cfg.seed)
        device = resolve_device(cfg.device)
        module = self._build(eeg.shape[1], eeg.shape[2])
        x_all = torch.from_numpy(eeg)
        module.mean.copy_(x_all.mean(dim=(0, 2))[:, None])
        module.std.copy_(x_all.std(dim=(0, 2))[:, None].clamp_min(1e-6))
        module.to(device).train()
        opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        loss_fn = triplet_semihard_loss if cfg.mining == "semihard" else triplet_batch_all_loss
        rng = np.random.default_rng(cfg.seed)
        by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        n_batches = max(1, int(np.ceil(len(eeg) / cfg.batch_size)))
        self.history_ = []
        for _ in tqdm(range(cfg.epochs), desc="triplet encoder", disable=None, leave=False):
            total = 0.0
            for _ in range(n_batches):
                idx = _pk_batch(by_class, cfg.batch_size, cfg.samples_per_class, rng)
                emb = module(x_all[idx].to(device))
                loss = loss_fn(emb, torch.from_numpy(labels[idx]).to(device), cfg.margin)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
            self.history_.append(total / n_batches)
        self.module_ = module.eval()
        return self

    def embed_tensor(self, eeg: torch.Tensor) -> torch.Tensor:
        """Differentiable embedding of a tensor batch (for joint training by other stages)."""
        return self._check_fitted()(eeg)

    @on_config_device_threads
    @torch.no_grad()
    def encode(self, eeg: np.ndarray, batch_size: int = 256) -> np.ndarray:
        module = self._check_fitted()
        eeg = check_eeg(eeg, self.n_channels_)
        device = next(module.parameters()).device
        if len(eeg) == 0:
            return np.zeros((0, self.embed_dim), np.float32)
        out = [module(torch.from_numpy(eeg[s]).to(device)).float().cpu() for s in batches(len(eeg), batch_size)]
        return torch.cat(out).numpy()

    def _meta(self) -> dict:
        return {"n_channels": self.n_channels_, "n_samples": self.n_samples_}

    @staticmethod
    def _upgrade_config(config: dict) -> dict:
        config.setdefault("readout", "last")  # saved before the option existed
        return config

    def _rebuild(self, meta: dict) -> EEGEmbedding:
        return self._build(meta["n_channels"], meta["n_samples"])


def _pk_batch(by_class: list[np.ndarray], batch_size: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """P random classes × K random trials of each (with replacement only when a class is too small)."""
    k = max(2, k)
    p = min(len(by_class), max(2, batch_size // k))
    classes = rng.choice(len(by_class), size=p, replace=False)
    picks = [rng.choice(by_class[c], size=k, replace=len(by_class[c]) < k) for c in classes]
    return np.sort(np.concatenate(picks))

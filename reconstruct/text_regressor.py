"""Stage 3: EEG features → CLIP text embedding of the caption (NeuroImagen §3.3, L2 loss).

The regression target is the full ``(L, D)`` prompt-embeds sequence of the caption (the last hidden
state of the CLIP text encoder, i.e. what SD's U-Net cross-attends to), so the prediction can be
fed to the diffusion stage as ``prompt_embeds`` directly. ``target="pooled"`` regresses the pooled
``(D,)`` embedding instead (for retrieval-style uses).

The network predicts the residual from the mean training target (its last layer starts at zero),
so an uninformative input yields the average caption rather than noise.
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
    check_finite,
    on_config_device_threads,
    resolve_device,
)


@dataclass
class TextRegressorConfig:
    target: str = "sequence"  # "sequence" (L, D) prompt embeds | "pooled" (D,)
    hidden: int = 256
    dropout: float = 0.1
    epochs: int = 150
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.target not in ("sequence", "pooled"):
            raise UserError(f"text regressor target {self.target!r}: use 'sequence' or 'pooled'")


class _MLP(nn.Module):
    def __init__(self, in_dim: int, out_shape: tuple[int, ...], cfg: TextRegressorConfig):
        super().__init__()
        self.out_shape = tuple(out_shape)
        out_dim = int(np.prod(out_shape))
        self.net = nn.Sequential(nn.Linear(in_dim, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.hidden, out_dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.register_buffer("mean", torch.zeros(out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.mean + self.net(x)).view(len(x), *self.out_shape)


class TextEmbeddingRegressor(Component):
    """L2 regression from features to caption embeddings; ``predict`` returns numpy arrays."""

    config_class = TextRegressorConfig
    what = "text regressor"

    def __init__(self, config: TextRegressorConfig | dict | None = None, **overrides):
        super().__init__(config, **overrides)
        self.in_dim_: int | None = None

    @on_config_device_threads
    def fit(self, features: np.ndarray, targets: np.ndarray) -> TextEmbeddingRegressor:
        cfg = self.config
        x = torch.from_numpy(check_finite("features", features))
        y = torch.from_numpy(check_finite("targets", targets))
        if x.ndim != 2 or len(x) != len(y) or y.ndim not in (2, 3):
            raise UserError(f"text regressor: expected features (N, F) and targets (N, D) or (N, L, D), got "
                            f"{tuple(x.shape)} and {tuple(y.shape)}")
        if (cfg.target == "pooled") != (y.ndim == 2):
            raise UserError(f"text regressor: target={cfg.target!r} but targets have shape {tuple(y.shape)}; "
                            "pass (N, L, D) prompt embeds for 'sequence', (N, D) for 'pooled'")
        torch.manual_seed(cfg.seed)
        device = resolve_device(cfg.device)
        self.in_dim_ = x.shape[1]
        module = _MLP(self.in_dim_, tuple(y.shape[1:]), cfg)
        module.mean.copy_(y.flatten(1).mean(0))
        module.to(device).train()
        opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        rng = torch.Generator().manual_seed(cfg.seed)
        self.history_ = []
        for _ in tqdm(range(cfg.epochs), desc="text regressor", disable=None, leave=False):
            order = torch.randperm(len(x), generator=rng)
            total = 0.0
            for s in batches(len(x), cfg.batch_size):
                idx = order[s]
                loss = F.mse_loss(module(x[idx].to(device)), y[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            self.history_.append(total / len(x))
        self.module_ = module.eval()
        return self

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self._check_fitted().out_shape

    @on_config_device_threads
    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        module = self._check_fitted()
        x = check_finite("features", features)
        if x.ndim != 2 or x.shape[1] != self.in_dim_:
            raise UserError(f"features: expected (N, {self.in_dim_}), got {x.shape}; use the encoder the regressor was fitted with")
        device = next(module.parameters()).device
        if len(x) == 0:
            return np.zeros((0, *module.out_shape), np.float32)
        return torch.cat([module(torch.from_numpy(x[s]).to(device)).cpu() for s in batches(len(x), 256)]).numpy()

    def _meta(self) -> dict:
        return {"in_dim": self.in_dim_, "out_shape": list(self._check_fitted().out_shape)}

    def _restore(self, meta: dict) -> None:
        self.in_dim_ = int(meta["in_dim"])

    def _rebuild(self, meta: dict) -> _MLP:
        return _MLP(self.in_dim_, tuple(meta["out_shape"]), self.config)

"""Contrastive EEG encoders for the zero-shot track: EEG → image embedding by InfoNCE (NICE, ATM; kept small).

- ``nice``: after Song et al., ICLR 2024 (NICE). A temporal-spatial convolution ("TSConv": a temporal
  convolution, average pooling, then one convolution across all channels), a 1×1 projection, flattened,
  then a residual MLP projection head with LayerNorm to the embedding's dimension.
- ``atm``: after Li et al., NeurIPS 2024 (ATM). Channel attention first — one Transformer encoder layer
  whose tokens are the channels (each channel's time course, linearly embedded) — then the same
  temporal-spatial convolution and projection head. Not reproduced: ATM's subject tokens and its
  multi-subject pre-training.

Both are trained with CLIP's symmetric InfoNCE between the L2-normalised EEG embeddings and the image
embeddings (``space``, :mod:`metrics.embedding_spaces`) of the trials' stimuli, with a learnable
temperature (initial ``temperature``). Trials of the same stimulus in a batch (repetitions, subjects) are
not negatives of each other: their targets share the probability mass. **Model selection on validation
only**: after every epoch the encoder embeds the fold's validation trials — on a zero-shot fold, concepts
never trained on — scored by the exact 2-way identification of the validation stimuli; the best epoch's
weights are kept (ties: the later). The peers select the epoch on the test set. Without validation trials
the last epoch is kept. ``embed`` returns the trial's embedding; ``reconstruct`` decodes it
(:mod:`baselines.embedding_decoder`). The trained encoder is a stage of the fold's cache, so the runner's
prefit job trains it while another worker builds the decoder's diffusion model.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from baselines._common import cache_root, check_fitted, check_test_eeg
from baselines.embedding_decoder import DecoderSettings
from baselines.retrieval import QUICK_EMBEDDING, _EmbeddingMethod
from eeg2img.datasets.base import EEGDataset
from eeg2img.devices import optimizer_options, resolve_device
from eeg2img.errors import UserError
from eeg2img.methods import register
from eeg2img.params import check_choice, check_device, check_float, check_int, takes_settings
from eeg2img.seeding import torch_seeded
from reconstruct.stages import DiffusionSettings, StageCache, train_key


class _TSConv(nn.Module):
    """NICE's temporal-spatial convolution: (B, 1, C, T) → (B, F)."""

    def __init__(self, n_channels: int, n_times: int, width: int = 40, kernel: int = 25, pool: int = 51,
                 stride: int = 5, dropout: float = 0.5):
        super().__init__()
        kernel = min(kernel, n_times)
        pool = min(pool, n_times - kernel + 1)
        self.net = nn.Sequential(
            nn.Conv2d(1, width, (1, kernel)), nn.AvgPool2d((1, pool), (1, stride)), nn.BatchNorm2d(width), nn.ELU(),
            nn.Conv2d(width, width, (n_channels, 1)), nn.BatchNorm2d(width), nn.ELU(), nn.Dropout(dropout),
            nn.Conv2d(width, width, 1),
        )
        with torch.no_grad():
            self.out_dim = int(self.net(torch.zeros(2, 1, n_channels, n_times)).numel() // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.unsqueeze(1)).flatten(1)


class _Projection(nn.Module):
    """NICE/ATM's head: Linear → (GELU → Linear → Dropout, residual) → LayerNorm."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.5):
        super().__init__()
        self.inp = nn.Linear(in_dim, out_dim)
        self.res = nn.Sequential(nn.GELU(), nn.Linear(out_dim, out_dim), nn.Dropout(dropout))
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        return self.norm(h + self.res(h))


class _Encoder(nn.Module):
    def __init__(self, architecture: str, n_channels: int, n_times: int, out_dim: int, d_model: int = 64):
        super().__init__()
        self.attention = None
        if architecture == "atm":
            self.embed_time = nn.Linear(n_times, d_model)
            self.attention = nn.TransformerEncoderLayer(d_model, nhead=4, dim_feedforward=2 * d_model, dropout=0.25,
                                                        batch_first=True)
            self.back = nn.Linear(d_model, n_times)
        self.conv = _TSConv(n_channels, n_times)
        self.head = _Projection(self.conv.out_dim, out_dim)

    def forward(self, eeg: torch.Tensor) -> torch.Tensor:
        if self.attention is not None:  # channels as tokens, then back to time courses (residual)
            eeg = eeg + self.back(self.attention(self.embed_time(eeg)))
        return self.head(self.conv(eeg))


# The diffusion settings the encoders do not take: strength (see EMBEDDING_EXCLUDED), and the two they declare
# themselves — ``device`` serves the diffusion stage too; ``batch_size`` is the encoder's, sampling keeps 16.
CONTRASTIVE_EXCLUDED = ("strength", "device", "batch_size")


class _FittedEncoder:
    """A trained encoder and what ``embed`` needs with it, saved in the fold's stage cache."""

    what = "contrastive encoder"

    def __init__(self, architecture: str, state: dict[str, torch.Tensor], eeg_mean: np.ndarray, eeg_scale: np.ndarray,
                 meta: dict):
        self.architecture, self.state, self.eeg_mean, self.eeg_scale, self.meta = (architecture, state, eeg_mean,
                                                                                     eeg_scale, meta)

    def restore_into(self, method: _ContrastiveEncoder) -> None:
        meta = self.meta
        method.eeg_mean_, method.eeg_scale_ = self.eeg_mean, self.eeg_scale
        method.eeg_shape_ = tuple(meta["eeg_shape"])
        with torch.random.fork_rng(devices=[]):  # the initial weights drawn here are replaced: keep the caller's RNG
            encoder = _Encoder(self.architecture, *method.eeg_shape_, meta["out_dim"])
        encoder.load_state_dict(self.state)
        method.encoder_ = encoder.eval()
        method.history_ = list(meta["history"])
        method.val_scores_ = {int(k): float(v) for k, v in meta["val_scores"].items()}
        method.selected_epoch_ = int(meta["selected_epoch"])

    def save(self, directory):
        from reconstruct.stages import save_stage

        state = {f"encoder.{k}": v for k, v in self.state.items()}
        state.update(eeg_mean=torch.from_numpy(self.eeg_mean), eeg_scale=torch.from_numpy(self.eeg_scale))
        return save_stage(directory, state, {**self.meta, "architecture": self.architecture})

    @classmethod
    def load(cls, directory) -> _FittedEncoder:
        from reconstruct.stages import load_stage

        state, meta = load_stage(directory, cls.what)
        try:
            encoder = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
            return cls(meta["architecture"], encoder, state["eeg_mean"].numpy(), state["eeg_scale"].numpy(), meta)
        except KeyError as err:
            raise UserError(f"{directory}: {cls.what} files lack {err}; delete the entry to retrain it") from None


class _ContrastiveEncoder(_EmbeddingMethod):
    architecture = "nice"
    uses_cuda = True

    def __init__(self, seed: int = 0, image_size: int | None = None, space: str = "synth-cnn:fold-train",
                 epochs: int = 40, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 1e-3,
                 temperature: float = 0.07, select: str = "val", device: str = "auto"):
        self.seed, self.image_size, self.space = seed, image_size, space
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.temperature, self.select, self.device = temperature, select, device

    def check_params(self) -> None:
        super().check_params()
        check_int(self.name, "epochs", self.epochs)
        check_int(self.name, "batch_size", self.batch_size, minimum=2)
        check_float(self.name, "lr", self.lr)
        check_float(self.name, "weight_decay", self.weight_decay, low=0.0, low_open=False)
        check_float(self.name, "temperature", self.temperature, high=10.0)
        check_choice(self.name, "select", self.select, ("val", "last"))
        check_device(self.name, self.device)

    def _standardise(self, eeg: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((eeg - self.eeg_mean_) / self.eeg_scale_).astype(np.float32))

    def _diffusion_settings(self) -> DiffusionSettings:
        # ``batch_size`` is the encoder's training batch here, not the sampling batch (which keeps its default)
        return dataclasses.replace(super()._diffusion_settings(), batch_size=DiffusionSettings.batch_size)

    def prefit(self, train: EEGDataset, val: EEGDataset | None = None) -> None:
        """Train the encoder into the stage cache (a prefit job, while another worker builds the diffusion model)."""
        self._fit_embedding(train, val)

    def _fit_embedding(self, train: EEGDataset, val: EEGDataset | None) -> None:
        from reconstruct.stages import stage_key

        rows, _ = self._fit_space(train)
        device = str(resolve_device(self.device, self.name))
        own = {k: getattr(self, k) for k in ("seed", "image_size", "space", "epochs", "batch_size", "lr",
                                             "weight_decay", "temperature", "select")}
        key = stage_key("contrastive-encoder", self.architecture, self.version, own, device, train_key(train),
                          None if val is None else train_key(val), self.embedder_.weights_sha256)[:24]
        fitted = StageCache(cache_root(self)).get(key, "contrastive-encoder", _FittedEncoder.load,
                                                  lambda: self._train(train, val, rows, device))
        fitted.restore_into(self)

    def _train(self, train: EEGDataset, val: EEGDataset | None, rows: np.ndarray, device: str) -> _FittedEncoder:
        eeg = np.asarray(train.eeg, dtype=np.float64)
        self.eeg_mean_ = eeg.mean(axis=(0, 2), keepdims=True)[0]
        self.eeg_scale_ = np.maximum(eeg.std(axis=(0, 2), keepdims=True)[0], 1e-6)
        self.eeg_shape_ = train.eeg.shape[1:]
        x, image = self._standardise(train.eeg), torch.from_numpy(rows)
        targets = torch.from_numpy(self.gallery_unit_.astype(np.float32))
        score = self._validation_scorer(val)
        val_eeg = check_test_eeg(self.name, val, *self.eeg_shape_) if score is not None else None
        with torch_seeded(self.seed):
            self.encoder_ = _Encoder(self.architecture, *self.eeg_shape_, targets.shape[1]).to(device)
            log_scale = nn.Parameter(torch.tensor(float(np.log(1.0 / self.temperature)), device=device))
            opt = torch.optim.AdamW([*self.encoder_.parameters(), log_scale], lr=self.lr,
                                    weight_decay=self.weight_decay, **optimizer_options(device))
            gen = torch.Generator().manual_seed(self.seed)
            history: list[float] = []
            val_scores: dict[int, float] = {}
            best_state, selected = None, self.epochs
            for epoch in tqdm(range(1, self.epochs + 1), desc=self.name, disable=None, leave=False):
                self.encoder_.train()
                order = torch.randperm(len(x), generator=gen)
                for lo in range(0, len(order) - 1, self.batch_size):
                    idx = order[lo:lo + self.batch_size]
                    if len(idx) < 2:
                        continue
                    z = F.normalize(self.encoder_(x[idx].to(device)), dim=1)
                    img = image[idx]
                    logits = log_scale.exp().clamp(max=100) * z @ targets[img].to(device).T
                    # trials of one stimulus share the target mass instead of being each other's negatives
                    same = (img[:, None] == img[None, :]).float().to(device)
                    soft = same / same.sum(dim=1, keepdim=True)
                    loss = 0.5 * (torch.sum(-soft * F.log_softmax(logits, 1), 1).mean()
                                  + torch.sum(-soft * F.log_softmax(logits.T, 1), 1).mean())
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    history.append(loss.item())
                if self.select == "val" and score is not None:
                    val_scores[epoch] = score(self._embed_eeg(val_eeg))
                    if val_scores[epoch] >= max(val_scores.values()):
                        selected = epoch
                        best_state = {k: v.detach().clone() for k, v in self.encoder_.state_dict().items()}
            if best_state is not None:
                self.encoder_.load_state_dict(best_state)
        state = {k: v.detach().cpu().clone() for k, v in self.encoder_.state_dict().items()}
        meta = {"eeg_shape": list(self.eeg_shape_), "out_dim": int(targets.shape[1]), "history": history,
                "val_scores": {str(k): v for k, v in val_scores.items()}, "selected_epoch": selected}
        return _FittedEncoder(self.architecture, state, self.eeg_mean_, self.eeg_scale_, meta)

    @torch.no_grad()
    def _embed_eeg(self, eeg: np.ndarray) -> np.ndarray:
        device = next(self.encoder_.parameters()).device
        was_training = self.encoder_.training
        self.encoder_.eval()
        out = [F.normalize(self.encoder_(chunk.to(device)), dim=1).cpu()
               for chunk in self._standardise(eeg).split(256)]
        self.encoder_.train(was_training)
        return torch.cat(out).numpy().astype(np.float32)

    def embed(self, test: EEGDataset) -> np.ndarray:
        check_fitted(self.name, hasattr(self, "encoder_"))
        return self._embed_eeg(check_test_eeg(self.name, test, *self.eeg_shape_))


@register("nice", quick={**QUICK_EMBEDDING, "epochs": 10})
@takes_settings(DiffusionSettings, DecoderSettings, exclude=CONTRASTIVE_EXCLUDED)
class NICE(_ContrastiveEncoder):
    """NICE-style encoder (temporal-spatial convolution + projection), InfoNCE against image embeddings."""

    name = "nice"
    architecture = "nice"


@register("atm", quick={**QUICK_EMBEDDING, "epochs": 10})
@takes_settings(DiffusionSettings, DecoderSettings, exclude=CONTRASTIVE_EXCLUDED)
class ATM(_ContrastiveEncoder):
    """ATM-style encoder (channel attention, then temporal-spatial convolution + projection), InfoNCE."""

    name = "atm"
    architecture = "atm"

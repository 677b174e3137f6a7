"""NeuroImagen's shared stages: their settings, and the one cache NeuroImagen and the baselines train them through.

Two settings groups (frozen dataclasses; :func:`eeg2img.params.takes_settings` adds their fields to a
method's constructor, so each default is declared here once):

- :class:`DiffusionSettings`: the diffusion model (a Stable Diffusion directory, or the demo model trained
  on the training stimuli) and its sampler.
- :class:`EncoderSettings`: the triplet EEG encoder.

:class:`StageCache` trains or loads a stage once: in-process memo → disk cache under
``<cache root>/neuroimagen/<stage>/<key>`` → train (under a build lock, so a parallel cell that needs the
same stage waits and then loads it). A key covers the training set and the stage's configuration, so the
oracles, ``latent-ridge``, ``dreamdiffusion`` and ``retrieval-triplet`` decode or retrieve with exactly the
model NeuroImagen uses with the same settings: a difference in the tables then comes from the method,
not from a different model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError
from eeg2img.params import check_choice, check_device, check_float, check_int

STAGE_CACHE_DIR = "neuroimagen"  # under the cache root; the name predates the baselines sharing it


@dataclass(frozen=True)
class DiffusionSettings:
    """Stage 4. ``sd_path=None`` = demo scale: a tiny SD trained on the training stimuli at ``demo_size`` px
    for ``demo_vae_steps`` / ``demo_unet_steps`` steps. img2img runs ``int(steps * strength)`` denoising
    steps; guidance is against the empty-caption embedding."""

    sd_path: str | None = None
    strength: float = 0.8
    steps: int = 20
    guidance_scale: float = 7.5
    demo_size: int = 32
    demo_vae_steps: int = 800
    demo_unet_steps: int = 600
    batch_size: int = 16
    device: str = "auto"

    def check(self, owner: str) -> DiffusionSettings:
        if self.sd_path is not None and not isinstance(self.sd_path, str | Path):
            raise UserError(f"{owner}: sd_path={self.sd_path!r} is invalid; pass a Stable Diffusion directory or None")
        check_float(owner, "strength", self.strength, low=0.0, high=1.0)
        check_int(owner, "steps", self.steps)
        check_float(owner, "guidance_scale", self.guidance_scale, low=0.0, low_open=False)
        check_int(owner, "demo_size", self.demo_size, minimum=8)
        check_int(owner, "demo_vae_steps", self.demo_vae_steps, minimum=0)
        check_int(owner, "demo_unet_steps", self.demo_unet_steps, minimum=0)
        check_int(owner, "batch_size", self.batch_size)
        check_device(owner, self.device)
        return self

    def diffusion_config(self):
        from reconstruct.diffusion import DiffusionConfig

        return DiffusionConfig(strength=self.strength, steps=self.steps, guidance_scale=self.guidance_scale,
                               batch_size=self.batch_size, device=self.device)

    def tiny_sd_config(self, seed: int):
        from reconstruct.tiny_sd import TinySDConfig

        return TinySDConfig(image_size=self.demo_size, vae_steps=self.demo_vae_steps,
                            unet_steps=self.demo_unet_steps, seed=seed, device=stage_device(self.device))


@dataclass(frozen=True)
class EncoderSettings:
    """Stage 1, the triplet encoder f_θ: ``encoder`` ("lstm" = Brain2Image's, the paper's | "eegnet"),
    ``lstm_readout`` ("mean" of the outputs | "last" hidden state, the original's), ``embed_dim``,
    ``margin`` (β), ``mining`` ("semihard" | "batch-all"), ``encoder_epochs``."""

    encoder: str = "lstm"
    lstm_readout: str = "mean"
    embed_dim: int = 64
    margin: float = 0.2
    mining: str = "semihard"
    encoder_epochs: int = 80
    device: str = "auto"

    def check(self, owner: str) -> EncoderSettings:
        check_choice(owner, "encoder", self.encoder, ("lstm", "eegnet"))
        check_choice(owner, "lstm_readout", self.lstm_readout, ("mean", "last"))
        check_int(owner, "embed_dim", self.embed_dim)
        check_float(owner, "margin", self.margin, low=0.0, low_open=False)
        check_choice(owner, "mining", self.mining, ("semihard", "batch-all"))
        check_int(owner, "encoder_epochs", self.encoder_epochs)
        check_device(owner, self.device)
        return self

    def encoder_config(self, seed: int):
        from reconstruct.encoder import EncoderConfig

        return EncoderConfig(kind=self.encoder, readout=self.lstm_readout, embed_dim=self.embed_dim,
                             margin=self.margin, mining=self.mining, epochs=self.encoder_epochs, seed=seed,
                             device=stage_device(self.device))


# ``eeg2img demo --quick``: every method that shares a stage registers these, so quick runs share it too.
QUICK_DIFFUSION = {"steps": 10, "demo_vae_steps": 400, "demo_unet_steps": 300}
QUICK_ENCODER = {"encoder_epochs": 40}


def stage_device(device: str) -> str:
    from eeg2img.devices import resolve_device

    return str(resolve_device(device, "NeuroImagen"))


# --- the cache ------------------------------------------------------------------------------------------
_MEMO: OrderedDict[str, Any] = OrderedDict()
_MEMO_SIZE = 32


def clear_memo() -> None:
    """Forget the in-process stage cache (disk caches stay)."""
    _MEMO.clear()


def _memo_get(key: str):
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    return None


def _memo_put(key: str, value) -> None:
    _MEMO[key] = value
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)


def check_trainable(train: EEGDataset) -> None:
    if len(train) == 0:
        raise UserError(f"{train.name}: empty training set; check the split")
    if train.blinded:
        raise UserError(f"{train.name}: training data is a blinded (test) view; pass the training subset")


def train_key(train: EEGDataset) -> str:
    """What identifies a training set for the stages: its dataset, exact trials, EEG shape and labels."""
    from reconstruct._common import fingerprint

    return fingerprint(train.fingerprint, train.name, [str(t) for t in train.trial_ids], train.eeg.shape,
                       np.asarray(train.labels))


class StageCache:
    """Stages trained once per key: memo → ``<cache root>/neuroimagen/<stage>/<key>`` → train.

    ``cache_dir`` is the runner's per-fold cache folder (None: ``$EEG2IMG_CACHE``, else
    ``~/.cache/eeg2img``); ``use_cache=False`` keeps only the in-process memo.
    """

    def __init__(self, cache_dir: str | Path | None = None, use_cache: bool = True):
        self.cache_dir = cache_dir
        self.use_cache = use_cache

    @property
    def root(self) -> Path:
        from eeg2img.digest import cache_root

        return cache_root(self.cache_dir or None)

    def get(self, key: str, stage: str, load: Callable[[Path], Any], build: Callable[[], Any]):
        """The stage stored under ``key``: from memory, else from disk, else ``build()`` (then saved)."""
        hit = _memo_get(key)
        if hit is not None:
            return hit
        path = self.root / STAGE_CACHE_DIR / stage / key
        if not self.use_cache:
            obj = build()
        else:
            from eeg2img.atomic import build_lock

            obj = _load_entry(path, load)
            if obj is None:
                with build_lock(path):  # a parallel cell sharing this stage waits, then loads it
                    obj = _load_entry(path, load)
                    if obj is None:
                        obj = build()
                        obj.save(path)
        _memo_put(key, obj)
        return obj

    # --- stage 1 -----------------------------------------------------------------------------------------
    def encoder_key(self, settings: EncoderSettings, seed: int, train: EEGDataset) -> str:
        from reconstruct._common import fingerprint

        return fingerprint("encoder", train_key(train), asdict(settings.encoder_config(seed)))[:24]

    def encoder(self, settings: EncoderSettings, seed: int, train: EEGDataset):
        """The fitted :class:`~reconstruct.encoder.TripletEEGEncoder` for this training set."""
        from reconstruct.encoder import TripletEEGEncoder

        check_trainable(train)
        cfg = settings.encoder_config(seed)
        return self.get(self.encoder_key(settings, seed, train), "encoder", TripletEEGEncoder.load,
                        lambda: TripletEEGEncoder(cfg).fit(train.eeg, train.labels))

    # --- stage 4 -----------------------------------------------------------------------------------------
    def diffusion_source(self, settings: DiffusionSettings, seed: int, train: EEGDataset) -> Path | str:
        """The SD directory: the user's, or the demo model trained on the training stimuli."""
        if settings.sd_path is not None:
            return settings.sd_path
        from reconstruct.tiny_sd import cached_tiny_sd, tiny_sd_key

        # Sorted, so every fold with the same training images (in any trial order) shares one model.
        ids = sorted(train.unique_image_ids())
        cfg = settings.tiny_sd_config(seed)
        images = train.load_images(ids, size=cfg.image_size)
        first = {str(i): k for k, i in reversed(list(enumerate(train.image_ids)))}
        labels, blip = train.label_captions(), train.captions()
        captions = [sorted({labels[first[i]], blip[first[i]]}) for i in ids]
        key = "tiny-sd:" + tiny_sd_key(images, captions, cfg)
        hit = _memo_get(key)
        if hit is None:
            hit = cached_tiny_sd(images, captions, self.root, cfg)
            _memo_put(key, hit)
        return hit

    def diffusion(self, settings: DiffusionSettings, seed: int, train: EEGDataset):
        """The :class:`~reconstruct.diffusion.Img2ImgDiffusion` these settings use (shared in-process)."""
        from reconstruct._common import fingerprint
        from reconstruct.diffusion import Img2ImgDiffusion

        check_trainable(train)
        source = self.diffusion_source(settings, seed, train)
        cfg = settings.diffusion_config()
        key = "diffusion:" + fingerprint(str(source), asdict(cfg))
        diffusion = _memo_get(key)
        if diffusion is None:
            diffusion = Img2ImgDiffusion(source, cfg)
            _memo_put(key, diffusion)
        return diffusion

    @staticmethod
    def caption_embedder(diffusion, device: str):
        """The tokenizer + text encoder of ``diffusion``'s directory (memoised in-process)."""
        device = stage_device(device)
        key = f"embedder:{diffusion.source}:{device}"
        embedder = _memo_get(key)
        if embedder is None:
            embedder = diffusion.caption_embedder(device=device)
            _memo_put(key, embedder)
        return embedder


# For stages defined outside this package (the zero-shot track's encoders and embedding decoder): the
# cache key and the safetensors + JSON entry format the stages here use.
def stage_key(*parts: Any) -> str:
    """A stable sha256 over JSON-able values and numpy arrays (a stage's cache key)."""
    from reconstruct._common import fingerprint

    return fingerprint(*parts)


def save_stage(directory: str | Path, state: dict, meta: dict) -> Path:
    """Write a stage's tensors (``model.safetensors``) and metadata (``config.json``) atomically."""
    from reconstruct._common import save_component

    return save_component(directory, state, meta)


def load_stage(directory: str | Path, what: str) -> tuple[dict, dict]:
    """Read what :func:`save_stage` wrote; a missing or corrupt file is a one-line UserError naming it."""
    from reconstruct._common import load_component

    return load_component(directory, what)


def _load_entry(path: Path, load):
    if not path.is_dir():
        return None
    try:
        return load(path)
    except UserError:
        return None  # a damaged cache entry is retrained, not fatal

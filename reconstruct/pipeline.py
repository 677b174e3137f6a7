"""NeuroImagen as a benchmark :class:`~eeg2img.methods.Method`, and its Table-3 ablations.

``fit(train, val)`` trains the per-fold stages (triplet EEG encoder, saliency GAN, text-embedding
regressor) and obtains the shared diffusion model; ``reconstruct(test)`` reads only ``test.eeg``
and ``test.trial_ids`` (the blinded view). See ``docs/neuroimagen.md``.

Caching: every stage is keyed by the training-set fingerprint and its own configuration and
stored under ``cache_dir`` (set by the runner; else ``$EEG2IMG_CACHE``, else ``~/.cache/eeg2img``),
and memoised in-process, so the ablation variants and folds that share a stage train it once. The
demo-scale diffusion model is keyed by the training *images* and captions only, so folds that share
their training images share it.
"""

from __future__ import annotations

import inspect
import json
import shutil
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError
from eeg2img.methods import Method, register

CAPTION_SOURCES = ("label", "blip", "none")
_MEMO: OrderedDict[str, Any] = OrderedDict()
_MEMO_SIZE = 32


def default_cache_root(cache_dir: str | Path | None = None) -> Path:
    from eeg2img.digest import cache_root

    return cache_root(cache_dir)


def _memo_get(key: str):
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    return None


def _memo_put(key: str, value) -> None:
    _MEMO[key] = value
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)


def clear_memo() -> None:
    """Forget the in-process stage cache (disk caches stay)."""
    _MEMO.clear()


class NeuroImagen(Method):
    """EEG → (saliency map, caption embedding) → Stable Diffusion img2img (Lan et al. 2023).

    Parameters (all keyword-only; they are the configuration ``get_params`` reports):

    - ``encoder`` ("lstm" = Brain2Image LSTM, the paper's; "eegnet"), ``lstm_readout`` ("mean" of the
      LSTM outputs | "last" hidden state, the original's), ``embed_dim``, ``margin`` (β),
      ``mining`` ("semihard" | "batch-all"), ``encoder_epochs``: stage 1, the triplet encoder f_θ.
    - ``alpha_adv``, ``alpha_ms``, ``alpha_ssim`` (α1..α3), ``gan_epochs``, ``saliency_size``:
      stage 2, the saliency GAN. The map is upsampled to the diffusion resolution as init image.
    - ``caption`` ("label": "an image of a <class>" | "blip": ``dataset.captions()`` | "none":
      the empty caption, i.e. no semantic decoding), ``regressor_epochs``: stage 3.
    - ``use_saliency``: img2img from the saliency map (True) or text-to-image from noise (False).
    - ``strength``, ``steps``, ``guidance_scale``, ``batch_size``: stage 4 (img2img runs
      ``int(steps * strength)`` denoising steps; guidance against the empty-caption embedding).
    - ``sd_path``: a diffusers SD 1.x directory (or hub id when online); None = demo scale, a tiny
      model trained here on the training stimuli at ``demo_size`` px for ``demo_vae_steps`` /
      ``demo_unet_steps`` steps, cached per training image set.
    - ``image_size``: size of the returned images (None = the diffusion model's native size).
    - ``device`` ("auto" = CUDA when present), ``seed``, ``use_cache`` (disk cache of the stages).
    """

    name = "neuroimagen"
    is_oracle = False
    shared_stage = "diffusion"  # the demo diffusion model, trained once per training image set

    def __init__(
        self,
        *,
        encoder: str = "lstm",
        lstm_readout: str = "mean",
        embed_dim: int = 64,
        margin: float = 0.2,
        mining: str = "semihard",
        encoder_epochs: int = 80,
        alpha_adv: float = 0.1,
        alpha_ms: float = 0.1,
        alpha_ssim: float = 1.0,
        gan_epochs: int = 80,
        saliency_size: int = 16,
        caption: str = "label",
        use_saliency: bool = True,
        regressor_epochs: int = 150,
        strength: float = 0.8,
        steps: int = 20,
        guidance_scale: float = 7.5,
        image_size: int | None = None,
        sd_path: str | None = None,
        demo_size: int = 32,
        demo_vae_steps: int = 800,
        demo_unet_steps: int = 600,
        batch_size: int = 16,
        device: str = "auto",
        seed: int = 0,
        use_cache: bool = True,
    ):
        self.encoder = encoder
        self.lstm_readout = lstm_readout
        self.embed_dim = embed_dim
        self.margin = margin
        self.mining = mining
        self.encoder_epochs = encoder_epochs
        self.alpha_adv = alpha_adv
        self.alpha_ms = alpha_ms
        self.alpha_ssim = alpha_ssim
        self.gan_epochs = gan_epochs
        self.saliency_size = saliency_size
        self.caption = caption
        self.use_saliency = use_saliency
        self.regressor_epochs = regressor_epochs
        self.strength = strength
        self.steps = steps
        self.guidance_scale = guidance_scale
        self.image_size = image_size
        self.sd_path = sd_path
        self.demo_size = demo_size
        self.demo_vae_steps = demo_vae_steps
        self.demo_unet_steps = demo_unet_steps
        self.batch_size = batch_size
        self.device = device
        self.seed = seed
        self.use_cache = use_cache
        if caption not in CAPTION_SOURCES:
            raise UserError(f"caption {caption!r}: unknown caption source; use one of {', '.join(CAPTION_SOURCES)}")
        if caption == "none" and not use_saliency:
            raise UserError("caption='none' with use_saliency=False leaves nothing decoded from EEG; enable one of them")

    # --- stage configs ------------------------------------------------------------------------------
    def _stage_device(self) -> str:
        from reconstruct._common import resolve_device

        return str(resolve_device(self.device))

    def encoder_config(self):
        from reconstruct.encoder import EncoderConfig

        return EncoderConfig(kind=self.encoder, readout=self.lstm_readout, embed_dim=self.embed_dim, margin=self.margin, mining=self.mining,
                             epochs=self.encoder_epochs, seed=self.seed, device=self._stage_device())

    def gan_config(self):
        from reconstruct.saliency_gan import SaliencyGANConfig

        return SaliencyGANConfig(image_size=self.saliency_size, epochs=self.gan_epochs, alpha_adv=self.alpha_adv,
                                 alpha_ms=self.alpha_ms, alpha_ssim=self.alpha_ssim, seed=self.seed,
                                 device=self._stage_device())

    def regressor_config(self):
        from reconstruct.text_regressor import TextRegressorConfig

        return TextRegressorConfig(epochs=self.regressor_epochs, seed=self.seed, device=self._stage_device())

    def diffusion_config(self):
        from reconstruct.diffusion import DiffusionConfig

        return DiffusionConfig(strength=self.strength, steps=self.steps, guidance_scale=self.guidance_scale,
                               batch_size=self.batch_size, device=self.device)

    def tiny_sd_config(self):
        from reconstruct.tiny_sd import TinySDConfig

        return TinySDConfig(image_size=self.demo_size, vae_steps=self.demo_vae_steps,
                            unet_steps=self.demo_unet_steps, seed=self.seed, device=self._stage_device())

    # --- fitting ----------------------------------------------------------------------------------------
    def _cached(self, key: str, subdir: str, load, train):
        """In-process memo → disk cache → train (and store in both)."""
        hit = _memo_get(key)
        if hit is not None:
            return hit
        path = default_cache_root(self.cache_dir) / "neuroimagen" / subdir / key
        if not self.use_cache:
            obj = train()
        else:
            from eeg2img.atomic import build_lock

            obj = self._load_cached(path, load)
            if obj is None:
                with build_lock(path):  # a parallel cell sharing this stage waits, then loads it
                    obj = self._load_cached(path, load)
                    if obj is None:
                        obj = train()
                        obj.save(path)
        _memo_put(key, obj)
        return obj

    @staticmethod
    def _load_cached(path: Path, load):
        if not path.is_dir():
            return None
        try:
            return load(path)
        except UserError:
            return None  # a damaged cache entry is retrained, not fatal

    def _diffusion_source(self, train: EEGDataset) -> Path | str:
        """The SD directory: the user's, or the demo model trained on the training stimuli."""
        if self.sd_path is not None:
            return self.sd_path
        from reconstruct.tiny_sd import cached_tiny_sd, tiny_sd_key

        # Sorted, so every fold with the same training images (in any trial order) shares one model.
        ids = sorted(train.unique_image_ids())
        cfg = self.tiny_sd_config()
        images = train.load_images(ids, size=cfg.image_size)
        first = {str(i): k for k, i in reversed(list(enumerate(train.image_ids)))}
        labels, blip = train.label_captions(), train.captions()
        captions = [sorted({labels[first[i]], blip[first[i]]}) for i in ids]
        key = "tiny-sd:" + tiny_sd_key(images, captions, cfg)
        hit = _memo_get(key)
        if hit is None:
            hit = cached_tiny_sd(images, captions, default_cache_root(self.cache_dir), cfg)
            _memo_put(key, hit)
        return hit

    def _train_key(self, train: EEGDataset) -> str:
        from reconstruct._common import fingerprint

        return fingerprint(train.fingerprint, train.name, [str(t) for t in train.trial_ids], train.eeg.shape,
                           np.asarray(train.labels))

    # --- shared stages (public: baselines reuse them, and get the same cache entries) ------------------
    def _encoder_key(self, train: EEGDataset) -> str:
        from reconstruct._common import fingerprint

        return fingerprint("encoder", self._train_key(train), asdict(self.encoder_config()))[:24]

    def fit_encoder(self, train: EEGDataset):
        """Stage 1 for this training set: a fitted :class:`TripletEEGEncoder` (cached)."""
        from reconstruct.encoder import TripletEEGEncoder

        _check_trainable(train)
        cfg = self.encoder_config()
        return self._cached(self._encoder_key(train), "encoder", TripletEEGEncoder.load,
                            lambda: TripletEEGEncoder(cfg).fit(train.eeg, train.labels))

    def diffusion_for(self, train: EEGDataset):
        """Stage 4: the :class:`Img2ImgDiffusion` this configuration uses (demo model trained if needed)."""
        from reconstruct._common import fingerprint
        from reconstruct.diffusion import Img2ImgDiffusion

        _check_trainable(train)
        source = self._diffusion_source(train)
        cfg = self.diffusion_config()
        key = "diffusion:" + fingerprint(str(source), asdict(cfg))
        diffusion = _memo_get(key)
        if diffusion is None:
            diffusion = Img2ImgDiffusion(source, cfg)
            _memo_put(key, diffusion)
        return diffusion

    def caption_embedder_for(self, diffusion):
        """The tokenizer + text encoder of ``diffusion``'s directory (memoised in-process)."""
        key = f"embedder:{diffusion.source}:{self._stage_device()}"
        embedder = _memo_get(key)
        if embedder is None:
            embedder = diffusion.caption_embedder(device=self._stage_device())
            _memo_put(key, embedder)
        return embedder

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> NeuroImagen:
        from reconstruct._common import fingerprint
        from reconstruct.saliency_gan import SaliencyGAN
        from reconstruct.text_regressor import TextEmbeddingRegressor

        _check_trainable(train)
        enc_key = self._encoder_key(train)
        self.encoder_ = self.fit_encoder(train)
        feats = self.encoder_.encode(train.eeg)

        self.gan_ = None
        if self.use_saliency:
            gan_cfg = self.gan_config()
            gan_key = fingerprint("gan", enc_key, asdict(gan_cfg))[:24]

            def train_gan():
                images = train.load_images(size=gan_cfg.image_size)
                return SaliencyGAN(gan_cfg).fit(feats, images)

            self.gan_ = self._cached(gan_key, "gan", SaliencyGAN.load, train_gan)

        self.diffusion_ = self.diffusion_for(train)
        self.sd_source_ = self.diffusion_.source
        embedder = self.caption_embedder_for(self.diffusion_)
        self.uncond_embeds_ = embedder.unconditional()

        self.regressor_ = None
        if self.caption != "none":
            captions = train.label_captions() if self.caption == "label" else train.captions()
            reg_cfg = self.regressor_config()
            reg_key = fingerprint("regressor", enc_key, self.caption, str(self.sd_source_), captions, asdict(reg_cfg))[:24]

            def train_regressor():
                unique = sorted(set(captions))
                table = embedder.embed(unique)
                row = {c: i for i, c in enumerate(unique)}
                targets = table[[row[c] for c in captions]]
                return TextEmbeddingRegressor(reg_cfg).fit(feats, targets)

            self.regressor_ = self._cached(reg_key, "regressor", TextEmbeddingRegressor.load, train_regressor)
        self.fit_info_ = self._validation_info(train, feats, val)
        return self

    def _validation_info(self, train: EEGDataset, feats: np.ndarray, val: EEGDataset | None) -> dict:
        """Held-out nearest-class-mean accuracy of the encoder (a cheap check that f_θ generalises)."""
        if val is None or len(val) == 0 or val.blinded:
            return {}
        labels = np.asarray(train.labels)
        classes = np.unique(labels)
        means = np.stack([feats[labels == c].mean(0) for c in classes])
        pred = classes[(self.encoder_.encode(val.eeg) @ means.T).argmax(1)]
        return {"val_encoder_accuracy": float((pred == np.asarray(val.labels)).mean()), "n_val": len(val)}

    # --- reconstruction -----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if getattr(self, "encoder_", None) is None:
            raise UserError(f"{self.name}: not fitted; call fit(train) or NeuroImagen.load(directory) first")

    def saliency_maps(self, test: EEGDataset) -> np.ndarray:
        """The GAN's saliency maps for ``test`` (uint8, saliency_size), with the per-trial seeds."""
        self._check_fitted()
        if self.gan_ is None:
            raise UserError(f"{self.name}: this variant has no saliency stage (use_saliency=False)")
        return self.gan_.generate(self.encoder_.encode(test.eeg), self.trial_seeds(test))

    def trial_seeds(self, test: EEGDataset) -> list[int]:
        """One seed per trial from (seed, trial_id): the noise of a trial never depends on its batch."""
        from eeg2img.seeding import trial_seeds

        return trial_seeds(self.seed, test.trial_ids)

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        self._check_fitted()
        feats = self.encoder_.encode(test.eeg)
        seeds = self.trial_seeds(test)
        init = self.gan_.generate(feats, seeds) if self.gan_ is not None else None
        uncond = self.uncond_embeds_
        if self.regressor_ is not None:
            prompts, negative = self.regressor_.predict(feats), uncond
        else:
            prompts, negative = np.broadcast_to(uncond, (len(feats), *uncond.shape)).copy(), None
        images = self.diffusion_.generate(prompts, init, negative, seeds)
        return _resize(images, self.image_size)

    # --- persistence ------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write every fitted stage (and the demo diffusion model, which is small) atomically."""
        from reconstruct._common import replace_directory, save_component, staging_directory

        self._check_fitted()
        import torch

        target = Path(directory)
        tmp = staging_directory(target)
        try:
            self.encoder_.save(tmp / "encoder")
            if self.gan_ is not None:
                self.gan_.save(tmp / "gan")
            if self.regressor_ is not None:
                self.regressor_.save(tmp / "regressor")
            sd = self.sd_source_
            if self.sd_path is None:
                shutil.copytree(sd, tmp / "diffusion")
                sd = None
            save_component(tmp / "uncond", {"uncond_embeds": torch.from_numpy(self.uncond_embeds_)}, {})
            meta = {"method": self.name, "params": self.get_params(), "sd_source": None if sd is None else str(sd),
                    "fit_info": getattr(self, "fit_info_", {})}
            (tmp / "method.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
            return replace_directory(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: str | Path) -> NeuroImagen:
        from reconstruct._common import load_component
        from reconstruct.diffusion import Img2ImgDiffusion
        from reconstruct.encoder import TripletEEGEncoder
        from reconstruct.saliency_gan import SaliencyGAN
        from reconstruct.text_regressor import TextEmbeddingRegressor

        directory = Path(directory)
        meta_path = directory / "method.json"
        if not meta_path.is_file():
            raise UserError(f"{meta_path}: missing; {directory} is not a saved NeuroImagen model (use .save())")
        meta = json.loads(meta_path.read_text())
        from eeg2img.methods import build_method

        method = build_method(meta["method"], **meta["params"])
        if not isinstance(method, cls):
            raise UserError(f"{meta_path}: holds method {meta['method']!r}, not a {cls.__name__}")
        device = method._stage_device()
        method.encoder_ = TripletEEGEncoder.load(directory / "encoder", device=device)
        method.gan_ = SaliencyGAN.load(directory / "gan", device=device) if (directory / "gan").is_dir() else None
        method.regressor_ = (TextEmbeddingRegressor.load(directory / "regressor", device=device)
                             if (directory / "regressor").is_dir() else None)
        method.sd_source_ = meta["sd_source"] or (directory / "diffusion")
        method.diffusion_ = Img2ImgDiffusion(method.sd_source_, method.diffusion_config())
        state, _ = load_component(directory / "uncond", "unconditional embedding")
        method.uncond_embeds_ = state["uncond_embeds"].numpy()
        method.fit_info_ = meta.get("fit_info", {})
        return method


def _check_trainable(train: EEGDataset) -> None:
    if len(train) == 0:
        raise UserError(f"{train.name}: empty training set; check the split")
    if train.blinded:
        raise UserError(f"{train.name}: training data is a blinded (test) view; pass the training subset")


def _resize(images: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or images.shape[1] == size:
        return images
    from metrics.image_ops import images_to_tensor, tensor_to_images

    return tensor_to_images(images_to_tensor(images, size))


# --- the Table-3 ablations as registered variants -------------------------------------------------------
# Settings for ``eeg2img demo --quick``: every stage shorter, the demo diffusion model smaller.
QUICK_PARAMS = {"encoder_epochs": 40, "gan_epochs": 40, "regressor_epochs": 80, "steps": 10,
                "demo_vae_steps": 400, "demo_unet_steps": 300}


def _variant(name: str, class_name: str, doc: str, **defaults) -> type[NeuroImagen]:
    """A subclass whose constructor has other defaults (and an honest signature for get_params)."""
    base = inspect.signature(NeuroImagen.__init__)
    params = [p.replace(default=defaults[p.name]) if p.name in defaults else p for p in base.parameters.values()]

    def __init__(self, **kwargs):
        NeuroImagen.__init__(self, **{**defaults, **kwargs})

    __init__.__signature__ = base.replace(parameters=params)
    cls = type(class_name, (NeuroImagen,), {"name": name, "__init__": __init__, "__doc__": doc,
                                             "__module__": __name__})
    return register(name, quick=QUICK_PARAMS)(cls)


register("neuroimagen", quick=QUICK_PARAMS)(NeuroImagen)
NeuroImagenSaliency = _variant(
    "neuroimagen-saliency", "NeuroImagenSaliency",
    "Ablation 'saliency only': the saliency map through img2img with the empty-caption embedding.",
    caption="none", use_saliency=True)
NeuroImagenLabel = _variant(
    "neuroimagen-label", "NeuroImagenLabel",
    "Ablation 'label caption': text-to-image from the predicted label-caption embedding, no init image.",
    caption="label", use_saliency=False)
NeuroImagenBlip = _variant(
    "neuroimagen-blip", "NeuroImagenBlip",
    "Ablation 'BLIP caption': text-to-image from the predicted descriptive-caption embedding.",
    caption="blip", use_saliency=False)
NeuroImagenBlipSaliency = _variant(
    "neuroimagen-blip-saliency", "NeuroImagenBlipSaliency",
    "Ablation 'BLIP + saliency': descriptive-caption embedding with the saliency map as init image.",
    caption="blip", use_saliency=True)

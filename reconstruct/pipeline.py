"""NeuroImagen as a benchmark :class:`~eeg2img.methods.Method`, and its Table-3 ablations.

``fit(train, val)`` trains the per-fold stages (triplet EEG encoder, saliency GAN, text-embedding
regressor) and obtains the shared diffusion model; ``reconstruct(test)`` reads only ``test.eeg``
and ``test.trial_ids`` (the blinded view). See ``docs/neuroimagen.md``.

Caching: every stage goes through :class:`reconstruct.stages.StageCache`, keyed by the training-set
fingerprint and the stage's own configuration, stored under ``cache_dir`` (set by the runner; else
``$EEG2IMG_CACHE``, else ``~/.cache/eeg2img``) and memoised in-process, so the ablation variants, the
baselines and folds that share a stage train it once. The demo-scale diffusion model is keyed by the
training *images* and captions only, so folds that share their training images share it.
"""

from __future__ import annotations

import inspect
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError
from eeg2img.methods import Method, register
from eeg2img.params import (
    check_choice,
    check_float,
    check_int,
    check_optional_int,
    check_seed,
    settings_of,
    takes_settings,
)
from reconstruct.stages import (
    QUICK_DIFFUSION,
    QUICK_ENCODER,
    DiffusionSettings,
    EncoderSettings,
    StageCache,
    check_trainable,
    stage_device,
)

CAPTION_SOURCES = ("label", "blip", "none")


@takes_settings(EncoderSettings, DiffusionSettings)
class NeuroImagen(Method):
    """EEG → (saliency map, caption embedding) → Stable Diffusion img2img (Lan et al. 2023).

    Parameters (all keyword-only; they are the configuration ``get_params`` reports):

    - stage 1, the triplet encoder: the fields of :class:`~reconstruct.stages.EncoderSettings`
      (``encoder``, ``lstm_readout``, ``embed_dim``, ``margin``, ``mining``, ``encoder_epochs``).
    - ``alpha_adv``, ``alpha_ms``, ``alpha_ssim`` (α1..α3), ``gan_epochs``, ``saliency_size``:
      stage 2, the saliency GAN. The map is upsampled to the diffusion resolution as init image.
    - ``caption`` ("label": "an image of a <class>" | "blip": ``dataset.captions()`` | "none":
      the empty caption, i.e. no semantic decoding), ``regressor_epochs``: stage 3.
    - ``use_saliency``: img2img from the saliency map (True) or text-to-image from noise (False).
    - stage 4, the diffusion model and its sampler: the fields of
      :class:`~reconstruct.stages.DiffusionSettings` (``sd_path``, ``strength``, ``steps``,
      ``guidance_scale``, ``demo_size``, ``demo_vae_steps``, ``demo_unet_steps``, ``batch_size``).
    - ``image_size``: size of the returned images (None = the diffusion model's native size).
    - ``device`` ("auto" = CUDA when present), ``seed``, ``use_cache`` (disk cache of the stages).
    """

    name = "neuroimagen"
    is_oracle = False
    shared_stage = "diffusion"  # the demo diffusion model, trained once per training image set
    uses_cuda = True

    def __init__(
        self,
        *,
        alpha_adv: float = 0.1,
        alpha_ms: float = 0.1,
        alpha_ssim: float = 1.0,
        gan_epochs: int = 80,
        saliency_size: int = 16,
        caption: str = "label",
        use_saliency: bool = True,
        regressor_epochs: int = 150,
        image_size: int | None = None,
        seed: int = 0,
        use_cache: bool = True,
    ):
        self.alpha_adv = alpha_adv
        self.alpha_ms = alpha_ms
        self.alpha_ssim = alpha_ssim
        self.gan_epochs = gan_epochs
        self.saliency_size = saliency_size
        self.caption = caption
        self.use_saliency = use_saliency
        self.regressor_epochs = regressor_epochs
        self.image_size = image_size
        self.seed = seed
        self.use_cache = use_cache

    def check_params(self) -> None:
        name = self.name
        self.encoder_settings.check(name)
        self.diffusion_settings.check(name)
        for key in ("alpha_adv", "alpha_ms", "alpha_ssim"):
            check_float(name, key, getattr(self, key), low=0.0, low_open=False)
        check_int(name, "gan_epochs", self.gan_epochs)
        check_int(name, "saliency_size", self.saliency_size, minimum=2)
        check_choice(name, "caption", self.caption, CAPTION_SOURCES)
        check_int(name, "regressor_epochs", self.regressor_epochs)
        check_optional_int(name, "image_size", self.image_size, minimum=8)
        check_seed(name, self.seed)
        if self.caption == "none" and not self.use_saliency:
            raise UserError(f"{name}: caption='none' with use_saliency=False leaves nothing decoded from EEG; "
                            "enable one of them")

    # --- stage configs ------------------------------------------------------------------------------
    @property
    def encoder_settings(self) -> EncoderSettings:
        return settings_of(EncoderSettings, self)

    @property
    def diffusion_settings(self) -> DiffusionSettings:
        return settings_of(DiffusionSettings, self)

    def _stage_device(self) -> str:
        return stage_device(self.device)

    def _stages(self) -> StageCache:
        return StageCache(self.cache_dir, self.use_cache)

    def encoder_config(self):
        return self.encoder_settings.encoder_config(self.seed)

    def gan_config(self):
        from reconstruct.saliency_gan import SaliencyGANConfig

        return SaliencyGANConfig(image_size=self.saliency_size, epochs=self.gan_epochs, alpha_adv=self.alpha_adv,
                                 alpha_ms=self.alpha_ms, alpha_ssim=self.alpha_ssim, seed=self.seed,
                                 device=self._stage_device())

    def regressor_config(self):
        from reconstruct.text_regressor import TextRegressorConfig

        return TextRegressorConfig(epochs=self.regressor_epochs, seed=self.seed, device=self._stage_device())

    def diffusion_config(self):
        return self.diffusion_settings.diffusion_config()

    # --- shared stages (the baselines obtain the same ones through StageCache) --------------------------
    def fit_encoder(self, train: EEGDataset):
        """Stage 1 for this training set: a fitted :class:`TripletEEGEncoder` (cached)."""
        return self._stages().encoder(self.encoder_settings, self.seed, train)

    def diffusion_for(self, train: EEGDataset):
        """Stage 4: the :class:`Img2ImgDiffusion` this configuration uses (demo model trained if needed)."""
        return self._stages().diffusion(self.diffusion_settings, self.seed, train)

    def caption_embedder_for(self, diffusion):
        """The tokenizer + text encoder of ``diffusion``'s directory (memoised in-process)."""
        return StageCache.caption_embedder(diffusion, self.device)

    def prefit(self, train: EEGDataset, val: EEGDataset | None = None) -> None:
        """Stages 1–2 (the encoder and the saliency GAN) need no diffusion model: train them ahead."""
        self.check_params()
        check_trainable(train)
        self._fit_eeg_stages(train)

    def _fit_eeg_stages(self, train: EEGDataset) -> tuple[str, np.ndarray]:
        """Stages 1–2 through the stage cache; returns the encoder's key and the training features."""
        from reconstruct._common import fingerprint
        from reconstruct.saliency_gan import SaliencyGAN

        stages = self._stages()
        enc_key = stages.encoder_key(self.encoder_settings, self.seed, train)
        self.encoder_ = self.fit_encoder(train)
        feats = self.encoder_.encode(train.eeg)

        self.gan_ = None
        if self.use_saliency:
            gan_cfg = self.gan_config()
            gan_key = fingerprint("gan", enc_key, asdict(gan_cfg))[:24]

            def train_gan():
                images = train.load_images(size=gan_cfg.image_size)
                return SaliencyGAN(gan_cfg).fit(feats, images)

            self.gan_ = stages.get(gan_key, "gan", SaliencyGAN.load, train_gan)
        return enc_key, feats

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> NeuroImagen:
        from reconstruct._common import fingerprint
        from reconstruct.text_regressor import TextEmbeddingRegressor

        self.check_params()
        check_trainable(train)
        stages = self._stages()
        enc_key, feats = self._fit_eeg_stages(train)
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

            self.regressor_ = stages.get(reg_key, "regressor", TextEmbeddingRegressor.load, train_regressor)
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


def _resize(images: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or images.shape[1] == size:
        return images
    from metrics.image_ops import images_to_tensor, tensor_to_images

    return tensor_to_images(images_to_tensor(images, size))


# --- the Table-3 ablations as registered variants -------------------------------------------------------
# Settings for ``eeg2img demo --quick``: every stage shorter, the demo diffusion model smaller.
QUICK_PARAMS = {**QUICK_ENCODER, "gan_epochs": 40, "regressor_epochs": 80, **QUICK_DIFFUSION}


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

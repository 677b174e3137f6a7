"""NeuroImagen (Lan et al. 2023), the suite's reference EEG-to-image reconstruction pipeline.

Importing this package registers the methods ``neuroimagen``, ``neuroimagen-saliency``,
``neuroimagen-label``, ``neuroimagen-blip`` and ``neuroimagen-blip-saliency``; it trains and
loads nothing. The stages are public, swappable components (see ``docs/neuroimagen.md``)::

    from reconstruct import TripletEEGEncoder, SaliencyGAN, TextEmbeddingRegressor, Img2ImgDiffusion

Heavy modules (torch, diffusers, transformers) are imported on first use of a component.
"""

from __future__ import annotations

import importlib

from reconstruct.pipeline import (
    NeuroImagen,
    NeuroImagenBlip,
    NeuroImagenBlipSaliency,
    NeuroImagenLabel,
    NeuroImagenSaliency,
)

_LAZY = {
    "EncoderConfig": "reconstruct.encoder",
    "TripletEEGEncoder": "reconstruct.encoder",
    "triplet_semihard_loss": "reconstruct.encoder",
    "triplet_batch_all_loss": "reconstruct.encoder",
    "SaliencyGANConfig": "reconstruct.saliency_gan",
    "SaliencyGAN": "reconstruct.saliency_gan",
    "diff_augment": "reconstruct.saliency_gan",
    "ssim_torch": "reconstruct.saliency_gan",
    "TextRegressorConfig": "reconstruct.text_regressor",
    "TextEmbeddingRegressor": "reconstruct.text_regressor",
    "CaptionEmbedder": "reconstruct.text_encoder",
    "build_clip_tokenizer": "reconstruct.text_encoder",
    "DiffusionConfig": "reconstruct.diffusion",
    "Img2ImgDiffusion": "reconstruct.diffusion",
    "check_sd_directory": "reconstruct.diffusion",
    "TinySDConfig": "reconstruct.tiny_sd",
    "train_tiny_sd": "reconstruct.tiny_sd",
    "cached_tiny_sd": "reconstruct.tiny_sd",
}

__all__ = [
    "CaptionEmbedder", "DiffusionConfig", "EncoderConfig", "Img2ImgDiffusion", "NeuroImagen", "NeuroImagenBlip",
    "NeuroImagenBlipSaliency", "NeuroImagenLabel", "NeuroImagenSaliency", "SaliencyGAN", "SaliencyGANConfig",
    "TextEmbeddingRegressor", "TextRegressorConfig", "TinySDConfig", "TripletEEGEncoder", "build_clip_tokenizer",
    "cached_tiny_sd", "check_sd_directory", "diff_augment", "ssim_torch", "train_tiny_sd", "triplet_batch_all_loss",
    "triplet_semihard_loss",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reconstruct' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__

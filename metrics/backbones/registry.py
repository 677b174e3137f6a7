"""Backbones by name: ``build_backbone("inception-tf", weights=..., resize="clean")`` and friends.

=================  ==========================================  =========================================
name               outputs / metrics                           weights
=================  ==========================================  =========================================
``inception-tf``   pool3 (FID, KID, nway), logits (IS)         ``inception-2015-12-05.pt`` (clean-fid) or
                                                               ``weights-inception-2015-12-05-6726825d.pth``
``clip``           image/text embeddings (CLIP score, nway)    open_clip checkpoint + model name
``alexnet``        features.4 / features.11 (nway)             ``alexnet-owt-7be5be79.pth``
``inception-tv``   avgpool (nway, MindEye's Inception)         ``inception_v3_google-0cc3c7bd.pth``
``effnet-b1``      avgpool (corrdist)                          ``efficientnet_b1-c27df63c.pth``
``swav``           avgpool (corrdist)                          ``swav_800ep_pretrain.pth.tar``
``classifier``     ImageNet logits (N-way accuracy)            any torchvision ImageNet state dict
``synth-cnn``      features (FID, KID, nway, corrdist),        trained on the dataset's stimuli (cached)
                   logits (IS, acc)
``proxy``          as synth-cnn, random weights                none (explicit opt-in only)
=================  ==========================================  =========================================
"""

from __future__ import annotations

from collections.abc import Callable

from eeg2img.errors import UserError
from metrics.backbones.base import Backbone


def _inception(**kw) -> Backbone:
    from metrics.backbones.inception import build_inception

    return build_inception(kw.pop("weights", None), **kw)


def _clip(**kw) -> Backbone:
    from metrics.backbones.clip import OpenClip

    return OpenClip(kw.pop("model"), kw.pop("weights", None), **kw)


def _alexnet(**kw) -> Backbone:
    from eeg2img.weights import resolve_weights
    from metrics.backbones.alexnet import AlexNetFeatures

    return AlexNetFeatures(resolve_weights("alexnet", kw.pop("weights", None)), **kw)


def _inception_tv(**kw) -> Backbone:
    from eeg2img.weights import resolve_weights
    from metrics.backbones.pooled import InceptionTorchvisionFeatures

    return InceptionTorchvisionFeatures(resolve_weights("inception-torchvision", kw.pop("weights", None)), **kw)


def _effnet_b1(**kw) -> Backbone:
    from eeg2img.weights import resolve_weights
    from metrics.backbones.pooled import EffNetB1Features

    return EffNetB1Features(resolve_weights("effnet-b1", kw.pop("weights", None)), **kw)


def _swav(**kw) -> Backbone:
    from eeg2img.weights import resolve_weights
    from metrics.backbones.pooled import SwAVFeatures

    return SwAVFeatures(resolve_weights("swav", kw.pop("weights", None)), **kw)


def _classifier(**kw) -> Backbone:
    from eeg2img.weights import resolve_weights
    from metrics.backbones.classifier import ImageNetClassifier

    weights = kw.pop("weights", None)
    if weights is None:
        weights = resolve_weights("resnet50")
    return ImageNetClassifier(weights, **kw)


def _synth_cnn(**kw) -> Backbone:
    from metrics.backbones.indomain import InDomainCNN

    dataset = kw.pop("dataset", None)
    if dataset is None:
        raise UserError("backbone synth-cnn: needs the dataset whose stimuli it is trained on; pass --dataset PATH")
    return InDomainCNN.for_dataset(dataset, **kw)


def _proxy(**kw) -> Backbone:
    from metrics.backbones.indomain import RandomProxy

    return RandomProxy(**kw)


BUILDERS: dict[str, Callable[..., Backbone]] = {
    "inception-tf": _inception,
    "clip": _clip,
    "alexnet": _alexnet,
    "inception-tv": _inception_tv,
    "effnet-b1": _effnet_b1,
    "swav": _swav,
    "classifier": _classifier,
    "synth-cnn": _synth_cnn,
    "proxy": _proxy,
}


def available_backbones() -> list[str]:
    return sorted(BUILDERS)


def build_backbone(name: str, **kwargs) -> Backbone:
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise UserError(f"backbone {name!r}: unknown; choose from {', '.join(available_backbones())}") from None
    return builder(**kwargs)


def register_backbone(name: str, builder: Callable[..., Backbone]) -> None:
    BUILDERS[name] = builder

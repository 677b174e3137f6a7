"""Image-embedding spaces for zero-shot retrieval: the space a method's ``embed`` predicts into, and the one the
candidate test images are embedded in — always the same network for both.

- ``synth-cnn:fold-train``: the in-domain CNN (:class:`metrics.backbones.indomain.InDomainCNN`, penultimate
  features) trained on the distinct stimuli and labels of the fold's *training* trials only. A zero-shot
  test concept is then unseen by the space as well as by the EEG model, as CLIP never saw THINGS-EEG2's
  EEG; a space trained on all stimuli would have learnt to tell the test concepts apart from their
  labels. The method (in ``fit``) and the runner (embedding the candidates) both build it from the fold's
  training trials with the same cache folder, so they get one network (trained once, cached by the
  image-set hash). A substitute for the published spaces (CLIP ViT-H-14 and others), labelled so.
"""

from __future__ import annotations

import os

import numpy as np

from eeg2img.errors import UserError

FOLD_TRAIN_CNN = "synth-cnn:fold-train"
EMBEDDING_SPACES = (FOLD_TRAIN_CNN,)


def check_space(owner: str, space: str) -> str:
    if space not in EMBEDDING_SPACES:
        raise UserError(f"{owner}: space={space!r} is not an embedding space here; choose one of "
                        f"{', '.join(EMBEDDING_SPACES)}")
    return space


class ImageEmbedder:
    """``embed(images) -> float32 (N, D)`` in ``space``; ``weights_sha256`` identifies the network."""

    def __init__(self, space: str, backbone):
        self.space = space
        self.backbone = backbone
        self.weights_sha256 = backbone.weights_sha256

    def embed(self, images: np.ndarray) -> np.ndarray:
        return self.backbone.extract(images, desc=f"embed ({self.space})")["features"].astype(np.float32)


def image_embedder(space: str, train, cache_dir: str | os.PathLike | None = None) -> ImageEmbedder:
    """The embedder of ``space`` for a fold whose training trials are ``train`` (an :class:`EEGDataset`)."""
    check_space("embedding", space)
    import torch

    from metrics.backbones.indomain import InDomainCNN

    if len(train) == 0:
        raise UserError(f"{space}: the fold has no training trials to build the embedding space from")
    with torch.random.fork_rng(devices=[]):  # building the network draws initial weights: keep the caller's RNG
        return ImageEmbedder(space, InDomainCNN.for_dataset(train, cache_dir=cache_dir))


__all__ = ["EMBEDDING_SPACES", "FOLD_TRAIN_CNN", "ImageEmbedder", "check_space", "image_embedder"]

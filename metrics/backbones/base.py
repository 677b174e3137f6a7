"""What a metric backbone is: a named feature extractor with recorded weights and preprocessing.

A backbone maps uint8 ``(N, H, W, 3)`` images to a dict of named float64 outputs in **one** batched
pass, and says which output serves which metric:

- ``distribution_key`` — features whose distribution FID and KID compare;
- ``score_logits_key`` — classifier logits for the Inception Score;
- ``class_logits_key`` — classifier logits for N-way top-k accuracy;
- ``identification`` — ``{label: key}`` feature sets for N-way identification (``nway@<label>``);
- ``correlation_distance`` — ``{label: key}`` feature sets for MindEye's correlation distance (``corrdist@<label>``);
- ``encode_text`` — text embeddings for CLIP score (only backbones with ``has_text``).

Its :meth:`fingerprint` (name, weights sha256, preprocessing) keys the on-disk feature cache, so a
different file or resize policy can never reuse stale features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from eeg2img.errors import UserError


def default_device(device: str | torch.device | None = None) -> torch.device:
    from eeg2img.devices import resolve_device

    return resolve_device(device, "backbone")


def check_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    """Images as contiguous uint8 ``(N, H, W, 3)``; a UserError otherwise."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        shape = getattr(images, "shape", type(images).__name__)
        dtype = getattr(images, "dtype", "")
        raise UserError(f"{name}: expected uint8 (N, H, W, 3) RGB images, got {shape} {dtype}; "
                        "convert with eeg2img.datasets.base.read_rgb")
    if len(images) == 0:
        raise UserError(f"{name}: no images; pass at least one")
    return np.ascontiguousarray(images)


class Backbone:
    """Base class: subclasses set the class attributes and implement :meth:`forward_batch`."""

    name: str = "backbone"
    preprocessing: str = ""
    distribution_key: str | None = None
    score_logits_key: str | None = None
    class_logits_key: str | None = None
    identification: Mapping[str, str] = {}
    correlation_distance: Mapping[str, str] = {}
    has_text: bool = False
    # Bump when the computation changes so cached features are recomputed.
    version: int = 1

    def __init__(self, device: str | torch.device | None = None, batch_size: int = 32):
        self.device = default_device(device)
        self.batch_size = int(batch_size)
        self.weights_path: str | None = None
        self.weights_sha256: str | None = None
        self.weights_official: bool | None = None
        self.images_seen = 0  # images passed through the network (tests and benchmarks read these)
        self.batches_run = 0
        self.seconds = 0.0  # wall time spent in forward passes (images and text)

    # --- what subclasses provide ------------------------------------------------------------------
    def forward_batch(self, images: np.ndarray) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        raise UserError(f"backbone {self.name}: has no text encoder; use a CLIP backbone for CLIP score")

    # --- shared -------------------------------------------------------------------------------------
    def fingerprint(self) -> dict:
        return {"name": self.name, "weights_sha256": self.weights_sha256, "preprocessing": self.preprocessing,
                "version": self.version, "class": type(self).__qualname__}

    def provenance(self) -> dict:
        return {"backbone": self.name, "weights": self.weights_path, "sha256": self.weights_sha256,
                "official": self.weights_official, "preprocessing": self.preprocessing}

    @torch.inference_mode()
    def extract(self, images: np.ndarray, desc: str | None = None) -> dict[str, np.ndarray]:
        """Every output for every image, in one batched pass (float64 numpy arrays)."""
        import time

        from tqdm.auto import tqdm

        images = check_images(images)
        start = time.perf_counter()
        chunks: dict[str, list[np.ndarray]] = {}
        n_batches = math.ceil(len(images) / self.batch_size)
        for b in tqdm(range(n_batches), desc=desc or self.name, unit="batch", disable=None, leave=False):
            batch = images[b * self.batch_size:(b + 1) * self.batch_size]
            out = self.forward_batch(batch)
            self.batches_run += 1
            self.images_seen += len(batch)
            for key, value in out.items():
                chunks.setdefault(key, []).append(value.detach().to("cpu", torch.float64).reshape(len(batch), -1)
                                                  .numpy())
        out = {k: np.concatenate(v) for k, v in chunks.items()}
        self.seconds += time.perf_counter() - start
        return out

    def __repr__(self) -> str:
        sha = (self.weights_sha256 or "none")[:12]
        return f"{type(self).__name__}(name={self.name!r}, sha256={sha}, preprocessing={self.preprocessing!r})"


def load_state_dict_file(path: str, what: str) -> dict:
    """A state dict we did not write: ``torch.load(weights_only=True)`` and a one-line error otherwise."""
    import pickle
    import zipfile

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: not a loadable {what} state dict ({first}); pass the official file") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: does not hold a {what} state dict (a mapping of tensors); pass the official file")
    return dict(obj)


def load_into(module: torch.nn.Module, state: dict, path: str, what: str) -> torch.nn.Module:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        detail = lines[1][:160] if len(lines) > 1 else lines[0][:160]
        raise UserError(f"{path}: weights do not fit {what} ({detail}); pass the matching file") from None
    return module

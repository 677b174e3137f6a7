"""On-disk cache of backbone outputs for reference images.

The stimuli of a benchmark are evaluated again and again (every method, fold and seed), so their
features are stored once, keyed by everything that determines them: the backbone's fingerprint
(name, weights sha256, preprocessing including the resize policy, code version) and the sha256 of
the image set itself (shape and pixels, in order). A different weights file, resize policy or image
order therefore misses the cache instead of reusing stale numbers.

Entries are ``.npz`` files (``allow_pickle=False`` on read) written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np


def default_cache_dir() -> Path:
    from eeg2img.digest import cache_root

    return cache_root() / "features"


def image_set_hash(images: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(repr((tuple(images.shape), str(images.dtype))).encode())
    h.update(np.ascontiguousarray(images).data)
    return h.hexdigest()


class FeatureCache:
    """``get(fingerprint, image_hash)`` / ``put(...)`` of ``{name: array}`` dicts; counts hits and misses."""

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(fingerprint: dict, image_hash: str) -> str:
        blob = json.dumps({"backbone": fingerprint, "images": image_hash}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def path(self, fingerprint: dict, image_hash: str) -> Path:
        name = str(fingerprint.get("name", "backbone")).replace("/", "_")
        return self.root / f"{name}-{self.key(fingerprint, image_hash)[:32]}.npz"

    def get(self, fingerprint: dict, image_hash: str) -> dict[str, np.ndarray] | None:
        if not self.enabled:
            return None
        path = self.path(fingerprint, image_hash)
        try:
            with np.load(path, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            self.misses += 1
            return None  # absent or damaged: recompute and overwrite
        self.hits += 1
        return out

    def put(self, fingerprint: dict, image_hash: str, arrays: dict[str, np.ndarray]) -> Path | None:
        if not self.enabled:
            return None
        from eeg2img.atomic import write_with

        path = self.path(fingerprint, image_hash)

        def writer(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        try:
            return write_with(path, writer)
        except OSError:
            return None  # read-only cache folder: features are still returned, only not kept

"""Atomic writes: write next to the target, fsync, then rename, so a reader never sees half a file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path in the target's folder; on success it replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_with(target: str | Path, writer: Callable[[Path], Any]) -> Path:
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    return write_with(target, lambda p: p.write_text(text))


def write_json(target: str | Path, obj: Any) -> Path:
    from eeg2img.provenance import _jsonable

    return write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def write_png(target: str | Path, image) -> Path:
    from PIL import Image

    return write_with(target, lambda p: Image.fromarray(image).save(p, format="PNG"))


def write_parquet(target: str | Path, frame) -> Path:
    return write_with(target, lambda p: frame.to_parquet(p, index=False))


def write_csv(target: str | Path, frame) -> Path:
    return write_with(target, lambda p: frame.to_csv(p, index=False))


@contextmanager
def build_lock(target: str | Path):
    """Hold an exclusive lock on ``target`` (an entry about to be built) across processes.

    Cache entries shared by many cells — the demo diffusion model, an encoder, a backbone — are built
    by whichever process needs them first; another process that needs the same entry waits here and
    then loads it instead of building it a second time. The lock is an advisory ``flock`` on a
    ``.lock`` file beside the entry, released when the holder exits, however it exits.
    """
    import fcntl

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)

"""File digests and the cache root: one copy of each for the whole suite.

``sha256_of(path)`` hashes a file once per version: the digest is remembered in memory and in a record
under ``$EEG2IMG_CACHE/sha256/`` keyed by the file's resolved path, size, modification time and inode
(hashing a 3 GB EEG file takes tens of seconds). Nothing is ever written beside the file itself, so a
read-only dataset or weights folder works and stays untouched; when the cache cannot be written either,
the digest is simply recomputed next time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from eeg2img.errors import UserError, path_error

_MEMO: dict[tuple, str] = {}


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` when given, else ``$EEG2IMG_CACHE``, else ``~/.cache/eeg2img``."""
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("EEG2IMG_CACHE") or Path.home() / ".cache" / "eeg2img").expanduser()


def _identity(path: Path) -> tuple:
    try:
        stat = path.stat()
    except PermissionError as err:
        raise path_error(err, "check its permissions") from None
    except OSError:
        raise UserError(f"{path}: cannot read file; check the path") from None
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def _record_path(identity: tuple) -> Path:
    return cache_root() / "sha256" / f"{hashlib.sha256(identity[0].encode()).hexdigest()[:32]}.json"


def remember(path: str | os.PathLike, digest: str) -> None:
    """Record a digest computed elsewhere (a download hashed while it arrived)."""
    identity = _identity(Path(path))
    _MEMO[identity] = digest
    record = {"path": identity[0], "size": identity[1], "mtime_ns": identity[2], "inode": identity[3], "sha256": digest}
    try:
        from eeg2img.atomic import write_text

        write_text(_record_path(identity), json.dumps(record) + "\n")
    except OSError:
        pass  # read-only cache: the digest is still right, only recomputed next time


def sha256_of(path: str | os.PathLike) -> str:
    """sha256 of a file, cached (in memory and under ``$EEG2IMG_CACHE``) by path, size, mtime and inode."""
    path = Path(path)
    identity = _identity(path)
    if identity in _MEMO:
        return _MEMO[identity]
    try:
        record = json.loads(_record_path(identity).read_text())
        if (record["path"], record["size"], record["mtime_ns"], record["inode"]) == identity \
                and len(str(record["sha256"])) == 64:
            _MEMO[identity] = str(record["sha256"])
            return _MEMO[identity]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
    except PermissionError as err:
        raise path_error(err, "check its permissions") from None
    remember(path, h.hexdigest())
    return _MEMO[identity]


def document_digest(doc: dict, *leave_out: str) -> str:
    """sha256 of a JSON document without its ``leave_out`` keys (canonical JSON: sorted keys, no spaces).

    The id of a document that carries its own id, and parts that must not decide it (local paths).
    """
    body = {k: v for k, v in doc.items() if k not in leave_out}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

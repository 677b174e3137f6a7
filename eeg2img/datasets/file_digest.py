"""SHA-256 of big source files, computed once per file version.

Hashing a 3 GB EEG file takes tens of seconds, so the digest is cached in a sidecar
``<file>.sha256.json`` keyed by size and modification time. The sidecar is a convenience: when it
cannot be written (read-only data folder), the digest is simply recomputed next time.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from eeg2img.atomic import write_text
from eeg2img.datasets.base import sha256_file

_HEX64 = re.compile(r"[0-9a-f]{64}")


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def cached_sha256(path: str | os.PathLike) -> str:
    path = Path(path)
    stat = path.stat()
    sidecar = sidecar_path(path)
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
        if (
            record["size"] == stat.st_size
            and record["mtime_ns"] == stat.st_mtime_ns
            and _HEX64.fullmatch(str(record["sha256"]))
        ):
            return str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = sha256_file(path)
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    try:
        write_text(sidecar, json.dumps(record) + "\n")
    except OSError:
        pass  # read-only data folder: the digest is still right, only not cached
    return digest

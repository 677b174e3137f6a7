"""Provenance: what produced a result — config hash, data and split fingerprints, weights, versions, device."""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "eeg2img-bench",
    "numpy",
    "scipy",
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "torchmetrics",
    "torch-fidelity",
    "clean-fid",
    "open_clip_torch",
    "scikit-learn",
    "scikit-image",
    "pandas",
    "pillow",
    "mne",
)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(obj: Any):
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return sorted(obj) if isinstance(obj, (set, frozenset)) else list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def config_hash(config: Any) -> str:
    """sha256 of the canonical JSON of a configuration (key order does not matter)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def package_versions(names=TRACKED_PACKAGES) -> dict[str, str]:
    return dict(_package_versions(tuple(names)))


@functools.lru_cache(maxsize=4)  # read once per process: importlib.metadata scans every installed package
def _package_versions(names: tuple[str, ...]) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit(path: Path | None = None) -> str | None:
    return _git_commit(Path(path or Path(__file__).resolve().parent.parent))


@functools.lru_cache(maxsize=4)  # two git processes per cell otherwise; the checkout does not change mid-run
def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, timeout=5, check=False,
    ).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def device_description() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"cuda:{torch.cuda.get_device_name(0)}"
    except Exception:  # noqa: BLE001 - provenance must never fail a run
        pass
    return f"cpu:{platform.processor() or platform.machine()}"


def provenance(**fields: Any) -> dict[str, Any]:
    """A provenance record: the given fields plus versions, commit, device and time."""
    record = dict(fields)
    record.setdefault("packages", package_versions())
    record.setdefault("git_commit", git_commit())
    record.setdefault("device", device_description())
    record.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    return record

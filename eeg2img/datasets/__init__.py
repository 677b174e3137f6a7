"""Dataset loaders: every one returns an :class:`EEGDataset`.

``load_dataset(path)`` picks the loader from what ``path`` is: an EEG-CVPR40 ``.pth`` file, a
THINGS-EEG2 folder (``sub-*/preprocessed_eeg_*.npy``), or a synthetic-data folder holding
``eeg_synth.pth``.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path

from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError

SYNTHETIC_FILE = "eeg_synth.pth"

__all__ = [
    "EEGDataset",
    "generate_synthetic",
    "load_cvpr40",
    "load_dataset",
    "load_official_split",
    "load_things_eeg2",
]


def load_dataset(path: str | os.PathLike, **options) -> EEGDataset:
    """Load whatever dataset ``path`` holds; ``options`` go to the matching loader."""
    from eeg2img.datasets.cvpr40 import load_cvpr40
    from eeg2img.datasets.things_eeg2 import load_things_eeg2

    path = Path(path)
    if path.is_file() and path.suffix == ".pth":
        return _call(load_cvpr40, path, options, "EEG-CVPR40 .pth files")
    if path.is_dir():
        if any(path.glob("sub-*/preprocessed_eeg_*.npy")):
            return _call(load_things_eeg2, path, options, "THINGS-EEG2 folders")
        if (path / SYNTHETIC_FILE).is_file():
            return _call(load_cvpr40, path / SYNTHETIC_FILE, options, "EEG-CVPR40 .pth files")
    if not path.exists():
        raise UserError(
            f"{path}: not found; pass an EEG-CVPR40 .pth file, a THINGS-EEG2 folder or a synthetic-data folder"
        )
    raise UserError(
        f"{path}: not a dataset; expected an EEG-CVPR40 .pth file, a THINGS-EEG2 folder holding "
        f"sub-01/preprocessed_eeg_training.npy, or a folder holding {SYNTHETIC_FILE} (eeg2img data synth)"
    )


def _call(loader, path: Path, options: dict, kind: str) -> EEGDataset:
    accepted = list(inspect.signature(loader).parameters)[1:]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise UserError(
            f"{path}: option {', '.join(unknown)} does not apply to {kind}; options are {', '.join(accepted)}"
        )
    return loader(path, **options)


# Loaders are imported on first use: the EEG-CVPR40 one needs torch, which modules that only want
# EEGDataset should not pay for, and the synthetic generator is a separate component.
_LAZY = {
    "load_cvpr40": "eeg2img.datasets.cvpr40",
    "load_official_split": "eeg2img.datasets.cvpr40",
    "load_things_eeg2": "eeg2img.datasets.things_eeg2",
    "generate_synthetic": "eeg2img.datasets.synthetic",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

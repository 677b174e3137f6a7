"""The one dataset abstraction every loader returns and every method consumes.

An :class:`EEGDataset` is a set of trials (EEG ``channels × samples`` float32, class label, stimulus
image id, subject, optional block/session) plus access to the stimulus images and captions.

Methods never index the full dataset: the runner hands them ``dataset.subset(train_idx)`` and, for
test trials, ``dataset.subset(test_idx).blind()`` — a view whose labels, image ids, captions and
images raise :class:`~eeg2img.errors.LeakageError` when touched, so a method cannot peek at what it
is asked to reconstruct (oracles, which are allowed to, receive the unblinded view).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from eeg2img.errors import LeakageError, UserError, path_error

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".JPEG", ".JPG", ".PNG", ".webp", ".bmp")


class DatasetWarning(UserWarning):
    """A file was read under a documented rule its user should know about (a peer's format quirk resolved,
    an ambiguous split file's reading chosen); the message names the file and the rule."""


def label_caption(class_name: str) -> str:
    """NeuroImagen's label caption: "an image of <class>" (with the article for plain names)."""
    article = "an" if class_name[:1].lower() in "aeiou" else "a"
    return f"an image of {article} {class_name}"


@dataclass(frozen=True, eq=False)
class EEGDataset:
    """Trials and stimuli. Arrays are aligned on the first axis (one entry per trial)."""

    eeg: np.ndarray  # (N, C, T) float32
    labels_: np.ndarray  # (N,) int64, index into class_names
    image_ids_: np.ndarray  # (N,) str, stimulus file stem
    subjects: np.ndarray  # (N,) int64
    trial_ids: np.ndarray  # (N,) str, unique and stable (file order), used to name outputs
    class_names: tuple[str, ...]
    name: str
    source: Path | None = None
    image_root: Path | None = None
    captions_: Mapping[str, str] = field(default_factory=dict)  # image_id -> descriptive caption
    blocks: np.ndarray | None = None  # (N,) recording block, when known
    sessions: np.ndarray | None = None  # (N,) session, when known
    partitions: np.ndarray | None = None  # (N,) "train"/"test" when the dataset defines it
    ch_names: tuple[str, ...] | None = None
    sfreq: float | None = None
    latents: Mapping[str, np.ndarray] | None = None  # ground truth per image (synthetic data)
    latent_image_ids: np.ndarray | None = None  # row order of ``latents``
    fingerprint: str = ""  # sha256 identifying the source data
    image_files: Mapping[str, Path] | None = None  # image_id -> file, where stems alone cannot find it (THINGS)
    raw_count: int | None = None  # segments in the source file before filtering (official split files index those)
    raw_subjects: np.ndarray | None = None  # (raw_count,) subject of every source segment, filtered out or not
    # How the loader read the source, beside the fingerprint: segments dropped by reason, format quirks
    # resolved. JSON-ready; shown by ``eeg2img data info``.
    provenance: Mapping[str, Any] = field(default_factory=dict)
    blinded: bool = False

    def __post_init__(self) -> None:
        n = len(self.eeg)
        if self.eeg.ndim != 3:
            raise UserError(f"{self._where()}: EEG must be trials × channels × samples, got shape {self.eeg.shape}")
        for attr in ("labels_", "image_ids_", "subjects", "trial_ids"):
            if len(getattr(self, attr)) != n:
                raise UserError(f"{self._where()}: {attr.rstrip('_')} has {len(getattr(self, attr))} entries for {n} trials")

    def _where(self) -> str:
        return str(self.source) if self.source else self.name

    # --- trial fields that a blinded view hides -------------------------------------------------
    @property
    def labels(self) -> np.ndarray:
        self._check_not_blind("labels")
        return self.labels_

    @property
    def image_ids(self) -> np.ndarray:
        self._check_not_blind("image ids")
        return self.image_ids_

    def _check_not_blind(self, what: str) -> None:
        if self.blinded:
            raise LeakageError(f"{what} of test trials are hidden from methods (blinded view of {self.name})")

    # --- shape -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.eeg)

    @property
    def n_channels(self) -> int:
        return int(self.eeg.shape[1])

    @property
    def n_samples(self) -> int:
        return int(self.eeg.shape[2])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def subject_ids(self) -> tuple[int, ...]:
        return tuple(int(s) for s in np.unique(self.subjects))

    def unique_image_ids(self) -> list[str]:
        """Distinct stimulus ids in first-seen order."""
        _, first = np.unique(self.image_ids, return_index=True)
        return [str(self.image_ids_[i]) for i in sorted(first)]

    # --- views -----------------------------------------------------------------------------------
    def subset(self, indices: Sequence[int] | np.ndarray) -> EEGDataset:
        idx = np.asarray(indices, dtype=np.int64)
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return replace(
            self,
            eeg=self.eeg[idx],
            labels_=self.labels_[idx],
            image_ids_=self.image_ids_[idx],
            subjects=self.subjects[idx],
            trial_ids=self.trial_ids[idx],
            blocks=pick(self.blocks),
            sessions=pick(self.sessions),
            partitions=pick(self.partitions),
        )

    def blind(self) -> EEGDataset:
        """The view a non-oracle method gets for test trials: EEG, subject and trial id only."""
        return replace(self, blinded=True)

    def for_subject(self, subject: int) -> EEGDataset:
        if subject not in self.subject_ids:
            raise UserError(f"{self._where()}: unknown subject {subject}; subjects are {list(self.subject_ids)}")
        return self.subset(np.flatnonzero(self.subjects == subject))

    # --- stimuli -----------------------------------------------------------------------------------
    def label_caption(self, label: int) -> str:
        return label_caption(self.class_names[int(label)])

    def label_captions(self) -> list[str]:
        """The label caption of every trial."""
        return [self.label_caption(y) for y in self.labels]

    def captions(self) -> list[str]:
        """The descriptive caption of every trial (the label caption where none is known)."""
        caps = self.captions_
        return [caps.get(str(i)) or self.label_caption(y) for i, y in zip(self.image_ids, self.labels)]

    def image_path(self, image_id: str) -> Path:
        self._check_not_blind("stimulus images")
        if self.image_files and str(image_id) in self.image_files:
            return Path(self.image_files[str(image_id)])
        return _resolve_image(self.image_root, str(image_id), self._where())

    def load_images(self, image_ids: Sequence[str] | None = None, size: int | None = None) -> np.ndarray:
        """Stimuli as uint8 ``(N, H, W, 3)``; ``image_ids`` defaults to every trial's stimulus.

        Images of different sizes need ``size`` (square resize, bicubic).
        """
        self._check_not_blind("stimulus images")
        ids = [str(i) for i in (self.image_ids if image_ids is None else image_ids)]
        cache: dict[str, np.ndarray] = {}
        out = []
        for i in ids:
            if i not in cache:
                cache[i] = read_rgb(self.image_path(i), size)
            out.append(cache[i])
        if not out:
            return np.zeros((0, size or 1, size or 1, 3), np.uint8)
        shapes = {a.shape for a in out}
        if len(shapes) > 1:
            raise UserError(f"{self.image_root}: stimulus images differ in size {sorted(shapes)[:2]}; pass size=")
        return np.stack(out)

    def latents_for(self, image_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Ground-truth latents (synthetic data only), rows in the order of ``image_ids``."""
        self._check_not_blind("ground-truth latents")
        if self.latents is None or self.latent_image_ids is None:
            raise UserError(f"{self._where()}: this dataset has no ground-truth latents (only synthetic data does)")
        row = {str(k): n for n, k in enumerate(self.latent_image_ids)}
        idx = np.array([row[str(i)] for i in image_ids], dtype=np.int64)
        return {k: np.asarray(v)[idx] for k, v in self.latents.items()}

    def summary(self) -> dict:
        """The ``eeg2img data info --json`` record."""
        return {
            "n_trials": len(self),
            "subjects": list(self.subject_ids),
            "n_classes": int(len(np.unique(self.labels_))),
            "n_images": int(len(np.unique(self.image_ids_))),
            "n_channels": self.n_channels,
            "n_samples": self.n_samples,
            **({"provenance": dict(self.provenance)} if self.provenance else {}),
        }


def _resolve_image(root: Path | None, image_id: str, where: str) -> Path:
    if root is None:
        raise UserError(f"{where}: no stimulus image directory; pass the folder holding {image_id}.*")
    for ext in IMAGE_EXTENSIONS:
        for candidate in (root / f"{image_id}{ext}", root / image_id.split("_")[0] / f"{image_id}{ext}"):
            if candidate.is_file():
                return candidate
    raise UserError(f"{root}: stimulus image {image_id} not found (expected {root / image_id}.png or .JPEG)")


# Larger images are refused before they are decoded: a small file can declare billions of pixels.
MAX_IMAGE_PIXELS = 8192 * 8192


def _too_large(path: Path, declared: str) -> UserError:
    return UserError(f"{path}: declares {declared} pixels, over the limit of {MAX_IMAGE_PIXELS} (a decompression "
                     "bomb or a mistaken file); replace it with an image of a normal size")


def open_image(path: Path):
    """``PIL.Image.open`` that refuses oversized images before decoding and names the cause in one line."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(path)
    except Image.DecompressionBombError:
        raise _too_large(path, f"over {2 * Image.MAX_IMAGE_PIXELS}") from None
    except PermissionError as err:
        raise path_error(err, "check the file's permissions") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{path}: unreadable image ({err.__class__.__name__}); replace or remove the file") from None
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        im.close()
        raise _too_large(path, f"{w}×{h}")
    return im


def read_rgb(path: Path, size: int | None = None) -> np.ndarray:
    """Read an image file as uint8 RGB (grayscale, palette, RGBA and 16-bit converted)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open_image(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                peak = 65535.0 if arr.max() > 255 else 255.0
                im = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8))
            if im.mode in ("RGBA", "LA", "P", "PA"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BICUBIC)
            return np.asarray(im, dtype=np.uint8).copy()
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{path}: unreadable image ({err.__class__.__name__}); replace or remove the file") from None



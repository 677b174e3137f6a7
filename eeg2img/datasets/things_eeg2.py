"""THINGS-EEG2 (Gifford et al., 2022) from the authors' preprocessed release.

Layout: ``<folder>/sub-01/preprocessed_eeg_training.npy`` and ``preprocessed_eeg_test.npy``, each a
dict pickled by ``np.save`` with ``preprocessed_eeg_data`` (images × repetitions × channels × times),
``ch_names`` and ``times``. Channel names and times are read from the file (the release keeps 17
channels at 100 Hz). The files are read through :mod:`eeg2img.datasets.safe_pickle`, never with
``allow_pickle=True``.

Files re-preprocessed by ATM's scripts and their forks (63 channels at 250 Hz) load too: they hold
the same dict written with plain ``pickle.dump``, and their data are cropped by 50 samples at the
front while ``times`` keeps every sample (ATM's own loader reads ``times[50:]``). When ``times`` is
longer than the data we take its last ``n_samples`` entries — the front crop those scripts make —
and say so in a :class:`~eeg2img.datasets.base.DatasetWarning` naming the file; any other length
mismatch is an error.

Image order follows the image set: concept folders sorted by name (``00001_aardvark``), images
sorted within each (``aardvark_01b.jpg``); training has 1654 concepts × 10 images, test 200 × 1.
Labels index one class list shared by both partitions: training concepts, then test concepts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eeg2img.datasets.base import IMAGE_EXTENSIONS, DatasetWarning, EEGDataset
from eeg2img.datasets.safe_pickle import load_pickled_object
from eeg2img.digest import sha256_of
from eeg2img.errors import UserError

PARTITION_FILES = {"train": "preprocessed_eeg_training.npy", "test": "preprocessed_eeg_test.npy"}
IMAGE_FOLDERS = {"train": "training_images", "test": "test_images"}
SYNTHETIC_ID_DIGITS = {"train": 5, "test": 3}
FILE_KEYS = {"preprocessed_eeg_data", "ch_names", "times"}
# The official design, used only to group trials into concepts when the image folders are absent.
TRAIN_IMAGES_PER_CONCEPT = 10

_SUBJECT_DIR = re.compile(r"sub-0*(\d+)")
_CONCEPT_DIR = re.compile(r"\d+_(.+)")
_EXTENSIONS = {e.lower() for e in IMAGE_EXTENSIONS}


@dataclass(frozen=True)
class PreprocessedEEG:
    """One ``preprocessed_eeg_*.npy`` file."""

    data: np.ndarray  # images × repetitions × channels × times
    ch_names: tuple[str, ...]
    times: np.ndarray  # one per sample of ``data``
    written_by: str = "npy"  # "npy" (np.save, the release) or "pickle" (pickle.dump, ATM-style preprocessing)
    leading_times_dropped: int = 0  # entries of the file's ``times`` before the data's first sample


@dataclass(frozen=True)
class _ImageCatalogue:
    stems: list[str]
    concept_of_image: np.ndarray  # index into concepts
    concepts: list[str]
    files: list[Path]


def read_preprocessed(path: str | os.PathLike) -> PreprocessedEEG:
    """Read and check one preprocessed file (restricted unpickling, exact dict shape)."""
    path = Path(path)
    obj, written_by = load_pickled_object(path)
    if not isinstance(obj, dict) or set(obj) != FILE_KEYS:
        found = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise UserError(f"{path}: expected a dict with keys {sorted(FILE_KEYS)}, found {found}")
    data, ch_names, times = obj["preprocessed_eeg_data"], obj["ch_names"], obj["times"]
    if not isinstance(data, np.ndarray) or data.ndim != 4:
        shape = data.shape if isinstance(data, np.ndarray) else type(data).__name__
        raise UserError(f"{path}: preprocessed_eeg_data must be images × repetitions × channels × times, got {shape}")
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise UserError(f"{path}: preprocessed_eeg_data has dtype {data.dtype}, expected real numbers")
    empty = [name for name, n in zip(("images", "repetitions", "channels", "times"), data.shape) if n == 0]
    if empty:
        raise UserError(f"{path}: preprocessed_eeg_data has 0 {empty[0]} (shape {data.shape}); every axis needs at "
                        "least one entry — regenerate the file")
    if isinstance(ch_names, np.ndarray):
        ch_names = ch_names.tolist()
    if not isinstance(ch_names, list | tuple) or not all(isinstance(c, str) for c in ch_names):
        raise UserError(f"{path}: ch_names must be a list of channel names")
    if len(ch_names) != data.shape[2]:
        raise UserError(f"{path}: {len(ch_names)} ch_names for {data.shape[2]} channels in preprocessed_eeg_data")
    times = np.asarray(times)
    n_samples = data.shape[3]
    if times.ndim != 1 or not np.issubdtype(times.dtype, np.number) or len(times) < n_samples:
        raise UserError(
            f"{path}: times must list the {n_samples} sample times, got shape {times.shape}; "
            "regenerate the file with one time per sample"
        )
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        raise UserError(f"{path}: times must increase strictly")
    dropped = len(times) - n_samples
    if dropped:
        # ATM-style preprocessing crops the data at the front and keeps every time (its loader reads times[50:])
        times = times[dropped:]
        warnings.warn(
            f"{path}: times has {dropped} more entries than the data has samples; read as data cropped by "
            f"{dropped} samples at the front (ATM-style preprocessing), first sample at {float(times[0]):g}",
            DatasetWarning,
            stacklevel=2,
        )
    return PreprocessedEEG(data=data, ch_names=tuple(ch_names), times=times.astype(np.float64),
                           written_by=written_by, leading_times_dropped=dropped)


def find_subjects(folder: str | os.PathLike) -> dict[int, Path]:
    """Subject number → folder, for ``sub-01`` and ``sub-1`` style names."""
    folder = Path(folder)
    found: dict[int, Path] = {}
    for child in sorted(folder.iterdir()):
        match = _SUBJECT_DIR.fullmatch(child.name)
        if match and child.is_dir():
            number = int(match.group(1))
            if number in found:
                raise UserError(
                    f"{folder}: both {found[number].name} and {child.name} claim subject {number}; keep one"
                )
            found[number] = child
    return found


def load_things_eeg2(
    folder: str | os.PathLike,
    average_repetitions: bool = True,
    subjects: Iterable[int] | None = None,
    partitions: Iterable[str] = ("train", "test"),
    images: str | os.PathLike | None = None,
) -> EEGDataset:
    """Load THINGS-EEG2 preprocessed EEG for some subjects and partitions.

    With ``average_repetitions`` (default) each image gives one trial, the mean over its
    repetitions; otherwise every repetition is a trial and ``sessions``/``blocks`` hold the
    repetition index. ``images`` is the folder holding ``training_images/`` and ``test_images/``
    (default: ``folder`` or ``folder/image_set``); without it, image ids are synthesised
    (``train_00000``, ``test_000``) and stimulus images are unavailable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: THINGS-EEG2 folder not found; pass the folder holding sub-01/, sub-02/, ...")
    parts = _check_partitions(partitions)
    available = find_subjects(folder)
    if not available:
        raise UserError(f"{folder}: no sub-XX folders; pass the folder holding sub-01/preprocessed_eeg_training.npy")
    chosen = _check_subjects(subjects, available, folder)
    catalogues = _image_catalogues(folder, images)

    pieces: dict[str, list] = {k: [] for k in ("eeg", "image", "subject", "rep", "trial", "partition")}
    n_images: dict[str, int] = {}
    reference: tuple[Path, PreprocessedEEG] | None = None
    read: list[Path] = []
    written_by: dict[str, int] = {}
    times_dropped: dict[str, int] = {}
    jobs = [(s, p) for s in chosen for p in parts]
    for subject, part in tqdm(jobs, desc="reading THINGS-EEG2", unit="file", disable=None, leave=False):
        path = available[subject] / PARTITION_FILES[part]
        if not path.is_file():
            raise UserError(
                f"{path}: not found; subject {subject} lacks the {part} partition: add the file, "
                f"or load the other partition alone (partitions=[...])"
            )
        rec = read_preprocessed(path)
        reference = _check_consistent(reference, path, rec)
        n_img, n_rep = rec.data.shape[:2]
        catalogue = catalogues.get(part)
        if catalogue is not None and n_img != len(catalogue.stems):
            raise UserError(
                f"{path}: {n_img} image conditions but {catalogue.files[0].parent.parent} holds "
                f"{len(catalogue.stems)} images; pass the matching image folder"
            )
        if n_images.setdefault(part, n_img) != n_img:
            raise UserError(f"{path}: {n_img} image conditions, other subjects have {n_images[part]}")
        eeg, image, rep = _trials(rec.data, average_repetitions)
        tag = [f"s{subject:02d}-{part}-{i:05d}" for i in image]
        if not average_repetitions:
            tag = [f"{t}-r{r}" for t, r in zip(tag, rep)]
        bad = np.flatnonzero(~np.isfinite(eeg).all(axis=(1, 2)))
        if len(bad):
            raise UserError(f"{path}: trial {tag[bad[0]]} has NaN or Inf EEG values; clean the file")
        pieces["eeg"].append(eeg)
        pieces["image"].append(image)
        pieces["rep"].append(rep)
        pieces["subject"].append(np.full(len(eeg), subject, np.int64))
        pieces["trial"].extend(tag)
        pieces["partition"].extend([part] * len(eeg))
        read.append(path)
        writer = "pickle.dump" if rec.written_by == "pickle" else "np.save"
        written_by[writer] = written_by.get(writer, 0) + 1
        if rec.leading_times_dropped:
            times_dropped[f"{path.parent.name}/{path.name}"] = rec.leading_times_dropped

    classes, image_ids, labels_of, image_files = _stimuli(catalogues, n_images)
    partition = np.array(pieces["partition"], dtype=str)
    image = np.concatenate(pieces["image"])
    labels = np.empty(len(image), np.int64)
    ids = np.empty(len(image), dtype=object)
    for part in parts:
        rows = partition == part
        labels[rows] = labels_of[part][image[rows]]
        ids[rows] = np.asarray(image_ids[part], dtype=object)[image[rows]]
    rep = np.concatenate(pieces["rep"])
    # hashed only once every file has passed its checks: bad input leaves no digest sidecar behind
    digests = [(f"{p.parent.name}/{p.name}", sha256_of(p)) for p in read]
    fingerprint = hashlib.sha256(
        json.dumps({"files": digests, "average_repetitions": bool(average_repetitions)}).encode()
    ).hexdigest()
    has_images = any(p in catalogues for p in parts)
    return EEGDataset(
        eeg=pieces["eeg"][0] if len(pieces["eeg"]) == 1 else np.concatenate(pieces["eeg"]),
        labels_=labels,
        image_ids_=ids.astype(str),
        subjects=np.concatenate(pieces["subject"]),
        trial_ids=np.array(pieces["trial"], dtype=str),
        class_names=tuple(classes),
        name=_dataset_name(folder),
        source=folder,
        image_root=_common_root(catalogues) if has_images else None,
        blocks=None if average_repetitions else rep,
        sessions=None if average_repetitions else rep.copy(),
        partitions=partition,
        ch_names=reference[1].ch_names,
        sfreq=_sfreq(reference[1].times),
        fingerprint=fingerprint,
        image_files=image_files,
        # what was read and how: which files are ATM-style (pickle.dump, front-cropped data)
        provenance={"files_written_by": written_by, **({"leading_times_dropped": times_dropped} if times_dropped else {})},
    )


# --- helpers -----------------------------------------------------------------------------------


def _dataset_name(folder: Path) -> str:
    """``things_eeg2``, or ``things_eeg2_synth`` for a set written by ``eeg2img data synth --format things-eeg2``
    (its ``synth_meta.json`` says so): synthetic data must never be shown beside the release's published numbers."""
    try:
        meta = json.loads((folder / "synth_meta.json").read_text())
    except (OSError, ValueError):
        return "things_eeg2"
    return "things_eeg2_synth" if isinstance(meta, dict) and meta.get("format") == "things-eeg2" else "things_eeg2"


def _check_partitions(partitions) -> tuple[str, ...]:
    parts = (partitions,) if isinstance(partitions, str) else tuple(partitions)
    unknown = [p for p in parts if p not in PARTITION_FILES]
    if unknown or not parts or len(set(parts)) != len(parts):
        raise UserError(f"partitions={parts!r}: expected one or both of 'train', 'test', each once")
    return parts


def _check_subjects(subjects, available: dict[int, Path], folder: Path) -> list[int]:
    if subjects is None:
        return sorted(available)
    chosen = [subjects] if isinstance(subjects, int) else list(subjects)
    for s in chosen:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or int(s) not in available:
            raise UserError(f"{folder}: unknown subject {s!r}; subjects are {sorted(available)}")
    if not chosen or len(set(chosen)) != len(chosen):
        raise UserError(f"subjects={chosen!r}: expected distinct subject numbers from {sorted(available)}")
    return [int(s) for s in chosen]


def _check_consistent(reference, path: Path, rec: PreprocessedEEG):
    if reference is None:
        return path, rec
    ref_path, ref = reference
    if rec.ch_names != ref.ch_names:
        raise UserError(
            f"{path}: channels {list(rec.ch_names)[:4]}... differ from {ref_path}; use files of one preprocessing"
        )
    if rec.times.shape != ref.times.shape or not np.allclose(rec.times, ref.times):
        raise UserError(f"{path}: sample times differ from {ref_path}; use files of one preprocessing")
    return reference


def _trials(data: np.ndarray, average: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_img, n_rep, n_ch, n_t = data.shape
    if average:
        return data.mean(axis=1, dtype=np.float64).astype(np.float32), np.arange(n_img), np.zeros(n_img, np.int64)
    eeg = data.reshape(n_img * n_rep, n_ch, n_t).astype(np.float32)
    return eeg, np.repeat(np.arange(n_img), n_rep), np.tile(np.arange(n_rep, dtype=np.int64), n_img)


def _sfreq(times: np.ndarray) -> float | None:
    if len(times) < 2:
        return None
    step = float(np.median(np.diff(times)))
    # the release stores seconds; a step of half a unit or more can only be milliseconds
    # rounded: a float step of 0.01 s reads as 99.99999999999991 Hz
    return round(1000.0 / step if step >= 0.5 else 1.0 / step, 6)


def _image_catalogues(folder: Path, images) -> dict[str, _ImageCatalogue]:
    if images is not None:
        root = Path(images)
        if not root.is_dir() or not any((root / d).is_dir() for d in IMAGE_FOLDERS.values()):
            raise UserError(f"{root}: expected a folder holding training_images/ and test_images/ (THINGS image set)")
    else:
        candidates = (folder, folder / "image_set")
        root = next((c for c in candidates if any((c / d).is_dir() for d in IMAGE_FOLDERS.values())), None)
        if root is None:
            return {}
    found = {part: _catalogue(root / sub) for part, sub in IMAGE_FOLDERS.items() if (root / sub).is_dir()}
    seen: dict[str, Path] = {}
    for cat in found.values():
        for stem, file in zip(cat.stems, cat.files):
            if stem in seen:
                raise UserError(f"{file}: image name {stem} also used by {seen[stem]}; image ids must be unique")
            seen[stem] = file
    return found


def _catalogue(image_dir: Path) -> _ImageCatalogue:
    stems, concept_of_image, concepts, files = [], [], [], []
    for concept_dir in sorted(p for p in image_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        members = sorted(
            p
            for p in concept_dir.iterdir()
            if p.is_file() and p.suffix.lower() in _EXTENSIONS and not p.name.startswith(".")
        )
        if not members:
            continue
        match = _CONCEPT_DIR.fullmatch(concept_dir.name)
        concepts.append((match.group(1) if match else concept_dir.name).replace("_", " "))
        for p in members:
            stems.append(p.stem)
            concept_of_image.append(len(concepts) - 1)
            files.append(p)
    if not stems:
        raise UserError(f"{image_dir}: no images in concept folders (expected e.g. 00001_aardvark/aardvark_01b.jpg)")
    return _ImageCatalogue(stems, np.array(concept_of_image, np.int64), concepts, files)


def _stimuli(catalogues: dict[str, _ImageCatalogue], n_images: dict[str, int]):
    """Shared class list, and per partition: image ids, label per image, image files."""
    classes: list[str] = []
    index: dict[str, int] = {}
    image_ids: dict[str, list[str]] = {}
    labels_of: dict[str, np.ndarray] = {}
    image_files: dict[str, Path] = {}

    def class_index(name: str) -> int:
        if name not in index:
            index[name] = len(classes)
            classes.append(name)
        return index[name]

    for part in ("train", "test"):
        cat = catalogues.get(part)
        if cat is not None:
            local = np.array([class_index(c) for c in cat.concepts], np.int64)
            image_ids[part], labels_of[part] = cat.stems, local[cat.concept_of_image]
            image_files.update(zip(cat.stems, cat.files))
        elif part in n_images:
            n = n_images[part]
            per_concept = TRAIN_IMAGES_PER_CONCEPT if part == "train" else 1
            first = len(classes)
            for k in range((n + per_concept - 1) // per_concept):
                class_index(f"concept_{first + k}")
            image_ids[part] = [f"{part}_{i:0{SYNTHETIC_ID_DIGITS[part]}d}" for i in range(n)]
            labels_of[part] = first + np.arange(n, dtype=np.int64) // per_concept
    return classes, image_ids, labels_of, image_files


def _common_root(catalogues: dict[str, _ImageCatalogue]) -> Path:
    # concept folder → partition folder → image-set root
    return next(iter(catalogues.values())).files[0].parent.parent.parent

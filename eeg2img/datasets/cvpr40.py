"""EEG-CVPR40 (Spampinato et al., CVPR 2017) in its released ``.pth`` format.

The file is a dict ``{"dataset": [...], "labels": [...], "images": [...]}``; every ``dataset`` item
holds ``eeg`` (channels × L float tensor, L varies around 500 at 1 kHz), ``label`` (index into
``labels``, ImageNet WordNet ids), ``image`` (index into ``images``, ImageNet file stems such as
``n02389026_3069``), ``subject`` and optionally ``block``. Segments with 450 ≤ L ≤ 600 are kept
and cropped to samples 20:460, as in the published loaders, except that a segment too short for the
whole window (450 ≤ L < 460) is dropped: the peers keep it with a window cut short (430-439 samples),
we keep one window length for every trial and count what was dropped, by reason, in the dataset's
``provenance``. The raw position of every segment is its trial id, so the official split files
(indices into the raw list, or into one subject's segments) still apply after filtering.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from eeg2img.datasets.base import DatasetWarning, EEGDataset
from eeg2img.digest import sha256_of
from eeg2img.errors import LeakageError, UserError, path_error

SFREQ = 1000.0
TOP_LEVEL_KEYS = ("dataset", "labels", "images")

# The 40 ImageNet classes of EEG-CVPR40, with the first ImageNet synonym as the readable name:
# label captions ("an image of a sorrel") need words, not WordNet ids.
CVPR40_CLASS_NAMES = {
    "n02106662": "German shepherd",
    "n02124075": "Egyptian cat",
    "n02281787": "lycaenid butterfly",
    "n02389026": "sorrel",
    "n02492035": "capuchin",
    "n02504458": "African elephant",
    "n02510455": "giant panda",
    "n02607072": "anemone fish",
    "n02690373": "airliner",
    "n02906734": "broom",
    "n02951358": "canoe",
    "n02992529": "cellular telephone",
    "n03063599": "coffee mug",
    "n03100240": "convertible",
    "n03180011": "desktop computer",
    "n03197337": "digital watch",
    "n03272010": "electric guitar",
    "n03272562": "electric locomotive",
    "n03297495": "espresso maker",
    "n03376595": "folding chair",
    "n03445777": "golf ball",
    "n03452741": "grand piano",
    "n03584829": "iron",
    "n03590841": "jack-o'-lantern",
    "n03709823": "mailbag",
    "n03773504": "missile",
    "n03775071": "mitten",
    "n03792782": "mountain bike",
    "n03792972": "mountain tent",
    "n03877472": "pajama",
    "n03888257": "parachute",
    "n03982430": "pool table",
    "n04044716": "radio telescope",
    "n04069434": "reflex camera",
    "n04086273": "revolver",
    "n04120489": "running shoe",
    "n07753592": "banana",
    "n07873807": "pizza",
    "n11939491": "daisy",
    "n13054560": "bolete",
}



def load_cvpr40(
    path: str | os.PathLike,
    images: str | os.PathLike | None = None,
    captions: str | os.PathLike | None = None,
    latents: str | os.PathLike | None = None,
    min_len: int = 450,
    max_len: int = 600,
    window: tuple[int, int] = (20, 460),
    name: str | None = None,
) -> EEGDataset:
    """Load an EEG-CVPR40 ``.pth`` file (or a synthetic file in the same format).

    Segments with ``min_len <= L <= max_len`` are kept and cropped to ``window`` (samples, end
    exclusive); a segment shorter than the window's end is dropped too, since it cannot be cropped.
    ``provenance`` counts the segments in the file, those kept, and those dropped by reason.
    ``images``, ``captions`` and ``latents`` default to ``images/``, ``captions.json`` and
    ``latents.npz`` beside the file when those exist.
    """
    path = Path(path)
    start, stop = _check_window(window, min_len, max_len)
    raw = _torch_load(path)
    records, label_names, image_stems = _top_level(raw, path)
    n_channels, lengths, subjects, labels, image_idx, blocks = _scan(records, path, label_names, image_stems)
    dropped = _dropped_by_reason(lengths, min_len, max_len, stop)
    passes = (lengths >= min_len) & (lengths <= max_len) & (lengths >= stop)
    keep = np.flatnonzero(passes)
    if len(keep) == 0:
        raise UserError(
            f"{path}: no segment has {min_len} <= length <= {max_len} and length >= {stop} "
            f"(lengths found {lengths.min()}-{lengths.max()}); adjust min_len/max_len/window"
        )

    width = max(5, len(str(len(records) - 1)))
    eeg = np.empty((len(keep), n_channels, stop - start), dtype=np.float32)
    for row, i in enumerate(tqdm(keep, desc=f"reading {path.name}", unit="trial", disable=None, leave=False)):
        segment = records[i]["eeg"][:, start:stop]
        eeg[row] = segment.numpy() if segment.dtype == torch.float32 else segment.to(torch.float32).numpy()
    bad = _first_non_finite(eeg)
    if bad is not None:
        raise UserError(f"{path}: trial {keep[bad]:0{width}d} has NaN or Inf EEG values; clean or drop that segment")

    root = path.parent
    image_root = _optional_dir(images, root / "images", "images")
    caption_map = _read_captions(captions, root / "captions.json")
    latent_arrays, latent_ids = _read_latents(latents, root / "latents.npz")

    fingerprint = sha256_of(path)
    return EEGDataset(
        eeg=eeg,
        labels_=labels[keep],
        image_ids_=np.array([image_stems[j] for j in image_idx[keep]], dtype=str),
        subjects=subjects[keep],
        trial_ids=np.array([f"{i:0{width}d}" for i in keep], dtype=str),
        class_names=tuple(CVPR40_CLASS_NAMES.get(c, c) for c in label_names),
        name=name or path.stem,
        source=path,
        image_root=image_root,
        captions_=caption_map,
        blocks=blocks[keep],
        sfreq=SFREQ,
        latents=latent_arrays,
        latent_image_ids=latent_ids,
        fingerprint=fingerprint,
        raw_count=len(records),
        raw_subjects=subjects,
        provenance={
            "segments_in_file": len(records),
            "segments_kept": len(keep),
            "segments_dropped": dropped,
            "length_filter": {"min_len": min_len, "max_len": max_len, "window": [start, stop]},
        },
    )


def _dropped_by_reason(lengths: np.ndarray, min_len: int, max_len: int, stop: int) -> dict[str, int]:
    """Segments the length filter drops, each counted once under its first reason.

    ``shorter_than_window`` (``min_len <= L < stop``, 450 ≤ L < 460 by default) is where we part with the
    peers: they keep those segments with a window cut short (430-439 samples); we keep one window length.
    """
    too_short = lengths < min_len
    too_long = ~too_short & (lengths > max_len)
    short_window = ~too_short & ~too_long & (lengths < stop)
    return {
        "shorter_than_min_len": int(too_short.sum()),
        "shorter_than_window": int(short_window.sum()),
        "longer_than_max_len": int(too_long.sum()),
    }


POSITION_READINGS = ("auto", "full-list", "subject-filtered")
# The released split file made for one subject at a time; its name breaks ties between readings (see
# _choose_reading and docs/datasets.md, "Official splits with a subject filter").
SINGLE_SUBJECT_SUFFIX = "_single"


@dataclass(frozen=True)
class OfficialSplit:
    """One split of a ``block_splits_by_image_*.pth`` file, as rows of a loaded dataset."""

    parts: dict[str, np.ndarray]  # "train", "val", "test" → indices into the dataset, in the file's order
    reading: dict  # how the file's indices were read: file, split, positions, subjects, why (JSON-ready)


def load_official_split(
    split_path: str | os.PathLike,
    dataset: EEGDataset,
    split_index: int = 0,
    subjects: Iterable[int] | None = None,
    positions: str = "auto",
) -> dict[str, np.ndarray]:
    """Train/val/test indices into ``dataset`` from ``block_splits_by_image_{all,single}.pth``.

    See :func:`read_official_split`; this returns only its ``parts``.
    """
    return read_official_split(split_path, dataset, split_index, subjects, positions).parts


def read_official_split(
    split_path: str | os.PathLike,
    dataset: EEGDataset,
    split_index: int = 0,
    subjects: Iterable[int] | None = None,
    positions: str = "auto",
) -> OfficialSplit:
    """Read one split of an official split file, optionally for some subjects only.

    Without ``subjects`` the file indexes the raw segment list of the dataset file (*full-list*
    positions); segments the loader filtered out are dropped, and the order of the file is kept.
    With ``subjects`` only their trials are returned; for one subject the indices may instead be
    positions in that subject's own segments (*subject-filtered*, as DreamDiffusion reads
    ``block_splits_by_image_single.pth``). ``positions="auto"`` decides from the file's own index
    ranges, and by its name where they admit both readings (warned about); ``"full-list"`` or
    ``"subject-filtered"`` forces a reading. Indices that fit no reading are refused.
    """
    split_path = Path(split_path)
    if positions not in POSITION_READINGS:
        raise UserError(f"positions={positions!r}: expected one of {', '.join(POSITION_READINGS)}")
    split = _split_lists(split_path, split_index)
    chosen = _check_split_subjects(subjects, dataset, split_path)

    raw_ids = _raw_ids(dataset)
    lookup = np.full(int(raw_ids.max()) + 1 if len(raw_ids) else 0, -1, dtype=np.int64)
    lookup[raw_ids] = np.arange(len(raw_ids))
    n_raw = dataset.raw_count

    indices = {}
    for part in ("train", "val", "test"):
        idx = _index_array(split[part], split_path, part)
        if len(idx) and idx.min() < 0:
            raise UserError(f"{split_path}: {part} holds negative index {idx.min()}; the split file is damaged")
        if n_raw is not None and len(idx) and idx.max() >= n_raw:
            raise UserError(
                f"{split_path}: {part} index {idx.max()} is out of range for {dataset.name} ({n_raw} segments); "
                "use the split file that belongs to this dataset"
            )
        indices[part] = idx
    reading, why = _choose_reading(split_path, indices, dataset, chosen, positions)
    if reading == "subject-filtered":
        # position k of the subject-filtered list is the subject's k-th segment in the file
        own = np.flatnonzero(dataset.raw_subjects == chosen[0])
        indices = {part: own[idx] for part, idx in indices.items()}

    parts = {}
    for part, idx in indices.items():
        inside = idx[idx < len(lookup)]
        mapped = lookup[inside]
        mapped = mapped[mapped >= 0]
        if chosen is not None:
            mapped = mapped[np.isin(dataset.subjects[mapped], chosen)]
        parts[part] = mapped
    if not any(len(v) for v in parts.values()):
        whose = f" of subject(s) {', '.join(map(str, chosen))}" if chosen is not None else ""
        raise UserError(
            f"{split_path}: no index of split {split_index} matches a loaded trial{whose} of {dataset.name}; "
            "use the split file that belongs to this dataset"
        )
    for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
        shared = np.intersect1d(parts[a], parts[b])
        if len(shared):
            raise LeakageError(f"{split_path}: {len(shared)} trials are in both {a} and {b} of split {split_index}")
    record = {"file": split_path.name, "split": split_index, "positions": reading,
              "subjects": None if chosen is None else [int(c) for c in chosen], "why": why}
    return OfficialSplit(parts=parts, reading=record)


def _split_lists(split_path: Path, split_index: int) -> dict:
    raw = _torch_load(split_path)
    splits = raw.get("splits") if isinstance(raw, dict) else None
    if not isinstance(splits, list | tuple) or not splits:
        keys = _describe_keys(raw)
        raise UserError(f"{split_path}: not an EEG-CVPR40 split file (found {keys}); expected {{'splits': [...]}}")
    if isinstance(split_index, bool) or not isinstance(split_index, int) or not 0 <= split_index < len(splits):
        raise UserError(
            f"{split_path}: split {split_index} out of range; the file holds {len(splits)} splits (0-{len(splits) - 1})"
        )
    split = splits[split_index]
    if not isinstance(split, dict) or not {"train", "val", "test"} <= set(split):
        raise UserError(f"{split_path}: split {split_index} lacks train/val/test index lists")
    return split


def _check_split_subjects(subjects, dataset: EEGDataset, split_path: Path) -> list[int] | None:
    if subjects is None:
        return None
    chosen = [subjects] if isinstance(subjects, int | np.integer) else list(subjects)
    known = sorted(set(dataset.subjects.tolist()))
    for s in chosen:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or int(s) not in known:
            raise UserError(f"{split_path}: unknown subject {s!r} for {dataset.name}; subjects are {known}")
    if not chosen or len(set(chosen)) != len(chosen):
        raise UserError(f"subjects={chosen!r}: expected distinct subject numbers from {known}")
    return [int(s) for s in chosen]


def _choose_reading(split_path: Path, indices: dict[str, np.ndarray], dataset: EEGDataset,
                    chosen: list[int] | None, positions: str) -> tuple[str, str]:
    """``("full-list" | "subject-filtered", why)`` for the split's indices; refuses a forced reading they do not fit."""
    single = len(chosen) == 1 if chosen is not None else False
    if positions == "full-list" or (positions == "auto" and not single):
        if positions == "auto" and chosen is None:
            _warn_if_single_subject_file(split_path, indices, dataset)
        return "full-list", "requested" if positions == "full-list" else "no single-subject filter"
    if not single:
        raise UserError(f"{split_path}: positions='subject-filtered' needs exactly one subject (subjects=[4]), got "
                        f"{'none' if chosen is None else chosen}")
    if dataset.raw_subjects is None or dataset.raw_count is None or len(dataset.raw_subjects) != dataset.raw_count:
        raise UserError(f"{dataset.name}: the subject of every raw segment is unknown; load the dataset with load_cvpr40")
    own = np.flatnonzero(dataset.raw_subjects == chosen[0])
    everything = np.concatenate(list(indices.values()))
    largest = int(everything.max()) if len(everything) else -1
    if largest >= len(own):
        # an index beyond the subject's own segments can only be a position in the full list
        if positions == "subject-filtered":
            raise UserError(
                f"{split_path}: index {largest} is beyond subject {chosen[0]}'s {len(own)} segments, so it cannot "
                "index the subject-filtered list; use positions='full-list' (or 'auto')"
            )
        return "full-list", f"index {largest} >= subject {chosen[0]}'s {len(own)} segments"
    if positions == "subject-filtered":
        return "subject-filtered", "requested"
    if np.array_equal(own[: largest + 1], np.arange(largest + 1)):
        return "full-list", "both readings select the same segments"  # the subject's segments come first
    if not np.isin(everything, own).any():
        return "subject-filtered", f"as full-list positions no index is a segment of subject {chosen[0]}"
    # Both readings fit. The name decides: the authors' ``_single`` file is the one meant for one subject at a time.
    if split_path.stem.endswith(SINGLE_SUBJECT_SUFFIX):
        reading, rule = "subject-filtered", f"the name ends in {SINGLE_SUBJECT_SUFFIX}"
    else:
        reading, rule = "full-list", f"the name does not end in {SINGLE_SUBJECT_SUFFIX}"
    warnings.warn(
        f"{split_path}: every index is below subject {chosen[0]}'s {len(own)} segments, so it may index either the "
        f"full list or the subject's own segments; read as {reading} positions because {rule}; pass "
        "positions='full-list' or 'subject-filtered' to choose",
        DatasetWarning,
        stacklevel=3,
    )
    return reading, f"ambiguous ranges; {rule}"


def _warn_if_single_subject_file(split_path: Path, indices: dict[str, np.ndarray], dataset: EEGDataset) -> None:
    """A ``_single`` file whose indices all fit inside one subject's segments, used without a subject filter,
    is most likely being misread: say so rather than silently splitting only the first segments of the file."""
    everything = np.concatenate(list(indices.values()))
    if not split_path.stem.endswith(SINGLE_SUBJECT_SUFFIX) or dataset.raw_subjects is None or not len(everything):
        return
    fewest = int(np.unique(dataset.raw_subjects, return_counts=True)[1].min())
    if len(np.unique(dataset.raw_subjects)) > 1 and int(everything.max()) < fewest:
        warnings.warn(
            f"{split_path}: every index is below {fewest} (the fewest segments of any subject), so this file may "
            "index one subject's segments; read as full-list positions of all subjects — pass subjects=[N] "
            "(--subjects N) to apply it to one subject",
            DatasetWarning,
            stacklevel=4,
        )


# --- reading -----------------------------------------------------------------------------------


def _torch_load(path: Path):
    if not path.exists():
        raise UserError(f"{path}: file not found; check the path")
    if not path.is_file():
        raise UserError(f"{path}: is a folder, expected a .pth file")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except PermissionError as err:
        raise path_error(err, "check the file's permissions") from None
    except pickle.UnpicklingError as err:
        refused = re.search(r"\bGLOBAL ([\w.]+)", str(err))  # torch names the refused global this way
        if refused:
            raise UserError(
                f"{path}: refusing to unpickle {refused.group(1)}: the file may carry code; "
                "use the file as released by the dataset authors"
            ) from None
        raise UserError(f"{path}: corrupt or not a torch file (unpickling failed); download the file again") from None
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        MemoryError,
    ) as err:
        raise UserError(
            f"{path}: corrupt or truncated file ({err.__class__.__name__}); download the file again"
        ) from None


def _first_non_finite(eeg: np.ndarray, chunk: int = 256) -> int | None:
    # numpy in chunks: per-trial torch.isfinite is slow under thread contention, and one
    # whole-array mask would cost a quarter of the array's memory
    for first in range(0, len(eeg), chunk):
        finite = np.isfinite(eeg[first : first + chunk]).all(axis=(1, 2))
        if not finite.all():
            return first + int(np.argmin(finite))
    return None


def _describe_keys(raw) -> str:
    if isinstance(raw, dict):
        keys = [str(k) for k in list(raw)[:5]]
        more = ", ..." if len(raw) > 5 else ""
        return f"top-level keys {', '.join(keys)}{more}" if keys else "an empty dict"
    return f"a {type(raw).__name__}"


def _top_level(raw, path: Path) -> tuple[list, list[str], list[str]]:
    if not isinstance(raw, dict) or not set(TOP_LEVEL_KEYS) <= set(raw):
        raise UserError(
            f"{path}: not an EEG-CVPR40 dataset (found {_describe_keys(raw)}); expected a dict with keys "
            "dataset, labels, images"
        )
    records, labels, images = raw["dataset"], raw["labels"], raw["images"]
    for key, value in (("dataset", records), ("labels", labels), ("images", images)):
        if not isinstance(value, list | tuple):
            raise UserError(f"{path}: '{key}' is a {type(value).__name__}, expected a list")
    if not records:
        raise UserError(f"{path}: 'dataset' holds no trials")
    for key, names in (("labels", labels), ("images", images)):
        if not all(isinstance(n, str) for n in names):
            raise UserError(f"{path}: '{key}' must be a list of strings")
    return list(records), list(labels), list(images)


def _scan(records: list, path: Path, label_names: list[str], image_stems: list[str]):
    """Check every item's fields; returns per-raw-item arrays."""
    n = len(records)
    subjects = np.empty(n, np.int64)
    labels = np.empty(n, np.int64)
    image_idx = np.empty(n, np.int64)
    blocks = np.empty(n, np.int64)
    lengths = np.empty(n, np.int64)
    n_channels = None
    for i, item in enumerate(records):
        if not isinstance(item, dict) or not {"eeg", "label", "image", "subject"} <= set(item):
            raise UserError(f"{path}: dataset[{i}] must be a dict with eeg, label, image, subject")
        eeg = item["eeg"]
        if not isinstance(eeg, torch.Tensor) or eeg.ndim != 2 or eeg.is_complex() or eeg.dtype == torch.bool:
            shape = tuple(eeg.shape) if isinstance(eeg, torch.Tensor) else type(eeg).__name__
            raise UserError(f"{path}: dataset[{i}]['eeg'] must be a real channels × samples tensor, got {shape}")
        lengths[i] = eeg.shape[1]
        if n_channels is None:
            n_channels = eeg.shape[0]
        elif eeg.shape[0] != n_channels:
            raise UserError(
                f"{path}: dataset[{i}]['eeg'] has {eeg.shape[0]} channels, dataset[0] has {n_channels}; "
                "every segment must be channels × samples with the same channels"
            )
        labels[i] = _as_index(item["label"], len(label_names), path, i, "label", "labels")
        image_idx[i] = _as_index(item["image"], len(image_stems), path, i, "image", "images")
        subjects[i] = _as_int(item["subject"], path, i, "subject")
        blocks[i] = _as_int(item["block"], path, i, "block") if "block" in item else labels[i]
    return n_channels, lengths, subjects, labels, image_idx, blocks


def _as_int(value, path: Path, i: int, key: str) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise UserError(f"{path}: dataset[{i}]['{key}'] must be an integer, got {value!r}")
    return int(value)


def _as_index(value, size: int, path: Path, i: int, key: str, table: str) -> int:
    index = _as_int(value, path, i, key)
    if not 0 <= index < size:
        raise UserError(f"{path}: dataset[{i}]['{key}'] = {index} is out of range for '{table}' ({size} entries)")
    return index


def _check_window(window, min_len: int, max_len: int) -> tuple[int, int]:
    try:
        start, stop = (int(v) for v in window)
    except (TypeError, ValueError):
        raise UserError(f"window={window!r}: expected (start, stop) in samples") from None
    if not 0 <= start < stop:
        raise UserError(f"window={window!r}: expected 0 <= start < stop")
    if min_len > max_len:
        raise UserError(f"min_len={min_len} > max_len={max_len}: expected min_len <= max_len")
    return start, stop


def _optional_dir(given, default: Path, what: str) -> Path | None:
    if given is None:
        return default if default.is_dir() else None
    given = Path(given)
    if not given.is_dir():
        raise UserError(f"{given}: {what} folder not found; pass an existing folder")
    return given


def _read_captions(given, default: Path) -> dict[str, str]:
    if given is None:
        if not default.is_file():
            return {}
        given = default
    given = Path(given)
    if not given.is_file():
        raise UserError(f"{given}: captions file not found; pass a JSON file {{image_id: caption}}")
    try:
        captions = json.loads(given.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(
            f"{given}: unreadable captions JSON ({err.__class__.__name__}); fix or remove the file"
        ) from None
    if not isinstance(captions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in captions.items()
    ):
        raise UserError(f"{given}: captions must be a JSON object {{image_id: caption}} of strings")
    return captions


def _read_latents(given, default: Path) -> tuple[dict[str, np.ndarray] | None, np.ndarray | None]:
    if given is None:
        if not default.is_file():
            return None, None
        given = default
    given = Path(given)
    if not given.is_file():
        raise UserError(f"{given}: latents file not found; pass an .npz with image_ids and arrays")
    try:
        with np.load(given, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise UserError(f"{given}: unreadable latents archive ({err.__class__.__name__}); regenerate it") from None
    if "image_ids" not in arrays:
        raise UserError(f"{given}: latents archive lacks 'image_ids'; expected image_ids plus one array per latent")
    ids = arrays.pop("image_ids").astype(str)
    for key, value in arrays.items():
        if len(value) != len(ids):
            raise UserError(f"{given}: latent '{key}' has {len(value)} rows for {len(ids)} image_ids")
    return arrays, ids


def _raw_ids(dataset: EEGDataset) -> np.ndarray:
    try:
        ids = np.array([int(t) for t in dataset.trial_ids], dtype=np.int64)
    except ValueError:
        raise UserError(
            f"{dataset.name}: trial ids are not raw EEG-CVPR40 indices; load the dataset with load_cvpr40"
        ) from None
    if len(np.unique(ids)) != len(ids):
        raise UserError(f"{dataset.name}: trial ids repeat; official splits need each raw segment once")
    return ids


def _index_array(values, path: Path, part: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.numpy()
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):
        arr = np.asarray([], dtype=object)
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise UserError(f"{path}: '{part}' must be a list of integer indices")
    return arr.astype(np.int64)

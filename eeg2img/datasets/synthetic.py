"""Synthetic EEG-CVPR40-format dataset with known ground truth (the suite's embedded default).

``generate_synthetic(out_dir)`` writes a complete, self-describing set that the EEG-CVPR40 loader
reads like the real thing, but whose every stimulus and every trial comes from a documented forward
model, so methods can be checked against ground truth and confounds can be switched on at will:

- ``eeg_synth.pth``: ``torch.save`` of ``{"dataset": [{"eeg": float32 C×n_samples, "label": int,
  "image": int, "subject": 1..N, "block": int}, ...], "labels": [class names], "images": [stems]}``
  (only tensors, ints, strings, lists and dicts: ``torch.load(weights_only=True)`` reads it). All
  trial tensors are views of one storage. Trials run by subject, then by recording block: each
  class is one contiguous block per subject (as in EEG-CVPR40), the class order per subject and the
  image order within a block are shuffled by the seed, every image is shown once per subject.
  ``block`` numbers the blocks of the whole file in recording order (unique across subjects).
- ``images/<stem>.png``: RGB stimuli; stems such as ``c07_0012`` (class 7, image 12).
- ``captions.json``: ``{stem: descriptive caption}``.
- ``latents.npz``: per image, rows in ``image_ids`` order: ``class_semantic`` (16-d), ``layout``
  (x, y, size, rotation, red, green, blue, background), ``latent`` (the 25-d vector fed to the
  forward model). Column names are in ``synth_meta.json``.
- ``block_splits_by_image_all.pth``: ``{"splits": [{"train", "val", "test"}]}``, trial indices split
  by image, 80/10/10 within every class (at least one validation and one test image per class).
- ``synth_meta.json``: every generation parameter, the seed, the forward-model version, channel
  names, sampling rate, per-subject parameters (SNR factor, alpha frequency, latencies...).

The stimuli are described in :mod:`eeg2img.datasets.synth_stimuli`, the forward model (latent →
ERP sources → subject-specific scalp mixing → pink/alpha/line/sensor noise → optional block drift)
in :mod:`eeg2img.datasets.synth_forward` and in ``docs/synthetic.md``.

The set is written into a temporary directory next to ``out_dir`` and moved into place; an older
set is replaced with its EEG file removed first and the new EEG file moved in last, so a set with
an ``eeg_synth.pth`` is always complete.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from eeg2img.atomic import current_umask
from eeg2img.datasets import synth_forward as fwd
from eeg2img.datasets import synth_stimuli as stim
from eeg2img.errors import UserError

SYNTHETIC_VERSION = "1"
EEG_FILE = "eeg_synth.pth"
SPLITS_FILE = "block_splits_by_image_all.pth"
CAPTIONS_FILE = "captions.json"
LATENTS_FILE = "latents.npz"
META_FILE = "synth_meta.json"
IMAGES_DIR = "images"
_RAW_FILE = "eeg.f32"


def generate_synthetic(
    out_dir: str | os.PathLike,
    subjects: int = 6,
    classes: int = 40,
    images_per_class: int = 50,
    seed: int = 0,
    image_size: int = 64,
    block_drift: float = 0.0,
    n_samples: int = 500,
    n_channels: int = 128,
    progress: bool = True,
    *,
    signal_strength: float = 1.0,
    subject_variability: float = 1.0,
) -> Path:
    """Write a synthetic set into ``out_dir`` and return the path of its EEG file.

    ``block_drift`` scales the per-block slow drift (0: none; 1.0: trial means identify the block);
    ``signal_strength`` scales every subject's stimulus-evoked response (1.0: the default SNR);
    ``subject_variability`` scales how far each subject departs from the shared forward model (scalp
    patterns, read-out weights, latencies; 0: identical subjects, 1.0: the default).
    """
    params = _validated_params(
        subjects=subjects,
        classes=classes,
        images_per_class=images_per_class,
        seed=seed,
        image_size=image_size,
        block_drift=block_drift,
        n_samples=n_samples,
        n_channels=n_channels,
        signal_strength=signal_strength,
        subject_variability=subject_variability,
    )
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a directory; pass a directory for the synthetic set")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700 would become the set's own mode
        _write_set(staging, params, progress)
        _move_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir / EEG_FILE


def ensure_synthetic(out_dir: str | os.PathLike, progress: bool = True, **params) -> Path:
    """The EEG file of the set in ``out_dir``, generated only when missing or made with other parameters."""
    out_dir = Path(out_dir)
    wanted = _validated_params(**{**_DEFAULTS, **params})
    meta_path = out_dir / META_FILE
    if (out_dir / EEG_FILE).is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            meta = {}
        if meta.get("synthetic_version") == SYNTHETIC_VERSION and meta.get("params") == wanted:
            return out_dir / EEG_FILE
    return generate_synthetic(out_dir, progress=progress, **wanted)


_DEFAULTS = dict(
    subjects=6,
    classes=40,
    images_per_class=50,
    seed=0,
    image_size=64,
    block_drift=0.0,
    n_samples=500,
    n_channels=128,
    signal_strength=1.0,
    subject_variability=1.0,
)


# --- validation ----------------------------------------------------------------------------------------


def _int_param(name: str, value, lo: int, hi: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise UserError(f"{name}={value!r}: must be an integer from {lo} to {hi}; {fix}")
    return int(value)


def _float_param(name: str, value, fix: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise UserError(f"{name}={value!r}: must be a finite number >= 0; {fix}")
    return number


def _validated_params(**p) -> dict:
    unknown = set(p) - set(_DEFAULTS)
    if unknown:
        raise UserError(f"{sorted(unknown)}: unknown synthetic-data parameters; use {sorted(_DEFAULTS)}")
    n_channels = p["n_channels"]
    if isinstance(n_channels, bool) or n_channels not in fwd.MONTAGE_SIZES:
        raise UserError(f"n_channels={n_channels!r}: no BioSemi montage of that size; use one of {fwd.MONTAGE_SIZES}")
    return {
        "subjects": _int_param("subjects", p["subjects"], 1, 1000, "generate at least one subject"),
        "classes": _int_param(
            "classes",
            p["classes"],
            2,
            stim.MAX_CLASSES,
            f"the stimulus catalogue has {stim.MAX_CLASSES} distinct classes",
        ),
        "images_per_class": _int_param(
            "images_per_class",
            p["images_per_class"],
            3,
            100_000,
            "each class needs a train, a validation and a test image",
        ),
        "seed": _int_param("seed", p["seed"], 0, 2**63 - 1, "pass a non-negative integer seed"),
        "image_size": _int_param("image_size", p["image_size"], 16, 1024, "pass an image size of 16 to 1024 pixels"),
        "block_drift": _float_param("block_drift", p["block_drift"], "0 disables the drift, 1.0 makes it decisive"),
        "n_samples": _int_param(
            "n_samples",
            p["n_samples"],
            460,
            600,
            "the EEG-CVPR40 loader keeps 450-600 samples and reads the window 20:460",
        ),
        "n_channels": int(n_channels),
        "signal_strength": _float_param("signal_strength", p["signal_strength"], "1.0 is the default evoked response"),
        "subject_variability": _float_param("subject_variability", p["subject_variability"],
                                            "0 makes the subjects identical, 1.0 is the default"),
    }


# --- generation ----------------------------------------------------------------------------------------


def _stem(cls: int, image: int, n_classes: int) -> str:
    return f"c{cls:0{max(2, len(str(n_classes - 1)))}d}_{image:04d}"


def _write_set(root: Path, p: dict, progress: bool) -> None:
    seed, n_cls, per_cls = p["seed"], p["classes"], p["images_per_class"]
    catalogue = stim.class_catalogue(n_cls)
    layouts = np.concatenate(
        [stim.sample_layouts(c, per_cls, fwd.rng_for(seed, fwd.KEY_LAYOUT, c.index)) for c in catalogue]
    )
    image_class = np.repeat(np.arange(n_cls), per_cls)
    stems = [_stem(c, i, n_cls) for c in range(n_cls) for i in range(per_cls)]

    _write_images(root / IMAGES_DIR, catalogue, layouts, stems, p["image_size"], progress)
    captions = {s: stim.caption(catalogue[c], lay) for s, c, lay in zip(stems, image_class, layouts)}
    (root / CAPTIONS_FILE).write_text(json.dumps(captions, indent=0) + "\n")

    semantic = fwd.class_semantics(catalogue, seed)[image_class]
    periods = np.array([catalogue[c].rotation_period for c in image_class], dtype=np.float64)
    latents = fwd.latent_vectors(semantic, layouts, periods)
    np.savez(
        root / LATENTS_FILE,
        image_ids=np.array(stems),
        class_semantic=semantic,
        layout=layouts.astype(np.float32),
        latent=latents,
    )

    trials = _trial_order(p["subjects"], n_cls, per_cls, seed)
    subject_info = _write_eeg(root, p, trials, latents, image_class, [c.name for c in catalogue], stems, progress)
    torch.save({"splits": [_split_by_image(trials["image"], image_class, n_cls, per_cls, seed)]}, root / SPLITS_FILE)
    _write_meta(root / META_FILE, p, catalogue, subject_info, len(trials["image"]), len(stems))


def _write_images(folder: Path, catalogue, layouts, stems, image_size: int, progress: bool) -> None:
    from PIL import Image

    folder.mkdir()
    per_cls = len(stems) // len(catalogue)
    bar = tqdm(total=len(stems), desc="synthetic stimuli", unit="img", disable=None if progress else True)
    with bar:
        for cls in catalogue:
            rows = slice(cls.index * per_cls, (cls.index + 1) * per_cls)
            for start in range(rows.start, rows.stop, 128):
                stop = min(rows.stop, start + 128)
                for stem, img in zip(stems[start:stop], stim.render(cls, layouts[start:stop], image_size)):
                    Image.fromarray(img).save(folder / f"{stem}.png", compress_level=1)
                bar.update(stop - start)


def _trial_order(n_subjects: int, n_cls: int, per_cls: int, seed: int) -> dict[str, np.ndarray]:
    """Image, subject, global block and position-in-block of every trial, in recording order."""
    image, subject, block, position = [], [], [], []
    for s in range(1, n_subjects + 1):
        rng = fwd.rng_for(seed, fwd.KEY_ORDER, s)
        for b, cls in enumerate(rng.permutation(n_cls)):
            image.append(cls * per_cls + rng.permutation(per_cls))
            subject.append(np.full(per_cls, s))
            block.append(np.full(per_cls, (s - 1) * n_cls + b))
            position.append(np.arange(per_cls))
    return {
        k: np.concatenate(v).astype(np.int64)
        for k, v in {"image": image, "subject": subject, "block": block, "position": position}.items()
    }


def _write_eeg(root: Path, p: dict, trials, latents, image_class, class_names, stems, progress: bool) -> dict:
    n_trials, n_ch, n_t = len(trials["image"]), p["n_channels"], p["n_samples"]
    raw_path = root / _RAW_FILE
    # A file-backed buffer keeps memory bounded: torch.save streams the storage from the page cache.
    buffer = np.memmap(raw_path, dtype=np.float32, mode="w+", shape=(n_trials, n_ch, n_t))
    shared = fwd.shared_model(p["seed"])
    snr = fwd.snr_factors(p["subjects"], p["seed"])
    info = {}
    bar = tqdm(total=n_trials, desc="synthetic EEG", unit="trial", disable=None if progress else True)
    with bar:
        for s in range(1, p["subjects"] + 1):
            rows = np.flatnonzero(trials["subject"] == s)
            model = fwd.subject_model(shared, s, p["seed"], n_ch, n_t, snr[s - 1], p["signal_strength"],
                                      p["subject_variability"])
            block = trials["block"][rows]
            recording = fwd.Recording(
                latents[trials["image"][rows]], block - block.min(), trials["position"][rows], p["images_per_class"]
            )
            fwd.simulate_subject(
                model, shared, recording, p["seed"], n_t, p["block_drift"], buffer[rows[0] : rows[-1] + 1], bar
            )
            info[str(s)] = model.describe()
    eeg = torch.from_numpy(buffer)
    dataset = [
        {"eeg": eeg[i], "label": int(image_class[img]), "image": int(img), "subject": int(subj), "block": int(blk)}
        for i, (img, subj, blk) in enumerate(zip(trials["image"], trials["subject"], trials["block"]))
    ]
    torch.save({"dataset": dataset, "labels": list(class_names), "images": list(stems)}, root / EEG_FILE)
    del dataset, eeg, buffer
    raw_path.unlink()
    return info


def _split_by_image(trial_image, image_class, n_cls: int, per_cls: int, seed: int) -> dict[str, list[int]]:
    rng = fwd.rng_for(seed, fwd.KEY_SPLITS)
    n_held = max(1, round(0.1 * per_cls))
    part = np.empty(n_cls * per_cls, dtype="<U5")
    for c in range(n_cls):
        order = c * per_cls + rng.permutation(per_cls)
        part[order[: per_cls - 2 * n_held]] = "train"
        part[order[per_cls - 2 * n_held : per_cls - n_held]] = "val"
        part[order[per_cls - n_held :]] = "test"
    trial_part = part[trial_image]
    return {name: np.flatnonzero(trial_part == name).tolist() for name in ("train", "val", "test")}


def _write_meta(path: Path, p: dict, catalogue, subject_info: dict, n_trials: int, n_images: int) -> None:
    ch_names, _ = fwd.montage(p["n_channels"])
    meta = {
        "synthetic_version": SYNTHETIC_VERSION,
        "forward_model": fwd.FORWARD_MODEL_VERSION,
        "params": p,
        "sfreq": fwd.SFREQ,
        "stimulus_onset_sample": 0,
        "units": "about one background-noise standard deviation per channel",
        "montage": f"biosemi{p['n_channels']}",
        "ch_names": list(ch_names),
        "n_trials": n_trials,
        "n_images": n_images,
        "trial_order": "by subject, then by recording block (one class per block), each image once per subject",
        "block": "recording block in file order, unique across subjects",
        "class_names": [c.name for c in catalogue],
        "class_attributes": [{"shape": c.shape, "colour": c.colour, "texture": c.texture} for c in catalogue],
        "layout_columns": list(stim.LAYOUT_COLUMNS),
        "latent_columns": list(fwd.LATENT_COLUMNS),
        "components": [
            {
                "name": c.name,
                "latency_ms": c.latency_ms,
                "width_ms": c.width_ms,
                "polarity": c.polarity,
                "semantic_share": c.semantic_share,
            }
            for c in fwd.COMPONENTS
        ],
        "subjects": subject_info,
        "files": {
            "eeg": EEG_FILE,
            "splits": SPLITS_FILE,
            "captions": CAPTIONS_FILE,
            "latents": LATENTS_FILE,
            "images": IMAGES_DIR,
        },
    }
    path.write_text(json.dumps(meta, indent=1) + "\n")


def _move_into_place(staging: Path, out_dir: Path) -> None:
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    # An older set: drop its EEG file first so that, until the new one lands last, the set reads as incomplete.
    (out_dir / EEG_FILE).unlink(missing_ok=True)
    old_images = out_dir / IMAGES_DIR
    if old_images.exists():
        os.replace(old_images, staging / ".old-images")
    os.replace(staging / IMAGES_DIR, out_dir / IMAGES_DIR)
    for name in (CAPTIONS_FILE, LATENTS_FILE, SPLITS_FILE, META_FILE, EEG_FILE):
        os.replace(staging / name, out_dir / name)

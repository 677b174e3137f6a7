"""Synthetic THINGS-EEG2-format dataset: the zero-shot track's ground truth, in the release's exact layout.

``generate_things_eeg2(out_dir)`` writes what the authors' preprocessed release holds (Gifford et al.
2022), so :func:`eeg2img.datasets.things_eeg2.load_things_eeg2` — or any reader of the release — reads it
like the real thing:

- ``sub-XX/preprocessed_eeg_training.npy`` and ``sub-XX/preprocessed_eeg_test.npy``: ``np.save`` of a
  dict with ``preprocessed_eeg_data`` (images × repetitions × channels × times, float32), ``ch_names``
  (the release's 17 occipital and parietal channels) and ``times`` (seconds, −0.2 … 0.79 in 10 ms
  steps: 100 Hz, 100 samples). Training images are shown ``train_repetitions`` times (the release: 4),
  test images ``test_repetitions`` times (the release: 80).
- ``training_images/<NNNNN_concept>/<concept>_<KK>s.png`` (``images_per_concept`` images per training
  concept; the release: 10) and ``test_images/<NNNNN_concept>/<concept>_01s.png`` (one image per test
  concept), concept folders numbered from 00001 in each partition as in the THINGS image set.
- ``synth_meta.json``: every generation parameter, the forward-model version, the concepts of each
  partition with their attributes, per-subject parameters. ``latents.npz``: each image's 25-d
  forward-model latent (``image_ids`` = file stems), the ground truth an embedding oracle reads.

**Zero-shot has ground truth.** Concepts are the compositional classes of
:mod:`eeg2img.datasets.synth_stimuli` (shape × colour × texture, 160 combinations). Training holds the
first ``train_concepts`` of the catalogue; the test concepts are a seeded draw of the other combinations
whose shape, colour and texture each occur in training (:func:`zero_shot_partition`): a test concept's EEG is then predictable from attributes learnt on
other concepts (the forward model's class semantics are the sum of attribute vectors plus a smaller
concept-specific part, :func:`eeg2img.datasets.synth_forward.class_semantics`), while its
concept-specific part is not — a zero-shot ceiling below 1 by construction.

**EEG.** The same forward model as the EEG-CVPR40-format set (:mod:`eeg2img.datasets.synth_forward`,
``docs/synthetic.md``) at 1 kHz on the 64-channel BioSemi montage, with the stimulus at 200 ms of a
1000-sample epoch; the 17 release channels are kept and each 100 Hz sample is the mean of the ten 1 kHz
samples starting at its time (a boxcar anti-alias, which also cancels the 50 Hz line noise as the
release's low-pass does). Every repetition is its own trial with its own noise; a subject's training and
test trials are simulated in one sequence, so no two trials share a noise draw. There are no recording
blocks (THINGS-EEG2 randomises presentation order), hence no block drift.

Written into a staging directory next to ``out_dir`` and moved into place only when complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from eeg2img.atomic import atomic_directory
from eeg2img.datasets import synth_forward as fwd
from eeg2img.datasets import synth_stimuli as stim
from eeg2img.datasets.things_eeg2 import IMAGE_FOLDERS, PARTITION_FILES
from eeg2img.errors import UserError

THINGS_SYNTHETIC_VERSION = "1"
META_FILE = "synth_meta.json"
LATENTS_FILE = "latents.npz"
# The release's 17 channels (Gifford et al.'s preprocessing keeps the O* and P* electrodes); every one is
# on the 64-channel BioSemi montage the forward model projects onto.
RELEASE_CHANNELS = ("Pz", "P3", "P7", "O1", "Oz", "O2", "P4", "P8", "P1", "P5", "PO7", "PO3", "POz", "PO4", "PO8",
                    "P6", "P2")
SOURCE_MONTAGE = 64
EPOCH_START_S, RELEASE_SFREQ, EPOCH_SAMPLES = -0.2, 100.0, 100
_DECIMATION = int(fwd.SFREQ / RELEASE_SFREQ)
_ONSET_SAMPLE = int(round(-EPOCH_START_S * fwd.SFREQ))

_DEFAULTS = dict(subjects=3, train_concepts=60, test_concepts=20, images_per_concept=10, train_repetitions=4,
                 test_repetitions=80, seed=0, image_size=64, signal_strength=1.0, subject_variability=1.0)
_SPLIT_KEY = 101  # seed-sequence key of the train/test concept draw (apart from the forward model's keys)


def release_times() -> np.ndarray:
    """The release's sample times in seconds: −0.2, −0.19, …, 0.79."""
    return np.round(EPOCH_START_S + np.arange(EPOCH_SAMPLES) / RELEASE_SFREQ, 6)


def generate_things_eeg2(out_dir: str | os.PathLike, progress: bool = True, **params) -> Path:
    """Write a synthetic THINGS-EEG2 set into ``out_dir`` (parameters: see ``_DEFAULTS``); return ``out_dir``."""
    p = _validated(**{**_DEFAULTS, **params})
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a directory; pass a directory for the synthetic set")
    with atomic_directory(out_dir) as staging:
        _write(staging, p, progress)
    return out_dir


def ensure_things_eeg2(out_dir: str | os.PathLike, progress: bool = True, **params) -> Path:
    """``out_dir``, generated only when missing or written with other parameters or another version."""
    out_dir = Path(out_dir)
    wanted = _validated(**{**_DEFAULTS, **params})
    try:
        meta = json.loads((out_dir / META_FILE).read_text())
    except (OSError, ValueError):
        meta = {}
    complete = all((out_dir / f"sub-{s:02d}" / f).is_file() for s in range(1, wanted["subjects"] + 1)
                   for f in PARTITION_FILES.values())
    if complete and meta.get("things_synthetic_version") == THINGS_SYNTHETIC_VERSION and meta.get("params") == wanted:
        return out_dir
    return generate_things_eeg2(out_dir, progress=progress, **wanted)


def _validated(**p) -> dict:
    unknown = set(p) - set(_DEFAULTS)
    if unknown:
        raise UserError(f"{sorted(unknown)}: unknown synthetic THINGS-EEG2 parameters; use {sorted(_DEFAULTS)}")

    def integer(name: str, lo: int, hi: int, fix: str) -> int:
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not lo <= v <= hi:
            raise UserError(f"{name}={v!r}: must be an integer from {lo} to {hi}; {fix}")
        return int(v)

    out = {
        "subjects": integer("subjects", 1, 99, "the release layout numbers subjects sub-01 … sub-99"),
        "train_concepts": integer("train_concepts", 2, stim.MAX_CLASSES - 2, "training needs two or more concepts"),
        "test_concepts": integer("test_concepts", 2, stim.MAX_CLASSES - 2, "a zero-shot test needs two or more concepts"),
        "images_per_concept": integer("images_per_concept", 1, 1000, "the release has 10 images per training concept"),
        "train_repetitions": integer("train_repetitions", 1, 100, "the release shows each training image 4 times"),
        "test_repetitions": integer("test_repetitions", 1, 1000, "the release shows each test image 80 times"),
        "seed": integer("seed", 0, 2**63 - 1, "pass a non-negative integer seed"),
        "image_size": integer("image_size", 16, 1024, "pass an image size of 16 to 1024 pixels"),
    }
    if out["train_concepts"] + out["test_concepts"] > stim.MAX_CLASSES:
        raise UserError(f"train_concepts + test_concepts = {out['train_concepts'] + out['test_concepts']}: the "
                        f"stimulus catalogue has {stim.MAX_CLASSES} concepts; ask for fewer")
    for name, fix in (("signal_strength", "1.0 is the default evoked response"),
                      ("subject_variability", "0 makes the subjects identical, 1.0 is the default")):
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v) or v < 0:
            raise UserError(f"{name}={v!r}: must be a finite number >= 0; {fix}")
        out[name] = float(v)
    return out


def zero_shot_partition(n_train: int, n_test: int, seed: int) -> tuple[list[int], list[int]]:
    """Catalogue indices of the training and test concepts.

    Training: the first ``n_train`` catalogue classes (from 8 on they hold every shape, colour and texture).
    Test: a seeded draw from the later classes whose shape, colour and texture all occur in training, so
    no test concept is a training concept but each is made of attributes seen in training.
    """
    attributes = ("shape", "colour", "texture")
    catalogue = stim.class_catalogue(stim.MAX_CLASSES)
    train = list(range(n_train))
    seen = {(a, getattr(catalogue[c], a)) for c in train for a in attributes}
    candidates = [c for c in range(n_train, stim.MAX_CLASSES)
                  if all((a, getattr(catalogue[c], a)) in seen for a in attributes)]
    if len(candidates) < n_test:
        raise UserError(f"train_concepts={n_train}: the training concepts' attributes make only {len(candidates)} "
                        f"unseen combinations, fewer than test_concepts={n_test}; ask for 8 or more training concepts")
    test = sorted(int(c) for c in fwd.rng_for(seed, _SPLIT_KEY).choice(candidates, n_test, replace=False))
    return train, test


def _folder_name(number: int, cls: stim.StimulusClass) -> str:
    return f"{number:05d}_{cls.name.replace(' ', '_')}"


def _write(root: Path, p: dict, progress: bool) -> None:
    from PIL import Image

    seed = p["seed"]
    catalogue = stim.class_catalogue(stim.MAX_CLASSES)
    train_ids, test_ids = zero_shot_partition(p["train_concepts"], p["test_concepts"], seed)
    semantics = fwd.class_semantics(catalogue, seed)
    per_concept = {"train": p["images_per_concept"], "test": 1}
    repetitions = {"train": p["train_repetitions"], "test": p["test_repetitions"]}
    latents, stems, concept_folders = {}, {}, {}
    for part, ids in (("train", train_ids), ("test", test_ids)):
        rows, names = [], []
        folders = []
        for number, c in enumerate(ids, start=1):
            cls = catalogue[c]
            folder = root / IMAGE_FOLDERS[part] / _folder_name(number, cls)
            folder.mkdir(parents=True)
            folders.append(folder.name)
            layouts = stim.sample_layouts(cls, per_concept[part], fwd.rng_for(seed, fwd.KEY_LAYOUT, c))
            for k, img in enumerate(stim.render(cls, layouts, p["image_size"]), start=1):
                stem = f"{cls.name.replace(' ', '_')}_{k:02d}s"
                Image.fromarray(img).save(folder / f"{stem}.png", compress_level=1)
                names.append(stem)
            periods = np.full(len(layouts), cls.rotation_period, dtype=np.float64)
            rows.append(fwd.latent_vectors(np.repeat(semantics[c][None], len(layouts), 0), layouts, periods))
        latents[part], stems[part], concept_folders[part] = np.concatenate(rows), names, folders
    np.savez(root / LATENTS_FILE, image_ids=np.array(stems["train"] + stems["test"]),
             latent=np.concatenate([latents["train"], latents["test"]]))

    subject_info = _write_eeg(root, p, latents, repetitions, progress)
    meta = {
        "things_synthetic_version": THINGS_SYNTHETIC_VERSION,
        "forward_model": fwd.FORWARD_MODEL_VERSION,
        "format": "things-eeg2",
        "params": p,
        "sfreq": RELEASE_SFREQ,
        "times_s": [EPOCH_START_S, float(release_times()[-1])],
        "simulated_at": {"sfreq": fwd.SFREQ, "montage": f"biosemi{SOURCE_MONTAGE}", "onset_sample": _ONSET_SAMPLE,
                         "downsampling": f"mean of {_DECIMATION} consecutive samples"},
        "ch_names": list(RELEASE_CHANNELS),
        "units": "about one background-noise standard deviation per channel",
        "concepts": {part: [{"folder": f, "catalogue_index": c, "shape": catalogue[c].shape,
                             "colour": catalogue[c].colour, "texture": catalogue[c].texture}
                            for f, c in zip(concept_folders[part], ids)]
                     for part, ids in (("train", train_ids), ("test", test_ids))},
        "subjects": subject_info,
    }
    (root / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


def _write_eeg(root: Path, p: dict, latents: dict, repetitions: dict, progress: bool) -> dict:
    names, _ = fwd.montage(SOURCE_MONTAGE)
    keep = [names.index(c) for c in RELEASE_CHANNELS]
    shared = fwd.shared_model(p["seed"])
    snr = fwd.snr_factors(p["subjects"], p["seed"])
    n_source = EPOCH_SAMPLES * _DECIMATION  # the epoch at the forward model's 1 kHz
    # image-major, repetition-minor: the order of the release's images × repetitions axes
    trial_latents = {part: np.repeat(latents[part], repetitions[part], axis=0) for part in ("train", "test")}
    n_train = len(trial_latents["train"])
    all_latents = np.concatenate([trial_latents["train"], trial_latents["test"]])
    info = {}
    bar = tqdm(total=p["subjects"] * len(all_latents), desc="synthetic THINGS-EEG2", unit="trial",
               disable=None if progress else True)
    with bar:
        for s in range(1, p["subjects"] + 1):
            model = fwd.subject_model(shared, s, p["seed"], SOURCE_MONTAGE, n_source, snr[s - 1], p["signal_strength"],
                                      p["subject_variability"])
            model = dataclasses.replace(model, mixing=np.ascontiguousarray(model.mixing[keep]))
            n = len(all_latents)
            recording = fwd.Recording(all_latents, np.zeros(n, np.int64), np.arange(n), n)
            raw = np.empty((n, len(keep), n_source), np.float32)
            fwd.simulate_subject(model, shared, recording, p["seed"], n_source, 0.0, raw, bar,
                                 onset_sample=_ONSET_SAMPLE)
            eeg = raw.reshape(n, len(keep), EPOCH_SAMPLES, _DECIMATION).mean(axis=3, dtype=np.float64)
            eeg = eeg.astype(np.float32)
            del raw
            folder = root / f"sub-{s:02d}"
            folder.mkdir()
            for part, rows in (("train", slice(0, n_train)), ("test", slice(n_train, n))):
                data = eeg[rows].reshape(-1, repetitions[part], len(keep), EPOCH_SAMPLES)
                np.save(folder / PARTITION_FILES[part],
                        {"preprocessed_eeg_data": data, "ch_names": list(RELEASE_CHANNELS), "times": release_times()},
                        allow_pickle=True)
            info[str(s)] = model.describe()
    return info


__all__ = ["RELEASE_CHANNELS", "ensure_things_eeg2", "generate_things_eeg2", "release_times", "zero_shot_partition"]

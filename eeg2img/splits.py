"""Evaluation protocols: which trials train, validate and test each fold.

- ``per-subject``: one fold per subject, only that subject's trials; train/val/test by *image*, so
  no test image's EEG is seen in training.
- ``loso`` (leave one subject out): one fold per subject; train/val hold the other subjects only;
  test holds the held-out subject's trials on the test images. By default the test images are also
  excluded from training (``allow_test_images_in_train=True`` lifts that).
- ``pooled``: NeuroImagen's protocol, 80/10/10 by image over all subjects, one fold.
- ``official``: the dataset's own split file (EEG-CVPR40 ``block_splits_by_image_*.pth``, or the
  THINGS-EEG2 train/test partition).
- ``zero-shot`` (THINGS-EEG2's leaderboard protocol): one fold per subject; test = the subject's
  trials of the release's *test* partition, whose concepts never occur in training; train = the
  subject's training-partition trials, less a seeded 10 % of the training *concepts* (at least one)
  that form the validation set — validation is itself zero-shot and never touches a test concept.
- ``zero-shot-loso``: one fold per subject; train/val = the other subjects' training-partition
  trials (the same validation concepts), test = the held-out subject's test-partition trials, so
  fold ``s`` tests the same trials as ``zero-shot`` fold ``s`` and the gap is paired.

Whether test repetitions are averaged (the peers' practice) or kept as trials is the THINGS-EEG2
loader's ``average_repetitions`` option (a dataset option in the grid config).

All protocols of one dataset and seed draw the *same* image partition, so the test trials of
``per-subject`` fold ``s`` and ``loso`` fold ``s`` are identical and the cross-subject gap is a
paired comparison. Every fold is checked for leakage when it is created and carries a fingerprint
(sha256 of its sorted index lists).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import LeakageError, UserError

PROTOCOLS = ("per-subject", "loso", "pooled", "official", "zero-shot", "zero-shot-loso")
ZERO_SHOT_PROTOCOLS = ("zero-shot", "zero-shot-loso")
LEAVE_ONE_SUBJECT_OUT = ("loso", "zero-shot-loso")
VAL_CONCEPT_FRACTION = 0.1
PARTS = ("train", "val", "test")


def fingerprint_indices(train, val, test) -> str:
    payload = {p: sorted(int(i) for i in idx) for p, idx in zip(PARTS, (train, val, test))}
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Fold:
    """Trial indices into the loaded dataset for one fold of one protocol."""

    name: str
    protocol: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    subject: int | None = None  # the fold's subject (per-subject, loso); None for pooled/official
    options: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint_indices(self.train, self.val, self.test)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "train": [int(i) for i in self.train],
            "val": [int(i) for i in self.val],
            "test": [int(i) for i in self.test],
            "fingerprint": self.fingerprint,
        }


def check_leakage(dataset: EEGDataset, fold: Fold) -> None:
    """Raise :class:`LeakageError` if the fold lets training see what it is tested on."""
    parts = {p: np.asarray(getattr(fold, p), dtype=np.int64) for p in PARTS}
    n = len(dataset)
    for p, idx in parts.items():
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise LeakageError(f"fold {fold.name}: {p} index out of range for {n} trials")
        if len(np.unique(idx)) != len(idx):
            raise LeakageError(f"fold {fold.name}: duplicated trial in {p}")
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = np.intersect1d(parts[a], parts[b])
        if len(shared):
            raise LeakageError(f"fold {fold.name}: {len(shared)} trial(s) in both {a} and {b} (e.g. {shared[0]})")
    images = {p: set(dataset.image_ids_[idx].tolist()) for p, idx in parts.items()}
    image_pairs = [("train", "test"), ("val", "test"), ("train", "val")]
    if fold.options.get("allow_test_images_in_train"):
        image_pairs = [("train", "val")]
    for a, b in image_pairs:
        shared = images[a] & images[b]
        if shared:
            raise LeakageError(f"fold {fold.name}: stimulus image {sorted(shared)[0]} is in both {a} and {b}")
    if fold.protocol in ZERO_SHOT_PROTOCOLS:
        concepts = {p: set(dataset.labels_[idx].tolist()) for p, idx in parts.items()}
        for a, b in (("train", "test"), ("val", "test"), ("train", "val")):
            shared = concepts[a] & concepts[b]
            if shared:
                name = dataset.class_names[min(shared)] if dataset.class_names else min(shared)
                raise LeakageError(f"fold {fold.name}: concept {name!r} is in both {a} and {b}; a zero-shot "
                                   "fold never trains on a concept it validates or tests")
    if fold.protocol in LEAVE_ONE_SUBJECT_OUT:
        held_out = set(dataset.subjects[parts["test"]].tolist())
        trained = set(dataset.subjects[np.concatenate([parts["train"], parts["val"]])].tolist())
        if held_out & trained:
            raise LeakageError(f"fold {fold.name}: held-out subject {sorted(held_out & trained)[0]} appears in train/val")
    if fold.protocol in ("per-subject", "zero-shot") and fold.subject is not None:
        all_idx = np.concatenate(list(parts.values()))
        if np.any(dataset.subjects[all_idx] != fold.subject):
            raise LeakageError(f"fold {fold.name}: trials of another subject in a per-subject fold")


def split_images(dataset: EEGDataset, seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> dict[str, set[str]]:
    """Partition the stimulus images 80/10/10, stratified by class, seeded.

    Every class with at least 3 images contributes at least one image to val and to test, so small
    synthetic sets still test every class.
    """
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise UserError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    image_ids = dataset.image_ids_
    labels = dataset.labels_
    _, first = np.unique(image_ids, return_index=True)
    first = np.sort(first)
    per_class: dict[int, list[str]] = {}
    for i in first:
        per_class.setdefault(int(labels[i]), []).append(str(image_ids[i]))
    rng = np.random.default_rng(seed)
    out: dict[str, set[str]] = {p: set() for p in PARTS}
    for label in sorted(per_class):
        ids = sorted(per_class[label])
        ids = [ids[j] for j in rng.permutation(len(ids))]
        n = len(ids)
        n_test = int(round(fractions[2] * n))
        n_val = int(round(fractions[1] * n))
        if n >= 3:
            n_test, n_val = max(n_test, 1), max(n_val, 1)
        out["test"].update(ids[:n_test])
        out["val"].update(ids[n_test : n_test + n_val])
        out["train"].update(ids[n_test + n_val :])
    return out


def _indices(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64)


def make_folds(
    dataset: EEGDataset,
    protocol: str,
    seed: int = 0,
    *,
    subjects: list[int] | None = None,
    allow_test_images_in_train: bool = False,
    split_file: str | Path | None = None,
    split_index: int = 0,
) -> list[Fold]:
    """Build and leakage-check the folds of ``protocol`` (see module docstring)."""
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    chosen = list(dataset.subject_ids) if subjects is None else [int(s) for s in subjects]
    unknown = sorted(set(chosen) - set(dataset.subject_ids))
    if unknown:
        raise UserError(f"{dataset.source or dataset.name}: unknown subject {unknown[0]}; subjects are {list(dataset.subject_ids)}")
    if protocol == "official":
        folds = [_official_fold(dataset, split_file, split_index, subjects)]
    elif protocol in ZERO_SHOT_PROTOCOLS:
        folds = _zero_shot_folds(dataset, protocol, chosen, seed)
    else:
        parts = split_images(dataset, seed)
        in_part = {p: np.isin(dataset.image_ids_, list(ids)) for p, ids in parts.items()}
        folds = []
        if protocol == "pooled":
            folds.append(Fold("pooled", protocol, *(_indices(in_part[p]) for p in PARTS)))
        for s in chosen if protocol != "pooled" else []:
            mine = dataset.subjects == s
            if protocol == "per-subject":
                folds.append(Fold(f"sub-{s:02d}", protocol, *(_indices(mine & in_part[p]) for p in PARTS), subject=s))
            else:
                train_images = in_part["train"] | (in_part["test"] if allow_test_images_in_train else False)
                folds.append(
                    Fold(
                        f"sub-{s:02d}",
                        protocol,
                        _indices(~mine & train_images),
                        _indices(~mine & in_part["val"]),
                        _indices(mine & in_part["test"]),
                        subject=s,
                        options={"allow_test_images_in_train": True} if allow_test_images_in_train else {},
                    )
                )
    for fold in folds:
        check_leakage(dataset, fold)
        if len(fold.train) == 0 or len(fold.test) == 0:
            raise UserError(f"fold {fold.name} of {protocol}: empty train or test set; the dataset is too small for this protocol")
    return folds


def validation_concepts(dataset: EEGDataset, seed: int = 0, fraction: float = VAL_CONCEPT_FRACTION) -> set[int]:
    """A seeded ``fraction`` (at least one) of the training partition's concepts, held out for validation."""
    concepts = np.unique(dataset.labels_[dataset.partitions == "train"])
    n_val = max(1, int(round(fraction * len(concepts))))
    if len(concepts) < 2:
        raise UserError(f"{dataset.source or dataset.name}: {len(concepts)} training concept; zero-shot validation "
                        "needs two or more (one to train on, one to validate)")
    return set(np.random.default_rng(seed).choice(concepts, n_val, replace=False).tolist())


def _zero_shot_folds(dataset: EEGDataset, protocol: str, subjects: list[int], seed: int) -> list[Fold]:
    if dataset.partitions is None:
        raise UserError(f"{dataset.source or dataset.name}: the {protocol} protocol needs a dataset with a "
                        "training/test concept partition (THINGS-EEG2, or `eeg2img data synth --format things-eeg2`)")
    training, test = dataset.partitions == "train", dataset.partitions == "test"
    in_val = training & np.isin(dataset.labels_, sorted(validation_concepts(dataset, seed)))
    in_train = training & ~in_val
    folds = []
    for s in subjects:
        mine = dataset.subjects == s
        learn = mine if protocol == "zero-shot" else ~mine
        folds.append(Fold(f"sub-{s:02d}", protocol, _indices(learn & in_train), _indices(learn & in_val),
                          _indices(mine & test), subject=s))
    return folds


def _official_fold(dataset: EEGDataset, split_file, split_index: int, subjects: list[int] | None = None) -> Fold:
    if dataset.partitions is not None and split_file is None:
        # THINGS-EEG2: the official split is the dataset's own training/test partition.
        train = _indices(dataset.partitions == "train")
        return Fold("official", "official", train, np.zeros(0, np.int64), _indices(dataset.partitions == "test"))
    if split_file is None:
        guess = dataset.source.parent / "block_splits_by_image_all.pth" if dataset.source else None
        if guess is None or not guess.is_file():
            raise UserError(f"{dataset.source or dataset.name}: the official protocol needs a split file; pass --split-file block_splits_by_image_all.pth")
        split_file = guess
    from eeg2img.datasets.cvpr40 import read_official_split

    # a subject filter keeps only those subjects' trials; for one subject the file may index that subject's own
    # segments (DreamDiffusion's reading of block_splits_by_image_single.pth), decided from the file's index ranges
    split = read_official_split(split_file, dataset, split_index, subjects=subjects)
    return Fold(f"official-{split_index}", "official", *(np.sort(np.asarray(split.parts[p], np.int64)) for p in PARTS),
                options={"official_split": split.reading})

"""The zero-shot protocols: no test concept in training or validation, validation itself zero-shot, LOSO
test trials equal to the within-subject ones (property tests), determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_splits import rows_dataset

from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import LeakageError, UserError
from eeg2img.splits import Fold, check_leakage, make_folds, validation_concepts


def make_things(n_subjects=3, n_train=6, n_test=3, images_per_concept=2, missing_every=0, seed=0,
                leak: bool = False) -> EEGDataset:
    """A THINGS-EEG2-shaped set: training concepts with several images, test concepts with one each.

    ``leak``: the training partition also holds another image of the first test concept (a broken release)."""
    rows = []
    for s in range(1, n_subjects + 1):
        for c in range(n_train):
            rows += [(s, c, f"train{c:03d}_{k:02d}", "train") for k in range(images_per_concept)]
        rows += [(s, n_train + c, f"test{c:03d}_01", "test") for c in range(n_test)]
        if leak:
            rows.append((s, n_train, "test000_02", "train"))
    return rows_dataset([r[:3] for r in rows], [f"concept {c}" for c in range(n_train + n_test)], "toy-things",
                        missing_every, np.random.default_rng(seed), partitions=[r[3] for r in rows])


things = st.builds(make_things, n_subjects=st.integers(2, 5), n_train=st.integers(2, 20), n_test=st.integers(1, 8),
                   images_per_concept=st.integers(1, 4), missing_every=st.sampled_from([0, 7, 11]),
                   seed=st.integers(0, 1000))


@settings(max_examples=60, deadline=None)
@given(ds=things, seed=st.integers(0, 2**31))
def test_zero_shot_folds_never_train_or_validate_on_a_test_concept(ds, seed):
    try:
        within = {f.subject: f for f in make_folds(ds, "zero-shot", seed=seed)}
        across = {f.subject: f for f in make_folds(ds, "zero-shot-loso", seed=seed)}
    except UserError as err:  # dropped trials can empty a subject's part: a one-line error, tested below
        assume("empty train or test" not in str(err) and "training concept;" not in str(err))
        raise
    val_concepts = validation_concepts(ds, seed)
    for s, fold in within.items():
        concepts = {p: set(ds.labels_[getattr(fold, p)].tolist()) for p in ("train", "val", "test")}
        assert not concepts["test"] & (concepts["train"] | concepts["val"])
        assert not concepts["train"] & concepts["val"]
        assert concepts["val"] <= val_concepts  # validation concepts come from the training partition
        assert set(ds.partitions[np.concatenate([fold.train, fold.val])]) <= {"train"}
        np.testing.assert_array_equal(fold.test, np.flatnonzero((ds.subjects == s) & (ds.partitions == "test")))
        assert set(ds.subjects[np.concatenate([fold.train, fold.val])]) <= {s}
        # LOSO: the same test trials, trained on everyone else, same validation concepts
        loso = across[s]
        np.testing.assert_array_equal(loso.test, fold.test)
        assert s not in set(ds.subjects[np.concatenate([loso.train, loso.val])].tolist())
        assert set(ds.labels_[loso.val].tolist()) <= val_concepts
        others = (ds.subjects != s) & (ds.partitions == "train")
        assert len(loso.train) + len(loso.val) == others.sum()  # every other subject's training trial is used


def test_folds_are_deterministic_and_the_seed_moves_only_the_validation_concepts():
    ds = make_things(n_train=20)
    a = make_folds(ds, "zero-shot", seed=0)
    assert [f.fingerprint for f in a] == [f.fingerprint for f in make_folds(ds, "zero-shot", seed=0)]
    others = [validation_concepts(ds, seed) for seed in range(1, 6)]
    assert any(v != validation_concepts(ds, 0) for v in others)
    assert all(len(v) == 2 for v in others)  # 10 % of 20 training concepts
    b = make_folds(ds, "zero-shot", seed=next(s for s in range(1, 6) if others[s - 1] != validation_concepts(ds, 0)))
    assert all(np.array_equal(x.test, y.test) for x, y in zip(a, b))


def test_a_training_partition_holding_a_test_concept_is_refused_and_so_is_a_hand_made_fold():
    # another image of a test concept in the training partition: no shared trial or image, a shared concept
    with pytest.raises(LeakageError, match="concept 'concept 6' is in both train and test"):
        make_folds(make_things(leak=True), "zero-shot")
    ds = make_things()
    fold = make_folds(ds, "zero-shot")[0]
    with pytest.raises(LeakageError, match="in both train and val"):
        check_leakage(ds, Fold(fold.name, "zero-shot", fold.train, np.concatenate([fold.val, fold.train[:1]]),
                               fold.test, subject=fold.subject))


def test_a_dataset_without_a_concept_partition_or_a_subject_without_test_trials_is_one_line(tiny_synth):
    with pytest.raises(UserError, match="needs a dataset with a training/test concept partition"):
        make_folds(tiny_synth, "zero-shot")
    ds = make_things(n_subjects=2)
    keep = ~((ds.subjects == 2) & (ds.partitions == "test"))
    with pytest.raises(UserError, match="fold sub-02 of zero-shot-loso: empty train or test set"):
        make_folds(ds.subset(np.flatnonzero(keep)), "zero-shot-loso")


def test_the_synthetic_things_set_gives_paired_zero_shot_folds(tmp_path):
    from eeg2img.datasets.synthetic_things import generate_things_eeg2
    from eeg2img.datasets.things_eeg2 import load_things_eeg2

    folder = generate_things_eeg2(tmp_path / "t", progress=False, subjects=2, train_concepts=10, test_concepts=4,
                                  images_per_concept=2, train_repetitions=1, test_repetitions=3, image_size=16)
    for average in (True, False):
        ds = load_things_eeg2(folder, average_repetitions=average)
        within, across = make_folds(ds, "zero-shot"), make_folds(ds, "zero-shot-loso")
        assert [len(f.test) for f in within] == [4 * (1 if average else 3)] * 2
        assert all(np.array_equal(a.test, b.test) for a, b in zip(within, across))
        assert [len(f.val) for f in within] == [2 * 1] * 2  # one validation concept (10 % of 10) × 2 images

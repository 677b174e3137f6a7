"""Protocols: leakage guarantees (property tests), determinism, fingerprints, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import LeakageError, UserError
from eeg2img.splits import Fold, check_leakage, fingerprint_indices, make_folds, split_images


def make_dataset(n_subjects=3, n_classes=4, images_per_class=5, shown=1, missing_every=0, seed=0) -> EEGDataset:
    """Every subject sees every image ``shown`` times (optionally dropping some trials, as real data does)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(1, n_subjects + 1):
        for c in range(n_classes):
            for k in range(images_per_class):
                for _ in range(shown):
                    rows.append((s, c, f"c{c:02d}_{k:04d}"))
    return rows_dataset(rows, [f"class {c}" for c in range(n_classes)], "toy", missing_every, rng)


def rows_dataset(rows, class_names, name, missing_every=0, rng=None, partitions=None) -> EEGDataset:
    """A toy dataset of (subject, label, image_id) rows with random EEG, every ``missing_every``-th trial dropped."""
    keep = [i for i in range(len(rows)) if not missing_every or i % missing_every]
    rows = [rows[i] for i in keep]
    n = len(rows)
    rng = rng if rng is not None else np.random.default_rng(0)
    return EEGDataset(
        eeg=rng.standard_normal((n, 4, 8)).astype(np.float32),
        labels_=np.array([r[1] for r in rows]),
        image_ids_=np.array([r[2] for r in rows]),
        subjects=np.array([r[0] for r in rows]),
        trial_ids=np.array([f"{i:05d}" for i in range(n)]),
        class_names=tuple(class_names),
        name=name,
        partitions=None if partitions is None else np.asarray(partitions)[keep],
    )


datasets = st.builds(
    make_dataset,
    n_subjects=st.integers(2, 5),
    n_classes=st.integers(1, 5),
    images_per_class=st.integers(5, 12),
    shown=st.integers(1, 2),
    missing_every=st.sampled_from([0, 7, 11]),
    seed=st.integers(0, 3),
)


def folds(ds, protocol, seed, **kw):
    """make_folds, discarding examples too small to give every fold a train and test set."""
    try:
        return make_folds(ds, protocol, seed, **kw)
    except UserError as err:
        assume("empty train or test" not in str(err))
        raise


def images_of(ds, idx):
    return set(ds.image_ids_[idx].tolist())


@settings(max_examples=40, deadline=None)
@given(ds=datasets, seed=st.integers(0, 1000))
def test_per_subject_folds_hold_one_subject_and_disjoint_images(ds, seed):
    made = folds(ds, "per-subject", seed)
    assert [f.subject for f in made] == list(ds.subject_ids)
    for f in made:
        idx = np.concatenate([f.train, f.val, f.test])
        assert set(ds.subjects[idx]) == {f.subject}
        # every trial of the subject is used exactly once
        assert sorted(idx) == sorted(np.flatnonzero(ds.subjects == f.subject))
        assert not images_of(ds, f.test) & images_of(ds, f.train)
        assert not images_of(ds, f.test) & images_of(ds, f.val)
        assert not images_of(ds, f.val) & images_of(ds, f.train)


@settings(max_examples=40, deadline=None)
@given(ds=datasets, seed=st.integers(0, 1000))
def test_loso_never_trains_on_the_held_out_subject_or_its_test_images(ds, seed):
    made = folds(ds, "loso", seed)
    per_subject = {f.subject: f for f in folds(ds, "per-subject", seed)}
    for f in made:
        trained = np.concatenate([f.train, f.val])
        assert f.subject not in set(ds.subjects[trained])
        assert set(ds.subjects[f.test]) == {f.subject}
        assert not images_of(ds, f.test) & images_of(ds, trained)
        # the same test trials as the per-subject fold: the cross-subject gap is paired
        np.testing.assert_array_equal(f.test, per_subject[f.subject].test)


@settings(max_examples=25, deadline=None)
@given(ds=datasets, seed=st.integers(0, 1000))
def test_loso_option_lets_other_subjects_test_images_train(ds, seed):
    strict = {f.name: f for f in folds(ds, "loso", seed)}
    for f in folds(ds, "loso", seed, allow_test_images_in_train=True):
        assert f.subject not in set(ds.subjects[np.concatenate([f.train, f.val])])
        assert set(strict[f.name].train) < set(f.train)
        # every test image another subject saw (and no val image) now trains
        others = np.flatnonzero(ds.subjects != f.subject)
        seen_by_others = images_of(ds, others) - images_of(ds, f.val)
        assert images_of(ds, f.test) & seen_by_others <= images_of(ds, f.train)


@settings(max_examples=40, deadline=None)
@given(ds=datasets, seed=st.integers(0, 1000))
def test_pooled_is_80_10_10_by_image_over_all_subjects(ds, seed):
    (fold,) = folds(ds, "pooled", seed)
    all_idx = np.concatenate([fold.train, fold.val, fold.test])
    assert sorted(all_idx) == list(range(len(ds)))
    assert not images_of(ds, fold.test) & images_of(ds, fold.train)
    parts = split_images(ds, seed)
    n_images = len(set(ds.image_ids_))
    assert sum(map(len, parts.values())) == n_images
    if n_images >= 30:
        assert 0.6 <= len(parts["train"]) / n_images <= 0.85


def test_every_class_is_tested_when_it_has_three_images():
    ds = make_dataset(n_classes=5, images_per_class=3)
    (fold,) = make_folds(ds, "pooled", 0)
    assert set(ds.labels_[fold.test]) == set(range(5))


def test_folds_are_deterministic_per_seed_and_fingerprinted():
    ds = make_dataset(n_classes=4, images_per_class=10)
    a = make_folds(ds, "per-subject", 3)
    b = make_folds(ds, "per-subject", 3)
    c = make_folds(ds, "per-subject", 4)
    assert [f.fingerprint for f in a] == [f.fingerprint for f in b]
    assert [f.fingerprint for f in a] != [f.fingerprint for f in c]
    f = a[0]
    assert f.fingerprint == fingerprint_indices(f.train[::-1], f.val, f.test)  # order-free
    assert len(f.fingerprint) == 64
    assert f.to_json()["fingerprint"] == f.fingerprint


def test_leakage_raises_on_overlap():
    ds = make_dataset()
    (fold,) = make_folds(ds, "pooled", 0)
    with pytest.raises(LeakageError, match="both train and test"):
        check_leakage(ds, Fold("bad", "pooled", np.append(fold.train, fold.test[0]), fold.val, fold.test))
    # same image, different trial (another subject's EEG for a test image) in training
    test_image = ds.image_ids_[fold.test[0]]
    other = np.flatnonzero((ds.image_ids_ == test_image) & ~np.isin(np.arange(len(ds)), fold.test))
    if len(other) == 0:  # pooled tests every subject's trials of a test image; build a per-subject case instead
        f = make_folds(ds, "per-subject", 0)[0]
        test_image = ds.image_ids_[f.test[0]]
        other = np.flatnonzero((ds.image_ids_ == test_image) & (ds.subjects != f.subject))
        with pytest.raises(LeakageError, match="stimulus image"):
            check_leakage(ds, Fold("bad", "loso", np.append(f.train, other[0]), f.val, f.test))
    loso = make_folds(ds, "loso", 0)[0]
    same_subject = np.flatnonzero((ds.subjects == loso.subject) & np.isin(ds.image_ids_, list(images_of(ds, loso.train))))
    with pytest.raises(LeakageError, match="held-out subject"):
        check_leakage(ds, Fold("bad", "loso", np.append(loso.train, same_subject[0]), loso.val, loso.test, subject=loso.subject))


def test_bad_protocol_and_unknown_subject():
    ds = make_dataset()
    with pytest.raises(UserError, match="unknown protocol 'random'"):
        make_folds(ds, "random")
    with pytest.raises(UserError, match="unknown subject 9"):
        make_folds(ds, "per-subject", subjects=[1, 9])


def test_subject_selection_limits_folds():
    ds = make_dataset(n_subjects=4)
    assert [f.subject for f in make_folds(ds, "loso", 0, subjects=[2, 4])] == [2, 4]

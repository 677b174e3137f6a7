"""The synthetic THINGS-EEG2 set: the release's exact layout, zero-shot ground truth, determinism, bad input."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eeg2img.datasets import synth_stimuli as stim
from eeg2img.datasets.synthetic_things import (
    RELEASE_CHANNELS,
    ensure_things_eeg2,
    generate_things_eeg2,
    release_times,
    zero_shot_partition,
)
from eeg2img.errors import UserError

SMALL = dict(subjects=2, train_concepts=16, test_concepts=10, images_per_concept=4, train_repetitions=2,
             test_repetitions=8, image_size=16, signal_strength=3.0)


@pytest.fixture(scope="module")
def things_dir(tmp_path_factory):
    return generate_things_eeg2(tmp_path_factory.mktemp("things") / "set", progress=False, **SMALL)


def _plain_release_reader(path):
    """How a user of the release reads a file (we wrote this one, so allow_pickle is safe here)."""
    return np.load(path, allow_pickle=True).item()


def test_files_have_the_release_layout_read_by_plain_numpy(things_dir):
    for s in (1, 2):
        train = _plain_release_reader(things_dir / f"sub-{s:02d}" / "preprocessed_eeg_training.npy")
        test = _plain_release_reader(things_dir / f"sub-{s:02d}" / "preprocessed_eeg_test.npy")
        for part, n_images, reps in ((train, 16 * 4, 2), (test, 10, 8)):
            assert set(part) == {"preprocessed_eeg_data", "ch_names", "times"}
            assert part["preprocessed_eeg_data"].shape == (n_images, reps, 17, 100)
            assert part["ch_names"] == list(RELEASE_CHANNELS)
            np.testing.assert_allclose(part["times"], np.arange(-20, 80) / 100, atol=1e-9)
            assert np.isfinite(part["preprocessed_eeg_data"]).all()
    train_folders = sorted(p.name for p in (things_dir / "training_images").iterdir())
    test_folders = sorted(p.name for p in (things_dir / "test_images").iterdir())
    assert train_folders[0].startswith("00001_") and test_folders[0].startswith("00001_")
    assert len(train_folders) == 16 and len(test_folders) == 10
    assert all(len(list((things_dir / "training_images" / f).glob("*.png"))) == 4 for f in train_folders)
    assert all(len(list((things_dir / "test_images" / f).glob("*.png"))) == 1 for f in test_folders)
    # no test concept in training: the zero-shot premise, in the files themselves
    assert not {f.split("_", 1)[1] for f in train_folders} & {f.split("_", 1)[1] for f in test_folders}


def test_the_loader_reads_it_like_the_release(things_dir):
    from eeg2img.datasets.things_eeg2 import load_things_eeg2

    ds = load_things_eeg2(things_dir)
    assert ds.ch_names == RELEASE_CHANNELS and ds.sfreq == 100.0
    assert ds.name == "things_eeg2_synth"  # never shown beside the release's published numbers
    assert ds.eeg.shape == (2 * (64 + 10), 17, 100)
    meta = json.loads((things_dir / "synth_meta.json").read_text())
    train_names = [c["folder"].split("_", 1)[1].replace("_", " ") for c in meta["concepts"]["train"]]
    test_names = [c["folder"].split("_", 1)[1].replace("_", " ") for c in meta["concepts"]["test"]]
    assert list(ds.class_names) == train_names + test_names
    test_rows = ds.partitions == "test"
    assert set(ds.labels[test_rows]).isdisjoint(ds.labels[~test_rows])
    # the loader's repetition average is the plain mean over the file's repetitions, in image-folder order
    raw = _plain_release_reader(things_dir / "sub-02" / "preprocessed_eeg_test.npy")["preprocessed_eeg_data"]
    mine = (ds.subjects == 2) & test_rows
    np.testing.assert_allclose(ds.eeg[mine], raw.mean(axis=1), rtol=1e-5, atol=1e-6)
    images = ds.load_images()
    assert images.shape == (len(ds), 16, 16, 3) and images.dtype == np.uint8
    kept = load_things_eeg2(things_dir, average_repetitions=False, subjects=[1], partitions=["test"])
    assert len(kept) == 10 * 8


def test_the_stimulus_arrives_at_time_zero(things_dir):
    # Across images, the repetition-averaged EEG varies with the stimulus only after onset.
    data = _plain_release_reader(things_dir / "sub-01" / "preprocessed_eeg_training.npy")["preprocessed_eeg_data"]
    times = release_times()
    spread = data.mean(axis=1).std(axis=0).mean(axis=0)  # over images, per time
    assert spread[(times >= 0.1) & (times <= 0.4)].mean() > 1.5 * spread[times < -0.05].mean()


def test_test_concepts_are_identified_zero_shot_from_their_attributes(things_dir):
    # Ground truth: a ridge map EEG → image latent learnt on training concepts identifies held-out concepts.
    from scipy.stats import binomtest
    from sklearn.linear_model import RidgeCV

    from eeg2img.datasets.things_eeg2 import load_things_eeg2

    ds = load_things_eeg2(things_dir)
    lat = np.load(things_dir / "latents.npz")
    latent = dict(zip(lat["image_ids"].tolist(), lat["latent"]))
    hits = n = 0
    for s in (1, 2):
        tr = (ds.subjects == s) & (ds.partitions == "train")
        te = (ds.subjects == s) & (ds.partitions == "test")
        model = RidgeCV(alphas=np.logspace(-1, 5, 13)).fit(ds.eeg[tr].reshape(tr.sum(), -1),
                                                           np.stack([latent[i] for i in ds.image_ids[tr]]))
        pred = model.predict(ds.eeg[te].reshape(te.sum(), -1))
        truth = np.stack([latent[i] for i in ds.image_ids[te]])
        corr = np.corrcoef(pred, truth)[: len(pred), len(pred):]
        hits += int((corr.argmax(axis=1) == np.arange(len(pred))).sum())
        n += len(pred)
    assert binomtest(hits, n, 1 / 10, alternative="greater").pvalue < 0.01


@settings(max_examples=40, deadline=None)
@given(n_train=st.integers(8, 60), n_test=st.integers(2, 20), seed=st.integers(0, 2**32))
def test_zero_shot_partition_is_disjoint_and_covers_every_test_attribute(n_train, n_test, seed):
    # the test concepts: unseen combinations of seen attributes
    catalogue = stim.class_catalogue(stim.MAX_CLASSES)
    train, test = zero_shot_partition(n_train, n_test, seed)
    assert (train, test) == zero_shot_partition(n_train, n_test, seed)
    assert len(train) == n_train and len(set(test)) == n_test and not set(train) & set(test)
    combination = {c: tuple(getattr(catalogue[c], a) for a in ("shape", "colour", "texture")) for c in train + test}
    assert len(set(combination.values())) == n_train + n_test  # every concept its own combination
    for attribute in ("shape", "colour", "texture"):
        seen = {getattr(catalogue[c], attribute) for c in train}
        assert {getattr(catalogue[c], attribute) for c in test} <= seen


def _digests(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_seed_fixes_every_file_and_ensure_reuses_or_regenerates(tmp_path):
    tiny = dict(SMALL, subjects=1, train_concepts=8, test_concepts=3, test_repetitions=2)
    a = generate_things_eeg2(tmp_path / "a", progress=False, **tiny)
    b = generate_things_eeg2(tmp_path / "b", progress=False, **tiny)
    assert _digests(a) == _digests(b)
    c = generate_things_eeg2(tmp_path / "c", progress=False, **{**tiny, "seed": 1})
    assert _digests(c)["sub-01/preprocessed_eeg_test.npy"] != _digests(a)["sub-01/preprocessed_eeg_test.npy"]
    before = (a / "sub-01" / "preprocessed_eeg_test.npy").stat().st_mtime_ns
    assert ensure_things_eeg2(a, progress=False, **tiny) == a
    assert (a / "sub-01" / "preprocessed_eeg_test.npy").stat().st_mtime_ns == before  # reused
    ensure_things_eeg2(a, progress=False, **{**tiny, "test_repetitions": 3})
    assert _plain_release_reader(a / "sub-01" / "preprocessed_eeg_test.npy")["preprocessed_eeg_data"].shape[1] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # no staging folder left behind


@pytest.mark.parametrize(("params", "needle"), [
    ({"train_concepts": 100, "test_concepts": 100}, "stimulus catalogue has 160"),
    ({"test_repetitions": 0}, "test_repetitions=0"),
    ({"signal_strength": float("nan")}, "signal_strength=nan"),
    ({"subject_variability": -0.5}, "subject_variability=-0.5"),
    ({"subjects": 100}, "subjects=100"),
    ({"train_concepts": 2, "test_concepts": 20}, "ask for 8 or more training concepts"),
    ({"colour": "red"}, "unknown synthetic THINGS-EEG2 parameters"),
])
def test_bad_parameters_are_one_line_errors_and_write_nothing(tmp_path, params, needle):
    with pytest.raises(UserError, match=needle):
        generate_things_eeg2(tmp_path / "out", progress=False, **params)
    assert not any(tmp_path.iterdir())


def test_cli_writes_the_format_and_refuses_the_other_formats_options(tmp_path):
    cmd = [sys.executable, "-m", "eeg2img.cli", "data", "synth", "--format", "things-eeg2", "--no-progress"]
    ok = subprocess.run([*cmd, "--out", str(tmp_path / "t"), "--subjects", "1", "--train-concepts", "8",
                         "--test-concepts", "3", "--images-per-concept", "1", "--test-repetitions", "2",
                         "--image-size", "16"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "t" / "sub-01" / "preprocessed_eeg_test.npy").is_file()
    bad = subprocess.run([*cmd, "--out", str(tmp_path / "u"), "--classes", "4"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["eeg2img: error: --classes is a cvpr40 option; drop it, or pass --format cvpr40"]
    assert not (tmp_path / "u").exists()

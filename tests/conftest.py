"""Shared fixtures: a tiny synthetic dataset written in the real EEG-CVPR40 format."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_synth_dir(tmp_path_factory):
    """3 subjects, 6 classes × 6 images, 32 px, seed 0 — written once per test session."""
    from eeg2img.datasets.synthetic import generate_synthetic

    out = tmp_path_factory.mktemp("tiny_synth")
    generate_synthetic(out, subjects=3, classes=6, images_per_class=6, seed=0, image_size=32, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_synth(tiny_synth_dir):
    """The tiny synthetic set, loaded through the same loader as real EEG-CVPR40 files."""
    from eeg2img.datasets import load_dataset

    return load_dataset(tiny_synth_dir / "eeg_synth.pth")


# --- metrics: random weights in the real file formats, and a private cache (see metric_fixtures.py) ----------
@pytest.fixture(scope="session")
def fake_weights(tmp_path_factory):
    import metric_fixtures

    return metric_fixtures.fake_weights_dir(tmp_path_factory)


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    import metric_fixtures

    return metric_fixtures.isolate(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def metrics_private_environment(tmp_path_factory):
    """For a whole module (``pytestmark = pytest.mark.usefixtures(...)``): caches in a temp folder, no network."""
    import metric_fixtures

    yield from metric_fixtures.private_environment(tmp_path_factory)


# --- baselines ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_torch_thread():
    """For a whole module (``pytestmark = pytest.mark.usefixtures(...)``): torch on one thread, restored after.

    Tiny nets gain nothing from a second thread, and on a shared 2-core machine two threads per process
    can be ten times slower (spinning OpenMP workers).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def decodable(tmp_path_factory):
    """A strongly evoked synthetic set (signal 3×; 3 subjects, 6 classes × 6 images) split 60/40 by image:
    (train, test), where every learned baseline must beat the floors."""
    import numpy as np

    from eeg2img.datasets import load_dataset
    from eeg2img.datasets.synthetic import generate_synthetic
    from eeg2img.splits import split_images

    out = tmp_path_factory.mktemp("synth_strong")
    generate_synthetic(out, subjects=3, classes=6, images_per_class=6, seed=0, image_size=32, progress=False,
                       signal_strength=3.0)
    data = load_dataset(out / "eeg_synth.pth")
    test_images = split_images(data, seed=0, fractions=(0.6, 0.0, 0.4))["test"]
    is_test = np.isin(data.image_ids_, sorted(test_images))
    return data.subset(np.flatnonzero(~is_test)), data.subset(np.flatnonzero(is_test))


@pytest.fixture(scope="session")
def things_fold(tmp_path_factory):
    """A small synthetic THINGS-EEG2 set (1 subject, 20 training concepts × 4 images, 12 unseen test concepts,
    signal 3×), its first zero-shot fold: (train, val, test)."""
    from eeg2img.datasets.synthetic_things import generate_things_eeg2
    from eeg2img.datasets.things_eeg2 import load_things_eeg2
    from eeg2img.splits import make_folds

    folder = generate_things_eeg2(tmp_path_factory.mktemp("things") / "set", progress=False, subjects=1,
                                  train_concepts=20, test_concepts=12, images_per_concept=4, train_repetitions=2,
                                  test_repetitions=10, image_size=32, signal_strength=3.0)
    ds = load_things_eeg2(folder)
    f = make_folds(ds, "zero-shot")[0]
    return ds.subset(f.train), ds.subset(f.val), ds.subset(f.test)

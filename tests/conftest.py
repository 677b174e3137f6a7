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

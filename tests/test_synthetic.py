"""The synthetic ground-truth dataset: exact file formats, determinism, stimuli, and that the EEG
carries what the forward model puts in (class, position, per-subject SNR, block drift)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import RidgeClassifierCV, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict, cross_val_score

from eeg2img.datasets import synth_forward, synth_stimuli
from eeg2img.datasets.synthetic import ensure_synthetic, generate_synthetic
from eeg2img.errors import UserError

TINY = dict(subjects=3, classes=6, images_per_class=6, seed=0, image_size=32)  # the conftest set


def _load_eeg(path):
    return torch.load(path, weights_only=True)


def _arrays(raw, window=(20, 460)):
    items = raw["dataset"]
    eeg = np.stack([item["eeg"][:, window[0] : window[1]].numpy() for item in items])
    fields = {k: np.array([item[k] for item in items]) for k in ("label", "image", "subject", "block")}
    return eeg, fields


@pytest.fixture(scope="module")
def tiny_raw(tiny_synth_dir):
    return _load_eeg(tiny_synth_dir / "eeg_synth.pth")


@pytest.fixture(scope="module")
def decoding_set(tmp_path_factory):
    """Enough trials per subject (6 classes × 20 images) to decode from, at the default signal strength."""
    out = tmp_path_factory.mktemp("synth_decoding")
    raw = _load_eeg(generate_synthetic(out, subjects=3, classes=6, images_per_class=20, image_size=16, progress=False))
    eeg, fields = _arrays(raw)
    layout = np.load(out / "latents.npz")["layout"]
    meta = json.loads((out / "synth_meta.json").read_text())
    return eeg, fields, layout, meta


def _binned(eeg, width=50):
    n_bins = eeg.shape[2] // width
    return eeg[:, :, : n_bins * width].reshape(len(eeg), eeg.shape[1], n_bins, width).mean(-1).reshape(len(eeg), -1)


def _ridge_classifier():
    # Ridge rather than shrinkage LDA: as good here, and LDA's covariance estimate costs seconds per fit.
    return RidgeClassifierCV(alphas=np.logspace(-1, 5, 13))


# --- formats ------------------------------------------------------------------------------------------


def test_eeg_file_is_eeg_cvpr40_format(tiny_raw):
    n_images = TINY["classes"] * TINY["images_per_class"]
    assert set(tiny_raw) == {"dataset", "labels", "images"}
    assert tiny_raw["labels"] == [c.name for c in synth_stimuli.class_catalogue(TINY["classes"])]
    assert len(tiny_raw["images"]) == n_images
    assert all(re.fullmatch(r"c\d{2}_\d{4}", stem) for stem in tiny_raw["images"])
    assert len(tiny_raw["dataset"]) == TINY["subjects"] * n_images
    for item in tiny_raw["dataset"]:
        assert set(item) == {"eeg", "label", "image", "subject", "block"}
        assert item["eeg"].dtype == torch.float32 and tuple(item["eeg"].shape) == (128, 500)
        assert all(type(item[k]) is int for k in ("label", "image", "subject", "block"))
        assert item["label"] == int(tiny_raw["images"][item["image"]][1:3])  # class-prefixed stems
        assert 1 <= item["subject"] <= TINY["subjects"]
    eeg, _ = _arrays(tiny_raw, (0, 500))
    assert np.isfinite(eeg).all() and 0.5 < eeg.std() < 2.0


def test_trial_order_is_one_block_per_class_per_subject(tiny_raw):
    _, f = _arrays(tiny_raw)
    assert np.all(np.diff(f["subject"]) >= 0) and np.all(np.diff(f["block"]) >= 0)
    class_orders = []
    for s in range(1, TINY["subjects"] + 1):
        mine = f["subject"] == s
        assert sorted(f["image"][mine]) == list(range(TINY["classes"] * TINY["images_per_class"]))  # each once
        blocks = np.unique(f["block"][mine])
        assert len(blocks) == TINY["classes"]
        for b in blocks:
            assert len(np.unique(f["label"][f["block"] == b])) == 1  # one class per block
        assert np.all(np.diff(np.flatnonzero(np.diff(f["label"][mine]) != 0)) == TINY["images_per_class"])
        class_orders.append(tuple(f["label"][mine][:: TINY["images_per_class"]]))
    assert len(set(class_orders)) > 1  # the class order is shuffled per subject


def test_side_files(tiny_synth_dir, tiny_raw):
    stems = tiny_raw["images"]
    pngs = sorted(p.stem for p in (tiny_synth_dir / "images").glob("*.png"))
    assert pngs == sorted(stems)
    with Image.open(tiny_synth_dir / "images" / f"{stems[0]}.png") as im:
        assert im.mode == "RGB" and im.size == (32, 32)

    captions = json.loads((tiny_synth_dir / "captions.json").read_text())
    assert set(captions) == set(stems)
    for stem in stems:
        assert tiny_raw["labels"][int(stem[1:3])] in captions[stem]

    with np.load(tiny_synth_dir / "latents.npz", allow_pickle=False) as z:
        latents = {k: z[k] for k in z.files}
    assert set(latents) == {"image_ids", "class_semantic", "layout", "latent"}
    assert latents["image_ids"].tolist() == stems
    assert latents["class_semantic"].shape == (len(stems), synth_forward.SEMANTIC_DIM)
    assert latents["layout"].shape == (len(stems), len(synth_stimuli.LAYOUT_COLUMNS))
    assert latents["latent"].shape == (len(stems), len(synth_forward.LATENT_COLUMNS))
    np.testing.assert_array_equal(latents["latent"][:, : synth_forward.SEMANTIC_DIM], latents["class_semantic"])
    labels = np.array([int(s[1:3]) for s in stems])
    for c in range(TINY["classes"]):  # one semantic vector per class
        assert np.ptp(latents["class_semantic"][labels == c], axis=0).max() == 0

    meta = json.loads((tiny_synth_dir / "synth_meta.json").read_text())
    assert meta["params"] == {**TINY, "block_drift": 0.0, "n_samples": 500, "n_channels": 128, "signal_strength": 1.0,
                              "subject_variability": 1.0}
    assert meta["forward_model"] == synth_forward.FORWARD_MODEL_VERSION and meta["sfreq"] == 1000.0
    assert len(meta["ch_names"]) == 128 and meta["latent_columns"] == list(synth_forward.LATENT_COLUMNS)
    assert not list(tiny_synth_dir.parent.glob(".*.partial"))  # no staging folder left behind


def test_split_file_splits_by_image_80_10_10(tiny_synth_dir, tiny_raw):
    split_file = torch.load(tiny_synth_dir / "block_splits_by_image_all.pth", weights_only=True)
    assert set(split_file) == {"splits"} and len(split_file["splits"]) == 1
    split = split_file["splits"][0]
    assert set(split) == {"train", "val", "test"}
    _, f = _arrays(tiny_raw)
    every = np.concatenate([split[k] for k in ("train", "val", "test")])
    assert sorted(every.tolist()) == list(range(len(f["image"])))
    images = {k: set(f["image"][split[k]].tolist()) for k in split}
    assert not images["train"] & images["test"] and not images["train"] & images["val"]
    assert not images["val"] & images["test"]
    for c in range(TINY["classes"]):
        per_part = [sum(int(tiny_raw["images"][i][1:3]) == c for i in images[k]) for k in ("train", "val", "test")]
        assert per_part == [4, 1, 1]
    assert all(split[k] == sorted(split[k]) for k in split)


def test_loader_reads_the_synthetic_set(tiny_synth, tiny_raw):
    n = TINY["subjects"] * TINY["classes"] * TINY["images_per_class"]
    assert tiny_synth.eeg.shape == (n, 128, 440) and tiny_synth.eeg.dtype == np.float32
    np.testing.assert_array_equal(tiny_synth.eeg[5], tiny_raw["dataset"][5]["eeg"][:, 20:460].numpy())
    assert tiny_synth.class_names == tuple(tiny_raw["labels"])
    assert tiny_synth.blocks is not None and len(np.unique(tiny_synth.blocks)) == TINY["subjects"] * TINY["classes"]
    stem = str(tiny_synth.image_ids[0])
    assert (
        tiny_synth.captions()[0].startswith("a ")
        and tiny_synth.class_names[tiny_synth.labels[0]] in tiny_synth.captions()[0]
    )
    assert tiny_synth.load_images([stem]).shape == (1, 32, 32, 3)
    assert tiny_synth.latents_for([stem])["latent"].shape == (1, len(synth_forward.LATENT_COLUMNS))


# --- determinism --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_data_other_seed_differs(tmp_path):
    small = dict(subjects=2, classes=3, images_per_class=3, image_size=16, progress=False)
    a = generate_synthetic(tmp_path / "a", seed=7, **small)
    b = generate_synthetic(tmp_path / "b", seed=7, **small)
    c = generate_synthetic(tmp_path / "c", seed=8, **small)
    eeg_a, f_a = _arrays(_load_eeg(a), (0, 500))
    eeg_b, f_b = _arrays(_load_eeg(b), (0, 500))
    eeg_c, _ = _arrays(_load_eeg(c), (0, 500))
    assert eeg_a.tobytes() == eeg_b.tobytes()
    assert all(np.array_equal(f_a[k], f_b[k]) for k in f_a)
    assert a.read_bytes() == b.read_bytes()
    for png in (tmp_path / "a" / "images").glob("*.png"):
        assert png.read_bytes() == (tmp_path / "b" / "images" / png.name).read_bytes()
    assert (tmp_path / "a" / "captions.json").read_text() == (tmp_path / "b" / "captions.json").read_text()

    assert not np.allclose(eeg_a, eeg_c)
    differing = [
        p.name
        for p in (tmp_path / "a" / "images").glob("*.png")
        if p.read_bytes() != (tmp_path / "c" / "images" / p.name).read_bytes()
    ]
    assert len(differing) == 9


# --- stimuli ------------------------------------------------------------------------------------------


def _images_and_layout(folder):
    with np.load(folder / "latents.npz") as z:
        stems, layout = z["image_ids"], z["layout"]
    images = np.stack([np.asarray(Image.open(folder / "images" / f"{s}.png")) for s in stems]).astype(np.float64)
    return images / 255.0, layout, np.array([int(s[1:3]) for s in stems])


def test_image_instances_follow_their_layout(tiny_synth_dir):
    images, layout, labels = _images_and_layout(tiny_synth_dir)
    size = images.shape[1]
    foreground = np.abs(images - layout[:, 7, None, None, None]).max(-1) > 0.1
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    centre_x = np.array([xx[m].mean() for m in foreground])
    centre_y = np.array([yy[m].mean() for m in foreground])
    np.testing.assert_allclose(centre_x, layout[:, 0], atol=0.04)
    np.testing.assert_allclose(centre_y, layout[:, 1], atol=0.04)
    area = foreground.mean(axis=(1, 2))
    assert np.corrcoef(area, layout[:, 2] ** 2)[0, 1] > 0.6  # bigger radius, bigger object
    for c in range(TINY["classes"]):  # instances of a class vary in position and size
        assert np.std(centre_x[labels == c]) > 0.05 and np.ptp(area[labels == c]) > 0.02


def test_classes_are_distinguishable_from_pixels(tiny_synth_dir):
    images, _, labels = _images_and_layout(tiny_synth_dir)
    # Remove each pixel's grey level: the grey backgrounds vary most and say nothing about the class.
    features = (images - images.mean(-1, keepdims=True)).reshape(len(images), -1)
    hits = 0
    for i in range(len(features)):  # leave-one-out nearest class mean
        rest = np.arange(len(features)) != i
        means = np.stack([features[rest & (labels == c)].mean(0) for c in range(TINY["classes"])])
        hits += int(np.argmin(((means - features[i]) ** 2).sum(1)) == labels[i])
    assert hits / len(features) > 3 / TINY["classes"]  # chance is 1/6


def test_class_catalogue_and_captions():
    catalogue = synth_stimuli.class_catalogue(synth_stimuli.MAX_CLASSES)
    assert len({c.name for c in catalogue}) == synth_stimuli.MAX_CLASSES
    assert [c.name for c in synth_stimuli.class_catalogue(6)] == [c.name for c in catalogue[:6]]
    assert len({(c.shape, c.colour) for c in catalogue[:40]}) == 40
    striped_square = next(c for c in catalogue if c.shape == "square" and c.texture == "striped")
    layout = np.array([0.3, 0.3, 0.15, 210.0, 0.2, 0.6, 0.2, 0.1])
    assert synth_stimuli.caption(striped_square, layout) == (
        f"a small {striped_square.name} in the upper left, rotated 30 degrees, on a dark background"
    )
    solid_circle = next(c for c in catalogue if c.shape == "circle" and c.texture == "solid")
    layout = np.array([0.7, 0.5, 0.29, 123.0, 0.9, 0.1, 0.1, 0.8])
    assert (
        synth_stimuli.caption(solid_circle, layout)
        == f"a large {solid_circle.name} on the right, on a light background"
    )


# --- the forward model: what the EEG carries ---------------------------------------------------------


def test_eeg_decodes_class_and_horizontal_position_within_subject(decoding_set):
    eeg, f, layout, meta = decoding_set
    features = _binned(eeg)
    x_position = layout[f["image"], 0]
    chance = 1 / 6
    accuracy, correlation = {}, {}
    for s in (1, 2, 3):
        mine = f["subject"] == s
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        accuracy[s] = cross_val_score(_ridge_classifier(), features[mine], f["label"][mine], cv=folds).mean()
        ridge = RidgeCV(alphas=np.logspace(0, 6, 13))
        predicted = cross_val_predict(
            ridge, features[mine], x_position[mine], cv=KFold(5, shuffle=True, random_state=0)
        )
        correlation[s] = np.corrcoef(predicted, x_position[mine])[0, 1]
    best = max(meta["subjects"], key=lambda s: meta["subjects"][s]["snr_factor"])
    assert np.mean(list(accuracy.values())) > 2 * chance and accuracy[int(best)] > 3 * chance
    assert min(correlation.values()) > 0.4 and correlation[int(best)] > 0.6


def test_cross_subject_transfer_is_possible_but_imperfect(decoding_set):
    eeg, f, _, _ = decoding_set
    features = _binned(eeg)
    n_images = 6 * 20
    within, across = [], []
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(
        np.arange(n_images), np.arange(n_images) // 20
    ):
        for s in (1, 2, 3):
            fit_on = (f["subject"] == s) & np.isin(f["image"], train)
            decoder = _ridge_classifier().fit(features[fit_on], f["label"][fit_on])
            for other in (1, 2, 3):  # the same held-out images, seen by the same or by another subject
                rows = (f["subject"] == other) & np.isin(f["image"], test)
                (within if other == s else across).append(decoder.score(features[rows], f["label"][rows]))
    assert np.mean(across) > 1.5 / 6
    assert np.mean(within) > np.mean(across) + 0.08


def test_shuffled_labels_decode_at_chance(decoding_set):
    eeg, f, _, _ = decoding_set
    mine = f["subject"] == 1
    shuffled = np.random.default_rng(0).permutation(f["label"][mine])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    accuracy = cross_val_score(_ridge_classifier(), _binned(eeg[mine]), shuffled, cv=folds).mean()
    assert accuracy < 0.3


def test_subjects_differ_in_snr(decoding_set):
    eeg, f, _, meta = decoding_set
    factors, estimates = [], []
    for s in (1, 2, 3):
        trials = eeg[f["subject"] == s]
        erp = trials.mean(0)
        noise = (trials - erp).var()
        estimates.append((np.mean(erp**2) - noise / len(trials)) / noise)  # minus the average's own noise
        factors.append(meta["subjects"][str(s)]["snr_factor"])
    assert max(factors) / min(factors) > 2
    assert np.argsort(estimates).tolist() == np.argsort(factors).tolist()


def _subject_departure(variability: float) -> tuple[float, float, float]:
    """Across 4 subjects: mean correlation between two subjects' evoked scalp patterns, between their
    read-out weights, and the spread of their component latencies (ms)."""
    shared = synth_forward.shared_model(0)
    models = [synth_forward.subject_model(shared, s, 0, 32, 500, 1.0, 1.0, variability) for s in range(1, 5)]
    n = synth_forward.N_EVOKED
    patterns = [m.mixing[:, :n] for m in models]
    pattern_r = np.mean([np.corrcoef(a[:, k], b[:, k])[0, 1] for i, a in enumerate(patterns)
                         for b in patterns[i + 1:] for k in range(n)])
    weight_r = np.mean([np.sum(a.weights * b.weights, axis=1).mean() for i, a in enumerate(models)
                        for b in models[i + 1:]])
    latency_sd = np.std([m.component_latency_ms for m in models], axis=0).mean()
    return float(pattern_r), float(weight_r), float(latency_sd)


def test_subject_variability_scales_how_far_subjects_depart_from_the_shared_model():
    identical, default, double = (_subject_departure(v) for v in (0.0, 1.0, 2.0))
    assert identical[0] == pytest.approx(1.0, abs=1e-6) and identical[1] == pytest.approx(1.0)
    assert identical[2] == pytest.approx(0.0, abs=1e-9)
    for k in range(3):  # patterns and weights correlate less, latencies spread more
        worse = (lambda a, b: a < b) if k < 2 else (lambda a, b: a > b)
        assert worse(double[k], default[k]) and worse(default[k], identical[k]), (k, identical, default, double)
    # 1.0 is the forward model's own subjects: the default call draws the same arrays
    shared = synth_forward.shared_model(0)
    a = synth_forward.subject_model(shared, 2, 0, 32, 500, 1.0, 1.0)
    b = synth_forward.subject_model(shared, 2, 0, 32, 500, 1.0, 1.0, 1.0)
    assert np.array_equal(a.mixing, b.mixing) and np.array_equal(a.weights, b.weights)


def _trial_means(folder):
    eeg, f = _arrays(_load_eeg(folder / "eeg_synth.pth"))
    return eeg.mean(-1), f["label"], f["subject"]


def test_block_drift_reproduces_the_block_design_confound(tmp_path):
    weak = dict(subjects=2, classes=20, images_per_class=5, image_size=16, signal_strength=0.1, progress=False)
    generate_synthetic(tmp_path / "drift", block_drift=1.0, **weak)
    generate_synthetic(tmp_path / "clean", block_drift=0.0, **weak)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)  # by image: each image is one trial per subject
    # Many classes: a drift classifier gets whole blocks right or wrong, so its accuracy moves in steps of 1/classes.
    ceiling = 5 / 20  # five times chance
    means, labels, subjects = _trial_means(tmp_path / "drift")
    first = subjects == 1
    assert cross_val_score(_ridge_classifier(), means[first], labels[first], cv=folds).mean() > 0.9
    # The drift belongs to the recording block, not to the stimulus: it does not carry over to another subject.
    across = _ridge_classifier().fit(means[first], labels[first]).score(means[~first], labels[~first])
    assert across < ceiling
    means, labels, subjects = _trial_means(tmp_path / "clean")
    first = subjects == 1
    assert cross_val_score(_ridge_classifier(), means[first], labels[first], cv=folds).mean() < ceiling


# --- arguments and writing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"subjects": 0},
        {"classes": -1},
        {"classes": synth_stimuli.MAX_CLASSES + 1},
        {"images_per_class": 2},
        {"image_size": 8},
        {"seed": -1},
        {"block_drift": -0.5},
        {"block_drift": math.nan},
        {"signal_strength": math.inf},
        {"subject_variability": -1.0},
        {"subject_variability": "high"},
        {"n_samples": 400},
        {"n_channels": 100},
        {"subjects": True},
        {"classes": 2.5},
    ],
)
def test_invalid_arguments_raise_user_error_and_write_nothing(tmp_path, bad):
    out = tmp_path / "set"
    with pytest.raises(UserError, match=f"^{next(iter(bad))}="):
        generate_synthetic(out, progress=False, **bad)
    assert not out.exists()


def test_output_path_that_is_a_file_raises(tmp_path):
    target = tmp_path / "not_a_dir"
    target.write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        generate_synthetic(target, subjects=1, classes=2, images_per_class=3, image_size=16, progress=False)


def test_regeneration_replaces_the_set_and_a_failed_run_leaves_it_intact(tmp_path, monkeypatch):
    small = dict(subjects=1, classes=2, images_per_class=3, image_size=16, progress=False)
    out = tmp_path / "set"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    generate_synthetic(out, seed=1, **small)
    first = (out / "eeg_synth.pth").read_bytes()
    generate_synthetic(out, seed=2, **small)
    assert (out / "eeg_synth.pth").read_bytes() != first
    assert json.loads((out / "synth_meta.json").read_text())["params"]["seed"] == 2
    assert (out / "notes.txt").read_text() == "mine"
    second = (out / "eeg_synth.pth").read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth_forward, "simulate_subject", broken)
    with pytest.raises(RuntimeError):
        generate_synthetic(out, seed=3, **small)
    assert (out / "eeg_synth.pth").read_bytes() == second
    assert json.loads((out / "synth_meta.json").read_text())["params"]["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # staging removed
    with pytest.raises(RuntimeError):
        generate_synthetic(tmp_path / "fresh", seed=3, **small)
    assert not (tmp_path / "fresh").exists()


def test_ensure_synthetic_reuses_a_matching_set(tmp_path, monkeypatch):
    small = dict(subjects=1, classes=2, images_per_class=3, image_size=16)
    path = ensure_synthetic(tmp_path / "set", progress=False, **small)
    stamp = path.stat().st_mtime_ns
    assert ensure_synthetic(tmp_path / "set", progress=False, **small).stat().st_mtime_ns == stamp
    regenerated = ensure_synthetic(tmp_path / "set", progress=False, **{**small, "seed": 1})
    assert json.loads((tmp_path / "set" / "synth_meta.json").read_text())["params"]["seed"] == 1
    assert regenerated == path

"""The baselines' contract: registration, floors, blinding, determinism, bad parameters and bad input.

Everything here runs without the diffusion model (see test_baselines_diffusion.py for those methods).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from eeg2img.errors import LeakageError, UserError
from eeg2img.methods import available_methods, build_method
from eeg2img.splits import make_folds

BASELINES = {
    "floor-random", "floor-mean", "floor-class-mean", "oracle-caption", "oracle-saliency", "retrieval-triplet",
    "retrieval-ridge", "latent-ridge", "brain2image-vae", "brain2image-gan", "dreamdiffusion", "embedding-ridge",
    "nice", "atm", "oracle-embedding",
}
ORACLES = {"oracle-caption", "oracle-saliency", "oracle-embedding"}
# Fast settings of the learned, non-diffusion baselines (contract only; quality is test_baselines_learning.py).
FAST = {
    "floor-random": {}, "floor-mean": {}, "floor-class-mean": {}, "retrieval-ridge": {},
    "brain2image-vae": {"steps": 4}, "brain2image-gan": {"steps": 4},
    "retrieval-triplet": {"encoder_epochs": 2, "device": "cpu"},
}


# torch on one thread for this module; see tests/conftest.py
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fold(tiny_synth):
    f = make_folds(tiny_synth, "per-subject", seed=0)[0]
    return tiny_synth.subset(f.train), tiny_synth.subset(f.test)


def _fitted(name, train, tmp_path, **params):
    method = build_method(name, **{**FAST[name], **params})
    method.cache_dir = str(tmp_path)
    return method.fit(train)


# ------------------------------------------------------------------------------------------- registration


def test_importing_registers_every_baseline_and_trains_or_loads_nothing(tmp_path):
    # A fresh interpreter: the import alone must register the names without heavy libraries or files.
    code = (
        "import sys, json, baselines\n"
        "from eeg2img.methods import _REGISTRY\n"
        "heavy = [m for m in ('diffusers', 'transformers', 'sklearn') if m in sys.modules]\n"
        "print(json.dumps({'names': sorted(_REGISTRY), 'heavy': heavy}))\n"
    )
    env = {**os.environ, "EEG2IMG_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert BASELINES <= set(report["names"])
    assert report["heavy"] == []
    assert not (tmp_path / "cache").exists() and not (tmp_path / "home").exists()


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_builds_with_defaults_and_round_trips_its_params(name):
    method = build_method(name)
    assert method.name == name
    assert method.is_oracle == (name in ORACLES)
    assert build_method(name, **method.get_params()).get_params() == method.get_params()


def test_registered_names_are_available():
    assert BASELINES <= set(available_methods())


# ------------------------------------------------------------------------------------------- floors


def test_floor_mean_is_the_pixel_mean_of_the_distinct_training_images(fold, tmp_path):
    train, test = fold
    out = _fitted("floor-mean", train, tmp_path).reconstruct(test.blind())
    images = train.load_images(train.unique_image_ids()).astype(np.float64)
    assert out.shape == (len(test), *images.shape[1:]) and out.dtype == np.uint8
    assert np.abs(out.astype(np.float64) - images.mean(0)).max() <= 0.5
    assert (out == out[0]).all()


def test_floor_mean_counts_each_image_once_however_often_it_was_shown(tiny_synth, tmp_path):
    # Pooling subjects shows each image three times; the floor is still the mean over distinct images.
    one = tiny_synth.for_subject(1)
    pooled = build_method("floor-mean").fit(tiny_synth).reconstruct(one.blind())
    single = build_method("floor-mean").fit(one).reconstruct(one.blind())
    np.testing.assert_array_equal(pooled, single)


def test_floor_class_mean_is_the_mean_of_the_most_frequent_class(fold, tmp_path):
    train, test = fold
    labels = train.labels
    counts = np.bincount(labels)
    # Drop trials until class 3 is the unique most frequent class.
    keep = np.ones(len(train), bool)
    for k in np.unique(labels):
        if k != 3:
            keep[np.flatnonzero(labels == k)[: max(0, counts[k] - counts[3] + 1)]] = False
    skewed = train.subset(np.flatnonzero(keep))
    assert np.argmax(np.bincount(skewed.labels)) == 3 and np.sort(np.bincount(skewed.labels))[-2] < np.bincount(
        skewed.labels)[3]
    method = _fitted("floor-class-mean", skewed, tmp_path)
    out = method.reconstruct(test.blind())
    ids = sorted(set(skewed.image_ids[skewed.labels == 3]))
    expected = skewed.load_images(ids).astype(np.float64).mean(0)
    assert method.class_ == 3
    assert np.abs(out.astype(np.float64) - expected).max() <= 0.5
    assert not np.array_equal(out[0], _fitted("floor-mean", skewed, tmp_path).reconstruct(test.blind())[0])


def test_floor_class_mean_breaks_ties_towards_the_lowest_class(fold, tmp_path):
    train, _ = fold
    counts = np.bincount(train.labels)
    assert (counts == counts.max()).sum() > 1  # the per-subject fold is balanced: a tie
    assert _fitted("floor-class-mean", train, tmp_path).class_ == int(np.argmax(counts == counts.max()))


def test_floor_random_returns_training_images_seeded_per_trial(fold, tmp_path):
    train, test = fold
    gallery = {im.tobytes() for im in train.load_images()}
    test_images = {im.tobytes() for im in test.load_images()}
    out = _fitted("floor-random", train, tmp_path, seed=3).reconstruct(test.blind())
    assert all(im.tobytes() in gallery and im.tobytes() not in test_images for im in out)
    again = _fitted("floor-random", train, tmp_path, seed=3).reconstruct(test.blind())
    np.testing.assert_array_equal(out, again)
    # A trial's draw depends on (seed, trial id) only, not on the batch it is asked in.
    rev = np.arange(len(test))[::-1]
    np.testing.assert_array_equal(_fitted("floor-random", train, tmp_path, seed=3).reconstruct(
        test.subset(rev).blind()), out[rev])
    others = [_fitted("floor-random", train, tmp_path, seed=s).reconstruct(test.blind()) for s in range(4, 8)]
    assert any(not np.array_equal(out, o) for o in others)


def test_floor_random_draws_every_training_image_eventually(tiny_synth):
    train = tiny_synth.for_subject(1)
    method = build_method("floor-random", seed=0).fit(train)
    method.reconstruct(tiny_synth.blind())
    picked = set(method.picked_ids_)
    assert len(picked) > 0.8 * len(set(train.image_ids))


# ------------------------------------------------------------------------------------------- blinding


@pytest.mark.parametrize("name", sorted(FAST))
def test_non_oracles_reconstruct_from_the_blinded_view(name, fold, tmp_path):
    train, test = fold
    method = _fitted(name, train, tmp_path)
    assert not method.is_oracle
    out = method.reconstruct(test.blind())
    assert out.dtype == np.uint8 and out.shape == (len(test), 32, 32, 3)


@pytest.mark.parametrize("name", sorted(FAST))
def test_a_baseline_that_peeks_at_test_labels_gets_a_leakage_error(name, fold, tmp_path):
    train, test = fold
    base = type(build_method(name))

    class Peeking(base):
        def reconstruct(self, test):
            return np.stack([np.full((32, 32, 3), y, np.uint8) for y in test.labels])

    cheat = Peeking(**FAST[name])
    cheat.cache_dir = str(tmp_path)
    cheat.fit(train)
    with pytest.raises(LeakageError):
        cheat.reconstruct(test.blind())


@pytest.mark.parametrize("name", sorted(FAST))
def test_fit_refuses_a_blinded_view(name, fold):
    with pytest.raises(UserError, match="blinded"):
        build_method(name, **FAST[name]).fit(fold[0].blind())


# ------------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", ["brain2image-vae", "brain2image-gan", "retrieval-ridge", "retrieval-triplet"])
def test_learned_baselines_are_deterministic_for_a_seed_and_leave_global_rng_alone(name, fold, tmp_path):
    train, test = fold
    state = torch.random.get_rng_state()
    a = _fitted(name, train, tmp_path / "a", seed=1).reconstruct(test.blind())
    assert torch.equal(torch.random.get_rng_state(), state)
    b = _fitted(name, train, tmp_path / "b", seed=1).reconstruct(test.blind())
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["brain2image-vae", "brain2image-gan"])
def test_generators_depend_on_the_seed_and_not_on_batch_order(name, fold, tmp_path):
    train, test = fold
    method = _fitted(name, train, tmp_path, seed=1)
    out = method.reconstruct(test.blind())
    rev = np.arange(len(test))[::-1]
    np.testing.assert_array_equal(method.reconstruct(test.subset(rev).blind()), out[rev])
    assert not np.array_equal(_fitted(name, train, tmp_path, seed=2).reconstruct(test.blind()), out)


def test_gan_loss_option_changes_the_training(fold, tmp_path):
    train, test = fold
    hinge = _fitted("brain2image-gan", train, tmp_path, seed=1)
    bce = _fitted("brain2image-gan", train, tmp_path, seed=1, loss="bce")
    assert hinge.history_ != bce.history_
    assert not np.array_equal(hinge.reconstruct(test.blind()), bce.reconstruct(test.blind()))


def test_gan_keeps_the_checkpoint_that_identifies_the_validation_stimuli_best(tiny_synth, tmp_path):
    # Scoring on validation draws no random numbers, so the run with selection trains exactly like the run
    # without it, and the kept generator is the one a run stopped at the selected step would end with.
    f = make_folds(tiny_synth, "per-subject", seed=0)[0]
    train, val, test = (tiny_synth.subset(i) for i in (f.train, f.val, f.test))
    steps = {"steps": 12, "val_every": 3}
    chosen = build_method("brain2image-gan", seed=1, **steps).fit(train, val)
    last = build_method("brain2image-gan", seed=1, select="last", **steps).fit(train, val)
    assert chosen.history_ == last.history_
    assert sorted(chosen.val_scores_) == [3, 6, 9, 12]
    best = max(chosen.val_scores_.values())
    assert chosen.selected_step_ == max(s for s, v in chosen.val_scores_.items() if v == best)
    stopped = build_method("brain2image-gan", seed=1, select="last", steps=chosen.selected_step_).fit(train, val)
    np.testing.assert_array_equal(chosen.reconstruct(test.blind()), stopped.reconstruct(test.blind()))
    # Without validation trials there is nothing to select on: the last step's generator.
    no_val = build_method("brain2image-gan", seed=1, **steps).fit(train)
    assert no_val.selected_step_ == 12 and no_val.val_scores_ == {}
    np.testing.assert_array_equal(no_val.reconstruct(test.blind()), last.reconstruct(test.blind()))


# ------------------------------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("floor-random", {"seed": -1}),
        ("floor-mean", {"image_size": 0}),
        ("floor-class-mean", {"seed": 1.5}),
        ("retrieval-ridge", {"alpha": -1.0}),
        ("retrieval-ridge", {"n_bins": 0}),
        ("retrieval-triplet", {"encoder": "transformer"}),
        ("retrieval-triplet", {"margin": -0.1}),
        ("brain2image-vae", {"steps": 0}),
        ("brain2image-vae", {"beta": float("nan")}),
        ("brain2image-vae", {"work_size": 24}),
        ("brain2image-gan", {"loss": "wasserstein"}),
        ("brain2image-gan", {"diffaugment": "color,rotate"}),
        ("brain2image-gan", {"lr": 0}),
        ("brain2image-gan", {"ema": 1.0}),
        ("brain2image-gan", {"select": "test"}),
        ("brain2image-gan", {"val_every": 0}),
        ("brain2image-vae", {"condition": "raw"}),
        ("latent-ridge", {"strength": 1.5}),
        ("latent-ridge", {"caption": "gpt"}),
        ("oracle-caption", {"steps": 0}),
        ("oracle-caption", {"demo_size": 4}),
        ("oracle-saliency", {"blur_sigma": -1}),
        ("dreamdiffusion", {"tune": "lora"}),
        ("dreamdiffusion", {"uncond_prob": 2.0}),
        ("dreamdiffusion", {"device": "tpu"}),
        ("floor-mean", {"no_such_option": 1}),
    ],
)
def test_bad_parameters_raise_user_error(name, params):
    with pytest.raises(UserError, match=name.split("-")[0] if "no_such" not in str(params) else "bad parameters"):
        build_method(name, **params)


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", ["retrieval-ridge", "brain2image-vae"])
def test_nan_or_mismatched_test_eeg_is_a_user_error(name, fold, tmp_path):
    train, test = fold
    method = _fitted(name, train, tmp_path)
    from dataclasses import replace

    bad = test.eeg.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(UserError, match="NaN"):
        method.reconstruct(replace(test, eeg=bad).blind())
    with pytest.raises(UserError, match="channels"):
        method.reconstruct(replace(test, eeg=test.eeg[:, :-1]).blind())


@pytest.mark.parametrize("name", sorted(FAST))
def test_reconstruct_before_fit_is_a_user_error(name, fold):
    with pytest.raises(UserError, match="fit"):
        build_method(name, **FAST[name]).reconstruct(fold[1].blind())


def test_nan_training_eeg_is_a_user_error(fold):
    from dataclasses import replace

    train = fold[0]
    bad = train.eeg.copy()
    bad[1, 2, 3] = np.inf
    with pytest.raises(UserError, match="NaN or inf"):
        build_method("retrieval-ridge").fit(replace(train, eeg=bad))


@pytest.mark.parametrize("name", ["retrieval-triplet", "brain2image-vae"])
def test_class_supervised_baselines_need_two_classes(name, fold):
    train = fold[0]
    one_class = train.subset(np.flatnonzero(train.labels == train.labels[0]))
    with pytest.raises(UserError, match="class"):
        build_method(name, **FAST[name]).fit(one_class)


# ------------------------------------------------------------------------------------------- shared pieces


def test_binned_means_are_the_channel_means_over_equal_time_bins():
    from baselines.features import binned_means

    eeg = np.random.default_rng(0).standard_normal((3, 4, 440)).astype(np.float32)
    expected = eeg.astype(np.float64).reshape(3, 4, 10, 44).mean(-1).reshape(3, 40)
    np.testing.assert_allclose(binned_means(eeg, 10), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(binned_means(eeg, 1), eeg.mean(-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(binned_means(eeg[:, :, :23], 23), eeg[:, :, :23].reshape(3, -1), rtol=1e-6)
    with pytest.raises(UserError, match="n_bins"):
        binned_means(eeg[:, :, :5], 6)


def test_features_are_standardised_with_training_statistics_only():
    from baselines.features import EEGFeatures

    rng = np.random.default_rng(1)
    train = (rng.standard_normal((50, 8, 60)) * np.arange(1, 9)[None, :, None] + 3).astype(np.float32)
    feats = EEGFeatures(n_bins=6).fit(train)
    z = feats.transform(train)
    assert z.shape == (50, 48) and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    shifted = feats.transform(train + 1.0)  # test data is not re-standardised
    np.testing.assert_allclose(shifted - z, np.broadcast_to(1.0 / feats.scale_, z.shape), rtol=1e-3)
    with pytest.raises(UserError, match="channels"):
        feats.transform(train[:, :7])


def test_feature_pca_keeps_the_leading_components_without_whitening():
    from baselines.features import EEGFeatures

    rng = np.random.default_rng(2)
    train = rng.standard_normal((40, 6, 50)).astype(np.float32)
    train[:, 0] += 5 * rng.standard_normal((40, 1))  # one dominant direction
    a = EEGFeatures(n_bins=5, n_components=4).fit(train)
    z = a.transform(train)
    assert z.shape == (40, 4)
    var = z.var(0)
    assert np.all(np.diff(var) < 0) and var[0] > 2 * var[-1]  # whitening would make them all equal
    assert var.mean() == pytest.approx(1.0, rel=0.05)  # one common scale keeps them near unit size
    np.testing.assert_array_equal(EEGFeatures(n_bins=5, n_components=4).fit(train).transform(train), z)


def test_feature_pca_drops_the_null_directions_of_few_trials_so_lda_stays_bounded():
    # The quick demo fits 64 components on ~50 trials: centred, they span 49 directions, and the LDA on
    # the rest once put held-out features at 1e13 (the VAE and GAN then drew one saturated image).
    from baselines.features import DiscriminantProjection, EEGFeatures

    rng = np.random.default_rng(3)
    train, test = rng.standard_normal((30, 16, 40)), rng.standard_normal((10, 16, 40))
    labels = np.arange(30) % 5
    feats = EEGFeatures(n_bins=10, n_components=64).fit(train)
    assert feats.n_features == 29
    lda = DiscriminantProjection().fit(feats.transform(train), labels)
    assert np.abs(lda.transform(feats.transform(test))).max() < 20


def test_ridge_map_recovers_a_linear_map_and_picks_alpha_by_leave_one_out():
    from baselines.ridge import DEFAULT_ALPHAS, RidgeMap

    rng = np.random.default_rng(3)
    x = rng.standard_normal((60, 5))
    w = rng.standard_normal((5, 7))
    y = x @ w + 2.0
    fitted = RidgeMap(alpha=1e-6).fit(x, y)
    np.testing.assert_allclose(fitted.predict(x), y, atol=1e-4)
    noisy = RidgeMap().fit(x, y + 5 * rng.standard_normal(y.shape))
    assert noisy.alpha_ in DEFAULT_ALPHAS
    assert RidgeMap().fit(x, y).alpha_ <= noisy.alpha_

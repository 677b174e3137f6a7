"""Baselines that decode through NeuroImagen's diffusion stage: oracles, latent-ridge, dreamdiffusion.

The diffusion model here is the demo-scale tiny SD with zero training steps (built from its config in
about a second): image quality is meaningless, so these tests check what the baselines *learn* in the
spaces they regress into (caption embeddings, VAE latents, cross-attention tokens), that the oracles use
the truth they are given, that every baseline shares NeuroImagen's model for the fold, and determinism.
The learning checks use the synthetic set at 3× the default signal strength (see
test_baselines_learning.py for why).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from reconstruct_fixtures import nearest_caption_accuracy

from eeg2img.errors import UserError
from eeg2img.methods import build_method

# Zero-step tiny SD, few sampling steps: fast, deterministic, and shared by every test of this module.
DIFFUSION = {"device": "cpu", "demo_vae_steps": 0, "demo_unet_steps": 0, "steps": 4}
DREAM = {**DIFFUSION, "tune_steps": 30}


# torch on one thread for this module; see tests/conftest.py
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _fit(name, train, cache, **params):
    method = build_method(name, **{**(DREAM if name == "dreamdiffusion" else DIFFUSION), **params})
    method.cache_dir = str(cache)
    return method.fit(train)


@pytest.fixture(scope="module")
def fitted(decodable, cache):
    train, _ = decodable
    names = ("oracle-caption", "oracle-saliency", "latent-ridge", "dreamdiffusion")
    return {name: _fit(name, train, cache) for name in names}


# ------------------------------------------------------------------------------------------- shared model


def test_every_diffusion_baseline_uses_neuroimagens_model_for_the_fold(fitted, decodable, cache):
    from reconstruct.pipeline import NeuroImagen

    train, _ = decodable
    reference = NeuroImagen(seed=0, device="cpu", demo_vae_steps=0, demo_unet_steps=0)
    reference.cache_dir = str(cache)
    source = reference.diffusion_for(train).source
    # One directory for all: the fold's model is trained once and every method decodes through it.
    assert {str(m.stage_.source) for m in fitted.values()} == {str(source)}


def test_triplet_retrieval_reuses_the_cached_neuroimagen_encoder(decodable, cache, monkeypatch):
    from reconstruct.encoder import TripletEEGEncoder
    from reconstruct.stages import clear_memo

    train, test = decodable
    params = {"device": "cpu", "encoder_epochs": 3}
    first = build_method("retrieval-triplet", **params)
    first.cache_dir = str(cache)
    out = first.fit(train).reconstruct(test.blind())
    # one encoder entry (beside it only its hidden build lock)
    assert len([p for p in (cache / "neuroimagen" / "encoder").iterdir() if not p.name.startswith(".")]) == 1
    clear_memo()
    monkeypatch.setattr(TripletEEGEncoder, "fit", lambda *a, **k: pytest.fail("encoder retrained"))
    second = build_method("retrieval-triplet", **params)
    second.cache_dir = str(cache)
    np.testing.assert_array_equal(second.fit(train).reconstruct(test.blind()), out)
    # NeuroImagen with the same encoder settings finds the very same entry (one StageCache for both)
    from reconstruct.pipeline import NeuroImagen

    reference = NeuroImagen(seed=0, **params)
    reference.cache_dir = str(cache)
    encoder = reference.fit_encoder(train)
    np.testing.assert_array_equal(encoder.encode(test.eeg), second.encoder_.encode(test.eeg))


# ------------------------------------------------------------------------------------------- oracles


def test_caption_oracle_draws_on_the_true_label_and_nothing_else(fitted, decodable):
    _, test = decodable
    test = test.subset(np.arange(4))
    oracle = fitted["oracle-caption"]
    out = oracle.reconstruct(test)
    assert out.shape == (4, 32, 32, 3) and out.dtype == np.uint8
    labels = test.labels_.copy()
    labels[0] = (labels[0] + 1) % test.n_classes
    relabelled = oracle.reconstruct(replace(test, labels_=labels))
    assert not np.array_equal(relabelled[0], out[0])
    np.testing.assert_array_equal(relabelled[1:], out[1:])
    # The EEG plays no part in an oracle's answer.
    np.testing.assert_array_equal(oracle.reconstruct(replace(test, eeg=np.zeros_like(test.eeg))), out)


def test_saliency_oracle_starts_from_the_true_stimulus(fitted, decodable):
    from baselines.oracles import saliency_map

    _, test = decodable
    test = test.subset(np.arange(4))
    oracle = fitted["oracle-saliency"]
    np.testing.assert_array_equal(oracle.saliency_maps(test), saliency_map(test.load_images(), oracle.saliency_size,
                                                                           oracle.blur_sigma))
    out = oracle.reconstruct(test)
    other = test.image_ids_.copy()
    other[0] = test.image_ids_[2]
    swapped = oracle.reconstruct(replace(test, image_ids_=other))
    assert not np.array_equal(swapped[0], out[0])
    np.testing.assert_array_equal(swapped[1:], out[1:])


@pytest.mark.parametrize("name", ["oracle-caption", "oracle-saliency"])
def test_an_oracle_given_the_blinded_view_says_so(name, fitted, decodable):
    with pytest.raises(UserError, match="unblinded"):
        fitted[name].reconstruct(decodable[1].blind())


def test_saliency_map_is_a_blurred_low_resolution_copy():
    from baselines.oracles import saliency_map

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    small = saliency_map(images, 8, 0.0)
    from PIL import Image

    expected = np.stack([np.asarray(Image.fromarray(im).resize((8, 8), Image.BICUBIC)) for im in images])
    np.testing.assert_array_equal(small, expected)
    blurred = saliency_map(images, 8, 1.5)
    assert blurred.shape == (3, 8, 8, 3)
    assert blurred.astype(float).std() < 0.8 * small.astype(float).std()
    flat = np.full((1, 32, 32, 3), 77, np.uint8)
    assert (saliency_map(flat, 16, 2.0) == 77).all()


# ------------------------------------------------------------------------------------------- latent-ridge


def test_latent_ridge_regresses_the_caption_embedding_of_held_out_trials(fitted, decodable):
    _, test = decodable
    method = fitted["latent-ridge"]
    _, embeds = method.predict(test.blind())
    class_embeds = method.stage_.embed([test.label_caption(k) for k in range(test.n_classes)])
    chance = 1 / test.n_classes
    assert nearest_caption_accuracy(embeds, class_embeds, test.labels) >= chance + 0.2


def test_latent_ridge_regresses_the_vae_latent_of_held_out_stimuli(fitted, decodable):
    _, test = decodable
    method = fitted["latent-ridge"]
    latents, _ = method.predict(test.blind())
    truth = method.stage_.encode_latents(test.load_images())
    # Two-way identification: is a trial's predicted latent closer (Pearson r) to its own stimulus's
    # latent than to another test stimulus's? Chance is 0.5.
    p = latents.reshape(len(latents), -1)
    t = truth.reshape(len(truth), -1)
    p = (p - p.mean(1, keepdims=True)) / p.std(1, keepdims=True)
    t = (t - t.mean(1, keepdims=True)) / t.std(1, keepdims=True)
    r = p @ t.T / p.shape[1]
    different = test.image_ids[:, None] != test.image_ids[None, :]
    wins = (np.diag(r)[:, None] > r) & different
    assert wins.sum() / different.sum() >= 0.6


def test_latent_ridge_reconstructs_at_the_stimulus_resolution_deterministically(fitted, decodable, cache):
    train, test = decodable
    test = test.subset(np.arange(5))
    out = fitted["latent-ridge"].reconstruct(test.blind())
    assert out.shape == (5, 32, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(_fit("latent-ridge", train, cache).reconstruct(test.blind()), out)
    bigger = _fit("latent-ridge", train, cache, image_size=48).reconstruct(test.blind())
    assert bigger.shape == (5, 48, 48, 3)


# ------------------------------------------------------------------------------------------- dreamdiffusion


def test_dreamdiffusion_tokens_carry_the_class_of_held_out_trials(fitted, decodable):
    _, test = decodable
    method = fitted["dreamdiffusion"]
    tokens = method.tokens(test.blind())
    class_embeds = method.stage_.embed([test.label_caption(k) for k in range(test.n_classes)])
    assert tokens.shape[1:] == class_embeds.shape[1:]
    assert nearest_caption_accuracy(tokens, class_embeds, test.labels) >= 1 / test.n_classes + 0.15


@pytest.mark.parametrize("tune", ["cross-attention", "none"])
def test_dreamdiffusion_tunes_a_copy_and_only_what_it_says(tune, fitted, decodable, cache):
    from diffusers import UNet2DConditionModel

    train, test = decodable
    method = fitted["dreamdiffusion"] if tune == "cross-attention" else _fit("dreamdiffusion", train, cache, tune=tune)
    shared = UNet2DConditionModel.from_pretrained(method.stage_.source / "unet").state_dict()
    tuned = method.stage_.unet.state_dict()
    changed = {k for k in shared if not torch.equal(shared[k], tuned[k])}
    if tune == "none":
        assert changed == set()
    else:
        assert changed and all(".attn2." in k for k in changed)
    # Another baseline loading the shared model afterwards gets the untouched weights.
    fresh = _fit("oracle-caption", train, cache)
    assert all(torch.equal(v, fresh.stage_.unet.state_dict()[k]) for k, v in shared.items())


def test_dreamdiffusion_is_deterministic_for_a_seed(fitted, decodable, cache):
    train, test = decodable
    test = test.subset(np.arange(4))
    out = fitted["dreamdiffusion"].reconstruct(test.blind())
    assert out.shape == (4, 32, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(_fit("dreamdiffusion", train, cache).reconstruct(test.blind()), out)
    assert not np.array_equal(_fit("dreamdiffusion", train, cache, seed=1).tokens(test.blind()),
                              fitted["dreamdiffusion"].tokens(test.blind()))


@pytest.mark.parametrize("name", ["oracle-caption", "latent-ridge", "dreamdiffusion"])
def test_fitting_and_reconstructing_leave_the_callers_rng_alone(name, decodable, cache):
    train, test = decodable
    test = test.subset(np.arange(2))
    state = torch.random.get_rng_state()
    method = _fit(name, train, cache, seed=2)  # a new seed: its demo model is trained here, under our eyes
    method.reconstruct(test if method.is_oracle else test.blind())
    assert torch.equal(torch.random.get_rng_state(), state)

"""The zero-shot track's embedding methods: embedding-ridge, and the InfoNCE encoders nice and atm.

On a small synthetic THINGS-EEG2 set (test concepts never trained on): each identifies held-out concepts
above chance from their EEG; the encoders choose their epoch on validation without that choice changing
training, and are a stage of the fold's cache (a prefit job trains what fit then loads); seeds fix
everything; bad input is one line. Here the methods answer with the nearest training stimulus
(``decode="nearest"``); decoding through the diffusion stage is tested in test_embedding_decoder.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eeg2img.errors import UserError
from eeg2img.methods import build_method, method_track

# torch on one thread for this module; see tests/conftest.py
pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = {"embedding-ridge": {"decode": "nearest"}, "nice": {"epochs": 6, "decode": "nearest"},
        "atm": {"epochs": 6, "decode": "nearest"}}


@pytest.fixture(scope="module")
def fold(things_fold, tmp_path_factory):
    return (*things_fold, tmp_path_factory.mktemp("cache"))


def _fit(name, fold, cache=None, **params):
    train, val, _, shared_cache = fold
    method = build_method(name, **{**FAST[name], **params})
    method.cache_dir = str(cache or shared_cache)
    return method.fit(train, val)


@pytest.fixture(scope="module")
def fitted(fold):
    return {name: _fit(name, fold) for name in FAST}


@pytest.mark.parametrize("name", sorted(FAST))
def test_held_out_concepts_are_identified_above_chance_from_the_embedding(name, fold, fitted):
    from metrics.embedding_spaces import image_embedder
    from metrics.retrieval import retrieval_topk

    train, _, test, cache = fold
    method = fitted[name]
    assert method_track(name) == "zero-shot" and method.embedding_space == "synth-cnn:fold-train"
    emb = method.embed(test.blind())
    assert emb.shape == (len(test), 128) and emb.dtype == np.float32
    ids = test.unique_image_ids()
    candidates = image_embedder(method.space, train, cache_dir=cache).embed(test.load_images(ids))
    two_way = retrieval_topk(emb, candidates, np.array([ids.index(i) for i in test.image_ids]), n_way=2, draws=None)
    # 12 unseen concepts: exact 2-way identification, chance 0.5
    assert two_way.mean() > 0.7
    images = method.reconstruct(test.blind())
    assert images.shape == (len(test), 32, 32, 3) and images.dtype == np.uint8
    train_ids = set(train.unique_image_ids())
    assert set(method.retrieved_ids_) <= train_ids  # it answers with training stimuli


@pytest.mark.parametrize("name", ["nice", "atm"])
def test_the_epoch_is_chosen_on_validation_without_changing_training(name, fold, fitted):
    chosen = fitted[name]
    last = _fit(name, fold, select="last")
    assert chosen.history_ == last.history_  # scoring validation draws no random numbers
    assert sorted(chosen.val_scores_) == list(range(1, 7))
    best = max(chosen.val_scores_.values())
    assert chosen.selected_epoch_ == max(e for e, v in chosen.val_scores_.items() if v == best)
    stopped = _fit(name, fold, select="last", epochs=chosen.selected_epoch_)
    _, _, test, _ = fold
    np.testing.assert_allclose(chosen.embed(test.blind()), stopped.embed(test.blind()), atol=1e-6)


def test_a_seed_fixes_the_encoder_and_leaves_the_global_rng_alone(fold, fitted, tmp_path):
    from reconstruct.stages import clear_memo

    _, _, test, _ = fold
    clear_memo()  # trained again, not found in the stage cache
    state = torch.random.get_rng_state()
    again = _fit("nice", fold, cache=tmp_path)
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(again.embed(test.blind()), fitted["nice"].embed(test.blind()))
    assert not np.array_equal(_fit("nice", fold, seed=1).embed(test.blind()), fitted["nice"].embed(test.blind()))


@pytest.mark.parametrize("name", ["nice", "atm"])
def test_a_prefit_job_trains_the_encoder_that_fit_then_loads(name, fold, fitted, tmp_path, monkeypatch):
    from baselines.contrastive import _ContrastiveEncoder
    from reconstruct.stages import clear_memo

    train, val, test, _ = fold
    clear_memo()
    first = build_method(name, **FAST[name])
    first.cache_dir = str(tmp_path)
    first.prefit(train, val)
    entries = [p for p in (tmp_path / "neuroimagen" / "contrastive-encoder").iterdir() if p.is_dir()]
    assert len(entries) == 1 and (entries[0] / "model.safetensors").is_file()
    clear_memo()  # from disk this time, as a cell in another worker process finds it

    def no_training(*args, **kwargs):
        raise AssertionError("fit trained again what the prefit job had trained")

    monkeypatch.setattr(_ContrastiveEncoder, "_train", no_training)
    loaded = build_method(name, **FAST[name])
    loaded.cache_dir = str(tmp_path)
    loaded.fit(train, val)
    np.testing.assert_array_equal(loaded.embed(test.blind()), fitted[name].embed(test.blind()))
    assert (loaded.history_, loaded.val_scores_, loaded.selected_epoch_) == (
        fitted[name].history_, fitted[name].val_scores_, fitted[name].selected_epoch_)


def test_the_ridge_penalty_is_chosen_on_validation(fitted):
    ridge = fitted["embedding-ridge"]
    assert len(ridge.val_scores_) == 13
    best = max(ridge.val_scores_.values())
    assert ridge.ridge_.alpha_ == max(a for a, v in ridge.val_scores_.items() if v == best)


@pytest.mark.parametrize(("name", "params", "needle"), [
    ("nice", {"space": "clip-image:ViT-H-14"}, "not an embedding space here"),
    ("atm", {"epochs": 0}, "epochs=0"),
    ("nice", {"batch_size": 1}, "batch_size=1"),
    ("embedding-ridge", {"alpha": -1.0}, "alpha=-1.0"),
    ("oracle-embedding", {"decode": "pixels"}, "decode='pixels'"),
    ("atm", {"decoder_steps": -1}, "decoder_steps=-1"),
])
def test_bad_parameters_are_one_line(name, params, needle):
    with pytest.raises(UserError, match=needle):
        build_method(name, **params)


def test_embed_before_fit_and_other_eeg_shapes_are_one_line(fold, fitted):
    _, _, test, _ = fold
    with pytest.raises(UserError, match="before fit"):
        build_method("nice").embed(test.blind())
    import dataclasses

    cropped = dataclasses.replace(test, eeg=np.ascontiguousarray(test.eeg[:, :, :50]))
    with pytest.raises(UserError, match="was fitted on 17×100"):
        fitted["atm"].embed(cropped.blind())

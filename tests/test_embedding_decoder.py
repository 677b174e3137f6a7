"""The zero-shot track reconstructs through the embedding it predicts (baselines/embedding_decoder.py).

On a small synthetic THINGS-EEG2 fold with the demo diffusion model at zero training steps (built in about a
second; its images mean nothing): every embedding method of a fold decodes through one decoder, its images
depend on the method only through the predicted embedding, the decoder learns to map embeddings onto the
caption embeddings of their stimuli, survives a save and load whole, and a damaged entry is retuned.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reconstruct_fixtures import nearest_caption_accuracy

from eeg2img.errors import UserError
from eeg2img.methods import build_method

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# Zero-step demo model, few sampling steps; a short tuning of the decoder.
DIFFUSION = {"demo_vae_steps": 0, "demo_unet_steps": 0, "steps": 4, "decoder_steps": 150}
METHODS = {"embedding-ridge": {**DIFFUSION, "device": "cpu"}, "oracle-embedding": {**DIFFUSION, "device": "cpu"},
           "nice": {**DIFFUSION, "device": "cpu", "epochs": 3}}


@pytest.fixture(scope="module")
def fold(things_fold):
    return things_fold


def _fit(name, fold, cache, **params):
    train, val, _ = fold
    method = build_method(name, **{**METHODS[name], **params})
    method.cache_dir = str(cache)
    return method.fit(train, val)


@pytest.fixture(scope="module")
def fitted(fold, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {name: _fit(name, fold, cache) for name in METHODS}, cache


def _test_view(method, test):
    return test if method.is_oracle else test.blind()


def test_every_embedding_method_of_a_fold_decodes_through_one_decoder(fitted):
    methods, cache = fitted
    entries = [p for p in (cache / "neuroimagen" / "embedding-decoder").iterdir() if p.is_dir()]
    assert len(entries) == 1  # tuned once, for the fold's training stimuli in the space
    assert len({str(m.stage_.source) for m in methods.values()}) == 1  # on NeuroImagen's demo model of the fold
    states = [m.decoder_.unet_state for m in methods.values()]
    assert states[0] and all(".attn2." in k for k in states[0])  # the cross-attention, as dreamdiffusion tunes
    for other in states[1:]:
        assert other.keys() == states[0].keys() and all(torch.equal(other[k], states[0][k]) for k in other)


def test_the_images_depend_on_the_method_only_through_its_embedding(fitted, fold, monkeypatch):
    methods, _ = fitted
    _, _, test = fold
    oracle = methods["oracle-embedding"]
    truth = oracle.embed(test)
    images = oracle.reconstruct(test)
    assert images.shape == (len(test), 32, 32, 3) and images.dtype == np.uint8
    for name in ("embedding-ridge", "nice"):
        # handed the true embeddings, a method draws exactly the oracle's images: one decoder, one sampler
        # (nice's own batch_size is its training batch, not the sampling batch), the same per-trial noise
        method = methods[name]
        monkeypatch.setattr(method, "embed", lambda _test: truth)
        np.testing.assert_array_equal(method.reconstruct(test.blind()), images)
        monkeypatch.undo()
        # and from its own embeddings, other images: the EEG decides, through the embedding
        assert not np.array_equal(method.reconstruct(test.blind()), images)
    # decode="nearest" answers with training stimuli instead, through no diffusion model
    nearest = build_method("embedding-ridge", decode="nearest")
    nearest.cache_dir = oracle.cache_dir
    train, val, _ = fold
    nearest.fit(train, val)
    assert not hasattr(nearest, "decoder_")
    assert set(map(tuple, nearest.reconstruct(test.blind()).reshape(len(test), -1))) <= set(
        map(tuple, train.load_images(train.unique_image_ids()).reshape(len(train.unique_image_ids()), -1)))


def test_the_decoder_maps_embeddings_onto_their_stimuli_captions(fitted, fold):
    # The tuning pulls each training stimulus's tokens towards its label caption's embedding: the tokens of a
    # stimulus then pick out its own caption among the training concepts' (chance 1/20), and the loss falls.
    methods, _ = fitted
    oracle = methods["oracle-embedding"]
    train, _, _ = fold
    ids = train.unique_image_ids()
    first = {str(i): k for k, i in reversed(list(enumerate(train.image_ids)))}
    captions = [train.label_caption(train.labels[first[i]]) for i in ids]
    concepts = sorted(set(captions))
    tokens = oracle.decoder_.tokens(oracle.embedder_.embed(train.load_images(ids)))
    caption_embeds = oracle.stage_.embed(concepts)
    start = nearest_caption_accuracy(np.broadcast_to(caption_embeds.mean(0), tokens.shape), caption_embeds,
                                     np.array([concepts.index(c) for c in captions]))
    learned = nearest_caption_accuracy(tokens, caption_embeds, np.array([concepts.index(c) for c in captions]))
    assert learned > 0.5 > start + 0.3, (learned, start)
    history = oracle.decoder_.history
    assert len(history) == DIFFUSION["decoder_steps"] and np.mean(history[-10:]) < np.mean(history[:10])


def test_the_decoder_survives_save_and_load_and_a_damaged_entry_is_retuned(fitted, fold, tmp_path):
    from baselines.embedding_decoder import EmbeddingDecoder
    from reconstruct.stages import clear_memo

    methods, cache = fitted
    decoder = methods["nice"].decoder_
    decoder.save(tmp_path / "entry")
    loaded = EmbeddingDecoder.load(tmp_path / "entry")
    probe = np.random.default_rng(0).standard_normal((5, decoder.meta["n_features"])).astype(np.float32)
    np.testing.assert_array_equal(loaded.tokens(probe), decoder.tokens(probe))
    assert all(torch.equal(loaded.unet_state[k], v) for k, v in decoder.unet_state.items())
    with pytest.raises(UserError, match=r"embeddings of shape \(5, 3\)"):
        loaded.tokens(probe[:, :3])

    (tmp_path / "entry" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="model.safetensors: corrupt embedding decoder weights"):
        EmbeddingDecoder.load(tmp_path / "entry")
    # the cache's own entry damaged: a new fit retunes it to the same decoder
    entry = next(p for p in (cache / "neuroimagen" / "embedding-decoder").iterdir() if p.is_dir())
    (entry / "model.safetensors").write_bytes(b"\x00" * 16)
    clear_memo()
    again = _fit("oracle-embedding", fold, cache)
    np.testing.assert_array_equal(again.decoder_.tokens(probe), decoder.tokens(probe))
    EmbeddingDecoder.load(entry)  # rewritten whole

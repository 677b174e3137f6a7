"""Stage 4 of NeuroImagen: SD img2img from embeddings, loading real-format directories, the demo model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from reconstruct_fixtures import TINY_MAX_LENGTH, TINY_TEXT_DIM, write_random_sd_directory

from eeg2img.errors import UserError, WeightsNotFoundError
from reconstruct.diffusion import Img2ImgDiffusion
from reconstruct.text_encoder import CaptionEmbedder, build_clip_tokenizer
from reconstruct.tiny_sd import INFO_FILE, cached_tiny_sd, train_tiny_sd


@pytest.fixture(scope="module")
def random_sd(tmp_path_factory):
    return write_random_sd_directory(tmp_path_factory.mktemp("sd_random"))


def test_real_format_directory_loads_and_generates(random_sd):
    diff = Img2ImgDiffusion(random_sd, steps=4, strength=0.5, guidance_scale=3.0, device="cpu")
    assert diff.image_size == 16 and diff.cross_attention_dim == TINY_TEXT_DIM
    # no tokenizer or text encoder at inference
    assert diff.pipeline.tokenizer is None and diff.pipeline.text_encoder is None
    emb = diff.caption_embedder()
    prompts = emb.embed(["an image of a cat", "an image of a dog", "a cat"])
    assert prompts.shape == (3, TINY_MAX_LENGTH, TINY_TEXT_DIM)
    assert not np.allclose(prompts[0], prompts[1])  # different words, different embeddings
    uncond = emb.unconditional()
    assert uncond.shape == (TINY_MAX_LENGTH, TINY_TEXT_DIM)
    init = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)  # resized to 16 px
    out = diff.generate(prompts, init, uncond, seeds=[1, 2, 3])
    assert out.shape == (3, 16, 16, 3) and out.dtype == np.uint8
    t2i = diff.generate(prompts, None, uncond, seeds=[1, 2, 3])
    assert t2i.shape == (3, 16, 16, 3)
    assert not np.array_equal(out, t2i)


def test_one_generator_per_trial_makes_images_batch_independent(random_sd):
    diff = Img2ImgDiffusion(random_sd, steps=3, strength=0.7, device="cpu", batch_size=2)
    emb = diff.caption_embedder()
    prompts = emb.embed(["an image of a cat"] * 3)
    init = np.full((3, 16, 16, 3), 128, np.uint8)
    full = diff.generate(prompts, init, emb.unconditional(), seeds=[7, 8, 9])
    again = diff.generate(prompts, init, emb.unconditional(), seeds=[7, 8, 9])
    np.testing.assert_array_equal(full, again)
    single = diff.generate(prompts[1:2], init[1:2], emb.unconditional(), seeds=[8])
    np.testing.assert_array_equal(full[1], single[0])
    assert not np.array_equal(full[0], full[1])  # same prompt and init, different seeds


def test_generate_rejects_bad_inputs(random_sd):
    diff = Img2ImgDiffusion(random_sd, steps=2, device="cpu")
    good = np.zeros((2, TINY_MAX_LENGTH, TINY_TEXT_DIM), np.float32)
    with pytest.raises(UserError, match="prompt_embeds"):
        diff.generate(np.zeros((2, TINY_MAX_LENGTH, 7), np.float32))
    with pytest.raises(UserError, match="seeds"):
        diff.generate(good, seeds=[1])
    with pytest.raises(UserError, match="NaN"):
        diff.generate(good * np.nan)
    with pytest.raises(UserError, match="init_images"):
        diff.generate(good, np.zeros((3, 16, 16, 3), np.uint8))
    with pytest.raises(UserError, match="strength"):
        Img2ImgDiffusion(random_sd, strength=1.5)


def test_missing_weights_give_one_line_error_naming_directory_and_subfolders(tmp_path, random_sd, monkeypatch):
    missing = tmp_path / "no-such-sd"
    with pytest.raises(WeightsNotFoundError) as err:
        Img2ImgDiffusion(missing)
    msg = str(err.value)
    assert "\n" not in msg and str(missing) in msg
    for sub in ("unet/", "vae/", "scheduler/", "model_index.json"):
        assert sub in msg
    assert isinstance(err.value, UserError)

    partial = tmp_path / "partial"
    (partial / "vae").mkdir(parents=True)
    (partial / "model_index.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError, match=r"missing unet/, scheduler/") as err:
        Img2ImgDiffusion(partial)
    assert str(partial) in str(err.value)

    # sub-folders present but the weights inside are gone: still one line, at load time
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(random_sd, broken)
    for f in (broken / "unet").iterdir():
        f.unlink()
    with pytest.raises(WeightsNotFoundError) as err:
        Img2ImgDiffusion(broken).load()
    assert "\n" not in str(err.value) and str(broken) in str(err.value)

    # an offline machine does not take an id-looking string to the hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="not found"):
        Img2ImgDiffusion("someone/stable-diffusion-x")


def test_caption_embedder_needs_tokenizer_and_text_encoder(tmp_path, random_sd):
    import shutil

    no_text = tmp_path / "no_text"
    shutil.copytree(random_sd, no_text)
    shutil.rmtree(no_text / "tokenizer")
    with pytest.raises(WeightsNotFoundError, match="tokenizer"):
        CaptionEmbedder.from_pretrained(no_text)


def test_reduced_clip_tokenizer_matches_open_clip_on_its_captions():
    import open_clip

    captions = ["an image of a red solid circle", "a small yellow dotted star at the top, rotated 340 degrees"]
    tok = build_clip_tokenizer(captions, model_max_length=32)
    reference = open_clip.get_tokenizer("ViT-B-32")
    for caption in captions:
        ours = tok.convert_ids_to_tokens(tok(caption).input_ids)
        theirs = [reference.decoder[i] for i in reference.encode(caption)]
        assert ours == ["<|startoftext|>", *theirs, "<|endoftext|>"]
    assert len(tok) < 700  # byte symbols + what these captions need, not 49,408 entries
    unseen = tok.convert_ids_to_tokens(tok("zebra").input_ids)
    assert "<|endoftext|>" in unseen and len(unseen) > 3  # spelled out, never dropped


def _toy_images(n_classes=3, per_class=4, size=16, seed=0):
    rng = np.random.default_rng(seed)
    colours = np.array([[220, 30, 30], [30, 200, 30], [30, 30, 220]])[:n_classes]
    imgs, caps = [], []
    for c in range(n_classes):
        for _ in range(per_class):
            img = np.full((size, size, 3), rng.integers(20, 90), np.uint8)
            x, y = rng.integers(2, size // 2, 2)
            img[y:y + size // 2, x:x + size // 2] = colours[c]
            imgs.append(img)
            caps.append([f"an image of a {['red', 'green', 'blue'][c]} square"])
    return np.stack(imgs), caps


def test_demo_model_trains_and_is_written_in_the_real_format(tmp_path):
    images, captions = _toy_images()
    kw = dict(image_size=16, vae_channels=(8, 16), unet_channels=(16, 32), vae_steps=30, unet_steps=30,
              batch_size=8, max_length=8)
    out = train_tiny_sd(images, captions, tmp_path / "a", **kw)
    for sub in ("model_index.json", "unet", "vae", "scheduler", "text_encoder", "tokenizer"):
        assert (out / sub).exists()
    info = json.loads((out / INFO_FILE).read_text())
    vae_l, unet_l = info["vae_losses"], info["unet_losses"]
    assert np.mean(vae_l[-5:]) < 0.5 * np.mean(vae_l[:5])
    assert np.mean(unet_l[-10:]) < np.mean(unet_l[:5])
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    assert size < 5_000_000

    # loads through the same class as real SD weights
    diff = Img2ImgDiffusion(out, steps=3, device="cpu")
    emb = diff.caption_embedder()
    assert diff.image_size == 16
    assert diff.generate(emb.embed([captions[0][0]]), images[:1], emb.unconditional(), seeds=[0]).shape == (1, 16, 16, 3)


def test_demo_model_training_is_reproducible_and_cached_per_image_set(tmp_path):
    images, captions = _toy_images()
    kw = dict(image_size=16, vae_channels=(8, 16), unet_channels=(16, 32), vae_steps=4, unet_steps=4, batch_size=8,
              max_length=8)
    a = Img2ImgDiffusion(train_tiny_sd(images, captions, tmp_path / "a", **kw), steps=3, device="cpu")
    b = Img2ImgDiffusion(train_tiny_sd(images, captions, tmp_path / "b", **kw), steps=3, device="cpu")
    emb = a.caption_embedder()
    prompts = emb.embed([c[0] for c in captions[:2]])
    np.testing.assert_array_equal(a.generate(prompts, images[:2], emb.unconditional(), seeds=[0, 1]),
                                  b.generate(prompts, images[:2], emb.unconditional(), seeds=[0, 1]))

    cached = cached_tiny_sd(images, captions, tmp_path / "cache", **kw)
    stamp = (cached / "unet").stat().st_mtime_ns
    assert cached_tiny_sd(images, captions, tmp_path / "cache", **kw) == cached
    assert (cached / "unet").stat().st_mtime_ns == stamp  # not retrained
    other = cached_tiny_sd(images[::-1].copy(), captions[::-1], tmp_path / "cache", **kw)
    assert other != cached and (other / "model_index.json").is_file()


def test_demo_model_rejects_bad_training_input(tmp_path):
    images, captions = _toy_images()
    with pytest.raises(UserError, match="caption"):
        train_tiny_sd(images, captions[:-1], tmp_path / "x")
    with pytest.raises(UserError, match="uint8"):
        train_tiny_sd(images.astype(np.float32), captions, tmp_path / "x")
    with pytest.raises(UserError, match="multiple of 8"):
        train_tiny_sd(images, captions, tmp_path / "x", vae_channels=(12, 16))
    assert not (tmp_path / "x").exists()



def test_dreamdiffusion_tunes_with_the_demo_thread_setting_and_restores_it(random_sd, tiny_synth, tmp_path,
                                                                          monkeypatch):
    # Tuning under torch's default thread count was ~4x the CPU time of $EEG2IMG_TORCH_THREADS=1 on a busy machine.
    import torch
    from diffusers import UNet2DConditionModel

    from eeg2img.methods import build_method

    threads_in_unet = []
    forward = UNet2DConditionModel.forward

    def spy(self, *args, **kwargs):
        threads_in_unet.append(torch.get_num_threads())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(UNet2DConditionModel, "forward", spy)
    monkeypatch.setenv("EEG2IMG_TORCH_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        method = build_method("dreamdiffusion", sd_path=str(random_sd), tune_steps=2, steps=2, n_components=8,
                              hidden=16, device="cpu")
        method.cache_dir = tmp_path
        method.fit(tiny_synth.subset(np.arange(24)))
        assert threads_in_unet == [1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

"""Stage 2 of NeuroImagen: the saliency-map GAN, DiffAugment and the differentiable SSIM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eeg2img.errors import UserError
from reconstruct.saliency_gan import SaliencyGAN, diff_augment, ssim_torch


def test_ssim_torch_matches_skimage():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    base = rng.random((2, 3, 24, 24))
    noisy = np.clip(base + 0.2 * rng.standard_normal(base.shape), 0, 1)
    ours = ssim_torch(torch.from_numpy(base), torch.from_numpy(noisy), data_range=1.0).numpy()
    for i in range(2):
        ref = structural_similarity(base[i], noisy[i], channel_axis=0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0)
        assert ours[i] == pytest.approx(ref, abs=1e-6)
    same = torch.from_numpy(base)
    np.testing.assert_allclose(ssim_torch(same, same, data_range=1.0).numpy(), 1.0, atol=1e-9)


def test_ssim_torch_is_differentiable_and_checks_shapes():
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    (1 - ssim_torch(x, torch.rand(1, 3, 16, 16), data_range=1.0)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(UserError, match="shape"):
        ssim_torch(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 9, 9))


def test_diffaugment_is_differentiable_seeded_and_does_what_it_says():
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_()
    out = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(0))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = diff_augment(x.detach(), "color,translation,cutout", torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.detach(), again)

    flat = torch.full((8, 3, 16, 16), 0.5)
    cut = diff_augment(flat, "cutout", torch.Generator().manual_seed(1))
    zero_frac = (cut == 0).float().mean(dim=(1, 2, 3))
    assert ((zero_frac > 0.05) & (zero_frac <= 0.25 + 1e-6)).all()  # a square of half the side, clipped at borders
    moved = diff_augment(flat, "translation", torch.Generator().manual_seed(2))
    assert (moved == 0).any() and set(torch.unique(moved).tolist()) <= {0.0, 0.5}  # shifted in zero padding
    coloured = diff_augment(flat, "color", torch.Generator().manual_seed(3))
    assert coloured.flatten(1).std(1).max() < 1e-6  # flat images stay flat
    assert not torch.allclose(coloured[0], coloured[1])  # but brightness differs per image
    with pytest.raises(UserError, match="diffaugment"):
        SaliencyGAN(diffaugment="color,blur")


def _class_feature_data(tiny_synth, size=16):
    """Perfect class features (one-hot + small noise) for the synthetic stimuli, held out by image."""
    ids, labels = np.asarray(tiny_synth.image_ids), np.asarray(tiny_synth.labels)
    held = {i for c in np.unique(labels) for i in sorted(set(ids[labels == c]))[:2]}
    test = np.array([i in held for i in ids])
    rng = np.random.default_rng(0)
    feats = np.eye(tiny_synth.n_classes, dtype=np.float32)[labels] + 0.05 * rng.standard_normal(
        (len(labels), tiny_synth.n_classes)).astype(np.float32)
    images = tiny_synth.load_images(size=size)
    return feats, images, test


def _pixel_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def test_saliency_maps_resemble_their_stimuli_more_than_shuffled(tiny_synth):
    feats, images, test = _class_feature_data(tiny_synth)
    gan = SaliencyGAN(image_size=16, epochs=40, seed=0).fit(feats[~test], images[~test])
    hist = gan.history_
    assert np.mean(hist["ssim"][-5:]) < np.mean(hist["ssim"][:3]) - 0.05  # the SSIM loss falls
    maps = gan.generate(feats[test], seeds=range(int(test.sum())))
    assert maps.shape == (int(test.sum()), 16, 16, 3) and maps.dtype == np.uint8
    labels = np.asarray(tiny_synth.labels)[test]
    own = _pixel_corr(maps, images[test]).mean()
    # control: each map against the stimulus of a trial of another class
    other = np.array([np.flatnonzero(labels != y)[0] for y in labels])
    shuffled = _pixel_corr(maps, images[test][other]).mean()
    assert own > shuffled + 0.05


def test_gan_is_deterministic_round_trips_and_checks_input(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((12, 5)).astype(np.float32)
    images = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    a = SaliencyGAN(image_size=8, epochs=2, batch_size=4, base_channels=8).fit(feats, images)
    b = SaliencyGAN(image_size=8, epochs=2, batch_size=4, base_channels=8).fit(feats, images)
    np.testing.assert_array_equal(a.generate(feats, range(12)), b.generate(feats, range(12)))
    assert not np.array_equal(a.generate(feats[:1], [0]), a.generate(feats[:1], [1]))  # z differs per seed
    np.testing.assert_array_equal(a.generate(feats[3:4], [3]), a.generate(feats, range(12))[3:4])
    a.save(tmp_path / "gan")
    loaded = SaliencyGAN.load(tmp_path / "gan")
    np.testing.assert_array_equal(a.generate(feats, range(12)), loaded.generate(feats, range(12)))
    with pytest.raises(UserError, match="power of two"):
        SaliencyGAN(image_size=24)
    with pytest.raises(UserError, match="features"):
        a.generate(feats[:, :3])
    with pytest.raises(UserError, match="one row per image"):
        SaliencyGAN(image_size=8).fit(feats[:5], images)
    with pytest.raises(UserError, match="not fitted"):
        SaliencyGAN().generate(feats)

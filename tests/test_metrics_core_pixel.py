"""SSIM and PixCorr proven equal to skimage / torchmetrics / np.corrcoef and to MindEye's literal pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.color import rgb2gray
from skimage.metrics import structural_similarity as sk_ssim

from metrics.image_ops import as_image_batch, resize_square
from metrics.pixcorr import PixCorr, pixcorr
from metrics.ssim import SSIM, ssim, structural_similarity

SK_ARGS = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)


def _image_pair(n: int, h: int, w: int, seed: int, noise: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A stimulus with structure (smooth gradient + texture) and a noisy reconstruction of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 127 + 60 * np.sin(xx / 5.0 + yy / 7.0)[None, :, :, None] + rng.integers(-50, 50, (n, h, w, 3))
    ref = np.clip(base, 0, 255).astype(np.uint8)
    pred = np.clip(ref.astype(int) + rng.integers(-noise, noise, ref.shape), 0, 255).astype(np.uint8)
    return pred, ref


def _mindeye_resize(images: np.ndarray, size) -> np.ndarray:
    """MindEye's preprocessing, literally: float tensors in [0, 1] through torchvision's Resize, back to NHWC."""
    resize = T.Resize(size, interpolation=T.InterpolationMode.BILINEAR)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return resize(x).permute(0, 2, 3, 1).numpy()


# ---------------------------------------------------------------------------------------------------------- SSIM


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_core_matches_skimage_per_sample(channels):
    rng = np.random.default_rng(channels)
    x = rng.random((3, channels, 30, 26))
    y = np.clip(x + rng.normal(scale=0.2, size=x.shape), 0, 1)
    got = structural_similarity(torch.from_numpy(x).float(), torch.from_numpy(y).float()).numpy()
    expected = [sk_ssim(a.transpose(1, 2, 0), b.transpose(1, 2, 0), channel_axis=-1, **SK_ARGS) for a, b in zip(x, y)]
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize(("src", "size"), [(32, 48), (64, 40)], ids=["upsample", "downsample"])
def test_ssim_mindeye_protocol_matches_literal_pipeline(src, size):
    pred, ref = _image_pair(3, src, src, seed=src)
    got = ssim(pred, ref, protocol="mindeye", size=size)
    rec_gray, img_gray = rgb2gray(_mindeye_resize(pred, size)), rgb2gray(_mindeye_resize(ref, size))
    expected = [sk_ssim(r, i, **SK_ARGS) for r, i in zip(rec_gray, img_gray)]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert got.shape == (3,) and got.dtype == np.float64


def test_ssim_rgb_protocol_matches_skimage_channel_mean_on_non_square_images():
    pred, ref = _image_pair(2, 30, 44, seed=3)
    got = ssim(pred, ref, protocol="rgb", size=36)
    resized = [_mindeye_resize(a, (36, 36)) for a in (pred, ref)]
    expected = [sk_ssim(p, r, channel_axis=-1, **SK_ARGS) for p, r in zip(*resized)]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_ssim_matches_torchmetrics_with_matched_settings():
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    pred, ref = _image_pair(4, 40, 40, seed=4)
    x, y = as_image_batch(pred, "pred"), as_image_batch(ref, "ref")
    expected = tm_ssim(x, y, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=1.0, reduction="none")
    np.testing.assert_allclose(ssim(pred, ref, protocol="rgb", size=None, border="reflect"), expected.numpy(),
                               atol=1e-5)
    # torchmetrics averages over reflected borders too; on 40 px images that visibly differs from skimage.
    assert np.abs(ssim(pred, ref, protocol="rgb", size=None) - expected.numpy()).max() > 1e-3


def test_ssim_identity_layouts_and_dtypes():
    pred, ref = _image_pair(3, 24, 24, seed=5)
    np.testing.assert_allclose(ssim(ref, ref, size=None), 1.0, atol=1e-6)
    as_float = ssim(pred / 255.0, ref / 255.0, size=32)
    np.testing.assert_allclose(ssim(pred, ref, size=32), as_float, atol=1e-6)
    nchw = ssim(torch.from_numpy(pred).permute(0, 3, 1, 2) / 255, torch.from_numpy(ref).permute(0, 3, 1, 2) / 255,
                size=32)
    np.testing.assert_allclose(nchw, as_float, atol=1e-6)
    assert ssim(pred, ref, size=32, batch_size=2).tolist() == pytest.approx(as_float.tolist(), abs=1e-7)


def test_ssim_decreases_with_noise():
    _, ref = _image_pair(2, 32, 32, seed=6)
    rng = np.random.default_rng(0)
    scores = [ssim(np.clip(ref + rng.normal(scale=s, size=ref.shape), 0, 255).astype(np.uint8), ref,
                   size=None).mean() for s in (5, 20, 60)]
    assert scores[0] > scores[1] > scores[2]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_ssim_symmetric_and_bounded(seed):
    pred, ref = _image_pair(2, 16, 16, seed=seed, noise=120)
    ab, ba = ssim(pred, ref, size=None), ssim(ref, pred, size=None)
    np.testing.assert_allclose(ab, ba, atol=1e-6)
    assert np.all(ab <= 1 + 1e-6) and np.all(ab >= -1 - 1e-6)


def test_ssim_object_keeps_per_sample_values():
    pred, ref = _image_pair(5, 24, 24, seed=7)
    metric = SSIM(size=32)
    metric.update(pred[:2], ref[:2])
    metric.update(pred[2:], ref[2:])
    expected = ssim(pred, ref, size=32)
    np.testing.assert_allclose(metric.per_sample, expected)
    result = metric.result(backbone=None, n_boot=200)
    assert result.value == pytest.approx(expected.mean())
    assert result.ci95[0] <= result.value <= result.ci95[1]
    assert result.protocol == "mindeye-32px-gray-gauss1.5" and result.n == 5


def test_resize_square_is_torchvision_resize():
    x = torch.rand(2, 3, 50, 50)
    resized = resize_square(x, 30)
    assert torch.allclose(resized, T.Resize(30, interpolation=T.InterpolationMode.BILINEAR)(x), atol=1e-6)
    assert resize_square(x, 50) is x and resize_square(x, None) is x


# ------------------------------------------------------------------------------------------------------- PixCorr


def test_pixcorr_matches_np_corrcoef_on_mindeye_preprocessing():
    pred, ref = _image_pair(4, 32, 32, seed=8, noise=100)
    got = pixcorr(pred, ref, size=40)
    flat_img = _mindeye_resize(ref, 40).transpose(0, 3, 1, 2).reshape(4, -1)
    flat_rec = _mindeye_resize(pred, 40).transpose(0, 3, 1, 2).reshape(4, -1)
    expected = [np.corrcoef(i, r)[0][1] for i, r in zip(flat_img, flat_rec)]
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("pred_shape, ref_shape, size", [
    ((32, 32), (32, 32), 425),  # the demo: 32 px scored at 425 px
    ((20, 30), (33, 17), 40),  # non-square, and pred and ref of different sizes
    ((24, 24), (64, 64), 48),  # ref shrunk: the resize is formed as before
])
def test_pixcorr_without_forming_the_enlarged_images_equals_resizing_first(pred_shape, ref_shape, size):
    # The enlarged-image path sums quadratic forms of the resize matrices instead of 425² pixels; it must
    # be the correlation of torchvision's resized images (np.corrcoef on them, float64) to rounding.
    rng = np.random.default_rng(11)
    pred = rng.integers(0, 256, (6, *pred_shape, 3), dtype=np.uint8)
    ref = rng.integers(0, 256, (6, *ref_shape, 3), dtype=np.uint8)
    ref[:, : ref_shape[0] // 2] //= 3  # structure both images share
    pred[:, : pred_shape[0] // 2] //= 3
    pred[0] = 128  # a constant reconstruction: no correlation, counted 0
    with pytest.warns(UserWarning, match="1 of 6 image pairs contain a constant image"):
        got = pixcorr(pred, ref, size=size)
    resize = T.Resize((size, size), interpolation=T.InterpolationMode.BILINEAR)
    up = [resize(torch.from_numpy(a).permute(0, 3, 1, 2).double() / 255).flatten(1).numpy() for a in (pred, ref)]
    expected = [0.0] + [np.corrcoef(p, r)[0, 1] for p, r in zip(up[0][1:], up[1][1:])]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert np.all(np.abs(got[1:]) > 0.05)  # not a trivially zero correlation


def test_pixcorr_extremes_and_constant_images():
    _, ref = _image_pair(2, 16, 16, seed=9)
    np.testing.assert_allclose(pixcorr(ref, ref, size=None), 1.0, atol=1e-9)
    np.testing.assert_allclose(pixcorr(255 - ref, ref, size=None), -1.0, atol=1e-9)
    blank = np.zeros_like(ref)
    with pytest.warns(UserWarning, match="constant"):
        values = pixcorr(blank, ref, size=None)
    assert values.tolist() == [0.0, 0.0]


def test_pixcorr_object():
    pred, ref = _image_pair(3, 20, 20, seed=10)
    metric = PixCorr(size=None)
    metric.update(pred, ref)
    assert metric.compute() == pytest.approx(pixcorr(pred, ref, size=None).mean())
    assert metric.result(n_boot=0).to_dict() == {"value": metric.compute(), "ci95": None, "backbone": None,
                                                 "protocol": "mindeye-native-rgb", "n": 3, "label": "",
                                                 "status": "ok"}

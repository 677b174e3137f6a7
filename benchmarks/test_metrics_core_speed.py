"""Speed of the metric core on realistic sizes (run on demand: ``pytest benchmarks/test_metrics_core_speed.py``)."""

from __future__ import annotations

import timeit
import warnings

import numpy as np
import pytest
import torch

from metrics.fid import fid_from_features
from metrics.kid import kid_from_features
from metrics.ssim import ssim, structural_similarity


@pytest.fixture(scope="module")
def gray_425():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 425, 425, generator=g)
    return x, (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def test_ssim_core_beats_torchmetrics_on_cpu(benchmark, gray_425):
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    x, y = gray_425
    benchmark(structural_similarity, x, y)
    reference = min(timeit.repeat(lambda: tm_ssim(x, y, data_range=1.0, reduction="none"), number=1, repeat=3))
    assert benchmark.stats.stats.min * 3 < reference


def test_ssim_mindeye_pipeline_512px(benchmark):
    rng = np.random.default_rng(0)
    pred, ref = (rng.integers(0, 256, (8, 512, 512, 3), dtype=np.uint8) for _ in range(2))
    benchmark(ssim, pred, ref)


def test_fid_2048d(benchmark):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2048, 2048)).astype(np.float32), rng.normal(size=(2048, 2048)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        benchmark.pedantic(fid_from_features, args=(a, b), rounds=1, iterations=1)


def test_kid_default_settings_2000x2048(benchmark):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2000, 2048)).astype(np.float32), rng.normal(size=(2000, 2048)).astype(np.float32)
    benchmark.pedantic(kid_from_features, args=(a, b), rounds=1, iterations=1)

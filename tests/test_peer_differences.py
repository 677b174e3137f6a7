"""The peers' rules re-implemented in ``benchmarks/peer_differences.py`` equal their reference libraries.

The script's table (``docs/metrics.md``, "Differences from peers' code") is only as good as these
re-implementations: each is checked here against the library the peer calls, or against exhaustive
enumeration where the peer's loop draws at random.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# benchmarks/ is run on demand, not installed: load the script by its path
_SPEC = importlib.util.spec_from_file_location(
    "peer_differences", Path(__file__).resolve().parents[1] / "benchmarks" / "peer_differences.py")
peers = sys.modules["peer_differences"] = importlib.util.module_from_spec(_SPEC)  # dataclasses look it up
_SPEC.loader.exec_module(peers)
peer_nway_expectation, peer_nway_top_k_acc = peers.peer_nway_expectation, peers.peer_nway_top_k_acc
peer_resize_shorter, uniform_ssim = peers.peer_resize_shorter, peers.uniform_ssim


def test_uniform_ssim_equals_skimage_defaults_in_colour_and_grey():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 3, 40, 36)).astype(np.float64)
    y = np.clip(x + rng.normal(0, 40, x.shape), 0, 255)
    ours = uniform_ssim(torch.from_numpy(x), torch.from_numpy(y), data_range=255)
    reference = [structural_similarity(a, b, data_range=255, channel_axis=0) for a, b in zip(x, y)]
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-10)
    grey = uniform_ssim(torch.from_numpy(x[:, :1] / 255), torch.from_numpy(y[:, :1] / 255), data_range=1)
    np.testing.assert_allclose(grey, [structural_similarity(a[0] / 255, b[0] / 255, data_range=1)
                                      for a, b in zip(x, y)], rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", [(48, 64), (64, 48)])
def test_aspect_preserving_resize_equals_torchvisions_int_resize(shape):
    from torchvision import transforms

    x = torch.rand(2, 3, *shape, generator=torch.Generator().manual_seed(1))
    expected = transforms.Resize(30, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True)(x)
    ours = peer_resize_shorter(x, 30)
    assert ours.shape == expected.shape and min(ours.shape[-2:]) == 30
    torch.testing.assert_close(ours, expected.clamp(0, 1), rtol=0, atol=1e-6)


def test_nway_expectation_equals_the_peers_loop_enumerated_with_ties():
    # 7 classes, 3-way: every draw of 2 distractors enumerated; quantised scores make ties with the target
    rng = np.random.default_rng(2)
    probs = np.round(rng.random((5, 7)), 1).astype(np.float32)
    target = rng.integers(0, 7, 5)
    for top_k in (1, 2):
        exact = []
        for p, t in zip(probs, target):
            others = [c for c in range(7) if c != t]
            hits = []
            for pair in itertools.combinations(others, 2):
                picked = np.concatenate([[p[t]], p[list(pair)]])
                hits.append(0 in np.argsort(-picked, kind="stable")[:top_k])  # ties go to the target
            exact.append(np.mean(hits))
        np.testing.assert_allclose(peer_nway_expectation(probs, target, n_way=3, top_k=top_k), exact, atol=1e-12)
    # the sampling loop itself converges to it
    loop = peer_nway_top_k_acc(probs[0], int(target[0]), n_way=3, num_trials=4000, top_k=1,
                               rng=np.random.default_rng(3))
    assert loop == pytest.approx(peer_nway_expectation(probs[:1], target[:1], 3, 1)[0], abs=0.03)

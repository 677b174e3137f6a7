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


def test_non_antialiased_resize_equals_torchvision_before_0_17():
    from torchvision.transforms import functional as TF

    x = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(4))
    # torchvision <= 0.16 resized tensors with antialias=False by default
    torch.testing.assert_close(peers.peer_resize(x, 50, antialias=False),
                               TF.resize(x, [50, 50], antialias=False).clamp(0, 1), rtol=0, atol=1e-6)
    assert (peers.peer_resize(x, 50, antialias=False) - peers.peer_resize(x, 50)).abs().max() > 1e-2


def test_peer_tie_rule_equals_torchmetrics_accuracy_and_favours_the_target():
    from torchmetrics.functional.classification import multiclass_accuracy

    from metrics.accuracy import nway_topk_accuracy

    rng = np.random.default_rng(1)
    probs = np.round(rng.random((6, 12)), 1).astype(np.float32)  # rounded: many ties with the target
    target = rng.integers(0, 12, 6)
    for i in range(6):
        pick = [c for c in range(12) if c != target[i]]
        for seed in range(20):  # one trial per seed: the same draw as the loop makes
            ours = peer_nway_top_k_acc(probs[i], int(target[i]), 5, 1, 1, np.random.default_rng(seed))
            sampled = np.random.default_rng(seed).choice(pick, 4, replace=False)
            picked = torch.from_numpy(np.concatenate([[probs[i, target[i]]], probs[i, sampled]]))
            ref = multiclass_accuracy(picked[None], torch.tensor([0]), num_classes=5, top_k=1, average="micro")
            assert ours == float(ref)
    # every score tied: the peers count a success, the suite a failure
    flat = np.zeros((4, 12))
    assert peer_nway_expectation(flat, np.arange(4), 5, 1).tolist() == [1.0] * 4
    assert nway_topk_accuracy(flat, np.arange(4), n_way=5, top_k=1, draws=None).tolist() == [0.0] * 4


def test_peer_backbone_inputs_equal_torchvision_transforms():
    import torchvision
    from torchvision import transforms as T

    a = np.random.default_rng(2).integers(0, 256, (3, 64, 64, 3)).astype(np.uint8)
    x = torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
    bilinear = T.InterpolationMode.BILINEAR
    norm = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    expected = net._transform_input(norm(T.Resize(342, interpolation=bilinear, antialias=True)(x)))
    torch.testing.assert_close(peers.peer_inception_tv_input(a), expected, rtol=0, atol=1e-5)
    clip = T.Compose([T.Resize(224, interpolation=bilinear, antialias=True), T.Normalize(peers.CLIP_MEAN, peers.CLIP_STD)])
    torch.testing.assert_close(peers.peer_clip_input(a), clip(x), rtol=0, atol=1e-5)
    assert peers.suite_clip_input(a).shape == (3, 3, 224, 224)
    assert peers.suite_inception_tf_input(a).shape == (3, 3, 299, 299)


def test_table_has_one_finite_row_per_difference(tmp_path):
    from metrics.backbones.indomain import SynthCNNConfig

    stimuli, recons, labels = peers.build_image_set(tmp_path / "data", n_classes=10, images_per_class=3, size=48)
    assert stimuli.shape == recons.shape == (30, 48, 48, 3) and not np.array_equal(stimuli, recons)
    assert np.array_equal(peers.degrade(stimuli, labels), recons)  # seeded
    stimuli, recons, labels = stimuli[::3], recons[::3], labels[::3]  # one pair per class: the 425-px metrics are slow
    rows = peers.measure(stimuli, recons, labels, cache_dir=tmp_path / "cache",
                         cnn_config=SynthCNNConfig(epochs=1, min_steps=15))  # a short training: plumbing only
    assert len({r.difference for r in rows}) == 8 and len(rows) == 12
    for r in rows:
        assert r.n == 10 and np.isfinite(r.delta)
        if r.peer is not None:
            assert np.isfinite(r.peer) and np.isfinite(r.suite) and r.delta == pytest.approx(r.peer - r.suite)
    ties = [r for r in rows if "tie rule" in r.difference]
    assert len(ties) == 2 and all(r.delta >= 0 for r in ties)  # under the peers' rule ties only help the target
    inputs = [r for r in rows if r.peer is None]
    assert len(inputs) == 2 and all("needs the real weights" in r.note for r in inputs)
    assert any("--backbone inception-tf,inception-tv" in r.note for r in inputs)
    assert len(peers.markdown_table(rows).splitlines()) == len(rows) + 2

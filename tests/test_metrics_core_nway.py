"""Identification (MindEye), N-way accuracy (MinD-Vis) and CLIP score proven against plain loops and torchmetrics."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import identification as identification_mod
from metrics.accuracy import NWayAccuracy, nway_topk_accuracy
from metrics.clip_score import CLIPScore, aggregate_clip_score, clip_score_from_embeddings
from metrics.identification import Identification, nway_identification


def _paired_features(n: int, d: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(n, d))
    return ref + noise * rng.normal(size=(n, d)), ref


# ------------------------------------------------------------------------------------------------ identification


def _mindeye_two_way(preds: np.ndarray, reals: np.ndarray) -> np.ndarray:
    """MindEye's two_way_identification(return_avg=False), verbatim, as per-sample fractions."""
    r = np.corrcoef(reals, preds)
    r = r[: len(reals), len(reals):]
    congruents = np.diag(r)
    success = r < congruents
    success_cnt = np.sum(success, 0)
    return success_cnt / (len(reals) - 1)


def _nway_identification_loop(preds, reals, n_way, draws, seed):
    """Per reconstruction: draw k-1 other stimuli (uniform keys, smallest k-1), success if its own is best."""
    n = len(preds)
    corr = np.corrcoef(preds, reals)[:n, n:]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        keys = rng.random((draws, n - 1))
        wins = 0
        for d in range(draws):
            picked = [others[j] for j in np.argsort(keys[d])[: n_way - 1]]
            wins += all(corr[i, j] < corr[i, i] for j in picked)
        out.append(wins / draws)
    return np.array(out)


def test_two_way_identification_matches_mindeye():
    preds, reals = _paired_features(25, 40, noise=2.0, seed=0)
    got = nway_identification(preds, reals)
    np.testing.assert_allclose(got, _mindeye_two_way(preds, reals), atol=1e-12)
    assert 0.5 < got.mean() < 1.0


def test_identification_of_the_references_themselves_is_one():
    _, reals = _paired_features(15, 20, noise=0.0, seed=1)
    assert nway_identification(reals, reals).tolist() == [1.0] * 15
    assert nway_identification(reals, reals, n_way=5, draws=3).tolist() == [1.0] * 15


def test_identification_flattens_feature_maps_and_chunks_columns(monkeypatch):
    rng = np.random.default_rng(2)
    reals = rng.normal(size=(10, 3, 4, 5))
    preds = reals + 1.5 * rng.normal(size=reals.shape)
    expected = _mindeye_two_way(preds.reshape(10, -1), reals.reshape(10, -1))
    monkeypatch.setattr(identification_mod, "_COLUMNS_PER_CHUNK", 7)  # 60 columns -> 9 uneven chunks
    np.testing.assert_allclose(nway_identification(torch.from_numpy(preds).float(), reals), expected, atol=1e-12)


@pytest.mark.parametrize("n_way", [2, 4, 12])
def test_nway_identification_matches_loop_with_same_rng(n_way):
    preds, reals = _paired_features(12, 30, noise=2.5, seed=3)
    got = nway_identification(preds, reals, n_way=n_way, draws=9, seed=4)
    np.testing.assert_allclose(got, _nway_identification_loop(preds, reals, n_way, 9, 4), atol=1e-12)


def test_nway_identification_exact_expectation():
    preds, reals = _paired_features(20, 30, noise=3.0, seed=5)
    assert nway_identification(preds, reals, n_way=2, draws=None) == pytest.approx(nway_identification(preds, reals))
    exact = nway_identification(preds, reals, n_way=5, draws=None)
    sampled = nway_identification(preds, reals, n_way=5, draws=4000, seed=0)
    assert np.abs(exact - sampled).max() < 0.05
    assert exact.mean() < nway_identification(preds, reals).mean()  # 5-way is harder than 2-way


def test_identification_object_and_constant_features():
    preds, reals = _paired_features(12, 16, noise=1.0, seed=6)
    metric = Identification()
    metric.update(preds[:5], reals[:5])
    metric.update(preds[5:], reals[5:])
    np.testing.assert_allclose(metric.per_sample, nway_identification(preds, reals))
    preds[0] = 1.0  # a constant feature row has no correlation: it can identify nothing
    assert nway_identification(preds, reals)[0] == 0.0


# ------------------------------------------------------------------------------------------------------ accuracy


def _mindvis_accuracy_loop(logits, targets, n_way, top_k, draws, seed):
    """MinD-Vis' n_way_top_k_acc per sample, with torchmetrics' accuracy, on the same key stream."""
    from torchmetrics.functional import accuracy

    rng = np.random.default_rng(seed)
    n_classes = logits.shape[1]
    out = []
    for pred, class_id in zip(torch.from_numpy(logits), targets):
        pick_range = [i for i in np.arange(n_classes) if i != class_id]
        keys = rng.random((draws, n_classes - 1))
        acc_list = []
        for d in range(draws):
            idxs_picked = [pick_range[j] for j in np.argsort(keys[d])[: n_way - 1]]
            pred_picked = torch.cat([pred[class_id].unsqueeze(0), pred[idxs_picked]])
            acc = accuracy(pred_picked.unsqueeze(0), torch.tensor([0]), task="multiclass", num_classes=n_way,
                           top_k=top_k)
            acc_list.append(acc.item())
        out.append(np.mean(acc_list))
    return np.array(out)


@pytest.mark.parametrize("top_k", [1, 2])
def test_nway_accuracy_matches_mindvis_loop(top_k):
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(10, 15))
    targets = rng.integers(0, 15, 10)
    logits[np.arange(10), targets] += 1.0  # above chance, below certainty
    got = nway_topk_accuracy(logits, targets, n_way=5, top_k=top_k, draws=6, seed=8)
    np.testing.assert_allclose(got, _mindvis_accuracy_loop(logits, targets, 5, top_k, 6, 8), atol=1e-12)


def test_nway_accuracy_certain_chance_and_clipping():
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(400, 10))
    targets = rng.integers(0, 10, 400)
    chance = nway_topk_accuracy(logits, targets, n_way=5, draws=None).mean()
    assert chance == pytest.approx(1 / 5, abs=0.04)
    assert nway_topk_accuracy(logits, targets, n_way=5, top_k=2, draws=None).mean() == pytest.approx(2 / 5, abs=0.05)
    certain = logits.copy()
    certain[np.arange(400), targets] = 100.0
    assert nway_topk_accuracy(certain, targets, n_way=10).tolist() == [1.0] * 400
    with pytest.warns(UserWarning, match="10-way"):
        clipped = nway_topk_accuracy(logits[:20], targets[:20], n_way=50, draws=None)
    # With every class drawn, the trial is deterministic: top-1 over all 10 classes.
    np.testing.assert_array_equal(clipped, (logits[:20].argmax(1) == targets[:20]).astype(float))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 8))
def test_nway_accuracy_per_sample_in_unit_interval_and_seeded(seed, n_way):
    rng = np.random.default_rng(seed)
    logits, targets = rng.normal(size=(6, 8)), rng.integers(0, 8, 6)
    a = nway_topk_accuracy(logits, targets, n_way=n_way, draws=5, seed=seed)
    assert np.array_equal(a, nway_topk_accuracy(logits, targets, n_way=n_way, draws=5, seed=seed))
    assert np.all((a >= 0) & (a <= 1)) and a.shape == (6,)


def test_nway_accuracy_object_is_mean_over_samples():
    rng = np.random.default_rng(10)
    logits, targets = rng.normal(size=(30, 12)), rng.integers(0, 12, 30)
    metric = NWayAccuracy(n_way=4, draws=5, seed=1)
    metric.update(logits[:13], targets[:13])
    metric.update(logits[13:], targets[13:])
    expected = nway_topk_accuracy(logits, targets, n_way=4, draws=5, seed=1)
    assert metric.compute() == pytest.approx(expected.mean())
    assert metric.result(n_boot=100).n == 30


# ---------------------------------------------------------------------------------------------------- CLIP score


class _FakeClip:
    """Stands in for torchmetrics' CLIP model; only `.to` is called on it when features are patched in."""

    def to(self, device):
        return self


def test_clip_score_torchmetrics_variant_matches_torchmetrics(monkeypatch):
    # The package attribute `clip_score` is the function, so fetch the module itself.
    tm_clip = importlib.import_module("torchmetrics.functional.multimodal.clip_score")

    rng = np.random.default_rng(11)
    image_emb, text_emb = rng.normal(size=(6, 16)), rng.normal(size=(6, 16))
    features = {"image": torch.from_numpy(image_emb), "text": torch.from_numpy(text_emb)}
    monkeypatch.setattr(tm_clip, "_get_features", lambda data, modality, *args: features[modality])
    images = [torch.zeros(3, 8, 8) for _ in range(6)]
    score, n = tm_clip._clip_score_update(images, [f"caption {i}" for i in range(6)], _FakeClip(), None)
    got = clip_score_from_embeddings(image_emb, text_emb, variant="torchmetrics")
    np.testing.assert_allclose(got, score.numpy(), rtol=1e-10)
    # torchmetrics' CLIPScore.compute: torch.max(score_sum / n_samples, 0)
    expected_total = torch.max(score.sum(0) / n, torch.zeros(()))
    assert aggregate_clip_score(got, "torchmetrics") == pytest.approx(float(expected_total), rel=1e-10)


def test_clip_score_hessel_variant_and_where_the_variants_differ():
    rng = np.random.default_rng(12)
    image_emb, text_emb = rng.normal(size=(8, 10)), rng.normal(size=(8, 10))
    cos = (image_emb * text_emb).sum(1) / np.linalg.norm(image_emb, axis=1) / np.linalg.norm(text_emb, axis=1)
    hessel = clip_score_from_embeddings(image_emb, text_emb, variant="hessel")
    np.testing.assert_allclose(hessel, 2.5 * np.maximum(cos, 0), rtol=1e-12)
    assert aggregate_clip_score(hessel, "hessel") == pytest.approx(2.5 * np.maximum(cos, 0).mean())
    # All negative cosines: Hessel clamps each sample to 0, torchmetrics clamps the (negative) mean to 0.
    opposite = clip_score_from_embeddings(image_emb, -image_emb, variant="torchmetrics")
    np.testing.assert_allclose(opposite, -100.0)
    assert aggregate_clip_score(opposite, "torchmetrics") == 0.0
    # Mixed signs: negatives lower the torchmetrics mean but not Hessel's.
    tm_mean = aggregate_clip_score(clip_score_from_embeddings(image_emb, text_emb, "torchmetrics"), "torchmetrics")
    assert tm_mean / 100 < aggregate_clip_score(hessel, "hessel") / 2.5 or tm_mean == 0.0


def test_clip_score_object():
    rng = np.random.default_rng(13)
    image_emb, text_emb = rng.normal(size=(9, 6)), rng.normal(size=(9, 6))
    metric = CLIPScore(variant="hessel")
    metric.update(image_emb[:4], text_emb[:4])
    metric.update(image_emb[4:], text_emb[4:])
    np.testing.assert_allclose(metric.per_sample, clip_score_from_embeddings(image_emb, text_emb))
    assert metric.result().protocol == "clip-score-hessel-w2.5"

"""Zero-shot retrieval top-k against plain numpy implementations (all-way and seeded k-way), ties, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eeg2img.errors import UserError
from metrics.retrieval import Retrieval, retrieval_topk


def _numpy_all_way(pred, cand, target, k):
    """THINGS-EEG2's N-way top-k as the peers write it, with the tie rule made explicit: rank by cosine."""
    p = pred / np.linalg.norm(pred, axis=1, keepdims=True)
    c = cand / np.linalg.norm(cand, axis=1, keepdims=True)
    sim = p @ c.T
    own = sim[np.arange(len(p)), target]
    better_or_tied = (sim >= own[:, None]).sum(axis=1) - 1  # the target itself is not a competitor
    return (better_or_tied < k).astype(float)


def _numpy_k_way(pred, cand, target, n_way, k, draws, seed):
    """A per-trial loop over seeded draws, using the documented key stream of metrics.nway."""
    p = pred / np.linalg.norm(pred, axis=1, keepdims=True)
    c = cand / np.linalg.norm(cand, axis=1, keepdims=True)
    sim = p @ c.T
    rng = np.random.default_rng(seed)
    out = []
    for i in range(len(p)):
        others = np.delete(np.arange(len(c)), target[i])
        keys = rng.random((draws, len(others)))
        hits = 0
        for row in keys:
            chosen = others[np.argsort(row)[: n_way - 1]]
            hits += int((sim[i, chosen] >= sim[i, target[i]]).sum() < k)
        out.append(hits / draws)
    return np.array(out)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), c=st.integers(2, 25), d=st.integers(2, 12), k=st.integers(1, 5), seed=st.integers(0, 99))
def test_all_way_top_k_equals_plain_numpy(n, c, d, k, seed):
    rng = np.random.default_rng(seed)
    pred, cand = rng.standard_normal((n, d)), rng.standard_normal((c, d))
    target = rng.integers(0, c, n)
    k = min(k, c)
    np.testing.assert_array_equal(retrieval_topk(pred, cand, target, top_k=k), _numpy_all_way(pred, cand, target, k))


@pytest.mark.parametrize(("n_way", "k"), [(2, 1), (4, 1), (10, 1), (10, 5)])
def test_seeded_k_way_equals_a_per_trial_loop_and_is_reproducible(n_way, k):
    rng = np.random.default_rng(3)
    pred, cand = rng.standard_normal((15, 8)), rng.standard_normal((20, 8))
    pred[:5] = cand[:5] + 0.3 * rng.standard_normal((5, 8))  # some trials point at their stimulus
    target = np.arange(15)
    ours = retrieval_topk(pred, cand, target, top_k=k, n_way=n_way, draws=25, seed=7)
    np.testing.assert_allclose(ours, _numpy_k_way(pred, cand, target, n_way, k, 25, 7))
    np.testing.assert_array_equal(ours, retrieval_topk(pred, cand, target, top_k=k, n_way=n_way, draws=25, seed=7))
    assert not np.array_equal(ours, retrieval_topk(pred, cand, target, top_k=k, n_way=n_way, draws=25, seed=8))


def test_chance_perfect_and_ties():
    rng = np.random.default_rng(0)
    cand = rng.standard_normal((50, 16))
    # the true embedding retrieves its stimulus; scale does not matter (cosine)
    assert retrieval_topk(3 * cand, cand, np.arange(50)).mean() == 1.0
    # random predictions: all-way top-5 near 5/50, 2-way near 1/2
    pred = rng.standard_normal((2000, 16))
    target = rng.integers(0, 50, 2000)
    assert retrieval_topk(pred, cand, target, top_k=5).mean() == pytest.approx(0.1, abs=0.02)
    assert retrieval_topk(pred, cand, target, n_way=2, draws=20).mean() == pytest.approx(0.5, abs=0.02)
    # a duplicate candidate ties with the target: counted against it, whatever the candidate order
    dup = np.concatenate([cand[:1], cand[:1], cand[1:5]])
    assert retrieval_topk(cand[:1], dup, np.array([0])).item() == 0.0
    assert retrieval_topk(cand[:1], dup, np.array([1])).item() == 0.0
    assert retrieval_topk(cand[:1], dup, np.array([0]), top_k=2).item() == 1.0


def test_the_metric_class_runs_the_functional_core_once_over_its_batches():
    rng = np.random.default_rng(1)
    pred, cand = rng.standard_normal((12, 6)), rng.standard_normal((9, 6))
    target = rng.integers(0, 9, 12)
    metric = Retrieval(cand, top_k=2)
    metric.update(pred[:5], target[:5])
    metric.update(pred[5:], target[5:])
    np.testing.assert_array_equal(metric.per_sample, retrieval_topk(pred, cand, target, top_k=2))
    assert metric.compute() == pytest.approx(retrieval_topk(pred, cand, target, top_k=2).mean())
    assert metric.protocol == "9-way top-2"
    assert Retrieval(cand, n_way=4).protocol == "4-way top-1"


@pytest.mark.parametrize(("call", "needle"), [
    (lambda c: retrieval_topk(c[:3], c, np.array([0, 1])), "target: expected 3 integer"),
    (lambda c: retrieval_topk(c[:2], c, np.array([0, 9])), r"indices must lie in 0\.\.4"),
    (lambda c: retrieval_topk(c[:2], c[:, :3], np.array([0, 1])), "feature shape"),
    (lambda c: retrieval_topk(np.zeros((1, 4)), c, np.array([0])), "all-zero embedding"),
    (lambda c: retrieval_topk(np.full((1, 4), np.nan), c, np.array([0])), "pred_emb"),
    (lambda c: retrieval_topk(c[:1], c, np.array([0]), n_way=9), "n_way=9"),
    (lambda c: retrieval_topk(c[:1], c, np.array([0.5])), "integer candidate indices"),
])
def test_bad_input_is_one_line(call, needle):
    cand = np.random.default_rng(0).standard_normal((5, 4))
    with pytest.raises(UserError, match=needle):
        call(cand)

"""FID, KID and IS proven equal to torch-fidelity, torchmetrics and clean-fid on the same random features."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import kid as kid_mod
from metrics.base import SmallSampleWarning
from metrics.fid import FID, feature_statistics, fid_from_features, frechet_distance
from metrics.inception_score import InceptionScore, inception_score_from_logits, inception_score_per_split
from metrics.kid import KID, kid_from_features, kid_subset_values

pytestmark = pytest.mark.filterwarnings("ignore::metrics.base.SmallSampleWarning")


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)  # correlated dimensions, so the covariance is not diagonal
    return rng.normal(size=(n, d)) @ mix + shift


@pytest.fixture(params=[(64, 16), (12, 24)], ids=["N>d", "N<d"])
def feature_pair(request):
    n, d = request.param
    return _features(n, d, 0), _features(n + 3, d, 1, shift=0.3)


def test_fid_of_resamples_equals_fid_of_each_resample():
    from metrics.fid import fid_of_resamples
    from metrics.stats import bootstrap_set_metric, resample_indices

    # n ≥ d (the eigenproblem of Σ1Σ2) and n < d (the singular values of X̃Ỹᵀ)
    for d in (8, 40):
        a, b = _features(30, d, 31), _features(30, d, 32, shift=0.5)
        indices = resample_indices(30, 25, seed=4)
        batched = fid_of_resamples(a, b, indices)
        looped = np.array([fid_from_features(a[i], b[i], warn_small=False) for i in indices])
        np.testing.assert_allclose(batched, looped, rtol=1e-6 if d > 30 else 1e-9)
        assert len(set(np.round(batched, 6))) > 20  # the resamples differ, so this compares 25 values
    a, b = _features(30, 8, 31), _features(30, 8, 32, shift=0.5)
    # the CI path: the batched function stands in for the loop and gives the same interval
    fid = lambda x, y: fid_from_features(x, y, warn_small=False)  # noqa: E731
    loop_ci = bootstrap_set_metric(fid, a, b, n_boot=25, seed=4)
    fast_ci = bootstrap_set_metric(fid, a, b, n_boot=25, seed=4, batched=lambda idx: fid_of_resamples(a, b, idx))
    assert fast_ci == pytest.approx(loop_ci, rel=1e-9)


def _kid_over_distinct_trials(a, b, rows):
    """Unbiased MMD² (KID's cubic kernel) of a resample, the within-set means over pairs of distinct trials."""
    x, y = a[rows].astype(np.float64), b[rows].astype(np.float64)
    k = lambda u, v: (u @ v.T / a.shape[1] + 1.0) ** 3  # noqa: E731
    distinct = rows[:, None] != rows[None, :]
    return k(x, x)[distinct].mean() + k(y, y)[distinct].mean() - 2 * k(x, y).mean()


def test_kid_bootstrap_is_centred_on_the_estimate_when_trials_repeat():
    # Same distribution, 20 trials: a resample repeats about 7 trials. Pairing a repeated trial with itself
    # would add k(x, x) to the between-sample terms and move every resample up.
    from metrics.kid import kid_of_resamples
    from metrics.stats import resample_indices

    a, b = _features(20, 6, 51), _features(20, 6, 52)
    estimate = kid_from_features(a, b, subsets=3)[0]
    indices = resample_indices(20, 400, seed=1)
    distinct = kid_of_resamples(a, b, indices)
    counted = np.array([kid_from_features(a[i], b[i], subsets=1)[0] for i in indices])
    spread = distinct.std()
    assert abs(distinct.mean() - estimate) < 0.25 * spread, (distinct.mean(), estimate, spread)
    assert counted.mean() - estimate > 0.5 * spread, (counted.mean(), estimate, spread)
    low, high = np.percentile(distinct, [2.5, 97.5])
    assert low <= estimate <= high


def test_kid_and_is_of_resamples_equal_each_resample():
    from metrics.inception_score import inception_score_of_resamples
    from metrics.kid import kid_of_resamples
    from metrics.stats import resample_indices

    a, b = _features(30, 6, 41), _features(30, 6, 42, shift=0.4)
    indices = resample_indices(30, 20, seed=5)
    kid = kid_of_resamples(a, b, indices)
    np.testing.assert_allclose(kid, [_kid_over_distinct_trials(a, b, i) for i in indices], rtol=1e-9)
    # without a repeated trial (a permutation) it is the reference KID of those rows
    orders = np.stack([np.random.default_rng(k).permutation(30) for k in range(5)])
    np.testing.assert_allclose(kid_of_resamples(a, b, orders),
                               [kid_from_features(a[i], b[i], subsets=7, seed=3)[0] for i in orders], rtol=1e-9)
    logits = _features(30, 5, 43) * 3
    score = inception_score_of_resamples(logits, indices, splits=3)
    np.testing.assert_allclose(score, [inception_score_from_logits(logits[i], splits=3)[0] for i in indices],
                               rtol=1e-12)
    assert np.ptp(kid) > 0 and np.ptp(score) > 0


@pytest.mark.parametrize("metric", ["kid", "is"])
def test_set_level_kid_and_is_cis_are_the_bootstrap_of_the_reference_metric(metric):
    from metrics.set_level import SetLevelOptions, compute
    from metrics.stats import bootstrap_set_metric

    options = SetLevelOptions(seed=3, n_boot=30)
    a, b = _features(40, 16, 44), _features(40, 16, 45, shift=0.3)
    if metric == "kid":
        arrays = (a, b)
        reference = lambda x, y: kid_from_features(x, y, subsets=100, subset_size=len(x), seed=3)[0]  # noqa: E731
    else:
        arrays = (a * 2,)
        reference = lambda x: inception_score_from_logits(x, splits=options.splits(len(x)))[0]  # noqa: E731
    row = compute(metric, arrays, options)
    assert row["value"] == pytest.approx(reference(*arrays), rel=1e-9)
    # KID's resamples pair distinct trials only (see test_kid_bootstrap_is_centred_on_the_estimate_...)
    batched = (lambda idx: [_kid_over_distinct_trials(a, b, i) for i in idx]) if metric == "kid" else None
    expected = bootstrap_set_metric(reference, *arrays, n_boot=30, seed=3, batched=batched)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(expected, rel=1e-9)


def test_set_level_fid_ci_is_the_bootstrap_of_the_reference_fid():
    from metrics.set_level import SetLevelOptions, compute
    from metrics.stats import bootstrap_set_metric

    a, b = _features(60, 128, 33), _features(60, 128, 34, shift=0.3)  # N1 + N2 < d: the span projection applies
    row = compute("fid", (a, b), SetLevelOptions(seed=2, n_boot=40))
    fid = lambda x, y: fid_from_features(x, y, warn_small=False)  # noqa: E731
    # rank-deficient covariances (N < d): sqrt of near-zero eigenvalues magnifies round-off to ~1e-8
    assert row["value"] == pytest.approx(fid(a, b), rel=1e-6)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(bootstrap_set_metric(fid, a, b, n_boot=40, seed=2),
                                                            rel=1e-6)


# ----------------------------------------------------------------------------------------------------------- FID


def test_fid_matches_torch_fidelity(feature_pair):
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    a, b = feature_pair
    expected = fid_statistics_to_metric(fid_features_to_statistics(torch.from_numpy(a)),
                                        fid_features_to_statistics(torch.from_numpy(b)), verbose=False)
    assert fid_from_features(a, b) == pytest.approx(expected["frechet_inception_distance"], rel=1e-4)


def test_fid_matches_torchmetrics_compute_fid(feature_pair):
    from torchmetrics.image.fid import _compute_fid

    a, b = feature_pair
    stats = [torch.from_numpy(x) for x in (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))]
    assert fid_from_features(a, b) == pytest.approx(float(_compute_fid(*stats)), rel=1e-4)


def test_frechet_distance_matches_clean_fid_on_same_statistics():
    from cleanfid.fid import frechet_distance as clean_frechet_distance

    a, b = _features(80, 10, 2), _features(90, 10, 3, shift=0.5)
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clean-fid passes SciPy's deprecated `disp`
        expected = clean_frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-4)


def test_feature_statistics_is_numpy_mean_and_cov():
    a = _features(30, 5, 4)
    mu, sigma = feature_statistics(a)
    np.testing.assert_allclose(mu.numpy(), a.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(a, rowvar=False), rtol=1e-12)


def test_fid_identity_symmetry_and_mean_shift():
    a, b = _features(100, 8, 5), _features(100, 8, 6)
    assert abs(fid_from_features(a, a)) < 1e-8
    assert fid_from_features(a, b) == pytest.approx(fid_from_features(b, a), rel=1e-9)
    # Shifting every feature by s keeps the covariance: FID grows by exactly d * s².
    shifts = [fid_from_features(a, a + s) for s in (0.5, 1.0, 2.0)]
    np.testing.assert_allclose(shifts, [8 * s**2 for s in (0.5, 1.0, 2.0)], rtol=1e-6)
    assert shifts == sorted(shifts)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3), st.floats(0.01, 4), st.floats(0.01, 4)),
                min_size=1, max_size=6))
def test_frechet_distance_diagonal_gaussians_closed_form(params):
    m1, m2, v1, v2 = (np.array(col) for col in zip(*params))
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = frechet_distance(m1, np.diag(v1), m2, np.diag(v2))
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_fid_warns_below_2048_samples_only():
    with pytest.warns(SmallSampleWarning, match="2048"):
        fid_from_features(_features(50, 4, 7), _features(50, 4, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSampleWarning)
        fid_from_features(_features(2048, 4, 7), _features(2048, 4, 8))


def test_fid_object_streams_batches_and_resets():
    a, b = _features(40, 6, 9), _features(40, 6, 10, shift=0.2)
    metric = FID()
    for lo in range(0, 40, 16):
        metric.update(a[lo:lo + 16], real=True)
        metric.update(b[lo:lo + 16], real=False)
    assert metric.compute() == pytest.approx(fid_from_features(a, b), rel=1e-5)  # stored as float32
    result = metric.result(backbone="inception", n_boot=8, seed=1)
    assert result.n == 40 and result.ci95[0] <= result.ci95[1] and result.backbone == "inception"
    assert metric.result(n_boot=8, seed=1).ci95 == result.ci95
    metric.reset()
    assert metric.real_features == [] and metric.fake_features == []


# ----------------------------------------------------------------------------------------------------------- KID


def _tf_kid(a, b, subsets, subset_size, seed):
    from torch_fidelity.metric_kid import kid_features_to_metric

    out = kid_features_to_metric(torch.from_numpy(a), torch.from_numpy(b), kid_subsets=subsets,
                                 kid_subset_size=subset_size, rng_seed=seed, verbose=False)
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


@pytest.mark.parametrize("full_kernel", [True, False], ids=["kernels-once", "kernels-per-subset"])
def test_kid_matches_torch_fidelity_exactly(monkeypatch, full_kernel):
    if not full_kernel:
        monkeypatch.setattr(kid_mod, "_FULL_KERNEL_MAX_ENTRIES", 0)
    a, b = _features(60, 12, 11), _features(70, 12, 12, shift=0.4)
    mean, std = kid_from_features(a, b, subsets=20, subset_size=25, seed=123)
    exp_mean, exp_std = _tf_kid(a, b, 20, 25, 123)
    assert mean == pytest.approx(exp_mean, rel=1e-6)
    assert std == pytest.approx(exp_std, rel=1e-6)
    assert mean > 0


def test_kid_subset_size_is_clipped_to_the_smaller_set():
    a, b = _features(30, 5, 13), _features(45, 5, 14, shift=0.3)
    assert kid_from_features(a, b, subsets=10, seed=5) == pytest.approx(_tf_kid(a, b, 10, 30, 5), rel=1e-6)


def test_kid_with_whole_set_subsets_is_computed_once_and_matches_torch_fidelity(monkeypatch):
    # N = subset_size for both sets (the pooled demo sets): every draw is a permutation of all rows
    a, b = _features(40, 6, 21), _features(40, 6, 22, shift=0.3)
    calls = []
    monkeypatch.setattr(kid_mod, "_mmd2_unbiased", lambda *k: calls.append(1) or _MMD2(*k))
    mean, std = kid_from_features(a, b, subsets=50, subset_size=1000, seed=7)
    exp_mean, exp_std = _tf_kid(a, b, 50, 40, 7)
    assert len(calls) == 1
    assert mean == pytest.approx(exp_mean, rel=1e-9) and mean > 0
    assert std == pytest.approx(exp_std, abs=1e-12)


_MMD2 = kid_mod._mmd2_unbiased


def test_kid_is_seeded_and_near_zero_for_one_distribution():
    a, b = _features(200, 4, 15), _features(200, 4, 16)
    values = kid_subset_values(a, b, subsets=30, subset_size=50, seed=1)
    assert np.array_equal(values, kid_subset_values(a, b, subsets=30, subset_size=50, seed=1))
    assert not np.array_equal(values, kid_subset_values(a, b, subsets=30, subset_size=50, seed=2))
    shifted = kid_from_features(a, b + 1.0, subsets=30, subset_size=50, seed=1)[0]
    assert abs(values.mean()) < 0.2 * shifted


def test_kid_object_matches_functional():
    a, b = _features(40, 6, 17), _features(40, 6, 18, shift=0.5)
    metric = KID(subsets=5, subset_size=20, seed=3)
    metric.update(a[:25], real=True)
    metric.update(a[25:], real=True)
    metric.update(b, real=False)
    expected = kid_from_features(a.astype(np.float32), b.astype(np.float32), subsets=5, subset_size=20, seed=3)
    assert metric.compute() == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------------------------------------------------ IS


@pytest.mark.parametrize(("n", "splits", "shuffle"), [(100, 10, True), (53, 10, True), (37, 4, False)])
def test_inception_score_matches_torch_fidelity(n, splits, shuffle):
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = np.random.default_rng(n).normal(scale=3.0, size=(n, 20))
    expected = isc_features_to_metric(torch.from_numpy(logits), splits=splits, shuffle=shuffle, rng_seed=2020)
    mean, std = inception_score_from_logits(logits, splits=splits, shuffle=shuffle, seed=2020)
    assert mean == pytest.approx(expected["inception_score_mean"], rel=1e-9)
    assert std == pytest.approx(expected["inception_score_std"], rel=1e-9)
    per_split = inception_score_per_split(logits, splits=splits, shuffle=shuffle, seed=2020)
    assert len(per_split) == splits and per_split.mean() == pytest.approx(mean, rel=1e-12)


def test_inception_score_matches_torch_fidelity_on_float32_logits():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = np.random.default_rng(0).normal(scale=4.0, size=(60, 1008)).astype(np.float32)
    expected = isc_features_to_metric(torch.from_numpy(logits))["inception_score_mean"]
    assert inception_score_from_logits(logits)[0] == pytest.approx(expected, rel=1e-9)


def test_inception_score_bounds():
    assert inception_score_from_logits(np.zeros((20, 7)), splits=2)[0] == pytest.approx(1.0)
    confident = np.full((40, 8), -50.0)
    confident[np.arange(40), np.arange(40) % 8] = 50.0  # every class equally often, each sample certain
    assert inception_score_from_logits(confident, splits=1)[0] == pytest.approx(8.0, rel=1e-6)


def test_inception_score_object_streams_batches():
    logits = np.random.default_rng(1).normal(size=(30, 10))
    metric = InceptionScore(splits=3)
    metric.update(logits[:11])
    metric.update(logits[11:])
    assert metric.compute() == pytest.approx(inception_score_from_logits(logits, splits=3), rel=1e-12)
    assert metric.split_scores.shape == (3,) and metric.n == 30
    result = metric.result(n_boot=10)
    assert result.ci95 is not None and result.name == "inception_score"


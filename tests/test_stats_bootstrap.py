"""Bootstrap intervals, per-subject summaries and the paired permutation test."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.stats import bootstrap_ci, bootstrap_means, bootstrap_set_metric, paired_comparison, per_subject


def test_ci_contains_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(0.3, 1.0, 50), rng.normal(0.3, 1.0, 2000)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    # The width scales as 1/sqrt(N): 40x the trials, about 6.3x narrower.
    assert 4.0 < (hi_s - lo_s) / (hi_l - lo_l) < 9.0
    # And matches the normal-theory interval for the mean.
    assert hi_l - lo_l == pytest.approx(2 * 1.96 * large.std() / np.sqrt(2000), rel=0.15)


def test_ci_is_seeded_and_level_sets_the_width():
    v = np.random.default_rng(1).random(100)
    assert bootstrap_ci(v, seed=3) == bootstrap_ci(v, seed=3)
    assert bootstrap_ci(v, seed=3) != bootstrap_ci(v, seed=4)
    lo50, hi50 = bootstrap_ci(v, level=0.5)
    lo95, hi95 = bootstrap_ci(v, level=0.95)
    assert lo95 < lo50 < hi50 < hi95
    assert bootstrap_ci(np.full(10, 0.25)) == (0.25, 0.25)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40), st.integers(0, 1000))
def test_bootstrap_means_stay_within_the_data_range(values, seed):
    means = bootstrap_means(values, n_boot=50, seed=seed)
    assert means.min() >= min(values) - 1e-9 and means.max() <= max(values) + 1e-9
    lo, hi = bootstrap_ci(values, n_boot=50, seed=seed)
    if len(values) < 2:  # one value has no spread to resample: no interval rather than a degenerate one
        assert np.isnan(lo) and np.isnan(hi)
    else:
        assert lo <= hi


def test_per_subject_groups_trials():
    values = np.array([1.0, 2.0, 3.0, 10.0, 20.0])
    subjects = np.array([2, 1, 2, 1, 2])
    out = per_subject(values, subjects, n_boot=200)
    assert list(out) == [1, 2]
    assert out[1]["value"] == pytest.approx(6.0) and out[1]["n"] == 2
    assert out[2]["value"] == pytest.approx(8.0) and out[2]["n"] == 3
    assert out[2]["ci95"][0] <= out[2]["value"] <= out[2]["ci95"][1]


def _exact_sign_flip_p(d: np.ndarray) -> float:
    observed = abs(d.mean())
    flips = [abs(np.mean(np.array(s) * d)) >= observed - 1e-12 for s in itertools.product([-1, 1], repeat=len(d))]
    return float(np.mean(flips))


def test_paired_comparison_exact_p_value_matches_brute_force():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0.2, 1, 10), rng.normal(0, 1, 10)
    out = paired_comparison(a, b)
    assert out["diff"] == pytest.approx((a - b).mean())
    assert out["p_value"] == pytest.approx(_exact_sign_flip_p(a - b))
    assert out["ci_low"] <= out["diff"] <= out["ci_high"] and out["n"] == 10


def test_paired_comparison_monte_carlo_agrees_with_exact():
    from metrics.stats import EXACT_MAX_PAIRS, sign_flip_permutation_test

    rng = np.random.default_rng(3)
    a, b = rng.normal(0.3, 1, 14), rng.normal(0, 1, 14)
    assert paired_comparison(a, b)["p_value"] == pytest.approx(_exact_sign_flip_p(a - b))  # exact up to 19 pairs
    n = EXACT_MAX_PAIRS + 5  # beyond it: Monte Carlo, seeded, and named as such
    a, b = rng.normal(0.3, 1, n), rng.normal(0, 1, n)
    out = paired_comparison(a, b, n_permutations=2000, seed=1)
    assert out["test"].endswith("(2000 patterns)")
    reference = sign_flip_permutation_test(a - b, n_permutations=200_000, seed=7)
    assert out["p_value"] == pytest.approx(reference, abs=0.03)
    assert out == paired_comparison(a, b, n_permutations=2000, seed=1)


def test_paired_comparison_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(4)
    base = rng.random(200)
    better = base + 0.05 + 0.02 * rng.normal(size=200)
    strong = paired_comparison(better, base, n_permutations=2000)
    assert strong["p_value"] < 0.01 and strong["ci_low"] > 0
    same = paired_comparison(base, base)
    assert same["diff"] == 0.0 and same["p_value"] == 1.0


def test_bootstrap_set_metric_resamples_rows_jointly():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 3))
    y = x + 1.0
    # Rows stay paired: the mean difference is exactly 1 in every resample.
    diff_ci = bootstrap_set_metric(lambda a, b: float((b - a).mean()), x, y, n_boot=20)
    assert diff_ci == pytest.approx((1.0, 1.0))
    lo, hi = bootstrap_set_metric(lambda a: (float(a.mean()), 0.0), x[:, 0], n_boot=300, seed=2)
    assert (lo, hi) == pytest.approx(bootstrap_ci(x[:, 0], n_boot=300, seed=2), abs=1e-12)

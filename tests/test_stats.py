"""Statistics of the report: bootstrap CIs and the paired tests (against brute force and scipy)."""

import itertools

import numpy as np
import pytest
from scipy.stats import wilcoxon

from eeg2img.errors import UserError
from metrics.stats import (
    bootstrap_ci,
    paired_test,
    sign_flip_permutation_test,
    stratified_bootstrap_ci,
)


def brute_force_sign_flip(d):
    d = np.asarray(d, dtype=float)
    observed = abs(d.mean())
    hits = 0
    patterns = list(itertools.product([1.0, -1.0], repeat=len(d)))
    for signs in patterns:
        if abs(np.mean(np.array(signs) * d)) >= observed - 1e-12:
            hits += 1
    return hits / len(patterns)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 11])
def test_sign_flip_p_value_equals_brute_force_enumeration(n):
    rng = np.random.default_rng(n)
    d = rng.normal(0.3, 1.0, size=n)
    assert sign_flip_permutation_test(d) == pytest.approx(brute_force_sign_flip(d), abs=1e-12)


def test_sign_flip_handles_ties_and_the_chunked_enumeration():
    # Equal magnitudes create ties at the observed statistic; 17 pairs spans several enumeration chunks.
    d = np.array([1.0, -1.0, 1.0, 1.0, 2.0, -2.0, 0.5])
    assert sign_flip_permutation_test(d) == pytest.approx(brute_force_sign_flip(d), abs=1e-12)
    d17 = np.random.default_rng(0).normal(0.5, 1.0, size=17)
    exact = sign_flip_permutation_test(d17)
    mc = sign_flip_permutation_test(d17, n_permutations=20000, seed=1)
    assert 0.0 < exact < 1.0 and abs(exact - mc) < 0.01


def test_sign_flip_p_value_is_small_for_a_consistent_shift_and_one_for_zero():
    assert sign_flip_permutation_test(np.full(8, 0.2)) == pytest.approx(2 / 2**8)
    assert sign_flip_permutation_test(np.zeros(5)) == 1.0


def test_paired_test_switches_to_wilcoxon_at_20_pairs_like_moabb():
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 1.0, 25), rng.normal(0.5, 1.0, 25)
    p, name = paired_test(a, b)
    assert name == "Wilcoxon signed-rank"
    assert p == pytest.approx(wilcoxon(a - b).pvalue)
    p19, name19 = paired_test(a[:19], b[:19])
    assert name19 == "sign-flip permutation"
    assert p19 == pytest.approx(sign_flip_permutation_test(a[:19] - b[:19]))
    assert np.isnan(paired_test([1.0], [0.0])[0])
    with pytest.raises(UserError, match="same trials"):
        paired_test([1.0, 2.0], [1.0])


def test_bootstrap_ci_brackets_the_mean_is_seeded_and_narrows_with_n():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 1.0, size=30)
    lo, hi = bootstrap_ci(x, seed=5)
    assert lo < x.mean() < hi
    assert (lo, hi) == bootstrap_ci(x, seed=5)
    lo_big, hi_big = bootstrap_ci(rng.normal(2.0, 1.0, size=600), seed=5)
    assert hi_big - lo_big < (hi - lo) / 2
    assert all(np.isnan(bootstrap_ci([1.0])))


def test_stratified_bootstrap_matches_the_mean_of_group_means():
    groups = [np.array([0.1, 0.2, 0.3]), np.array([1.0, 1.1]), np.array([0.5, 0.6, 0.7, 0.8])]
    point = np.mean([g.mean() for g in groups])
    lo, hi = stratified_bootstrap_ci(groups, n_boot=4000, seed=0)
    assert lo < point < hi
    # Resampling within groups keeps the between-group spread out of the CI: much narrower than over units.
    unit_lo, unit_hi = bootstrap_ci([g.mean() for g in groups], n_boot=4000, seed=0)
    assert hi - lo < (unit_hi - unit_lo) / 3


# --- power, effect sizes and multiplicity ------------------------------------------------------------------------
def test_min_attainable_p_is_what_the_unit_test_returns_for_the_most_extreme_data():
    from metrics.stats import min_attainable_p

    for n in (2, 3, 5, 6, 12, 25):
        assert paired_test(np.full(n, 1.0) + np.arange(n) * 1e-3, np.zeros(n))[0] == pytest.approx(min_attainable_p(n))
    assert min_attainable_p(2) == 0.5 and min_attainable_p(3) == 0.25 and min_attainable_p(5) > 0.05 > min_attainable_p(6)


def test_trial_level_test_detects_a_planted_difference_that_three_units_cannot():
    from metrics.stats import paired_comparison

    rng = np.random.default_rng(3)
    subjects = np.repeat([1, 2, 3], 20)  # 3 subjects × 20 matched trials
    b = rng.normal(0.5, 0.1, size=60)
    a = b + 0.05 + rng.normal(0, 0.05, size=60)  # planted: A is better by 0.05 on every subject
    units_a = [a[subjects == s].mean() for s in (1, 2, 3)]
    units_b = [b[subjects == s].mean() for s in (1, 2, 3)]
    p_units, _ = paired_test(units_a, units_b)
    assert p_units == pytest.approx(0.25)  # the most extreme result three units can give: never significant
    r = paired_comparison(a, b, n_boot=1000, seed=0)
    assert r["n"] == 60 and r["p_value"] < 0.001
    assert r["ci_low"] > 0 and r["diff"] == pytest.approx(float((a - b).mean()))
    null = paired_comparison(b + rng.normal(0, 0.05, size=60), b, seed=0)  # no planted difference
    assert null["p_value"] > 0.05 and null["ci_low"] < 0 < null["ci_high"]


def test_holm_matches_the_step_down_procedure_worked_by_hand():
    from metrics.stats import holm

    # Holm (1979): sorted p (0.01, 0.02, 0.03, 0.04) × (4, 3, 2, 1) = (0.04, 0.06, 0.06, 0.04), made monotone.
    np.testing.assert_allclose(holm([0.03, 0.01, 0.04, 0.02]), [0.06, 0.04, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])
    out = holm([0.01, np.nan, 0.02])  # NaN is not a member of the family
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)
    rng = np.random.default_rng(0)
    p = rng.random(12)
    adj = holm(p)
    assert (adj >= p).all() and (np.diff(adj[np.argsort(p)]) >= -1e-15).all() and adj.max() <= 1.0

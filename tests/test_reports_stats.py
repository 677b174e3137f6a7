"""Statistics of the report: bootstrap CIs and the paired tests (against brute force and scipy)."""

import itertools

import numpy as np
import pytest
from scipy.stats import wilcoxon

from reports.stats import (
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
    with pytest.raises(ValueError):
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

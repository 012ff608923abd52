"""Statistics against scipy/numpy and hand-computed cases."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.special import comb
from scipy.stats import binom

from actbench.stats import (
    cohens_d, cohens_dz, holm, mann_whitney_p, mean_ci, median_ci_ranks, paired_t_test,
    power_paired, power_two_sample, ratio_ci_from_intervals, ratio_of_medians_ci, runs_for_power,
    smallest_rank_test_p, summarize, welch_t_test,
)


@pytest.mark.parametrize("n, expected", [(10, (1, 8)), (20, (5, 14)), (100, (39, 60))])
def test_median_ci_ranks_match_the_published_tables(n, expected):
    # 1-based ranks from Conover's table: n=10 -> (2, 9), n=20 -> (6, 15), n=100 -> (40, 61)
    assert median_ci_ranks(n) == expected


@pytest.mark.parametrize("n", range(6, 60))
def test_median_ci_is_the_narrowest_symmetric_interval_with_95_percent_coverage(n):
    lo, hi = median_ci_ranks(n)
    coverage = binom.cdf(hi, n, 0.5) - binom.cdf(lo, n, 0.5)
    assert coverage >= 0.95
    narrower = binom.cdf(hi - 1, n, 0.5) - binom.cdf(lo + 1, n, 0.5)
    assert narrower < 0.95


def test_too_few_samples_give_the_full_range():
    assert median_ci_ranks(5) == (0, 4)


def test_summary_matches_numpy():
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=37)
    summary = summarize(values)
    assert summary.median == pytest.approx(np.median(values))
    assert summary.q1 == pytest.approx(np.percentile(values, 25))
    assert summary.q3 == pytest.approx(np.percentile(values, 75))
    assert summary.mean == pytest.approx(values.mean())
    lo, hi = median_ci_ranks(37)
    ordered = np.sort(values)
    assert (summary.ci_low, summary.ci_high) == (ordered[lo], ordered[hi])
    assert summary.iqr_rel == pytest.approx((summary.q3 - summary.q1) / summary.median)


def test_identical_samples_have_zero_spread():
    summary = summarize([2.0] * 12)
    assert summary.ci_rel_halfwidth == 0.0 and summary.iqr == 0.0


# -- comparing runs: means, tests, corrections, effect sizes, power ------------------------------

A = [0.912, 0.905, 0.921, 0.899, 0.917]
B = [0.887, 0.902, 0.893, 0.881, 0.895, 0.890, 0.884]


def test_mean_ci_is_scipys_t_interval():
    result = mean_ci(A, 0.9)
    values = np.array(A)
    low, high = sps.t.interval(0.9, len(A) - 1, loc=values.mean(), scale=sps.sem(values))
    assert (result.n, result.mean, result.std) == (5, pytest.approx(values.mean()),
                                                   pytest.approx(values.std(ddof=1)))
    assert (result.ci_low, result.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_mean_ci_of_one_value_has_no_spread_and_of_none_no_mean():
    one = mean_ci([0.5])
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.std) and math.isnan(one.ci_low)
    assert math.isnan(mean_ci([]).mean)


def test_welch_matches_scipy_including_the_interval_of_the_difference():
    result = welch_t_test(A, B, confidence=0.95)
    reference = sps.ttest_ind(A, B, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.df == pytest.approx(reference.df)
    assert result.diff == pytest.approx(np.mean(A) - np.mean(B))
    assert (result.ci_low, result.ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))


def test_paired_matches_scipy_including_the_interval_of_the_mean_difference():
    b = B[:5]
    result = paired_t_test(A, b, confidence=0.99)
    reference = sps.ttest_rel(A, b)
    interval = reference.confidence_interval(0.99)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.df == 4
    assert (result.ci_low, result.ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))


def test_t_tests_refuse_what_they_cannot_test():
    with pytest.raises(ValueError):
        welch_t_test([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        paired_t_test([1.0, 2.0], [1.0, 2.0, 3.0])


def test_mann_whitney_is_scipys_exact_test_for_small_samples_without_ties():
    assert mann_whitney_p(A, B) == pytest.approx(
        sps.mannwhitneyu(A, B, alternative="two-sided", method="exact").pvalue)
    # complete separation of 4 vs 4 is the smallest p a rank test can reach
    assert mann_whitney_p([5, 6, 7, 8], [1, 2, 3, 4]) == pytest.approx(smallest_rank_test_p(4, 4))


def _enumerated_mann_whitney_p(a, b):
    """Every split of the pooled values into |a| and |b|, U on mid-ranks: the exact two-sided p."""
    pooled = np.asarray([*a, *b], dtype=float)
    ranks = sps.rankdata(pooled)
    n = len(a)
    observed = ranks[:n].sum() - n * (n + 1) / 2
    null = np.array([ranks[list(chosen)].sum() - n * (n + 1) / 2
                     for chosen in itertools.combinations(range(pooled.size), n)])
    return min(1.0, 2 * min(np.mean(null <= observed + 1e-9), np.mean(null >= observed - 1e-9)))


@pytest.mark.parametrize("a, b", [
    ([0.91, 0.91, 0.92, 0.92], [0.90, 0.90, 0.90, 0.89]),  # separated, with ties inside each side
    ([0.90, 0.91, 0.91, 0.92], [0.90, 0.90, 0.91, 0.89]),  # ties across the sides
    ([0.5, 0.5, 0.5, 0.6], [0.5, 0.5, 0.6, 0.6]),
    ([0.93, 0.91, 0.91, 0.92, 0.95], [0.90, 0.91, 0.89, 0.90]),
])
def test_mann_whitney_with_ties_is_the_exact_permutation_p(a, b):
    p = mann_whitney_p(a, b)
    assert p == pytest.approx(_enumerated_mann_whitney_p(a, b), rel=1e-12)
    assert p >= smallest_rank_test_p(len(a), len(b)) * (1 - 1e-12)


def test_mann_whitney_with_ties_never_goes_below_the_smallest_rank_test_p():
    # the normal approximation gives 0.0247 here, below the 2/70 no split of 4 vs 4 can beat
    assert mann_whitney_p([0.91, 0.91, 0.92, 0.92], [0.90, 0.90, 0.90, 0.89]) == \
        pytest.approx(2 / 70)


def test_mann_whitney_of_large_samples_with_ties_is_scipys_normal_approximation():
    rng = np.random.default_rng(3)
    a, b = np.round(rng.normal(0.9, 0.01, 12), 2), np.round(rng.normal(0.905, 0.01, 12), 2)
    assert np.unique(np.concatenate([a, b])).size < 24  # ties
    assert mann_whitney_p(a, b) == pytest.approx(
        sps.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue)


@pytest.mark.parametrize("n, m, expected", [(3, 3, 0.1), (4, 4, 2 / 70), (2, 2, 1 / 3), (1, 1, 1.0)])
def test_smallest_rank_test_p(n, m, expected):
    assert smallest_rank_test_p(n, m) == pytest.approx(expected)
    assert smallest_rank_test_p(n, m) == pytest.approx(min(1, 2 / comb(n + m, n)))


def test_holm_by_hand():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06 monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_leaves_nan_out_of_the_family():
    # family of two: 0.02 x2 = 0.04, 0.6 x1 = 0.6; the nan is not counted
    assert holm([0.6, math.nan, 0.02]) == pytest.approx([0.6, math.nan, 0.04], nan_ok=True)
    assert holm([0.5, 0.7, 0.9]).tolist() == [1.0, 1.0, 1.0]
    assert holm([]).size == 0


def test_cohens_d_by_hand():
    # means 3 and 5; variances 2.5 and 2.5 -> pooled sd sqrt(2.5)
    assert cohens_d([1, 2, 3, 4, 5], [3, 4, 5, 6, 7]) == pytest.approx(-2 / math.sqrt(2.5))
    # unequal sizes: means 2 and 5, variances 1 (n=3) and 2 (n=2): pooled (2*1 + 1*2) / 3 = 4/3
    assert cohens_d([1, 2, 3], [4, 6]) == pytest.approx(-3 / math.sqrt(4 / 3))
    assert math.isnan(cohens_d([1.0], [2.0]))


def test_cohens_dz_by_hand():
    # differences 1, 2, 3: mean 2, sd 1
    assert cohens_dz([2, 4, 6], [1, 2, 3]) == pytest.approx(2.0)
    assert math.isnan(cohens_dz([1.0], [2.0]))


def test_power_against_textbook_values():
    # Cohen (1988): d = 0.5 needs 64 per group for 80 % power (two-sided, alpha .05); d = 1.0 needs 17
    assert power_two_sample(0.5, 64) == pytest.approx(0.80, abs=0.005)
    assert runs_for_power(0.5) == 64
    assert runs_for_power(1.0) == 17
    assert runs_for_power(-1.0) == 17
    assert power_two_sample(0.0, 10) == pytest.approx(0.05)


def test_paired_power_is_the_one_sample_power_from_the_noncentral_t():
    dz, n = 0.8, 12
    critical = sps.t.ppf(0.975, n - 1)
    expected = 1 - sps.nct.cdf(critical, n - 1, dz * math.sqrt(n)) + sps.nct.cdf(
        -critical, n - 1, dz * math.sqrt(n))
    assert power_paired(dz, n) == pytest.approx(expected)
    needed = runs_for_power(dz, paired=True)
    assert power_paired(dz, int(needed)) >= 0.8 > power_paired(dz, int(needed) - 1)


def test_runs_for_power_when_out_of_reach_or_undefined():
    assert runs_for_power(0.001, max_runs=10_000) == math.inf
    assert math.isnan(runs_for_power(0.0)) and math.isnan(runs_for_power(math.nan))
    assert runs_for_power(10.0) == 2


def test_power_stays_defined_for_large_samples():
    # scipy's nct.cdf is nan far in the lower tail; the power must not be
    assert power_paired(1.0, 100) == pytest.approx(1.0)
    assert power_two_sample(1.0, 1000) == pytest.approx(1.0)


def test_ratio_of_medians_bootstrap_is_scipys_and_reproducible():
    rng = np.random.default_rng(1)
    numerator, denominator = rng.lognormal(0.3, 0.1, 40), rng.lognormal(0.0, 0.1, 50)
    ratio, low, high = ratio_of_medians_ci(numerator, denominator, resamples=500, seed=3)
    assert ratio == pytest.approx(np.median(numerator) / np.median(denominator))
    reference = sps.bootstrap(
        (numerator, denominator), lambda a, b, axis: np.median(a, axis=axis) / np.median(b, axis=axis),
        n_resamples=500, vectorized=True, paired=False, axis=-1, method="percentile",
        random_state=np.random.default_rng(3)).confidence_interval
    assert (low, high) == (pytest.approx(reference.low), pytest.approx(reference.high))
    assert low < ratio < high
    assert ratio_of_medians_ci(numerator, denominator, resamples=500, seed=3) == (ratio, low, high)


def test_ratio_of_medians_with_a_single_sample_has_no_interval():
    ratio, low, high = ratio_of_medians_ci([2.0], [1.0, 1.0, 1.0])
    assert ratio == 2.0 and math.isnan(low) and math.isnan(high)


def test_ratio_ci_from_intervals_combines_log_half_widths_in_quadrature():
    # numerator 2 in [2/e^0.3, 2 e^0.3], denominator 1 in [e^-0.4, e^0.4]: log half-width 0.5
    ratio, low, high = ratio_ci_from_intervals(2.0, 2 * math.exp(-0.3), 2 * math.exp(0.3),
                                               1.0, math.exp(-0.4), math.exp(0.4))
    assert ratio == 2.0
    assert (low, high) == (pytest.approx(2 * math.exp(-0.5)), pytest.approx(2 * math.exp(0.5)))
    assert math.isnan(ratio_ci_from_intervals(1.0, 0.0, 2.0, 1.0, 0.9, 1.1)[1])

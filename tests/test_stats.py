"""Statistics against scipy/numpy and hand-computed cases."""

import numpy as np
import pytest
from scipy.stats import binom

from actbench.stats import median_ci_ranks, summarize


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

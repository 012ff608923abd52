"""Pure statistics on raw numbers: no I/O, no units, no torch.

Each function's docstring names the definition it uses, so a reader can check it against a textbook.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Summary:
    """Location and spread of a sample of timings (or any positive numbers)."""

    n: int
    median: float
    mean: float
    minimum: float
    maximum: float
    q1: float
    q3: float
    ci_low: float  # confidence interval of the median
    ci_high: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def iqr_rel(self) -> float:
        """IQR / median: torch.utils.benchmark's noise measure."""
        return self.iqr / self.median if self.median else math.inf

    @property
    def ci_rel_halfwidth(self) -> float:
        """Half the width of the median's confidence interval relative to the median."""
        return (self.ci_high - self.ci_low) / 2 / self.median if self.median else math.inf


# Below this many samples no pair of order statistics covers the median with 95 %: its interval
# is the whole range (median_ci_ranks), so no interval is shown or derived from it.
MIN_SAMPLES_FOR_INTERVAL = 6


@lru_cache(maxsize=4096)
def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int]:
    """0-based ranks (lo, hi) of the order statistics bounding the median's distribution-free CI.

    The number of samples below the true median is Binomial(n, 1/2); the interval
    [x_(lo), x_(hi)] covers the median with probability >= `confidence` (Conover, Practical
    Nonparametric Statistics, 3rd ed., §3.2): the narrowest symmetric pair of ranks whose coverage
    is at least `confidence`. For n < 6 at 95 % none exists and the full range is returned.
    """
    from scipy.stats import binom

    if n < 1:
        raise ValueError("need at least one sample")

    def covers(lo: int) -> bool:  # [x_(lo), x_(n-1-lo)] holds the median iff lo < B <= n-1-lo
        return lo >= 0 and binom.cdf(n - 1 - lo, n, 0.5) - binom.cdf(lo, n, 0.5) >= confidence

    lo = min(max(int(binom.ppf((1 - confidence) / 2, n, 0.5)) - 1, 0), (n - 1) // 2)
    while lo > 0 and not covers(lo):
        lo -= 1
    while lo + 1 <= (n - 1) // 2 and covers(lo + 1):
        lo += 1
    hi = n - 1 - lo  # lo = 0 when no interval covers: the full range
    return lo, hi


def summarize(samples: Sequence[float], confidence: float = 0.95) -> Summary:
    """Median, mean, extremes, quartiles (numpy's linear interpolation) and the median's CI."""
    values = np.sort(np.asarray(samples, dtype=float))
    if values.size == 0:
        raise ValueError("need at least one sample")
    lo, hi = median_ci_ranks(values.size, confidence)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return Summary(n=int(values.size), median=float(median), mean=float(values.mean()),
                   minimum=float(values[0]), maximum=float(values[-1]), q1=float(q1), q3=float(q3),
                   ci_low=float(values[lo]), ci_high=float(values[hi]))


# -- comparing two sets of runs (seeds): means, tests, corrections, effect sizes, power -----------

def _values(sample: Sequence[float]) -> np.ndarray:
    return np.asarray(sample, dtype=float).ravel()


@dataclass(frozen=True)
class MeanCI:
    """Mean of a sample with its sample standard deviation and t confidence interval."""

    n: int
    mean: float
    std: float  # ddof=1; nan for n < 2
    ci_low: float  # nan for n < 2
    ci_high: float


def mean_ci(sample: Sequence[float], confidence: float = 0.95) -> MeanCI:
    """Mean ± Student's t interval: mean ± t_{(1+c)/2, n-1} · s / √n (scipy.stats.t.interval).

    n = 1 gives a nan standard deviation and interval, n = 0 nan everywhere.
    """
    from scipy.stats import t

    values = _values(sample)
    n = int(values.size)
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if n < 2:
        return MeanCI(1, mean, math.nan, math.nan, math.nan)
    std = float(values.std(ddof=1))
    if std == 0:
        return MeanCI(n, mean, 0.0, mean, mean)
    low, high = t.interval(confidence, n - 1, loc=mean, scale=std / math.sqrt(n))
    return MeanCI(n, mean, std, float(low), float(high))


@dataclass(frozen=True)
class TTest:
    """A two-sided t-test of a difference of means, with the difference's confidence interval."""

    statistic: float
    df: float
    p_value: float
    diff: float  # mean(a) - mean(b); for paired data the mean of the differences (the same number)
    ci_low: float
    ci_high: float


def welch_t_test(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> TTest:
    """Welch's unequal-variance t-test, two-sided (scipy.stats.ttest_ind(equal_var=False)).

    The interval is diff ± t_{(1+c)/2, ν} · se with se = √(s_a²/n_a + s_b²/n_b) and the
    Welch-Satterthwaite degrees of freedom ν = se⁴ / ((s_a²/n_a)²/(n_a-1) + (s_b²/n_b)²/(n_b-1))
    (written out because scipy < 1.11 has no interval for it). Needs two runs on each side.
    """
    from scipy.stats import t, ttest_ind

    x, y = _values(a), _values(b)
    if x.size < 2 or y.size < 2:
        raise ValueError("Welch's t-test needs at least two values on each side")
    diff = float(x.mean() - y.mean())
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(va + vb)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero variance on both sides: nan
        result = ttest_ind(x, y, equal_var=False)
        df = float(se ** 4 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))) if se else math.nan
    if se == 0:
        return TTest(float(result.statistic), df, float(result.pvalue), diff, diff, diff)
    low, high = t.interval(confidence, df, loc=diff, scale=se)
    return TTest(float(result.statistic), df, float(result.pvalue), diff, float(low), float(high))


def paired_t_test(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> TTest:
    """Paired t-test, two-sided (scipy.stats.ttest_rel): a one-sample t-test of the differences a_i - b_i.

    The interval is the t interval of the mean difference (`mean_ci` of the differences).
    """
    from scipy.stats import ttest_rel

    x, y = _values(a), _values(b)
    if x.size != y.size or x.size < 2:
        raise ValueError("a paired t-test needs two samples of the same size, at least two pairs")
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical differences: nan
        result = ttest_rel(x, y)
    interval = mean_ci(x - y, confidence)
    return TTest(float(result.statistic), float(x.size - 1), float(result.pvalue), interval.mean,
                 interval.ci_low, interval.ci_high)


EXACT_RANK_TEST_LIMIT = 20_000  # splits of the pooled runs enumerated for an exact test: 8 vs 8


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U test's p-value: 2 · min(P(U <= u), P(U >= u)), capped at 1.

    Exact while the C(n+m, n) ways to split the pooled values number at most
    EXACT_RANK_TEST_LIMIT (up to 8 vs 8): without ties scipy's exact null distribution of U
    (mannwhitneyu, method "exact"); with ties the permutation distribution of U on mid-ranks, every
    split enumerated by scipy.stats.permutation_test. (scipy's normal approximation, its choice
    under ties, is anti-conservative for such small samples and can fall below the 2 / C(n+m, n)
    no split can beat.) Larger samples: scipy's choice, the normal approximation with tie and
    continuity correction where there are ties.
    """
    from scipy.special import comb
    from scipy.stats import mannwhitneyu, permutation_test

    x, y = _values(a), _values(b)
    pooled = np.concatenate([x, y])
    if x.size == 0 or y.size == 0 or comb(pooled.size, x.size, exact=True) > EXACT_RANK_TEST_LIMIT:
        return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)
    if np.unique(pooled).size == pooled.size:
        return float(mannwhitneyu(x, y, alternative="two-sided", method="exact").pvalue)
    result = permutation_test((x, y), _u_statistic, permutation_type="independent",
                              vectorized=True, n_resamples=np.inf, alternative="two-sided", axis=-1)
    return float(result.pvalue)


def _u_statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """U of the first sample, R_x - n_x(n_x+1)/2 with mid-ranks for ties, along `axis`."""
    from scipy.stats import rankdata

    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    ranks = rankdata(np.concatenate([x, y], axis=-1), axis=-1)
    n = x.shape[-1]
    return ranks[..., :n].sum(axis=-1) - n * (n + 1) / 2


def smallest_rank_test_p(n: int, m: int) -> float:
    """The smallest two-sided p-value a rank test can reach with n vs m runs: 2 / C(n+m, n), at most 1.

    Complete separation of the two samples is the most extreme of the C(n+m, n) equally likely
    rankings under the null hypothesis, in each direction.
    """
    from scipy.special import comb

    if n < 1 or m < 1:
        return 1.0
    return min(1.0, 2.0 / float(comb(n + m, n, exact=True)))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): sorted ascending, p_(i) · (k - i + 1),
    made monotone by a running maximum and capped at 1. nan stays nan and is not in the family of k."""
    p = _values(p_values)
    adjusted = np.full(p.shape, math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    k = order.size
    scaled = p[order] * (k - np.arange(k))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """Cohen's d: (mean(a) - mean(b)) / s_pooled, s_pooled² = ((n_a-1)s_a² + (n_b-1)s_b²) / (n_a+n_b-2).

    nan when the pooled standard deviation is undefined (fewer than three values) or zero.
    """
    x, y = _values(a), _values(b)
    dof = x.size + y.size - 2
    if x.size < 1 or y.size < 1 or dof < 1:
        return math.nan
    pooled = ((x.size - 1) * (x.var(ddof=1) if x.size > 1 else 0.0)
              + (y.size - 1) * (y.var(ddof=1) if y.size > 1 else 0.0)) / dof
    return float((x.mean() - y.mean()) / math.sqrt(pooled)) if pooled > 0 else math.nan


def cohens_dz(a: Sequence[float], b: Sequence[float]) -> float:
    """Cohen's d_z for paired data: mean(a_i - b_i) / sd(a_i - b_i) (ddof=1); nan for < 2 pairs or sd 0."""
    differences = _values(a) - _values(b)
    if differences.size < 2:
        return math.nan
    sd = differences.std(ddof=1)
    return float(differences.mean() / sd) if sd > 0 else math.nan


def power_two_sample(d: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided two-sample t-test with n runs per group at effect size d (Cohen's d).

    P(|T| > t_{1-α/2, 2n-2}) with T ~ noncentral t(2n-2, d·√(n/2)) (scipy.stats.nct).
    """
    from scipy.stats import t

    if n < 2 or not math.isfinite(d):
        return math.nan
    dof = 2 * n - 2
    return _two_sided_power(t.ppf(1 - alpha / 2, dof), dof, abs(d) * math.sqrt(n / 2))


def power_paired(dz: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired (one-sample) t-test with n pairs at effect size d_z.

    P(|T| > t_{1-α/2, n-1}) with T ~ noncentral t(n-1, d_z·√n) (scipy.stats.nct).
    """
    from scipy.stats import t

    if n < 2 or not math.isfinite(dz):
        return math.nan
    return _two_sided_power(t.ppf(1 - alpha / 2, n - 1), n - 1, abs(dz) * math.sqrt(n))


def _two_sided_power(critical: float, dof: int, noncentrality: float) -> float:
    """P(T > c) + P(T < -c); the lower tail as P(T' > c) with T' ~ nct(dof, -noncentrality), the
    same number by symmetry, because scipy's nct.cdf returns nan far in the tail."""
    from scipy.stats import nct

    return float(nct.sf(critical, dof, noncentrality) + nct.sf(critical, dof, -noncentrality))


def runs_for_power(effect: float, *, paired: bool = False, power: float = 0.8, alpha: float = 0.05,
                   max_runs: int = 10_000) -> float:
    """Smallest n >= 2 (runs per group, or pairs when `paired`) whose two-sided t-test reaches `power`
    at the effect size (Cohen's d, or d_z when paired), by search over n (power grows with n).

    Returns n as a float; inf when even `max_runs` is not enough ("more than max_runs"), nan when the
    effect is zero or undefined.
    """
    if not math.isfinite(effect) or effect == 0:
        return math.nan
    power_at = (lambda n: power_paired(effect, n, alpha)) if paired else \
        (lambda n: power_two_sample(effect, n, alpha))
    if power_at(2) >= power:
        return 2.0
    if power_at(max_runs) < power:
        return math.inf
    low, high = 2, max_runs  # power_at(low) < power <= power_at(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if power_at(middle) >= power else (middle, high)
    return float(high)


# -- ratios of medians (micro timings) ----------------------------------------------------------

def ratio_of_medians_ci(numerator: Sequence[float], denominator: Sequence[float],
                        confidence: float = 0.95, resamples: int = 2000,
                        seed: int = 0) -> tuple[float, float, float]:
    """median(numerator) / median(denominator) with a percentile bootstrap interval.

    The two samples are independent and resampled separately (scipy.stats.bootstrap, paired=False,
    method "percentile"); a seeded numpy Generator makes the interval reproducible. A side with a
    single sample has no spread to resample: the bounds are then nan.
    """
    from scipy.stats import bootstrap

    x, y = _values(numerator), _values(denominator)
    if x.size == 0 or y.size == 0:
        raise ValueError("need at least one sample on each side")

    def ratio(a, b, axis=-1):
        return np.median(a, axis=axis) / np.median(b, axis=axis)

    estimate = float(ratio(x, y))
    if x.size < 2 or y.size < 2:
        return estimate, math.nan, math.nan
    generator = np.random.default_rng(seed)
    seeding = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    with np.errstate(divide="ignore", invalid="ignore"):
        # resampled in batches of about 4 M values, so long sample series stay within memory
        batch = max(1, min(resamples, 2**22 // max(x.size, y.size)))
        result = bootstrap((x, y), ratio, n_resamples=resamples, vectorized=True, paired=False,
                           axis=-1, confidence_level=confidence, method="percentile",
                           batch=batch, **{seeding: generator})
    interval = result.confidence_interval
    return estimate, float(interval.low), float(interval.high)


def ratios_of_medians_ci(numerators: Sequence[Sequence[float]],
                         denominators: Sequence[Sequence[float]], confidence: float = 0.95,
                         resamples: int = 2000,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ratio_of_medians_ci for many pairs of samples at once: the same numbers, as arrays.

    Each pair is resampled from the same seed, so all pairs of the same two sizes draw the same
    positions (in the order scipy.stats.bootstrap draws them: per batch, the numerator's then the
    denominator's). They are drawn once per pair of sizes and kept as counts (how often each
    position is drawn in each resample); the median of a resample is then read off the sorted
    sample where the counts, summed in sorted order, reach the median's rank, for every resample
    of a block of pairs at once (_resampled_medians), without building the resamples. The
    percentile interval is taken as scipy.stats.bootstrap takes it. Pairs with a nan sample, or
    a side with a single sample, go through ratio_of_medians_ci one at a time.
    """
    pairs = [(_values(a), _values(b)) for a, b in zip(numerators, denominators, strict=True)]
    estimates, lows, highs = (np.full(len(pairs), math.nan) for _ in range(3))
    by_sizes: dict[tuple[int, int], list[int]] = {}
    for index, (x, y) in enumerate(pairs):
        if x.size == 0 or y.size == 0:
            raise ValueError("need at least one sample on each side")
        if x.size < 2 or y.size < 2 or np.isnan(x).any() or np.isnan(y).any():
            estimates[index], lows[index], highs[index] = ratio_of_medians_ci(
                x, y, confidence=confidence, resamples=resamples, seed=seed)
        else:
            by_sizes.setdefault((x.size, y.size), []).append(index)
    for (nx, ny), indices in by_sizes.items():
        counts_x, counts_y = _resample_counts(nx, ny, resamples, seed)
        step = max(1, 2**22 // resamples)  # (pairs, resamples) arrays of about 4 M entries
        for start in range(0, len(indices), step):
            chunk = indices[start:start + step]
            x = np.stack([pairs[i][0] for i in chunk])
            y = np.stack([pairs[i][1] for i in chunk])
            with np.errstate(divide="ignore", invalid="ignore"):
                estimates[chunk] = np.median(x, axis=1) / np.median(y, axis=1)
                theta = _resampled_medians(x, counts_x) / _resampled_medians(y, counts_y)
            lows[chunk], highs[chunk] = _percentile_interval(theta, confidence)
    return estimates, lows, highs


def _count_type(n: int) -> type:
    """The smallest integer type that holds a count (and a running sum of counts) up to n."""
    return np.int8 if n <= 127 else np.int16 if n <= 32767 else np.int32


def _resample_counts(nx: int, ny: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, resamples) counts of each position drawn, for both sides, drawn as
    ratio_of_medians_ci draws them (the same generator, batches and order)."""
    generator = np.random.default_rng(seed)
    batch = max(1, min(resamples, 2**22 // max(nx, ny)))
    counts = [np.zeros((resamples, n), dtype=_count_type(n)) for n in (nx, ny)]
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        for n, target in zip((nx, ny), counts):
            drawn = generator.integers(0, n, (size, n))
            flat = (drawn + n * np.arange(size)[:, None]).ravel()
            target[start:start + size] = np.bincount(flat, minlength=size * n).reshape(size, n)
    return np.ascontiguousarray(counts[0].T), np.ascontiguousarray(counts[1].T)


def _resampled_medians(samples: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(pairs, resamples): np.median of each resample of each row of `samples` (pairs, n), the
    resamples given as draw counts per position, transposed: (n, resamples).

    The k-th smallest value of a resample is the sorted sample's value at the number of sorted
    positions whose running count of draws is still below k."""
    rows, n = samples.shape
    order = np.argsort(samples, axis=1, kind="stable")
    ordered = np.take_along_axis(samples, order, axis=1)
    ranks = (n // 2 + 1,) if n % 2 else (n // 2, n // 2 + 1)  # the median's order statistics
    running = np.zeros((rows, counts.shape[1]), dtype=counts.dtype)
    below = [np.zeros_like(running) for _ in ranks]
    for position in range(n):
        running += counts[order[:, position]]
        for rank, count in zip(ranks, below):
            count += running < rank
    starts = (np.arange(rows) * n)[:, None]  # each row's first value in the flattened samples
    values = [np.take(ordered.ravel(), count + starts) for count in below]
    return values[0] if n % 2 else (values[0] + values[1]) / 2


def _percentile_interval(theta: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of each row's bootstrap distribution, with the levels and the
    quantile function scipy.stats.bootstrap uses (scipy.stats.quantile where scipy has it)."""
    alpha = (1 - confidence) / 2
    try:
        from scipy.stats import quantile
    except ImportError:  # older scipy: numpy's percentile, as its bootstrap used
        low, high = np.percentile(theta, [alpha * 100, (1 - alpha) * 100], axis=-1)
        return low, high
    bounds = quantile(theta, np.array([alpha, 1 - alpha]), axis=-1)
    return bounds[..., 0], bounds[..., 1]


def ratio_ci_from_intervals(numerator: float, numerator_low: float, numerator_high: float,
                            denominator: float, denominator_low: float,
                            denominator_high: float) -> tuple[float, float, float]:
    """numerator / denominator with an interval built from each median's own interval (no samples).

    An approximation: each interval is taken as symmetric in log space with half-width
    h = (ln high - ln low) / 2 at the same confidence, the two errors as independent, so the
    log-ratio's half-width is √(h_num² + h_den²) (exact for independent normal log-estimates) and
    the interval is ratio · exp(∓h). Asymmetric intervals are thereby symmetrised; non-positive
    or non-finite values give nan bounds (and a zero denominator a nan ratio).
    """
    ratio, low, high = ratios_from_intervals(
        *(np.array([value], dtype=float) for value in (numerator, numerator_low, numerator_high,
                                                       denominator, denominator_low,
                                                       denominator_high)))
    return float(ratio[0]), float(low[0]), float(high[0])


def ratios_from_intervals(numerator, numerator_low, numerator_high, denominator, denominator_low,
                          denominator_high) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ratio_ci_from_intervals for arrays of the six values (element by element)."""
    values = [np.asarray(v, dtype=float) for v in (numerator, numerator_low, numerator_high,
                                                   denominator, denominator_low, denominator_high)]
    num, num_low, num_high, den, den_low, den_high = values
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(den != 0, num / np.where(den != 0, den, 1.0), math.nan)
        usable = np.logical_and.reduce([np.isfinite(v) & (v > 0) for v in values])
        safe = [np.where(usable, v, 1.0) for v in values]
        half = np.hypot((np.log(safe[2]) - np.log(safe[1])) / 2,
                        (np.log(safe[5]) - np.log(safe[4])) / 2)
    low = np.where(usable, ratio * np.exp(-half), math.nan)
    high = np.where(usable, ratio * np.exp(half), math.nan)
    return ratio, low, high

"""Pure statistics on raw numbers: no I/O, no units, no torch.

Each function's docstring names the definition it uses, so a reader can check it against a textbook.
"""

from __future__ import annotations

import math
from functools import lru_cache
from collections.abc import Sequence
from dataclasses import dataclass

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
    lo, hi = 0, n - 1
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

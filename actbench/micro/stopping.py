"""When to stop warming up and when to stop sampling.

Sampling stops when the median is known well enough (its 95 % confidence interval's half-width
relative to the median is under `target_rsd`), with at least `min_samples` samples and
`min_time` seconds of sampling, or when `max_time` runs out; a result stopped by the time limit is
kept and flagged noisy. The rule only sees numbers, so tests drive it with known samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..stats import Summary, summarize


@dataclass(frozen=True)
class StoppingRule:
    target_rsd: float = 0.02
    min_samples: int = 10
    min_time: float = 0.0
    max_time: float = 1.0

    def converged(self, samples: list[float], elapsed: float) -> bool:
        if len(samples) < self.min_samples or elapsed < self.min_time:
            return False
        return summarize(samples).ci_rel_halfwidth <= self.target_rsd

    def done(self, samples: list[float], elapsed: float) -> bool:
        return elapsed >= self.max_time or self.converged(samples, elapsed)


@dataclass(frozen=True)
class WarmupRule:
    """Warm up for at least `min_time` and until the latest sample is within `tolerance` of the
    running median of the warm-up samples (caches, clocks and lazy initialisation have settled);
    never longer than `max_time`."""

    min_time: float = 0.1
    min_samples: int = 3
    tolerance: float = 0.1
    max_time: float = 0.5

    def done(self, samples: list[float], elapsed: float) -> bool:
        if elapsed >= self.max_time:
            return True
        if elapsed < self.min_time or len(samples) < self.min_samples:
            return False
        running = summarize(samples[:-1]).median
        return abs(samples[-1] - running) <= self.tolerance * running


@dataclass
class SampleSeries:
    """The samples of one configuration as they accumulate over interleaved rounds."""

    stopping: StoppingRule
    warmup: WarmupRule = field(default_factory=WarmupRule)
    warmup_samples: list[float] = field(default_factory=list)
    warmup_time: float = 0.0
    samples: list[float] = field(default_factory=list)
    sampling_time: float = 0.0
    warm: bool = False
    finished: bool = False

    def add(self, seconds_per_call: float, wall_seconds: float) -> None:
        """Record one sample; `wall_seconds` is what it cost (all calls, flushes and syncs)."""
        if not self.warm:
            self.warmup_samples.append(seconds_per_call)
            self.warmup_time += wall_seconds
            self.warm = self.warmup.done(self.warmup_samples, self.warmup_time)
            return
        self.samples.append(seconds_per_call)
        self.sampling_time += wall_seconds
        self.finished = self.stopping.done(self.samples, self.sampling_time)

    @property
    def converged(self) -> bool:
        return self.stopping.converged(self.samples, self.sampling_time)

    def summary(self) -> Summary | None:
        return summarize(self.samples) if self.samples else None

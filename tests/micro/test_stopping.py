"""The stopping and warm-up rules driven by known samples and a fake clock."""

import itertools

from actbench.micro.stopping import SampleSeries, StoppingRule, WarmupRule


def feed(series: SampleSeries, values, cost: float):
    """Add samples until the series finishes; each sample 'costs' `cost` seconds of fake clock."""
    for value in values:
        series.add(value, cost)
        if series.finished:
            break
    return series


def test_steady_samples_converge_after_the_minimum_count():
    rule = StoppingRule(target_rsd=0.02, min_samples=10, max_time=100.0)
    series = SampleSeries(rule, WarmupRule(min_time=0.0, min_samples=1, max_time=0.0))
    feed(series, itertools.repeat(1e-3), cost=0.01)
    assert series.finished and series.converged
    assert len(series.samples) == 10


def test_noisy_samples_stop_at_max_time_and_are_not_converged():
    rule = StoppingRule(target_rsd=0.02, min_samples=10, max_time=1.0)
    series = SampleSeries(rule, WarmupRule(min_time=0.0, min_samples=1, max_time=0.0))
    alternating = itertools.cycle([1.0, 2.0, 4.0, 0.5])  # the median's CI never narrows to 2 %
    feed(series, alternating, cost=0.125)
    assert series.finished and not series.converged
    assert len(series.samples) == 8  # 8 samples x 0.125 s reach max_time


def test_min_time_keeps_sampling_after_convergence():
    rule = StoppingRule(target_rsd=0.02, min_samples=10, min_time=1.0, max_time=10.0)
    series = SampleSeries(rule, WarmupRule(min_time=0.0, min_samples=1, max_time=0.0))
    feed(series, itertools.repeat(1.0), cost=0.0625)
    assert series.converged and len(series.samples) == 16


def test_max_time_wins_over_min_samples():
    rule = StoppingRule(min_samples=10, max_time=0.375)
    series = SampleSeries(rule, WarmupRule(min_time=0.0, min_samples=1, max_time=0.0))
    feed(series, itertools.repeat(1.0), cost=0.125)
    assert series.finished and len(series.samples) == 3 and not series.converged


def test_convergence_needs_a_narrow_median_interval_not_just_many_samples():
    rule = StoppingRule(target_rsd=0.05, min_samples=10, max_time=1e9)
    # 5 % spread around 1.0: half-width of the median's CI must drop below 5 %
    values = itertools.cycle([0.9, 0.95, 1.0, 1.05, 1.1])
    series = SampleSeries(rule, WarmupRule(min_time=0.0, min_samples=1, max_time=0.0))
    feed(series, values, cost=0.0)
    summary = series.summary()
    assert series.converged
    assert summary.ci_rel_halfwidth <= 0.05


def test_warmup_discards_slow_first_calls_until_the_median_settles():
    rule = StoppingRule(min_samples=10, max_time=100.0)
    series = SampleSeries(rule, WarmupRule(min_time=0.1, min_samples=3, tolerance=0.1, max_time=5.0))
    values = [5.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0] + [1.0] * 100
    feed(series, values, cost=0.05)
    assert series.warmup_samples[:3] == [5.0, 3.0, 1.0]
    assert 5.0 not in series.samples and 3.0 not in series.samples
    assert series.warmup_time >= 0.1


def test_warmup_ends_at_its_time_limit_even_when_unsettled():
    warm = WarmupRule(min_time=0.1, min_samples=3, tolerance=0.01, max_time=0.5)
    series = SampleSeries(StoppingRule(), warm)
    for value in itertools.cycle([1.0, 2.0]):
        series.add(value, 0.125)
        if series.warm:
            break
    assert series.warmup_time == 0.5 and not series.samples

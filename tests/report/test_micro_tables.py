"""The micro command's tables: the fastest median is highlighted only when it is clearly fastest."""

from __future__ import annotations

import math

import pytest

from actbench.report.micro_tables import NO_SIGNIFICANT_BEST, micro_table, significant_best


@pytest.mark.parametrize("values, lows, highs, higher, expected", [
    ([2.0, 1.0, 3.0], [1.9, 0.9, 2.9], [2.1, 1.1, 3.1], False, 1),  # clear of the runner-up
    ([2.0, 1.0, 3.0], [1.9, 0.9, 2.9], [2.1, 1.1, 3.1], True, 2),
    ([2.0, 1.0], [1.9, 0.9], [2.1, 1.95], False, None),  # intervals overlap
    ([2.0, 1.0], [1.9, 0.9], [2.1, 1.9], False, None),  # touching is overlapping
    ([1.0, 1.0, 3.0], [0.9, 0.9, 2.9], [1.1, 1.1, 3.1], False, None),  # a tie
    ([1.0], [0.9], [1.1], False, None),  # nothing to be better than
    ([2.0, 1.0], [1.9, math.nan], [2.1, 1.1], False, None),  # no interval: no claim
    ([None, 1.0, 2.0], [None, 0.9, 1.9], [None, 1.1, 2.1], False, 1),  # missing values skipped
])
def test_significant_best(values, lows, highs, higher, expected):
    assert significant_best(values, lows, highs, higher_is_better=higher) == expected


def row(activation: str, median: float, low: float, high: float) -> dict:
    return {"activation": activation, "impl": "native", "device": "cpu", "dtype": "float32",
            "shape": "1024", "numel": 1024, "pass": "fwd", "median_s": median,
            "ci_low_s": low, "ci_high_s": high, "iqr_pct": 1.0}


def medians(table) -> list[str]:
    column = next(c for c in table.columns if c.header == "median")
    return list(column._cells)


def test_clear_fastest_median_is_highlighted():
    table = micro_table(("cpu", "float32", "1024", "fwd"),
                        [row("mish", 2e-6, 1.9e-6, 2.1e-6), row("relu", 1e-6, 0.9e-6, 1.1e-6)],
                        "relu")
    assert medians(table) == ["[bold green]1.0 µs[/]", "2.0 µs"]
    assert table.caption is None


def test_fastest_median_within_noise_is_not_highlighted():
    table = micro_table(("cpu", "float32", "1024", "fwd"),
                        [row("mish", 1.05e-6, 0.95e-6, 1.15e-6), row("relu", 1e-6, 0.9e-6, 1.1e-6)],
                        "relu")
    assert not any("bold green" in cell for cell in medians(table))
    assert table.caption == NO_SIGNIFICANT_BEST

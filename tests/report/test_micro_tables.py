"""The micro command's tables: the fastest median is highlighted only when it is clearly fastest."""

from __future__ import annotations

import math

import pytest

from actbench.report.micro_tables import (GATED_NOTE, NO_SIGNIFICANT_BEST, micro_table, micro_tables,
                                         significant_best, summary_lines)


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
    assert medians(table) == ["2.0 µs", "[bold green]1.0 µs[/]"]  # rows keep their given order
    assert table.caption is None


def test_fastest_median_within_noise_is_not_highlighted():
    table = micro_table(("cpu", "float32", "1024", "fwd"),
                        [row("mish", 1.05e-6, 0.95e-6, 1.15e-6), row("relu", 1e-6, 0.9e-6, 1.1e-6)],
                        "relu")
    assert not any("bold green" in cell for cell in medians(table))
    assert table.caption == NO_SIGNIFICANT_BEST


def measured(activation, impl, numel, pass_, median, low=None, high=None, flags="", roofline=0.5):
    return {"activation": activation, "impl": impl, "device": "cpu", "dtype": "float32",
            "shape": str(numel), "numel": str(numel), "pass": pass_, "median_s": str(median),
            "ci_low_s": str(low if low is not None else median * 0.99),
            "ci_high_s": str(high if high is not None else median * 1.01), "flags": flags,
            "roofline_frac": str(roofline)}


def table_titles_and_rows(tables):
    from rich.console import Console

    console = Console(width=200, record=True)
    layout = []
    for table in tables:
        names = [f"{a} {i}" for a, i in zip(table.columns[0]._cells, table.columns[1]._cells)]
        layout.append((table.title, names))
        console.print(table)
    return layout, console.export_text()


def test_tables_keep_one_order_whatever_order_rows_finished_in():
    rows = [measured("mish", "native", 4096, "fwdbwd", 3e-5), measured("relu", "native", 1024, "fwd", 1e-6),
            measured("silu", "native", 4096, "fwd", 2e-6), measured("mish", "native", 1024, "fwd", 3e-6),
            measured("relu", "native", 4096, "fwdbwd", 1e-5), measured("silu", "native", 1024, "fwd", 2e-6),
            measured("relu", "native", 4096, "fwd", 1e-6), measured("mish", "native", 4096, "fwd", 3e-6),
            measured("silu", "native", 4096, "fwdbwd", 2e-5)]
    layout, _ = table_titles_and_rows(micro_tables(rows, "relu", ["relu", "silu", "mish"]))
    assert [title for title, _ in layout] == ["fwd · 1024 · float32 · cpu", "fwd · 4096 · float32 · cpu",
                                              "fwdbwd · 4096 · float32 · cpu"]
    assert all(names == ["relu native", "silu native", "mish native"] for _, names in layout)
    # without the plan's order: the baseline first, then the order of first appearance
    layout, _ = table_titles_and_rows(micro_tables(rows, "relu"))
    assert all(names == ["relu native", "mish native", "silu native"] for _, names in layout)


def test_a_roofline_above_one_says_what_it_is():
    rows = [measured("relu", "native", 1024, "fwd", 1e-6, roofline=1.4, flags="in_cache"),
            measured("silu", "native", 1024, "fwd", 1e-6, roofline=1.2, flags="above_copy"),
            measured("mish", "native", 1024, "fwd", 1e-6, roofline=0.42)]
    _, text = table_titles_and_rows(micro_tables(rows, "relu"))
    assert "in cache" in text and "140 %" not in text
    assert "120 %?" in text and "42 %" in text


def test_summary_line_per_activation_at_the_largest_size_first_pass():
    rows = [measured("relu", "native", 1024, "fwd", 1e-6),
            measured("relu", "native", 2**20, "fwd", 1e-4, 0.9e-4, 1.1e-4),
            measured("relu", "native", 2**20, "fwdbwd", 3e-4),
            measured("mish", "native", 2**20, "fwd", 5e-4, 4.5e-4, 5.5e-4),
            measured("mish", "fast", 2**20, "fwd", 2e-4, 1.8e-4, 2.2e-4),
            measured("silu", "native", 2**20, "fwd", 0.5e-4, 0.49e-4, 0.51e-4),
            measured("gelu", "native", 2**20, "fwd", 1.01e-4, 0.9e-4, 1.1e-4)]
    lines = summary_lines(rows, "relu")
    # mish's fastest implementation: 2x; log half-widths of both intervals combined in quadrature
    half = math.hypot(math.log(2.2 / 1.8) / 2, math.log(1.1 / 0.9) / 2)
    low, high = 2 * math.exp(-half), 2 * math.exp(half)
    assert lines[0] == f"mish (fast): 2.00x ± {(high - low) / 2:.2f} slower than relu (fwd, 2^20, float32, cpu)"
    assert lines[1].startswith("silu: 2.00x ± ") and "faster than relu" in lines[1]
    assert lines[2].startswith("gelu: as fast as (within noise: 1.01x")
    assert summary_lines(rows, "elu") == [] and summary_lines(rows, None) == []


def test_a_table_with_a_gated_activation_says_which_width_its_size_is():
    rows = [row("relu", 1e-6, 0.9e-6, 1.1e-6), row("SwiGLU", 1.5e-6, 1.4e-6, 1.6e-6)]
    table = micro_table(("cpu", "float32", "1024", "fwd"), rows, "relu")
    assert table.caption == GATED_NOTE
    assert "size and shape are the input's, (..., 2h); the output is (..., h)" in GATED_NOTE
    assert "saved is a multiple of the input" in GATED_NOTE
    within_noise = [row("relu", 1e-6, 0.9e-6, 1.1e-6), row("glu", 1.05e-6, 0.95e-6, 1.15e-6)]
    both = micro_table(("cpu", "float32", "1024", "fwd"), within_noise, "relu")
    assert both.caption == f"{NO_SIGNIFICANT_BEST}\n{GATED_NOTE}"

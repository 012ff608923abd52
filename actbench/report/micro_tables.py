"""Micro results as Rich tables: one per (device, dtype, size, pass), the fastest median
highlighted when it is clearly the fastest (`significant_best`).

Channel-wise activations are laid out as (N, C, L) while the others stay flat, so tables group by
number of elements and show a shape column when shapes differ within one table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.table import Table

Row = Mapping[str, Any]


def format_seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def format_bytes(count: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def _number(row: Row, column: str) -> float | None:
    value = row.get(column)
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


NO_SIGNIFICANT_BEST = ("no significant best: the best value's confidence interval overlaps the "
                       "runner-up's")


def significant_best(values: Sequence[float | None], lows: Sequence[float | None],
                     highs: Sequence[float | None], *, higher_is_better: bool) -> int | None:
    """The position of the best value when it is better than the runner-up beyond noise, else None.

    No test of best against runner-up exists among the computed statistics, so this uses interval
    non-overlap: the best's confidence interval must lie entirely on the better side of the
    runner-up's (for lower is better, best high < runner-up low). That is stricter than a test at
    the intervals' level. A tie for best, a single value, or a missing interval on either of the
    two is no significant best.
    """
    def finite(value) -> float | None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None

    ranked = [(finite(v), position) for position, v in enumerate(values) if finite(v) is not None]
    if len(ranked) < 2:
        return None
    ranked.sort(key=lambda item: -item[0] if higher_is_better else item[0])
    (best, first), (runner_up, second) = ranked[0], ranked[1]
    if best == runner_up:
        return None
    intervals = [(finite(lows[p]), finite(highs[p])) for p in (first, second)]
    if any(bound is None for pair in intervals for bound in pair):
        return None
    (best_low, best_high), (other_low, other_high) = intervals
    clear = best_low > other_high if higher_is_better else best_high < other_low
    return first if clear else None


def group_rows(rows: Iterable[Row]) -> dict[tuple[str, str, str, str], list[Row]]:
    groups: dict[tuple[str, str, str, str], list[Row]] = {}
    for row in rows:
        key = (str(row["device"]), str(row["dtype"]), str(row["numel"]), str(row["pass"]))
        groups.setdefault(key, []).append(row)
    return groups


def baseline_median(rows: list[Row], baseline: str | None) -> float | None:
    """The baseline activation's median in a group: its native implementation where it was
    measured, else its first measured one (never a compiled relu standing in for relu)."""
    if not baseline:
        return None
    candidates = [row for row in rows if str(row["activation"]).lower() == baseline.lower()
                  and _number(row, "median_s") is not None]
    candidates.sort(key=lambda row: row.get("impl") != "native")
    return _number(candidates[0], "median_s") if candidates else None


def micro_table(key: tuple[str, str, str, str], rows: list[Row], baseline: str | None) -> Table:
    device, dtype, numel, pass_ = key
    shapes = sorted({str(row["shape"]) for row in rows})
    size = shapes[0] if len(shapes) == 1 else f"{numel} elements"
    table = Table(title=f"{pass_} · {size} · {dtype} · {device}", title_justify="left",
                  caption_justify="left")
    show_shape = len(shapes) > 1
    for header, justify in (("activation", "left"), ("impl", "left"),
                            *((("shape", "left"),) if show_shape else ()), ("median", "right"),
                            ("IQR %", "right"), (f"vs {baseline}" if baseline else "ratio", "right"),
                            ("GB/s", "right"), ("roofline", "right"), ("saved", "right"),
                            ("peak", "right"), ("flags", "left")):
        table.add_column(header, justify=justify)
    reference = baseline_median(rows, baseline)
    rows = sorted(rows, key=lambda r: _number(r, "median_s") or math.inf)
    best = significant_best([_number(r, "median_s") for r in rows],
                            [_number(r, "ci_low_s") for r in rows],
                            [_number(r, "ci_high_s") for r in rows], higher_is_better=False)
    if best is None and sum(_number(r, "median_s") is not None for r in rows) > 1:
        table.caption = NO_SIGNIFICANT_BEST
    for position, row in enumerate(rows):
        median = _number(row, "median_s")
        median_text = format_seconds(median) if median is not None else "—"
        if position == best:
            median_text = f"[bold green]{median_text}[/]"
        iqr = _number(row, "iqr_pct")
        ratio = f"{median / reference:.2f}x" if median is not None and reference else ""
        gbps = _number(row, "gbps")
        roofline = _number(row, "roofline_frac")
        saved = _number(row, "saved_x_input")
        peak = _number(row, "peak_bytes")
        flags = str(row.get("flags") or "")
        if row.get("message"):
            flags = f"{flags}: {row['message']}"[:60]
        table.add_row(str(row["activation"]), str(row["impl"]),
                      *((str(row["shape"]),) if show_shape else ()), median_text,
                      f"{iqr:.1f}" if iqr is not None else "",
                      ratio, f"{gbps:.1f}" if gbps is not None else "",
                      f"{100 * roofline:.0f} %" if roofline is not None else "",
                      f"{saved:.2f}x" if saved is not None else "",
                      format_bytes(peak) if peak is not None else "",
                      f"[yellow]{flags}[/]" if flags else "")
    return table


def micro_tables(rows: Iterable[Row], baseline: str | None) -> list[Table]:
    return [micro_table(key, group, baseline) for key, group in group_rows(rows).items()]

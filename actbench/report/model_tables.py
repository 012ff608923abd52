"""`actbench model`'s tables: one per device, precision and batch size, a row per activation
and mode, with the step time, throughput, the ratio to the baseline, the activation's share of
the step and the memory it keeps."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from rich.table import Table

from .. import stats
from .micro_tables import (NO_SIGNIFICANT_BEST, baseline_row, cell_number, format_bytes,
                           format_seconds, significant_best)

Row = dict[str, Any]


def _precision(row: Row) -> str:
    return f"amp ({row['dtype']} model)" if str(row.get("amp")) == "true" else str(row["dtype"])


def model_tables(rows: Iterable[Row], baseline: str | None,
                 activation_order: Sequence[str] = ()) -> list[Table]:
    """A table per (model, device, precision, batch size), in the order first measured."""
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:  # rows differing in anything but activation and mode never share a table
        key = (str(row["model"]), str(row["device"]), _precision(row), str(row["input_shape"]),
               str(row.get("channels_last")), str(row.get("compile")))
        groups.setdefault(key, []).append(row)
    order = {name: position for position, name in enumerate(dict.fromkeys(activation_order))}
    tables = []
    for key, group in groups.items():
        group.sort(key=lambda r: (str(r["mode"]), order.get(str(r["activation"]), len(order))))
        tables.append(model_table(key, group, baseline))
    return tables


def model_table(key: tuple[str, ...], rows: list[Row], baseline: str | None) -> Table:
    model, device, precision, input_shape, channels_last, compiled = key
    batch, _, sample = input_shape.partition("x")
    extras = [label for label, flag in (("channels-last", channels_last), ("compiled", compiled))
              if flag == "true"]
    table = Table(title=" · ".join([model, f"batch {batch} ({sample})", precision, device, *extras]),
                  title_justify="left", caption_justify="left")
    for header, justify in (("mode", "left"), ("activation", "left"), ("impl", "left"),
                            ("step ± 95 % CI", "right"), ("samples/s", "right"),
                            (f"vs {baseline}" if baseline else "ratio", "right"),
                            ("act. share", "right"), ("replaced", "right"),
                            ("act. kept", "right"), ("step kept", "right"), ("peak", "right"),
                            ("flags", "left")):
        table.add_column(header, justify=justify)
    captions = []
    for mode in dict.fromkeys(str(r["mode"]) for r in rows):
        same_mode = [r for r in rows if str(r["mode"]) == mode]
        best = significant_best([cell_number(r, "median_s") for r in same_mode],
                                [cell_number(r, "ci_low_s") for r in same_mode],
                                [cell_number(r, "ci_high_s") for r in same_mode], higher_is_better=False)
        if best is None and sum(cell_number(r, "median_s") is not None for r in same_mode) > 1:
            captions.append(f"{mode}: {NO_SIGNIFICANT_BEST}")
        base = baseline_row(same_mode, baseline)
        for position, row in enumerate(same_mode):
            table.add_row(*_cells(row, base, position == best))
    table.caption = "\n".join(captions) or None
    return table


def _cells(row: Row, base: Row | None, best: bool) -> list[str]:
    median = cell_number(row, "median_s")
    step = "—"
    if median is not None:
        spread = cell_number(row, "ci_rel_halfwidth")
        step = format_seconds(median) + (f" ± {100 * spread:.0f} %" if _enough(row) and spread
                                         is not None else f" (n={row.get('samples')})")
        step = f"[bold green]{step}[/]" if best else step
    throughput = cell_number(row, "samples_per_s")
    flags = str(row.get("flags") or "")
    if row.get("message"):
        flags = f"{row.get('status')}: {row['message']}"[:80]
    return [str(row["mode"]), str(row["activation"]), str(row["impl"]), step,
            f"{throughput:,.0f}" if throughput is not None else "",
            _ratio_text(row, base), _share_text(row), str(row.get("replaced") or ""),
            _bytes(row, "act_saved_bytes"), _bytes(row, "step_saved_bytes"),
            _bytes(row, "peak_bytes"), f"[yellow]{flags}[/]" if flags else ""]


def _ratio_text(row: Row, base: Row | None) -> str:
    """median / the baseline's, with an interval from the two medians' intervals."""
    values = [cell_number(r, c) for r in (row, base) if r is not None
              for c in ("median_s", "ci_low_s", "ci_high_s")]
    if base is None or len(values) != 6 or any(v is None for v in values):
        return ""
    ratio, low, high = stats.ratio_ci_from_intervals(*values)
    if not (math.isfinite(low) and math.isfinite(high) and _enough(row) and _enough(base)):
        return f"{ratio:.2f}x"
    return f"{ratio:.2f}x ({low:.2f}-{high:.2f})"


def _enough(row: Row) -> bool:
    """Samples enough for the median to have an interval."""
    samples = cell_number(row, "samples")
    return samples is not None and samples >= stats.MIN_SAMPLES_FOR_INTERVAL


def _share_text(row: Row) -> str:
    share = cell_number(row, "act_share")
    if share is None:
        return ""
    low, high = cell_number(row, "act_share_ci_low"), cell_number(row, "act_share_ci_high")
    interval = (f" ({100 * low:.0f} to {100 * high:.0f})" if low is not None and high is not None
                else "")  # "to": a bound may be negative
    return f"{100 * share:.0f} %{interval}"


def _bytes(row: Row, column: str) -> str:
    value = cell_number(row, column)
    return format_bytes(value) if value is not None else ""

"""Micro results as Rich tables: one per (device, dtype, size, pass), the fastest median
highlighted when it is clearly the fastest (`significant_best`).

Channel-wise activations are laid out as (N, C, L) while the others stay flat, so tables group by
number of elements and show a shape column when shapes differ within one table. Sizes and shapes
are the input's: a gated activation's output is half as wide, and a caption says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.table import Table

from ..catalogue import gated

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


def _finite(value: object) -> float | None:
    """A finite number from a cell (text or number); None for blanks, text and nan / inf."""
    if value in (None, ""):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def cell_number(row: Row, column: str) -> float | None:
    """A row's cell as a finite number; None for blanks, text and nan / inf."""
    return _finite(row.get(column))


GATED_NOTE = ("gated (GLU family): size and shape are the input's, (..., 2h); the output is (..., h); "
              "GB/s and roofline count both, saved is a multiple of the input")

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
    ranked = [(_finite(v), position) for position, v in enumerate(values) if _finite(v) is not None]
    if len(ranked) < 2:
        return None
    ranked.sort(key=lambda item: -item[0] if higher_is_better else item[0])
    (best, first), (runner_up, second) = ranked[0], ranked[1]
    if best == runner_up:
        return None
    intervals = [(_finite(lows[p]), _finite(highs[p])) for p in (first, second)]
    if any(bound is None for pair in intervals for bound in pair):
        return None
    (best_low, best_high), (other_low, other_high) = intervals
    clear = best_low > other_high if higher_is_better else best_high < other_low
    return first if clear else None


PASS_ORDER = ("fwd", "bwd", "fwdbwd")


def _size_key(numel: str) -> tuple[int, str]:
    try:
        return int(numel), numel
    except ValueError:
        return 0, numel


def place(row: Row) -> str:
    """Where a row was measured, as titles say it: the device, and on the CPU its thread count
    ('cpu · 2 threads'), since a report may sweep them (`--threads 1,2,all`)."""
    device, threads = str(row["device"]), str(row.get("threads") or "").removesuffix(".0")
    if device != "cpu" or not threads.isdigit():
        return device
    return f"{device} · {threads} thread{'' if threads == '1' else 's'}"


def group_rows(rows: Iterable[Row]) -> dict[tuple[str, str, str, str], list[Row]]:
    """Rows per (place, dtype, numel, pass), in one order whatever order the rows arrived in:
    devices and dtypes as first seen, sizes ascending, passes fwd, bwd, fwdbwd. Within a table
    the rows keep the order their (activation, impl) first appeared in, so every table lists
    the activations alike."""
    rows = list(rows)
    first_seen: dict[tuple[str, str], int] = {}
    for row in rows:
        first_seen.setdefault((place(row), str(row["dtype"])), len(first_seen))
    groups: dict[tuple[str, str, str, str], list[Row]] = {}
    for row in rows:
        key = (place(row), str(row["dtype"]), str(row["numel"]), str(row["pass"]))
        groups.setdefault(key, []).append(row)

    def order(key: tuple[str, str, str, str]) -> tuple:
        device, dtype, numel, pass_ = key
        rank = PASS_ORDER.index(pass_) if pass_ in PASS_ORDER else len(PASS_ORDER)
        return first_seen[(device, dtype)], _size_key(numel), rank, pass_

    return {key: groups[key] for key in sorted(groups, key=order)}


def baseline_row(rows: list[Row], baseline: str | None) -> Row | None:
    """The baseline activation's row in a group: its native implementation where it was
    measured, else its first measured one (never a compiled relu standing in for relu)."""
    if not baseline:
        return None
    candidates = [row for row in rows if str(row["activation"]).lower() == baseline.lower()
                  and cell_number(row, "median_s") is not None]
    candidates.sort(key=lambda row: row.get("impl") != "native")
    return candidates[0] if candidates else None


def baseline_median(rows: list[Row], baseline: str | None) -> float | None:
    """The median of `baseline_row`."""
    base = baseline_row(rows, baseline)
    return None if base is None else cell_number(base, "median_s")


def micro_table(key: tuple[str, str, str, str], rows: list[Row], baseline: str | None) -> Table:
    device, dtype, numel, pass_ = key
    shapes = sorted({str(row["shape"]) for row in rows})
    size = shapes[0] if len(shapes) == 1 else f"{numel} elements"
    has_gated = any(gated(str(row["activation"])) for row in rows)
    width = " · input size (gated: 2h in, h out)" if has_gated else ""
    table = Table(title=f"{pass_} · {size}{width} · {dtype} · {device}", title_justify="left",
                  caption_justify="left")
    show_shape = len(shapes) > 1
    for header, justify in (("activation", "left"), ("impl", "left"),
                            *((("shape", "left"),) if show_shape else ()), ("median", "right"),
                            ("IQR %", "right"), (f"vs {baseline}" if baseline else "ratio", "right"),
                            ("GB/s", "right"), ("roofline", "right"), ("saved", "right"),
                            ("peak", "right"), ("flags", "left")):
        table.add_column(header, justify=justify)
    reference = baseline_median(rows, baseline)
    best = significant_best([cell_number(r, "median_s") for r in rows],
                            [cell_number(r, "ci_low_s") for r in rows],
                            [cell_number(r, "ci_high_s") for r in rows], higher_is_better=False)
    notes = []
    if best is None and sum(cell_number(r, "median_s") is not None for r in rows) > 1:
        notes.append(NO_SIGNIFICANT_BEST)
    if has_gated:
        notes.append(GATED_NOTE)
    table.caption = "\n".join(notes) or None
    for position, row in enumerate(rows):
        median = cell_number(row, "median_s")
        median_text = format_seconds(median) if median is not None else "—"
        if position == best:
            median_text = f"[bold green]{median_text}[/]"
        iqr = cell_number(row, "iqr_pct")
        ratio = f"{median / reference:.2f}x" if median is not None and reference else ""
        gbps = cell_number(row, "gbps")
        roofline = cell_number(row, "roofline_frac")
        saved = cell_number(row, "saved_x_input")
        peak = cell_number(row, "peak_bytes")
        flags = str(row.get("flags") or "")
        if row.get("message"):
            flags = f"{flags}: {row['message']}"[:60]
        table.add_row(str(row["activation"]), str(row["impl"]),
                      *((str(row["shape"]),) if show_shape else ()), median_text,
                      f"{iqr:.1f}" if iqr is not None else "",
                      ratio, f"{gbps:.1f}" if gbps is not None else "",
                      _roofline_text(roofline, flags),
                      f"{saved:.2f}x" if saved is not None else "",
                      format_bytes(peak) if peak is not None else "",
                      f"[yellow]{flags}[/]" if flags else "")
    return table


def _roofline_text(fraction: float | None, flags: str) -> str:
    """The fraction of the copy roofline; above 1 it is not a share of DRAM bandwidth, and says
    why (runner's in_cache / above_copy flags)."""
    if fraction is None:
        return ""
    if "in_cache" in flags:
        return "in cache"
    return f"{100 * fraction:.0f} %" + ("?" if "above_copy" in flags else "")


def micro_tables(rows: Iterable[Row], baseline: str | None,
                 activation_order: Iterable[str] = ()) -> list[Table]:
    """The tables, each listing the same activations in the same order: the baseline first, then
    `activation_order` (the plan's), then activations and implementations in the order they first
    appear in the report (rows arrive as configurations finish, which differs between tables)."""
    rows = list(rows)
    activations = list(dict.fromkeys([*activation_order, *(str(r["activation"]) for r in rows)]))
    impls = list(dict.fromkeys(str(r["impl"]) for r in rows))

    def order(row: Row) -> tuple[bool, int, int]:
        activation = str(row["activation"])
        is_baseline = bool(baseline) and activation.lower() == str(baseline).lower()
        return not is_baseline, activations.index(activation), impls.index(str(row["impl"]))

    return [micro_table(key, sorted(group, key=order), baseline)
            for key, group in group_rows(rows).items()]


def _size_text(numel: str) -> str:
    size = _size_key(numel)[0]
    return f"2^{size.bit_length() - 1}" if size > 0 and size & (size - 1) == 0 else numel


def _headline_group(groups: dict[tuple[str, str, str, str], list[Row]],
                    baseline: str) -> tuple[str, str, str, str] | None:
    """The table the summary speaks of: the first device and dtype, the largest size at which the
    baseline was measured, its first pass (fwd, bwd, fwdbwd)."""
    measured = [key for key, rows in groups.items() if baseline_row(rows, baseline) is not None]
    if not measured:
        return None
    device, dtype = measured[0][:2]
    same = [key for key in measured if key[:2] == (device, dtype)]
    largest = max(_size_key(key[2]) for key in same)
    return next(key for key in same if _size_key(key[2]) == largest)


def summary_lines(rows: Iterable[Row], baseline: str | None,
                  activation_order: Iterable[str] = ()) -> list[str]:
    """One line per activation against the baseline, as hyperfine ends: 'mish: 5.10x ± 0.30
    slower than relu (fwd, 2^20, float32, cpu)', from the fastest implementation measured, with
    the interval of the ratio from both medians' intervals; 'as fast as' when it includes 1."""
    from ..stats import ratio_ci_from_intervals

    groups = group_rows(rows)
    key = _headline_group(groups, baseline) if baseline else None
    if key is None:
        return []
    group = groups[key]
    base = baseline_row(group, baseline)
    where = f"{key[3]}, {_size_text(key[2])}, {key[1]}, {key[0]}"
    lines = []
    for activation in dict.fromkeys([*activation_order, *(str(r["activation"]) for r in group)]):
        measured = [r for r in group if str(r["activation"]) == activation
                    and cell_number(r, "median_s") is not None]
        if activation.lower() == baseline.lower() or not measured:
            continue
        fastest = min(measured, key=lambda r: cell_number(r, "median_s"))
        ratio, low, high = ratio_ci_from_intervals(
            *(cell_number(fastest, c) or math.nan for c in ("median_s", "ci_low_s", "ci_high_s")),
            *(cell_number(base, c) or math.nan for c in ("median_s", "ci_low_s", "ci_high_s")))
        name = activation if len(measured) == 1 else f"{activation} ({fastest['impl']})"
        lines.append(f"{name}: {_ratio_phrase(ratio, low, high)} {baseline} ({where})")
    return lines


def _ratio_phrase(ratio: float, low: float, high: float) -> str:
    """'2.10x ± 0.05 slower than', '1.30x ± 0.02 faster than' or 'as fast as (1.01x ± 0.03)'."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{ratio:.2f}x (no interval) the time of"
    if low <= 1.0 <= high:
        return f"as fast as (within noise: {ratio:.2f}x ± {(high - low) / 2:.2f} the time of)"
    if ratio >= 1.0:
        return f"{ratio:.2f}x ± {(high - low) / 2:.2f} slower than"
    return f"{1 / ratio:.2f}x ± {(1 / low - 1 / high) / 2:.2f} faster than"

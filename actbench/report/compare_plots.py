"""Figures of `actbench compare` and `actbench report`: micro timings against size, model
throughput against batch size, training results per activation, sweeps, and training curves.

Presentation only: the functions draw loaded report frames and the train comparison (its means,
intervals and tests come from actbench.compare); the only numbers computed here are what a figure
needs to show the rows (median of duplicates, mean and min-max over seeds per epoch). Every
activation keeps its colour from `activation_color` in every figure; implementations differ by
line style, report files by marker. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..compare.load import RUN_COLUMNS, sweep_columns
from ..compare.metrics import is_accuracy
from ..compare.micro import USABLE_STATUSES
from ..compare.train import MISSING_VALUE, NOISE_KEY, bare_activation, run_labels
from ..errors import ActbenchError
from ..records.paths import file_name_part
from .plots import activation_color, check_output_path, save_figure

MICRO_METRICS = ("median_s", "gbps")
EPOCH_METRICS = ("test_acc", "train_acc", "test_loss", "train_loss", "lr", "epoch_s",
                 "samples_per_s")
PASS_ORDER = ("fwd", "bwd", "fwdbwd")
PASS_TITLES = {"fwd": "forward", "bwd": "backward", "fwdbwd": "forward + backward"}
IMPL_ORDER = ("native", "fast", "formula", "memeff", "compiled", "custom")
# Micro rows whose timings are kept: "noisy" stopped at --max-time but kept its numbers.
HOLLOW_FLAGS = ("noisy", "throttled")

# Implementations by line style; plain dashes are kept for the roofline.
LINE_STYLES = ("-", (0, (1, 1.5)), (0, (6, 2, 1, 2)), (0, (9, 3)), (0, (3, 1, 1, 1, 1, 1)))
FILE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
ROOFLINE_COLOR = "0.4"
NEUTRAL_COLOR = "0.35"
STYLE = {"font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "legend.fontsize": 9,
         "xtick.labelsize": 9, "ytick.labelsize": 9, "figure.titlesize": 12,
         "axes.spines.top": False, "axes.spines.right": False,
         "text.parse_math": False}  # labels come from report files: "$" is text, not TeX


# -- shared pieces ------------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, output: Path, dpi: float) -> Path:
    _pyplot()
    return save_figure(fig, output, dpi)


def _grid(plt, count: int, columns: int, panel_size: tuple[float, float], legend_width: float,
          **options):
    """A constrained figure with `count` panels in rows of `columns`; unused panels hidden."""
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, squeeze=False, layout="constrained",
                             figsize=(panel_size[0] * columns + legend_width,
                                      panel_size[1] * rows + 0.6), **options)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _legend(fig, entries: list[tuple[object, str]], headings: Sequence[str] = (),
            title: str | None = None):
    """One legend for the whole figure, to the right of the panels, headings in bold."""
    legend = fig.legend([handle for handle, _ in entries], [label for _, label in entries],
                        loc="outside right upper", frameon=False, title=title,
                        alignment="left", handlelength=2.6)
    for text in legend.get_texts():
        if text.get_text() in headings:
            text.set_fontweight("bold")
    return legend


def _title(fig, text: str, legend_width: float) -> None:
    """The figure's title, left-aligned and wrapped to the panels' width so that it never runs
    into the legend on the right."""
    width = max(30, int((fig.get_figwidth() - legend_width) * 10))
    fig.suptitle(textwrap.fill(text[:1].upper() + text[1:], width), x=0.01, ha="left")


def _ylabel(ax, text: str) -> None:
    """Axis label on the first panel of each row only (panels of a row share their scale)."""
    if ax.get_subplotspec().is_first_col():
        ax.set_ylabel(text)


def _heading(text: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], linestyle="none"), text


def _line(label: str, **style):
    from matplotlib.lines import Line2D

    return Line2D([], [], **style), label


def _band(label: str, color=NEUTRAL_COLOR):
    from matplotlib.patches import Patch

    return Patch(facecolor=color, alpha=0.25, linewidth=0), label


def _finite(values) -> np.ndarray:
    return np.isfinite(np.asarray(values, dtype=float))


def metric_axis(metric: str) -> tuple[str, float]:
    """Axis label and scale for a report column: accuracies in %, times in s, memory in MiB."""
    noise = re.fullmatch(r"noise_(.+)_(acc|loss)", metric)
    if noise:
        what = "test accuracy (%)" if noise.group(2) == "acc" else "test loss"
        return f"{what} with input noise σ = {noise.group(1)}", (100.0 if noise.group(2) == "acc"
                                                                 else 1.0)
    if metric == "lr":
        return "learning rate", 1.0
    words = metric.replace("_", " ")
    if is_accuracy(metric):
        return f"{words.removesuffix(' acc')} accuracy (%)", 100.0
    if metric.endswith("_per_s"):
        return f"{words[:-6]} per second", 1.0
    if metric.endswith("_s"):
        return f"{words[:-2]} (s)", 1.0
    if metric.endswith("_bytes"):
        return f"{words[:-6]} (MiB)", 1.0 / 2**20
    return words, 1.0


def _eq(column: pd.Series, value) -> pd.Series:
    """Cells equal to `value`; NaN matches NaN and the comparison's "—" (a key a report lacks or
    left blank), and "20" matches 20.0 (text and numbers mixed)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == MISSING_VALUE:
        return column.isna() | (column.astype(str).str.strip() == "")
    return column.eq(value) | (column.astype(str) == str(value))


def _select(frame: pd.DataFrame, values: dict) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for key, value in values.items():
        if key in frame.columns:
            mask &= _eq(frame[key], value)
    return mask


def _groups(table: pd.DataFrame, keys: Sequence[str]) -> list[tuple[dict, pd.DataFrame]]:
    """(key -> value, rows) per distinct combination of `keys`, in order of appearance."""
    if not keys:
        return [({}, table)]
    groups = []
    for values, rows in table.groupby(list(keys), sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        groups.append((dict(zip(keys, values)), rows))
    return groups


def _group_title(values: dict, width: int = 48) -> str:
    return textwrap.fill(", ".join(f"{key} = {value}" for key, value in values.items()), width)


def _varying(table: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    return [key for key in keys if key in table.columns and table[key].nunique(dropna=False) > 1]


def _truthy(value) -> bool:
    return value is True or isinstance(value, np.bool_) and bool(value) or \
        str(value).strip().lower() == "true"


def _log_axis(axis, formatter) -> None:
    """Log ticks at 1-2-5 (or every digit) when the view spans little, labelled by `formatter`."""
    from matplotlib.ticker import LogLocator, NullFormatter

    low, high = sorted(axis.get_view_interval())
    span = high / low if low > 0 else math.inf
    subs = (1.0,) if span >= 100 else (1.0, 2.0, 5.0) if span >= 8 else tuple(range(1, 10))
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(formatter)
    axis.set_minor_formatter(NullFormatter())


def _comparison_table(comparison) -> pd.DataFrame:
    """The comparison's table, checked for the columns the figures read."""
    table = getattr(comparison, "table", None)
    if table is None or not isinstance(table, pd.DataFrame):
        raise ActbenchError("expected a train comparison with a table of results to plot")
    missing = [c for c in ("activation", "mean", "ci_low", "ci_high") if c not in table.columns]
    if missing:
        raise ActbenchError(f"the train comparison lacks the columns {', '.join(missing)}")
    table = table[_finite(table["mean"])]
    if table.empty:
        raise ActbenchError("no training results to plot: no activation has a finite "
                            f"{comparison.metric} in any group")
    return table


# -- micro --------------------------------------------------------------------------------------

def flagged_rows(frame: pd.DataFrame, flag: str) -> pd.Series:
    """Rows flagged `flag` ("noisy" or "throttled") by the flags list, the status or the
    throttled column."""
    found = pd.Series(False, index=frame.index)
    if "flags" in frame.columns:
        flags = frame["flags"].fillna("").astype(str).str.split(";")
        found |= flags.map(lambda names: flag in [name.strip() for name in names]).astype(bool)
    if flag == "noisy" and "status" in frame.columns:
        found |= frame["status"].astype(str) == "noisy"
    if flag == "throttled" and "throttled" in frame.columns:
        found |= frame["throttled"].map(_truthy).astype(bool)
    return found


def hollow_rows(frame: pd.DataFrame) -> pd.Series:
    """Rows drawn with hollow markers: noisy or throttled."""
    hollow = pd.Series(False, index=frame.index)
    for flag in HOLLOW_FLAGS:
        hollow |= flagged_rows(frame, flag)
    return hollow


def measured_micro_rows(frame: pd.DataFrame | None, metric: str = "median_s") -> pd.DataFrame:
    """Micro rows that have a timing to draw, with `_y`, `_low`, `_high` in the metric's unit."""
    if frame is None or frame.empty:
        return pd.DataFrame()
    missing = [c for c in ("activation", "impl", "device", "dtype", "pass", "numel", "median_s")
               if c not in frame.columns]
    if missing:
        raise ActbenchError(f"micro rows lack the columns {', '.join(missing)}")
    rows = frame.copy()
    if "status" in rows.columns:
        rows = rows[rows["status"].astype(str).isin(USABLE_STATUSES)]
    if "file" not in rows.columns:
        rows["file"] = ""
    number = {c: pd.to_numeric(rows[c], errors="coerce") if c in rows.columns
              else pd.Series(np.nan, index=rows.index)
              for c in ("numel", "median_s", "ci_low_s", "ci_high_s", "gbps", "min_bytes",
                        "copy_gbps")}
    rows["numel"] = number["numel"]
    if metric == "median_s":
        rows["_y"], rows["_low"], rows["_high"] = (number["median_s"], number["ci_low_s"],
                                                   number["ci_high_s"])
    else:
        gbps = number["gbps"].where(number["gbps"].notna(),
                                    number["min_bytes"] / number["median_s"] / 1e9)
        rows["_y"] = gbps
        rows["_low"] = number["min_bytes"] / number["ci_high_s"] / 1e9
        rows["_high"] = number["min_bytes"] / number["ci_low_s"] / 1e9
    rows["_roofline"] = (number["min_bytes"] / (number["copy_gbps"] * 1e9) if metric == "median_s"
                         else number["copy_gbps"])
    rows["_hollow"] = hollow_rows(rows)
    keep = _finite(rows["_y"]) & (rows["_y"] > 0) & _finite(rows["numel"]) & (rows["numel"] > 0)
    return rows[keep]


def _ordered(values, order: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(str(v) for v in values))
    return sorted(unique, key=lambda v: order.index(v) if v in order else len(order))


@dataclass(frozen=True)
class _MicroLooks:
    """How the micro figure tells rows apart: a colour per activation (`activation_color`), a
    line style per implementation, a marker per report file."""

    activations: list[str]
    impls: list[str]
    files: list[str]
    several_impls: bool
    style_of: dict[str, object]
    marker_of: dict[str, str]

    @property
    def several_files(self) -> bool:
        return len(self.files) > 1


def _micro_looks(rows: pd.DataFrame) -> _MicroLooks:
    several_impls = bool((rows.groupby("activation")["impl"].nunique() > 1).any())
    impls = _ordered(rows["impl"], IMPL_ORDER)
    files = list(dict.fromkeys(rows["file"].astype(str)))
    style_of = {impl: LINE_STYLES[i % len(LINE_STYLES)] if several_impls else "-"
                for i, impl in enumerate(impls)}
    marker_of = {file: FILE_MARKERS[i % len(FILE_MARKERS)] for i, file in enumerate(files)}
    return _MicroLooks(list(dict.fromkeys(rows["activation"].astype(str))), impls, files,
                       several_impls, style_of, marker_of)


def plot_micro(frame: pd.DataFrame, output: Path, metric: str = "median_s", *,
               dpi: float = 150) -> Path:
    """Time per call (or GB/s) against tensor size, log-log, one panel per (device, dtype, pass),
    one line per activation (and implementation, and file), with the copy roofline dashed."""
    output = check_output_path(output)
    if metric not in MICRO_METRICS:
        raise ActbenchError(f"micro plot metric '{metric}' is not one of {', '.join(MICRO_METRICS)}")
    rows = measured_micro_rows(frame, metric)
    if rows.empty:
        total = 0 if frame is None else len(frame)
        raise ActbenchError(f"no micro timings to plot: none of the {total} micro rows has status "
                            "ok or noisy with a finite median")
    plt = _pyplot()
    looks = _micro_looks(rows)
    places = list(dict.fromkeys(zip(rows["device"].astype(str), rows["dtype"].astype(str))))
    passes = _ordered(rows["pass"], PASS_ORDER)
    hollow_kinds = [flag for flag in HOLLOW_FLAGS if flagged_rows(rows, flag).any()]

    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(places), len(passes), squeeze=False, layout="constrained",
                                 sharey="row",
                                 figsize=(3.9 * len(passes) + 2.6, 3.2 * len(places) + 0.6))
        roofline_drawn = False
        for (device, dtype), axes_row in zip(places, axes):
            for pass_, ax in zip(passes, axes_row):
                panel = rows[(rows["device"].astype(str) == device)
                             & (rows["dtype"].astype(str) == dtype) & (rows["pass"] == pass_)]
                if panel.empty:
                    ax.set_visible(False)
                    continue
                title = f"{PASS_TITLES.get(pass_, pass_)} · {dtype} · {device}"
                roofline_drawn |= _draw_micro_panel(ax, panel, looks, title)
            _micro_row_axes([ax for ax in axes_row if ax.get_visible()], metric)
        _legend(fig, *_micro_legend(looks, roofline_drawn, hollow_kinds))
        _title(fig, "Time per call against tensor size (median)" if metric == "median_s"
               else "Throughput against tensor size (minimum bytes / median time)", 2.6)
        return _save(fig, output, dpi)


def _draw_micro_panel(ax, panel: pd.DataFrame, looks: _MicroLooks, title: str) -> bool:
    """One panel's roofline and series on log-log axes; whether a roofline was drawn."""
    roofline_drawn = _draw_roofline(ax, panel, looks.marker_of, looks.several_files)
    for (activation, impl, file), series in panel.groupby(["activation", "impl", "file"],
                                                          sort=False):
        _draw_series(ax, series, activation_color(str(activation)),
                           looks.style_of[str(impl)], looks.marker_of[str(file)])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel("elements per tensor (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    return roofline_drawn


def _micro_row_axes(shown: list, metric: str) -> None:
    """A row of panels shares its y scale: the label and tick labels on its first panel only."""
    from matplotlib.ticker import EngFormatter, FuncFormatter

    if not shown:
        return
    shown[0].set_ylabel("time per call (log scale)" if metric == "median_s"
                        else "throughput, GB/s (log scale)")
    for ax in shown:
        _log_axis(ax.xaxis, EngFormatter(sep=""))
        _log_axis(ax.yaxis, EngFormatter(unit="s", sep=" ") if metric == "median_s"
                  else FuncFormatter(lambda value, _: f"{value:g}"))
        ax.tick_params(axis="y", labelleft=ax is shown[0])


def _micro_legend(looks: _MicroLooks, roofline_drawn: bool,
                  hollow_kinds: list[str]) -> tuple[list, list[str]]:
    """(entries, headings): activations, then implementations and files where they vary, then
    the roofline, the interval band and the hollow markers."""
    entries, headings = [], []
    if looks.several_impls or looks.several_files:
        headings.append("activation")
        entries += [_heading("activation")] + [
            _line(name, color=activation_color(name), linewidth=2) for name in looks.activations]
    else:
        entries += [_line(name, color=activation_color(name), linewidth=1.8, marker="o",
                          markersize=5) for name in looks.activations]
    if looks.several_impls:
        headings.append("implementation")
        entries += [_heading("implementation")] + [
            _line(impl, color=NEUTRAL_COLOR, linestyle=looks.style_of[impl])
            for impl in looks.impls]
    if looks.several_files:
        headings.append("report file")
        entries += [_heading("report file")] + [
            _line(file, color=NEUTRAL_COLOR, linestyle="none", marker=looks.marker_of[file])
            for file in looks.files]
    entries.append(_heading(""))
    if roofline_drawn:
        entries.append(_line("memory roofline (copy)", color=ROOFLINE_COLOR, linestyle="--",
                             linewidth=1.3))
    entries.append(_band("95 % CI of the median"))
    if hollow_kinds:
        entries.append(_line(f"hollow: {' or '.join(hollow_kinds)}", color=NEUTRAL_COLOR,
                             linestyle="none", marker="o", markerfacecolor="white",
                             markeredgewidth=1.4))
    return entries, headings


def _draw_series(ax, series: pd.DataFrame, color, linestyle, marker,
                 x_column: str = "numel") -> None:
    """One activation / implementation / file: `_y` against `x_column` (the size; a model's
    batch size), medians over duplicates per x, the `_low`-`_high` band, hollow markers where a
    row was noisy or throttled."""
    points = series.groupby(x_column).agg(y=("_y", "median"), low=("_low", "median"),
                                          high=("_high", "median"), hollow=("_hollow", "any"))
    x = points.index.to_numpy(dtype=float)
    ax.plot(x, points["y"], color=color, linestyle=linestyle, linewidth=1.6, marker=marker,
            markersize=5, zorder=3)
    band = _finite(points["low"]) & _finite(points["high"])
    if band.any():
        ax.fill_between(x, points["low"], points["high"], where=band, color=color, alpha=0.18,
                        linewidth=0, zorder=2)
    hollow = points["hollow"].to_numpy(dtype=bool)
    if hollow.any():
        ax.plot(x[hollow], points["y"][hollow], linestyle="none", marker=marker, markersize=5,
                markerfacecolor="white", markeredgecolor=color, markeredgewidth=1.4, zorder=4)


def _draw_roofline(ax, panel: pd.DataFrame, marker_of: dict, several_files: bool) -> bool:
    """The copy roofline per file: median over the rows of one size."""
    drawn = False
    for file, rows in panel.groupby("file", sort=False):
        usable = rows[_finite(rows["_roofline"]) & (rows["_roofline"] > 0)]
        if usable.empty:
            continue
        line = usable.groupby("numel")["_roofline"].median()
        ax.plot(line.index.to_numpy(dtype=float), line.to_numpy(), color=ROOFLINE_COLOR,
                linestyle="--", linewidth=1.3, marker=marker_of[str(file)] if several_files
                else None, markersize=3.5, zorder=1)
        drawn = True
    return drawn


# -- training -----------------------------------------------------------------------------------

def _ok_runs(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    if frame is None or metric not in frame.columns:
        raise ActbenchError(f"the train rows have no column '{metric}' to plot")
    runs = frame
    if "status" in runs.columns:
        runs = runs[runs["status"].astype(str) == "ok"]
    values = pd.to_numeric(runs[metric], errors="coerce")
    return runs.assign(**{metric: values})[_finite(values)]


def plot_train(comparison, frame: pd.DataFrame, output: Path, *, dpi: float = 150) -> Path:
    """Per group a panel: each run's metric as a point, the mean with its confidence interval,
    activations ordered by rank, the baseline named and its mean drawn across the panel."""
    output = check_output_path(output)
    table = _comparison_table(comparison)
    metric = comparison.metric
    runs = _ok_runs(frame, metric)
    runs = runs.assign(_label=run_labels(runs, getattr(comparison, "labels_with_impl", False)))
    label, scale = metric_axis(metric)
    keys = [k for k in comparison.group_keys if k in table.columns]
    groups = _groups(table, keys)
    baseline = str(comparison.baseline)
    plt = _pyplot()
    any_significant = False
    width = max(4.2, 0.75 * max(len(rows) for _, rows in groups) + 1.6)
    with plt.rc_context(STYLE):
        fig, axes = _grid(plt, len(groups), 3, (width, 3.6), 2.8)
        for ax, (values, rows) in zip(axes, groups):
            any_significant |= _draw_train_panel(ax, rows, runs[_select(runs, values)], metric,
                                                 scale, baseline)
            ax.set_ylabel(label)
            ax.grid(True, axis="y", alpha=0.3)
            if values:
                ax.set_title(_group_title(values))
        _legend(fig, _train_legend(comparison, baseline, any_significant))
        direction = "higher" if comparison.higher_is_better else "lower"
        _title(fig, f"{label} per activation, best first ({direction} is better)", 2.8)
        return _save(fig, output, dpi)


def _draw_train_panel(ax, rows: pd.DataFrame, runs: pd.DataFrame, metric: str, scale: float,
                      baseline: str) -> bool:
    """One group, best rank first: per activation its runs and its mean with the interval, the
    baseline's mean across the panel; whether any activation differs significantly."""
    rows = rows.sort_values("rank", na_position="last", kind="stable") \
        if "rank" in rows.columns else rows
    names, any_significant = [], False
    for x, row in enumerate(rows.to_dict("records")):
        name = str(row["activation"])
        mean = _draw_train_activation(ax, x, row, runs[runs["_label"] == name], metric, scale)
        significant = _truthy(row.get("significant"))
        any_significant |= significant
        tick = name + (" *" if significant else "")
        if name == baseline:
            tick += "\n(baseline)"
            ax.axhline(mean, color=NEUTRAL_COLOR, linestyle=":", linewidth=1, zorder=1)
        names.append(tick)
    ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 4 else 0,
                  ha="right" if len(names) > 4 else "center")
    ax.set_xlim(-0.6, len(names) - 0.4)
    return any_significant


def _draw_train_activation(ax, x: int, row: dict, runs: pd.DataFrame, metric: str,
                           scale: float) -> float:
    """One activation at position x: each run (by seed) as a point on the left, the mean with
    its interval on the right; returns the mean as drawn."""
    color = activation_color(bare_activation(str(row["activation"])))
    if "seed" in runs.columns:
        runs = runs.sort_values("seed", kind="stable")
    points = runs[metric].to_numpy(dtype=float) * scale
    offsets = np.linspace(-0.17, 0.17, len(points)) if len(points) > 1 else [0.0]
    ax.scatter(x - 0.08 + np.asarray(offsets[:len(points)]), points, s=22,
               color=color, alpha=0.6, linewidths=0, zorder=2)
    mean, low, high = (float(row[c]) * scale for c in ("mean", "ci_low", "ci_high"))
    error = [[mean - low], [high - mean]] if math.isfinite(low) and math.isfinite(high) else None
    ax.errorbar(x + 0.25, mean, yerr=error, fmt="D", color=color, markersize=6,
                markeredgecolor="black", markeredgewidth=0.8, ecolor="black",
                elinewidth=1.2, capsize=4, zorder=3)
    return mean


def _interval_name(comparison) -> str:
    confidence = getattr(comparison, "confidence", None)
    return f"{confidence:.0%} CI" if confidence else "confidence interval"


def _train_legend(comparison, baseline: str, any_significant: bool) -> list:
    entries = [_line("one run (seed)", color=NEUTRAL_COLOR, linestyle="none", marker="o",
                     markersize=5, alpha=0.6),
               _line(f"mean and {_interval_name(comparison)}", color=NEUTRAL_COLOR,
                     linestyle="none", marker="D", markeredgecolor="black"),
               _line(f"{baseline} (baseline) mean", color=NEUTRAL_COLOR, linestyle=":")]
    if any_significant:
        entries.append(_heading(f"* differs from {baseline}:\n  Holm-adjusted "
                                f"p < {comparison.alpha:g}"))
    return entries


def sweep_axis_kind(values: pd.Series) -> str:
    """How a sweep key's values sit on the x axis: "log" (positive numbers spanning at least two
    decades), "linear" (other numbers) or "categorical" (anything that is not a number)."""
    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    if present.empty or numbers.isna().any() or not np.isfinite(numbers.to_numpy(float)).all():
        return "categorical"
    if (numbers > 0).all() and numbers.max() / numbers.min() >= 100:
        return "log"
    return "linear"


def plot_sweep(comparison, sweep_key: str, output: Path, *, dpi: float = 150) -> Path:
    """The metric's mean against one sweep key, a line with a CI band per activation (as in the
    Mish paper's depth and noise figures); other group keys that vary become panels."""
    output = check_output_path(output)
    table = _comparison_table(comparison)
    if sweep_key not in comparison.group_keys or sweep_key not in table.columns:
        raise ActbenchError(f"'{sweep_key}' is not a group key of the comparison; expected one of "
                            f"{', '.join(comparison.group_keys) or 'none'}")
    table = table[table[sweep_key].notna()]
    kind = sweep_axis_kind(table[sweep_key])
    position, categories = _sweep_positions(table[sweep_key], kind)
    table = table.assign(_x=position)
    others = _varying(table, [k for k in comparison.group_keys if k != sweep_key])
    groups = _groups(table, others)
    label, scale = metric_axis(comparison.metric)
    baseline = str(comparison.baseline)
    activations = list(dict.fromkeys(table["activation"].astype(str)))
    plt = _pyplot()
    with plt.rc_context(STYLE):
        fig, axes = _grid(plt, len(groups), 3, (4.6, 3.6), 2.4, sharey=True)
        for ax, (values, rows) in zip(axes, groups):
            _draw_sweep_lines(ax, rows, scale, baseline)
            _sweep_x_axis(ax, kind, sorted(set(table["_x"])), categories, sweep_key)
            _ylabel(ax, label)
            ax.grid(True, alpha=0.3)
            if values:
                ax.set_title(_group_title(values))
        _legend(fig, _sweep_legend(comparison, activations, baseline))
        _title(fig, f"{label} against {sweep_key}", 2.4)
        return _save(fig, output, dpi)


def _sweep_positions(values: pd.Series, kind: str) -> tuple[pd.Series, list[str]]:
    """Where each sweep value sits on the x axis, and the categories in order where the values
    are not numbers (each category at its index)."""
    if kind != "categorical":
        return pd.to_numeric(values, errors="coerce").astype(float), []
    categories = list(dict.fromkeys(values.astype(str)))
    return values.astype(str).map(categories.index).astype(float), categories


def _draw_sweep_lines(ax, rows: pd.DataFrame, scale: float, baseline: str) -> None:
    """Per activation the mean against the sweep value with its interval band; the baseline's
    line is thicker."""
    for name, line in rows.groupby(rows["activation"].astype(str), sort=False):
        line = line.sort_values("_x")
        color = activation_color(bare_activation(name))
        ax.plot(line["_x"], line["mean"] * scale, color=color, marker="o", markersize=4.5,
                linewidth=2.6 if name == baseline else 1.7, zorder=3)
        band = _finite(line["ci_low"]) & _finite(line["ci_high"])
        if band.any():
            ax.fill_between(line["_x"], line["ci_low"] * scale, line["ci_high"] * scale,
                            where=band, color=color, alpha=0.15, linewidth=0, zorder=2)


def _sweep_x_axis(ax, kind: str, ticks: list[float], categories: list[str], sweep_key: str) -> None:
    """Categories by name, a few numbers each at its own tick, many numbers as matplotlib likes."""
    from matplotlib.ticker import FixedLocator, NullLocator

    if kind == "log":
        ax.set_xscale("log")
    if kind == "categorical":
        ax.set_xticks(ticks, categories, rotation=30 if len(categories) > 4 else 0,
                      ha="right" if len(categories) > 4 else "center")
        ax.set_xlim(-0.4, len(categories) - 0.6)
    elif len(ticks) <= 12:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_ticklabels([f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(sweep_key + (" (log scale)" if kind == "log" else ""))


def _sweep_legend(comparison, activations: list[str], baseline: str) -> list:
    entries = [_line(name + (" (baseline)" if name == baseline else ""),
                     color=activation_color(bare_activation(name)), marker="o", markersize=4.5,
                     linewidth=2.6 if name == baseline else 1.7) for name in activations]
    return entries + [_heading(""), _line("mean over seeds", color=NEUTRAL_COLOR, marker="o",
                                          markersize=4.5),
                      _band(f"{_interval_name(comparison)} of the mean")]


STOPPED_STATUSES = ("failed", "diverged")
EARLY_STYLE = (0, (2.5, 1.8))  # a run that stopped before its planned epochs: short dashes


def _run_key(rows: pd.DataFrame) -> list[str]:
    """The columns that tell one run's epoch rows from another's: the report file and the config
    hash (which includes the seed), else the activation, seed and sweep point."""
    if "config_hash" in rows.columns:
        return [c for c in ("file", "config_hash") if c in rows.columns]
    return [c for c in ("file", "activation", "impl", "seed", *sweep_columns(rows))
            if c in rows.columns]


def _run_rows(outcome: pd.DataFrame, runs: pd.DataFrame | None) -> pd.DataFrame:
    """Per run of `outcome`, its row in the runs report: `status` and planned `epochs` (NaN where
    unknown). A run without a row where the runs report covers its file never finished: its
    process ended (killed, lost) before the row was written, so its status is "interrupted"."""
    found = pd.DataFrame({"status": "", "epochs": np.nan}, index=outcome.index)
    if runs is None or runs.empty or not {"config_hash", "status"} <= set(runs.columns) \
            or "config_hash" not in outcome.columns:
        return found
    run_file = runs["file"].astype(str) if "file" in runs.columns else pd.Series("", runs.index)
    planned = pd.to_numeric(runs.get("epochs", pd.Series(np.nan, runs.index)), errors="coerce")
    for index, run in outcome.iterrows():
        files = {str(run.get("file", "")), str(run.get("file", "")).removesuffix(".epochs")}
        covered = run_file.isin(files) if "file" in outcome.columns else run_file == run_file
        same_file = runs[covered & (runs["config_hash"].astype(str) == str(run["config_hash"]))]
        if same_file.empty:
            if covered.any():
                counts = planned[covered].dropna().unique()
                found.loc[index] = ["interrupted", counts[0] if len(counts) == 1 else np.nan]
            continue
        found.loc[index] = [str(same_file["status"].iloc[-1]), planned[same_file.index[-1]]]
    return found


def run_outcomes(epochs: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """How each run of the epoch rows ended, one row per run (the run key's columns first):
    `done` (its last epoch), `planned` (epochs it was to train, NaN where neither the runs report
    nor a `train.epochs` sweep column says), `status` ("" when unknown), `complete` (status ok or
    unknown and every planned epoch there) and `end`: "" for complete runs, else a label such as
    "interrupted at 24/30", "diverged at 3/30" or "interrupted at epoch 24"."""
    key = _run_key(epochs)
    rows = epochs.assign(epoch=pd.to_numeric(epochs["epoch"], errors="coerce"))
    outcome = rows.groupby(key, sort=False, dropna=False)["epoch"].max().rename("done") \
        .reset_index()
    found = _run_rows(outcome, runs)
    planned = found["epochs"]
    if "train.epochs" in rows.columns:
        swept = pd.to_numeric(rows.groupby(key, sort=False, dropna=False)["train.epochs"].first(),
                              errors="coerce").to_numpy()
        planned = planned.fillna(pd.Series(swept, index=outcome.index))
    status = found["status"].astype(str)
    short = planned.notna() & (outcome["done"] < planned)
    complete = status.isin(["ok", ""]) & ~short
    what = status.where(status.isin(STOPPED_STATUSES), "interrupted")
    reached = outcome["done"].map(lambda done: f"{done:g}")
    end = np.where(planned.notna(), what + " at " + reached + "/" + planned.map(
        lambda count: f"{count:g}"), what + " at epoch " + reached)
    return outcome.assign(planned=planned, status=status, complete=complete.astype(bool),
                          end=np.where(complete, "", end))


def _curve_rows(epochs: pd.DataFrame | None, metric: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The epoch rows with a finite value of the curve's metrics, numbers as floats."""
    metrics = ("test_acc", "train_acc") if metric == "both" else (metric,)
    if metric != "both" and metric not in EPOCH_METRICS:
        raise ActbenchError(f"curve metric '{metric}' is not one of "
                            f"{', '.join(EPOCH_METRICS)}, both")
    if epochs is None or epochs.empty:
        raise ActbenchError("no epoch rows to plot; training curves come from *.epochs.csv files")
    missing = [c for c in ("activation", "epoch", *metrics) if c not in epochs.columns]
    if missing:
        raise ActbenchError(f"the epoch rows lack the columns {', '.join(missing)}")
    rows = epochs.assign(**{c: pd.to_numeric(epochs[c], errors="coerce")
                            for c in ("epoch", *metrics)})
    rows = rows[_finite(rows["epoch"]) & np.any([_finite(rows[m]) for m in metrics], axis=0)]
    if rows.empty:
        raise ActbenchError(f"no epoch rows with a finite {' or '.join(metrics)} to plot")
    return rows, metrics


def _curve_panels(rows: pd.DataFrame, runs: pd.DataFrame | None
                  ) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The rows with `_complete`, `_end` and `_epochs` (planned, else reached) per run, the
    run key, and the panel keys: suite and sweep keys that vary, and `_epochs` wherever runs of
    different lengths would otherwise share a panel (they are never averaged together)."""
    key = _run_key(rows)
    outcome = run_outcomes(rows, runs)
    facts = outcome[key].assign(_complete=outcome["complete"], _end=outcome["end"],
                                _epochs=outcome["planned"].fillna(outcome["done"]))
    rows = rows.merge(facts, on=key, how="left")
    panel_keys = _varying(rows, (["suite"] if "suite" in rows.columns else [])
                          + sweep_columns(rows))
    lengths = rows.groupby(panel_keys, dropna=False)["_epochs"].nunique() if panel_keys \
        else pd.Series([rows["_epochs"].nunique()])
    if (lengths > 1).any():
        panel_keys.append("_epochs")
    return rows, key, panel_keys


def _curve_title(values: dict) -> str:
    shown = {k: v for k, v in values.items() if k != "_epochs"}
    title = _group_title(shown) if shown else ""
    if "_epochs" in values:
        title += ("\n" if title else "") + f"{values['_epochs']:g} epochs"
    return title


def _draw_curve_panel(ax, panel: pd.DataFrame, key: list[str], metrics: tuple[str, ...],
                      scale: float, style_of: dict) -> bool:
    """Per activation: the mean over its complete runs with their min-max band, and each run
    that stopped early as its own short-dashed line ending in an X, labelled how it ended.
    Returns whether any run stopped early."""
    early = False
    for name, runs in panel.groupby(panel["activation"].astype(str), sort=False):
        color = activation_color(name)
        complete = runs[runs["_complete"].astype(bool)]
        for column in metrics:
            per_run = complete.groupby([*key, "epoch"], dropna=False)[column].mean().dropna()
            if per_run.empty:
                continue
            curve = per_run.groupby(level="epoch").agg(["mean", "min", "max"])
            x = curve.index.to_numpy(dtype=float)
            count = len(per_run.droplevel("epoch").index.unique())
            ax.plot(x, curve["mean"] * scale, color=color, linestyle=style_of[column],
                    linewidth=1.7, zorder=3, label=f"{name}: mean of {count} complete runs")
            ax.fill_between(x, curve["min"] * scale, curve["max"] * scale, color=color,
                            alpha=0.15, linewidth=0, zorder=2)
        for _, run in runs[~runs["_complete"].astype(bool)].groupby(key, sort=False,
                                                                      dropna=False):
            early = True
            _draw_early_run(ax, run, metrics, scale, color, f"{name}: {run['_end'].iloc[0]}")
    return early


def _draw_early_run(ax, run: pd.DataFrame, metrics: tuple[str, ...], scale: float, color,
                    label: str) -> None:
    """One run that stopped before its planned epochs: its own curve, short-dashed, an X at its
    last epoch with how it ended written beside it."""
    for number, column in enumerate(metrics):
        curve = run.groupby("epoch")[column].mean().dropna()
        if curve.empty:
            continue
        x, y = curve.index.to_numpy(dtype=float), curve.to_numpy(dtype=float) * scale
        ax.plot(x, y, color=color, linestyle=EARLY_STYLE, linewidth=1.2, alpha=0.9, zorder=4,
                marker="X", markevery=[len(x) - 1], markersize=7, markeredgecolor="black",
                markeredgewidth=0.6, label=label)
        if number == 0:  # the label on the side of the X that has room
            right = x[-1] <= 0.6 * float(run["_epochs"].max())
            ax.annotate(label, (x[-1], y[-1]), xytext=(5 if right else -5, 5),
                        textcoords="offset points", ha="left" if right else "right",
                        fontsize=7, color=color, zorder=5)


def plot_curves(epochs: pd.DataFrame, output: Path, metric: str = "test_acc", *,
                runs: pd.DataFrame | None = None, dpi: float = 150) -> Path:
    """Training curves: per activation the mean over its complete runs per epoch with a min-max
    band, one panel per sweep point and planned epoch count (runs of different lengths are never
    averaged together); metric="both" draws train (dashed) and test (solid) accuracy.

    `runs` (the train report's rows) tells how each run ended: a run that failed, diverged, was
    interrupted (no row: its process ended first) or has fewer epochs than planned is left out of
    the mean and drawn on its own, short-dashed, with an X and "interrupted at 24/30" at its end.
    """
    output = check_output_path(output)
    rows, metrics = _curve_rows(epochs, metric)
    rows, key, panel_keys = _curve_panels(rows, runs)
    groups = _groups(rows, panel_keys)
    label, scale = metric_axis(metric if metric != "both" else "test_acc")
    if metric == "both":
        label = "accuracy (%)"
    activations = list(dict.fromkeys(rows["activation"].astype(str)))
    style_of = {"test_acc": "-", "train_acc": (0, (5, 2))} if metric == "both" else {metric: "-"}
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    with plt.rc_context(STYLE):
        fig, axes = _grid(plt, len(groups), 3, (4.6, 3.5), 2.6, sharey=True)
        early = False
        for ax, (values, panel) in zip(axes, groups):
            early |= _draw_curve_panel(ax, panel, key, metrics, scale, style_of)
            ax.set_xlabel("epoch")
            _ylabel(ax, label)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(True, alpha=0.3)
            if values:
                ax.set_title(_curve_title(values))
        _legend(fig, _curves_legend(activations, style_of, early))
        _title(fig, f"Training curves: {label}", 2.6)
        return _save(fig, output, dpi)


def _curves_legend(activations: list[str], style_of: dict, early: bool) -> list:
    entries = [_line(name, color=activation_color(name), linewidth=1.8) for name in activations]
    if "train_acc" in style_of:
        entries += [_heading(""), _line("test", color=NEUTRAL_COLOR, linestyle="-"),
                    _line("train", color=NEUTRAL_COLOR, linestyle=style_of["train_acc"])]
    entries += [_heading(""), _line("mean over complete runs", color=NEUTRAL_COLOR),
                _band("min–max over complete runs")]
    if early:
        entries.append(_line("one run that stopped early\n(X: its last epoch)",
                             color=NEUTRAL_COLOR, linestyle=EARLY_STYLE, marker="X",
                             markeredgecolor="black", markeredgewidth=0.6))
    return entries


# -- every figure the data allows -----------------------------------------------------------------

def train_sweep_keys(comparison) -> list[str]:
    """The comparison's group keys that are sweep keys (not schema columns) and vary."""
    table = getattr(comparison, "table", None)
    if table is None:
        return []
    keys = [k for k in comparison.group_keys if k not in RUN_COLUMNS]
    return _varying(table, keys)


# -- model reports: throughput against batch size ------------------------------------------

MODE_TITLES = {"infer": "inference", "train": "training step"}


def model_rows(frame: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of model reports with a throughput to draw."""
    if frame is None or frame.empty or "kind" not in frame.columns:
        return pd.DataFrame()
    rows = frame[frame["kind"].astype(str) == "model"].copy()
    if rows.empty:
        return rows
    rows = rows[rows["status"].astype(str).isin(("ok", "noisy"))]
    for column in ("batch_size", "samples_per_s", "samples_per_s_ci_low", "samples_per_s_ci_high"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce") if column in rows else np.nan
    rows["_hollow"] = hollow_rows(rows)
    return rows[_finite(rows["samples_per_s"]) & (rows["samples_per_s"] > 0)]


def plot_model(frame: pd.DataFrame, output: Path, *, dpi: float = 150) -> Path:
    """Samples per second against batch size (log-log) for every model report row."""
    output = check_output_path(output)
    rows = model_rows(frame)
    if rows.empty:
        raise ActbenchError("no model timings to plot: no model row has status ok or noisy")
    rows = rows.assign(_panel=_panel_titles(rows)).sort_values("mode", kind="stable")
    panels = list(dict.fromkeys(rows["_panel"]))
    activations = list(dict.fromkeys(rows["activation"].astype(str)))
    impls = list(dict.fromkeys(rows["impl"].astype(str)))
    style_of = {impl: LINE_STYLES[i % len(LINE_STYLES)] if len(impls) > 1 else "-"
                for i, impl in enumerate(impls)}
    plt = _pyplot()
    columns = min(len(panels), 3)
    grid_rows = (len(panels) + columns - 1) // columns
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(grid_rows, columns, squeeze=False, layout="constrained",
                                 figsize=(4.2 * columns + 2.4, 3.3 * grid_rows + 0.6))
        flat = list(axes.ravel())
        for ax, panel in zip(flat, panels):
            _draw_panel(ax, rows[rows["_panel"] == panel], style_of, panel)
        for ax in flat[len(panels):]:
            ax.set_visible(False)
        flat[0].set_ylabel("samples per second (log scale)")
        entries = [_heading("activation")] + [_line(a, color=activation_color(a), marker="o")
                                              for a in activations]
        headings = ["activation"]
        if len(impls) > 1:
            entries += [_heading("implementation")] + [_line(i, color="0.35", linestyle=style_of[i])
                                                      for i in impls]
            headings.append("implementation")
        entries.append(_band("95 % CI of the median"))
        if rows["_hollow"].any():
            entries.append(_line("hollow: noisy", color="0.35", marker="o", markerfacecolor="white",
                                 linestyle="none"))
        _legend(fig, entries, headings)
        _title(fig, "Throughput against batch size (batch / median step time)", 2.4)
        return _save(fig, output, dpi)


def _panel_titles(rows: pd.DataFrame) -> pd.Series:
    """model · mode, plus whatever else varies (device, precision, sample shape, layout,
    compilation, file): a panel's points differ in batch size alone."""
    precision = rows["dtype"].astype(str).where(rows["amp"].astype(str).str.lower() != "true",
                                                rows["dtype"].astype(str) + "+amp")
    sample = rows["input_shape"].astype(str).str.partition("x")[2]
    flags = [rows[column].astype(str).str.lower().map({"true": label}).fillna("")
             for column, label in (("channels_last", "channels-last"), ("compile", "compiled"))]
    parts = [rows["model"].astype(str),
             rows["mode"].astype(str).map(lambda m: MODE_TITLES.get(m, m))]
    for column in (rows["device"].astype(str), precision, sample, *flags):
        if column.nunique() > 1:
            parts.append(column)
    if "file" in rows and rows["file"].nunique() > 1:
        parts.append(rows["file"].astype(str))
    return pd.concat(parts, axis=1).apply(lambda cells: " · ".join(c for c in cells if c), axis=1)


def _draw_panel(ax, panel: pd.DataFrame, style_of: dict, title: str) -> None:
    panel = panel.assign(_y=panel["samples_per_s"], _low=panel["samples_per_s_ci_low"],
                         _high=panel["samples_per_s_ci_high"])
    for (activation, impl), series in panel.groupby(["activation", "impl"], sort=False):
        _draw_series(ax, series, activation_color(str(activation)), style_of[str(impl)], "o",
                     x_column="batch_size")
    from matplotlib.ticker import FuncFormatter

    sizes = np.sort(panel["batch_size"].unique())
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    _log_axis(ax.yaxis, FuncFormatter(lambda value, _: f"{value:g}"))
    ax.set_xticks(sizes, [f"{int(s)}" for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("batch size (log scale)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)


def write_figures(micro: pd.DataFrame | None, train: pd.DataFrame | None,
                  epochs: pd.DataFrame | None, comparison, output: Path,
                  micro_metric: str = "median_s", *, noise=None, dpi: float = 150) -> list[Path]:
    """Every figure the data allows: micro, train points, one per varying sweep key, accuracy
    against input noise (`noise`: a comparison with the noise level as a group key), curves.

    One figure goes to `output` itself; several go next to it as <stem>-micro, -train,
    -sweep-<key>, -noise and -curves with output's suffix. Returns the paths written.
    """
    output = check_output_path(output)
    plans: list[tuple[str, Callable[[Path], Path]]] = []
    models = not model_rows(micro).empty
    if models:  # model reports' rows come with the micro rows (compare/model_rows.py)
        plans.append(("model", lambda path, rows=micro: plot_model(rows, path, dpi=dpi)))
        micro = micro[micro["kind"].astype(str) != "model"]
    if not measured_micro_rows(micro, micro_metric).empty:
        plans.append(("micro", lambda path: plot_micro(micro, path, micro_metric, dpi=dpi)))
    table = getattr(comparison, "table", None)
    has_results = table is not None and not table.empty and _finite(table["mean"]).any()
    if has_results and train is not None and not train.empty:
        plans.append(("train", lambda path: plot_train(comparison, train, path, dpi=dpi)))
    if has_results:
        for key in train_sweep_keys(comparison):
            plans.append((f"sweep-{file_name_part(key)}",
                          lambda path, key=key: plot_sweep(comparison, key, path, dpi=dpi)))
    if noise is not None and not noise.table.empty and _finite(noise.table["mean"]).any():
        plans.append(("noise", lambda path: plot_sweep(noise, NOISE_KEY, path, dpi=dpi)))
    if epochs is not None and not epochs.empty and "test_acc" in epochs.columns and \
            _finite(pd.to_numeric(epochs["test_acc"], errors="coerce")).any():
        plans.append(("curves", lambda path: plot_curves(epochs, path, runs=train, dpi=dpi)))
    if not plans:
        raise ActbenchError("nothing to plot: no micro timings, training results or epoch rows "
                            "with values")
    if len(plans) == 1:
        return [plans[0][1](output)]
    return [draw(output.with_name(f"{output.stem}-{name}{output.suffix}")) for name, draw in plans]


def comparison_figures(comparison, output: Path, *, dpi: float = 150) -> list[Path]:
    """Every figure of a comparison (`write_figures`); the micro figure shows GB/s when that is
    the compared metric, else time, the only two it can draw."""
    reports = comparison.reports
    micro = comparison.micro
    micro_metric = "gbps" if micro is not None and micro.metric == "gbps" else "median_s"
    return write_figures(reports.micro, reports.train, reports.epochs, comparison.train, output,
                         micro_metric=micro_metric, noise=comparison.noise, dpi=dpi)

"""The figure of model reports: throughput against batch size, one panel per model and mode (and
device and precision where they vary), a line per activation in its colour, the median's
interval as a band, hollow markers where a row was noisy. matplotlib is imported inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ActbenchError
from .compare_plots import (LINE_STYLES, STYLE, _band, _finite, _heading, _legend, _line,
                            _log_axis, _pyplot, _save, _title, hollow_rows)
from .plots import activation_color, check_output_path

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
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
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
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots((len(panels) + columns - 1) // columns, columns, squeeze=False,
                                 layout="constrained",
                                 figsize=(4.2 * columns + 2.4, 3.3 * ((len(panels) - 1) // columns + 1)
                                          + 0.6))
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
    """model · mode, plus device and precision where the rows have several."""
    precision = rows["dtype"].astype(str).where(rows["amp"].astype(str).str.lower() != "true",
                                                rows["dtype"].astype(str) + "+amp")
    parts = [rows["model"].astype(str),
             rows["mode"].astype(str).map(lambda m: MODE_TITLES.get(m, m))]
    for column in (rows["device"].astype(str), precision):
        if column.nunique() > 1:
            parts.append(column)
    if "file" in rows and rows["file"].nunique() > 1:
        parts.append(rows["file"].astype(str))
    title = parts[0]
    for part in parts[1:]:
        title = title + " · " + part
    return title


def _draw_panel(ax, panel: pd.DataFrame, style_of: dict, title: str) -> None:
    for (activation, impl), series in panel.groupby(["activation", "impl"], sort=False):
        color = activation_color(str(activation))
        points = series.groupby("batch_size").agg(
            y=("samples_per_s", "median"), low=("samples_per_s_ci_low", "median"),
            high=("samples_per_s_ci_high", "median"), hollow=("_hollow", "any"))
        x = points.index.to_numpy(dtype=float)
        ax.plot(x, points["y"], color=color, linestyle=style_of[str(impl)], linewidth=1.6,
                marker="o", markersize=5, zorder=3)
        band = np.asarray(_finite(points["low"]) & _finite(points["high"]), dtype=bool)
        if band.any():
            ax.fill_between(x, points["low"], points["high"], where=band, color=color, alpha=0.18,
                            linewidth=0, zorder=2)
        hollow = points["hollow"].to_numpy(dtype=bool)
        if hollow.any():
            ax.plot(x[hollow], points["y"].to_numpy()[hollow], linestyle="none", marker="o",
                    markersize=5, markerfacecolor="white", markeredgecolor=color,
                    markeredgewidth=1.4, zorder=4)
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

"""Comparison results for people and for machines.

The analysis (actbench.compare) yields tidy frames of numbers; here they become `Section`s of
formatted text (shared by the terminal, Markdown and HTML) or plain CSV / JSON. Nothing here
computes a statistic: only formatting and choosing which cell to highlight.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..compare.metrics import is_accuracy
from .micro_tables import format_bytes, format_seconds


@dataclass
class Section:
    title: str
    table: pd.DataFrame  # formatted cells (strings)
    notes: list[str] = field(default_factory=list)
    highlight: set[tuple[int, str]] = field(default_factory=set)  # (row position, column): best cells


def _text(value) -> str:
    """A cell: missing values are blank, never 'nan'."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def format_value(value: float, metric: str) -> str:
    if not _finite(value):
        return ""
    if metric.endswith("_s"):
        return format_seconds(float(value))
    if metric.endswith("bytes"):
        return format_bytes(float(value))
    if metric == "roofline_frac" or is_accuracy(metric):
        return f"{100 * float(value):.2f} %"
    return f"{float(value):.4g}"


# -- micro ----------------------------------------------------------------------------------------

def speedup_text(ratio: float, low: float, high: float, is_time: bool) -> str:
    """'1.32x faster ± 0.03' for a time ratio value/baseline below one, 'x slower' above."""
    if not math.isfinite(ratio) or ratio <= 0:
        return ""
    if not is_time:
        return f"{ratio:.2f}x"
    faster = ratio < 1
    factor = 1 / ratio if faster else ratio
    spread = ""
    if math.isfinite(low) and math.isfinite(high) and low > 0:
        bounds = (1 / high, 1 / low) if faster else (low, high)
        spread = f" ± {max(abs(factor - bounds[0]), abs(bounds[1] - factor)):.2f}"
    if abs(factor - 1) < 0.005:
        return f"1.00x (same){spread}"
    return f"{factor:.2f}x {'faster' if faster else 'slower'}{spread}"


def _ratio_text(row, comparison) -> str:
    if row["is_baseline"]:
        return "baseline"
    if not _finite(row["ratio"]):
        return ""
    if comparison.by != "activation" and comparison.is_time:
        return speedup_text(row["ratio"], row["ratio_low"], row["ratio_high"], True)
    text = f"{row['ratio']:.2f}x"
    if _finite(row["ratio_low"]) and _finite(row["ratio_high"]):
        text += f" ({row['ratio_low']:.2f}–{row['ratio_high']:.2f})"
    return text


def micro_sections(comparison) -> list[Section]:
    """One section per group (device, dtype, pass, and file where files are groups); a shape
    column when a section spans several sizes; the best value per size highlighted."""
    table = comparison.table
    outer = [k for k in comparison.group_keys if k not in ("numel", "activation", "impl")]
    inner = [k for k in comparison.group_keys if k in ("activation", "impl")]
    sections = []
    baseline_name = comparison.baseline
    for key, group in table.groupby(outer, sort=False) if outer else [((), table)]:
        key = key if isinstance(key, tuple) else (key,)
        rows = []
        best_rows: set[int] = set()
        shapes = list(dict.fromkeys(group["shape"].astype(str)))
        compared = [k for k in comparison.group_keys if k not in outer]  # what shares a baseline
        for _, together in group.groupby(compared, sort=False) if compared else [((), group)]:
            usable = together[together["value"].map(_finite)]
            if len(usable) > 1:
                pick = usable["value"].idxmax() if comparison.higher_is_better else usable["value"].idxmin()
                best_rows.add(pick)
        for index, row in group.iterrows():
            cells = {k: _text(row[k]) for k in (*inner, *comparison.label_keys) if k != "shape"}
            if len(shapes) > 1:
                cells["shape"] = str(row["shape"])
            cells[comparison.metric] = format_value(row["value"], comparison.metric)
            if comparison.metric == "median_s":
                cells["± CI"] = (f"{100 * (row['value_high'] - row['value_low']) / 2 / row['value']:.1f} %"
                                 if _finite(row["value_low"]) and row["value"] else "")
            cells[f"vs {baseline_name}"] = _ratio_text(row, comparison)
            if comparison.metric != "gbps":
                cells["GB/s"] = f"{row['gbps']:.1f}" if _finite(row["gbps"]) else ""
            cells["roofline"] = (f"{100 * row['roofline_frac']:.0f} %" if _finite(row["roofline_frac"])
                                 else "")
            cells["saved"] = f"{row['saved_x_input']:.2f}x" if _finite(row["saved_x_input"]) else ""
            status = "" if row["status"] in ("ok", "noisy") else str(row["status"])
            cells["flags"] = ", ".join(x for x in (status, str(row["flags"]).replace(";", ", ")) if x)
            rows.append((index, cells))
        frame = pd.DataFrame([cells for _, cells in rows])
        highlight = {(position, comparison.metric) for position, (index, _) in enumerate(rows)
                     if index in best_rows}
        shown = [_text(v) or "—" for k, v in zip(outer, key)
                 if k != "file" or table["file"].nunique() > 1]
        title = " · ".join(shown) or "micro"
        frame = frame.fillna("")
        sections.append(Section(title, frame, [], highlight))
    if sections:
        sections[-1].notes = list(comparison.notes) + _micro_legend(comparison)
    return sections


def _micro_legend(comparison) -> list[str]:
    lines = []
    if comparison.by == "activation":
        lines.append(f"vs {comparison.baseline}: {comparison.metric} divided by "
                     f"{comparison.baseline}'s in the same group, with its 95 % interval")
    methods = set(comparison.table["uncertainty"]) - {""}
    if methods:
        lines.append("intervals from " + " and ".join(sorted(methods)))
    if comparison.table["flags"].str.contains("noisy").any():
        lines.append("noisy: the median's confidence interval did not reach the target before the "
                     "time limit")
    if comparison.table["flags"].str.contains("throttled").any():
        lines.append("throttled: the GPU reported clock throttling during the measurement")
    return lines


# -- train ----------------------------------------------------------------------------------------

def significance_mark(p: float, alpha: float) -> str:
    """* below alpha, ** below alpha/5, *** below alpha/50 (0.05, 0.01, 0.001 at the default)."""
    if not _finite(p):
        return ""
    return "***" if p < alpha / 50 else "**" if p < alpha / 5 else "*" if p < alpha else "ns"


def _p_text(p: float) -> str:
    if not _finite(p):
        return ""
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def train_sections(comparison, title: str | None = None) -> list[Section]:
    """One table: per group and activation, seeds, mean ± std, CI, difference, p-values, effect."""
    table = comparison.table
    metric = comparison.metric
    scale = 100.0 if is_accuracy(metric) else 1.0
    unit = " (%)" if scale == 100 else ""

    def number(value, signed=False):
        if not _finite(value):
            return ""
        return f"{scale * float(value):{'+' if signed else ''}.2f}" if scale == 100 else \
            f"{float(value):{'+' if signed else ''}.4g}"

    rows, best = [], set()
    for position, (_, row) in enumerate(table.iterrows()):
        cells = {k: _text(row[k]) or "—" for k in comparison.group_keys}
        cells["activation"] = str(row["activation"])
        cells["n"] = f"{int(row['n'])}"
        mean = number(row["mean"])
        cells[f"mean ± std{unit}"] = mean + (f" ± {number(row['std'])}" if _finite(row["std"]) else "")
        cells["95 % CI"] = (f"{number(row['ci_low'])} – {number(row['ci_high'])}"
                            if _finite(row["ci_low"]) else "")
        is_base = row["activation"] == comparison.baseline
        cells[f"vs {comparison.baseline}"] = "baseline" if is_base else number(row["diff"], True)
        cells["test"] = str(row["test"])
        cells["p"] = _p_text(row["p_value"])
        cells["p (Holm)"] = ("" if is_base else
                             f"{_p_text(row['p_holm'])} {significance_mark(row['p_holm'], comparison.alpha)}".strip())
        cells["p (M-W)"] = _p_text(row["p_mannwhitney"])
        cells["d"] = f"{row['cohens_d']:+.2f}" if _finite(row["cohens_d"]) and not is_base else ""
        cells["rank"] = f"{int(row['rank'])}" if _finite(row["rank"]) else ""
        cells["note"] = str(row["note"]) if str(row["note"]) not in ("", "nan") else ""
        if _finite(row["rank"]) and int(row["rank"]) == 1:
            best.add(position)
        rows.append(cells)
    frame = pd.DataFrame(rows)
    for optional in ("p (M-W)", "note"):  # columns with nothing to say are left out
        if optional in frame and not (frame[optional] != "").any():
            frame = frame.drop(columns=optional)
    direction = "higher" if comparison.higher_is_better else "lower"
    title = f"{title or metric + ' per activation'} ({direction} is better)"
    notes = [*comparison.notes,
             f"* p < {comparison.alpha:g}, ** p < {comparison.alpha / 5:g}, "
             f"*** p < {comparison.alpha / 50:g} after Holm's correction; ns: not significant"]
    return [Section(title, frame, notes, {(p, f"mean ± std{unit}") for p in best})]


def comparison_sections(comparison) -> list[Section]:
    """Every table of a comparison, in order: micro, train, then accuracy under input noise."""
    sections = []
    if comparison.micro is not None:
        sections += micro_sections(comparison.micro)
    if comparison.train is not None:
        sections += train_sections(comparison.train)
    if comparison.noise is not None:
        sections += train_sections(comparison.noise, title="test accuracy under input noise")
    return sections


# -- renderers ------------------------------------------------------------------------------------

def rich_table(section: Section):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(section.title), title_justify="left")
    text_columns = {"activation", "impl", "file", "test", "note", "flags"}
    for column in section.table.columns:
        table.add_column(escape(str(column)), justify="left" if column in text_columns else "right",
                         overflow="fold")
    for position, row in enumerate(section.table.itertuples(index=False)):
        cells = []
        for column, value in zip(section.table.columns, row):
            text = escape(str(value))
            if (position, column) in section.highlight:
                text = f"[bold green]{text}[/]"
            elif column == "flags" and text:
                text = f"[yellow]{text}[/]"
            elif column == "p (Holm)" and text.endswith("*"):
                text = f"[bold]{text}[/]"
            cells.append(text)
        table.add_row(*cells)
    return table


def _markdown_cell(value: str) -> str:
    """Cells come from report files: HTML in them must stay text when the Markdown is rendered."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(sections: list[Section], warnings: list[str] = (), gates: list[str] = ()) -> str:
    """GitHub-flavoured Markdown: a heading and a table per section, best cells in bold."""
    out = io.StringIO()
    for warning in warnings:
        out.write(f"> **warning:** {_markdown_cell(warning)}\n\n")
    for section in sections:
        out.write(f"### {_markdown_cell(section.title)}\n\n")
        columns = list(section.table.columns)
        numeric = [c not in {"activation", "impl", "file", "test", "note", "flags"} for c in columns]
        out.write("| " + " | ".join(_markdown_cell(c) for c in columns) + " |\n")
        out.write("|" + "|".join("---:" if n else "---" for n in numeric) + "|\n")
        for position, row in enumerate(section.table.itertuples(index=False)):
            cells = []
            for column, value in zip(columns, row):
                text = _markdown_cell(value)
                cells.append(f"**{text}**" if (position, column) in section.highlight and text else text)
            out.write("| " + " | ".join(cells) + " |\n")
        for note in section.notes:
            out.write(f"\n{_markdown_cell(note)}\n")
        out.write("\n")
    for line in gates:
        out.write(f"- {_markdown_cell(line)}\n")
    return out.getvalue()


def tidy_frame(micro=None, train=None, noise=None) -> pd.DataFrame:
    """Every comparison row with its numbers unformatted, a `section` column telling which kind."""
    parts = []
    for name, comparison in (("micro", micro), ("train", train), ("noise", noise)):
        if comparison is not None:
            parts.append(comparison.table.assign(section=name, metric=comparison.metric,
                                                 baseline=comparison.baseline))
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True, sort=False)
    return frame[["section", *[c for c in frame.columns if c != "section"]]]


def csv_text(micro=None, train=None, noise=None) -> str:
    return tidy_frame(micro, train, noise).to_csv(index=False)


def _json_value(value):
    """Full precision; NaN is null (no value); infinities are the strings "inf" / "-inf"."""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        return float(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def json_text(micro=None, train=None, warnings: list[str] = (), gates: list[dict] = (),
              noise=None) -> str:
    document = {"warnings": list(warnings), "gates": list(gates)}
    if micro is not None:
        document["micro"] = {"metric": micro.metric, "by": micro.by, "baseline": micro.baseline,
                             "notes": micro.notes, "rows": _records(micro.table)}
    for name, comparison in (("train", train), ("noise", noise)):
        if comparison is not None:
            document[name] = {"metric": comparison.metric, "baseline": comparison.baseline,
                              "alpha": comparison.alpha,
                              "higher_is_better": comparison.higher_is_better,
                              "notes": comparison.notes, "rows": _records(comparison.table)}
    return json.dumps(document, indent=2) + "\n"

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
from json.encoder import encode_basestring_ascii

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
    return _ratio_cell(row["is_baseline"], row["ratio"], row["ratio_low"], row["ratio_high"],
                       comparison)


def _ratio_cell(is_baseline, ratio, low, high, comparison) -> str:
    if is_baseline:
        return "baseline"
    if not _finite(ratio):
        return ""
    if comparison.by != "activation" and comparison.is_time:
        return speedup_text(ratio, low, high, True)
    text = f"{ratio:.2f}x"
    if _finite(low) and _finite(high):
        text += f" ({low:.2f}–{high:.2f})"
    return text


OPTIONAL_MICRO_COLUMNS = ("GB/s", "roofline", "saved")


def micro_sections(comparison, max_rows: int | None = None) -> list[Section]:
    """One section per group (device, dtype, pass, and file where files are groups); a shape
    column when a section spans several sizes; the best value per size highlighted.

    Cells are formatted a column at a time, and only for the rows shown: with `max_rows`, the
    sections keep their order and hold at most that many rows together (the one where the limit
    falls is cut short, later ones are left out) and the last section shown says what is not."""
    table = comparison.table
    outer = [k for k in comparison.group_keys if k not in ("numel", "activation", "impl")]
    best = _best_rows(table, comparison, outer)
    several_files = "file" in table and table["file"].nunique() > 1
    parts = _section_rows(table, outer)
    before = np.cumsum([0] + [len(rows) for _, rows in parts])  # rows in the sections before
    budget = before[-1] if max_rows is None else max_rows
    shown = [(key, rows[:budget - before[i]]) for i, (key, rows) in enumerate(parts)
             if before[i] < budget]
    formatted = _micro_cells(table.iloc[np.concatenate([r for _, r in shown])], comparison) \
        if shown else pd.DataFrame()
    sections, start = [], 0
    for (key, rows), (_, every) in zip(shown, parts):
        frame = formatted.iloc[start:start + len(rows)].reset_index(drop=True)
        start += len(rows)
        if table["shape"].iloc[every].astype(str).nunique() < 2:
            frame = frame.drop(columns="shape")
        # columns nothing in the section fills (a model's rows have no roofline)
        frame = frame.drop(columns=[c for c in OPTIONAL_MICRO_COLUMNS
                                    if c in frame and not frame[c].astype(bool).any()])
        highlight = {(position, comparison.metric) for position, index in enumerate(rows)
                     if index in best}
        titled = [_text(v) or "—" for k, v in zip(outer, key) if k != "file" or several_files]
        sections.append(Section(" · ".join(titled) or "micro", frame, [], highlight))
    if sections:
        cut = [_left_out(start, before[-1])] if start < before[-1] else []
        sections[-1].notes = list(comparison.notes) + _micro_legend(comparison) + cut
    return sections


def _section_rows(table: pd.DataFrame, outer: list[str]) -> list[tuple[tuple, np.ndarray]]:
    """(key, row positions) per section, in the order of first appearance; rows whose key has a
    blank (nan) value belong to no section, as with groupby."""
    if not outer:
        return [((), np.arange(len(table)))]
    codes = table.groupby(outer, sort=False).ngroup().to_numpy(dtype=float)
    order = np.argsort(codes, kind="stable")
    order = order[np.isfinite(codes[order])]
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    parts = np.split(order, bounds) if len(order) else []
    keys = table[outer].iloc[[rows[0] for rows in parts]].itertuples(index=False, name=None)
    return list(zip(keys, parts))


def _best_rows(table: pd.DataFrame, comparison, outer: list[str]) -> set[int]:
    """Positions of the best value among the rows that share a baseline (where there are two
    finite values at least): the highest, or the lowest where lower is better."""
    compared = [k for k in comparison.group_keys if k not in outer]
    values = pd.to_numeric(table["value"], errors="coerce")
    usable = table.assign(value=values)[np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))]
    keys = [*outer, *compared]
    if not keys:
        usable = usable.assign(_all=0)
        keys = ["_all"]
    grouped = usable.groupby(keys, sort=False)["value"]
    several = grouped.transform("size") > 1
    picks = (usable[several].groupby(keys, sort=False)["value"]
             .agg("idxmax" if comparison.higher_is_better else "idxmin"))
    return {table.index.get_loc(label) for label in picks}


def _micro_cells(rows: pd.DataFrame, comparison) -> pd.DataFrame:
    """The formatted cells of these rows, a column at a time (a shape column always)."""
    metric = comparison.metric
    inner = [k for k in comparison.group_keys if k in ("activation", "impl")]
    cells = {k: [_text(v) for v in rows[k].tolist()]
             for k in dict.fromkeys((*inner, *comparison.label_keys)) if k != "shape"}
    cells["shape"] = [str(v) for v in rows["shape"].tolist()]
    value = rows["value"].tolist()
    cells[metric] = [format_value(v, metric) for v in value]
    if metric == "median_s":
        cells["± CI"] = [f"{100 * (high - low) / 2 / v:.1f} %" if _finite(low) and v else ""
                         for v, low, high in zip(value, rows["value_low"].tolist(),
                                                 rows["value_high"].tolist())]
    cells[f"vs {comparison.baseline}"] = _ratio_cells(rows, comparison)
    if metric != "gbps":
        cells["GB/s"] = _number_cells(rows["gbps"], "{:.1f}")
    cells["roofline"] = _number_cells(100 * pd.to_numeric(rows["roofline_frac"], errors="coerce"),
                                      "{:.0f} %")
    cells["saved"] = _number_cells(rows["saved_x_input"], "{:.2f}x")
    cells["flags"] = [", ".join(x for x in ("" if status in ("ok", "noisy") else str(status),
                                            str(flags).replace(";", ", ")) if x)
                      for status, flags in zip(rows["status"].tolist(), rows["flags"].tolist())]
    return pd.DataFrame(cells).fillna("")


def _finite_values(column: pd.Series) -> tuple[list, np.ndarray]:
    """The values, and where each is a finite number (as _finite decides, a column at a time)."""
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return numbers.tolist(), np.isfinite(numbers)


def _number_cells(column: pd.Series, pattern: str) -> list[str]:
    values, finite = _finite_values(column)
    form = pattern.format
    return [form(v) if ok else "" for v, ok in zip(values, finite.tolist())]


def _ratio_cells(rows: pd.DataFrame, comparison) -> list[str]:
    """_ratio_cell for every row: the common case (ratios with an optional interval) inline."""
    if comparison.by != "activation" and comparison.is_time:
        columns = (rows[k].tolist() for k in ("is_baseline", "ratio", "ratio_low", "ratio_high"))
        return [_ratio_cell(*values, comparison) for values in zip(*columns)]
    ratio, has_ratio = _finite_values(rows["ratio"])
    low, has_low = _finite_values(rows["ratio_low"])
    high, has_high = _finite_values(rows["ratio_high"])
    return ["baseline" if base else "" if not ok else
            f"{r:.2f}x ({lo:.2f}–{hi:.2f})" if bounded else f"{r:.2f}x"
            for base, ok, r, lo, hi, bounded in zip(
                rows["is_baseline"].tolist(), has_ratio.tolist(), ratio, low, high,
                (has_low & has_high).tolist())]


def _left_out(shown: int, total: int) -> str:
    return (f"only the first {shown:,} of {total:,} rows are shown here; --format csv, json or "
            "markdown (or -o FILE) writes them all, --where narrows the comparison")


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


def comparison_sections(comparison, max_micro_rows: int | None = None) -> list[Section]:
    """Every table of a comparison, in order: micro, train, then accuracy under input noise;
    at most `max_micro_rows` micro rows (micro_sections), all of them by default."""
    sections = []
    if comparison.micro is not None:
        sections += micro_sections(comparison.micro, max_micro_rows)
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
        out.writelines(_markdown_rows(section))
        for note in section.notes:
            out.write(f"\n{_markdown_cell(note)}\n")
        out.write("\n")
    for line in gates:
        out.write(f"- {_markdown_cell(line)}\n")
    return out.getvalue()


def _markdown_rows(section: Section) -> list[str]:
    """The table's lines, a column at a time (each distinct cell escaped once)."""
    columns = []
    for column in section.table.columns:
        values = section.table[column].tolist()
        escaped = {value: _markdown_cell(value) for value in set(values)}
        cells = [escaped[value] for value in values]
        for position, name in section.highlight:
            if name == column and position < len(cells) and cells[position]:
                cells[position] = f"**{cells[position]}**"
        columns.append(cells)
    return ["| " + " | ".join(row) + " |\n" for row in zip(*columns)]


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
    """The document as json.dumps(indent=2) writes it; the rows, which can be millions, are
    written a column at a time into their place (_json_rows), character for character the same."""
    document = {"warnings": list(warnings), "gates": list(gates)}
    tables = {}

    def rows_of(name: str, comparison) -> str:
        marker = f"\0actbench-rows-{name}\0"
        tables[json.dumps(marker)] = comparison.table
        return marker

    if micro is not None:
        document["micro"] = {"metric": micro.metric, "by": micro.by, "baseline": micro.baseline,
                             "notes": micro.notes, "rows": rows_of("micro", micro)}
    for name, comparison in (("train", train), ("noise", noise)):
        if comparison is not None:
            document[name] = {"metric": comparison.metric, "baseline": comparison.baseline,
                              "alpha": comparison.alpha,
                              "higher_is_better": comparison.higher_is_better,
                              "notes": comparison.notes, "rows": rows_of(name, comparison)}
    text, pieces = json.dumps(document, indent=2), []
    for marker, table in tables.items():  # each list sits two levels down: document, section
        before, _, text = text.partition(marker)
        pieces += [before, *_json_rows(table, level=2)]
    return "".join([*pieces, text, "\n"])


JSON_CHUNK_ROWS = 50_000  # rows turned into text at a time


def _json_rows(frame: pd.DataFrame, level: int) -> list[str]:
    """The pieces of json.dumps(_records(frame), indent=2) for a list at nesting `level`, built a
    column at a time for JSON_CHUNK_ROWS rows at a time."""
    chunk = JSON_CHUNK_ROWS
    if frame.empty:
        return ["[]"]
    item, key = " " * 2 * (level + 1), " " * 2 * (level + 2)
    prefixes = [f"{key}{encode_basestring_ascii(str(name))}: " for name in frame.columns]
    pieces = ["[\n"]
    for start in range(0, len(frame), chunk):
        part = frame.iloc[start:start + chunk]
        columns = [prefix + _json_cells(part[name])
                   for prefix, name in zip(prefixes, frame.columns)]
        rows = [f"{item}{{\n" + ",\n".join(cells) + f"\n{item}}}" for cells in zip(*columns)]
        pieces.append((",\n" if start else "") + ",\n".join(rows))
    return [*pieces, "\n" + " " * 2 * level + "]"]


def _json_cells(column: pd.Series) -> np.ndarray:
    """Each value of a column as json.dumps writes _json_value of it (an array of text)."""
    kind = column.dtype.kind if isinstance(column.dtype, np.dtype) else ""
    if kind == "b":
        return np.where(column.to_numpy(), "true", "false").astype(object)
    if kind in ("i", "u"):
        return np.array(list(map(int.__repr__, column.tolist())), dtype=object)
    if kind == "f":
        values = column.to_numpy(dtype=float)
        texts = np.array(list(map(float.__repr__, values.tolist())), dtype=object)
        texts[np.isnan(values)] = "null"
        texts[values == math.inf], texts[values == -math.inf] = '"inf"', '"-inf"'
        return texts
    if isinstance(column.dtype, pd.StringDtype):
        codes, texts = pd.factorize(column)  # repeated names: each encoded once
        encoded = np.array([*(json.dumps(_json_value(text)) for text in texts), "null"],
                           dtype=object)
        return encoded[codes]  # code -1 (a blank cell) is the last entry: null
    return np.array([json.dumps(_json_value(value)) for value in column.tolist()], dtype=object)

"""A self-contained HTML page of a comparison (`actbench report`): tables, figures, environments.

One file, no network: the CSS is inline, figures are embedded as base64 `data:` URIs, and nothing
needs JavaScript, so the page opens the same from a laptop, a CI artefact or an e-mail. Every cell,
header and note comes from user files and is escaped. Light and dark browsers both get readable
colours (figures sit on a white card, as matplotlib draws them). The environments are one table of
what every report shares and, per report, only what differs, sizes and clocks in human units.
`significant_sections` gives the comparison's sections with a best cell highlighted only where it
is better than the runner-up beyond noise.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from .. import __version__
from ..errors import ActbenchError
from ..records.clock import utc_now
from .compare_tables import Section, comparison_sections
from .micro_tables import format_bytes, significant_best

FIGURE_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CSS = """
:root { color-scheme: light dark; --fg: #1f2328; --bg: #ffffff; --muted: #59636e;
  --border: #d1d9e0; --stripe: #f6f8fa; --best-bg: #dafbe1; --best-fg: #0f5323;
  --warn-bg: #fff8c5; --warn-edge: #bf8700; --code-bg: #f6f8fa; --link: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --border: #3d444d;
    --stripe: #151b23; --best-bg: #0f3d1f; --best-fg: #8ee3a8; --warn-bg: #2b2410;
    --warn-edge: #d29922; --code-bg: #151b23; --link: #4493f8; } }
body { margin: 2rem auto; max-width: 80rem; padding: 0 1.2rem; color: var(--fg);
  background: var(--bg); line-height: 1.45;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif; }
h1 { font-size: 1.6rem; margin-bottom: 0.3rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid var(--border);
  padding-bottom: 0.2rem; }
a { color: var(--link); }
.meta, .notes, figcaption { color: var(--muted); }
pre { background: var(--code-bg); border: 1px solid var(--border); border-radius: 6px;
  padding: 0.6rem 0.8rem; white-space: pre-wrap; word-break: break-word; }
.warnings { background: var(--warn-bg); border-left: 4px solid var(--warn-edge);
  padding: 0.4rem 1rem; border-radius: 4px; }
.table-wrap { overflow-x: auto; margin: 0.6rem 0; }
table { border-collapse: collapse; font-size: 0.88rem; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--border); padding: 0.3rem 0.65rem; text-align: left;
  vertical-align: top; }
th { position: sticky; top: 0; background: var(--bg); }
tbody tr:nth-child(even) { background: var(--stripe); }
td.best { background: var(--best-bg); color: var(--best-fg); font-weight: 600; }
table.environment td:first-child { font-family: ui-monospace, Menlo, Consolas, monospace; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; background: #ffffff; border-radius: 6px;
  padding: 6px; box-sizing: border-box; }
details { margin: 0.6rem 0; }
summary { cursor: pointer; font-weight: 600; }
"""


# The page takes the same sections as the terminal and Markdown renderers: formatted cells, notes
# and the best cells to emphasise ((row position, column) pairs; the tables have a range index).
# `significant_sections(comparison)` gives them with only significant bests highlighted.
HtmlSection = Section


def write_html_report(out_dir: Path, *, title: str, sections: Sequence[HtmlSection],
                      figures: Sequence[Path], environments: Sequence[tuple[str, Mapping]],
                      warnings: Sequence[str], command: str) -> Path:
    """Write out_dir/index.html and return its path; out_dir is created if needed. The sections
    are drawn as given (`significant_sections` for a comparison's)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ActbenchError(f"'{out_dir}' is a file; expected a folder for the HTML report")
    images = [_figure(Path(path)) for path in figures]  # every figure checked before writing
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ActbenchError(f"cannot create folder '{out_dir}': {error.strerror}") from None
    page = _page(title, sections, images, environments, warnings, command)
    return _write_atomically(out_dir / "index.html", page)


def _page(title, sections, images, environments, warnings, command) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             '<meta name="color-scheme" content="light dark">',
             f'<meta name="generator" content="actbench {e(__version__)}">',
             f"<title>{e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
             f"<header><h1>{e(title)}</h1>",
             f'<p class="meta">Written {e(utc_now())} by actbench {e(__version__)} from:</p>',
             f'<pre class="command"><code>{e(command)}</code></pre></header>']
    contents = [(f"section-{i}", section.title) for i, section in enumerate(sections, 1)]
    contents += [("figures", "Figures")] if images else []
    contents += [("environments", "Environments")] if environments else []
    if len(contents) > 1:
        parts.append("<nav><ul>" + "".join(f'<li><a href="#{anchor}">{e(name)}</a></li>'
                                            for anchor, name in contents) + "</ul></nav>")
    if warnings:
        parts.append('<section class="warnings"><h2>Warnings</h2><ul>'
                     + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul></section>")
    for i, section in enumerate(sections, 1):
        parts.append(f'<section id="section-{i}"><h2>{e(section.title)}</h2>')
        parts.append(f'<div class="table-wrap">{_table(section, f"t{i}")}</div>')
        if section.notes:
            parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in section.notes)
                         + "</ul>")
        parts.append("</section>")
    if images:
        parts.append('<section id="figures"><h2>Figures</h2>')
        for name, uri in images:
            parts.append(f'<figure><img src="{uri}" alt="{e(name)}">'
                         f"<figcaption>{e(name)}</figcaption></figure>")
        parts.append("</section>")
    if environments:
        parts += _environments(environments)
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _table(section: HtmlSection, uuid: str) -> str:
    """The section's table with every cell and header escaped and highlighted cells marked."""
    from pandas.io.formats.style import Styler

    table = section.table
    if len(table) == 0:
        return '<p class="notes">No rows.</p>'
    cells = (table.map(_text) if hasattr(table, "map") else table.applymap(_text))
    cells = cells.set_axis(range(len(table)), axis=0).set_axis([str(c) for c in table.columns],
                                                               axis=1)
    styler = Styler(cells, uuid=uuid, cell_ids=False).format(escape="html") \
        .format_index(escape="html", axis=1).hide(axis="index") \
        .set_table_attributes('class="results"')
    if section.highlight:
        if not table.columns.is_unique or not table.index.is_unique:
            raise ValueError(f"section '{section.title}': highlighting needs unique row and "
                             "column labels")
        classes = pd.DataFrame("", index=cells.index, columns=cells.columns)
        for row, column in section.highlight:
            classes.iloc[table.index.get_loc(row), table.columns.get_loc(column)] = "best"
        styler = styler.set_td_classes(classes)
    return styler.to_html()


def _text(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def flatten(mapping: Mapping, prefix: str = "") -> dict[str, str]:
    """Nested dicts (and lists of dicts, such as one entry per GPU) as dotted keys and text."""
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    flat.update(flatten(item, f"{name}.{index}."))
                else:
                    flat[f"{name}.{index}"] = _text(item)
        elif isinstance(value, (list, tuple)):
            flat[name] = ", ".join(_text(v) for v in value)
        else:
            flat[name] = _text(value)
    return flat


# -- environments ---------------------------------------------------------------------------------

NOT_RECORDED = "(not recorded)"
HERTZ = {"hz": 1.0, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}


def human_value(key: str, text: str) -> str:
    """A flattened environment value in human units: a `*_bytes` key in B / KiB / MiB / GiB
    (ram_bytes 33607798784 -> "31.3 GiB"), a `*_hz` (`_khz`, `_mhz`, `_ghz`) key in Hz .. GHz
    (max_sm_clock_mhz 1980 -> "1.98 GHz"); other keys, and values that are not numbers, as they
    are."""
    name = key.rsplit(".", 1)[-1].lower()
    try:
        number = float(text)
    except (TypeError, ValueError):
        return text
    if not math.isfinite(number):
        return text
    if name == "bytes" or name.endswith("_bytes"):
        return format_bytes(number)
    unit = name.rsplit("_", 1)[-1]
    if unit not in HERTZ:
        return text
    hertz = number * HERTZ[unit]
    for symbol, size in (("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3)):
        if abs(hertz) >= size:
            return f"{hertz / size:.4g} {symbol}"
    return f"{hertz:.4g} Hz"


def split_environments(environments: Sequence[tuple[str, Mapping]]
                       ) -> tuple[dict[str, str], list[tuple[str, dict[str, str]]]]:
    """(what every report shares, per report the keys whose values differ between reports), as
    flattened keys and text; a report lacking a key that others have shows NOT_RECORDED."""
    flats = [(label, flatten(environment)) for label, environment in environments]
    if not flats:
        return {}, []
    keys = list(dict.fromkeys(key for _, flat in flats for key in flat))
    first = flats[0][1]
    shared = {key: first[key] for key in keys
              if all(key in flat and flat[key] == first[key] for _, flat in flats)}
    differing = [(label, {key: flat.get(key, NOT_RECORDED) for key in keys if key not in shared})
                 for label, flat in flats]
    return shared, differing


def _environment_table(flat: Mapping[str, str]) -> str:
    frame = pd.DataFrame({"key": list(flat),
                          "value": [human_value(key, value) for key, value in flat.items()]})
    table = frame.to_html(index=False, escape=True, border=0, classes="environment")
    return f'<div class="table-wrap">{table}</div>'


def _environments(environments: Sequence[tuple[str, Mapping]]) -> list[str]:
    """The environment section: one table of what all reports share, then per report only the
    keys that differ (one report: its whole environment)."""
    e = html.escape
    shared, differing = split_environments(environments)
    parts = ['<section id="environments"><h2>Environments</h2>']
    if len(differing) == 1:
        parts.append(f"<details open><summary>{e(differing[0][0])}</summary>"
                     f"{_environment_table(shared)}</details>")
        return parts + ["</section>"]
    parts.append(f"<h3>Shared by all {len(differing)} reports</h3>")
    parts.append(_environment_table(shared) if shared else
                 '<p class="notes">Nothing: every key differs between the reports.</p>')
    parts.append("<h3>Differences per report</h3>")
    if not differing[0][1]:
        parts.append('<p class="notes">None: the reports share one environment.</p>')
    for label, flat in differing:
        if flat:
            parts.append(f"<details open><summary>{e(label)}</summary>"
                         f"{_environment_table(flat)}</details>")
    return parts + ["</section>"]


# -- the best cell, only where it is significant --------------------------------------------------

NO_SIGNIFICANT_BEST_WHY = "the best is within noise of the runner-up, so nothing is highlighted"
SIGNIFICANT_BEST = ("highlighted: the best, better than the runner-up beyond noise (the test "
                    "against the baseline when the runner-up is the baseline, else confidence "
                    "intervals that do not overlap)")


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _best_of(rows: pd.DataFrame, higher_is_better: bool, low: str, high: str,
             tested: Callable[[pd.Series, pd.Series], bool | None]):
    """The index label of the significantly best row of `rows` (column `_value`), or None (also
    for fewer than two values and for a tie). `tested(best, runner_up)` gives the computed test's
    verdict where one exists for that pair, else None: then the intervals `low`..`high` decide
    (micro_tables.significant_best: no overlap)."""
    rows = rows[rows["_value"].map(_number).notna()]
    if len(rows) < 2:
        return None
    ordered = rows.sort_values("_value", ascending=not higher_is_better, kind="stable")
    best, runner_up = ordered.iloc[0], ordered.iloc[1]
    if best["_value"] == runner_up["_value"]:
        return None
    verdict = tested(best, runner_up)
    if verdict is None:
        pair = ordered.iloc[:2]
        verdict = significant_best(list(pair["_value"]), list(pair[low]), list(pair[high]),
                                   higher_is_better=higher_is_better) == 0
    return best.name if verdict else None


def _micro_tested(micro) -> Callable[[pd.Series, pd.Series], bool | None]:
    """Best against runner-up by the ratio interval compare computed, where one of the two is
    the baseline and the other has that interval (the interval must exclude 1)."""
    def tested(best: pd.Series, runner_up: pd.Series) -> bool | None:
        for other, base, sign in ((best, runner_up, 1), (runner_up, best, -1)):
            low, high = _number(other.get("ratio_low")), _number(other.get("ratio_high"))
            if bool(base.get("is_baseline")) and not bool(other.get("is_baseline")) and \
                    not (math.isnan(low) or math.isnan(high)):
                above_one_wins = micro.higher_is_better == (sign > 0)
                return low > 1 if above_one_wins else high < 1
        return None
    return tested


def _train_tested(train) -> Callable[[pd.Series, pd.Series], bool | None]:
    """Best against runner-up by the Holm-adjusted test compare ran, where one of the two is the
    baseline (each activation is tested against the baseline only)."""
    def tested(best: pd.Series, runner_up: pd.Series) -> bool | None:
        for other, base in ((best, runner_up), (runner_up, best)):
            p = _number(other.get("p_holm"))
            if str(base["activation"]) == str(train.baseline) and not math.isnan(p):
                return p < train.alpha
        return None
    return tested


def significant_sections(comparison) -> list[Section]:
    """The comparison's sections (`comparison_sections`) with a best cell kept highlighted only
    where that best is significantly better than the runner-up of its group, and a note on each
    section saying which rule held and where there was no significant best.

    The computed statistics test each row against the baseline, not against the runner-up: where
    one of the two is the baseline that test decides (micro: the ratio interval excludes 1;
    train: Holm-adjusted p below alpha); otherwise the two confidence intervals must not overlap
    (micro: the median's interval, none for other metrics; train: the mean's interval).
    """
    sections = comparison_sections(comparison)
    trains = [train for train in (comparison.train, comparison.noise) if train is not None]
    count = len(sections) - len(trains)
    if comparison.micro is not None:
        _restrict_micro(sections[:count], comparison.micro)
    for section, train in zip(sections[count:], trains):
        table = train.table.assign(_value=train.table["mean"])
        groups = [rows for _, rows in table.groupby(train.group_keys, sort=False, dropna=False)] \
            if train.group_keys else [table]
        winners = [_best_of(rows, train.higher_is_better, "ci_low", "ci_high", _train_tested(train))
                   for rows in groups]
        if len(section.table) != len(table):
            winners = [None] * len(groups)  # rows cannot be matched: nothing is claimed
        _restrict(section, {table.index.get_loc(w) for w in winners if w is not None},
                  _contested(groups))
    return sections


def _restrict_micro(sections: list[Section], micro) -> None:
    """Micro sections are one per group of the keys other than size, activation and impl (as
    compare_tables.micro_sections builds them); within a section, a best per compared set."""
    table = micro.table.assign(_value=micro.table["value"])
    outer = [k for k in micro.group_keys if k not in ("numel", "activation", "impl")]
    compared = [k for k in micro.group_keys if k not in outer]
    groups = [group for _, group in table.groupby(outer, sort=False)] if outer else [table]
    if len(groups) != len(sections) or any(len(group) != len(section.table)
                                            for group, section in zip(groups, sections)):
        for section in sections:  # rows cannot be matched: nothing is claimed
            section.highlight = set()
        return
    for section, group in zip(sections, groups):
        sets = [rows for _, rows in group.groupby(compared, sort=False)] if compared else [group]
        winners = [_best_of(rows, micro.higher_is_better, "value_low", "value_high",
                            _micro_tested(micro)) for rows in sets]
        _restrict(section, {group.index.get_loc(w) for w in winners if w is not None},
                  _contested(sets))


def _contested(groups: list[pd.DataFrame]) -> int:
    """How many groups have at least two values to pick a best from."""
    return sum(int(rows["_value"].map(_number).notna().sum() >= 2) for rows in groups)


def _restrict(section: Section, positions: set[int], contested: int) -> None:
    """Keep the highlighted cells of significant rows only, and say so in the section's notes."""
    section.highlight = {(row, column) for row, column in section.highlight if row in positions}
    undecided = contested - len({row for row, _ in section.highlight})
    if section.highlight:
        section.notes = [*section.notes, SIGNIFICANT_BEST]
    if undecided > 0:
        where = f" in {undecided} of {contested} groups" if contested > 1 else ""
        section.notes = [*section.notes, f"no significant best{where}: {NO_SIGNIFICANT_BEST_WHY}"]


def _figure(path: Path) -> tuple[str, str]:
    """(caption, data: URI) of a PNG or SVG figure."""
    mime = FIGURE_TYPES.get(path.suffix.lower())
    if mime is None:
        raise ActbenchError(f"figure '{path}' cannot be embedded; expected a "
                            f"{' or '.join(FIGURE_TYPES)} file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ActbenchError(f"cannot read figure '{path}': {error.strerror}") from None
    if mime == "image/png" and not data.startswith(PNG_SIGNATURE):
        raise ActbenchError(f"figure '{path}' is not a PNG file")
    return path.name, f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _write_atomically(path: Path, text: str) -> Path:
    """Replace `path` in one step so that a reader never sees half a page."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ActbenchError(f"cannot write '{path}': {error.strerror or error}") from None
    return path

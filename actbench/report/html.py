"""A self-contained HTML page of a comparison (`actbench report`): tables, figures, environments.

One file, no network: the CSS is inline, figures are embedded as base64 `data:` URIs, and nothing
needs JavaScript, so the page opens the same from a laptop, a CI artefact or an e-mail. Every cell,
header and note comes from user files and is escaped. Light and dark browsers both get readable
colours (figures sit on a white card, as matplotlib draws them).
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from .. import __version__
from ..errors import ActbenchError
from ..records.clock import utc_now
from .compare_tables import Section

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
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; background: #ffffff; border-radius: 6px;
  padding: 6px; box-sizing: border-box; }
details { margin: 0.6rem 0; }
summary { cursor: pointer; font-weight: 600; }
"""


# The page takes the same sections as the terminal and Markdown renderers: formatted cells, notes
# and the best cells to emphasise ((row position, column) pairs; the tables have a range index).
HtmlSection = Section


def write_html_report(out_dir: Path, *, title: str, sections: Sequence[HtmlSection],
                      figures: Sequence[Path], environments: Sequence[tuple[str, Mapping]],
                      warnings: Sequence[str], command: str) -> Path:
    """Write out_dir/index.html and return its path; out_dir is created if needed."""
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
        parts.append('<section id="environments"><h2>Environments</h2>')
        for label, environment in environments:
            flat = flatten(environment)
            frame = pd.DataFrame({"key": list(flat), "value": list(flat.values())})
            table = frame.to_html(index=False, escape=True, border=0, classes="environment")
            parts.append(f"<details open><summary>{e(label)}</summary>"
                         f'<div class="table-wrap">{table}</div></details>')
        parts.append("</section>")
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

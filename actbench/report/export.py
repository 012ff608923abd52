"""A comparison as text, one small exporter per format behind one interface.

Every exporter takes the comparison and the gate results and returns the whole text; adding a
format means adding a function and a line to EXPORTERS. The terminal is not an exporter: it gets
the same sections as Rich tables, in colour (`print_sections`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ActbenchError
from .compare_tables import Section, comparison_sections, csv_text, json_text, markdown, rich_table

if TYPE_CHECKING:
    from ..compare.gates import GateResult
    from ..compare.run import Comparison

Exporter = Callable[["Comparison", Sequence["GateResult"]], str]

PLAIN_WIDTH = 160  # a table written to a file is as wide as a piped terminal's


def print_sections(target, sections: Sequence[Section]) -> None:
    """Each section as a Rich table on `target` (a Rich console), its notes below it."""
    for section in sections:
        target.print(rich_table(section))
        for note in section.notes:
            target.print(f"  {note}", markup=False, highlight=False)
        target.print()


def export_table(comparison: Comparison, gates: Sequence[GateResult]) -> str:
    """The terminal's tables without colour; the warnings come first, as a file has no stderr."""
    from rich.console import Console

    buffer = StringIO()
    plain = Console(file=buffer, width=PLAIN_WIDTH, color_system=None)
    for warning in comparison.warnings:
        plain.print(f"warning: {warning}", markup=False, highlight=False)
    print_sections(plain, comparison_sections(comparison))
    return buffer.getvalue()


def export_markdown(comparison: Comparison, gates: Sequence[GateResult]) -> str:
    lines = [f"{'passed' if r.passed else 'FAILED'}: {r.gate.text}" for r in gates]
    return markdown(comparison_sections(comparison), comparison.warnings, lines)


def export_csv(comparison: Comparison, gates: Sequence[GateResult]) -> str:
    """The tidy rows only: a CSV has no place for warnings or gates."""
    return csv_text(comparison.micro, comparison.train, comparison.noise)


def export_json(comparison: Comparison, gates: Sequence[GateResult]) -> str:
    verdicts = [{"gate": r.gate.text, "passed": r.passed, "checked": r.checked,
                 "failures": r.failures} for r in gates]
    return json_text(comparison.micro, comparison.train, comparison.warnings, verdicts,
                     noise=comparison.noise)


EXPORTERS: dict[str, Exporter] = {
    "table": export_table,
    "markdown": export_markdown,
    "csv": export_csv,
    "json": export_json,
}
SUFFIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".csv": "csv", ".json": "json"}


def output_format(fmt: str | None, out: Path | None = None) -> str:
    """The format asked for, else the one the output file's suffix names, else the table."""
    if fmt is None:
        fmt = SUFFIX_FORMATS.get(Path(out).suffix.lower(), "table") if out else "table"
    if fmt not in EXPORTERS:
        raise ActbenchError(f"--format '{fmt}' is unknown; expected one of {', '.join(EXPORTERS)}")
    return fmt


def export(fmt: str, comparison: Comparison, gates: Sequence[GateResult] = ()) -> str:
    return EXPORTERS[output_format(fmt)](comparison, gates)


def write_export(path: Path, text: str) -> None:
    """Write an export, creating missing folders; a folder or an unwritable path is the user's
    mistake, not a traceback."""
    path = Path(path)
    if path.is_dir():
        raise ActbenchError(f"-o '{path}' is a folder; expected a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ActbenchError(f"cannot write '{path}': {error.strerror}") from None

"""What `actbench compare` and `actbench report` produce, from options to output, in order.

`compare_output` yields what to print one piece at a time, so that whatever was printed before a
later step fails (a file that cannot be written, a figure that cannot be drawn) is already out:
warnings first, then the tables or the export, then each gate's verdict, then the figures.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..compare.gates import GateResult
from ..compare.run import Comparison, check_gates, compare_reports
from ..errors import ActbenchError
from ..records.paths import check_writable_folder
from .compare_plots import comparison_figures
from .compare_tables import Section, comparison_sections
from .export import export, output_format, write_export
from .html import significant_sections, write_html_report
from .plots import check_output_path


# The terminal shows the first this many micro rows (a larger comparison ends with a note that
# says how to get all of them): a table of hundreds of thousands of lines is read by no one, and
# drawing it would take longer than the comparison itself.
TERMINAL_MICRO_ROWS = 2000


@dataclass(frozen=True)
class Message:
    """One piece of output: a `line` for stderr, `text` for stdout as it is, or `sections` for
    the terminal as Rich tables. `failed` marks the verdict of a gate that does not hold."""

    line: str | None = None
    text: str | None = None
    sections: list[Section] | None = None
    failed: bool = False


def compare_output(patterns: Sequence[str], *, fmt: str | None = None, out: Path | None = None,
                   plot: Path | None = None, gates: Sequence[str] = (), quiet: bool = False,
                   **options) -> Iterator[Message]:
    """Compare the reports (`options` are compare_reports' keywords), check the gates, and yield
    the output. Every mistake in the options is raised before the first message."""
    fmt = output_format(fmt, out)
    _check_not_an_input(patterns, out=out, plot=plot)
    if plot is not None:
        check_output_path(plot)
    comparison = compare_reports(patterns, **options)
    results = check_gates(comparison, gates)
    for warning in comparison.warnings:
        yield Message(line=f"warning: {warning}")
    yield from _tables(comparison, results, fmt, out, quiet)
    for result in results:  # verdicts before figures: a plotting problem must not hide them
        yield from _verdict(result)
    if plot is not None:
        for path in comparison_figures(comparison, plot):
            yield Message(line=f"wrote {path}")


def _check_not_an_input(patterns: Sequence[str], **outputs: Path | None) -> None:
    """Refuse an output that would overwrite a report being read, or its sidecar or epochs file
    (`-o reports/r.csv` over the report, `-o r.json` over its sidecar)."""
    from ..compare.load import expand_paths
    from ..records.paths import epochs_path, sidecar_path

    inputs = expand_paths(patterns)
    taken = {p.resolve() for path in inputs for p in (path, sidecar_path(path), epochs_path(path))}
    for option, path in outputs.items():
        if path is not None and Path(path).resolve() in taken:
            raise ActbenchError(f"--{option} '{path}' is one of the reports being compared (or a "
                                "file that belongs to one); write the output to another file")


def _tables(comparison: Comparison, results: list[GateResult], fmt: str, out: Path | None,
            quiet: bool) -> Iterator[Message]:
    """The terminal's Rich tables, or the export on stdout or in the file `out`."""
    if out is None and quiet:
        return
    if out is None and fmt == "table":
        yield Message(sections=comparison_sections(comparison, TERMINAL_MICRO_ROWS))
        return
    text = export(fmt, comparison, results)
    if out is None:
        yield Message(text=text)
        return
    write_export(out, text)
    yield Message(line=f"wrote {out}")


def _verdict(result: GateResult) -> Iterator[Message]:
    """The verdict line, then each failing configuration (worst first, the first few)."""
    first, *rest = result.lines()
    yield Message(line=first, failed=not result.passed)
    for line in rest:
        yield Message(line=line)


def write_report_page(patterns: Sequence[str], out: Path, *, command: str, **options) -> Path:
    """Compare the reports (`options` as for compare_reports) and write out/index.html with the
    tables, the figures and each report's environment; returns the page's path. A comparison
    with nothing to draw still gets its page, with a warning in place of the figures."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ActbenchError(f"--out '{out}' is a file; expected a folder for index.html")
    check_writable_folder(out)  # before the comparison, which may take a while
    comparison = compare_reports(patterns, **options)
    try:
        figures = comparison_figures(comparison, out / "figure.png")
    except ActbenchError as error:  # nothing to draw (every run failed): the page has the tables
        figures = []
        comparison.warnings.append(f"no figures: {error}")
    return write_html_report(out, title="actbench report", sections=significant_sections(comparison),
                             figures=figures, environments=comparison.file_environments(),
                             warnings=comparison.warnings, command=command)

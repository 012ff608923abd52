"""`actbench compare` and `actbench report`: reports in, ratios, significance, gates, figures out."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from . import app, console
from ..errors import ActbenchError

EXIT_GATE_FAILED = 1
FORMATS = ("table", "markdown", "csv", "json")
SUFFIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".csv": "csv", ".json": "json"}

_REPORTS = typer.Argument(..., metavar="REPORT...", help="Report CSVs, globs or folders (micro, "
                          "train, epochs and samples files are told apart by their columns).")
_BASELINE = typer.Option(None, help="What ratios and tests are against: an activation (default "
                         "relu, or the suite's baseline), an impl with --by impl (default native), "
                         "a file with --by file (default the first).")
_METRIC = typer.Option(None, help="Column to compare: median_s (micro default), gbps, "
                       "roofline_frac, saved_bytes, ...; final_test_acc (train default), "
                       "best_test_acc, final_test_loss, mean_epoch_s, ...")
_BY = typer.Option("activation", help="Compare along: activation, impl, file or any column "
                   "(dtype, torch_version, host, ...).")
_WHERE = typer.Option(None, help="Keep rows where KEY=VALUE (V1,V2 for several, KEY!=VALUE to "
                      "drop); repeatable.")
_ALPHA = typer.Option(0.05, help="Significance level, after Holm's correction.")


def _format(fmt: str | None, out: Path | None) -> str:
    if fmt is None:
        fmt = SUFFIX_FORMATS.get(out.suffix.lower(), "table") if out else "table"
    if fmt not in FORMATS:
        raise ActbenchError(f"--format '{fmt}' is unknown; expected one of {', '.join(FORMATS)}")
    return fmt


def _command_line() -> str:
    return " ".join(["actbench", *sys.argv[1:]])


@app.command()
def compare(
    reports: list[str] = _REPORTS,
    baseline: str = _BASELINE,
    metric: str = _METRIC,
    by: str = _BY,
    where: list[str] = _WHERE,
    fmt: str = typer.Option(None, "--format", "-f", help="table (default), markdown, csv or json; "
                            "-o FILE.md/.csv/.json picks it from the suffix."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the output to this file instead "
                             "of the terminal."),
    plot: Path = typer.Option(None, help="Write figures: FILE.png (one per kind of data, named "
                              "FILE-micro.png, FILE-train.png, ... when there are several)."),
    fail_if: list[str] = typer.Option(None, "--fail-if", help="Gate: exit 1 when it does not "
                                      "hold, e.g. 'mish.fwd <= 1.5 * relu.fwd' or "
                                      "'max_slowdown <= 5%' (repeatable)."),
    alpha: float = _ALPHA,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No tables; only warnings, gates "
                               "and written paths."),
) -> None:
    """Merge reports: ratios to a baseline with uncertainty, significance across seeds, gates.

    Examples: `actbench compare reports/*.csv`, `actbench compare before.csv after.csv --by file
    --fail-if 'max_slowdown <= 5%'`, `actbench compare reports/train-quick-*.csv --format markdown`.
    """
    from ..compare.run import check_gates, compare_reports

    fmt = _format(fmt, out)
    if plot is not None:
        from ..report.plots import check_output_path

        check_output_path(plot)
    comparison = compare_reports(reports, where=where or (), metric=metric, by=by,
                                 baseline=baseline, alpha=alpha)
    results = check_gates(comparison, fail_if or ())
    for warning in comparison.warnings:
        typer.echo(f"warning: {warning}", err=True)
    _emit(comparison, results, fmt, out, quiet)
    for result in results:  # verdicts before figures: a plotting problem must not hide them
        verdict = "passed" if result.passed else "FAILED"
        typer.echo(f"gate {verdict}: {result.gate.text} ({result.checked} checked)", err=True)
        for failure in result.failures:
            typer.echo(f"  {failure}", err=True)
    if plot is not None:
        for path in _figures(comparison, plot):
            typer.echo(f"wrote {path}", err=True)
    if any(not r.passed for r in results):
        raise typer.Exit(EXIT_GATE_FAILED)


def _figures(comparison, output: Path) -> list[Path]:
    from ..report.compare_plots import write_figures

    reports = comparison.reports
    micro_metric = "gbps" if comparison.micro is not None and comparison.micro.metric == "gbps" \
        else "median_s"
    return write_figures(reports.micro, reports.train, reports.epochs, comparison.train, output,
                         micro_metric=micro_metric, noise=comparison.noise)


def _sections(comparison):
    from ..report.compare_tables import micro_sections, train_sections

    sections = []
    if comparison.micro is not None:
        sections += micro_sections(comparison.micro)
    if comparison.train is not None:
        sections += train_sections(comparison.train)
    if comparison.noise is not None:
        sections += train_sections(comparison.noise, title="test accuracy under input noise")
    return sections


def _emit(comparison, results, fmt: str, out: Path | None, quiet: bool) -> None:
    from ..report import compare_tables as tables

    if fmt == "table":
        if quiet and out is None:
            return
        if out is None:
            terminal = console()
            for section in _sections(comparison):
                _print_section(terminal, section)
            return
        from io import StringIO

        from rich.console import Console

        buffer = StringIO()
        plain = Console(file=buffer, width=160, color_system=None)
        for warning in comparison.warnings:
            plain.print(f"warning: {warning}", markup=False, highlight=False)
        for section in _sections(comparison):
            _print_section(plain, section)
        text = buffer.getvalue()
    elif fmt == "markdown":
        gate_lines = [f"{'passed' if r.passed else 'FAILED'}: {r.gate.text}" for r in results]
        text = tables.markdown(_sections(comparison), comparison.warnings, gate_lines)
    elif fmt == "csv":
        text = tables.csv_text(comparison.micro, comparison.train, comparison.noise)
    else:
        gates = [{"gate": r.gate.text, "passed": r.passed, "checked": r.checked,
                  "failures": r.failures} for r in results]
        text = tables.json_text(comparison.micro, comparison.train, comparison.warnings, gates,
                                noise=comparison.noise)
    if out is not None:
        _write_text(Path(out), text)
        typer.echo(f"wrote {out}", err=True)
    elif not quiet:
        typer.echo(text, nl=False)


def _write_text(path: Path, text: str) -> None:
    if path.is_dir():
        raise ActbenchError(f"-o '{path}' is a folder; expected a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ActbenchError(f"cannot write '{path}': {error.strerror}") from None


def _print_section(target, section) -> None:
    from ..report.compare_tables import rich_table

    target.print(rich_table(section))
    for note in section.notes:
        target.print(f"  {note}", markup=False, highlight=False)
    target.print()


def _environments(comparison) -> list[tuple[str, dict]]:
    """Per report file: the key facts its rows carry, then everything its sidecar recorded."""
    return [(f.label, {**comparison.environments.get(f.label, {}), **f.environment})
            for f in comparison.reports.files]


@app.command()
def report(
    reports: list[str] = _REPORTS,
    out: Path = typer.Option(..., "--out", "-o", help="Folder for index.html and the figures."),
    baseline: str = _BASELINE,
    metric: str = _METRIC,
    by: str = _BY,
    where: list[str] = _WHERE,
    alpha: float = _ALPHA,
) -> None:
    """Write a self-contained HTML page (tables, figures, environments) that opens offline.

    Example: `actbench report reports/*.csv -o reports/html`, then open reports/html/index.html.
    """
    from ..compare.run import compare_reports
    from ..report.html import write_html_report

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ActbenchError(f"--out '{out}' is a file; expected a folder for index.html")
    comparison = compare_reports(reports, where=where or (), metric=metric, by=by,
                                 baseline=baseline, alpha=alpha)
    out.mkdir(parents=True, exist_ok=True)
    try:
        figures = _figures(comparison, out / "figure.png")
    except ActbenchError as error:  # nothing to draw (every run failed): the page has the tables
        figures = []
        comparison.warnings.append(f"no figures: {error}")
    page = write_html_report(out, title="actbench report", sections=_sections(comparison),
                             figures=figures, environments=_environments(comparison),
                             warnings=comparison.warnings, command=_command_line())
    typer.echo(str(page))

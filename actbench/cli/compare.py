"""`actbench compare` and `actbench report`: reports in, ratios, significance, gates, figures out."""

from __future__ import annotations

from pathlib import Path

import typer

from . import EXIT_FAILED, app, console, invoked_command

_REPORTS = typer.Argument(..., metavar="REPORT", help="Report CSVs, globs or folders (micro, "
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
                                      "hold, naming each failing configuration, e.g. "
                                      "'mish.fwd <= 1.5 * relu.fwd' or 'max_slowdown <= 5%'; "
                                      "ci_low(...) / ci_high(...) take an end of the 95% "
                                      "interval: 'ci_low(max_slowdown) <= 5%' fails only where "
                                      "the whole interval is past 5% (repeatable)."),
    alpha: float = _ALPHA,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No tables; only warnings, gates "
                               "and written paths."),
) -> None:
    """Merge reports: ratios to a baseline with uncertainty, significance across seeds, gates.

    Examples: `actbench compare reports/*.csv`, `actbench compare before.csv after.csv --by file
    --fail-if 'max_slowdown <= 5%'`, `actbench compare reports/train-quick-*.csv --format markdown`.
    """
    from ..report.compare_output import compare_output
    from ..report.export import print_sections

    failed = False
    for message in compare_output(reports, fmt=fmt, out=out, plot=plot, gates=fail_if or (),
                                  quiet=quiet, where=where or (), metric=metric, by=by,
                                  baseline=baseline, alpha=alpha):
        if message.sections is not None:
            print_sections(console(), message.sections)
        elif message.line is not None:
            typer.echo(message.line, err=True)
        else:
            typer.echo(message.text, nl=False)
        failed |= message.failed
    if failed:
        raise typer.Exit(EXIT_FAILED)


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
    from ..report.compare_output import write_report_page

    page = write_report_page(reports, out, command=invoked_command(), where=where or (),
                             metric=metric, by=by, baseline=baseline, alpha=alpha)
    typer.echo(str(page))

"""`actbench train SUITE.yaml`: short training runs per activation, seed and sweep point."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ActbenchError, ReportWriteError
from . import EXIT_FAILED, app, console as _console, interrupted_exit
from .progress import ProgressRenderer


@app.command()
def train(
    suite_path: str = typer.Argument(..., metavar="SUITE", help="A suite file, or the name of a "
                                     "shipped suite (quick, cifar10, depth, ...)."),
    set_: list[str] = typer.Option(None, "--set", help="Override a key: --set train.epochs=2 "
                                   "(repeatable, YAML values)."),
    seeds: str = typer.Option(None, help="Seeds to run, a comma list: '0,1,2', or '3' for seed 3 alone (in a suite file, "
                       "'seeds: 3' is a count)."),
    act: list[str] = typer.Option(None, "--act", help="Activations instead of the suite's "
                                  "(comma lists, repeatable)."),
    device: str = typer.Option(None, help="auto, cpu, cuda, cuda:N or mps (overrides train.device)."),
    out: Path = typer.Option(None, "--out", "-o", help="Runs CSV (default reports/train-<suite>-"
                             "<UTC time>.csv; epochs go to <stem>.epochs.csv). An existing report "
                             "is resumed."),
    resume: Path = typer.Option(None, help="Resume this report: runs it holds are skipped."),
    executor: str = typer.Option("local", help="local: each run in a worker process of its own "
                                 "(default); inline: in this process, one at a time; ray: as Ray "
                                 "tasks (pip install 'actbench[ray]')."),
    workers: str = typer.Option("auto", help="Runs at once: a number, or auto (CPU: one per core "
                                "at --threads each; CUDA: one per GPU)."),
    threads: int = typer.Option(None, min=1, help="Torch threads (Ray: CPUs) per run; default the "
                                "suite's train.threads, else the cores shared out."),
    retries: int = typer.Option(0, min=0, help="Tries again for a run whose worker was lost "
                                "(killed, out of memory, node gone)."),
    address: str = typer.Option(None, help="Ray cluster to use (auto, HOST:PORT, ray://HOST:PORT); "
                                "default: a local Ray started for this command."),
    gpus_per_run: float = typer.Option(None, "--gpus-per-run", min=0.0, max=1.0,
                                       help="Ray: GPUs per run (fractions share a GPU); default "
                                       "1 for CUDA runs."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the report's path."),
) -> None:
    """Train every activation x seed x sweep point of a suite; resumable, crash-safe reports.

    Examples: `actbench train suites/quick.yaml`, `actbench train quick --seeds 0 --set
    train.epochs=2`, `actbench train suites/cifar10.yaml --dry-run`.
    The suite format is documented in docs/suites.md.
    """
    from ..train.executor import Execution, execute, prepare, resume_command
    from ..train.resources import parse_workers
    from ..train.suite import load_suite

    if resume is not None and out is not None and Path(resume) != Path(out):
        raise ActbenchError("--resume and --out name different files; give one of them")
    execution = Execution(executor=executor.strip().lower(), workers=parse_workers(workers),
                          threads=threads, retries=retries, address=address,
                          gpus_per_run=gpus_per_run)
    remote = execution.executor == "ray"
    if remote:  # before loading the suite: a missing extra is the first thing to hear of
        from ..cluster import require_ray

        require_ray()
    suite = load_suite(suite_path, overrides=set_ or (), seeds=seeds, activations=act or None,
                       device=device, check_data=not dry_run and not remote)
    suite_run = prepare(suite, resume or out, resume=resume is not None, resolve_devices=not remote)
    console, err = _console(), _console(stderr=True)
    if dry_run:
        _print_plan(console, suite_run)
        return
    if suite_run.done_hashes and not quiet:
        err.print(f"resuming {suite_run.out}: {len(suite_run.runs) - len(suite_run.pending)} of "
                  f"{len(suite_run.runs)} runs already done", highlight=False, markup=False, soft_wrap=True)
    try:
        with ProgressRenderer(err, quiet, transient=False) as on_progress:  # bars stay, as a log
            execute(suite_run, on_progress, execution)
    except (KeyboardInterrupt, ReportWriteError) as stop:  # Ctrl-C, SIGTERM, a full disk
        again = resume_command(suite_path, set_, seeds, act, device, suite_run.out,
                               _execution_flags(executor, workers, threads, retries, address,
                                                gpus_per_run))
        what = f"error: {stop};" if isinstance(stop, ReportWriteError) else "interrupted:"
        err.print(f"{what} {_where_finished_runs_are(suite_run.out)}; resume with: {again}",
                  highlight=False, markup=False, soft_wrap=True)  # one line, however long the path
        code = EXIT_FAILED if isinstance(stop, ReportWriteError) else interrupted_exit(stop)
        raise typer.Exit(code) from None
    if quiet:
        typer.echo(str(suite_run.out))
    else:
        _print_summary(console, err, suite_run)
    _exit_if_not_ok(err, suite_run)


def _where_finished_runs_are(report: Path) -> str:
    """Where the finished runs are, or that there are none (a disk full before the first row)."""
    from ..records.writer import read_rows

    try:
        finished = len(read_rows(report)) if report.exists() else 0
    except (ActbenchError, OSError):
        finished = 0
    return f"finished runs are in {report}" if finished else f"no run finished ({report} holds none)"


def _execution_flags(executor, workers, threads, retries, address, gpus_per_run) -> list[str]:
    """The executor's flags as given (defaults left out), for the resume command."""
    words: list[str] = []
    for flag, value, default in (("--executor", executor, "local"), ("--workers", workers, "auto"),
                                 ("--threads", threads, None), ("--retries", retries, 0),
                                 ("--address", address, None),
                                 ("--gpus-per-run", gpus_per_run, None)):
        if value is not None and value != default:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return words


def _print_plan(console, suite_run) -> None:
    """A dry run: the runs, what is left to do, and where to put missing data."""
    from ..report.train_tables import run_list_table
    from ..train.suite import missing_data

    suite = suite_run.suite
    console.print(run_list_table(suite_run.runs, suite_run.sweep_keys, suite_run.done_hashes))
    console.print(f"{len(suite_run.pending)} of {len(suite_run.runs)} runs to do "
                  f"({len(suite.activations)} activations x {len(suite.seeds)} seeds x "
                  f"{len(suite.points())} sweep points)")
    for line in missing_data(suite):  # where to put the data before a real run
        typer.echo(f"note: {line}", err=True)


def _print_summary(console, err, suite_run) -> None:
    import shlex

    from ..report.train_tables import summary_table
    from ..train.executor import run_rows
    from ..train.summary import summarise

    baseline = suite_run.suite.baseline
    summaries = summarise(run_rows(suite_run), suite_run.sweep_keys, baseline)
    console.print(summary_table(summaries, suite_run.sweep_keys, baseline))
    console.print(f"report: {suite_run.out} (epochs: {suite_run.epochs_out})")
    err.print(f"significance, intervals and figures: actbench compare "
              f"{shlex.quote(str(suite_run.out))} {shlex.quote(str(suite_run.epochs_out))} "
              "--plot reports/figures.png", highlight=False, markup=False, soft_wrap=True)


def _exit_if_not_ok(err, suite_run) -> None:
    from ..train.executor import run_rows

    bad = [row for row in run_rows(suite_run) if row.get("status") != "ok"]
    if bad:
        err.print(f"{len(bad)} run(s) of this suite did not finish ok (failed or diverged); see "
                  f"the status and message columns of {suite_run.out}", highlight=False, markup=False,
                  soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)

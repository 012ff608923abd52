"""`actbench train SUITE.yaml`: short training runs per activation, seed and sweep point."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app, console as _console

EXIT_INTERRUPTED, EXIT_RUNS_FAILED = 130, 1


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
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the report's path."),
) -> None:
    """Train every activation x seed x sweep point of a suite; resumable, crash-safe reports.

    Examples: `actbench train suites/quick.yaml`, `actbench train quick --seeds 0 --set
    train.epochs=2`, `actbench train suites/cifar10.yaml --dry-run`.
    The suite format is documented in docs/suites.md.
    """
    from ..train.suite import load_suite

    if resume is not None and out is not None and Path(resume) != Path(out):
        from ..errors import ActbenchError

        raise ActbenchError("--resume and --out name different files; give one of them")
    suite = load_suite(suite_path, overrides=set_ or (), seeds=seeds,
                       activations=act or None, device=device, check_data=not dry_run)
    from ..train.executor import execute, prepare

    suite_run = prepare(suite, resume or out, resume=resume is not None)
    console, err = _console(), _console(stderr=True)
    if dry_run:
        from ..report.train_tables import run_list_table
        from ..train.suite import missing_data

        console.print(run_list_table(suite_run.runs, suite_run.sweep_keys, suite_run.done_hashes))
        console.print(f"{len(suite_run.pending)} of {len(suite_run.runs)} runs to do "
                      f"({len(suite.activations)} activations x {len(suite.seeds)} seeds x "
                      f"{len(suite.points())} sweep points)")
        for line in missing_data(suite):  # where to put the data before a real run
            typer.echo(f"note: {line}", err=True)
        return
    if suite_run.done_hashes and not quiet:
        err.print(f"resuming {suite_run.out}: {len(suite_run.runs) - len(suite_run.pending)} of "
                  f"{len(suite_run.runs)} runs already done")
    try:
        with _SuiteProgress(err, suite_run, quiet) as on_event:
            execute(suite_run, on_event)
    except KeyboardInterrupt:
        again = _command_line(suite_path, set_, seeds, act, device, suite_run.out)
        err.print(f"interrupted: finished runs are in {suite_run.out}; resume with: {again}",
                  highlight=False, markup=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if quiet:
        typer.echo(str(suite_run.out))
    else:
        from ..report.train_tables import summary_table
        from ..train.executor import run_rows
        from ..train.summary import summarise

        summaries = summarise(run_rows(suite_run), suite_run.sweep_keys, suite.baseline)
        console.print(summary_table(summaries, suite_run.sweep_keys, suite.baseline))
        console.print(f"report: {suite_run.out} (epochs: {suite_run.epochs_out})")
        import shlex

        err.print(f"significance, intervals and figures: actbench compare "
                  f"{shlex.quote(str(suite_run.out))} {shlex.quote(str(suite_run.epochs_out))} "
                  "--plot reports/figures.png", highlight=False, markup=False, soft_wrap=True)
    from ..train.executor import run_rows

    bad = [row for row in run_rows(suite_run) if row.get("status") != "ok"]
    if bad:
        err.print(f"{len(bad)} run(s) of this suite did not finish ok (failed or diverged); see "
                  f"the status and message columns of {suite_run.out}", highlight=False)
        raise typer.Exit(EXIT_RUNS_FAILED)


def _command_line(suite_path, set_, seeds, act, device, out) -> str:
    """The command that resumes this run: the same suite and flags, --resume on its report."""
    import shlex

    words = ["actbench", "train", suite_path]
    for item in set_ or []:
        words += ["--set", item]
    if seeds:
        words += ["--seeds", seeds]
    for item in act or []:
        words += ["--act", item]
    if device:
        words += ["--device", device]
    return shlex.join([*words, "--resume", str(out)])


class _SuiteProgress:
    """Suite-level and run-level progress on stderr; one line per finished run."""

    def __init__(self, console, suite_run, quiet: bool):
        self.console, self.suite_run, self.quiet = console, suite_run, quiet
        self.progress = None

    def __enter__(self):
        total = len(self.suite_run.pending)
        if self.quiet:
            return lambda *args: None
        if self.console.is_terminal:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeRemainingColumn(),
                                     console=self.console)
            self.progress.start()
            self.suite_task = self.progress.add_task("runs", total=total)
            self.run_task = self.progress.add_task("run", total=1)

        def on_event(kind: str, run, *args) -> None:
            if kind == "run_start" and self.progress is not None:
                self.epochs, self.epoch = run.config["train"]["epochs"], 0
                self.progress.reset(self.run_task, total=self.epochs,
                                    description=f"{run.activation.label} seed {run.seed} epoch 1")
            elif kind == "batch" and self.progress is not None:
                step, steps = args
                self.progress.update(self.run_task, total=self.epochs * steps,
                                     completed=self.epoch * steps + step)
            elif kind == "epoch" and self.progress is not None:
                self.epoch = args[0].epoch
                self.progress.update(self.run_task, description=f"{run.activation.label} seed "
                                     f"{run.seed} epoch {min(self.epoch + 1, self.epochs)}")
            elif kind == "run_done":
                result = args[0]
                final = result.final
                acc = f"{100 * final.test_acc:.2f} %" if final else "—"
                sweep = " ".join(f"{k}={v}" for k, v in run.sweep.items())
                line = (f"run {run.index + 1}/{len(self.suite_run.runs)} {run.activation.label} "
                        f"seed {run.seed} {sweep} {result.status}: test acc {acc}, "
                        f"{result.total_s:.1f} s")
                if result.message:
                    line += f" ({result.message[:80]})"
                if self.progress is not None:
                    self.progress.advance(self.suite_task)
                    self.progress.console.print(line, highlight=False, markup=False)
                else:
                    self.console.print(line, highlight=False, markup=False)

        return on_event

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

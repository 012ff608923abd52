"""What the measuring commands (micro, model) share: measuring under the progress bars with a
clean interruption, and the warning and exit code that follow a run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from ..progress import OnProgress
from . import EXIT_FAILED, interrupted_exit


def measure(run: Any, execute: Callable[[OnProgress], None], err_console, quiet: bool,
            already_measured: int = 0) -> None:
    """`execute(on_progress)` under the progress bars. Ctrl-C (or SIGTERM) keeps the rows that
    finished (`run.rows`, in `run.out`), says how to resume and exits as interrupted."""
    from .progress import ProgressRenderer

    if already_measured and not quiet:
        err_console.print(f"resuming {run.out}: {already_measured} configuration(s) already "
                          "measured", highlight=False, markup=False, soft_wrap=True)
    try:
        with ProgressRenderer(err_console, quiet) as on_progress:
            execute(on_progress)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (cli.Terminated)
        err_console.print(f"interrupted: {len(run.rows)} finished configuration(s) are in {run.out}; "
                          "run the same command with --out pointing at it to resume", highlight=False,
                          markup=False, soft_wrap=True)
        raise typer.Exit(interrupted_exit(stop)) from None


def warn_if_busy(err_console, rows) -> None:
    from ..micro.busy import busy_warning

    warning = busy_warning(rows)
    if warning:
        err_console.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)


def exit_if_nothing_measured(err_console, rows, out) -> None:
    """Exit 1 when this command tried configurations and none has a timing (ok or noisy): all
    out of memory, say. A report of failures is not a result."""
    from collections import Counter

    if rows and not any(row.get("status") in ("ok", "noisy") for row in rows):
        counts = ", ".join(f"{status} x{n}" for status, n in Counter(r.get("status") for r in rows).items())
        err_console.print(f"no configuration was measured ({counts}); see the status and message "
                          f"columns of {out}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)

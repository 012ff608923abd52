"""The `actbench` command: one Typer app, one thin module per command group.

Library code raises ActbenchError for user mistakes; `ActbenchGroup` turns it into one line on
stderr and exit code 2 (``--debug`` or ACTBENCH_DEBUG=1 shows the traceback instead).
"""

from __future__ import annotations

import os
import signal
import sys

import typer
from typer.core import TyperCommand, TyperGroup

from .. import __version__
from ..errors import ActbenchError

# The option parser's usage error, whichever parser this typer uses (its own or click's):
# typer's public BadParameter derives from it.
USAGE_ERROR = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError")

EXIT_FAILED = 1  # runs that did not finish ok, a gate that does not hold
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
EXIT_TERMINATED = 143  # SIGTERM (a scheduler's time limit, `kill`), as a shell reports it


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it stops a command the way Ctrl-C does:
    workers stopped, finished rows kept, the resume command printed."""


def interrupted_exit(stop: KeyboardInterrupt) -> int:
    """The exit code for a command stopped by Ctrl-C or SIGTERM."""
    return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED


def _terminate(signum, frame) -> None:
    raise Terminated()


def _without_type_noise(params: list) -> list:
    """A flag takes no value, so help shows no `<bool>` type next to it (Typer's default)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class ActbenchCommand(TyperCommand):
    """A command whose help leaves out what says nothing (see `_without_type_noise`)."""

    def get_params(self, ctx: typer.Context) -> list:
        return _without_type_noise(super().get_params(ctx))


class ActbenchGroup(TyperGroup):
    def get_params(self, ctx: typer.Context) -> list:
        return _without_type_noise(super().get_params(ctx))

    def get_command(self, ctx: typer.Context, name: str):
        command = super().get_command(ctx, name)
        if type(command) is TyperCommand:  # every command gets the quieter help
            command.__class__ = ActbenchCommand
        return command

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except ActbenchError as error:
            if (ctx.obj or {}).get("debug") or os.environ.get("ACTBENCH_DEBUG"):
                raise
            for problem in getattr(error, "problems", None) or [str(error)]:
                typer.echo(f"error: {' '.join(str(problem).split())}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
        except USAGE_ERROR as error:  # a bad option value: one line, not a framed box
            _usage_error(ctx, error)

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        """The root's own options (`actbench --bogus`) fail in one line too."""
        try:
            return super().parse_args(ctx, args)
        except USAGE_ERROR as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # bare `actbench`: the help was shown
                raise
            _usage_error(ctx, error)


def _usage_error(ctx: typer.Context, error) -> None:
    """One line on stderr, exit 2 (the traceback with --debug or ACTBENCH_DEBUG=1)."""
    if (ctx.obj or {}).get("debug") or os.environ.get("ACTBENCH_DEBUG"):
        raise error
    where = error.ctx.command_path if error.ctx is not None else ctx.command_path
    typer.echo(f"error: {' '.join(error.format_message().split())} (see '{where} --help')",
               err=True)
    raise typer.Exit(EXIT_USAGE) from None


app = typer.Typer(
    cls=ActbenchGroup,
    help="What an activation function costs and what it buys.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def console(stderr: bool = False):
    """A Rich console for measurement tables: piped output gets 160 columns, not Rich's 80, so
    the tables keep their columns (an explicit COLUMNS still wins)."""
    from rich.console import Console

    rich_console = Console(stderr=stderr)
    if not rich_console.is_terminal and "COLUMNS" not in os.environ:
        rich_console = Console(stderr=stderr, width=160)
    return rich_console


def invoked_command() -> str:
    """The command line as the user typed it (recorded on the pages it produces)."""
    return " ".join(["actbench", *sys.argv[1:]])


def _version(value: bool) -> None:
    if value:
        typer.echo(f"actbench {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """What an activation function costs and what it buys.

    Examples: `actbench list`, `actbench show mish`, `actbench plot mish silu relu -o acts.png`.
    """
    ctx.obj = {"debug": debug}


from . import compare, micro, model, train, zoo  # noqa: E402,F401  (registers the commands)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    app(prog_name="actbench")

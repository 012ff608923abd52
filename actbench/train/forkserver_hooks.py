"""Imported by the local executor's fork server only (not by the driver).

A worker forked while the driver stops (Ctrl-C, SIGTERM) finds its parent gone before it has read
its start-up data: multiprocessing raises EOFError there and prints the traceback on the terminal
the fork server shares with the driver, after the driver's own "interrupted" lines. Such a worker
has nothing to run and nobody to report to; it exits (code 1) without a traceback. Any other
uncaught exception is printed as usual.
"""

from __future__ import annotations

import sys

PARENT_GONE = (EOFError, BrokenPipeError, ConnectionResetError)
_print_traceback = sys.excepthook


def quiet_when_parent_gone(exc_type, exc, tb) -> None:
    if issubclass(exc_type, PARENT_GONE):
        return
    _print_traceback(exc_type, exc, tb)


sys.excepthook = quiet_when_parent_gone

"""One writer per report: an advisory lock held while a command writes it.

Two commands resuming the same report would both run everything it lacks and append duplicate
rows. The lock is an exclusive `flock` on `<report>.lock`, which holds the owner's pid and host for
the refusal message; the kernel drops it when the process ends, however it ends, so a killed
command never leaves a report locked. Where `fcntl` does not exist (Windows) there is no lock.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..errors import ActbenchError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def lock_path(report: Path) -> Path:
    report = Path(report)
    return report.with_name(report.name + ".lock")


class ReportLock:
    """`with ReportLock(report):` the report is this process's to write, or ActbenchError says
    which process has it."""

    def __init__(self, report: Path):
        self.report = Path(report)
        self.path = lock_path(self.report)
        self._handle = None

    def __enter__(self) -> ReportLock:
        if fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until __exit__
        except OSError as error:
            raise ActbenchError(f"cannot write {self.path} (the lock beside the report): "
                                f"{error.strerror or error}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise ActbenchError(f"{self.report} is being written by another actbench command "
                                f"({owner}); wait for it to finish, or choose another --out") from None
        self._handle = handle
        try:  # who holds it, for the refusal message; the lock holds without it (a full disk)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            handle.flush()
        except OSError:
            pass
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            try:
                self._handle.close()  # releases the lock; the file stays (removing it would race)
            except OSError:  # an owner line the full disk refused, flushed again: the fd is shut
                pass
            self._handle = None

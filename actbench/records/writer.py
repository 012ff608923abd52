"""Crash-safe report files: rows appended and fsync'ed one at a time, plus a JSON sidecar.

A report is written as results arrive so that Ctrl-C, a crash or a killed process keeps every row
that finished; re-opening an existing report appends to it (after checking its header), which is
how commands resume.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ActbenchError, ReportWriteError
from .paths import sidecar_path


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class ReportWriter:
    """Append rows with a fixed set of columns; each row is on disk when `write` returns."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing = self.path.exists() and self.path.stat().st_size > 0
        if existing:
            check_header(self.path, self.columns)
            _repair_last_line(self.path)
        self._file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="raise")
        if not existing:
            self._write_header()

    def _write_header(self) -> None:
        """The header of a new report; a disk that refuses it leaves no empty file behind."""
        try:
            self._writer.writeheader()
            self._sync()
        except OSError as error:
            self.close()
            self.path.unlink(missing_ok=True)
            raise ReportWriteError(f"cannot write {self.path}: {error.strerror or error}") from None

    def write(self, row: Mapping[str, Any]) -> None:
        self.write_many([row])

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Several rows, then one flush and fsync. A write the disk refuses raises
        ReportWriteError; the rows written before it stay (a partial last line is dropped when the
        report is next opened)."""
        try:
            for row in rows:
                self._writer.writerow({column: _cell(row.get(column)) for column in self.columns})
            self._sync()
        except OSError as error:
            raise ReportWriteError(f"cannot write to {self.path}: {error.strerror or error}; the "
                                   "rows written before are kept") from None

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            try:
                self._file.close()
            except OSError:  # a row the full disk refused, flushed again: already reported
                pass

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error) as error:
        raise ActbenchError(f"{path} is not a CSV report ({error}); choose another --out") from None


def resumable_columns(path: Path, current: Sequence[str], *legacy: Sequence[str]) -> tuple[str, ...]:
    """The columns to write to `path`: an existing report in one of the legacy layouts keeps it."""
    path = Path(path)
    if path.exists() and path.stat().st_size > 0:
        header = read_header(path)
        for layout in legacy:
            if header == list(layout):
                return tuple(layout)
    return tuple(current)


def check_header(path: Path, columns: Sequence[str]) -> None:
    """An existing, non-empty report must have exactly these columns to be resumed."""
    path = Path(path)
    if path.exists() and path.stat().st_size > 0 and read_header(path) != list(columns):
        raise ActbenchError(f"{path} has different columns than this report (another kind, suite or "
                            "version wrote it); choose a new --out")


def _repair_last_line(path: Path) -> None:
    """Drop a partly written last line (a process killed mid-write) so appending stays valid."""
    with open(path, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def read_rows(path: Path) -> list[dict[str, str]]:
    """All complete rows of a report as strings (readers convert what they need)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            text = handle.read()
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        return list(csv.DictReader(text.splitlines()))
    except (UnicodeDecodeError, csv.Error) as error:
        raise ActbenchError(f"{path} is not a readable CSV report ({error})") from None


def completed_keys(path: Path, key: Iterable[str]) -> set[tuple[str, ...]]:
    """Keys of rows already in a report: what a resumed command skips."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    key = tuple(key)
    return {tuple(row.get(column, "") for column in key) for row in read_rows(path)}


def write_sidecar(report: Path, content: Mapping[str, Any], resumed: bool = False) -> Path:
    """The JSON sidecar (same stem): full environment and resolved configuration.

    A resumed report keeps what earlier invocations recorded, under "earlier_invocations".
    """
    path = sidecar_path(Path(report))
    earlier: list[Any] = []
    if resumed and path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        if isinstance(previous, dict):
            kept = previous.pop("earlier_invocations", [])
            earlier = (kept if isinstance(kept, list) else []) + [previous]
    content = {**content, "earlier_invocations": earlier}
    _write_json(path, content)
    return path


def _write_json(path: Path, content: Mapping[str, Any]) -> None:
    """Atomically (a temporary file, then rename); on a refused write the old file stays and the
    temporary one goes."""
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(content, indent=2, default=str, sort_keys=False) + "\n",
                       encoding="utf-8")
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise ReportWriteError(f"cannot write {path}: {error.strerror or error}") from None


def update_sidecar(report: Path, changes: Mapping[str, Any]) -> Path:
    """Set top-level keys of a report's sidecar (what is learnt while the command runs, such as
    the host each run ran on), atomically; a missing or unreadable sidecar starts afresh."""
    path = sidecar_path(Path(report))
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        content = {}
    if not isinstance(content, dict):
        content = {}
    content.update(changes)
    _write_json(path, content)
    return path


def filter_rows(path: Path, keep: Callable[[dict[str, str]], bool]) -> None:
    """Rewrite a report with only the rows `keep` accepts (atomically: a temporary file, fsync,
    then rename), so an interruption leaves either the old file or the new one."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    header = read_header(path)
    rows = read_rows(path)
    kept = [row for row in rows if keep(row)]
    if len(kept) == len(rows) and path.read_bytes().endswith(b"\n"):
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)

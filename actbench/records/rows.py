"""Report rows built in one place: every row has every column of its kind, `kind`,
`schema_version` and `timestamp_utc` filled in here, never spelled by the callers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .clock import utc_now
from .schema import COLUMNS, SCHEMA_VERSION

Row = dict[str, Any]


def blank_row(kind: str, columns: Sequence[str] | None = None) -> Row:
    """A row of `kind` with every column present and empty (no timestamp)."""
    row: Row = dict.fromkeys(columns or COLUMNS[kind], "")
    row["kind"] = kind
    row["schema_version"] = SCHEMA_VERSION
    return row


def new_row(kind: str, columns: Sequence[str] | None = None, *parts: Mapping[str, Any],
            **values: Any) -> Row:
    """A row of `kind` stamped now, then `parts` (key columns, results, environment) and `values`
    laid over it in order; a name outside `columns` is a bug and raises KeyError."""
    row = blank_row(kind, columns)
    row["timestamp_utc"] = utc_now()
    for part in (*parts, values):
        for name, value in part.items():
            if name not in row:
                raise KeyError(f"{name!r} is not a column of {kind} reports")
            row[name] = value
    return row

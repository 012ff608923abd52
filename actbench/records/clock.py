"""Time as reports spell it: ISO-8601 UTC in rows, a compact stamp in file names."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> str:
    """The timestamp_utc column: 2026-11-23T19:31:00+00:00."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def utc_stamp() -> str:
    """A timestamp safe in file names: 20261123T193100Z."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")

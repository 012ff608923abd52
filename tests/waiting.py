"""Waiting for a command running in another process to write its first report row."""

import csv
import time
from pathlib import Path


def rows_so_far(path: Path) -> list[dict]:
    """The rows written so far; none while the file is missing. The up-front write check creates
    and removes the report, so the file may vanish between a look and a read."""
    try:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        return []


def wait_for_a_row(path: Path, timeout_s: float = 120.0, poll_s: float = 0.01) -> None:
    """Return once `path` holds at least one row, or after `timeout_s`."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and not rows_so_far(path):
        time.sleep(poll_s)

"""The progress vocabulary shared by every long command: typed events, one callback.

A command (micro, train, and whatever runs work item by item) announces its plan, each item as it
starts, advances and finishes; a renderer (`cli/progress.py`) or a test listens. Events are plain
frozen data so they can also cross a process boundary unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PlanStarted:
    """The work ahead: `total` items of `unit` (configurations, runs)."""

    total: int
    unit: str


@dataclass(frozen=True)
class ItemStarted:
    """One item begins; `label` says which (an activation, impl, pass and shape; a run)."""

    label: str


@dataclass(frozen=True)
class ItemAdvanced:
    """Progress inside an item: `completed` of `total` steps, with its current `label` (a run's
    batches, labelled by activation, seed and epoch). `item` names the item (its ItemStarted
    label) where several run at once; empty means the one started last."""

    label: str
    completed: int
    total: int
    item: str = ""


@dataclass(frozen=True)
class ItemFinished:
    """One item is done (whatever its status); `line`, where given, is the line a person reads
    about it."""

    label: str
    status: str
    line: str = ""


@dataclass(frozen=True)
class Notice:
    """A line worth reading that ends no item (a lost worker, a run about to be tried again)."""

    line: str


ProgressEvent = PlanStarted | ItemStarted | ItemAdvanced | ItemFinished | Notice
OnProgress = Callable[[ProgressEvent], None]


def ignore(event: ProgressEvent) -> None:
    """The listener used when nobody listens."""

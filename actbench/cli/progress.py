"""One Rich renderer for the progress vocabulary (`actbench.progress`), used by micro and train.

On a terminal: a bar over the items with ETA, a second bar for steps inside the current item, and
each finished item's line printed above them. Piped: only the lines. Quiet: nothing.
"""

from __future__ import annotations

from ..progress import ItemAdvanced, ItemFinished, ItemStarted, PlanStarted, ProgressEvent


class ProgressRenderer:
    """A context manager whose `__enter__` returns the listener to hand to the library."""

    def __init__(self, console, quiet: bool = False, transient: bool = True):
        self.console, self.quiet, self.transient = console, quiet, transient
        self._progress = None
        self._items = self._steps = None

    def __enter__(self):
        if not self.quiet and self.console.is_terminal:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeRemainingColumn(),
                                      console=self.console, transient=self.transient)
            self._progress.start()
        return self.on_event

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def on_event(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        if isinstance(event, ItemFinished):
            if self._items is not None:
                self._progress.advance(self._items)
            if event.line:
                target = self._progress.console if self._progress is not None else self.console
                target.print(event.line, highlight=False, markup=False)
        if self._progress is None:
            return
        if isinstance(event, PlanStarted):
            self._items = self._progress.add_task(event.unit, total=event.total)
        elif isinstance(event, ItemStarted):
            if self._steps is not None:
                self._progress.remove_task(self._steps)
                self._steps = None
            if self._items is not None:
                self._progress.update(self._items, description=event.label)
        elif isinstance(event, ItemAdvanced):
            if self._steps is None:
                self._steps = self._progress.add_task(event.label, total=event.total)
            self._progress.update(self._steps, description=event.label, total=event.total,
                                  completed=event.completed)

"""One Rich renderer for the progress vocabulary (`actbench.progress`), used by micro and train.

On a terminal: a bar over the items with ETA, a bar for the steps inside each item in progress
(several when items run at once), and each finished item's line printed above them. Piped: only
the lines. Quiet: nothing.
"""

from __future__ import annotations

from ..progress import (ItemAdvanced, ItemFinished, ItemStarted, Notice, PlanStarted,
                        ProgressEvent)


class ProgressRenderer:
    """A context manager whose `__enter__` returns the listener to hand to the library."""

    def __init__(self, console, quiet: bool = False, transient: bool = True):
        self.console, self.quiet, self.transient = console, quiet, transient
        self._progress = None
        self._items = None
        self._steps: dict[str, int] = {}  # item label -> its step bar
        self._latest = ""

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
            self._finished(event)
        elif isinstance(event, Notice):
            self._print(event.line)
        if self._progress is None:
            return
        if isinstance(event, PlanStarted):
            self._items = self._progress.add_task(event.unit, total=event.total)
        elif isinstance(event, ItemStarted):
            self._latest = event.label
            if self._items is not None:
                self._progress.update(self._items, description=event.label)
        elif isinstance(event, ItemAdvanced):
            item = event.item or self._latest
            if item not in self._steps:
                self._steps[item] = self._progress.add_task(event.label, total=event.total)
            self._progress.update(self._steps[item], description=event.label, total=event.total,
                                  completed=event.completed)

    def _finished(self, event: ItemFinished) -> None:
        if self._progress is not None:
            if self._items is not None:
                self._progress.advance(self._items)
            steps = self._steps.pop(event.label, None)
            if steps is not None:
                self._progress.remove_task(steps)
        if event.line:
            self._print(event.line)

    def _print(self, line: str) -> None:
        target = self._progress.console if self._progress is not None else self.console
        target.print(line, highlight=False, markup=False)

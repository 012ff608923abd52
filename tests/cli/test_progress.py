"""The one progress renderer: bars on a terminal, finished-item lines when piped, nothing quiet."""

from __future__ import annotations

import io

from rich.console import Console

from actbench.cli.progress import ProgressRenderer
from actbench.progress import ItemAdvanced, ItemFinished, ItemStarted, PlanStarted

EVENTS = [PlanStarted(total=2, unit="runs"),
          ItemStarted("relu seed 0"), ItemAdvanced("relu seed 0 epoch 1", 3, 8),
          ItemFinished("relu seed 0", "ok", line="run 1/2 relu seed 0 ok"),
          ItemStarted("mish seed 0"), ItemAdvanced("mish seed 0 epoch 2", 8, 8),
          ItemFinished("mish seed 0", "failed", line="run 2/2 mish seed 0 failed")]


def render(terminal: bool, quiet: bool = False, transient: bool = True,
           events=EVENTS) -> tuple[str, object]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=100, color_system=None)
    renderer = ProgressRenderer(console, quiet, transient=transient)
    with renderer as listen:
        for event in events:
            listen(event)
        progress = renderer._progress
        tasks = {task.description: (task.completed, task.total)
                 for task in (progress.tasks if progress is not None else [])}
    return buffer.getvalue(), tasks


def test_piped_output_is_the_finished_lines_only():
    text, tasks = render(terminal=False)
    assert text.splitlines() == ["run 1/2 relu seed 0 ok", "run 2/2 mish seed 0 failed"]
    assert tasks == {}


def test_quiet_prints_nothing_even_on_a_terminal():
    assert render(terminal=True, quiet=True) == ("", {})


def test_a_terminal_gets_an_item_bar_a_step_bar_and_the_lines():
    text, tasks = render(terminal=True, transient=False)
    assert "run 1/2 relu seed 0 ok" in text and "run 2/2 mish seed 0 failed" in text
    # the item bar carries the latest item's label; a finished item's step bar is gone
    assert tasks == {"mish seed 0": (2, 2)}


def test_items_running_at_once_get_a_step_bar_each_until_they_finish():
    events = [PlanStarted(total=3, unit="runs"), ItemStarted("a"), ItemStarted("b"),
              ItemAdvanced("a epoch 1", 2, 10, item="a"), ItemAdvanced("b epoch 1", 5, 10, item="b"),
              ItemAdvanced("a epoch 2", 7, 10, item="a"), ItemFinished("b", "ok", line="b done"),
              ItemStarted("c"), ItemAdvanced("c epoch 1", 1, 10, item="c")]
    text, tasks = render(terminal=True, transient=False, events=events)
    assert "b done" in text
    assert tasks == {"c": (1, 3), "a epoch 2": (7, 10), "c epoch 1": (1, 10)}

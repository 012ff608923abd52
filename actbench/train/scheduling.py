"""Runs handed to worker slots as slots free up, whatever carries them (a pool): lost workers
retried or recorded as failed, everything outstanding stopped when the driver stops.

A pool has `slots` and three methods: `start(slot, run)`, `wait(timeout)` (which delivers what
has arrived) and `stop()`. It delivers messages to the callback it was built with, tagged with
the slot they concern; a RunFinished or RunLost frees its slot.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from .config import RunSpec
from .loop import RunResult
from .memory import SHARED_PEAK_KIND
from .messages import Message, RunFinished, RunLost
from .resources import Placement
from .worker import DataCache, execute_run

Deliver = Callable[[int, Message], None]
# How long one wait for workers lasts before the scheduler looks again (seconds).
WAIT_S = 0.2


class Pool(Protocol):
    slots: int

    def start(self, slot: int, run: RunSpec) -> None: ...

    def wait(self, timeout: float) -> None: ...

    def stop(self) -> None: ...


class InlinePool:
    """Runs in the driver's own process, one at a time, as actbench did before worker processes
    (for a debugger, or where processes cannot be started); memory and warm-up are then shared
    between runs."""

    slots = 1

    def __init__(self, placement: Placement, deliver: Deliver):
        self.placement, self.deliver = placement, deliver
        self.cache = DataCache()

    def start(self, slot: int, run: RunSpec) -> None:
        def send(message: Message) -> None:
            if isinstance(message, RunFinished) and message.result.peak_kind == "process_peak_rss":
                # the resident set of a process earlier runs also used: not this run's alone
                message = dataclasses.replace(message, result=dataclasses.replace(
                    message.result, peak_kind=SHARED_PEAK_KIND))
            self.deliver(slot, message)

        execute_run(run, self.placement, send, self.cache)

    def wait(self, timeout: float) -> None:
        """Nothing is ever outstanding: `start` returns when its run has finished."""

    def stop(self) -> None:
        """Nothing runs outside the call that runs it."""


def schedule(make_pool: Callable[[Deliver], Pool], runs: Sequence[RunSpec], retries: int,
             on_message: Callable[[Message], None]) -> None:
    """Run every run on the pool; `on_message` hears every message in arrival order. A run whose
    worker was lost is tried again up to `retries` times (its RunLost is passed on each time),
    then recorded as failed with the reason. The pool is stopped however this ends (Ctrl-C
    included), so no worker outlives the driver's interest in it."""
    queue = deque(runs)
    attempts: dict[str, int] = {}
    running: dict[int, RunSpec] = {}

    def deliver(slot: int, message: Message) -> None:
        run = running.get(slot)
        if run is None or message.config_hash != run.config_hash:
            return  # a late message from a worker already given up on
        if isinstance(message, RunLost):
            del running[slot]
            on_message(message)
            if attempts[run.config_hash] <= retries:
                queue.appendleft(run)
                return
            message = RunFinished(run.config_hash, RunResult(status="failed", message=message.reason))
        elif isinstance(message, RunFinished):
            del running[slot]
        if isinstance(message, RunFinished):
            message = dataclasses.replace(message, attempts=attempts[run.config_hash])
        on_message(message)

    pool = make_pool(deliver)
    try:
        while queue or running:
            for slot in range(pool.slots):
                if slot not in running and queue:
                    run = queue.popleft()
                    attempts[run.config_hash] = attempts.get(run.config_hash, 0) + 1
                    running[slot] = run
                    pool.start(slot, run)
            if running:
                pool.wait(WAIT_S)
    finally:
        pool.stop()

"""Timers return seconds per call for one sample of `calls` calls.

Every timer implements the `Timer` protocol; which one a device gets is decided once, by its
`MicroDevice` (micro/device.py). CPU and MPS: the monotonic wall clock (`time.perf_counter`), with a
device synchronisation around the sample on MPS. Calls are batched so a sample lasts
`TARGET_SAMPLE_S`: the clock's own cost (~0.1 µs) is then far below 0.1 % of a sample. CUDA uses
events (micro/cuda.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

TARGET_SAMPLE_S = 2e-3
MAX_CALLS = 100_000


class Timer(Protocol):
    """What the runner needs of a timer: seconds per call for one sample, and two facts about it.

    `mode` is recorded in the report's `timer` column. `one_call_per_sample`: every call is
    preceded by a cache flush that costs far more than the call (cold on the CPU), so samples are
    single calls. `captures_graph`: the timer captures a CUDA graph of the function it times, so
    every configuration needs a timer of its own.
    """

    mode: str

    @property
    def one_call_per_sample(self) -> bool: ...

    @property
    def captures_graph(self) -> bool: ...

    def measure(self, fn: Callable[[], object], calls: int) -> float: ...

    def sync(self) -> None: ...


class TimerFactory(Protocol):
    """Makes the timer for a group (or, where it captures graphs, for one configuration)."""

    def __call__(self, device: str, cold: bool, numel: int) -> Timer: ...


def _nothing() -> None:
    pass


class WallClockTimer:
    """Hot: perf_counter around a batch of back-to-back calls, `synchronize` (MPS) around it."""

    one_call_per_sample = False
    captures_graph = False
    mode = "wallclock"

    def __init__(self, synchronize: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self._synchronize = synchronize or _nothing
        self._clock = clock

    def measure(self, fn: Callable[[], object], calls: int) -> float:
        self._synchronize()
        start = self._clock()
        for _ in range(calls):
            fn()
        self._synchronize()
        return (self._clock() - start) / calls

    def sync(self) -> None:
        self._synchronize()


class ColdWallClockTimer:
    """Cold: `flush` (evict the caches) before every call, untimed; each call timed on its own.

    A flush costs tens of milliseconds, so the runner takes single-call samples from this timer.
    """

    one_call_per_sample = True
    captures_graph = False
    mode = "wallclock-cold"

    def __init__(self, flush: Callable[[], None], synchronize: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self._flush = flush
        self._synchronize = synchronize or _nothing
        self._clock = clock

    def measure(self, fn: Callable[[], object], calls: int) -> float:
        total = 0.0
        for _ in range(calls):
            self._flush()
            self._synchronize()
            start = self._clock()
            fn()
            self._synchronize()
            total += self._clock() - start
        return total / calls

    def sync(self) -> None:
        self._synchronize()


def calls_per_sample(seconds_per_call: float, target: float = TARGET_SAMPLE_S) -> int:
    """How many calls make one sample last about `target` seconds."""
    if seconds_per_call <= 0 or not math.isfinite(seconds_per_call):
        return 1
    return max(1, min(MAX_CALLS, math.ceil(target / seconds_per_call)))


def cpu_cache_flusher(size_bytes: int = 256 * 2**20) -> Callable[[], None]:
    """Cold mode on the CPU: write a buffer larger than any last-level cache before each call."""
    import torch

    buffer = torch.empty(size_bytes // 4, dtype=torch.float32)

    def flush() -> None:
        buffer.fill_(1.0)

    return flush

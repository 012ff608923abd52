"""Timers return seconds per call for one sample of `calls` calls.

CPU and MPS: the monotonic wall clock (`time.perf_counter`), with a device synchronisation
around the sample on MPS. Calls are batched so a sample lasts `TARGET_SAMPLE_S`: the clock's own
cost (~0.1 µs) is then far below 0.1 % of a sample. CUDA uses events (micro/cuda.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

TARGET_SAMPLE_S = 2e-3
MAX_CALLS = 100_000


class WallClockTimer:
    """perf_counter around a batch of calls; `flush` (cold mode) runs before each call, untimed."""

    def __init__(self, synchronize: Callable[[], None] | None = None,
                 flush: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self._synchronize = synchronize or (lambda: None)
        self._flush = flush
        self._clock = clock
        self.mode = "wallclock-cold" if flush else "wallclock"

    def measure(self, fn: Callable[[], object], calls: int) -> float:
        if self._flush is not None:
            total = 0.0
            for _ in range(calls):
                self._flush()
                self._synchronize()
                start = self._clock()
                fn()
                self._synchronize()
                total += self._clock() - start
            return total / calls
        self._synchronize()
        start = self._clock()
        for _ in range(calls):
            fn()
        self._synchronize()
        return (self._clock() - start) / calls

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

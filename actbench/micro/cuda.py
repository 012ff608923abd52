"""Timing on CUDA devices: CUDA events around the calls, L2 flushing for cold timings, CUDA graphs;
and the CUDA allocator's peak-memory counter.

Host clocks measure launch overhead as much as kernels, so GPU time comes from CUDA events recorded
on the stream. A cold timing (the default) empties the L2 cache before every call, outside the
events, so each call reads its input from DRAM, as an activation inside a real network usually
does; a hot timing runs calls back to back and, for inputs that fit in L2, measures L2 bandwidth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ActbenchError

MIB = 1 << 20
# Flush buffer sizing. Writing a buffer twice the L2 size replaces every line even where the
# replacement policy is not strict LRU; the 64 MiB floor keeps that margin on small-L2 GPUs at a
# cost of microseconds. Where the L2 size is unknown, 256 MiB as in Triton's do_bench (covers
# every L2 to date, B200's 126.5 MiB included). A fixed 256 MiB everywhere would cost a slow GPU
# (about 300 GB/s) almost a millisecond of zeroing per call; the flush is outside the events, so
# only wall time is at stake, but cold mode flushes before every call.
MIN_FLUSH_BYTES = 64 * MIB
FALLBACK_FLUSH_BYTES = 256 * MIB


def l2_flush_bytes(l2_cache_bytes: int | None) -> int:
    """Size of a buffer whose zeroing evicts everything from an L2 cache of `l2_cache_bytes`."""
    if not l2_cache_bytes or l2_cache_bytes <= 0:
        return FALLBACK_FLUSH_BYTES
    return max(2 * l2_cache_bytes, MIN_FLUSH_BYTES)


def l2_cache_bytes(device: Any, torch_module: Any = None) -> int | None:
    """L2 cache size of a CUDA device in bytes, or None where PyTorch does not report it."""
    torch = torch_module if torch_module is not None else _import_torch()
    try:
        size = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", None)
    except Exception:  # no CUDA, no such device
        return None
    return int(size) if size and size > 0 else None


def fits_in_l2(nbytes: int, l2: int | None) -> bool:
    """Whether a working set of `nbytes` fits in L2 (hot timings of it then measure L2, not DRAM).

    False where the L2 size is unknown: nothing is claimed about a cache nobody measured.
    """
    return l2 is not None and nbytes <= l2


def _import_torch() -> Any:
    import torch

    return torch


class CudaTimer:
    """Times `fn` with CUDA events; cold mode flushes L2 before every timed call, outside the events.

    Modes (recorded in reports as `mode`):

    - ``events-cold``: per call, zero the flush buffer, record start, call, record end; the sample
      is the sum of the per-call event times over the number of calls. The flush kernel also gives
      the host time to queue the call, so launch latency does not leak into the events.
    - ``events-hot``: one event pair around `calls` back-to-back calls.
    - ``graph-hot``: the `calls` calls captured once in a CUDA graph and replayed between one event
      pair: no launch overhead at all, the kernels' own time. Where capture fails the timer falls
      back to ``events-hot`` and keeps the reason in `graph_error`.

    Every sample synchronises once, at its end, never per call. Samples hold many calls in
    every mode (`one_call_per_sample` is False: a flush of the L2 costs microseconds, not the
    CPU's tens of milliseconds); in graph mode `captures_graph` is True and each configuration
    gets a timer of its own.
    """

    one_call_per_sample = False

    def __init__(self, device: Any, cold: bool = True, use_graph: bool = False, torch_module: Any = None):
        if cold and use_graph:
            raise ActbenchError("CUDA graphs time hot calls only (a flush between calls cannot be "
                                "captured): use cold=False with use_graph=True")
        self.torch = torch_module if torch_module is not None else _import_torch()
        self.device = device
        self.cold = cold
        self.use_graph = use_graph
        self.mode = "events-cold" if cold else ("graph-hot" if use_graph else "events-hot")
        self.graph_error: str | None = None
        self._flush_buffer: Any = None
        self._events: list[tuple[Any, Any]] = []
        self._graph: tuple[Callable[[], object], int, Any] | None = None  # fn, calls, graph

    @property
    def captures_graph(self) -> bool:
        """Whether a CUDA graph is captured per timed function (decided at construction)."""
        return self.use_graph

    @property
    def flush_bytes(self) -> int | None:
        """Size of the L2 flush buffer once allocated (cold mode only)."""
        return None if self._flush_buffer is None else int(self._flush_buffer.numel())

    def measure(self, fn: Callable[[], object], calls: int) -> float:
        """Seconds per call of `fn` for one sample of `calls` calls."""
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
            raise ActbenchError(f"calls per sample must be a positive integer, got {calls!r}")
        with self.torch.cuda.device(self.device):
            if self.cold:
                return self._measure_cold(fn, calls)
            if self.mode == "graph-hot":
                graph = self._graph_for(fn, calls)
                if graph is not None:
                    return self._timed(graph.replay, calls)
            return self._timed(lambda: _repeat(fn, calls), calls)

    def sync(self) -> None:
        """Wait for all work queued on the device."""
        self.torch.cuda.synchronize(self.device)

    # -- internals --------------------------------------------------------------------------------

    def _event_pairs(self, count: int) -> list[tuple[Any, Any]]:
        """`count` (start, end) timing events, reused across samples (safe after each sync)."""
        event = self.torch.cuda.Event
        while len(self._events) < count:
            self._events.append((event(enable_timing=True), event(enable_timing=True)))
        return self._events[:count]

    def _timed(self, work: Callable[[], object], calls: int) -> float:
        (start, end), = self._event_pairs(1)
        start.record()
        work()
        end.record()
        self.sync()
        return start.elapsed_time(end) / 1000 / calls  # elapsed_time is in milliseconds

    def _measure_cold(self, fn: Callable[[], object], calls: int) -> float:
        flush = self._flush()
        pairs = self._event_pairs(calls)
        for start, end in pairs:
            flush.zero_()
            start.record()
            fn()
            end.record()
        self.sync()
        return sum(start.elapsed_time(end) for start, end in pairs) / 1000 / calls

    def _flush(self) -> Any:
        if self._flush_buffer is None:
            nbytes = l2_flush_bytes(l2_cache_bytes(self.device, self.torch))
            self._flush_buffer = self.torch.empty(nbytes, dtype=self.torch.uint8, device=self.device)
        return self._flush_buffer

    def _graph_for(self, fn: Callable[[], object], calls: int) -> Any:
        """The CUDA graph of `calls` calls of `fn`, captured on first use; None if capture fails."""
        # == rather than `is`: each access to a bound method makes a new, equal object
        if self._graph is not None and self._graph[0] == fn and self._graph[1] == calls:
            return self._graph[2]
        self._graph = None  # release the previous graph (and its memory pool) before capturing anew
        cuda = self.torch.cuda
        try:
            # warm up on a side stream, as torch.cuda.graphs asks: lazy initialisation (library
            # handles, autotuning, allocations) must not happen during capture
            side = cuda.Stream()
            side.wait_stream(cuda.current_stream())
            with cuda.stream(side):
                fn()
            cuda.current_stream().wait_stream(side)
            graph = cuda.CUDAGraph()
            with cuda.graph(graph):
                _repeat(fn, calls)
        except Exception as error:
            self.mode = "events-hot"
            self.graph_error = f"{type(error).__name__}: {error}"
            self._recover()
            return None
        self._graph = (fn, calls, graph)
        return graph

    def _recover(self) -> None:
        """Wait out whatever a failed capture left queued; a broken context is reported by the next call."""
        try:
            self.sync()
        except Exception:
            pass


def cuda_peak_bytes(call: Callable[[], object], device: Any, torch_module: Any = None) -> int:
    """Peak memory allocated during `call` above the level before it (CUDA's allocator counts)."""
    torch = torch_module if torch_module is not None else _import_torch()
    torch.cuda.synchronize(device)
    baseline = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = call()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - baseline
    del result
    return int(peak)


def _repeat(fn: Callable[[], object], calls: int) -> None:
    for _ in range(calls):
        fn()

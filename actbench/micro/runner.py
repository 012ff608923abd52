"""Measure a plan: configurations grouped by tensor, sampled in interleaved rounds, one row each.

Configurations that share (device, dtype, number of elements) form a group: they share one input
and one upstream gradient, allocated once, and are sampled round-robin (a slice of a few
samples each per round) so drift (clocks, heat, other processes) hits all of them alike. A configuration leaves
the rounds when its stopping rule is met; its row is handed to `emit` at once, so a report keeps
every finished row whatever happens later. Groups run one after another to bound memory.

The runner's collaborators are constructor arguments with real defaults: `devices` (the
`MicroDevice` of a device name, micro/device.py), `timers` (the `Timer` of a group, by default the
device's own) and `workloads` (what is timed, micro/workload.py). A failure anywhere in a
configuration becomes its row through `failures.translate`, the one place foreign exceptions are
classified. Progress goes out as the typed events of `actbench.progress`.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..progress import ItemFinished, ItemStarted, OnProgress, PlanStarted, ignore
from ..records.rows import new_row
from ..stats import summarize
from .accuracy import Accuracy, measure_accuracy
from .busy import CpuSnapshot, busy_columns
from .busy import snapshot as cpu_snapshot
from .device import MicroDevice, device_for
from .failures import OutOfMemory, translate
from .health import GpuHealth
from .memory import saved_bytes
from .plan import Config
from .stopping import SampleSeries, StoppingRule, WarmupRule
from .timers import TARGET_SAMPLE_S, Timer, TimerFactory, calls_per_sample
from .workload import Workload, copy_call, make_input, make_workload, torch_dtype

Row = dict[str, Any]
SLICE_S, SLICE_SAMPLES = 0.02, 5  # each configuration's turn in a round
WorkloadFactory = Callable[[Config, torch.Tensor, torch.Tensor], Workload]


@dataclass
class Settings:
    stopping: StoppingRule = field(default_factory=StoppingRule)
    warmup: WarmupRule = field(default_factory=WarmupRule)
    cold: bool | None = None  # None: the device's default (cold on CUDA, hot elsewhere)
    energy: bool = True  # CUDA only: energy per call over a >= 1 s window
    graph_max_numel: int = 2**20  # hot CUDA: replay small sizes from a CUDA graph


# mallopt takes a C int: a larger Python int would wrap (2**62 became 0, trimming on every free)
TRIM_NEVER = 2**31 - 1


def keep_freed_memory() -> str:
    """Stop glibc from returning large blocks to the OS after every call.

    Without this, each output above glibc's mmap threshold (32 MiB at most) is a fresh mmap whose
    pages the kernel zeroes and faults in on first touch: at 2^24 float32 elements ReLU's forward
    took 16.8 ms that way and 3.1 ms with freed blocks reused (copy_: 3.5 ms), so the allocator,
    not the activation, was measured. CUDA's caching allocator never pays that cost; here, heap
    blocks are reused the same way. Process-wide: only `actbench micro` calls it. Returns what
    was done, for the report's sidecar.

    With a trim threshold of 0 every free handed the heap's top back and the next call faulted it
    in again: on two threads those faults contend for the address space's lock, and SiLU at 2^20
    took 1.5-2 ms instead of 0.2 ms (docs/performance.md, "Threads").
    """
    if not sys.platform.startswith("linux"):
        return "system default"
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        if libc.mallopt(m_mmap_max, 0) and libc.mallopt(m_trim_threshold, TRIM_NEVER):
            return "glibc: mmap off, trim off (freed blocks reused)"
    except (OSError, AttributeError):
        pass
    return "system default"


@dataclass
class _Series:
    config: Config | None  # None: the group's copy-bandwidth reference
    call: Callable[[], object] | None
    series: SampleSeries
    timer: Timer
    failed: bool = False
    calls: int = 1
    workload: Workload | None = None
    health_before: Any = None
    cpu_before: CpuSnapshot | None = None
    first_sample_at: float = 0.0


@dataclass
class _Group:
    """What the configurations of one group share: device, input, gradient, timer, roofline."""

    device: MicroDevice
    cold: bool
    flat_x: torch.Tensor
    flat_g: torch.Tensor
    timer: Timer
    copy: _Series | None = None
    copy_bytes: int = 0


class Runner:
    """Runs groups of configurations and turns each into a report row."""

    def __init__(self, settings: Settings, environment_columns: Row,
                 emit: Callable[[Row], None],
                 emit_samples: Callable[[Config, list[float], int], None] | None = None,
                 on_progress: OnProgress | None = None, *,
                 devices: Callable[[str], MicroDevice] = device_for,
                 timers: TimerFactory | None = None,
                 workloads: WorkloadFactory = make_workload,
                 cpu_probe: Callable[[], CpuSnapshot | None] = cpu_snapshot):
        self.settings = settings
        self.environment_columns = environment_columns
        self.emit = emit
        self.emit_samples = emit_samples
        self.on_progress = on_progress or ignore
        self._device_for = devices
        self._devices: dict[str, MicroDevice] = {}
        self.timers = timers or self._device_timer
        self.workloads = workloads
        self.cpu_probe = cpu_probe
        self._health = GpuHealth(settings.energy)
        self._accuracy_cache: dict[tuple, Accuracy | Exception] = {}

    def _device(self, name: str) -> MicroDevice:
        """The device's strategy, decided once per device name."""
        if name not in self._devices:
            self._devices[name] = self._device_for(name)
        return self._devices[name]

    def _device_timer(self, device: str, cold: bool, numel: int) -> Timer:
        return self._device(device).timer(cold, numel, self.settings.graph_max_numel)

    # -- groups -------------------------------------------------------------------------------
    def run(self, configs: Iterable[Config]) -> None:
        configs = list(configs)
        self.on_progress(PlanStarted(total=len(configs), unit="configurations"))
        groups: dict[tuple, list[Config]] = {}
        for config in configs:
            groups.setdefault(config.group, []).append(config)
        for group in groups.values():
            self._run_group(group)

    def _run_group(self, configs: list[Config]) -> None:
        name, dtype, numel, threads = configs[0].group
        if threads:
            torch.set_num_threads(threads)  # fast kernels compile once per count (fast.py)
        device = self._device(name)
        too_big = memory_shortfall(device.free_bytes(), numel, torch_dtype(dtype).itemsize)
        if too_big is not None:
            for config in configs:
                self.on_progress(ItemStarted(config.label))
                self._emit_failure(config, OutOfMemory(too_big))
            return
        try:
            flat_x = make_input(numel, dtype, name)
            flat_g = make_input(numel, dtype, name, seed=1)
        except Exception as error:  # noqa: BLE001 - recorded in the report, the run goes on
            for config in configs:
                self.on_progress(ItemStarted(config.label))
                self._emit_failure(config, error)
            return
        cold = self.settings.cold if self.settings.cold is not None else device.cold_by_default
        group = _Group(device, cold, flat_x, flat_g, self.timers(name, cold, numel))
        del flat_x, flat_g
        self._measure_copy(group)
        for chunk in _chunks(configs, chunk_size(device.free_bytes(), numel,
                                                 group.flat_x.element_size())):
            self._run_chunk(chunk, group)
        group.flat_x = group.flat_g = group.copy = None
        device.release()

    def _measure_copy(self, group: _Group) -> None:
        """The roofline reference: measured first so every row has one, then kept sampling side
        by side with the activations so it sees the same conditions they do."""
        try:
            copy_fn, group.copy_bytes = copy_call(group.flat_x)
            group.copy = _Series(None, copy_fn, self._new_series(), timer=group.timer)
            while not group.copy.series.finished:
                self._take_sample(group.copy)
        except Exception:  # noqa: BLE001 - no roofline for this group, timings still count
            group.copy = None

    def _run_chunk(self, configs: list[Config], group: _Group) -> None:
        """Sample the configurations of one chunk round-robin until each one's rule is met."""
        active: list[_Series] = []
        for config in configs:
            # a timer that captures a CUDA graph holds one configuration's graph: one each
            timer = self.timers(config.device, group.cold, config.numel) \
                if group.timer.captures_graph else group.timer
            prepared = self._prepare(config, group, timer)
            if prepared is not None:
                active.append(prepared)
        copy = group.copy
        while active:
            if copy is not None and not copy.failed:
                self._guarded(copy, lambda: self._take_slice(copy, keep_going=True))
            for item in list(active):
                failed = self._guarded(item, lambda: self._take_slice(item))
                if not failed and not item.series.finished:
                    continue
                active.remove(item)
                if not failed:
                    self._guarded(item, lambda: self._finish(item, group))
                item.workload = item.call = None  # free its tensors as soon as it is done

    def _guarded(self, item: _Series, action: Callable[[], None]) -> bool:
        """Run `action`; a failure becomes the configuration's row (True) and the run goes on."""
        try:
            action()
        except Exception as error:  # noqa: BLE001 - e.g. CUDA out of memory while sampling
            if item.config is None:  # the copy reference: the group goes on without a roofline
                item.failed = True
                return True
            self._emit_failure(item.config, error)
            return True
        return False

    def _new_series(self) -> SampleSeries:
        return SampleSeries(self.settings.stopping, self.settings.warmup)

    def _prepare(self, config: Config, group: _Group, timer: Timer) -> _Series | None:
        """Build the workload and call it once (lazy compilation, dtype support, memory)."""
        self.on_progress(ItemStarted(config.label))
        try:
            workload = self.workloads(config, group.flat_x, group.flat_g)
            workload.call()
            group.device.synchronize()
        except Exception as error:  # noqa: BLE001 - one row with the reason, the run goes on
            self._emit_failure(config, error)
            return None
        return _Series(config, workload.call, self._new_series(), timer=timer, workload=workload,
                       health_before=self._health.before(group.device), cpu_before=self.cpu_probe())

    # -- sampling -----------------------------------------------------------------------------
    def _take_slice(self, item: _Series, keep_going: bool = False) -> None:
        """Up to SLICE_SAMPLES samples or SLICE_S seconds: fast and slow configurations then
        advance at a similar pace through the rounds."""
        started = time.perf_counter()
        for _ in range(1 if keep_going else SLICE_SAMPLES):
            self._take_sample(item)
            if item.series.finished and not keep_going:
                break
            if time.perf_counter() - started >= SLICE_S:
                break

    def _take_sample(self, item: _Series) -> None:
        series, timer = item.series, item.timer
        single = timer.one_call_per_sample  # e.g. a CPU cache flush (~30 ms) before each call
        if series.warm and not item.first_sample_at:
            # warm-up done: size samples from the settled warm-up median
            item.calls = calls_per_sample(summarize(series.warmup_samples).median)
            item.first_sample_at = time.perf_counter()
        if single:
            item.calls = 1
        started = time.perf_counter()
        seconds = timer.measure(item.call, item.calls)
        series.add(seconds, time.perf_counter() - started)
        if not series.warm and not single and seconds * item.calls < TARGET_SAMPLE_S / 2:
            item.calls = calls_per_sample(seconds)  # warm up in samples of useful length too

    # -- results ------------------------------------------------------------------------------
    def _finish(self, item: _Series, group: _Group) -> None:
        config, workload, series = item.config, item.workload, item.series
        summary = series.summary()
        row = self._base_row(config)
        row.update(timer=item.timer.mode, samples=summary.n, calls_per_sample=item.calls,
                   median_s=summary.median, mean_s=summary.mean, min_s=summary.minimum,
                   q1_s=summary.q1, q3_s=summary.q3, iqr_pct=100 * summary.iqr_rel,
                   ci_low_s=summary.ci_low, ci_high_s=summary.ci_high,
                   ci_rel_halfwidth=summary.ci_rel_halfwidth, warmup_s=series.warmup_time,
                   sampling_s=series.sampling_time, converged=series.converged)
        busy = busy_columns(item.cpu_before, self.cpu_probe(), torch.get_num_threads())
        row.update(_roofline(workload.min_bytes, summary.median, group))
        row.update(self._memory(config, workload, group.device))
        row.update(self._accuracy(config, workload))
        row.update(self._health.columns(group.device, item.call, workload.min_bytes,
                                        item.health_before))
        row.update({k: v for k, v in busy.items() if k != "busy"})
        flags = ([] if series.converged else ["noisy"]) + (["throttled"] if row["throttled"] else []) \
            + (["busy"] if busy.get("busy") else []) + _roofline_flags(row, group.device)
        row["flags"] = ";".join(flags)
        row["status"] = "noisy" if "noisy" in flags else "ok"
        if self.emit_samples is not None:  # samples first: a row on disk has its samples too
            self.emit_samples(config, list(series.samples), item.calls)
        self.emit(row)
        self.on_progress(ItemFinished(config.label, row["status"]))

    def _base_row(self, config: Config) -> Row:
        return new_row("micro", None, self.environment_columns,
                       activation=config.activation.label, impl=config.impl,
                       device=config.device, dtype=config.dtype, shape=config.shape_text,
                       numel=config.numel, threads=config.threads or torch.get_num_threads(),
                       **{"pass": config.pass_})

    def _emit_failure(self, config: Config, error: BaseException) -> None:
        failure = translate(error)  # the one boundary where foreign exceptions get a kind
        row = self._base_row(config)
        row.update(status=failure.status, flags=failure.status, message=failure.message)
        self.emit(row)
        self._device(config.device).release()
        self.on_progress(ItemFinished(config.label, failure.status))

    @staticmethod
    def _memory(config: Config, workload: Workload, device: MicroDevice) -> Row:
        columns: Row = {}
        try:
            saved = saved_bytes(workload.module, workload.x)
            columns["saved_bytes"] = saved
            columns["saved_x_input"] = saved / (workload.x.numel() * workload.x.element_size())
        except Exception:  # noqa: BLE001 - leave the columns empty
            pass
        if config.pass_ in ("fwd", "fwdbwd"):
            try:
                columns["peak_bytes"] = device.peak_bytes(workload.call)
            except Exception:  # noqa: BLE001
                pass
        return columns

    def _accuracy(self, config: Config, workload: Workload) -> Row:
        key = (config.activation.label, config.impl, config.device, config.dtype, config.shape)
        if key not in self._accuracy_cache:
            try:
                self._accuracy_cache[key] = measure_accuracy(config, workload.module)
            except Exception as error:  # noqa: BLE001 - e.g. no float64 kernel on the device
                self._accuracy_cache[key] = error
        result = self._accuracy_cache[key]
        if isinstance(result, Exception):
            return {}
        return {"max_abs_err": result.max_abs_err, "max_rel_err": result.max_rel_err,
                "grad_max_abs_err": result.grad_max_abs_err,
                "grad_max_rel_err": result.grad_max_rel_err, "finite": result.finite}


def _roofline(min_bytes: int, median_s: float, group: _Group) -> Row:
    """gbps on the pass's minimum traffic; the copy's bandwidth and the fraction of it reached."""
    columns: Row = {"min_bytes": min_bytes, "gbps": min_bytes / median_s / 1e9}
    copy = group.copy
    if copy is not None and not copy.failed and copy.series.samples:
        copy_seconds = summarize(copy.series.samples).median
        columns["copy_gbps"] = group.copy_bytes / copy_seconds / 1e9
        columns["roofline_frac"] = (min_bytes / (group.copy_bytes / copy_seconds)) / median_s
    return columns


def _roofline_flags(row: Row, device: MicroDevice) -> list[str]:
    """Why a roofline fraction is above 1, which no DRAM-bound call can reach: `in_cache` when
    the pass's bytes fit the last-level cache (they were never read from memory), else
    `above_copy` (the copy reference ran slower than the call: measured under other load)."""
    fraction = row.get("roofline_frac")
    if not isinstance(fraction, float) or not fraction > 1.0:
        return []
    cache = device.last_level_cache_bytes()
    return ["in_cache"] if cache and row["min_bytes"] <= cache else ["above_copy"]


# A group holds its input, its gradient and the copy reference's output; each configuration about
# four more input-sized tensors (the bwd pass's output and saved tensors, gradients).
GROUP_TENSORS = 3
CONFIG_TENSORS = 4


def memory_shortfall(free_bytes: int | None, numel: int, element_size: int) -> str | None:
    """Why a group of `numel` elements cannot run in `free_bytes` (None when it fits or the free
    memory is unknown): checked before allocating, since a CPU allocation that succeeds but does
    not fit ends in the OOM killer's SIGKILL, with no row and no message."""
    tensor = numel * element_size
    needed = (GROUP_TENSORS + CONFIG_TENSORS) * tensor
    if free_bytes is None or needed <= free_bytes:
        return None
    return (f"not run: {numel} elements need about {_gib(needed)} ({GROUP_TENSORS + CONFIG_TENSORS} "
            f"tensors of {_gib(tensor)}) and {_gib(free_bytes)} is available; use a smaller --size")


def _gib(count: float) -> str:
    return f"{count / 2**30:.2f} GiB"


def chunk_size(free_bytes: int | None, numel: int, element_size: int) -> int:
    """How many configurations of a group may hold their tensors at once.

    Each keeps about CONFIG_TENSORS input-sized tensors alive; a quarter of the free memory bounds
    the chunk, so `--act all --impl all` at 2^24 elements is measured in several interleaved
    chunks instead of running out of memory. Unknown free memory: no limit.
    """
    if free_bytes is None:
        return 10**9
    per_config = CONFIG_TENSORS * numel * element_size
    return max(1, int(free_bytes // 4 // max(per_config, 1)))


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]

"""Measure a plan: configurations grouped by tensor, sampled in interleaved rounds, one row each.

Configurations that share (device, dtype, number of elements) form a group: they share one input
and one upstream gradient, allocated once, and are sampled round-robin (a slice of a few
samples each per round) so drift (clocks, heat, other processes) hits all of them alike. A configuration leaves
the rounds when its stopping rule is met; its row is handed to `emit` at once, so a report keeps
every finished row whatever happens later. Groups run one after another to bound memory.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..devices import synchronize
from ..errors import describe_error
from ..records.clock import utc_now
from ..records.rows import blank_row
from ..stats import summarize
from .accuracy import Accuracy, measure_accuracy
from .memory import peak_bytes, saved_bytes
from .plan import Config
from .stopping import SampleSeries, StoppingRule, WarmupRule
from .timers import TARGET_SAMPLE_S, WallClockTimer, calls_per_sample, cpu_cache_flusher
from .workload import copy_call, make_input, make_workload

Row = dict[str, Any]
SLICE_S, SLICE_SAMPLES = 0.02, 5  # each configuration's turn in a round


@dataclass
class Settings:
    stopping: StoppingRule = field(default_factory=StoppingRule)
    warmup: WarmupRule = field(default_factory=WarmupRule)
    cold: bool | None = None  # None: cold on CUDA, hot elsewhere
    threads: int | None = None
    energy: bool = True  # CUDA only: energy per call over a >= 1 s window
    graph_max_numel: int = 2**20  # hot CUDA: replay small sizes from a CUDA graph


def keep_freed_memory() -> str:
    """Stop glibc from returning large blocks to the OS after every call.

    Without this, each output above glibc's mmap threshold (32 MiB at most) is a fresh mmap whose
    pages the kernel zeroes and faults in on first touch: at 2^24 float32 elements ReLU's forward
    took 16.8 ms that way and 3.1 ms with freed blocks reused (copy_: 3.5 ms), so the allocator,
    not the activation, was measured. CUDA's caching allocator never pays that cost; here, heap
    blocks are reused the same way. Process-wide: only `actbench micro` calls it. Returns what
    was done, for the report's sidecar.
    """
    if not sys.platform.startswith("linux"):
        return "system default"
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        if libc.mallopt(m_mmap_max, 0) and libc.mallopt(m_trim_threshold, 2**62):
            return "glibc: mmap off, trim off (freed blocks reused)"
    except (OSError, AttributeError):
        pass
    return "system default"


def _timer_for(device: str, cold: bool, numel: int, settings: Settings):
    if device.startswith("cuda"):
        from .cuda import CudaTimer

        use_graph = not cold and numel <= settings.graph_max_numel
        return CudaTimer(device, cold=cold, use_graph=use_graph)
    if device == "mps":
        return WallClockTimer(synchronize=lambda: synchronize("mps"))
    return WallClockTimer(flush=cpu_cache_flusher() if cold else None)


@dataclass
class _Series:
    config: Config | None  # None: the group's copy-bandwidth reference
    call: Callable[[], object]
    series: SampleSeries
    timer: Any = None
    failed: bool = False
    calls: int = 1
    workload: Any = None
    health_before: Any = None
    first_sample_at: float = 0.0


class Runner:
    """Runs groups of configurations and turns each into a report row."""

    def __init__(self, settings: Settings, environment_columns: Row,
                 emit: Callable[[Row], None],
                 emit_samples: Callable[[Config, list[float], int], None] | None = None,
                 on_progress: Callable[[Config | None, str], None] | None = None):
        self.settings = settings
        self.environment_columns = environment_columns
        self.emit = emit
        self.emit_samples = emit_samples
        self.on_progress = on_progress or (lambda config, event: None)
        self._nvml = None
        self._accuracy_cache: dict[tuple, Accuracy | Exception] = {}

    # -- groups -------------------------------------------------------------------------------
    def run(self, configs: Iterable[Config]) -> None:
        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        groups: dict[tuple, list[Config]] = {}
        for config in configs:
            groups.setdefault(config.group, []).append(config)
        for group in groups.values():
            self._run_group(group)

    def _run_group(self, configs: list[Config]) -> None:
        device, dtype, numel = configs[0].group
        try:
            flat_x = make_input(numel, dtype, device)
            flat_g = make_input(numel, dtype, device, seed=1)
        except Exception as error:  # noqa: BLE001 - recorded in the report, the run goes on
            for config in configs:
                self._emit_failure(config, error)
            return
        cold = self.settings.cold if self.settings.cold is not None else device.startswith("cuda")
        shared_timer = _timer_for(device, cold, numel, self.settings)
        copy_series, copy_bytes = None, 0
        try:
            copy_fn, copy_bytes = copy_call(flat_x)
            copy_series = _Series(None, copy_fn, self._new_series(), timer=shared_timer)
            # the roofline reference: measured first so every row has one, then kept sampling
            # side by side with the activations so it sees the same conditions they do
            while not copy_series.series.finished:
                self._take_sample(copy_series)
        except Exception:  # noqa: BLE001 - no roofline for this group, timings still count
            copy_series = None
        for chunk in _chunks(configs, _chunk_size(device, numel, flat_x.element_size())):
            self._run_chunk(chunk, flat_x, flat_g, shared_timer, cold, copy_series, copy_bytes)
        del flat_x, flat_g
        self._release(device)

    def _run_chunk(self, configs, flat_x, flat_g, shared_timer, cold, copy_series, copy_bytes) -> None:
        """Sample the configurations of one chunk round-robin until each one's rule is met."""
        active: list[_Series] = []
        graphs = getattr(shared_timer, "use_graph", False)  # decided once, in _timer_for
        for config in configs:
            # a CUDA graph is captured per configuration, so graph mode gets a timer of its own
            timer = _timer_for(config.device, cold, config.numel, self.settings) if graphs \
                else shared_timer
            prepared = self._prepare(config, flat_x, flat_g, timer)
            if prepared is not None:
                active.append(prepared)
        while active:
            if copy_series is not None and not copy_series.failed:
                self._guarded(copy_series, lambda: self._take_slice(copy_series, keep_going=True))
            for item in list(active):
                failed = self._guarded(item, lambda: self._take_slice(item))
                if not failed and not item.series.finished:
                    continue
                active.remove(item)
                if not failed:
                    self._guarded(item, lambda: self._finish(item, copy_series, copy_bytes))
                item.workload = item.call = None  # free its tensors as soon as it is done

    def _guarded(self, item: _Series, action) -> bool:
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

    def _prepare(self, config: Config, flat_x, flat_g, timer) -> _Series | None:
        """Build the workload and call it once (lazy compilation, dtype support, memory)."""
        self.on_progress(config, "start")
        try:
            workload = make_workload(config, flat_x, flat_g)
            workload.call()
            synchronize(config.device)
        except Exception as error:  # noqa: BLE001 - one row with the reason, the run goes on
            self._emit_failure(config, error)
            return None
        return _Series(config, workload.call, self._new_series(), timer=timer, workload=workload,
                       health_before=self._health(config.device))

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
        per_call_flush = getattr(timer, "mode", "") == "wallclock-cold"  # a flush costs ~30 ms
        if series.warm and not item.first_sample_at:
            # warm-up done: size samples from the settled warm-up median
            item.calls = calls_per_sample(summarize(series.warmup_samples).median)
            item.first_sample_at = time.perf_counter()
        if per_call_flush:
            item.calls = 1
        started = time.perf_counter()
        seconds = timer.measure(item.call, item.calls)
        series.add(seconds, time.perf_counter() - started)
        if not series.warm and not per_call_flush and seconds * item.calls < TARGET_SAMPLE_S / 2:
            item.calls = calls_per_sample(seconds)  # warm up in samples of useful length too

    # -- results ------------------------------------------------------------------------------
    def _finish(self, item: _Series, copy_series: _Series | None, copy_bytes: int) -> None:
        config, workload, series, timer = item.config, item.workload, item.series, item.timer
        row = self._base_row(config)
        summary = series.summary()
        row.update(timer=timer.mode, threads=torch.get_num_threads(), samples=summary.n,
                   calls_per_sample=item.calls, median_s=summary.median, mean_s=summary.mean,
                   min_s=summary.minimum, q1_s=summary.q1, q3_s=summary.q3,
                   iqr_pct=100 * summary.iqr_rel, ci_low_s=summary.ci_low,
                   ci_high_s=summary.ci_high, ci_rel_halfwidth=summary.ci_rel_halfwidth,
                   warmup_s=series.warmup_time, sampling_s=series.sampling_time,
                   converged=series.converged)
        flags = [] if series.converged else ["noisy"]

        row["min_bytes"] = workload.min_bytes
        row["gbps"] = workload.min_bytes / summary.median / 1e9
        if copy_series is not None and not copy_series.failed and copy_series.series.samples:
            copy_seconds = summarize(copy_series.series.samples).median
            row["copy_gbps"] = copy_bytes / copy_seconds / 1e9
            row["roofline_frac"] = (workload.min_bytes / (copy_bytes / copy_seconds)) / summary.median
        row.update(self._memory(config, workload))
        row.update(self._accuracy(config, workload))
        throttled = self._gpu_columns(config, item, row)
        if throttled:
            flags.append("throttled")
        row["throttled"] = throttled if config.device.startswith("cuda") else ""
        row["flags"] = ";".join(flags)
        row["status"] = "noisy" if "noisy" in flags else "ok"
        if self.emit_samples is not None:  # samples first: a row on disk has its samples too
            self.emit_samples(config, list(series.samples), item.calls)
        self.emit(row)
        self.on_progress(config, "done")

    def _base_row(self, config: Config) -> Row:
        row = blank_row("micro")
        row.update(self.environment_columns)
        row.update(timestamp_utc=utc_now(), activation=config.activation.label, impl=config.impl,
                   device=config.device, dtype=config.dtype, shape=config.shape_text,
                   numel=config.numel, threads=torch.get_num_threads(),
                   **{"pass": config.pass_})
        return row

    def _emit_failure(self, config: Config, error: BaseException) -> None:
        row = self._base_row(config)
        row["status"] = _failure_status(error)
        row["flags"] = row["status"]
        row["message"] = describe_error(error)
        self.emit(row)
        self._release(config.device)
        self.on_progress(config, "done")

    def _memory(self, config: Config, workload) -> Row:
        columns: Row = {}
        try:
            saved = saved_bytes(workload.module, workload.x)
            columns["saved_bytes"] = saved
            columns["saved_x_input"] = saved / (workload.x.numel() * workload.x.element_size())
        except Exception:  # noqa: BLE001 - leave the columns empty
            pass
        if config.pass_ in ("fwd", "fwdbwd"):
            try:
                columns["peak_bytes"] = peak_bytes(workload.call, config.device)
            except Exception:  # noqa: BLE001
                pass
        return columns

    def _accuracy(self, config: Config, workload) -> Row:
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

    # -- GPU health -----------------------------------------------------------------------------
    def _nvml_index(self, device: str) -> int | None:
        if not device.startswith("cuda"):
            return None
        if self._nvml is None:
            from ..nvml import Nvml

            self._nvml = Nvml()
        if not self._nvml.available:
            return None
        from ..nvml import nvml_index

        return nvml_index(device, self._nvml)  # cuda:N is not NVML's N in general

    def _health(self, device: str):
        index = self._nvml_index(device)
        return None if index is None else self._nvml.health(index)

    def _gpu_columns(self, config: Config, item: _Series, row: Row) -> bool:
        index = self._nvml_index(config.device)
        if config.device.startswith("cuda"):
            from .cuda import fits_in_l2, l2_cache_bytes

            row["fits_l2"] = fits_in_l2(item.workload.min_bytes, l2_cache_bytes(config.device))
        if index is None:
            return False
        from ..nvml import is_throttled

        after = self._nvml.health(index)
        if after is not None:
            row["sm_clock_mhz"], row["mem_clock_mhz"] = after.sm_clock_mhz, after.mem_clock_mhz
        reasons = set()
        for health in (item.health_before, after):
            if health is not None:
                reasons.update(health.throttle_reasons)
        row["throttle_reasons"] = ";".join(sorted(reasons))
        info = self._nvml.gpu_info(index) or {}
        row["peak_gbps"] = info.get("peak_bandwidth_gbps")
        if self.settings.energy:
            from ..nvml import EnergyWindow

            row["energy_j_per_call"] = EnergyWindow(self._nvml, index).run(
                item.call, lambda: torch.cuda.synchronize(config.device))
        return is_throttled(item.health_before, after)

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _release(device: str) -> None:
        if device.startswith("cuda"):
            torch.cuda.empty_cache()


def _chunk_size(device: str, numel: int, element_size: int) -> int:
    """How many configurations of a group may hold their tensors at once.

    Each keeps about four input-sized tensors alive (the bwd pass's output and saved tensors,
    gradients); a quarter of the free memory bounds the chunk, so `--act all --impl all` at
    2^24 elements is measured in several interleaved chunks instead of running out of memory.
    """
    per_config = 4 * numel * element_size
    try:
        if device.startswith("cuda"):
            free = torch.cuda.mem_get_info(device)[0]
        else:
            import psutil

            free = psutil.virtual_memory().available
    except Exception:  # noqa: BLE001 - unknown: no limit
        return 10**9
    return max(1, int(free // 4 // max(per_config, 1)))


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _failure_status(error: BaseException) -> str:
    text = str(error).lower()
    if isinstance(error, MemoryError) or "out of memory" in text or "can't allocate" in text:
        return "oom"
    if isinstance(error, NotImplementedError) or "not implemented" in text \
            or "not supported" in text or "cannot be laid out" in text:
        return "unsupported"
    return "error"

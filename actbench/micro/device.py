"""What differs between the CPU, MPS and CUDA for a micro run, decided once per device.

`device_for("cuda:0")` returns a `CudaDevice`; the runner asks it, never the device's name, how to
synchronise, whether timings are cold by default, which timer to use, how much memory is free,
whether memory peaks can be counted and whether the GPU-health columns (NVML clocks, throttling,
energy, L2 fit) apply.

- cpu: the wall clock; cold writes 256 MiB before each call (samples of one call); hot by
  default; no peak_bytes (the allocator keeps no statistics), no GPU health.
- mps: the wall clock with torch.mps.synchronize around each sample, hot and cold alike; hot by
  default; no peak_bytes, no GPU health.
- cuda: CUDA events (hot timings up to `graph_max_numel` elements replayed from a CUDA graph);
  cold flushes the L2 before each call and is the default; peak_bytes and GPU health.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from .. import devices
from .timers import ColdWallClockTimer, Timer, WallClockTimer, cpu_cache_flusher


@dataclass(frozen=True)
class MicroDevice:
    """The CPU; the base of the other kinds."""

    name: str
    kind: ClassVar[str] = "cpu"
    cold_by_default: ClassVar[bool] = False
    gpu_health: ClassVar[bool] = False  # NVML clocks, throttling and energy; L2 fit; `throttled`
    on_process_heap: ClassVar[bool] = True  # tensors come from the C allocator (keep_freed_memory)

    def synchronize(self) -> None:
        """Wait for the work queued on the device."""

    def release(self) -> None:
        """Hand cached memory back after a group or a failed configuration."""

    def free_bytes(self) -> int | None:
        """Memory free for tensors: what the system has available, or less where a cgroup limits
        this process (a container's 3 GiB on a 64 GiB host), so a configuration that cannot fit
        is refused instead of being killed by the OOM killer."""
        try:
            import psutil

            available = int(psutil.virtual_memory().available)
        except Exception:  # noqa: BLE001 - unknown: no limit
            return None
        room = cgroup_memory_room()
        return available if room is None else min(available, room)

    def timer(self, cold: bool, numel: int, graph_max_numel: int) -> Timer:
        """The timer of a group of `numel`-element tensors."""
        return ColdWallClockTimer(cpu_cache_flusher()) if cold else WallClockTimer()

    def peak_bytes(self, call: Callable[[], object]) -> int | None:
        """Peak bytes allocated during `call`; None where the allocator keeps no statistics."""
        return None

    def l2_cache_bytes(self) -> int | None:
        return None

    def last_level_cache_bytes(self) -> int | None:
        """The largest cache in front of memory (a working set this small is not DRAM-bound)."""
        return cpu_last_level_cache_bytes()


# cgroup v2 files, then v1's, as (limit, usage, statistics, reclaimable entry in the statistics)
_CGROUP_FILES = (("memory.max", "memory.current", "memory.stat", "inactive_file"),
                 ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes", "memory/memory.stat",
                  "total_inactive_file"))


def cgroup_memory_room(root: str = "/sys/fs/cgroup") -> int | None:
    """Bytes this process's memory cgroup may still take (limit - usage + reclaimable page
    cache); None without a cgroup limit (a limit near 2^63 is none)."""
    from pathlib import Path

    for limit_file, usage_file, stat_file, reclaimable in _CGROUP_FILES:
        try:
            limit_text = (Path(root) / limit_file).read_text().strip()
            if limit_text == "max" or int(limit_text) >= 2**62:
                continue
            usage = int((Path(root) / usage_file).read_text())
            stats = dict(line.split() for line in (Path(root) / stat_file).read_text().splitlines()
                         if len(line.split()) == 2)
            return max(0, int(limit_text) - usage + int(stats.get(reclaimable, 0)))
        except (OSError, ValueError):
            continue
    return None


@functools.cache  # read once per process, not once per report row
def cpu_last_level_cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """The size of CPU 0's highest-level data or unified cache from Linux's sysfs; None elsewhere."""
    from pathlib import Path

    best: tuple[int, int] | None = None
    for index in Path(root).glob("index*"):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            level = int((index / "level").read_text())
            size = (index / "size").read_text().strip().upper()
            scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:], 1)
            size_bytes = int(size.rstrip("KMG")) * scale
        except (OSError, ValueError):
            continue
        if best is None or level > best[0]:
            best = (level, size_bytes)
    return best[1] if best else None


@dataclass(frozen=True)
class CpuDevice(MicroDevice):
    """The CPU: every default of `MicroDevice`."""


@dataclass(frozen=True)
class MpsDevice(MicroDevice):
    """Apple's GPU: the wall clock with a synchronisation around each sample; no cold mode."""

    kind: ClassVar[str] = "mps"
    on_process_heap: ClassVar[bool] = False

    def synchronize(self) -> None:
        devices.synchronize(self.name)

    def timer(self, cold: bool, numel: int, graph_max_numel: int) -> Timer:
        return WallClockTimer(synchronize=self.synchronize)

    def last_level_cache_bytes(self) -> int | None:
        return None


@dataclass(frozen=True)
class CudaDevice(MicroDevice):
    """An NVIDIA GPU: CUDA events (cold by default), graphs for small hot timings, NVML health."""

    kind: ClassVar[str] = "cuda"
    cold_by_default: ClassVar[bool] = True
    gpu_health: ClassVar[bool] = True
    on_process_heap: ClassVar[bool] = False

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize(self.name)

    def release(self) -> None:
        import torch

        torch.cuda.empty_cache()

    def free_bytes(self) -> int | None:
        import torch

        try:
            return int(torch.cuda.mem_get_info(self.name)[0])
        except Exception:  # noqa: BLE001 - unknown: no limit
            return None

    def timer(self, cold: bool, numel: int, graph_max_numel: int) -> Timer:
        from .cuda import CudaTimer

        return CudaTimer(self.name, cold=cold, use_graph=not cold and numel <= graph_max_numel)

    def peak_bytes(self, call: Callable[[], object]) -> int | None:
        from .cuda import cuda_peak_bytes

        return cuda_peak_bytes(call, self.name)

    def l2_cache_bytes(self) -> int | None:
        from .cuda import l2_cache_bytes

        return l2_cache_bytes(self.name)

    def last_level_cache_bytes(self) -> int | None:
        return self.l2_cache_bytes()


_KINDS: dict[str, type[MicroDevice]] = {"cpu": CpuDevice, "mps": MpsDevice, "cuda": CudaDevice}


def device_for(name: str) -> MicroDevice:
    """The strategy of a concrete device name (as `devices.resolve_device` returns it)."""
    return _KINDS[devices.device_kind(name)](name)

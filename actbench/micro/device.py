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
        """Memory free for tensors (bounds how many configurations hold tensors at once)."""
        try:
            import psutil

            return int(psutil.virtual_memory().available)
        except Exception:  # noqa: BLE001 - unknown: no limit
            return None

    def timer(self, cold: bool, numel: int, graph_max_numel: int) -> Timer:
        """The timer of a group of `numel`-element tensors."""
        return ColdWallClockTimer(cpu_cache_flusher()) if cold else WallClockTimer()

    def peak_bytes(self, call: Callable[[], object]) -> int | None:
        """Peak bytes allocated during `call`; None where the allocator keeps no statistics."""
        return None

    def l2_cache_bytes(self) -> int | None:
        return None


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


_KINDS: dict[str, type[MicroDevice]] = {"cpu": CpuDevice, "mps": MpsDevice, "cuda": CudaDevice}


def device_for(name: str) -> MicroDevice:
    """The strategy of a concrete device name (as `devices.resolve_device` returns it)."""
    return _KINDS[devices.device_kind(name)](name)

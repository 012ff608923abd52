"""GPU health around a configuration: clocks, throttle reasons, energy per call, L2 fit.

Only devices whose `MicroDevice.gpu_health` is set (CUDA) get these columns; NVML is opened
lazily, once, and where it is missing the NVML columns stay empty, silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .device import MicroDevice

Row = dict[str, Any]


class GpuHealth:
    """Readings before a configuration (`before`) and the row's columns after it (`columns`)."""

    def __init__(self, energy: bool = True):
        self.energy = energy
        self._nvml = None

    def _index(self, device: MicroDevice) -> int | None:
        if not device.gpu_health:
            return None
        if self._nvml is None:
            from ..nvml import Nvml

            self._nvml = Nvml()
        if not self._nvml.available:
            return None
        from ..nvml import nvml_index

        return nvml_index(device.name, self._nvml)  # cuda:N is not NVML's N in general

    def before(self, device: MicroDevice) -> Any:
        """Clocks and throttle reasons now (None without GPU health or NVML)."""
        index = self._index(device)
        return None if index is None else self._nvml.health(index)

    def columns(self, device: MicroDevice, call: Callable[[], object], min_bytes: int,
                before: Any) -> Row:
        """fits_l2, clocks, throttle reasons, peak bandwidth, energy and `throttled` (empty
        where GPU health does not apply)."""
        if not device.gpu_health:
            return {"throttled": ""}
        from .cuda import fits_in_l2

        row: Row = {"fits_l2": fits_in_l2(min_bytes, device.l2_cache_bytes()), "throttled": False}
        index = self._index(device)
        if index is None:
            return row
        from ..nvml import is_throttled

        after = self._nvml.health(index)
        if after is not None:
            row["sm_clock_mhz"], row["mem_clock_mhz"] = after.sm_clock_mhz, after.mem_clock_mhz
        reasons = set()
        for health in (before, after):
            if health is not None:
                reasons.update(health.throttle_reasons)
        row["throttle_reasons"] = ";".join(sorted(reasons))
        info = self._nvml.gpu_info(index) or {}
        row["peak_gbps"] = info.get("peak_bandwidth_gbps")
        if self.energy:
            from ..nvml import EnergyWindow

            row["energy_j_per_call"] = EnergyWindow(self._nvml, index).run(call, device.synchronize)
        row["throttled"] = is_throttled(before, after)
        return row

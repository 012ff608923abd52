"""Silent access to NVML (nvidia-ml-py): GPU facts, health, throttling and energy.

Everything here degrades to None / [] / False on machines without an NVIDIA driver, without
nvidia-ml-py, or where one NVML call is unsupported: the benchmark must run (and say nothing)
wherever it cannot look at the GPU. No call here warns or raises because NVML is missing.

NVML numbers GPUs in PCI order, CUDA by default fastest first and after CUDA_VISIBLE_DEVICES;
match the two by UUID (:meth:`Nvml.index_by_uuid`), never by assuming equal indices.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Bit values of NVML's clocksEventReasons (nvml.h; pynvml's nvmlClocksEventReason* constants),
# identical to the older, deprecated clocksThrottleReasons, which add 0x200 and 0x400. Hard-coded so
# that fake modules in tests and old bindings need not provide them.
THROTTLE_REASON_BITS: dict[int, str] = {
    0x001: "gpu_idle",
    0x002: "applications_clocks_setting",
    0x004: "sw_power_cap",
    0x008: "hw_slowdown",
    0x010: "sync_boost",
    0x020: "sw_thermal_slowdown",
    0x040: "hw_thermal_slowdown",
    0x080: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
    0x200: "board_limit",  # nvmlClocksThrottleReasonBoardLimit
    0x400: "reliability",  # nvmlClocksThrottleReasonReliability
}

# Reasons that lower clocks below what the settings allow while kernels run. Not among them:
# gpu_idle (nothing runs), applications_clocks_setting and sync_boost (clocks the user chose),
# display_clock_setting (a display is attached; says nothing about the measurement).
SLOWING_REASONS = frozenset({
    "sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown",
    "hw_power_brake_slowdown", "board_limit", "reliability",
})

# NVML enum values (nvml.h), hard-coded for the same reason as the bits above.
_CLOCK_SM = 1  # NVML_CLOCK_SM
_CLOCK_MEM = 2  # NVML_CLOCK_MEM
_TEMPERATURE_GPU = 0  # NVML_TEMPERATURE_GPU


def decode_throttle_reasons(mask: int) -> tuple[str, ...]:
    """Names of the bits set in an NVML clocks-event (throttle) reason mask, lowest bit first.

    Bits this module does not know become ``unknown_0x...`` so that a newer driver's reasons are
    reported rather than dropped.
    """
    names = []
    bit = 1
    while bit <= mask:
        if mask & bit:
            names.append(THROTTLE_REASON_BITS.get(bit, f"unknown_0x{bit:x}"))
        bit <<= 1
    return tuple(names)


@dataclass(frozen=True)
class GpuHealth:
    """One look at a GPU's state; a field is None where NVML could not tell."""

    sm_clock_mhz: int | None
    mem_clock_mhz: int | None
    temperature_c: int | None
    power_w: float | None
    throttle_reasons: tuple[str, ...]
    throttle_mask: int | None

    @property
    def slowed(self) -> bool:
        """A reason that slows kernels (power, thermal, hardware slowdown) is active."""
        return any(reason in SLOWING_REASONS for reason in self.throttle_reasons)


def is_throttled(before: GpuHealth | None, after: GpuHealth | None) -> bool:
    """True when the GPU was slowed at either end of a measurement (False when unknown)."""
    return any(health is not None and health.slowed for health in (before, after))


def peak_bandwidth_gbps(mem_clock_mhz: float, bus_width_bits: int, data_rate: int = 2) -> float:
    """Theoretical peak DRAM bandwidth in GB/s (10^9 bytes/s): clock × data rate × bus width / 8.

    `mem_clock_mhz` is the clock as NVML (and nvidia-smi, and CUDA's ``memoryClockRate``) reports it.
    For HBM that is the real memory clock, and HBM moves data on both edges: data rate 2. For GDDR
    NVML reports a clock already scaled by the memory's extra pumping, so that the same factor 2
    gives the per-pin data rate: an RTX 3090 (GDDR6X, 19.5 Gbit/s per pin) reports 9751 MHz, and
    9751 × 2 × 384 / 8 = 936 GB/s, its published figure. Data rate 2 is therefore right for every
    memory type NVML reports. Checks: H100 SXM 2619 MHz × 2 × 5120 / 8 = 3352 GB/s; A100 40GB
    1215 MHz → 1555 GB/s; V100 877 MHz, 4096 bits → 898 GB/s.
    """
    return mem_clock_mhz * 1e6 * data_rate * bus_width_bits / 8 / 1e9


def _text(value: Any) -> str | None:
    """NVML strings as str: older bindings return bytes, newer ones str."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").rstrip("\x00")
    return str(value)


def _normalised_uuid(uuid: str) -> str:
    """UUIDs compare without NVML's 'GPU-' prefix and without case."""
    uuid = uuid.strip().lower()
    return uuid[4:] if uuid.startswith("gpu-") else uuid


class Nvml:
    """Lazy, silent NVML access: every method returns None / [] where NVML or a call is unavailable.

    `module` is a pynvml-like object (tests pass a fake); by default ``pynvml`` (nvidia-ml-py) is
    imported on first use, and ``nvmlInit`` runs once, on first use.
    """

    def __init__(self, module: Any = None):
        self._module = module
        self._initialised: bool | None = None  # None: not tried yet
        self._handles: dict[int, Any] = {}

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """NVML could be loaded and initialised (tried once)."""
        if self._initialised is None:
            self._initialised = self._initialise()
        return self._initialised

    def _initialise(self) -> bool:
        # the deprecated 'pynvml' wrapper package warns on import; stay silent whatever is installed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self._module is None:
                try:
                    import pynvml
                except Exception:
                    return False
                self._module = pynvml
            try:
                self._module.nvmlInit()
            except Exception:
                return False
        return True

    def _call(self, function: str, *args: Any) -> Any:
        """`module.function(*args)`, or None where NVML, the function or the call is unavailable."""
        if not self.available:
            return None
        method = getattr(self._module, function, None)
        if method is None:
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return method(*args)
        except Exception:  # pynvml.NVMLError and its subclasses, or a broken binding
            return None

    def _handle(self, index: int) -> Any:
        if index not in self._handles:
            handle = self._call("nvmlDeviceGetHandleByIndex", index)
            if handle is None:
                return None
            self._handles[index] = handle
        return self._handles[index]

    # -- facts ------------------------------------------------------------------------------------

    def device_count(self) -> int:
        """Number of GPUs NVML sees (0 without NVML)."""
        count = self._call("nvmlDeviceGetCount")
        return int(count) if count is not None else 0

    def gpu_info(self, index: int) -> dict[str, Any]:
        """Static facts about GPU `index` (NVML numbering); {} without NVML or such a GPU.

        Keys: name, driver, memory_total_bytes, sm_count, max_sm_clock_mhz, max_mem_clock_mhz,
        bus_width_bits, peak_bandwidth_gbps, power_limit_w, persistence_mode ("on"/"off"), uuid,
        pci_bus_id; a value is None where its call failed. NVML reports the SM count only for MIG
        devices (device attributes); elsewhere sm_count is None (CUDA's device properties have it).
        """
        handle = self._handle(index)
        if handle is None:
            return {}
        memory = self._call("nvmlDeviceGetMemoryInfo", handle)
        attributes = self._call("nvmlDeviceGetAttributes", handle)
        max_mem_clock = self._call("nvmlDeviceGetMaxClockInfo", handle, _CLOCK_MEM)
        bus_width = self._call("nvmlDeviceGetMemoryBusWidth", handle)
        power_limit_mw = self._call("nvmlDeviceGetEnforcedPowerLimit", handle)
        if power_limit_mw is None:
            power_limit_mw = self._call("nvmlDeviceGetPowerManagementLimit", handle)
        persistence = self._call("nvmlDeviceGetPersistenceMode", handle)
        pci = self._call("nvmlDeviceGetPciInfo", handle)
        return {
            "name": _text(self._call("nvmlDeviceGetName", handle)),
            "driver": _text(self._call("nvmlSystemGetDriverVersion")),
            "memory_total_bytes": _int_or_none(getattr(memory, "total", None)),
            "sm_count": _int_or_none(getattr(attributes, "multiprocessorCount", None)),
            "max_sm_clock_mhz": _int_or_none(self._call("nvmlDeviceGetMaxClockInfo", handle, _CLOCK_SM)),
            "max_mem_clock_mhz": _int_or_none(max_mem_clock),
            "bus_width_bits": _int_or_none(bus_width),
            "peak_bandwidth_gbps": (peak_bandwidth_gbps(max_mem_clock, bus_width)
                                    if max_mem_clock and bus_width else None),
            "power_limit_w": power_limit_mw / 1000 if power_limit_mw is not None else None,
            "persistence_mode": None if persistence is None else ("on" if persistence else "off"),
            "uuid": _text(self._call("nvmlDeviceGetUUID", handle)),
            "pci_bus_id": _text(getattr(pci, "busId", None)),
        }

    def gpus(self) -> list[dict[str, Any]]:
        """gpu_info of every GPU NVML sees ([] without NVML)."""
        return [info for info in map(self.gpu_info, range(self.device_count())) if info]

    def index_by_uuid(self, uuid: str | None) -> int | None:
        """The NVML index of the GPU with this UUID (with or without 'GPU-'); None if not found."""
        if not uuid:
            return None
        wanted = _normalised_uuid(uuid)
        for index in range(self.device_count()):
            handle = self._handle(index)
            found = _text(self._call("nvmlDeviceGetUUID", handle)) if handle is not None else None
            if found and _normalised_uuid(found) == wanted:
                return index
        return None

    # -- state ------------------------------------------------------------------------------------

    def health(self, index: int) -> GpuHealth | None:
        """Current clocks, temperature, power draw and throttle reasons; None without NVML."""
        handle = self._handle(index)
        if handle is None:
            return None
        mask = self._call("nvmlDeviceGetCurrentClocksEventReasons", handle)
        if mask is None:  # drivers before r535 have only the older name
            mask = self._call("nvmlDeviceGetCurrentClocksThrottleReasons", handle)
        power_mw = self._call("nvmlDeviceGetPowerUsage", handle)
        return GpuHealth(
            sm_clock_mhz=_int_or_none(self._call("nvmlDeviceGetClockInfo", handle, _CLOCK_SM)),
            mem_clock_mhz=_int_or_none(self._call("nvmlDeviceGetClockInfo", handle, _CLOCK_MEM)),
            temperature_c=_int_or_none(self._call("nvmlDeviceGetTemperature", handle, _TEMPERATURE_GPU)),
            power_w=power_mw / 1000 if power_mw is not None else None,
            throttle_reasons=decode_throttle_reasons(int(mask)) if mask is not None else (),
            throttle_mask=_int_or_none(mask),
        )

    def energy_mj(self, index: int) -> int | None:
        """Energy used since the driver loaded, in millijoules (Volta and later); None otherwise."""
        handle = self._handle(index)
        if handle is None:
            return None
        return _int_or_none(self._call("nvmlDeviceGetTotalEnergyConsumption", handle))


def nvml_index(device: Any, nvml: Any, torch_module: Any = None) -> int | None:
    """NVML's index of a CUDA device, matched by UUID; None where either side cannot tell.

    The indices differ whenever CUDA_VISIBLE_DEVICES is set or CUDA orders devices fastest first
    (its default) while NVML counts in PCI order, so `cuda:0` is not NVML's device 0 in general.
    """
    torch = torch_module
    if torch is None:
        import torch
    try:
        uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    except Exception:
        return None
    return nvml.index_by_uuid(str(uuid)) if uuid is not None else None


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


class EnergyWindow:
    """Energy per call from the total-energy counter over a window of >= min_window_s (approximate).

    The counter advances in steps (every few tens of ms, driver dependent), so a short window or
    one whose ends fall between steps misattributes energy. The window therefore opens at a step
    and closes at a step: `run` calls `fn` until the counter moves (steady load, start), then until
    at least `min_window_s` have passed *and* the counter has just moved again (end). Both ends
    are known to within one batch of calls; batches are sized to last about `batch_s`. The result
    includes the GPU's idle and static power during the window: it is the energy the GPU drew per
    call under this load, not the kernel's energy alone.

    After `run`, `calls`, `window_s` and `energy_j` describe the window (None when it failed).
    """

    def __init__(self, nvml: Nvml, index: int, clock: Callable[[], float] = time.perf_counter,
                 min_window_s: float = 1.0, max_window_s: float | None = None, batch_s: float = 0.01):
        self.nvml = nvml
        self.index = index
        self.clock = clock
        self.min_window_s = min_window_s
        # a counter that never moves must not hang the benchmark
        self.max_window_s = max_window_s if max_window_s is not None else max(10.0, 5 * min_window_s)
        self.batch_s = batch_s
        self.calls: int | None = None
        self.window_s: float | None = None
        self.energy_j: float | None = None

    def run(self, fn: Callable[[], object], sync: Callable[[], None]) -> float | None:
        """Joules per call of `fn` (synchronised by `sync`), or None without a working counter."""
        self.calls = self.window_s = self.energy_j = None
        sync()
        reading = self.nvml.energy_mj(self.index)
        if reading is None:
            return None
        batch = 1
        opened_at = self.clock()  # the wait for the first step is bounded too
        start_mj = start_t = None
        calls = 0
        while True:
            batch_start, ran = self.clock(), batch
            for _ in range(ran):
                fn()
            sync()
            now = self.clock()
            previous, reading = reading, self.nvml.energy_mj(self.index)
            if reading is None:
                return None
            batch = self._next_batch(ran, now - batch_start)
            if start_mj is None:  # waiting for the first step: the window opens at it
                if reading != previous:
                    start_mj, start_t = reading, now
                elif now - opened_at >= self.max_window_s:
                    return None
                continue
            calls += ran
            elapsed = now - start_t
            if elapsed >= self.min_window_s and reading != previous:
                self.calls, self.window_s = calls, elapsed
                self.energy_j = (reading - start_mj) / 1000
                return self.energy_j / calls
            if elapsed >= self.max_window_s:
                return None

    def _next_batch(self, batch: int, batch_seconds: float) -> int:
        """Batches sized to about `batch_s` of work, growing at most twofold per step."""
        if batch_seconds <= 0:
            return batch * 2
        per_call = batch_seconds / batch
        return max(1, min(batch * 2, int(self.batch_s / per_call)))

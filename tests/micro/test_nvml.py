"""NVML access without a GPU: real pynvml (whose init fails here) and a fake pynvml module."""

from __future__ import annotations

import math
import types
import warnings

import pytest

from actbench.nvml import (
    EnergyWindow,
    GpuHealth,
    Nvml,
    decode_throttle_reasons,
    is_throttled,
    peak_bandwidth_gbps,
)


class FakeNVMLError(Exception):
    """Stands in for pynvml.NVMLError."""


class FakePynvml:
    """A pynvml-like module: two H100-like GPUs; `fail` names functions that raise NVMLError."""

    NVMLError = FakeNVMLError

    def __init__(self, fail=(), names_as_bytes=False, init_fails=False, drop=()):
        self.fail = set(fail)
        self.names_as_bytes = names_as_bytes
        self.init_fails = init_fails
        self.init_calls = 0
        self.throttle_mask = 0x4 | 0x1  # sw_power_cap + gpu_idle
        self.energy = 0
        for name in drop:  # functions an older binding lacks
            setattr(self, name, None)

    def _check(self, name):
        if name in self.fail:
            raise FakeNVMLError(f"{name}: Not Supported")

    def _string(self, text):
        return text.encode() if self.names_as_bytes else text

    def nvmlInit(self):
        self.init_calls += 1
        if self.init_fails:
            raise FakeNVMLError("NVML Shared Library Not Found")

    def nvmlDeviceGetCount(self):
        self._check("nvmlDeviceGetCount")
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        self._check("nvmlDeviceGetHandleByIndex")
        if index not in (0, 1):
            raise FakeNVMLError("Invalid Argument")
        return ("handle", index)

    def nvmlDeviceGetName(self, handle):
        self._check("nvmlDeviceGetName")
        return self._string("NVIDIA H100 80GB HBM3")

    def nvmlSystemGetDriverVersion(self):
        self._check("nvmlSystemGetDriverVersion")
        return self._string("570.86.15")

    def nvmlDeviceGetMemoryInfo(self, handle):
        self._check("nvmlDeviceGetMemoryInfo")
        return types.SimpleNamespace(total=85_520_809_984, used=0, free=85_520_809_984)

    def nvmlDeviceGetAttributes(self, handle):
        self._check("nvmlDeviceGetAttributes")
        return types.SimpleNamespace(multiprocessorCount=132)

    def nvmlDeviceGetMaxClockInfo(self, handle, clock_type):
        self._check("nvmlDeviceGetMaxClockInfo")
        return {1: 1980, 2: 2619}[clock_type]

    def nvmlDeviceGetMemoryBusWidth(self, handle):
        self._check("nvmlDeviceGetMemoryBusWidth")
        return 5120

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        self._check("nvmlDeviceGetEnforcedPowerLimit")
        return 700_000  # milliwatts

    def nvmlDeviceGetPowerManagementLimit(self, handle):
        self._check("nvmlDeviceGetPowerManagementLimit")
        return 650_000

    def nvmlDeviceGetPersistenceMode(self, handle):
        self._check("nvmlDeviceGetPersistenceMode")
        return 1

    def nvmlDeviceGetUUID(self, handle):
        self._check("nvmlDeviceGetUUID")
        return self._string(f"GPU-0000000{handle[1]}-aaaa-bbbb-cccc-ddddeeeeffff")

    def nvmlDeviceGetPciInfo(self, handle):
        self._check("nvmlDeviceGetPciInfo")
        return types.SimpleNamespace(busId=f"00000000:1{handle[1]}:00.0".encode())  # ctypes: bytes

    def nvmlDeviceGetClockInfo(self, handle, clock_type):
        self._check("nvmlDeviceGetClockInfo")
        return {1: 1755, 2: 2619}[clock_type]

    def nvmlDeviceGetTemperature(self, handle, sensor):
        self._check("nvmlDeviceGetTemperature")
        assert sensor == 0  # NVML_TEMPERATURE_GPU
        return 41

    def nvmlDeviceGetPowerUsage(self, handle):
        self._check("nvmlDeviceGetPowerUsage")
        return 312_500  # milliwatts

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        self._check("nvmlDeviceGetCurrentClocksEventReasons")
        return self.throttle_mask

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        self._check("nvmlDeviceGetCurrentClocksThrottleReasons")
        return self.throttle_mask

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self._check("nvmlDeviceGetTotalEnergyConsumption")
        return self.energy


# -- without NVML ---------------------------------------------------------------------------------

def test_real_pynvml_without_driver_is_silent_and_empty():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nvml = Nvml()
        assert nvml.available is False
        assert nvml.device_count() == 0
        assert nvml.gpu_info(0) == {}
        assert nvml.gpus() == []
        assert nvml.health(0) is None
        assert nvml.energy_mj(0) is None
        assert nvml.index_by_uuid("GPU-00000000-aaaa-bbbb-cccc-ddddeeeeffff") is None


def test_energy_window_without_nvml_returns_none_without_calling_fn():
    calls = []
    window = EnergyWindow(Nvml(FakePynvml(init_fails=True)), 0)
    assert window.run(lambda: calls.append(1), lambda: None) is None
    assert calls == []


def test_init_runs_once_even_when_it_fails():
    fake = FakePynvml(init_fails=True)
    nvml = Nvml(fake)
    for _ in range(3):
        assert nvml.health(0) is None
    assert fake.init_calls == 1


# -- with a fake NVML -----------------------------------------------------------------------------

def test_gpu_info_fields_and_units():
    info = Nvml(FakePynvml()).gpu_info(1)
    assert info == {
        "name": "NVIDIA H100 80GB HBM3",
        "driver": "570.86.15",
        "memory_total_bytes": 85_520_809_984,
        "sm_count": 132,
        "max_sm_clock_mhz": 1980,
        "max_mem_clock_mhz": 2619,
        "bus_width_bits": 5120,
        "peak_bandwidth_gbps": pytest.approx(2619e6 * 2 * 640 / 1e9),
        "power_limit_w": 700.0,
        "persistence_mode": "on",
        "uuid": "GPU-00000001-aaaa-bbbb-cccc-ddddeeeeffff",
        "pci_bus_id": "00000000:11:00.0",
    }


def test_bytes_names_from_older_bindings_are_decoded():
    info = Nvml(FakePynvml(names_as_bytes=True)).gpu_info(0)
    assert info["name"] == "NVIDIA H100 80GB HBM3"
    assert info["driver"] == "570.86.15"
    assert info["uuid"] == "GPU-00000000-aaaa-bbbb-cccc-ddddeeeeffff"
    assert all(not isinstance(value, bytes) for value in info.values())


def test_one_failing_call_leaves_only_its_field_none():
    complete = Nvml(FakePynvml()).gpu_info(0)
    info = Nvml(FakePynvml(fail={"nvmlDeviceGetAttributes"})).gpu_info(0)  # as on non-MIG GPUs
    assert info["sm_count"] is None
    assert {k: v for k, v in info.items() if k != "sm_count"} == \
        {k: v for k, v in complete.items() if k != "sm_count"}


def test_failing_bus_width_leaves_bandwidth_unknown_and_persistence_off():
    fake = FakePynvml(fail={"nvmlDeviceGetMemoryBusWidth"})
    fake.nvmlDeviceGetPersistenceMode = lambda handle: 0
    info = Nvml(fake).gpu_info(0)
    assert info["bus_width_bits"] is None and info["peak_bandwidth_gbps"] is None
    assert info["max_mem_clock_mhz"] == 2619
    assert info["persistence_mode"] == "off"


def test_power_limit_falls_back_to_management_limit():
    info = Nvml(FakePynvml(fail={"nvmlDeviceGetEnforcedPowerLimit"})).gpu_info(0)
    assert info["power_limit_w"] == 650.0


def test_missing_gpu_or_count_failure():
    assert Nvml(FakePynvml()).gpu_info(7) == {}
    assert Nvml(FakePynvml()).health(7) is None
    nvml = Nvml(FakePynvml(fail={"nvmlDeviceGetCount"}))
    assert nvml.available and nvml.device_count() == 0 and nvml.gpus() == []


def test_gpus_lists_every_device():
    assert [g["pci_bus_id"] for g in Nvml(FakePynvml()).gpus()] == ["00000000:10:00.0", "00000000:11:00.0"]


def test_index_by_uuid_ignores_prefix_and_case():
    nvml = Nvml(FakePynvml())
    assert nvml.index_by_uuid("GPU-00000001-aaaa-bbbb-cccc-ddddeeeeffff") == 1
    assert nvml.index_by_uuid("00000001-AAAA-bbbb-cccc-ddddeeeeffff") == 1
    assert nvml.index_by_uuid("00000009-aaaa-bbbb-cccc-ddddeeeeffff") is None


def test_health_reads_clocks_temperature_power_and_reasons():
    health = Nvml(FakePynvml()).health(0)
    assert health == GpuHealth(sm_clock_mhz=1755, mem_clock_mhz=2619, temperature_c=41, power_w=312.5,
                               throttle_reasons=("gpu_idle", "sw_power_cap"), throttle_mask=0x5)


def test_health_uses_older_throttle_call_when_the_newer_is_missing_or_fails():
    for fake in (FakePynvml(drop={"nvmlDeviceGetCurrentClocksEventReasons"}),
                 FakePynvml(fail={"nvmlDeviceGetCurrentClocksEventReasons"})):
        fake.throttle_mask = 0x40
        assert Nvml(fake).health(0).throttle_reasons == ("hw_thermal_slowdown",)


def test_health_without_any_throttle_call_keeps_other_fields():
    fake = FakePynvml(fail={"nvmlDeviceGetCurrentClocksEventReasons",
                            "nvmlDeviceGetCurrentClocksThrottleReasons", "nvmlDeviceGetPowerUsage"})
    health = Nvml(fake).health(0)
    assert health.throttle_mask is None and health.throttle_reasons == ()
    assert health.power_w is None
    assert health.sm_clock_mhz == 1755 and health.temperature_c == 41


def test_energy_counter():
    fake = FakePynvml()
    fake.energy = 123_456_789
    assert Nvml(fake).energy_mj(0) == 123_456_789
    assert Nvml(FakePynvml(fail={"nvmlDeviceGetTotalEnergyConsumption"})).energy_mj(0) is None


# -- throttle reasons -----------------------------------------------------------------------------

@pytest.mark.parametrize("mask, names", [
    (0, ()),
    (0x1, ("gpu_idle",)),
    (0x4, ("sw_power_cap",)),
    (0x8, ("hw_slowdown",)),
    (0x80, ("hw_power_brake_slowdown",)),
    (0x100, ("display_clock_setting",)),
    (0x1 | 0x2 | 0x10 | 0x20, ("gpu_idle", "applications_clocks_setting", "sync_boost", "sw_thermal_slowdown")),
    (0x800, ("unknown_0x800",)),
    (0x40 | 0x1000, ("hw_thermal_slowdown", "unknown_0x1000")),
])
def test_decode_throttle_reasons(mask, names):
    assert decode_throttle_reasons(mask) == names


def test_bit_values_match_pynvml():
    pynvml = pytest.importorskip("pynvml")
    expected = {
        "gpu_idle": "GpuIdle", "applications_clocks_setting": "ApplicationsClocksSetting",
        "sw_power_cap": "SwPowerCap", "hw_slowdown": "HwSlowdown", "sync_boost": "SyncBoost",
        "sw_thermal_slowdown": "SwThermalSlowdown", "hw_thermal_slowdown": "HwThermalSlowdown",
        "hw_power_brake_slowdown": "HwPowerBrakeSlowdown", "display_clock_setting": "DisplayClockSetting",
    }
    for name, suffix in expected.items():
        assert decode_throttle_reasons(getattr(pynvml, f"nvmlClocksThrottleReason{suffix}")) == (name,)
        event = getattr(pynvml, f"nvmlClocksEventReason{suffix}", None)
        if event is not None:
            assert decode_throttle_reasons(event) == (name,)


def _health(mask):
    return GpuHealth(1000, 1000, 50, 100.0, decode_throttle_reasons(mask), mask)


@pytest.mark.parametrize("before, after, throttled", [
    (0x0, 0x0, False),
    (0x1, 0x1, False),  # idle
    (0x2 | 0x100 | 0x1, 0x2, False),  # application clocks, display, idle
    (0x10, 0x0, False),  # sync boost is a setting
    (0x4, 0x0, True),  # power cap before
    (0x0, 0x20, True),  # thermal after
    (0x1, 0x8, True),
    (0x0, 0x40, True),
    (0x80, 0x0, True),
])
def test_is_throttled(before, after, throttled):
    assert is_throttled(_health(before), _health(after)) is throttled


def test_is_throttled_with_unknown_health():
    assert is_throttled(None, None) is False
    assert is_throttled(None, _health(0x4)) is True
    assert is_throttled(_health(0x0), None) is False


# -- peak bandwidth -------------------------------------------------------------------------------

@pytest.mark.parametrize("clock_mhz, bus_bits, published_gbps", [
    (2619, 5120, 3352),  # H100 SXM, HBM3
    (1215, 5120, 1555),  # A100 40GB, HBM2
    (877, 4096, 898),  # V100, HBM2
    (9751, 384, 936),  # RTX 3090, GDDR6X: NVML's clock already includes the extra pumping
])
def test_peak_bandwidth_matches_published_numbers(clock_mhz, bus_bits, published_gbps):
    assert peak_bandwidth_gbps(clock_mhz, bus_bits) == pytest.approx(published_gbps, abs=1.0)


def test_peak_bandwidth_scales_with_data_rate():
    assert peak_bandwidth_gbps(1000, 64, data_rate=4) == pytest.approx(32.0)  # 1e9 * 4 * 8 bytes


# -- energy window --------------------------------------------------------------------------------

class SteppedEnergy:
    """A fake clock and an energy counter that advances in steps, like NVML's.

    Each call of `work` takes `call_s` of fake time at `power_w`; the counter shows the energy at
    the last multiple of `step_s`. Binary fractions keep the arithmetic exact.
    """

    def __init__(self, call_s, step_s, power_w):
        self.t = 0.0
        self.call_s, self.step_s, self.power_w = call_s, step_s, power_w
        self.calls = 0
        self.syncs = 0
        self.fake = FakePynvml()
        self.fake.nvmlDeviceGetTotalEnergyConsumption = self.counter

    def clock(self):
        return self.t

    def work(self):
        self.calls += 1
        self.t += self.call_s

    def sync(self):
        self.syncs += 1

    def counter(self, handle):
        steps = math.floor(self.t / self.step_s)
        return round(steps * self.step_s * self.power_w * 1000)  # millijoules


def test_energy_window_opens_and_closes_at_counter_steps():
    # calls of 1/16 s at 320 W = 20 J each; the counter moves every 1/4 s (80 J).
    # start: the counter first moves at t = 0.25 (after 4 calls): the window opens there at 80 J.
    # end: 1.0 s later, at t = 1.25, the counter has just moved to 400 J: 16 calls in the window.
    system = SteppedEnergy(call_s=1 / 16, step_s=0.25, power_w=320)
    window = EnergyWindow(Nvml(system.fake), 0, clock=system.clock, min_window_s=1.0)
    joules = window.run(system.work, system.sync)
    assert joules == pytest.approx((400 - 80) / 16) == 20.0
    assert (window.calls, window.window_s, window.energy_j) == (16, 1.0, 320.0)
    assert system.calls == 4 + 16
    assert system.syncs >= 2


def test_energy_window_waits_for_the_counter_after_min_window():
    # counter steps every 3/4 s: the window opens at t = 0.75 (60 J at 80 W); after 1.0 s (t = 1.75)
    # the counter last moved at 1.5, so the window runs on until it moves again at t = 2.25
    # (180 J): 24 calls, 120 J, 5 J per call = 80 W × 1/16 s. Stopping at t = 1.75 would have
    # counted 16 calls against 60 J (3.75 J per call).
    system = SteppedEnergy(call_s=1 / 16, step_s=0.75, power_w=80)
    window = EnergyWindow(Nvml(system.fake), 0, clock=system.clock, min_window_s=1.0)
    assert window.run(system.work, system.sync) == pytest.approx(5.0)
    assert (window.calls, window.window_s, window.energy_j) == (24, 1.5, 120.0)
    assert system.t == 2.25


def test_energy_window_grows_batches_for_fast_calls():
    # calls of 1/1024 s with batch_s = 1/64: batches double 1, 2, 4, 8, 16 and stay at 16
    system = SteppedEnergy(call_s=1 / 1024, step_s=0.25, power_w=100)
    window = EnergyWindow(Nvml(system.fake), 0, clock=system.clock, min_window_s=0.5, batch_s=1 / 64)
    assert window.run(system.work, system.sync) == pytest.approx(100 / 1024)
    assert window.calls == 512 and window.window_s == 0.5
    assert system.syncs < system.calls / 8  # not one sync per call


def test_energy_window_gives_up_on_a_frozen_counter():
    system = SteppedEnergy(call_s=1 / 16, step_s=1e9, power_w=100)
    window = EnergyWindow(Nvml(system.fake), 0, clock=system.clock, min_window_s=1.0, max_window_s=2.0)
    assert window.run(system.work, system.sync) is None
    assert window.calls is None and window.energy_j is None
    assert system.t == 2.0


def test_energy_window_gives_up_when_the_counter_stops_answering():
    system = SteppedEnergy(call_s=1 / 16, step_s=0.25, power_w=100)
    readings = iter([0, 0, None])
    system.fake.nvmlDeviceGetTotalEnergyConsumption = lambda handle: next(readings)
    window = EnergyWindow(Nvml(system.fake), 0, clock=system.clock)
    assert window.run(system.work, system.sync) is None
    assert system.calls == 2


def test_warnings_from_the_binding_do_not_escape():
    fake = FakePynvml()
    original_init = fake.nvmlInit

    def noisy_init():
        warnings.warn("The pynvml package is deprecated", FutureWarning)
        original_init()

    fake.nvmlInit = noisy_init
    fake.nvmlDeviceGetPowerUsage = lambda handle: warnings.warn("slow call") or 250_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Nvml(fake).health(0).power_w == 250.0

"""The device strategy: which timer each device kind gets in each mode, and what else it decides."""

import pytest
import torch

from actbench.micro.cuda import CudaTimer
from actbench.micro.device import CpuDevice, CudaDevice, MpsDevice, device_for
from actbench.micro.timers import ColdWallClockTimer, Timer, WallClockTimer

GRAPH_MAX = 2**20


def test_each_device_name_gets_its_kind_once():
    assert type(device_for("cpu")) is CpuDevice
    assert type(device_for("mps")) is MpsDevice
    cuda = device_for("cuda:1")
    assert type(cuda) is CudaDevice and cuda.name == "cuda:1" and cuda.kind == "cuda"


@pytest.mark.parametrize("device, cold_default, gpu_health, heap", [
    ("cpu", False, False, True),
    ("mps", False, False, False),
    ("cuda:0", True, True, False),
])
def test_what_each_kind_decides(device, cold_default, gpu_health, heap):
    strategy = device_for(device)
    assert strategy.cold_by_default is cold_default
    assert strategy.gpu_health is gpu_health
    assert strategy.on_process_heap is heap


def test_cpu_timers():
    hot = device_for("cpu").timer(cold=False, numel=64, graph_max_numel=GRAPH_MAX)
    assert isinstance(hot, WallClockTimer) and hot.mode == "wallclock"
    assert not hot.one_call_per_sample and not hot.captures_graph
    cold = device_for("cpu").timer(cold=True, numel=64, graph_max_numel=GRAPH_MAX)
    assert isinstance(cold, ColdWallClockTimer) and cold.mode == "wallclock-cold"
    assert cold.one_call_per_sample and not cold.captures_graph


@pytest.mark.parametrize("cold", [False, True])
def test_mps_times_with_the_wall_clock_and_synchronises(monkeypatch, cold):
    synced = []
    monkeypatch.setattr(torch.mps, "synchronize", lambda: synced.append(1))
    timer = device_for("mps").timer(cold=cold, numel=64, graph_max_numel=GRAPH_MAX)
    assert isinstance(timer, WallClockTimer) and timer.mode == "wallclock"  # no cold mode on MPS
    timer.measure(lambda: None, calls=3)
    assert len(synced) == 2  # before and after the sample, not per call


@pytest.mark.parametrize("cold, numel, mode, graph", [
    (True, 64, "events-cold", False),
    (True, 2**24, "events-cold", False),
    (False, GRAPH_MAX, "graph-hot", True),
    (False, GRAPH_MAX + 1, "events-hot", False),
])
def test_cuda_timers(cold, numel, mode, graph):
    timer = device_for("cuda:0").timer(cold=cold, numel=numel, graph_max_numel=GRAPH_MAX)
    assert isinstance(timer, CudaTimer) and timer.device == "cuda:0"
    assert timer.mode == mode and timer.captures_graph is graph
    assert not timer.one_call_per_sample


def test_every_timer_has_what_the_runner_reads():
    timers: list[Timer] = [WallClockTimer(), ColdWallClockTimer(lambda: None),
                           CudaTimer("cuda:0", cold=False, use_graph=True)]
    for timer in timers:
        for name in ("mode", "one_call_per_sample", "captures_graph", "measure", "sync"):
            assert hasattr(timer, name), (type(timer).__name__, name)


def test_peak_bytes_only_where_the_allocator_counts():
    assert device_for("cpu").peak_bytes(lambda: None) is None
    assert device_for("mps").peak_bytes(lambda: None) is None


class FakeClock:
    """Every reading is `step` seconds after the previous one."""

    def __init__(self, step):
        self.now, self.step, self.reads = 0.0, step, 0

    def __call__(self):
        self.reads += 1
        self.now += self.step
        return self.now


def test_hot_wall_clock_times_the_batch():
    clock, synced, calls = FakeClock(1.0), [], []
    timer = WallClockTimer(synchronize=lambda: synced.append(clock.reads), clock=clock)
    assert timer.measure(lambda: calls.append(1), calls=4) == pytest.approx(1.0 / 4)
    assert len(calls) == 4 and clock.reads == 2 and synced == [0, 1]


def test_cold_wall_clock_flushes_outside_each_timed_call():
    clock, log = FakeClock(0.5), []
    timer = ColdWallClockTimer(flush=lambda: log.append(("flush", clock.reads)), clock=clock)
    assert timer.measure(lambda: log.append(("call", clock.reads)), calls=3) == pytest.approx(0.5)
    # each flush comes before the clock starts; each call sits between two readings
    assert log == [("flush", 0), ("call", 1), ("flush", 2), ("call", 3), ("flush", 4), ("call", 5)]


class SmallL2Cuda(CudaDevice):
    """A CUDA device (no GPU needed: nothing here launches work) with a 1 MiB L2."""

    def l2_cache_bytes(self):
        return 2**20


def test_gpu_health_columns_only_where_they_apply():
    from actbench.micro.health import GpuHealth

    health = GpuHealth(energy=False)
    assert health.before(device_for("cpu")) is None
    assert health.columns(device_for("cpu"), lambda: None, 64, None) == {"throttled": ""}
    assert health.columns(device_for("mps"), lambda: None, 64, None) == {"throttled": ""}
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: NVML readings would follow")
    row = health.columns(SmallL2Cuda("cuda:0"), lambda: None, 2**20, None)
    assert row["fits_l2"] is True and row["throttled"] is False
    assert health.columns(SmallL2Cuda("cuda:0"), lambda: None, 2**20 + 1, None)["fits_l2"] is False

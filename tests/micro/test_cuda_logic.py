"""CUDA timing logic with a fake torch: L2 sizing, event placement, flushes, graphs and fallbacks."""

from __future__ import annotations

import contextlib
import types

import pytest

from actbench.errors import ActbenchError
from actbench.nvml import Nvml, nvml_index
from actbench.micro.cuda import (
    FALLBACK_FLUSH_BYTES,
    MIB,
    CudaTimer,
    cuda_peak_bytes,
    fits_in_l2,
    l2_cache_bytes,
    l2_flush_bytes,
)
from tests.micro.test_nvml import FakePynvml

# -- L2 sizing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("l2, expected", [
    (50 * MIB, 100 * MIB),  # H100: twice the L2
    (40 * MIB, 80 * MIB),  # A100
    (int(126.5 * MIB), 253 * MIB),  # B200
    (6 * MIB, 64 * MIB),  # V100: the floor
    (32 * MIB, 64 * MIB),  # exactly at the floor
    (None, 256 * MIB),  # unknown: Triton's size
    (0, 256 * MIB),
])
def test_l2_flush_bytes(l2, expected):
    assert l2_flush_bytes(l2) == expected
    assert FALLBACK_FLUSH_BYTES == 256 * 2**20


def test_fits_in_l2():
    assert fits_in_l2(50 * MIB, 50 * MIB)
    assert not fits_in_l2(50 * MIB + 1, 50 * MIB)
    assert not fits_in_l2(1, None)  # unknown cache: no claim


def test_l2_cache_bytes_from_device_properties():
    fake = FakeTorch(l2=50 * MIB)
    assert l2_cache_bytes("cuda:0", fake) == 50 * MIB
    assert l2_cache_bytes("cuda:0", FakeTorch(l2=None)) is None  # torch without the field
    assert l2_cache_bytes("cuda:0", FakeTorch(l2=0)) is None


def test_l2_cache_bytes_without_cuda():
    fake = FakeTorch()

    def no_cuda(device):
        raise AssertionError("Torch not compiled with CUDA enabled")

    fake.cuda.get_device_properties = no_cuda
    assert l2_cache_bytes(0, fake) is None


def test_nvml_index_matches_by_uuid():
    nvml = Nvml(FakePynvml())  # NVML device 1 is GPU-00000001-aaaa-bbbb-cccc-ddddeeeeffff
    fake = FakeTorch()
    props = types.SimpleNamespace(uuid="00000001-AAAA-bbbb-cccc-ddddeeeeffff")  # torch: no 'GPU-'
    fake.cuda.get_device_properties = lambda device: props
    assert nvml_index("cuda:0", nvml, fake) == 1
    assert nvml_index("cuda:0", Nvml(FakePynvml(init_fails=True)), fake) is None
    props.uuid = "00000007-aaaa-bbbb-cccc-ddddeeeeffff"
    assert nvml_index("cuda:0", nvml, fake) is None
    del props.uuid  # a torch without the field
    assert nvml_index("cuda:0", nvml, fake) is None


# -- a fake torch that logs what would be queued on the stream ------------------------------------

class FakeEvent:
    def __init__(self, torch, enable_timing=False):
        assert enable_timing
        self.torch = torch
        self.id = len(torch.events)
        torch.events.append(self)
        self.recorded_at = None

    def record(self):
        self.recorded_at = len(self.torch.log)
        self.torch.log.append(("record", self.id))

    def elapsed_time(self, end):
        torch = self.torch
        # real CUDA refuses to read events that have not completed: a sync must follow both records
        last_sync = max((i for i, op in enumerate(torch.log) if op == ("sync",)), default=-1)
        assert self.recorded_at is not None and end.recorded_at is not None
        assert last_sync > max(self.recorded_at, end.recorded_at), "elapsed_time before synchronize"
        torch.log.append(("elapsed", self.id, end.id))
        return torch.elapsed_ms.pop(0)


class FakeBuffer:
    def __init__(self, torch, nbytes):
        self.torch = torch
        self.nbytes = nbytes
        self.zeroed = 0

    def numel(self):
        return self.nbytes

    def zero_(self):
        self.zeroed += 1
        self.torch.log.append(("flush",))
        return self


class FakeTorch:
    """Enough of torch for CudaTimer; every stream operation goes into `log` in order."""

    uint8 = "uint8"

    def __init__(self, l2=50 * MIB, elapsed_ms=(), capture_error=None):
        self.log = []
        self.events = []
        self.buffers = []
        self.elapsed_ms = list(elapsed_ms)
        self.capture_error = capture_error
        self.capturing = False
        torch = self

        class Event(FakeEvent):
            def __init__(self, enable_timing=False):
                super().__init__(torch, enable_timing)

        class CUDAGraph:
            def __init__(self):
                self.captured = []

            def replay(self):
                torch.log.append(("replay", len(self.captured)))

        @contextlib.contextmanager
        def graph(g):
            torch.capturing, torch.graph_target = True, g
            torch.log.append(("capture-begin",))
            try:
                yield
            finally:
                torch.capturing = False
                torch.log.append(("capture-end",))

        @contextlib.contextmanager
        def device(d):
            torch.log.append(("device", d))
            yield

        @contextlib.contextmanager
        def stream(s):
            torch.log.append(("stream", s.name))
            yield
            torch.log.append(("stream-exit", s.name))

        class Stream:
            def __init__(self, name="side"):
                self.name = name

            def wait_stream(self, other):
                torch.log.append(("wait", self.name, other.name))

        def synchronize(device=None):
            torch.log.append(("sync",))

        props = types.SimpleNamespace(name="fake GPU")
        if l2 is not None:
            props.L2_cache_size = l2
        self.cuda = types.SimpleNamespace(
            Event=Event, CUDAGraph=CUDAGraph, graph=graph, device=device, stream=stream, Stream=Stream,
            current_stream=lambda: Stream("current"), synchronize=synchronize,
            get_device_properties=lambda d: props,
        )

    def empty(self, nbytes, dtype, device):
        assert dtype == self.uint8
        buffer = FakeBuffer(self, nbytes)
        self.buffers.append(buffer)
        return buffer

    def kernel(self):
        """The function under test: logs a call, or records it into a graph being captured."""
        if self.capturing:
            if self.capture_error is not None:
                raise self.capture_error
            self.graph_target.captured.append("call")
            self.log.append(("captured-call",))
        else:
            self.log.append(("call",))

    def ops(self, *kinds):
        return [op for op in self.log if op[0] in kinds]


# -- cold mode ------------------------------------------------------------------------------------

def test_cold_flushes_once_per_call_outside_the_events():
    torch = FakeTorch(elapsed_ms=[0.5, 0.25, 0.75])
    timer = CudaTimer("cuda:0", cold=True, torch_module=torch)
    assert timer.mode == "events-cold"
    seconds = timer.measure(torch.kernel, calls=3)
    assert seconds == pytest.approx((0.5 + 0.25 + 0.75) / 1000 / 3)
    queued = [op for op in torch.log if op[0] in ("flush", "record", "call", "sync")]
    assert queued == [
        ("flush",), ("record", 0), ("call",), ("record", 1),
        ("flush",), ("record", 2), ("call",), ("record", 3),
        ("flush",), ("record", 4), ("call",), ("record", 5),
        ("sync",),
    ]
    assert torch.ops("elapsed") == [("elapsed", 0, 1), ("elapsed", 2, 3), ("elapsed", 4, 5)]
    assert torch.log[0] == ("device", "cuda:0")


def test_cold_flush_buffer_is_sized_from_l2_and_reused():
    torch = FakeTorch(l2=50 * MIB, elapsed_ms=[1.0] * 5)
    timer = CudaTimer("cuda:0", torch_module=torch)
    assert timer.flush_bytes is None  # allocated on first use
    timer.measure(torch.kernel, calls=2)
    timer.measure(torch.kernel, calls=3)
    assert [b.nbytes for b in torch.buffers] == [100 * MIB]
    assert timer.flush_bytes == 100 * MIB
    assert torch.buffers[0].zeroed == 5
    assert len(torch.events) == 6  # event pairs are reused across samples
    assert len(torch.ops("sync")) == 2


def test_cold_flush_buffer_without_known_l2():
    torch = FakeTorch(l2=None, elapsed_ms=[1.0])
    CudaTimer("cuda:0", torch_module=torch).measure(torch.kernel, calls=1)
    assert torch.buffers[0].nbytes == 256 * MIB


# -- hot mode -------------------------------------------------------------------------------------

def test_hot_records_one_event_pair_per_sample():
    torch = FakeTorch(elapsed_ms=[2.0, 4.0])
    timer = CudaTimer("cuda:1", cold=False, torch_module=torch)
    assert timer.mode == "events-hot"
    assert timer.measure(torch.kernel, calls=4) == pytest.approx(2.0e-3 / 4)
    assert timer.measure(torch.kernel, calls=8) == pytest.approx(4.0e-3 / 8)
    queued = [op for op in torch.log if op[0] in ("record", "call", "sync", "flush")]
    assert queued == [("record", 0), *[("call",)] * 4, ("record", 1), ("sync",),
                      ("record", 0), *[("call",)] * 8, ("record", 1), ("sync",)]
    assert torch.buffers == []  # no flush buffer in hot mode


def test_milliseconds_become_seconds():
    torch = FakeTorch(elapsed_ms=[1.0])
    assert CudaTimer(0, cold=False, torch_module=torch).measure(torch.kernel, calls=1) == 1e-3


# -- CUDA graphs ----------------------------------------------------------------------------------

def test_graph_is_captured_once_after_a_side_stream_warmup_and_replayed():
    torch = FakeTorch(elapsed_ms=[3.0, 3.0])
    timer = CudaTimer("cuda:0", cold=False, use_graph=True, torch_module=torch)
    assert timer.mode == "graph-hot"
    assert timer.measure(torch.kernel, calls=6) == pytest.approx(3e-3 / 6)
    assert timer.measure(torch.kernel, calls=6) == pytest.approx(3e-3 / 6)
    log = torch.log
    warmup = log.index(("call",))
    assert log[warmup - 1] == ("stream", "side") and log[warmup + 1] == ("stream-exit", "side")
    assert log.index(("wait", "side", "current")) < warmup < log.index(("wait", "current", "side"))
    assert log.index(("wait", "current", "side")) < log.index(("capture-begin",))
    assert len(torch.ops("call")) == 1  # one eager warm-up call
    assert len(torch.ops("captured-call")) == 6  # captured once, not per sample
    assert len(torch.ops("capture-begin")) == 1
    timed = [op for op in log if op[0] in ("record", "replay", "sync")]
    assert timed == [("record", 0), ("replay", 6), ("record", 1), ("sync",)] * 2
    assert timer.mode == "graph-hot" and timer.graph_error is None


def test_graph_is_recaptured_for_another_call_count_or_function():
    torch = FakeTorch(elapsed_ms=[1.0] * 4)
    timer = CudaTimer("cuda:0", cold=False, use_graph=True, torch_module=torch)
    timer.measure(torch.kernel, calls=2)
    timer.measure(torch.kernel, calls=5)
    timer.measure(torch.kernel, calls=5)
    timer.measure(lambda: torch.kernel(), calls=5)
    assert torch.ops("replay") == [("replay", 2), ("replay", 5), ("replay", 5), ("replay", 5)]
    assert len(torch.ops("capture-begin")) == 3


def test_graph_capture_failure_falls_back_to_eager():
    error = RuntimeError("operation not permitted when stream is capturing")
    torch = FakeTorch(elapsed_ms=[2.0, 2.0], capture_error=error)
    timer = CudaTimer("cuda:0", cold=False, use_graph=True, torch_module=torch)
    assert timer.measure(torch.kernel, calls=4) == pytest.approx(2e-3 / 4)
    assert timer.mode == "events-hot"
    assert "operation not permitted" in timer.graph_error
    assert torch.ops("replay") == []
    timed = [op for op in torch.log[torch.log.index(("capture-end",)):] if op[0] in ("record", "call")]
    assert timed == [("record", 0), *[("call",)] * 4, ("record", 1)]
    # no second capture attempt
    timer.measure(torch.kernel, calls=4)
    assert len(torch.ops("capture-begin")) == 1


def test_graphs_need_hot_mode():
    with pytest.raises(ActbenchError, match="hot"):
        CudaTimer("cuda:0", cold=True, use_graph=True, torch_module=FakeTorch())


@pytest.mark.parametrize("calls", [0, -1, 2.5, True])
def test_calls_must_be_a_positive_integer(calls):
    torch = FakeTorch(elapsed_ms=[1.0])
    with pytest.raises(ActbenchError, match="positive integer"):
        CudaTimer("cuda:0", torch_module=torch).measure(torch.kernel, calls=calls)


def test_sync_synchronises_the_device():
    torch = FakeTorch()
    CudaTimer("cuda:0", torch_module=torch).sync()
    assert torch.log == [("sync",)]


def test_what_the_runner_reads_of_a_cuda_timer():
    torch = FakeTorch()
    assert CudaTimer("cuda:0", cold=False, use_graph=True, torch_module=torch).captures_graph
    assert not CudaTimer("cuda:0", cold=False, torch_module=torch).captures_graph
    for cold in (True, False):  # samples of many calls in every mode, flushed or not
        assert not CudaTimer("cuda:0", cold=cold, torch_module=torch).one_call_per_sample


def test_graph_timer_still_counts_as_capturing_after_a_fallback():
    # the runner gave it a configuration of its own; that stays right after capture fails
    torch = FakeTorch(elapsed_ms=[1.0], capture_error=RuntimeError("capture failed"))
    timer = CudaTimer("cuda:0", cold=False, use_graph=True, torch_module=torch)
    timer.measure(torch.kernel, calls=2)
    assert timer.mode == "events-hot" and timer.captures_graph


def test_cuda_peak_bytes_is_above_the_level_before_the_call():
    torch = FakeTorch()
    state = {"allocated": 1000, "peak": 1000}

    def call():
        torch.log.append(("call",))
        state["peak"] = state["allocated"] + 4096
        return "output"

    def reset(device):
        torch.log.append(("reset",))
        state["peak"] = state["allocated"]

    torch.cuda.memory_allocated = lambda device: state["allocated"]
    torch.cuda.max_memory_allocated = lambda device: state["peak"]
    torch.cuda.reset_peak_memory_stats = reset
    assert cuda_peak_bytes(call, "cuda:0", torch) == 4096
    assert torch.log == [("sync",), ("reset",), ("call",), ("sync",)]


# -- real torch -----------------------------------------------------------------------------------

def test_l2_cache_bytes_is_none_without_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert l2_cache_bytes(0) is None
    assert l2_cache_bytes("cuda:0") is None


@pytest.mark.parametrize("cold, use_graph", [(True, False), (False, False), (False, True)])
def test_real_cuda_timings_are_plausible(cold, use_graph):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    x = torch.ones(16 * MIB // 4, device="cuda")  # 16 MiB of float32
    timer = CudaTimer("cuda:0", cold=cold, use_graph=use_graph)
    seconds = timer.measure(lambda: x.mul_(1.0), calls=10)
    assert timer.mode == ("events-cold" if cold else "graph-hot" if use_graph else "events-hot")
    # reading and writing 32 MiB: above 1 µs (over 30 TB/s is impossible), below 100 ms
    assert 1e-6 < seconds < 0.1
    if cold:
        assert timer.flush_bytes >= 64 * MIB

"""The runner with a fake timer: rows, roofline arithmetic, failures recorded, order of rounds."""

import pytest
import torch

from actbench.micro.device import CpuDevice
from actbench.micro.plan import make_plan
from actbench.micro.runner import CONFIG_TENSORS, GROUP_TENSORS, Runner, Settings, memory_shortfall
from actbench.micro.workload import make_workload
from actbench.micro.stopping import StoppingRule, WarmupRule
from actbench.records.schema import MICRO_COLUMNS


class FakeTimer:
    """Every call 'takes' 1 ms; records the order in which callables were sampled."""

    mode = "fake"
    one_call_per_sample = False
    captures_graph = False

    def __init__(self):
        self.log = []

    def measure(self, fn, calls):
        self.log.append(fn)
        return 1e-3

    def sync(self):
        pass


class Unsupported(torch.nn.Module):
    def forward(self, x):
        raise NotImplementedError("no kernel for this dtype")


@pytest.fixture
def fake_timer():
    return FakeTimer()


def timer_factory(timer):
    """A timer factory (Runner's `timers`) that hands out `timer` for every group."""
    return lambda device, cold, numel: timer


def quick_settings(**kwargs):
    return Settings(stopping=StoppingRule(min_samples=10, max_time=10.0),
                    warmup=WarmupRule(min_time=0.0, min_samples=1, max_time=0.0), **kwargs)


def run(configs, settings=None, timer=None, **dependencies):
    """Rows of `configs`; `timer` (a fake) is used for every group where given."""
    rows = []
    if timer is not None:
        dependencies.setdefault("timers", timer_factory(timer))
    Runner(settings or quick_settings(), {"host": "testhost"}, rows.append,
           **dependencies).run(configs)
    return rows


def test_rows_have_every_column_and_the_roofline_arithmetic(fake_timer):
    plan = make_plan(["relu"], devices=["cpu"], sizes=["1024"])
    rows = run(plan.configs, timer=fake_timer)
    assert len(rows) == 3
    for row in rows:
        assert set(row) == set(MICRO_COLUMNS)
        assert row["kind"] == "micro" and row["host"] == "testhost"
        assert row["median_s"] == pytest.approx(1e-3) and row["converged"] and row["status"] == "ok"
        assert row["samples"] == 10 and row["timer"] == "fake"
    by_pass = {row["pass"]: row for row in rows}
    # the copy also 'takes' 1 ms and moves 2 x 1024 x 4 bytes: roofline = min_bytes / copy_bytes
    assert by_pass["fwd"]["roofline_frac"] == pytest.approx(1.0)
    assert by_pass["bwd"]["roofline_frac"] == pytest.approx(1.5)
    assert by_pass["fwdbwd"]["roofline_frac"] == pytest.approx(2.5)
    assert by_pass["fwd"]["gbps"] == pytest.approx(2 * 1024 * 4 / 1e-3 / 1e9)
    assert by_pass["fwd"]["copy_gbps"] == pytest.approx(2 * 1024 * 4 / 1e-3 / 1e9)
    assert by_pass["fwd"]["saved_x_input"] == pytest.approx(1.0)
    assert by_pass["fwd"]["peak_bytes"] in ("", None)  # CPU: no honest peak counter


def test_configurations_of_a_group_are_interleaved(fake_timer):
    plan = make_plan(["relu,silu"], devices=["cpu"], sizes=["1024"], passes=["fwd"])
    run(plan.configs, timer=fake_timer)
    calls = [fn for fn in fake_timer.log]
    copy_fn = calls[0]
    activation_calls = [fn for fn in calls if fn is not copy_fn]
    first, second = activation_calls[0], next(fn for fn in activation_calls if fn is not activation_calls[0])
    # the two activations alternate: neither has all its samples before the other starts
    last_first = max(i for i, fn in enumerate(activation_calls) if fn is first)
    first_second = activation_calls.index(second)
    assert first_second < last_first


def test_a_failing_configuration_is_a_row_and_the_run_goes_on(fake_timer):
    plan = make_plan(["tests.micro.test_runner:Unsupported", "relu"], devices=["cpu"],
                     sizes=["64"], passes=["fwd"])
    rows = run(plan.configs, timer=fake_timer)
    statuses = {row["activation"]: row["status"] for row in rows}
    assert statuses == {"tests.micro.test_runner:Unsupported": "unsupported", "relu": "ok"}
    failed = next(row for row in rows if row["status"] == "unsupported")
    assert "no kernel for this dtype" in failed["message"] and failed["median_s"] == ""


def test_noisy_results_are_kept_and_flagged():
    class Noisy(FakeTimer):
        values = [1e-3, 4e-3, 0.5e-3, 2e-3]

        def measure(self, fn, calls):
            self.log.append(fn)
            return self.values[len(self.log) % 4]

    timer = Noisy()
    settings = Settings(stopping=StoppingRule(min_samples=10, max_time=0.0),
                        warmup=WarmupRule(min_time=0.0, min_samples=1, max_time=0.0))
    rows = run(make_plan(["relu"], devices=["cpu"], sizes=["64"], passes=["fwd"]).configs, settings,
               timer=timer)
    assert rows[0]["status"] == "noisy" and "noisy" in rows[0]["flags"]
    assert rows[0]["converged"] is False and rows[0]["median_s"] > 0


@pytest.mark.slow
def test_real_timer_end_to_end_on_cpu():
    settings = Settings(stopping=StoppingRule(min_samples=10, max_time=0.2),
                        warmup=WarmupRule(min_time=0.01, max_time=0.05))
    rows = run(make_plan(["mish"], impl="all", devices=["cpu"], sizes=["4096"],
                         passes=["fwdbwd"]).configs, settings)
    by_impl = {row["impl"]: row for row in rows}
    assert set(by_impl) == {"native", "formula", "memeff", "compiled", "fast"}
    assert all(row["status"] in ("ok", "noisy") and row["median_s"] > 0 for row in rows)
    assert by_impl["formula"]["saved_x_input"] == pytest.approx(2.0)
    assert by_impl["memeff"]["saved_x_input"] == pytest.approx(1.0)
    assert by_impl["fast"]["saved_x_input"] == pytest.approx(1.0)
    assert by_impl["native"]["saved_x_input"] == pytest.approx(1.0)
    assert all(row["max_rel_err"] < 1e-5 and row["finite"] for row in rows)


def test_a_failure_while_sampling_is_a_row_and_the_others_finish():
    class Failing(FakeTimer):
        def measure(self, fn, calls):
            self.log.append(fn)
            if fn is self.victim and len(self.log) > 20:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return 1e-3

    timer = Failing()

    def workloads(config, flat_x, flat_g):
        workload = make_workload(config, flat_x, flat_g)
        if config.activation.label == "silu":
            timer.victim = workload.call
        return workload

    rows = run(make_plan(["relu,silu,gelu"], devices=["cpu"], sizes=["64"], passes=["fwd"]).configs,
               timer=timer, workloads=workloads)
    status = {row["activation"]: row["status"] for row in rows}
    assert status == {"relu": "ok", "silu": "oom", "gelu": "ok"}


class NoMemoryCpu(CpuDevice):
    """The CPU with just the memory one 64-element float32 configuration needs: chunks of one."""

    def free_bytes(self):
        return (GROUP_TENSORS + CONFIG_TENSORS) * 64 * 4


class TinyMemoryCpu(CpuDevice):
    """The CPU with less memory than any group needs."""

    def free_bytes(self):
        return 1000


def test_a_group_that_cannot_fit_is_refused_before_allocating(fake_timer):
    """A CPU allocation that succeeds but does not fit ends in the OOM killer's SIGKILL: the
    runner checks first and writes an oom row that says what was needed and available."""
    def no_workload(config, flat_x, flat_g):
        raise AssertionError("nothing may be built for a group that does not fit")

    plan = make_plan(["relu,silu"], devices=["cpu"], sizes=["1024"], passes=["fwd"])
    rows = run(plan.configs, timer=fake_timer, devices=TinyMemoryCpu, workloads=no_workload)
    assert [r["status"] for r in rows] == ["oom", "oom"]
    needed = (GROUP_TENSORS + CONFIG_TENSORS) * 1024 * 4
    assert f"{needed / 2**30:.2f} GiB" in rows[0]["message"] and "available" in rows[0]["message"]


def test_memory_shortfall_counts_the_group_and_one_configuration():
    tensor = 2**29 * 4  # the 2^29 float32 that was killed in a 3 GiB container
    assert memory_shortfall(3 * 2**30, 2**29, 4) is not None
    assert memory_shortfall(7 * tensor, 2**29, 4) is None
    assert memory_shortfall(7 * tensor - 1, 2**29, 4) is not None
    assert memory_shortfall(None, 2**40, 4) is None  # unknown free memory: no refusal


def test_groups_too_large_for_memory_are_measured_in_chunks(fake_timer):
    plan = make_plan(["relu,silu,gelu"], devices=["cpu"], sizes=["64"], passes=["fwd", "bwd"])
    rows = run(plan.configs, timer=fake_timer, devices=NoMemoryCpu)
    assert sorted((r["activation"], r["pass"]) for r in rows) == sorted(
        (c.activation.label, c.pass_) for c in plan.configs)
    assert all(r["status"] == "ok" for r in rows)


def test_cold_cpu_samples_are_single_calls():
    settings = quick_settings(cold=True)
    settings.stopping = StoppingRule(min_samples=3, max_time=0.3)
    rows = run(make_plan(["relu"], devices=["cpu"], sizes=["64"], passes=["fwd"]).configs, settings)
    assert rows[0]["timer"] == "wallclock-cold" and rows[0]["calls_per_sample"] == 1


def test_table_ratios_are_to_the_baselines_native_implementation():
    from actbench.report.micro_tables import baseline_median

    rows = [{"activation": "relu", "impl": "compiled", "median_s": "0.012"},
            {"activation": "relu", "impl": "native", "median_s": "0.0003"},
            {"activation": "mish", "impl": "native", "median_s": "0.003"}]
    assert baseline_median(rows, "relu") == 0.0003
    assert baseline_median(rows[:1] + rows[2:], "relu") == 0.012  # no native: the one measured


# -- injected timers, fake clock, progress events ---------------------------------------------------

class TickingClock:
    """A deterministic clock: every reading is 2 ms after the previous one."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 2e-3
        return self.now


def test_a_fake_clock_timer_gives_exact_rows():
    from actbench.micro.timers import ColdWallClockTimer

    flushes = []
    made = []

    def timers(device, cold, numel):
        made.append((device, cold, numel))
        return ColdWallClockTimer(flush=lambda: flushes.append(1), clock=TickingClock())

    plan = make_plan(["relu,silu"], devices=["cpu"], sizes=["256"], passes=["fwd"])
    rows = run(plan.configs, timers=timers)
    assert made == [("cpu", False, 256)]  # one timer per group; the CPU is hot by default
    assert sorted(row["activation"] for row in rows) == ["relu", "silu"]
    for row in rows:
        assert row["timer"] == "wallclock-cold" and row["calls_per_sample"] == 1
        assert row["median_s"] == pytest.approx(2e-3) and row["min_s"] == pytest.approx(2e-3)
        assert row["samples"] == 10 and row["status"] == "ok" and row["converged"]
        assert row["roofline_frac"] == pytest.approx(1.0)  # the copy 'took' 2 ms too
        assert row["kind"] == "micro" and row["timestamp_utc"]
    assert flushes  # every call was flushed


def test_settings_cold_reaches_the_timer_factory():
    made = []

    def timers(device, cold, numel):
        made.append(cold)
        return FakeTimer()

    run(make_plan(["relu"], devices=["cpu"], sizes=["64"], passes=["fwd"]).configs,
        quick_settings(cold=True), timers=timers)
    assert made == [True]


def test_a_timer_that_captures_graphs_is_made_per_configuration():
    class GraphTimer(FakeTimer):
        captures_graph = True

    made = []

    def timers(device, cold, numel):
        made.append(numel)
        return GraphTimer()

    plan = make_plan(["relu,silu,gelu"], devices=["cpu"], sizes=["64"], passes=["fwd"])
    rows = run(plan.configs, timers=timers)
    assert len(made) == 1 + 3  # the group's (copy reference) and one per configuration
    assert all(row["status"] == "ok" for row in rows)


def test_progress_events_in_order(fake_timer):
    from actbench.progress import ItemFinished, ItemStarted, PlanStarted

    events = []
    plan = make_plan(["tests.micro.test_runner:Unsupported", "relu"], devices=["cpu"],
                     sizes=["64"], passes=["fwd", "bwd"])
    Runner(quick_settings(), {}, lambda row: None, on_progress=events.append,
           timers=timer_factory(fake_timer)).run(plan.configs)
    assert events[0] == PlanStarted(total=4, unit="configurations")
    labels = [config.label for config in plan.configs]
    assert "relu/native fwd 64" in labels
    started = [e.label for e in events if isinstance(e, ItemStarted)]
    finished = {e.label: e.status for e in events if isinstance(e, ItemFinished)}
    assert sorted(started) == sorted(labels) and len(events) == 1 + 2 * len(labels)
    for label in labels:
        start = events.index(ItemStarted(label))
        end = events.index(ItemFinished(label, finished[label]))
        assert start < end
    assert finished["relu/native fwd 64"] == "ok"
    assert finished["tests.micro.test_runner:Unsupported/custom fwd 64"] == "unsupported"
    assert all(e.line == "" for e in events if isinstance(e, ItemFinished))  # no line per item


def test_an_unlaid_size_is_an_unsupported_row(fake_timer):
    rows = run(make_plan(["acon_c"], devices=["cpu"], sizes=["100"], passes=["fwd"]).configs,
               timer=fake_timer)
    assert rows[0]["status"] == "unsupported" and rows[0]["flags"] == "unsupported"
    assert "cannot be laid out" in rows[0]["message"]


def test_chunk_size():
    from actbench.micro.runner import chunk_size

    assert chunk_size(None, 1024, 4) == 10**9  # unknown free memory: no limit
    assert chunk_size(1, 1024, 4) == 1  # at least one
    assert chunk_size(4 * 4 * 1024 * 4 * 10, 1024, 4) == 10  # a quarter of free, 4 tensors each

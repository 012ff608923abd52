"""The runner with a fake timer: rows, roofline arithmetic, failures recorded, order of rounds."""

import pytest
import torch

from actbench.micro.device import CpuDevice
from actbench.micro.plan import make_plan
from actbench.micro.runner import Runner, Settings
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
    """The CPU with (almost) no free memory: one configuration per chunk."""

    def free_bytes(self):
        return 1


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

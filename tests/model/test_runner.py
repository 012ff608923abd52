"""ModelRunner's arithmetic on known samples (a scripted timer), activation_share against a direct
computation, and failures that become rows."""

import math

import numpy as np
import pytest

from actbench import stats
from actbench.micro.stopping import StoppingRule, WarmupRule
from actbench.model import runner as runner_module
from actbench.model.plan import make_model_plan
from actbench.model.runner import ModelRunner, activation_share
from actbench.model.source import model_source
from actbench.records.schema import MODEL_COLUMNS

from .conftest import FAST_WARMUP

IDENTITY = [1.00, 1.10, 0.90, 1.05, 0.95, 1.20, 1.00, 0.85, 1.10, 1.02]
WITH_ACT = [1.60, 1.50, 1.70, 1.55, 1.65, 1.40, 1.58, 1.62, 1.75, 1.52]


def test_activation_share_is_one_minus_the_ratio_of_medians():
    row = activation_share(IDENTITY, WITH_ACT)
    expected = 1 - np.median(IDENTITY) / np.median(WITH_ACT)  # 1 - 1.01 / 1.59
    assert row["act_share"] == pytest.approx(expected, rel=1e-12)
    assert row["act_share"] == pytest.approx(1 - 1.01 / 1.59, rel=1e-12)
    _, low, high = stats.ratio_of_medians_ci(IDENTITY, WITH_ACT)
    assert row["act_share_ci_low"] == pytest.approx(1 - high, rel=1e-12)
    assert row["act_share_ci_high"] == pytest.approx(1 - low, rel=1e-12)
    assert row["act_share_ci_low"] < row["act_share_ci_high"]
    assert row["act_share_ci_low"] > 0.25 and row["act_share_ci_high"] < 0.5


def test_a_slower_identity_model_gives_a_negative_share():
    row = activation_share([2.0, 2.2, 1.8], [1.0, 1.1, 0.9])
    assert row["act_share"] == pytest.approx(1 - 2.0 / 1.0)


def test_a_single_sample_has_a_share_but_no_interval():
    row = activation_share([1.0], [4.0])
    assert row == {"act_share": pytest.approx(0.75), "act_share_ci_low": "", "act_share_ci_high": ""}


class ScriptedDevice:
    """The CPU device, whose timers report scripted seconds per call: the k-th timer made (the
    k-th configuration of a group) reads SCRIPTS[k] in order; each call still runs the step once."""

    def __init__(self, real, scripts):
        self.real, self.scripts, self.made = real, scripts, 0

    def timer(self, **_):
        script = iter(self.scripts[self.made])
        self.made += 1

        class Timer:
            mode = "scripted"

            def measure(self, fn, calls):
                fn()
                return next(script)

        return Timer()

    def __getattr__(self, name):
        return getattr(self.real, name)


def scripted(monkeypatch, scripts):
    real = runner_module.device_for
    monkeypatch.setattr(runner_module, "device_for", lambda name: ScriptedDevice(real(name), scripts))


# what each timer reads: the first call (calls_per_sample), two warm-up samples, ten samples
WARMUP = WarmupRule(min_time=0.0, min_samples=2, tolerance=10.0, max_time=1e9)
STOP = StoppingRule(target_rsd=0.5, min_samples=10, min_time=0.0, max_time=5.0)
MS = 1e-3


def script(samples):
    return [1 * MS, 9 * MS, 9 * MS] + [s * MS for s in samples]


def run(configs, source, write=None, **kwargs):
    rows = []
    ModelRunner(source, STOP, {"host": "h"}, rows.append, **{"warmup": WARMUP, **kwargs}).run(
        configs, write)
    return rows


def test_rows_hold_the_statistics_of_their_samples_and_the_share_of_the_group(monkeypatch):
    relu = [s * 1.25 for s in WITH_ACT]
    scripted(monkeypatch, [script(IDENTITY), script(relu), script(WITH_ACT)])
    source = model_source("mlp")
    plan = make_model_plan("mlp", ["silu"], devices=["cpu"], sample_shape=(40,), batch_sizes=["4"], modes=["train"])
    rows = run(plan.configs, source)
    assert [r["activation"] for r in rows] == ["identity", "relu", "silu"]
    for row, samples in zip(rows, (IDENTITY, relu, WITH_ACT)):
        seconds = np.array(samples) * MS
        assert set(row) == set(MODEL_COLUMNS)
        assert (row["status"], row["timer"], row["samples"], row["converged"]) == ("ok", "scripted", 10, True)
        assert row["calls_per_sample"] == 1  # sized from the warm-up median (9 ms), not the first call
        assert row["median_s"] == pytest.approx(np.median(seconds), rel=1e-12)
        assert row["mean_s"] == pytest.approx(seconds.mean(), rel=1e-12)
        assert row["min_s"] == pytest.approx(seconds.min(), rel=1e-12)
        assert row["samples_per_s"] == pytest.approx(4 / np.median(seconds), rel=1e-12)
        assert row["samples_per_s_ci_low"] == pytest.approx(4 / row["ci_high_s"], rel=1e-12)
        assert row["input_shape"] == "4x40" and row["replaced"] == 3 and row["host"] == "h"
    assert rows[0]["act_share"] == ""
    for row, samples in zip(rows[1:], (relu, WITH_ACT)):
        _, low, high = stats.ratio_of_medians_ci(np.array(IDENTITY) * MS, np.array(samples) * MS)
        assert row["act_share"] == pytest.approx(1 - np.median(IDENTITY) / np.median(samples), rel=1e-12)
        assert row["act_share_ci_low"] == pytest.approx(1 - high, rel=1e-9)
        assert row["act_share_ci_high"] == pytest.approx(1 - low, rel=1e-9)


def test_a_resumed_group_measures_identity_for_the_share_without_writing_it(monkeypatch):
    scripted(monkeypatch, [script(IDENTITY), script(WITH_ACT)])
    plan = make_model_plan("mlp", ["silu"], devices=["cpu"], sample_shape=(40,), batch_sizes=["2"], modes=["infer"],
                           baseline=None)
    identity, silu = plan.configs
    rows = run(plan.configs, model_source("mlp"), write={silu.key})
    assert [r["activation"] for r in rows] == ["silu"]
    assert rows[0]["act_share"] == pytest.approx(1 - np.median(IDENTITY) / np.median(WITH_ACT))
    assert rows[0]["act_saved_bytes"] is None  # inference keeps nothing for backward


def test_a_step_that_fails_while_sampled_is_an_error_row_and_the_group_goes_on():
    source = model_source("tests.model.nets:tiring", (6,))
    plan = make_model_plan(source.text, ["silu"], devices=["cpu"], sample_shape=source.sample_shape,
                           batch_sizes=["2"],
                           modes=["infer"])
    rows = run(plan.configs, source)
    by_act = {r["activation"]: r for r in rows}
    assert set(by_act) == {"identity", "relu", "silu"}
    assert by_act["silu"]["status"] == "error"
    assert by_act["silu"]["message"].startswith("RuntimeError: tired after 8 calls")
    assert by_act["silu"]["median_s"] == ""
    for name in ("identity", "relu"):
        assert by_act[name]["status"] in ("ok", "noisy") and by_act[name]["message"] == ""
    assert math.isfinite(by_act["relu"]["act_share"])


def test_a_model_that_cannot_be_built_for_one_activation_is_an_error_row():
    source = model_source("tests.model.nets:picky", (6,))
    plan = make_model_plan(source.text, ["mish", "silu"], devices=["cpu"],
                           sample_shape=source.sample_shape, batch_sizes=["2"],
                           modes=["train"])
    rows = run(plan.configs, source, warmup=FAST_WARMUP)
    by_act = {r["activation"]: r for r in rows}
    assert set(by_act) == {"identity", "relu", "mish", "silu"} and len(rows) == 4
    assert (by_act["mish"]["status"], by_act["mish"]["message"]) == (
        "error", "RuntimeError: picky refuses mish")
    assert by_act["mish"]["input_shape"] == "2x6" and by_act["mish"]["mode"] == "train"
    assert all(by_act[a]["status"] in ("ok", "noisy") for a in ("identity", "relu", "silu"))


def test_without_an_identity_measurement_the_rows_have_no_share():
    source = model_source("tests.model.nets:picky_identity", (6,))
    plan = make_model_plan(source.text, ["silu"], devices=["cpu"], sample_shape=source.sample_shape,
                           batch_sizes=["2"],
                           modes=["infer"])
    rows = {r["activation"]: r for r in run(plan.configs, source)}
    assert rows["identity"]["status"] == "error"
    assert rows["identity"]["message"] == "RuntimeError: picky refuses identity"
    for name in ("relu", "silu"):
        assert rows[name]["status"] in ("ok", "noisy") and rows[name]["act_share"] == ""


def test_sampling_goes_on_to_the_minimum_that_compare_needs(monkeypatch):
    """A stopping rule satisfied after two samples still gets MIN_SAMPLES (6) of them."""
    assert runner_module.MIN_SAMPLES == 6
    scripted(monkeypatch, [script(IDENTITY), script(WITH_ACT)])
    plan = make_model_plan("mlp", ["silu"], devices=["cpu"], sample_shape=(40,), batch_sizes=["2"], modes=["infer"],
                           baseline=None)
    rows = []
    ModelRunner(model_source("mlp"), StoppingRule(target_rsd=1.0, min_samples=2, max_time=5.0),
                {}, rows.append, warmup=WARMUP).run(plan.configs)
    for row, samples in zip(rows, (IDENTITY, WITH_ACT)):
        assert row["samples"] == 6
        assert row["median_s"] == pytest.approx(np.median(samples[:6]) * MS, rel=1e-12)
    assert rows[1]["act_share"] == pytest.approx(1 - np.median(IDENTITY[:6]) / np.median(WITH_ACT[:6]))


def test_steps_per_sample_follow_the_warm_up_not_the_slow_first_call(monkeypatch):
    """A first call that builds (50 ms) would give one step per sample; the warm-up's 0.1 ms
    steps give 2 ms / 0.1 ms = 20, as micro sizes its samples."""
    fast = [0.1] * 10
    scripted(monkeypatch, [[50 * MS, 0.1 * MS, 0.1 * MS] + [s * MS for s in fast]] * 3)
    source = model_source("mlp")
    plan = make_model_plan("mlp", ["silu"], devices=["cpu"], sample_shape=(40,), batch_sizes=["4"],
                           modes=["infer"], baseline=None)
    rows = run(plan.configs, source)
    assert {row["calls_per_sample"] for row in rows} == {20}


def test_a_peak_step_that_fails_leaves_the_peak_empty_and_the_timings_stand():
    import types

    from actbench.micro.device import device_for
    from actbench.model.runner import _peak

    def out_of_memory():
        raise RuntimeError("CUDA out of memory (the extra step)")

    item = types.SimpleNamespace(workload=types.SimpleNamespace(step=out_of_memory))
    assert _peak(item, device_for("cpu")) == {}
    item = types.SimpleNamespace(workload=types.SimpleNamespace(step=lambda: None))
    assert set(_peak(item, device_for("cpu"))) <= {"peak_bytes", "peak_kind"}

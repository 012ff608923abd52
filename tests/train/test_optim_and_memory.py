"""Learning-rate schedules by hand, weight-decay groups, and the per-run peak memory probe."""

import sys

import pytest
import torch
from torch import nn

import actbench
from actbench.train.memory import PeakMemory
from actbench.train.config import OptimConfig, ScheduleConfig
from actbench.train.optim import build_optimizer, lr_factor, parameter_groups

SCHEDULE = {"name": "constant", "warmup_epochs": 0, "step_size": 2, "milestones": [], "gamma": 0.1,
            "max_lr": None, "min_lr": 0.0}
OPTIM = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4,
         "l1": 0.0, "betas": [0.9, 0.999], "eps": 1e-8}


def factor(**changes):
    return lr_factor(ScheduleConfig.from_dict({**SCHEDULE, **changes}), 0.1, epochs=4, steps_per_epoch=10)


def test_step_schedule_changes_at_epoch_boundaries():
    f = factor(name="step")
    assert [f(s) for s in (0, 19, 20, 39)] == pytest.approx([1, 1, 0.1, 0.1])


def test_multistep_schedule():
    f = factor(name="multistep", milestones=[1, 3])
    assert [f(s) for s in (9, 10, 29, 30)] == pytest.approx([1, 0.1, 0.1, 0.01])


def test_cosine_reaches_min_lr_and_is_half_way_in_the_middle():
    f = factor(name="cosine", min_lr=0.01)
    assert f(0) == pytest.approx(1.0)
    assert f(20) == pytest.approx(0.1 + 0.9 * 0.5)  # floor 0.01 / 0.1 = 0.1
    assert f(40) == pytest.approx(0.1)


def test_linear_warmup_then_schedule():
    f = factor(name="constant", warmup_epochs=1)
    assert [f(s) for s in (0, 4, 9, 10)] == pytest.approx([0.1, 0.5, 1.0, 1.0])


def test_onecycle_rises_to_max_lr_then_falls():
    f = lr_factor(ScheduleConfig.from_dict({**SCHEDULE, "name": "onecycle", "max_lr": 0.4}), 0.1, epochs=10,
                  steps_per_epoch=10)
    values = [f(s) for s in range(100)]
    peak_step = max(range(100), key=values.__getitem__)
    assert values[0] == pytest.approx(4 / 25, rel=0.05)
    assert 28 <= peak_step <= 31 and values[peak_step] == pytest.approx(4.0, rel=1e-3)
    assert values[-1] < 0.05


def test_activation_parameters_get_no_weight_decay():
    act = actbench.activation("acon_c", channels=8)
    model = nn.Sequential(nn.Linear(4, 8), act, nn.Linear(8, 2))
    groups = parameter_groups(model, [act], 5e-4)
    assert groups[0]["weight_decay"] == 5e-4 and groups[1]["weight_decay"] == 0.0
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in act.parameters()}
    assert len(groups[0]["params"]) == 4
    optimizer = build_optimizer(groups, OptimConfig.from_dict(OPTIM))
    assert isinstance(optimizer, torch.optim.SGD)


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                       ("rmsprop", torch.optim.RMSprop), ("adagrad", torch.optim.Adagrad),
                                       ("adamax", torch.optim.Adamax), ("nadam", torch.optim.NAdam),
                                       ("adadelta", torch.optim.Adadelta)])
def test_every_optimiser_builds(name, cls):
    groups = [{"params": [nn.Parameter(torch.zeros(2))], "weight_decay": 0.0}]
    assert isinstance(build_optimizer(groups, OptimConfig.from_dict({**OPTIM, "name": name})), cls)


PEAK_PROBE = """
import torch
from actbench.train.memory import PeakMemory
with PeakMemory(torch.device("cpu")) as small:
    pass
with PeakMemory(torch.device("cpu")) as large:
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    del block
print(large.kind, small.peak_bytes, large.peak_bytes)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc")
def test_cpu_peak_memory_sees_a_large_allocation():
    # A fresh process: in this one, memory freed by earlier tests (kept by glibc where actbench
    # micro asked it to) would be reused without raising the resident peak.
    import subprocess

    out = subprocess.run([sys.executable, "-c", PEAK_PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    kind, small, large = out[0], int(out[1]), int(out[2])
    assert kind == "process_peak_rss"
    assert large >= small + 48 * 2**20

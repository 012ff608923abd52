"""`actbench micro` with gated activations: the size is the input's, (..., 2h) -> (..., h), bytes
moved count the input and the half-width output, saved memory is a multiple of the input."""

import pytest
import torch
import torch.nn.functional as F

from actbench.micro.accuracy import gated_pairs, gated_probe, measure_accuracy
from actbench.micro.failures import Unsupported
from actbench.micro.plan import make_plan
from actbench.micro.workload import make_input, make_workload, min_bytes

from .test_runner import quick_settings, run


def test_min_bytes_counts_the_input_and_the_half_width_output_by_hand():
    # fwd reads x (1024) and writes y (512); bwd reads g (512) and x, writes dx (1024)
    assert min_bytes("fwd", 1024, 4, 512) == (1024 + 512) * 4
    assert min_bytes("bwd", 1024, 4, 512) == (512 + 1024 + 1024) * 4
    assert min_bytes("fwdbwd", 1024, 2, 512) == (1024 + 512 + 512 + 1024 + 1024) * 2
    assert min_bytes("fwdbwd", 1024, 2) == 5 * 1024 * 2  # pointwise: as before


def _workload(name, pass_, size=256, impl="formula"):
    config = make_plan([name], impl=impl, devices=["cpu"], sizes=[str(size)], passes=[pass_]).configs[0]
    x, g = make_input(size, "float32", "cpu"), make_input(size, "float32", "cpu", seed=1)
    return config, x, g, make_workload(config, x, g)


@pytest.mark.parametrize("pass_", ["fwd", "bwd", "fwdbwd"])
def test_a_gated_workload_reads_the_whole_input_and_takes_a_half_width_gradient(pass_):
    config, x, g, workload = _workload("glu", pass_)
    assert config.shape == (256,) and workload.x.shape == (256,)
    result = workload.call()
    if pass_ == "fwd":
        torch.testing.assert_close(result, F.glu(x, dim=-1))
    else:
        xr = x.clone().requires_grad_(True)
        (dx,) = torch.autograd.grad(F.glu(xr, dim=-1), xr, g[:128])
        assert result[0].shape == (256,)
        torch.testing.assert_close(result[0], dx)
    assert workload.min_bytes == min_bytes(pass_, 256, 4, 128)


def test_an_odd_last_dim_is_unsupported_before_anything_runs():
    config = make_plan(["swiglu"], devices=["cpu"], sizes=["255"], passes=["fwd"]).configs[0]
    with pytest.raises(Unsupported, match="swiglu is gated .* 255 has an odd last dim"):
        make_workload(config, make_input(255, "float32", "cpu"), make_input(255, "float32", "cpu"))


def test_rows_of_gated_activations(fake_timer):
    plan = make_plan(["relu", "swiglu"], impl="all", devices=["cpu"], sizes=["1024", "1001"],
                     passes=["fwd"])
    rows = run([c for c in plan.configs if c.impl in ("native", "formula", "memeff")],
               quick_settings(), timer=fake_timer)
    by_key = {(r["activation"], r["impl"], r["numel"]): r for r in rows}
    memeff = by_key[("swiglu", "memeff", 1024)]
    assert memeff["status"] == "ok" and memeff["saved_x_input"] == pytest.approx(1.0)
    assert memeff["min_bytes"] == (1024 + 512) * 4
    assert memeff["finite"] and memeff["max_rel_err"] < 1e-5 and memeff["grad_max_rel_err"] < 1e-5
    assert by_key[("swiglu", "formula", 1024)]["saved_x_input"] > 1.0
    assert by_key[("relu", "native", 1024)]["min_bytes"] == 2 * 1024 * 4
    odd = by_key[("swiglu", "memeff", 1001)]
    assert odd["status"] == "unsupported" and "odd last dim" in odd["message"]
    assert by_key[("relu", "native", 1001)]["status"] == "ok"


def test_the_probes_pair_every_value_with_every_gate():
    values = torch.tensor([-2.0, 0.5, 3.0], dtype=torch.float64)
    probe = gated_probe(values)
    assert probe.shape == (2, 6)
    for row in probe:  # both halves of each row hold every value
        assert sorted(row[:3].tolist()) == sorted(row[3:].tolist()) == sorted(values.tolist())
    pairs = gated_pairs(values)
    assert pairs.shape == (9, 2)
    assert {tuple(p) for p in pairs.tolist()} == {(a, b) for a in values.tolist() for b in values.tolist()}


def test_accuracy_of_a_gated_activation_sees_a_wrong_order_of_the_halves():
    config = make_plan(["swiglu"], impl="memeff", devices=["cpu"], sizes=["256"],
                       passes=["fwd"]).configs[0]
    module = make_workload(config, make_input(256, "float32", "cpu"),
                           make_input(256, "float32", "cpu", seed=1)).module
    good = measure_accuracy(config, module)
    assert good.max_rel_err < 1e-5 and good.grad_max_rel_err < 1e-5 and good.finite

    class Swapped(torch.nn.Module):
        def forward(self, x):
            h = x.shape[-1] // 2
            return x[..., h:] * F.silu(x[..., :h])

    assert measure_accuracy(config, Swapped()).max_rel_err > 0.1


@pytest.fixture
def fake_timer():
    from .test_runner import FakeTimer

    return FakeTimer()

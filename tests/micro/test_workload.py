"""Byte accounting, saved-tensor counting and accuracy against float64, on the CPU."""

import pytest
import torch

from actbench.micro.accuracy import measure_accuracy
from actbench.micro.device import device_for
from actbench.micro.memory import saved_bytes
from actbench.micro.plan import make_plan
from actbench.micro.workload import make_input, make_workload, min_bytes
from actbench import activation


def test_min_bytes_by_hand():
    # fwd reads x and writes y: 2 x 1024 x 4 bytes; bwd reads g and a saved tensor, writes dx
    assert min_bytes("fwd", 1024, 4) == 8192
    assert min_bytes("bwd", 1024, 4) == 12288
    assert min_bytes("fwdbwd", 1024, 2) == 10240


@pytest.mark.parametrize("impl, multiple", [("native", 1), ("memeff", 1), ("formula", 2)])
def test_saved_bytes_of_mish(impl, multiple):
    x = torch.randn(4096, requires_grad=True)
    assert saved_bytes(activation("mish", impl=impl), x) == multiple * 4096 * 4


def test_saved_bytes_of_relu_is_its_output_once():
    x = torch.randn(1000, requires_grad=True)
    assert saved_bytes(activation("relu"), x) == 4000


def test_saved_bytes_counts_a_storage_once_even_if_saved_twice():
    class SquareTwice(torch.nn.Module):
        def forward(self, x):
            return x * x  # autograd saves x twice (both operands)

    x = torch.randn(100, requires_grad=True)
    assert saved_bytes(SquareTwice(), x) == 400


def test_peak_bytes_is_empty_off_cuda():
    assert device_for("cpu").peak_bytes(lambda: None) is None


def test_inputs_are_seeded_and_standard_normal():
    a, b = make_input(2**16, "float32", "cpu"), make_input(2**16, "float32", "cpu")
    assert torch.equal(a, b)
    assert abs(a.mean().item()) < 0.02 and abs(a.std().item() - 1) < 0.02


@pytest.mark.parametrize("pass_", ["fwd", "bwd", "fwdbwd"])
def test_workload_calls_compute_the_right_thing(pass_):
    config = make_plan(["mish"], impl="formula", devices=["cpu"], sizes=["256"],
                       passes=[pass_]).configs[0]
    x, g = make_input(256, "float32", "cpu"), make_input(256, "float32", "cpu", seed=1)
    workload = make_workload(config, x, g)
    result = workload.call()
    expected_y = x * torch.tanh(torch.nn.functional.softplus(x))
    if pass_ == "fwd":
        torch.testing.assert_close(result, expected_y)
    else:
        xr = x.clone().requires_grad_(True)
        (dx,) = torch.autograd.grad(torch.nn.functional.mish(xr), xr, g)
        torch.testing.assert_close(result[0], dx)


def test_trainable_activations_get_parameter_gradients_too():
    config = make_plan(["acon_c"], devices=["cpu"], sizes=["2^10"], passes=["bwd"]).configs[0]
    workload = make_workload(config, make_input(1024, "float32", "cpu"),
                             make_input(1024, "float32", "cpu", seed=1))
    grads = workload.call()
    assert len(grads) == 1 + len(list(workload.module.parameters()))


@pytest.mark.parametrize("dtype, bound", [("float32", 1e-5), ("float64", 1e-12), ("bfloat16", 0.05)])
def test_accuracy_of_mish_memeff(dtype, bound):
    config = make_plan(["mish"], impl="memeff", devices=["cpu"], sizes=["256"], dtypes=[dtype],
                       passes=["fwd"]).configs[0]
    module = make_workload(config, make_input(256, dtype, "cpu"),
                           make_input(256, dtype, "cpu", seed=1)).module
    result = measure_accuracy(config, module)
    assert 0 <= result.max_abs_err < bound * 20
    assert result.max_rel_err < bound and result.grad_max_rel_err < bound * 10
    assert result.finite


def test_accuracy_sees_a_wrong_implementation():
    from actbench.zoo.registry import lookup
    from actbench.micro.accuracy import Accuracy

    config = make_plan(["mish"], impl="formula", devices=["cpu"], sizes=["256"],
                       passes=["fwd"]).configs[0]

    class Off(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.mish(x) * 1.001

    result = measure_accuracy(config, Off())
    assert isinstance(result, Accuracy)
    assert result.max_rel_err == pytest.approx(1e-3, rel=0.05)
    assert lookup("mish")  # the reference came from the zoo, not from the module under test


def test_finite_probe_catches_overflow():
    config = make_plan(["mish"], impl="formula", devices=["cpu"], sizes=["256"],
                       passes=["fwd"]).configs[0]

    class Overflowing(torch.nn.Module):
        def forward(self, x):
            return torch.exp(x)

    assert not measure_accuracy(config, Overflowing()).finite


def _module_for(name, impl, dtype, size="256"):
    config = make_plan([name], impl=impl, devices=["cpu"], sizes=[size], dtypes=[dtype],
                       passes=["fwd"]).configs[0]
    n = config.numel
    return config, make_workload(config, make_input(n, dtype, "cpu"),
                                 make_input(n, dtype, "cpu", seed=1)).module


def test_a_true_overflow_is_not_a_finiteness_failure():
    # ACON-C's output (p1 - p2) x ... really exceeds float16's range near its largest value
    config, module = _module_for("acon_c", "memeff", "float16", size="1024")
    with torch.no_grad():
        module.p1.fill_(3.0)
        module.p2.fill_(0.0)
    assert measure_accuracy(config, module).finite


def test_an_overflow_inside_the_formula_is_a_finiteness_failure():
    # PyTorch's bfloat16 GELU overflows above about max/2 although GELU(x) = x there
    config, module = _module_for("gelu", "native", "bfloat16")
    assert not measure_accuracy(config, module).finite
    config, module = _module_for("gelu", "formula", "bfloat16")
    assert measure_accuracy(config, module).finite

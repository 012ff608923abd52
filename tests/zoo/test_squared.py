"""relu2 and star_relu beyond the shared reference tests: what each route keeps for backward, the
initial scale and bias, expressions, and the compiled fast kernels against float64."""

import math

import numpy as np
import pytest
import torch

import actbench
from actbench.zoo import fast

from .float64_references import STAR_RELU, reference
from .test_acon_and_memory import saved_storages


def test_star_relu_starts_whitened_for_a_standard_normal_input():
    module = actbench.activation("star_relu")
    assert module.scale.item() == pytest.approx(2 / math.sqrt(5)) and module.bias.item() == \
        pytest.approx(-1 / math.sqrt(5))
    with torch.no_grad():
        y = module(torch.randn(2**20, generator=torch.Generator().manual_seed(0)))
    assert abs(y.mean().item()) < 0.01 and abs(y.std().item() - 1) < 0.01
    chosen = actbench.activation("star_relu", scale=1.0, bias=0.0)
    x = torch.linspace(-2, 2, 9)
    torch.testing.assert_close(chosen(x), torch.relu(x) ** 2)
    assert [n for n, _ in module.named_parameters()] == ["scale", "bias"]


def test_what_each_route_keeps_for_backward():
    """relu2's formula keeps relu(x) alone (1x), so it needs no memeff; star_relu's keeps r and
    s r (2x), its memeff only x and the two scalars."""
    x = torch.randn(64, 32, requires_grad=True)
    size = x.untyped_storage().nbytes()
    assert sum(saved_storages(actbench.activation("relu2"), x).values()) == size
    assert "memeff" not in actbench.implementations("relu2")
    assert sum(saved_storages(actbench.activation("star_relu", impl="formula"), x).values()) >= 2 * size
    memeff = saved_storages(actbench.activation("star_relu", impl="memeff"), x)
    assert memeff[x.untyped_storage().data_ptr()] == size and sum(memeff.values()) == size + 8


def test_relu2_is_usable_inside_expressions():
    module = actbench.activation("relu2(x) + 0.5 * x")
    x = torch.linspace(-3, 3, 13)
    torch.testing.assert_close(module(x), torch.relu(x) ** 2 + 0.5 * x)


@pytest.mark.parametrize("impl", ["memeff", "fast"])
def test_an_empty_input_and_frozen_parameters(impl, eager_kernels):
    module = actbench.activation("star_relu", impl=impl)
    empty = torch.zeros(0, 3, requires_grad=True)
    module(empty).sum().backward()
    assert empty.grad.shape == (0, 3) and module.scale.grad.item() == 0.0
    module.scale.requires_grad_(False)
    x = torch.randn(5, requires_grad=True)
    module(x).sum().backward()
    assert x.grad is not None and module.bias.grad is not None


def _assert_compiled():
    for kernel in fast.kernels():  # compiled, unless this machine has no C compiler
        assert kernel.fallback_reason is None or "compiler" in kernel.fallback_reason


def test_compiled_relu2_and_star_relu_match_the_float64_reference():
    x = torch.linspace(-60, 60, 4001)
    for name in ("relu2", "star_relu"):
        module = actbench.activation(name, impl="fast")
        xg = x.clone().requires_grad_(True)
        y = module(xg)
        (dy,) = torch.autograd.grad(y, xg, torch.ones_like(y))
        ref_y, ref_dy = reference(name, x.double().numpy())
        np.testing.assert_allclose(y.detach().double().numpy(), ref_y, rtol=2e-6, atol=2e-7)
        np.testing.assert_allclose(dy.double().numpy(), ref_dy, rtol=1e-5, atol=1e-6)
    _assert_compiled()


def test_compiled_star_relu_reduces_its_parameter_gradients_like_the_float64_formula():
    formula = actbench.activation("star_relu", impl="formula").double()
    module = actbench.activation("star_relu", impl="fast")
    generator = torch.Generator().manual_seed(2)
    x = 3 * torch.randn(4, 3, 50, generator=generator)
    g = torch.rand(4, 3, 50, generator=generator)  # positive: the sums do not cancel
    results = []
    for m, t, up in ((module, x, g), (formula, x.double(), g.double())):
        t = t.clone().requires_grad_(True)
        y = m(t)
        results.append([y, *torch.autograd.grad(y, [t, m.scale, m.bias], up)])
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    assert STAR_RELU["scale"] == pytest.approx(module.scale.item())
    _assert_compiled()

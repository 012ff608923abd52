"""Every implementation of every activation against independent float64 references.

Values and first derivatives on a grid reaching |x| = 60, in float64 (tight) and float32; finite
values and gradients at the extremes of float32, float16 and bfloat16; gradcheck for the trainable
ones; the compiled route on a few members, and its fall-back.
"""

import warnings

import numpy as np
import pytest
import torch

import actbench
from actbench.errors import ActbenchWarning
from actbench.zoo import functional
from actbench.zoo.registry import lookup

from .float64_references import ACON_B, ACON_C, KINKS, NAMES, STAR_RELU, reference

POINTWISE = [n for n in actbench.activations() if lookup(n).pointwise]
# implementations that compile on first call: `compiled` is tested below, `fast` in test_fast.py
COMPILING = ("compiled", "fast")
CASES = [(n, i) for n in POINTWISE for i in actbench.implementations(n) if i not in COMPILING]
GRID = np.unique(np.concatenate([np.linspace(-60, 60, 1999), np.linspace(-4, 4, 801),
                                 [-1e-6, 1e-6, -1e-3, 1e-3]]))


def build(name, impl, dtype=torch.float64):
    """The module with the parameter values the references use."""
    module = actbench.activation(name, impl=impl, channels=1, seed=0).to(dtype)
    with torch.no_grad():  # set after the dtype change, so float64 holds the exact values
        if name.startswith("acon"):
            module.beta.fill_(ACON_C["beta"])
        if name == "acon_b":
            module.p2.fill_(ACON_B["p"])
        if name == "acon_c":
            module.p1.fill_(ACON_C["p1"])
            module.p2.fill_(ACON_C["p2"])
        if name == "star_relu":
            module.scale.fill_(STAR_RELU["scale"])
            module.bias.fill_(STAR_RELU["bias"])
    return module


def evaluate(module, name, x):
    """y and dy/dx for a 1-D input (channel-wise members see it as (N, 1))."""
    x = x.clone().requires_grad_(True)
    shaped = x.view(-1, 1) if lookup(name).channelwise else x
    y = module(shaped).view(-1)
    (dy,) = torch.autograd.grad(y, x, torch.ones_like(y))
    return y.detach(), dy


def away_from_kinks(name, xs):
    return np.all([np.abs(xs - k) > 1e-9 for k in KINKS.get(name, ())], axis=0) if name in KINKS \
        else np.ones_like(xs, dtype=bool)


def test_every_pointwise_activation_has_a_reference():
    assert set(POINTWISE) == NAMES


@pytest.mark.parametrize("name, impl", CASES)
def test_float64_values_and_slopes_match_the_reference(name, impl):
    y, dy = evaluate(build(name, impl), name, torch.tensor(GRID, dtype=torch.float64))
    ref_y, ref_dy = reference(name, GRID)
    np.testing.assert_allclose(y.numpy(), ref_y, rtol=1e-9, atol=1e-12)
    keep = away_from_kinks(name, GRID)
    # PyTorch's own kernels: softplus returns x above its threshold of 20 (a slope error of
    # sigmoid(-20) = 2e-9); hardsigmoid's backward uses a float32 1/6 even in float64.
    rtol = {("softplus", "native"): 3e-9, ("hardsigmoid", "native"): 1e-7}.get((name, impl), 1e-9)
    np.testing.assert_allclose(dy.numpy()[keep], ref_dy[keep], rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name, impl", CASES)
def test_float32_values_and_slopes_match_the_reference(name, impl):
    y, dy = evaluate(build(name, impl, torch.float32), name, torch.tensor(GRID, dtype=torch.float32))
    grid32 = GRID.astype(np.float32).astype(np.float64)  # the points float32 actually sees
    ref_y, ref_dy = reference(name, grid32)
    # PyTorch's float32 erf kernel is accurate to about 7e-7 absolute, so native gelu is too.
    atol = 1e-6 if (name, impl) == ("gelu", "native") else 2e-7
    np.testing.assert_allclose(y.double().numpy(), ref_y, rtol=2e-6, atol=atol)
    keep = away_from_kinks(name, grid32)
    np.testing.assert_allclose(dy.double().numpy()[keep], ref_dy[keep], rtol=1e-5, atol=1e-6)


SQUARING = ("relu2", "star_relu")


def _probes(dtype, name, impl):
    if dtype == torch.float32:
        big = [1e4, 1e3, 100.0, 60.0]
    else:
        top = 0.9 * torch.finfo(dtype).max
        if dtype == torch.bfloat16 and (impl == "native" or name == "meta_acon"):
            # bfloat16 reaches float32's range, where PyTorch's native gelu / hardswish / gelu_tanh
            # kernels and meta-ACON's float32 switching network overflow (docs/activations.md).
            top = 1e12
        if name in SQUARING:  # x^2 itself exceeds the range beyond sqrt(max)
            top = 0.9 * torch.finfo(dtype).max ** 0.5
        big = [v for v in (top, 1e4, 100.0, 20.0) if v <= top]
    tiny = torch.finfo(dtype).tiny
    values = sorted({s * v for v in big + [1.0, 1e-3, tiny] for s in (-1.0, 1.0)} | {0.0})
    return torch.tensor(values, dtype=dtype)


def _own_fast_kernel(name: str) -> bool:
    """`fast` runs actbench's kernels (not PyTorch's op, which is tested as `native`)."""
    implementations = actbench.implementations(name)
    return "fast" in implementations and not (
        "native" in implementations
        and actbench.activation(name, impl="fast").fn is actbench.activation(name, impl="native").fn)


# gated activations take (a, b) pairs: their extremes are in test_gated.py
EXTREME_CASES = [(n, i) for n in actbench.activations() for i in actbench.implementations(n)
                 if (i not in COMPILING or (i == "fast" and _own_fast_kernel(n)))
                 and not lookup(n).gated]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name, impl", EXTREME_CASES)
def test_extremes_stay_finite(name, impl, dtype, request):
    """Values and gradients stay finite wherever the true value is representable."""
    if impl == "fast":
        request.getfixturevalue("eager_kernels")  # the kernels' formulas, uncompiled
    module = actbench.activation(name, impl=impl, channels=1, seed=0)
    if name.startswith("acon") or name == "meta_acon":
        with torch.no_grad():  # |p| <= 1 keeps the true output within the dtype's range
            module.p1.fill_(1.0)
            module.p2.fill_(0.1)
    if name != "meta_acon":  # its switching network stays in float32, as under mixed precision
        module = module.to(dtype)
    module.eval()
    x = _probes(dtype, name, impl).requires_grad_(True)
    shaped = x.view(-1, 1) if lookup(name).channelwise else x
    y = module(shaped)
    (dy,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert torch.isfinite(y).all(), (x[~torch.isfinite(y.view(-1))], y)
    assert torch.isfinite(dy).all(), (x[~torch.isfinite(dy)], dy)


TRAINABLE = [(n, i) for n in ("prelu", "swish", "star_relu", "acon_a", "acon_b", "acon_c", "meta_acon")
             for i in actbench.implementations(n) if i not in COMPILING or i == "fast"]


@pytest.mark.parametrize("name, impl", TRAINABLE)
def test_gradcheck_input_and_parameters(name, impl, request):
    if impl == "fast":
        request.getfixturevalue("eager_kernels")  # the kernels' formulas, uncompiled (fast to check)
    module = actbench.activation(name, impl=impl, channels=3, seed=0).double()
    if name == "meta_acon":
        module.eval()  # BatchNorm with running statistics: a fixed function to differentiate
    names = [n for n, _ in module.named_parameters()]
    values = [p.detach().clone().requires_grad_(True) for p in module.parameters()]
    x = torch.randn(4, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def f(x, *params):
        return torch.func.functional_call(module, dict(zip(names, params)), (x,))

    assert torch.autograd.gradcheck(f, (x.requires_grad_(True), *values))


@pytest.mark.parametrize("impl", ["formula", "memeff"])
def test_meta_acon_is_acon_c_with_the_switching_beta(impl):
    module = actbench.activation("meta_acon", impl=impl, channels=6, seed=0).double().eval()
    x = torch.randn(5, 6, 4, 4, dtype=torch.float64)
    beta = module.switching_beta(x)
    assert beta.shape == (5, 6, 1, 1) and ((beta > 0) & (beta < 1)).all()
    p1, p2 = module.p1.view(1, -1, 1, 1), module.p2.view(1, -1, 1, 1)
    expected = (p1 - p2) * x * torch.sigmoid(beta * (p1 - p2) * x) + p2 * x
    torch.testing.assert_close(module(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["mish", "swish", "acon_c"])
def test_compiled_agrees_with_formula(name):
    formula = build(name, "formula", torch.float32)
    compiled = build(name, "compiled", torch.float32)
    compiled.load_state_dict(formula.state_dict())
    x = torch.linspace(-20, 20, 401)
    y_formula, dy_formula = evaluate(formula, name, x)
    y_compiled, dy_compiled = evaluate(compiled, name, x)
    torch.testing.assert_close(y_compiled, y_formula, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dy_compiled, dy_formula, rtol=1e-5, atol=1e-6)
    assert compiled.fn.fallback_reason is None or "compiler" in compiled.fn.fallback_reason


def test_compiled_falls_back_with_one_warning(monkeypatch):
    def broken_compile(*args, **kwargs):
        raise RuntimeError("no C compiler found")

    monkeypatch.setattr(torch, "compile", broken_compile)
    wrapper = functional.LazilyCompiled(functional.mish_formula, "mish")
    x = torch.linspace(-3, 3, 7)
    with pytest.warns(ActbenchWarning, match="torch.compile is unavailable for mish"):
        y = wrapper(x)
    torch.testing.assert_close(y, functional.mish_formula(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wrapper(x)  # later calls use the formula silently
    assert "no C compiler found" in wrapper.fallback_reason


def test_many_compiled_activations_do_not_exhaust_dynamos_recompile_limit(monkeypatch, caplog):
    """Each compiled activation has its own Dynamo cache: the ninth one is still compiled."""
    import logging

    import actbench
    from actbench.zoo import functional

    original = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: original(fn, backend="eager", **kw))
    monkeypatch.setattr(functional, "_compiled_cache", {})
    torch._dynamo.reset()
    names = ["silu", "gelu", "mish", "elu", "selu", "celu", "softplus", "tanhexp", "logish",
             "serf", "gelu_tanh"]
    with caplog.at_level(logging.WARNING):
        for name in names:
            module = actbench.activation(name, impl="compiled")
            for size in (7, 64, 1000):
                module(torch.randn(size))
    assert not [r for r in caplog.records if "recompile_limit" in r.getMessage()
                or "cache_size_limit" in r.getMessage()]
    torch._dynamo.reset()

"""The GLU family: every implementation against float64 references (values and the gradients of
both halves, in both orders), extremes, what is saved, the fused kernels, shapes and errors.

References are the published formulas in numpy / scipy with their slopes derived by hand (and
checked against central differences of the values). The fast kernels run uncompiled
(`eager_kernels`) except in the tests named compiled, which compile a few of them in float32.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import special
from torch import nn

import actbench
from actbench.errors import ActbenchError
from actbench.zoo import fast, fast_gated
from actbench.zoo.registry import lookup

from .test_acon_and_memory import saved_storages

GATED = ["glu", "reglu", "geglu", "geglu_tanh", "swiglu", "bilinear"]


def gate_reference(name, b):
    """(g(b), g'(b)) in float64, the slopes derived by hand; Phi is scipy's ndtr, accurate in the
    left tail, and gelu_tanh's slope is 0 or 1 beyond |b| = 10, where tanh(u) is +-1 in float64
    and 0.5 b (1 - t^2) u' would be inf * 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        s = special.expit(b)
        if name == "glu":
            return s, s * (1.0 - s)
        if name == "reglu":
            return np.maximum(b, 0.0), (b > 0).astype(float)
        if name == "geglu":
            return b * special.ndtr(b), special.ndtr(b) + b * np.exp(-0.5 * b * b) / np.sqrt(2 * np.pi)
        if name == "geglu_tanh":
            t = np.tanh(np.sqrt(2.0 / np.pi) * (b + 0.044715 * b ** 3))
            du = np.sqrt(2.0 / np.pi) * (1.0 + 3 * 0.044715 * b * b)
            slope = 0.5 * (1.0 + t) + 0.5 * b * (1.0 - t * t) * du
            return 0.5 * b * (1.0 + t), np.where(np.abs(b) > 10, (b > 0).astype(float), slope)
        if name == "swiglu":
            return b * s, s * (1.0 + b * (1.0 - s))
        return b, np.ones_like(b)  # bilinear


def reference(name, a, b, g):
    """y = a g(b) and the gradients of the value and gate halves for upstream g."""
    value, slope = gate_reference(name, b)
    return a * value, g * value, g * a * slope


@pytest.mark.parametrize("name", GATED)
def test_the_reference_slopes_are_the_derivatives_of_the_reference_values(name):
    b = np.linspace(-6, 6, 1201) + 0.0005  # away from relu's kink at 0
    h = 1e-6
    central = (gate_reference(name, b + h)[0] - gate_reference(name, b - h)[0]) / (2 * h)
    np.testing.assert_allclose(gate_reference(name, b)[1], central, rtol=1e-6, atol=1e-8)


def implementations(name):
    return [impl for impl in actbench.implementations(name) if impl != "compiled"]


CASES = [(n, i, first) for n in GATED for i in implementations(n) for first in (0, 1)
         if not (i == "native" and first)]
B_GRID = np.unique(np.concatenate([np.linspace(-60, 60, 601), np.linspace(-4, 4, 401),
                                   [-1e-6, 1e-6, -1e-3, 1e-3, -1e-9, 1e-9, 7.5]]))  # 4 x 250
ROWS = 4


def pairs(dtype):
    """(a, b, g) for the grid: b over the grid, a and g spread over [-3, 3] in a fixed shuffle."""
    rng = np.random.default_rng(0)
    a = rng.permutation(np.linspace(-3, 3, B_GRID.size))
    g = rng.standard_normal(B_GRID.size)
    as_dtype = [torch.tensor(v, dtype=torch.float64).to(dtype) for v in (a, B_GRID, g)]
    return as_dtype, [t.double().numpy() for t in as_dtype]  # the points the dtype really holds


def run(module, a, b, g, gate_first, rows=ROWS):
    """y and the gradients of the a and b halves (flat), from a (rows, 2h) input in that order."""
    a, b, g = (t.view(rows, -1) for t in (a, b, g))
    x = torch.cat([b, a] if gate_first else [a, b], dim=-1).requires_grad_(True)
    y = module(x)
    (dx,) = torch.autograd.grad(y, x, g)
    h = a.shape[-1]
    d_first, d_second = dx[:, :h].reshape(-1), dx[:, h:].reshape(-1)
    return y.detach().reshape(-1), *((d_second, d_first) if gate_first else (d_first, d_second))


@pytest.mark.parametrize("name, impl, gate_first", CASES)
def test_float64_values_and_both_gradients_match_the_reference(name, impl, gate_first, eager_kernels):
    (a, b, g), (a64, b64, g64) = pairs(torch.float64)
    module = actbench.activation(name, impl=impl, gate_first=gate_first)
    got = run(module, a, b, g, gate_first)
    for value, expected in zip(got, reference(name, a64, b64, g64), strict=True):
        np.testing.assert_allclose(value.numpy(), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, impl, gate_first", CASES)
def test_float32_values_and_both_gradients_match_the_reference(name, impl, gate_first, eager_kernels):
    (a, b, g), (a64, b64, g64) = pairs(torch.float32)
    module = actbench.activation(name, impl=impl, gate_first=gate_first)
    got = run(module, a, b, g, gate_first)
    for value, expected, rtol in zip(got, reference(name, a64, b64, g64), (2e-6, 2e-6, 1e-5),
                                     strict=True):
        np.testing.assert_allclose(value.double().numpy(), expected, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("name", GATED)
def test_formula_and_memeff_pass_gradcheck_in_both_orders(name):
    x = torch.randn(3, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    if name == "reglu":
        x = x + 0.1 * torch.sign(x)  # away from relu's kink, where finite differences straddle it
    for impl in ("formula", "memeff"):
        for first in (0, 1):
            module = actbench.activation(name, impl=impl, gate_first=first)
            assert torch.autograd.gradcheck(module, (x.clone().requires_grad_(True),))
    memeff = actbench.activation(name, impl="memeff")
    assert torch.autograd.gradgradcheck(memeff, (x.clone().requires_grad_(True),))


def test_glu_is_torchs_glu_and_gate_first_swaps_the_halves():
    x = torch.randn(5, 8, dtype=torch.float64)
    torch.testing.assert_close(actbench.activation("glu", impl="formula")(x), F.glu(x, dim=-1))
    swapped = torch.cat([x[..., 4:], x[..., :4]], dim=-1)
    for impl in ("formula", "memeff"):
        first = actbench.activation("glu", impl=impl, gate_first=1)
        torch.testing.assert_close(first(x), F.glu(swapped, dim=-1), rtol=1e-12, atol=1e-12)


# autograd forms (g a) b inside the gate's backward; where that overflows float32 (both halves
# beyond ~1.8e19, bfloat16 only) it meets the gate's zero slope as inf * 0 (docs/activations.md)
AUTOGRAD_PRODUCT = {"geglu", "geglu_tanh", "swiglu"}


def _extreme_values(dtype, name, impl):
    top = 0.9 * torch.finfo(dtype).max if dtype != torch.float32 else 1e4
    if dtype == torch.bfloat16 and impl == "formula" and name in AUTOGRAD_PRODUCT:
        top = 1e19
    big = [top, 1e4, 100.0, 20.0] if dtype != torch.float32 else [1e4, 1e3, 100.0, 60.0]
    tiny = torch.finfo(dtype).tiny
    values = sorted({s * v for v in [*big, 1.0, 1e-3, tiny] for s in (-1.0, 1.0)} | {0.0})
    return torch.tensor(values, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name, impl", [(n, i) for n in GATED for i in implementations(n)])
def test_extremes_stay_finite_where_the_true_result_is_representable(name, impl, dtype,
                                                                     eager_kernels):
    """Every (a, b) pair of extreme values: no NaN, and no infinity where the true value and
    gradients fit the dtype (a huge a times a huge g(b) may overflow: it does in float64 too)."""
    values = _extreme_values(dtype, name, impl)
    n = values.numel()
    a, b = values.repeat_interleave(n), values.repeat(n)
    g = torch.ones_like(a)
    module = actbench.activation(name, impl=impl).to(dtype)
    got = run(module, a, b, g, gate_first=False, rows=n)
    limit = torch.finfo(dtype).max
    for value, expected in zip(got, reference(name, a.double().numpy(), b.double().numpy(), 1.0),
                               strict=True):
        assert not torch.isnan(value).any(), (name, impl, dtype)
        representable = torch.from_numpy(np.abs(expected) <= limit)
        assert torch.isfinite(value[representable]).all(), (a[~torch.isfinite(value)],
                                                            b[~torch.isfinite(value)])


@pytest.mark.parametrize("impl", ["memeff", "fast"])
@pytest.mark.parametrize("name", GATED)
def test_memeff_and_fast_save_exactly_their_input(name, impl, eager_kernels):
    for first in (0, 1):
        x = torch.randn(64, 32, requires_grad=True)
        saved = saved_storages(actbench.activation(name, impl=impl, gate_first=first), x)
        assert saved == {x.untyped_storage().data_ptr(): x.untyped_storage().nbytes()}


def test_the_swiglu_formula_keeps_more_than_its_input():
    x = torch.randn(64, 32, requires_grad=True)
    kept = sum(saved_storages(actbench.activation("swiglu", impl="formula"), x).values())
    assert kept > x.untyped_storage().nbytes()


SHAPES = {"(8,)": (8,), "(2, 3, 10)": (2, 3, 10), "(1, 2)": (1, 2), "(5, 1, 4)": (5, 1, 4)}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, impl, gate_first", [c for c in CASES if c[1] != "formula"])
def test_every_shape_and_layout_matches_the_formula(name, impl, gate_first, shape, eager_kernels):
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(*SHAPES[shape], dtype=torch.float64, generator=generator)
    formula = actbench.activation(name, impl="formula", gate_first=gate_first)
    module = actbench.activation(name, impl=impl, gate_first=gate_first)
    for given in (x, x.mT.contiguous().mT if x.dim() >= 2 else x):  # also column-major
        expected_in = given.clone().requires_grad_(True)
        got_in = given.clone().requires_grad_(True)
        expected, got = formula(expected_in), module(got_in)
        assert got.shape == (*given.shape[:-1], given.shape[-1] // 2)
        upstream = torch.ones((), dtype=x.dtype).expand_as(got)  # an expanded upstream gradient
        (dx_expected,) = torch.autograd.grad(expected, expected_in, upstream)
        (dx,) = torch.autograd.grad(got, got_in, upstream)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(dx, dx_expected, rtol=1e-12, atol=1e-12)


def test_a_non_contiguous_input_and_an_empty_one(eager_kernels):
    x = torch.randn(6, 8, dtype=torch.float64)[:, ::2].t()  # (4, 6), strided
    for impl in implementations("swiglu"):
        module = actbench.activation("swiglu", impl=impl)
        xs = x.clone().requires_grad_(True), x.contiguous().requires_grad_(True)
        ys = [module(t) for t in xs]
        torch.testing.assert_close(ys[0], ys[1])
        grads = [torch.autograd.grad(y.sum(), t)[0] for y, t in zip(ys, xs)]
        torch.testing.assert_close(grads[0], grads[1])
        empty = torch.zeros(0, 4, requires_grad=True)
        y = module(empty)
        assert y.shape == (0, 2)
        y.sum().backward()
        assert empty.grad.shape == (0, 4)


@pytest.mark.parametrize("name", GATED)
def test_an_odd_last_dim_is_one_clear_error(name):
    for impl in actbench.implementations(name):
        module = actbench.activation(name, impl=impl)
        with pytest.raises(ActbenchError, match=r"is gated.*must be even; got input of shape \(3, 5\)") \
                as caught:
            module(torch.randn(3, 5))
        assert "\n" not in str(caught.value)
        with pytest.raises(ActbenchError, match=r"shape \(\)"):
            module(torch.tensor(1.0))


def test_the_order_option_is_checked():
    with pytest.raises(ActbenchError, match="gate_first of swiglu must be 0 .* or 1"):
        actbench.activation("swiglu", gate_first=2)
    with pytest.raises(ActbenchError, match="must be a number"):
        actbench.activation("swiglu", gate_first="yes")
    with pytest.raises(ActbenchError, match="native implementation .* takes the value first"):
        actbench.activation("glu", impl="native", gate_first=1)
    with pytest.raises(ActbenchError, match="accepted options: gate_first"):
        actbench.activation("glu", order=1)


def test_gated_modules_and_specs_say_so():
    for name in GATED:
        spec = lookup(name)
        assert spec.gated and not spec.pointwise and spec.family == "GLU"
        assert spec.options == {"gate_first": 0} and spec.function is None
        module = actbench.activation(name)
        assert module.gated is True and type(module).gated is True
    assert actbench.activation("relu").gated is False and not lookup("relu").gated
    assert actbench.activation("star_relu").gated is False
    assert repr(actbench.activation("swiglu", impl="fast")) == "Gated(swiglu, impl=fast)"
    assert "swiglu, impl=memeff, gate_first=1" in repr(actbench.activation("swiglu", impl="memeff",
                                                                            gate_first=1))


def test_replace_activations_refuses_a_gated_activation():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ActbenchError, match=r"swiglu is gated: it maps \(\.\.\., 2h\) to \(\.\.\., h\)") \
            as caught:
        actbench.replace_activations(model, "SwiGLU")
    assert "\n" not in str(caught.value)
    assert isinstance(model[1], nn.ReLU)
    with pytest.raises(ActbenchError, match="is gated"):
        actbench.replace_activations(model, "glu", dry_run=True)


def test_properties_and_curves_show_the_gate_with_the_value_one():
    from actbench.zoo.properties import compute_properties, curves_for

    p = compute_properties(lookup("swiglu"))
    assert p.minimum.x == pytest.approx(-1.278464542761074, abs=1e-6)  # silu's, -1 - W(1/e)
    assert p.slope_at_0 == pytest.approx(0.5) and "a = 1" in p.note
    glu = compute_properties(lookup("glu"))
    assert (glu.minimum.value, glu.maximum.value) == pytest.approx((0.0, 1.0))
    assert glu.value_at_0 == pytest.approx(0.5) and glu.monotonic == "increasing"
    (curve,) = curves_for(["geglu"], -3, 3, points=7)
    expected, slope = gate_reference("geglu", curve.x)
    np.testing.assert_allclose(curve.y, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.dy, slope, rtol=1e-12, atol=1e-15)
    assert curve.legend == "geglu (gate, value a = 1)"


def test_one_forward_and_one_backward_kernel_per_order(monkeypatch, eager_kernels):
    """The backward is one kernel returning the gradient of the whole (M, 2, h) input."""
    compiled = []

    def counting_compile(fn, examples):
        compiled.append((fn.func.__name__, fn.keywords["gate_first"], [tuple(e.shape) for e in examples]))
        return fn

    monkeypatch.setattr(fast, "compile_pointwise", counting_compile)
    for shape in [(4, 12), (3, 5, 12), (7, 12)]:  # one kernel serves every size
        x = torch.randn(*shape, requires_grad=True)
        fast_gated.swiglu_fast(x).sum().backward()
    assert [c[:2] for c in compiled] == [("gated_forward", False), ("gated_backward", False)]
    # x as (M, 2, h), the upstream as (M, 1, h); M grown so the hints hold HINT_NUMEL elements
    m = 4 * -(-fast.HINT_NUMEL // (4 * 2 * 6))
    assert compiled[1][2] == [(m, 2, 6), (m, 1, 6)]
    fast_gated.swiglu_fast(torch.randn(4, 12, requires_grad=True), True).sum().backward()
    assert [c[:2] for c in compiled[2:]] == [("gated_forward", True), ("gated_backward", True)]


def test_integer_input_is_refused_by_fast():
    with pytest.raises(TypeError, match="floating-point"):
        actbench.activation("swiglu", impl="fast")(torch.arange(8))


def _assert_compiled():
    for kernel in fast.kernels():  # compiled, unless this machine has no C compiler
        assert kernel.fallback_reason is None or "compiler" in kernel.fallback_reason


@pytest.mark.parametrize("name, gate_first", [("swiglu", 0), ("geglu", 1)])
def test_compiled_fast_kernels_match_the_float64_reference(name, gate_first):
    """The kernels inductor really compiles, float32, both halves' gradients; the erfc of geglu
    keeps its relative accuracy in the left tail."""
    (a, b, g), (a64, b64, g64) = pairs(torch.float32)
    got = run(actbench.activation(name, impl="fast", gate_first=gate_first), a, b, g, gate_first)
    for value, expected, rtol in zip(got, reference(name, a64, b64, g64), (2e-6, 2e-6, 1e-5),
                                     strict=True):
        np.testing.assert_allclose(value.double().numpy(), expected, rtol=rtol, atol=1e-6)
    tail = torch.tensor([-10.0, -7.0, -5.0, -3.0]).repeat_interleave(64)  # the vector loop too
    ones = torch.ones_like(tail)
    y, da, db = run(actbench.activation(name, impl="fast", gate_first=gate_first),
                    ones, tail, ones, gate_first)
    expected_y, _, expected_db = reference(name, 1.0, tail.double().numpy(), 1.0)
    np.testing.assert_allclose(y.double().numpy(), expected_y, rtol=1e-5)
    np.testing.assert_allclose(db.double().numpy(), expected_db, rtol=1e-5)
    _assert_compiled()


def test_compiled_route_matches_the_formula_in_both_orders():
    x = torch.randn(4, 10)
    for first in (0, 1):
        formula = actbench.activation("swiglu", impl="formula", gate_first=first)
        compiled = actbench.activation("swiglu", impl="compiled", gate_first=first)
        xs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ys = formula(xs[0]), compiled(xs[1])
        torch.testing.assert_close(ys[1], ys[0], rtol=1e-5, atol=1e-6)
        grads = [torch.autograd.grad(y.sum(), t)[0] for y, t in zip(ys, xs)]
        torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-6)

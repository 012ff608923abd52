"""The `fast` implementations: float64 references, extremes, what they save, parameter gradients,
training, and the compiled kernels themselves.

Most tests run the kernels' formulas uncompiled (`eager_kernels`): the same math, without seconds of
compilation per kernel and dtype. The compiled kernels are exercised on a few members in float32.
"""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actbench
from actbench.errors import ActbenchWarning
from actbench.zoo import fast
from actbench.zoo.registry import lookup

from .float64_references import reference
from .test_acon_and_memory import saved_storages
from .test_numerics import GRID, _own_fast_kernel, away_from_kinks, build, evaluate

FAST = [n for n in actbench.activations() if "fast" in actbench.implementations(n)]
# where PyTorch's op is already one fused kernel each way, `fast` is that op (tested as `native`)
NATIVE_FAST = [n for n in FAST if not _own_fast_kernel(n)]
KERNELS = [n for n in FAST if n not in NATIVE_FAST]
POINTWISE_FAST = [n for n in KERNELS if lookup(n).pointwise]


def test_every_smooth_activation_with_a_memeff_has_a_fast_one():
    memeff = {n for n in actbench.activations() if "memeff" in actbench.implementations(n)}
    assert memeff <= set(FAST)
    assert {"softplus", "hard_mish", "hardswish"} <= set(FAST)
    assert set(NATIVE_FAST) == {"silu", "gelu", "softplus", "hardswish"}


@pytest.mark.parametrize("name", POINTWISE_FAST)
def test_float64_values_and_slopes_match_the_reference(name, eager_kernels):
    y, dy = evaluate(build(name, "fast"), name, torch.tensor(GRID, dtype=torch.float64))
    ref_y, ref_dy = reference(name, GRID)
    np.testing.assert_allclose(y.numpy(), ref_y, rtol=1e-9, atol=1e-12)
    keep = away_from_kinks(name, GRID)
    np.testing.assert_allclose(dy.numpy()[keep], ref_dy[keep], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", POINTWISE_FAST)
def test_float32_values_and_slopes_match_the_reference(name, eager_kernels):
    y, dy = evaluate(build(name, "fast", torch.float32), name, torch.tensor(GRID, dtype=torch.float32))
    grid32 = GRID.astype(np.float32).astype(np.float64)
    ref_y, ref_dy = reference(name, grid32)
    np.testing.assert_allclose(y.double().numpy(), ref_y, rtol=2e-6, atol=2e-7)
    keep = away_from_kinks(name, grid32)
    np.testing.assert_allclose(dy.double().numpy()[keep], ref_dy[keep], rtol=1e-5, atol=1e-6)


FAR = torch.tensor([-1e30, -1e4, -1e3, -100.0, -88.0, -45.0, 45.0, 88.0, 100.0, 1e3, 1e4, 1e30])


@pytest.mark.parametrize("name", POINTWISE_FAST)
def test_far_tails_match_the_float64_formula(name, eager_kernels):
    """Beyond the references' grid, where the one-exp forms overflow and the tails take over."""
    expected_y, expected_dy = evaluate(build(name, "formula"), name, FAR.double())
    y, dy = evaluate(build(name, "fast", torch.float32), name, FAR)
    for got, expected in ((y, expected_y), (dy, expected_dy)):
        # beyond float32's range (relu2's x^2 at 1e30) the true value is an infinity of its sign
        expected = torch.where(expected.abs() > torch.finfo(torch.float32).max,
                               expected.sign() * torch.inf, expected)
        torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", [n for n in POINTWISE_FAST if not lookup(n).trainable])
def test_half_precision_rounds_the_float32_result(name, dtype, eager_kernels):
    """Half inputs are computed in float32: the result is the float32 one, rounded once."""
    x = torch.linspace(-8, 8, 1601).to(dtype)
    y, dy = evaluate(build(name, "fast", dtype), name, x)
    y32, dy32 = evaluate(build(name, "fast", torch.float32), name, x.float())
    torch.testing.assert_close(y, y32.to(dtype), rtol=0, atol=0)
    torch.testing.assert_close(dy, dy32.to(dtype), rtol=0, atol=0)


@pytest.mark.parametrize("name", [n for n in POINTWISE_FAST if not lookup(n).trainable])
def test_saves_only_the_input(name, eager_kernels):
    x = torch.randn(64, 32, requires_grad=True)
    saved = saved_storages(actbench.activation(name, impl="fast"), x)
    assert saved == {x.untyped_storage().data_ptr(): x.untyped_storage().nbytes()}


def _gradients(module, x, upstream):
    x = x.clone().requires_grad_(True)
    params = [p for p in module.parameters() if p.requires_grad]
    y = module(x)
    return [y, *torch.autograd.grad(y, [x, *params], upstream(y))]


LAYOUTS = {
    "(N, C)": lambda: torch.randn(6, 4),
    "(N, C, L)": lambda: torch.randn(3, 4, 7),
    "(N, C, H, W)": lambda: torch.randn(2, 4, 3, 5),
    "channels_last": lambda: torch.randn(2, 4, 3, 5).to(memory_format=torch.channels_last),
    "sliced": lambda: torch.randn(2, 8, 3, 5)[:, ::2],
}
UPSTREAM = {"dense": lambda y: torch.randn_like(y),
            "expanded": lambda y: torch.ones((), dtype=y.dtype).expand_as(y)}


@pytest.mark.parametrize("upstream", UPSTREAM)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", ["swish", "star_relu", "acon_a", "acon_b", "acon_c", "meta_acon",
                                  "mish", "relu2"])
def test_every_layout_and_parameter_gradient_matches_the_formula(name, layout, upstream, eager_kernels):
    torch.manual_seed(0)
    x = LAYOUTS[layout]().double()
    formula = actbench.activation(name, impl="formula", channels=4, seed=0).double()
    with torch.no_grad():  # parameters away from their initial values (beta = 1)
        for p in formula.parameters():
            p.add_(0.3 * torch.randn_like(p))
    module = actbench.activation(name, impl="fast", channels=4).double()
    module.load_state_dict(formula.state_dict())
    torch.manual_seed(1)
    expected = _gradients(formula, x, UPSTREAM[upstream])
    torch.manual_seed(1)
    got = _gradients(module, x, UPSTREAM[upstream])
    assert got[0].stride() == expected[0].stride()
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_parameters_get_no_gradient_they_do_not_need(eager_kernels):
    module = actbench.activation("acon_b", impl="fast", channels=4, seed=0)
    x = torch.randn(2, 4, 5, requires_grad=True)
    module(x).sum().backward()
    assert module.p2.grad is not None and module.beta.grad is not None
    assert module.p1.grad is None  # a buffer (fixed to 1)


def _trained_loss(model, steps=1):
    torch.manual_seed(3)
    x, target = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(steps + 1):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
    return loss.item(), [p.detach().clone() for p in model.parameters()]


def _small_cnn(act):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), act(),
                         nn.Conv2d(8, 16, 3, padding=1), act(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def test_compiled_mish_trains_like_the_native_one():
    """A training step through the compiled kernels: the loss and weights of nn.Mish, to round-off."""
    native_loss, native_weights = _trained_loss(_small_cnn(nn.Mish))
    model = _small_cnn(nn.ReLU)
    assert actbench.replace_activations(model, "mish", impl="fast") == 2
    loss, weights = _trained_loss(model)
    assert loss == pytest.approx(native_loss, rel=1e-5)
    for w, expected in zip(weights, native_weights):
        torch.testing.assert_close(w, expected, rtol=1e-4, atol=1e-5)
    _assert_compiled()


@pytest.mark.parametrize("name", ["acon_c", "meta_acon"])
def test_channelwise_fast_trains_like_the_formula(name, eager_kernels):
    losses, weights = [], []
    for impl in ("formula", "fast"):
        model = _small_cnn(nn.ReLU)
        actbench.replace_activations(model, name, impl=impl, seed=0)
        loss, params = _trained_loss(model)
        losses.append(loss)
        weights.append(params)
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    for w, expected in zip(*weights):
        torch.testing.assert_close(w, expected, rtol=1e-4, atol=1e-5)


def test_compiled_mish_agrees_with_the_float64_formula_on_several_sizes_and_bfloat16():
    for dtype, size in ((torch.float32, 1000), (torch.float32, 4096), (torch.bfloat16, 512)):
        x = torch.linspace(-30, 30, size).to(dtype)
        y, dy = evaluate(build("mish", "fast", dtype), "mish", x)
        y64, dy64 = evaluate(build("mish", "formula"), "mish", x.double())
        tolerance = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 1e-2}
        torch.testing.assert_close(y.double(), y64, **tolerance)
        torch.testing.assert_close(dy.double(), dy64, **tolerance)
    _assert_compiled()


def test_compiled_acon_reduces_parameter_gradients_like_the_float64_formula():
    formula = actbench.activation("acon_c", impl="formula", channels=3, seed=0).double()
    module = actbench.activation("acon_c", impl="fast", channels=3)
    module.load_state_dict(formula.state_dict())
    generator = torch.Generator().manual_seed(2)
    x = 5 * torch.randn(4, 3, 50, generator=generator)
    g = torch.rand(4, 3, 50, generator=generator)  # positive: the parameters' sums do not cancel
    got = _gradients(module, x, lambda y: g)
    expected = _gradients(formula, x.double(), lambda y: g.double())
    for value, reference_value in zip(got, expected, strict=True):
        torch.testing.assert_close(value.double(), reference_value, rtol=1e-5, atol=1e-6)
    _assert_compiled()


def _assert_compiled():
    for compiled in fast.kernels():  # compiled, unless this machine has no C compiler
        assert compiled.fallback_reason is None or "compiler" in compiled.fallback_reason


def test_one_compilation_per_dtype_and_layout_serves_every_size(monkeypatch, eager_kernels):
    compiled = []

    def counting_compile(fn, examples):
        compiled.append((getattr(fn, "__name__", "acon_backward"), [tuple(t.shape) for t in examples]))
        return fn

    monkeypatch.setattr(fast, "compile_pointwise", counting_compile)
    for shape in [(1000,), (64, 64), (2, 8, 5, 5), (2, 8, 5, 5)]:
        x = torch.randn(*shape, requires_grad=True)
        fast.mish_fast(x).sum().backward()
    x = torch.randn(2, 8, 5, 5).to(memory_format=torch.channels_last).requires_grad_(True)
    fast.mish_fast(x).sum().backward()
    assert [name for name, _ in compiled] == ["mish_forward", "mish_backward"]
    fast.mish_fast(torch.randn(10, dtype=torch.float64))
    assert [name for name, _ in compiled][-1] == "mish_forward"  # a new dtype: a new kernel
    acon = actbench.activation("acon_c", impl="fast", channels=8)
    for shape in [(8, 8, 10), (3, 8, 6, 6)]:
        acon(torch.randn(*shape)).sum().backward()
    # traced on (N, C, L) with N grown until the hints hold HINT_NUMEL elements (below some
    # thousands inductor writes no parallel loop), then reused
    n = 8 * -(-fast.HINT_NUMEL // (8 * 8 * 10))
    assert compiled[-2:] == [("acon_forward", [(n, 8, 10), (1, 8, 1), (1, 8, 1), (1, 8, 1)]),
                             ("acon_backward", [(n, 8, 10)] * 2 + [(1, 8, 1)] * 3)]


def test_tracing_sizes_stay_distinct_where_the_input_is_large_already():
    """N = C would tie their symbols: the kernel would then accept only N = C."""
    big = torch.empty(2048, 2048)
    assert [tuple(t.shape) for t in fast._examples((big, torch.empty(1, 2048)))] == \
        [(2048, 2049), (1, 2049)]


def test_a_failed_compilation_falls_back_to_the_same_formulas_with_one_warning(monkeypatch):
    def broken_compile(fn, examples):
        raise RuntimeError("no C compiler found")

    monkeypatch.setattr(fast, "compile_pointwise", broken_compile)
    monkeypatch.setattr(fast, "_KERNELS", [])
    forward = fast.kernel(fast.mish_forward, "mish forward")
    backward = fast.kernel(fast.mish_backward, "mish backward")
    x = torch.linspace(-30, 30, 61)
    with pytest.warns(ActbenchWarning, match="cannot be compiled here"):
        y = forward(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        forward(x.double())  # another signature, another kernel: no second warning
        dy = backward(x, torch.ones_like(x))
    torch.testing.assert_close(y, F.mish(x))
    xg = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(F.mish(xg), xg, torch.ones_like(x))
    torch.testing.assert_close(dy, expected)
    assert "no C compiler found" in forward.fallback_reason and backward.fallback_reason


def test_integer_input_is_refused_like_the_native_op():
    with pytest.raises(TypeError, match="floating-point"):
        actbench.activation("mish", impl="fast")(torch.arange(5))


def test_kernels_are_specialised_on_thread_count_and_index_width():
    from actbench.zoo.fast import PointwiseKernel

    x = torch.ones(8)
    before = PointwiseKernel.cache_key((x,))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        assert PointwiseKernel.cache_key((x,)) != before  # a one-thread kernel has no parallel loop
    finally:
        torch.set_num_threads(threads)
    assert PointwiseKernel.cache_key((x,)) == before


def test_concurrent_first_calls_compile_once_without_falling_back():
    import threading

    from actbench.zoo.fast import PointwiseKernel, hard_mish_forward

    probe = PointwiseKernel(hard_mish_forward, "hard_mish forward (threads)")
    x = torch.linspace(-4, 4, 64)
    results, errors = [], []

    def call():
        try:
            results.append(probe(x))
        except Exception as error:  # noqa: BLE001 - a failure in a thread must reach the test
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and probe.fallback_reason is None and len(probe._compiled) == 1
    for result in results:
        torch.testing.assert_close(result, hard_mish_forward(x))

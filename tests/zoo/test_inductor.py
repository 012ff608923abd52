"""The private torch APIs behind `fast`: the version check, the fall-back, and that they stay in
one module."""

import ast
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import actbench
from actbench.errors import ActbenchWarning
from actbench.zoo import fast, inductor
from actbench.zoo.inductor import InductorUnavailable

PACKAGE = Path(actbench.__file__).parent
PRIVATE_HOME = PACKAGE / "zoo" / "inductor.py"


@pytest.mark.parametrize("text", ["2.4.0", "2.11.0+cu128", "2.13.0+cpu", "2.9.0a0+git1234abc",
                                  "2.12.0.dev20260101"])
def test_known_versions_pass_the_check(text):
    inductor.check_version(text)


@pytest.mark.parametrize("text", ["2.3.1", "1.13.1", "3.0.0", "nightly", ""])
def test_versions_outside_the_known_range_are_refused(text):
    with pytest.raises(InductorUnavailable, match="outside the versions"):
        inductor.check_version(text)


def test_version_strings_parse_to_major_and_minor():
    assert inductor.torch_version("2.13.0+cpu") == (2, 13)
    assert inductor.torch_version("2.4.0a0+gitabc") == (2, 4)
    assert inductor.torch_version("garbage") is None


def _fresh_mish_kernels(monkeypatch):
    monkeypatch.setattr(fast, "_KERNELS", [])
    return fast.kernel(fast.mish_forward, "mish forward"), fast.kernel(fast.mish_backward, "mish backward")


@pytest.mark.parametrize("fake", ["2.3.1", "3.1.0"])
def test_a_torch_outside_the_known_versions_runs_the_formulas_after_one_warning(monkeypatch, fake):
    monkeypatch.setattr(torch, "__version__", fake)
    forward, backward = _fresh_mish_kernels(monkeypatch)
    x = torch.linspace(-30, 30, 61)
    with pytest.warns(ActbenchWarning, match=f"torch {fake} is outside the versions"):
        y = forward(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dy = backward(x, torch.ones_like(x))  # the same fall-back, no second warning
    torch.testing.assert_close(y, F.mish(x))
    xg = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(F.mish(xg), xg, torch.ones_like(x))
    torch.testing.assert_close(dy, expected)
    assert "InductorUnavailable" in forward.fallback_reason and backward.fallback_reason


def test_a_missing_private_api_runs_the_formulas_after_one_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch._inductor", None)  # importing it now fails
    with pytest.raises(InductorUnavailable, match="lacks an API"):
        inductor.compile_pointwise(fast.hard_mish_forward, [torch.ones(4)])
    forward, _ = _fresh_mish_kernels(monkeypatch)
    x = torch.linspace(-3, 3, 7)
    with pytest.warns(ActbenchWarning, match="lacks an API"):
        torch.testing.assert_close(forward(x), F.mish(x))


def _private_torch_uses(tree: ast.AST) -> list[str]:
    """torch._x / torch.fx.experimental in imports, attribute chains and import-path strings."""

    def private(dotted: str) -> bool:
        parts = dotted.split(".")
        return parts[0] == "torch" and any(
            (p.startswith("_") and not p.startswith("__")) or p == "experimental" for p in parts[1:])

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if private(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [f"{node.module}.{alias.name}" for alias in node.names
                      if private(f"{node.module}.{alias.name}")]
        elif isinstance(node, ast.Attribute):
            parts, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and private(".".join([value.id, *reversed(parts)])):
                found.append(".".join([value.id, *reversed(parts)]))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and private(node.value):
            found.append(node.value)
    return found


def test_the_scan_finds_private_torch_uses():
    source = ("import torch._dynamo\nfrom torch._inductor import config\nfrom torch import _C\n"
              "torch._foo.bar()\nimportlib.import_module('torch.fx.experimental.proxy_tensor')\n"
              "print(torch.__version__, torch.compile)\n")
    assert sorted(_private_torch_uses(ast.parse(source))) == sorted([
        "torch._dynamo", "torch._inductor.config", "torch._C", "torch._foo.bar", "torch._foo",
        "torch.fx.experimental.proxy_tensor"])


def test_only_the_inductor_module_uses_private_torch_apis():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != PRIVATE_HOME:
            uses = _private_torch_uses(ast.parse(path.read_text(encoding="utf-8")))
            if uses:
                offenders[str(path.relative_to(PACKAGE))] = uses
    assert offenders == {}
    assert _private_torch_uses(ast.parse(PRIVATE_HOME.read_text(encoding="utf-8")))


def _compiled(label: str, tensors: tuple) -> object:
    found = next(k for k in fast.kernels() if k.label == label)
    return found._compiled[found.cache_key(tensors)]


# torch._inductor.output_code, whose CompiledFxGraph the direct route finds, exists from torch 2.6;
# on older ones the route may stay hidden and the wrapped callable runs (slower, the same values)
DIRECT_ROUTE_EXPECTED = inductor.torch_version(torch.__version__) >= (2, 6)


def _direct_or_skip(compiled: object) -> "inductor.DirectKernel":
    if not isinstance(compiled, inductor.DirectKernel):
        assert not DIRECT_ROUTE_EXPECTED, "the compiled graph was not found under the wrappers"
        pytest.skip(f"torch {torch.__version__} hides inductor's compiled graph")
    return compiled


def test_the_kernels_call_inductors_generated_code_and_agree_with_its_wrappers():
    x = torch.linspace(-30, 30, 4097)
    y = fast.mish_fast(x)
    direct = _direct_or_skip(_compiled("mish forward", (x,)))
    assert "#include" in direct.source_code
    expected = direct.wrapped(x)
    assert torch.equal(y, expected) and torch.equal(direct(x), expected)


@pytest.mark.parametrize("layout", ["offset", "strided", "2-d", "one element"])
def test_inputs_the_direct_route_sees_without_views_give_the_native_values(layout):
    """A 1-D input reaches the generated code as it is: one with a storage offset or a stride,
    copied or not, still gives F.mish, and so does an N-D one returned through view_as."""
    base = torch.linspace(-12, 12, 8193)
    x = {"offset": base[1:], "strided": base[::3], "2-d": base[1:].view(64, 128),
         "one element": base[5:6]}[layout]
    xg = x.clone().requires_grad_(True)
    y = fast.mish_fast(xg)
    (dy,) = torch.autograd.grad(y, xg, torch.ones_like(y))
    xr = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(F.mish(xr), xr, torch.ones_like(xr))
    torch.testing.assert_close(y, F.mish(x), rtol=2e-6, atol=1e-7)
    torch.testing.assert_close(dy, expected, rtol=2e-6, atol=1e-7)
    assert y.shape == x.shape


def test_a_kernel_with_several_outputs_and_absent_gradients_keeps_its_structure():
    x, grad = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    p1, p2, beta = (torch.randn(1, 4, 1) for _ in range(3))
    backward = fast._acon_backward_kernel(True, False, True)  # no gradient for p2
    flat = fast._canonical(x, (p1, p2, beta))
    tensors = (flat.x, flat.like_x(grad), *flat.params)
    got = backward(*tensors)
    direct = _direct_or_skip(backward._compiled[backward.cache_key(tensors)])
    expected = direct.wrapped(*tensors)
    assert isinstance(got, tuple) and len(got) == len(expected) == 4  # as acon_backward returns
    assert got[2] is None and expected[2] is None
    for mine, theirs in zip(got, expected):
        assert mine is None or torch.equal(mine, theirs)


# traced at fast.HINT_NUMEL elements, as fast's own kernels are: inductor's on-disk cache keys the
# symbolic graph without the tracing sizes, so a kernel traced small would be handed on to them
_TRACED = torch.empty(fast.HINT_NUMEL)


def test_a_direct_route_that_fails_its_first_call_keeps_the_compiled_kernel(monkeypatch):
    """A torch whose generated code is called differently: the wrapped kernel runs, compiled,
    with no fall-back to the formulas and no warning."""
    x = torch.linspace(-3, 3, 64)
    direct = _direct_or_skip(inductor.compile_pointwise(fast.mish_forward, [_TRACED]))

    class Changed:
        def current_callable(self, args):
            raise TypeError("called differently on this torch")

    monkeypatch.setattr(direct, "graph", Changed())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = inductor.first_call(direct, (x,))
    assert kept is direct.wrapped
    torch.testing.assert_close(kept(x), F.mish(x), rtol=2e-6, atol=1e-7)


def test_a_direct_route_whose_outputs_differ_from_the_wrappers_is_not_kept(monkeypatch):
    x = torch.linspace(-3, 3, 64)
    direct = _direct_or_skip(inductor.compile_pointwise(fast.mish_forward, [_TRACED]))
    real = direct.graph.current_callable

    class Extra:
        def current_callable(self, args):
            return [*real(args), torch.zeros(1)]  # one output more than the graph has

    monkeypatch.setattr(direct, "leaf", False)
    monkeypatch.setattr(direct, "graph", Extra())
    assert inductor.first_call(direct, (x,)) is direct.wrapped


def test_an_output_that_is_an_input_keeps_the_wrappers():
    def passes_x_on(x):
        return x, torch.exp(x)

    compiled = inductor.compile_pointwise(passes_x_on, [torch.randn(64)])
    assert not isinstance(compiled, inductor.DirectKernel)
    x = torch.randn(64)
    first, second = compiled(x)
    assert torch.equal(first, x) and torch.allclose(second, torch.exp(x))


def test_under_torch_compile_the_wrapped_callable_runs(monkeypatch):
    x = torch.linspace(-5, 5, 64, requires_grad=True)
    fast.mish_fast(x.detach())
    direct = _direct_or_skip(_compiled("mish forward", (x.detach(),)))

    class Unreachable:
        def current_callable(self, args):
            raise AssertionError("the generated code was called under TorchDynamo")

    monkeypatch.setattr(direct, "graph", Unreachable())
    compiled = torch.compile(lambda t: fast.mish_fast(t) * 2.0, backend="eager")
    with pytest.raises(AssertionError, match="under TorchDynamo"):
        fast.mish_fast(x.detach())  # outside torch.compile the generated code is called
    y = compiled(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    xr = x.detach().requires_grad_(True)
    (expected,) = torch.autograd.grad((F.mish(xr) * 2.0).sum(), xr)
    torch.testing.assert_close(y, F.mish(x.detach()) * 2.0)
    torch.testing.assert_close(dy, expected)


def test_a_callable_without_inductors_compiled_graph_is_returned_as_it_is():
    def plain(t):
        return t * 2

    assert inductor._direct(plain, None) is plain

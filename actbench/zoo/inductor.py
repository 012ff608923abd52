"""The one place actbench touches torch's private APIs: `fast`'s tracing and inductor compilation.

`make_fx` (torch.fx.experimental) and `torch._inductor` are not public: they may change in any
release. They are used here only on the torch versions where they are known to behave as used;
elsewhere, or where an import fails, `compile_pointwise` raises `InductorUnavailable` and its
callers run the uncompiled formulas after one warning, as they do when a compiler is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

Tensor = torch.Tensor

# make_fx(tracing_mode="symbolic") with placeholder meta["val"], and torch._inductor.compile(graph,
# inputs, options=...) returning a callable of the inputs, behave as used here from torch 2.4 (the
# oldest torch actbench supports) through 2.13; a new major release is not assumed to keep them.
KNOWN_FROM = (2, 4)
KNOWN_BEFORE = (3, 0)

# Inductor writes an intermediate to memory when several reductions read it and it costs more than
# 30 operations; ACON's backward then made three passes over its input. Recomputing it in one loop
# that also sums the parameters' gradients measured 20 % faster.
FUSE_ALL = {"realize_opcount_threshold": 10**6, "realize_reads_threshold": 10**6}


class InductorUnavailable(RuntimeError):
    """This torch's private compilation APIs are not known to work as `fast` uses them."""


def torch_version(text: str) -> tuple[int, int] | None:
    """(major, minor) of a version string such as '2.13.0+cpu' or '2.4.0a0+git1234'."""
    match = re.match(r"(\d+)\.(\d+)", str(text))
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_version(text: str) -> None:
    """Raise `InductorUnavailable` unless torch `text` is within the known range."""
    version = torch_version(text)
    if version is None or not KNOWN_FROM <= version < KNOWN_BEFORE:
        known = f"{KNOWN_FROM[0]}.{KNOWN_FROM[1]} to before {KNOWN_BEFORE[0]}.{KNOWN_BEFORE[1]}"
        raise InductorUnavailable(f"torch {text} is outside the versions whose inductor API the "
                                  f"fast kernels are known to work with ({known})")


class DirectKernel:
    """inductor's generated code called by itself, bypassing AOTAutograd's runtime wrappers.

    Those wrappers (grad mode, dynamic-dim marks, profiler and metrics hooks, the output's pytree)
    cost about 3 us of a 4 us call, which is 2-3 % of a 2^20-element call on two threads. The
    graphs here are pure pointwise functions: no input is mutated and no output is an input, so
    the generated code alone computes the same; `checked` confirms it on the first call. Under
    TorchDynamo the wrapped callable runs, as torch.compile expects; `source_code` is the
    generated module's text.
    """

    def __init__(self, wrapped: Callable[..., object], graph: object, spec: object, leaf: bool):
        from torch.utils import _pytree

        self.wrapped = wrapped
        self.graph = graph  # inductor's CompiledFxGraph; its current_callable realigns inputs
        self.spec = spec
        self.leaf = leaf
        self.source_code = getattr(graph, "source_code", None)
        self._unflatten = _pytree.tree_unflatten  # bound once: __call__ is the hot path

    def __call__(self, *tensors: Tensor) -> object:
        if torch.compiler.is_compiling():
            return self.wrapped(*tensors)
        outputs = self.graph.current_callable(list(tensors))
        return outputs[0] if self.leaf else self._unflatten(list(outputs), self.spec)

    def checked(self, tensors: tuple[Tensor, ...]) -> Callable[..., object]:
        """Itself where its first call gives what the wrapped callable gives (the same outputs,
        shapes and dtypes, None in the same places), else the wrapped callable: a torch whose
        internals differ keeps the compiled kernel, only slower."""
        from torch.utils import _pytree

        expected = _pytree.tree_leaves(self.wrapped(*tensors), is_leaf=lambda x: x is None)
        try:
            got = _pytree.tree_leaves(self(*tensors), is_leaf=lambda x: x is None)
        except Exception:  # any failure of the direct route: the wrappers' route instead
            return self.wrapped
        same = len(got) == len(expected) and all(
            (a is None and b is None) or (isinstance(a, Tensor) and isinstance(b, Tensor)
                                          and a.shape == b.shape and a.dtype == b.dtype)
            for a, b in zip(got, expected))
        return self if same else self.wrapped


def _compiled_graph_class() -> type | None:
    """inductor's CompiledFxGraph: in torch._inductor.output_code from torch 2.6, in codecache before."""
    for module in ("torch._inductor.output_code", "torch._inductor.codecache"):
        try:
            found = getattr(__import__(module, fromlist=["CompiledFxGraph"]), "CompiledFxGraph", None)
        except ImportError:
            continue
        if isinstance(found, type):
            return found
    return None


def _direct(wrapped: Callable[..., object], result: object) -> Callable[..., object]:
    """A `DirectKernel` where inductor's compiled graph is found under the wrappers, else `wrapped`.

    `result` is the traced graph's output as it was before compilation made it a flat tuple."""
    from torch.utils import _pytree

    graph_class = _compiled_graph_class()
    if graph_class is None:
        return wrapped
    graph, depth = wrapped, 0
    while not isinstance(graph, graph_class) and depth < 8:
        graph, depth = getattr(graph, "__wrapped__", None), depth + 1
    if not isinstance(graph, graph_class) or not callable(getattr(graph, "current_callable", None)):
        return wrapped
    leaves, spec = _pytree.tree_flatten(result)
    if not all(leaf is None or (isinstance(leaf, torch.fx.Node) and leaf.op != "placeholder")
               for leaf in leaves):
        return wrapped  # a constant or an input among the outputs: the wrappers supply those
    return DirectKernel(wrapped, graph, spec, leaf=isinstance(result, torch.fx.Node))


def first_call(compiled: Callable[..., object], tensors: tuple[Tensor, ...]) -> Callable[..., object]:
    """What to keep calling after a first call on `tensors`, which loads the kernel (a failure
    there raises): a `DirectKernel` checked against its wrappers, or `compiled` itself."""
    if isinstance(compiled, DirectKernel):
        return compiled.checked(tensors)
    compiled(*tensors)
    return compiled


def compile_pointwise(fn: Callable[..., object], examples: list[Tensor]) -> Callable[..., object]:
    """fn traced with symbolic sizes and compiled by inductor: one kernel for every size.

    Calling inductor on the traced graph directly, without TorchDynamo in front of it, saves the
    frame evaluation and guard checks torch.compile pays on every call (20-130 us on a 2-core CPU
    at 2^10 to 2^20 elements, docs/performance.md). What those guards would check (dtype, device,
    layout) is the caller's cache key instead (`fast.PointwiseKernel`). Compilation goes through
    the public entry point, whose FX graph cache spares later processes the compilation (3-4 s a
    kernel; inductor's inner compiler called alone skipped it); the call then goes to the
    generated code by itself, bypassing AOTAutograd's wrappers (`DirectKernel`).
    """
    check_version(torch.__version__)
    try:
        from torch._inductor import compile as inductor_compile
        from torch._inductor import config as inductor_config
        from torch.fx.experimental.proxy_tensor import make_fx
    except ImportError as error:
        raise InductorUnavailable(f"torch {torch.__version__} lacks an API the fast kernels use "
                                  f"({error})") from error
    options = {key: value for key, value in FUSE_ALL.items() if hasattr(inductor_config, key)}
    if examples and examples[0].device.type == "cpu" and hasattr(inductor_config.cpp, "threads"):
        # in the options, so in inductor's cache key: a kernel compiled for one count (or, before
        # fast.HINT_NUMEL, on small tracing sizes) without a parallel loop is never reused for another
        options["cpp.threads"] = torch.get_num_threads()
    graph = make_fx(fn, tracing_mode="symbolic")(*examples)
    inputs = [node.meta["val"] for node in graph.graph.nodes if node.op == "placeholder"]
    (result,) = next(node for node in graph.graph.nodes if node.op == "output").args
    return _direct(inductor_compile(graph, inputs, options=options), result)

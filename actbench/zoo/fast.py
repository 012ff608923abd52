"""Fast implementations: each smooth activation as one fused forward and one fused backward kernel.

A ``torch.autograd.Function`` per activation saves only its input (and tiny parameters) and calls two
pure pointwise functions, ``forward(x, ...)`` and ``backward(x, grad, ...)``. Each is traced with
symbolic sizes and compiled by inductor (vectorised C++ with OpenMP on CPU, Triton on CUDA) on first
use, once per dtype, device and layout, and shared by every module in the process; inductor's own
cache keeps the compiled code across processes. Tracing and inductor are private torch APIs, reached
only through :mod:`actbench.zoo.inductor`. Where compilation fails, or that module does not know
this torch version, the same formulas run uncompiled, after one ``ActbenchWarning``.

The formulas are simplified by hand to the fewest transcendental functions (one ``exp`` where the
math allows; docs/activations.md derives them). Where an intermediate overflows, the tail is chosen
with ``torch.where`` from a point on which the result is already exact in float64, so no ``inf * 0``
reaches a value or a gradient. Half-precision inputs are computed in float32 inside the kernel.

Inductor's CPU code shaped some choices (measured, docs/performance.md): a clamp or select feeding
``exp`` made kernels up to 2x slower than selecting the tail afterwards; SLEEF's ``tanh`` costs about
5x an ``exp``, so float32 kernels use Cephes' tanh (one ``exp``, relative error ~1e-7; float64 keeps
torch's); the kernels are latency-bound, so polynomials are evaluated by Estrin's scheme; float32
``erf`` is a polynomial with an absolute error near 1e-7 and ``expm1`` is ``exp(x) - 1``, which lose
the relative accuracy of small results, so small arguments take a series instead.

Where PyTorch's own op already is one fused kernel each way that saves only x (silu, gelu, softplus,
hardswish), it measured as fast as a compiled kernel or faster, and ``fast`` is that op.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ..errors import ActbenchWarning
from .functional import (ERF_SERIES, ERF_SERIES_BELOW, GELU_TANH_CLAMP, GELU_TANH_COEF, QUICK_GELU_BETA,
                         SQRT_2_OVER_PI, TANHEXP_CLAMP, TWO_OVER_SQRT_PI, _opmath, channel_view,
                         saving_only_input)
from .inductor import compile_pointwise, first_call

Tensor = torch.Tensor

# Beyond these inputs the activation is x (and its slope 1) to float64 precision, so the tail is
# selected there; the formulas' intermediates may overflow only beyond them.
MISH_LINEAR_FROM = 20.0  # tanh(softplus(20)) = 1 - 2 / (e^40 + 2e^20 + 2) = 1 - 8.5e-18
# z sigmoid(z)'s slope takes z capped here, where sigmoid(z) is exactly 0 or 1 even in float64
GATE_SLOPE_CAP = 1e4
# erf(z) = z * sum_n ERF_SERIES[n] z^(2n) for 0 <= z < ERF_SERIES_BELOW (functional.py); above it
# Abramowitz & Stegun 7.1.26, erf(z) = 1 - t A(t) exp(-z^2), t = 1 / (1 + p z),
# absolute error < 1.5e-7, so relative < 3e-7 where erf > 0.5 (inductor's own float32 erf is the same
# polynomial; written out here so its exp(-z^2) is shared with serf's slope)
ERF_AS_P = 0.3275911
ERF_AS = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)  # t^0 .. t^4 of A(t)
# log1p(a) = 2 atanh(v), v = a / (2 + a): for 0 <= a <= 1, v <= 1/3 and the series
# atanh(v) = sum v^(2k+1) / (2k+1) reaches float32's precision in 8 terms, float64's in 17
ATANH_SERIES = tuple(1.0 / (2 * k + 1) for k in range(17))
ATANH_TERMS_FLOAT32 = 8
# logish's slope uses e / (3 + 2e), e = exp(-x), which is 1/2 to float64 precision beyond x = -60
LOGISH_HALF_BELOW = -60.0
# Cephes' tanhf: tanh(w) = w + w^3 Q(w^2) below TANH_SERIES_BELOW, else 1 - 2 / (exp(2w) + 1);
# relative error ~1.2e-7 in float32. Q's coefficients, lowest power first
TANH_SERIES_BELOW = 0.625
TANH_CEPHES = (-3.33332819422e-1, 1.33314422036e-1, -5.37397155531e-2, 2.06390887954e-2,
               -5.70498872745e-3)


def _in_opmath(*tensors: Tensor) -> list[Tensor]:
    return [_opmath(t) for t in tensors]


def _polynomial(t: Tensor, coefficients: tuple[float, ...]) -> Tensor:
    """sum c_i t^i (coefficients lowest power first) by Estrin's scheme.

    Pairs c_2i + c_2i+1 t, then pairs of those with t^2, t^4, ...: a dependency chain of depth
    log2(n) instead of Horner's n, which the CPU kernels need (they are latency-bound, docs/performance.md).
    """
    terms: list[Tensor | float] = [coefficients[i] + coefficients[i + 1] * t if i + 1 < len(coefficients)
                                   else coefficients[i] for i in range(0, len(coefficients), 2)]
    power = t
    while len(terms) > 1:
        power = power * power
        terms = [terms[i] + terms[i + 1] * power if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0] if isinstance(terms[0], Tensor) else torch.full_like(t, terms[0])


def _gate_slope(z: Tensor, s: Tensor) -> Tensor:
    """d/dz of z sigmoid(z) = s (1 + z (1 - s)), s = sigmoid(z).

    z is capped at +-1e4, where s is exactly 0 or 1 even in float64, so a z that overflowed to
    +-inf (beta x of a huge bfloat16 x) gives the slope 1 or 0 instead of inf * 0."""
    return s * (1.0 + torch.clamp(z, -GATE_SLOPE_CAP, GATE_SLOPE_CAP) * (1.0 - s))


def _two_atanh(v: Tensor) -> Tensor:
    """2 atanh(v) for 0 <= v <= 1/3 by its series: log1p(a) for v = a / (2 + a), with no log."""
    terms = len(ATANH_SERIES) if v.dtype == torch.float64 else ATANH_TERMS_FLOAT32
    return 2.0 * v * _polynomial(v * v, ATANH_SERIES[:terms])


def _erf_nonnegative(z: Tensor, gaussian: Tensor) -> Tensor:
    """erf(z) for z >= 0 given gaussian = exp(-z^2), accurate relative to its value for every z."""
    if z.dtype == torch.float64:
        return torch.erf(z)  # SLEEF's
    t = 1.0 / (1.0 + ERF_AS_P * z)
    return torch.where(z < ERF_SERIES_BELOW, z * _polynomial(z * z, ERF_SERIES),
                       1.0 - (t * _polynomial(t, ERF_AS)) * gaussian)


def _sum_to(local: Tensor, param: Tensor) -> Tensor:
    """A parameter's gradient: `local` summed to the parameter's (canonical) shape.

    The innermost dim is summed first where the parameter is constant along it: that reduction
    fuses with the loop computing the input's gradient, where summing over the outer dims at once
    made inductor write each local term to memory and read it back."""
    if local.dim() >= 2 and param.dim() == local.dim() and param.shape[-1] == 1:
        local = local.sum(dim=-1, keepdim=True)
    return local.sum_to_size(param.shape)


def _tanh_nonnegative(w: Tensor) -> tuple[Tensor, Tensor]:
    """(tanh(w), 1 - tanh(w)^2) for w >= 0 with one exp, both accurate relative to their value.

    With p = exp(2w), r = 1 / (1 + p): tanh = 1 - 2r (Cephes' series below 0.625) and
    1 - tanh^2 = 4 p r^2, free of the cancellation in 1 - t * t as t nears 1. p overflows beyond
    w = 44: the callers select their tail before that."""
    p = torch.exp(2.0 * w)
    r = 1.0 / (1.0 + p)
    if w.dtype == torch.float64:
        t = torch.tanh(w)
    else:
        w2 = w * w
        t = torch.where(w < TANH_SERIES_BELOW, w + w * w2 * _polynomial(w2, TANH_CEPHES), 1.0 - 2.0 * r)
    return t, 4.0 * p * r * r


# --------------------------------------------------------------------------- compiled kernels
# (inductor itself, a private torch API, is reached only through `inductor.compile_pointwise`)


# Inductor sizes its loops from the tracing inputs' sizes (its hints): below some thousands of
# elements it writes no parallel loop, and the kernel, cached per thread count, then runs every
# later call, however large, on one thread. Tracing inputs are made at least this large.
HINT_NUMEL = 2**20


def _examples(tensors: tuple[Tensor, ...]) -> list[Tensor]:
    """Tracing inputs whose distinct dims have distinct sizes, and at least HINT_NUMEL elements.

    Symbolic tracing gives equal sizes one symbol and specialises sizes of 1, so a kernel traced on
    an (N, C, L) input with N = C would only accept N = C. The first tensor sets the sizes (near its
    own, which inductor uses as hints, its outermost dim grown until the hints reach HINT_NUMEL);
    the others broadcast against it (size 1) or match it.
    """
    shape = list(tensors[0].shape)
    grow = next((i for i, size in enumerate(shape) if size != 1), None)
    if grow is not None and 0 < math.prod(shape) < HINT_NUMEL:
        shape[grow] *= -(-HINT_NUMEL // math.prod(shape))
    for i, size in enumerate(shape):
        while size != 1 and size in shape[:i]:
            size += 1
        shape[i] = size
    return [t if tuple(t.shape) == tuple(shape) or t.dim() == 0 else
            torch.empty([1 if n == 1 else shape[i] for i, n in enumerate(t.shape)], dtype=t.dtype,
                        device=t.device)
            for t in tensors]


class PointwiseKernel:
    """A formula compiled on first use for each dtype, device and broadcast layout of its inputs.

    Inputs must be contiguous, their dims never 1 where the first input's is not (the layouts
    `_Canonical` makes). Where compilation fails the formula runs uncompiled, after one warning.
    """

    def __init__(self, fn: Callable[..., object], label: str):
        self.fn = fn
        self.label = label
        self.fallback_reason: str | None = None
        self._compiled: dict[tuple, Callable[..., object]] = {}

    @staticmethod
    def cache_key(tensors: tuple[Tensor, ...]) -> tuple:
        """What a compiled kernel was specialised on, beyond sizes: dtypes, devices, which dims
        broadcast; on CPU the thread count (a kernel compiled for one thread has no parallel
        loop); on GPUs whether indices need 64 bits (inductor picks 32-bit indexing from the
        first call's sizes, and calling the kernel directly skips the guard that would notice)."""
        layout = tuple((t.dtype, t.device, tuple(n == 1 for n in t.shape)) for t in tensors)
        first = tensors[0]
        scale = torch.get_num_threads() if first.device.type == "cpu" else \
            any(t.numel() >= 2**31 for t in tensors)
        return layout, scale

    def __call__(self, *tensors: Tensor) -> object:
        key = self.cache_key(tensors)
        compiled = self._compiled.get(key)
        if compiled is None:
            with _COMPILE_LOCK:  # inductor's compilation is not thread-safe
                compiled = self._compiled.get(key)
                if compiled is None:
                    compiled = self._compiled[key] = self._compile(tensors)
        return compiled(*tensors)

    def _compile(self, tensors: tuple[Tensor, ...]) -> Callable[..., object]:
        if self.fallback_reason is not None:
            return self.fn
        try:
            # the first call loads the kernel (a failure there falls back too) and checks the
            # direct route against inductor's wrappers
            return first_call(compile_pointwise(self.fn, _examples(tensors)), tensors)
        except Exception as error:  # any compiler failure: missing C compiler, unsupported platform...
            first_line = (str(error).strip().splitlines() or [""])[0][:200]
            self.fallback_reason = f"{type(error).__name__}: {first_line}"
            if not any(k.fallback_reason for k in _KERNELS if k is not self):  # one warning per process
                warnings.warn(f"the fast kernels cannot be compiled here ({self.label}: "
                              f"{self.fallback_reason}); their formulas run uncompiled instead",
                              ActbenchWarning, stacklevel=3)
            return self.fn


_KERNELS: list[PointwiseKernel] = []
_COMPILE_LOCK = threading.RLock()


def kernel(fn: Callable[..., object], label: str) -> PointwiseKernel:
    compiled = PointwiseKernel(fn, label)
    _KERNELS.append(compiled)
    return compiled


def kernels() -> list[PointwiseKernel]:
    """Every fast kernel made so far, e.g. to see which fell back (`fallback_reason`)."""
    return list(_KERNELS)


class _Canonical:
    """x and its parameters as contiguous views with the fewest dims, and the way back.

    Dims are taken in memory order (a channels-last x stays channels-last, with no copy) and
    neighbouring dims merged wherever every parameter broadcasts alike over both: a parameter-free
    x becomes 1-D, an (N, C, H, W) x with per-channel parameters (N, C, H * W). So one compiled
    kernel per pattern serves every shape. A non-dense x (a slice) is copied once.
    """

    def __init__(self, x: Tensor, params: tuple[Tensor, ...] = ()):
        self.param_shapes = [p.shape for p in params]
        self.shaped = [channel_view(p, x) for p in params]
        order = sorted(range(x.dim()), key=lambda d: -x.stride(d))
        if not x.permute(order).is_contiguous():  # not dense: work on a contiguous copy
            x, order = x.contiguous(), list(range(x.dim()))
        self.order = order
        self.inverse = sorted(range(x.dim()), key=order.__getitem__)
        self.dense = x.permute(order)
        sizes: list[int] = []
        patterns: list[tuple[bool, ...]] = []  # per merged dim: which parameters vary along it
        for d, size in enumerate(self.dense.shape):
            if size == 1:
                continue
            pattern = tuple(p.dim() > 0 and p.shape[order[d]] != 1 for p in self.shaped)
            if patterns and patterns[-1] == pattern:
                sizes[-1] *= size
            else:
                sizes.append(size)
                patterns.append(pattern)
        self.sizes = sizes
        self.x = self.dense.reshape(sizes)
        self.params = [p if p.dim() == 0 else
                       p.permute(order).reshape([n if varies[i] else 1 for n, varies in zip(sizes, patterns)])
                       .contiguous() for i, p in enumerate(self.shaped)]

    def like_x(self, t: Tensor) -> Tensor:
        """A tensor of x's shape (the upstream gradient) in the canonical view."""
        t = t.permute(self.order)
        return (t if t.is_contiguous() else t.contiguous()).view(self.sizes)

    def restore(self, y: Tensor) -> Tensor:
        """A result in the canonical view back to x's shape and memory layout."""
        return y.view(self.dense.shape).permute(self.inverse)

    def restore_param(self, grad: Tensor | None, i: int) -> Tensor | None:
        """Parameter i's gradient, reduced in the canonical view, in the parameter's own shape."""
        if grad is None or self.shaped[i].dim() == 0:
            return grad
        in_memory_order = [self.shaped[i].shape[d] for d in self.order]
        return grad.reshape(in_memory_order).permute(self.inverse).reshape(self.param_shapes[i])


class _Contiguous:
    """The common case of `_Canonical`, in a few microseconds: a contiguous x with scalar
    parameters (as 1-D), or with (C,) / (N, C, 1, ...) parameters (as (N, C, L))."""

    def __init__(self, x: Tensor, params: tuple[Tensor, ...] = ()):
        self.shape = x.shape
        self.param_shapes = [p.shape for p in params]
        if all(p.dim() == 0 for p in params):
            self.x, self.params = x.view(-1), list(params)
            return
        n, c = x.shape[0], x.shape[1]
        self.x = x.view(n, c, -1)
        self.params = [p if p.dim() == 0 else p.view(1, c, 1) if p.dim() == 1 else p.view(n, c, 1)
                       for p in params]

    def like_x(self, t: Tensor) -> Tensor:
        return (t if t.is_contiguous() else t.contiguous()).view(self.x.shape)

    def restore(self, y: Tensor) -> Tensor:
        return y.view(self.shape)

    def restore_param(self, grad: Tensor | None, i: int) -> Tensor | None:
        return None if grad is None else grad.view(self.param_shapes[i])


def _canonical(x: Tensor, params: tuple[Tensor, ...] = ()) -> _Contiguous | _Canonical:
    if x.is_contiguous() and all(
            p.dim() == 0 or (x.dim() >= 2 and p.is_contiguous() and (
                (p.dim() == 1 and p.shape[0] == x.shape[1])
                or (p.dim() == x.dim() and p.shape[:2] == x.shape[:2] and p.numel() == x.shape[0] * x.shape[1])))
            for p in params):
        return _Contiguous(x, params)
    return _Canonical(x, params)


def _check_floating(x: Tensor, name: str) -> None:
    """The kernels compute in floating point; an integer tensor would come back truncated."""
    if not x.is_floating_point():
        raise TypeError(f"{name} (fast) expects a floating-point tensor, got {x.dtype}")


def _run_elementwise(kernel: PointwiseKernel, x: Tensor, *more: Tensor) -> Tensor:
    if x.numel() == 0:
        return kernel.fn(x, *more)
    if x.is_contiguous() and all(t.is_contiguous() for t in more):  # the common case, quickly
        if x.dim() == 1:  # each view costs about 1 us, 5 % of a 2^20 call on two threads
            return kernel(x, *more)
        return kernel(x.view(-1), *(t.view(-1) for t in more)).view_as(x)
    canonical = _canonical(x)
    return canonical.restore(kernel(canonical.x, *(canonical.like_x(t) for t in more)))


def compiled_kernels(name: str, forward: Callable[[Tensor], Tensor],
                     backward: Callable[[Tensor, Tensor], Tensor]) -> tuple[staticmethod, staticmethod]:
    """`forward` and `backward` of an autograd Function that saves only x and runs the compiled
    forward / backward kernels of the two formulas."""
    forward_kernel = kernel(forward, f"{name} forward")
    backward_kernel = kernel(backward, f"{name} backward")

    def value(x):
        _check_floating(x, name)
        return _run_elementwise(forward_kernel, x)

    def gradient(x, grad):
        return _run_elementwise(backward_kernel, x, grad)

    return saving_only_input(value, gradient, differentiable_backward=False)


# --------------------------------------------------------------------------- pointwise activations
# Where PyTorch's own op already is one fused kernel each way that saves only x, it measured as fast
# as a compiled kernel or faster (docs/performance.md), so `fast` is that op.
silu_fast = F.silu
gelu_fast = F.gelu
softplus_fast = F.softplus
hardswish_fast = F.hardswish

# The others: forward(x) -> y and backward(x, grad) -> grad * f'(x), in the input's dtype, and one
# named autograd Function of the two, so models holding one pickle by reference.


def quick_gelu_forward(x: Tensor) -> Tensor:
    xf = _opmath(x)
    return (xf / (1.0 + torch.exp(-QUICK_GELU_BETA * xf))).to(x.dtype)


def quick_gelu_backward(x: Tensor, grad: Tensor) -> Tensor:
    xf, g = _in_opmath(x, grad)
    z = QUICK_GELU_BETA * xf
    s = 1.0 / (1.0 + torch.exp(-z))
    return (g * _gate_slope(z, s)).to(x.dtype)


class _QuickGeluFast(torch.autograd.Function):
    """quick_gelu: x sigmoid(1.702 x), one exp each way; saves only x."""
    forward, backward = compiled_kernels("quick_gelu", quick_gelu_forward, quick_gelu_backward)


quick_gelu_fast = _QuickGeluFast.apply


def mish_forward(x: Tensor) -> Tensor:
    """x tanh(softplus(x)) = x n / (n + 2) with e = exp(x), n = e (e + 2)."""
    xf = _opmath(x)
    e = torch.exp(xf)
    n = e * (e + 2.0)
    return torch.where(xf > MISH_LINEAR_FROM, xf, xf * (n / (n + 2.0))).to(x.dtype)


def mish_backward(x: Tensor, grad: Tensor) -> Tensor:
    """f' = t + x sigmoid(x) (1 - t^2) = (n d + 4 x e (e + 1)) / d^2, d = n + 2.

    One division and fewer products than r = 1 / d, r (n + 4 x e (e + 1) r): 2-4 % faster on a
    CPU. d^2 stays finite in float32 up to x = 20 (5.5e34), beyond which the slope is 1."""
    xf, g = _in_opmath(x, grad)
    e = torch.exp(xf)
    n = e * (e + 2.0)
    d = n + 2.0
    slope = (n * d + (xf * e) * (4.0 * e + 4.0)) / (d * d)  # x meets e (0 far left) first, not 4
    return torch.where(xf > MISH_LINEAR_FROM, g, g * slope).to(x.dtype)


class _MishFast(torch.autograd.Function):
    """mish: one exp and one division each way, x itself beyond x = 20; saves only x."""
    forward, backward = compiled_kernels("mish", mish_forward, mish_backward)


mish_fast = _MishFast.apply


def gelu_tanh_forward(x: Tensor) -> Tensor:
    """0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3)."""
    xf = _opmath(x)
    minus_2u = (-2.0 * SQRT_2_OVER_PI) * (xf + GELU_TANH_COEF * xf * xf * xf)
    return (xf / (1.0 + torch.exp(minus_2u))).to(x.dtype)


def gelu_tanh_backward(x: Tensor, grad: Tensor) -> Tensor:
    """f' = s + x s (1 - s) 2u', s = sigmoid(2u); beyond |x| = 10 it is 1 or 0 in float64."""
    xf, g = _in_opmath(x, grad)
    x2 = xf * xf
    s = 1.0 / (1.0 + torch.exp((-2.0 * SQRT_2_OVER_PI) * (xf + GELU_TANH_COEF * x2 * xf)))
    two_du = (2.0 * SQRT_2_OVER_PI) * (1.0 + 3.0 * GELU_TANH_COEF * x2)
    slope = s * (1.0 + xf * (1.0 - s) * two_du)
    tail = (xf > 0).to(xf.dtype)
    return (g * torch.where(xf.abs() > GELU_TANH_CLAMP, tail, slope)).to(x.dtype)


class _GeluTanhFast(torch.autograd.Function):
    """gelu_tanh: one exp each way, the slope 0 or 1 beyond |x| = 10; saves only x."""
    forward, backward = compiled_kernels("gelu_tanh", gelu_tanh_forward, gelu_tanh_backward)


gelu_tanh_fast = _GeluTanhFast.apply


def tanhexp_forward(x: Tensor) -> Tensor:
    xf = _opmath(x)
    t, _ = _tanh_nonnegative(torch.exp(xf))
    return torch.where(xf > TANHEXP_CLAMP, xf, xf * t).to(x.dtype)


def tanhexp_backward(x: Tensor, grad: Tensor) -> Tensor:
    """f' = t + x e (1 - t^2), e = exp(x), t = tanh(e)."""
    xf, g = _in_opmath(x, grad)
    e = torch.exp(xf)
    t, sech2 = _tanh_nonnegative(e)
    return torch.where(xf > TANHEXP_CLAMP, g, g * (t + (xf * e) * sech2)).to(x.dtype)


class _TanhexpFast(torch.autograd.Function):
    """tanhexp: two exps each way, x itself beyond x = 3; saves only x."""
    forward, backward = compiled_kernels("tanhexp", tanhexp_forward, tanhexp_backward)


tanhexp_fast = _TanhexpFast.apply


def _softplus(x: Tensor) -> tuple[Tensor, Tensor]:
    """(softplus(x), a = exp(-|x|)): max(x, 0) + log1p(a), with one exp that never overflows."""
    a = torch.exp(-x.abs())
    return torch.clamp_min(x, 0.0) + _two_atanh(a / (2.0 + a)), a


def serf_forward(x: Tensor) -> Tensor:
    """x erf(softplus(x)); exact to x in the right tail (erf = 1), 0 in the left, no overflow."""
    xf = _opmath(x)
    sp, _ = _softplus(xf)
    return (xf * _erf_nonnegative(sp, torch.exp(-sp * sp))).to(x.dtype)


def serf_backward(x: Tensor, grad: Tensor) -> Tensor:
    """f' = erf(sp) + x sigmoid(x) (2 / sqrt pi) exp(-sp^2), sp = softplus(x),
    sigmoid(x) = (1 or a) / (1 + a) for x >= 0 or < 0, a = exp(-|x|)."""
    xf, g = _in_opmath(x, grad)
    sp, a = _softplus(xf)
    gaussian = torch.exp(-sp * sp)
    sigmoid = torch.where(xf >= 0, 1.0, a) / (1.0 + a)
    slope = _erf_nonnegative(sp, gaussian) + (xf * sigmoid) * (TWO_OVER_SQRT_PI * gaussian)
    return (g * slope).to(x.dtype)


class _SerfFast(torch.autograd.Function):
    """serf: two exps each way and no tail, since its exponentials never overflow into a
    product; saves only x."""
    forward, backward = compiled_kernels("serf", serf_forward, serf_backward)


serf_fast = _SerfFast.apply


def logish_forward(x: Tensor) -> Tensor:
    """x log1p(s), s = sigmoid(x): log1p(s) = 2 atanh(u), u = s / (2 + s) = 1 / (3 + 2e), e = exp(-x)."""
    xf = _opmath(x)
    u = 1.0 / (3.0 + 2.0 * torch.exp(-xf))
    return (xf * _two_atanh(u)).to(x.dtype)


def logish_backward(x: Tensor, grad: Tensor) -> Tensor:
    """f' = log1p(s) + x s (1 - s) / (1 + s) = 2 atanh(u) + 4 x (e u) u / (1 - u^2), with
    s (1 - s) / (1 + s) = e / ((1 + e)(2 + e)) and (1 + e)(2 + e) = (1 - u^2) / (4 u^2)."""
    xf, g = _in_opmath(x, grad)
    e = torch.exp(-xf)
    u = 1.0 / (3.0 + 2.0 * e)
    eu = torch.where(xf < LOGISH_HALF_BELOW, 0.5, e * u)  # e overflows to inf first (u = 0)
    slope = _two_atanh(u) + 4.0 * ((xf * (u / (1.0 - u * u))) * eu)  # x meets u or eu (0) first
    return (g * slope).to(x.dtype)


class _LogishFast(torch.autograd.Function):
    """logish: one exp and one division each way, no log; saves only x."""
    forward, backward = compiled_kernels("logish", logish_forward, logish_backward)


logish_fast = _LogishFast.apply


def hard_mish_forward(x: Tensor) -> Tensor:
    xf = _opmath(x)
    return (xf * (torch.clamp(xf + 2.0, 0.0, 2.0) / 2.0)).to(x.dtype)


def hard_mish_backward(x: Tensor, grad: Tensor) -> Tensor:
    xf, g = _in_opmath(x, grad)
    slope = torch.where(xf < -2.0, 0.0, torch.where(xf > 0.0, 1.0, xf + 1.0))
    return (g * slope).to(x.dtype)



class _HardMishFast(torch.autograd.Function):
    """hard_mish: piecewise, in one pass each way; saves only x."""
    forward, backward = compiled_kernels("hard_mish", hard_mish_forward, hard_mish_backward)


hard_mish_fast = _HardMishFast.apply


# --------------------------------------------------------------------------- with parameters
# (no tuple return annotations: the traced graph would carry them as strings, which inductor's
# cache cannot key on)


def swish_forward(x: Tensor, beta: Tensor) -> Tensor:
    xf, bf = _in_opmath(x, beta)
    return (xf / (1.0 + torch.exp(-bf * xf))).to(x.dtype)


def swish_backward(x: Tensor, grad: Tensor, beta: Tensor):  # -> (grad_x, grad_beta)
    """d/dx = s (1 + z (1 - s)), d/dbeta = x^2 s (1 - s), z = beta x; beta's sum in the same pass."""
    xf, g, bf = _in_opmath(x, grad, beta)
    z = bf * xf
    s = 1.0 / (1.0 + torch.exp(-z))
    grad_x = g * _gate_slope(z, s)
    grad_beta = _sum_to(g * (xf * s) * (xf * (1.0 - s)), beta)
    return grad_x.to(x.dtype), grad_beta.to(beta.dtype)


def acon_forward(x: Tensor, p1: Tensor, p2: Tensor, beta: Tensor) -> Tensor:
    """(p1 - p2) x sigmoid(beta (p1 - p2) x) + p2 x."""
    xf, p1f, p2f, bf = _in_opmath(x, p1, p2, beta)
    dx = (p1f - p2f) * xf
    return (dx / (1.0 + torch.exp(-bf * dx)) + p2f * xf).to(x.dtype)


def acon_backward(x: Tensor, grad: Tensor, p1: Tensor, p2: Tensor, beta: Tensor, *, need_p1: bool,
                  need_p2: bool, need_beta: bool):  # -> (grad_x, grad_p1, grad_p2, grad_beta)
    """With d = p1 - p2, z = beta d x, s = sigmoid(z), a = s (1 + z (1 - s)):
    d/dx = d a + p2, d/dp1 = x a, d/dp2 = x (1 - a), d/dbeta = (d x)^2 s (1 - s).
    The parameters' sums over batch and positions are reduced in the same pass."""
    xf, g, p1f, p2f, bf = _in_opmath(x, grad, p1, p2, beta)
    d = p1f - p2f
    dx = d * xf
    z = bf * dx
    s = 1.0 / (1.0 + torch.exp(-z))
    a = _gate_slope(z, s)
    grad_x = (g * (d * a + p2f)).to(x.dtype)
    gx = g * xf
    grad_p1 = _sum_to(gx * a, p1).to(p1.dtype) if need_p1 else None
    grad_p2 = _sum_to(gx * (1.0 - a), p2).to(p2.dtype) if need_p2 else None
    grad_beta = (_sum_to(g * (dx * s) * (dx * (1.0 - s)), beta).to(beta.dtype)
                 if need_beta else None)
    return grad_x, grad_p1, grad_p2, grad_beta


_SWISH_FORWARD = kernel(swish_forward, "swish forward")
_SWISH_BACKWARD = kernel(swish_backward, "swish backward")
_ACON_FORWARD = kernel(acon_forward, "acon forward")
# one backward kernel per set of trainable parameters (ACON-A: beta, -B: p2 and beta, -C: all)
_ACON_BACKWARD: dict[tuple[bool, bool, bool], PointwiseKernel] = {}


def _acon_backward_kernel(need_p1: bool, need_p2: bool, need_beta: bool) -> PointwiseKernel:
    key = (need_p1, need_p2, need_beta)
    if key not in _ACON_BACKWARD:
        label = "acon backward for " + ", ".join(n for n, need in zip(("p1", "p2", "beta"), key) if need)
        _ACON_BACKWARD[key] = kernel(partial(acon_backward, need_p1=need_p1, need_p2=need_p2,
                                             need_beta=need_beta), label)
    return _ACON_BACKWARD[key]


class _SwishFast(torch.autograd.Function):
    """x * sigmoid(beta x), beta scalar or per channel: compiled kernels, saves x and beta."""

    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x, beta)
        if x.numel() == 0:
            return swish_forward(x, channel_view(beta, x))
        canonical = _canonical(x, (beta,))
        return canonical.restore(_SWISH_FORWARD(canonical.x, *canonical.params))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, beta = ctx.saved_tensors
        if x.numel() == 0:
            return torch.zeros_like(x), torch.zeros_like(beta)
        canonical = _canonical(x, (beta,))
        grad_x, grad_beta = _SWISH_BACKWARD(canonical.x, canonical.like_x(grad), *canonical.params)
        return canonical.restore(grad_x), canonical.restore_param(grad_beta, 0)


class _AconFast(torch.autograd.Function):
    """ACON-C (and so ACON-A, -B, meta-ACON): compiled kernels, saves x and the parameters."""

    @staticmethod
    def forward(ctx, x, p1, p2, beta):
        ctx.save_for_backward(x, p1, p2, beta)
        if x.numel() == 0:
            return acon_forward(x, *(channel_view(p, x) for p in (p1, p2, beta)))
        canonical = _canonical(x, (p1, p2, beta))
        return canonical.restore(_ACON_FORWARD(canonical.x, *canonical.params))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, p1, p2, beta = ctx.saved_tensors
        if x.numel() == 0:
            return torch.zeros_like(x), *(torch.zeros_like(p) for p in (p1, p2, beta))
        canonical = _canonical(x, (p1, p2, beta))
        backward = _acon_backward_kernel(*ctx.needs_input_grad[1:])
        grad_x, *grads = backward(canonical.x, canonical.like_x(grad), *canonical.params)
        return canonical.restore(grad_x), *(canonical.restore_param(g, i) for i, g in enumerate(grads))


def swish_fast(x: Tensor, beta: Tensor) -> Tensor:
    _check_floating(x, "swish")
    return _SwishFast.apply(x, beta)


def acon_fast(x: Tensor, p1: Tensor, p2: Tensor, beta: Tensor) -> Tensor:
    _check_floating(x, "acon")
    return _AconFast.apply(x, p1, p2, beta)

"""Fast implementations: each smooth activation as one fused forward and one fused backward kernel.

A ``torch.autograd.Function`` per activation saves only its input (and tiny parameters) and calls two
pure pointwise functions, ``forward(x, ...)`` and ``backward(x, grad, ...)``. Each is compiled by
``torch.compile`` on first use (inductor: vectorised C++ with OpenMP on CPU, Triton on CUDA) and shared
by every module in the process; contiguous tensors reach the kernels as 1-D (or (N, C, L)) views, so
one compiled kernel per dtype serves every shape. Where compilation fails, the same formulas run
eagerly, with one ``ActbenchWarning`` (``LazilyCompiled``).

The formulas are simplified by hand to the fewest transcendental functions (one ``exp`` where the
math allows; docs/activations.md derives them). Where an intermediate overflows, the tail is chosen
with ``torch.where`` from a point on which the result is already exact in float64, so no ``inf * 0``
reaches a value or a gradient. Half-precision inputs are computed in float32 inside the kernel.

Three facts about inductor's CPU code shaped the formulas (measured, docs/performance.md): clamping
the argument of ``exp`` made a kernel about 2.5x slower than selecting the tail with ``torch.where``
after it; ``expm1`` is lowered to ``exp(x) - 1``; and ``erf`` to a polynomial with an absolute error
near 1e-7. The last two lose the relative accuracy of small results, so these kernels avoid ``expm1``
and build ``erf`` from ``erfc`` and a short series.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch

from .functional import (GELU_TANH_CLAMP, GELU_TANH_COEF, INV_SQRT_2PI, QUICK_GELU_BETA, SQRT_2_OVER_PI,
                         SQRT_HALF, TANHEXP_CLAMP, TWO_OVER_SQRT_PI, LazilyCompiled, _opmath,
                         channel_view)

Tensor = torch.Tensor

# Beyond these inputs the activation is x (and its slope 1) to float64 precision, so the tail is
# selected there; the formulas' intermediates may overflow only beyond them.
MISH_LINEAR_FROM = 20.0  # tanh(softplus(20)) = 1 - 2 / (e^40 + 2e^20 + 2) = 1 - 8.5e-18
SERF_LINEAR_FROM = 6.0  # erf(softplus(6)) = 1 - 2e-17
SOFTPLUS_LINEAR_FROM = 40.0  # log1p(e^40) = 40 + 4.2e-18
# erf(z) = z * sum_n ERF_SERIES[n] z^(2n) for z below ERF_SERIES_BELOW (relative error < 1e-13
# there); above it 1 - erfc(z) has no cancellation (erfc(z) < 0.48).
ERF_SERIES_BELOW = 0.5
GATE_SLOPE_CAP = 1e4
ERF_SERIES = tuple(TWO_OVER_SQRT_PI * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(10))


def _in_opmath(*tensors: Tensor) -> list[Tensor]:
    return [_opmath(t) for t in tensors]


def _gate_slope(z: Tensor, s: Tensor) -> Tensor:
    """d/dz of z sigmoid(z) = s (1 + z (1 - s)), s = sigmoid(z).

    z is capped at +-1e4, where s is exactly 0 or 1 even in float64, so a z that overflowed to
    +-inf (beta x of a huge bfloat16 x) gives the slope 1 or 0 instead of inf * 0."""
    return s * (1.0 + torch.clamp(z, -GATE_SLOPE_CAP, GATE_SLOPE_CAP) * (1.0 - s))


def _erf_nonnegative(z: Tensor) -> Tensor:
    """erf(z) for z >= 0, accurate relative to its value also for tiny z (unlike inductor's erf)."""
    w = z * z
    series = torch.full_like(z, ERF_SERIES[-1])
    for coefficient in reversed(ERF_SERIES[:-1]):
        series = series * w + coefficient
    return torch.where(z < ERF_SERIES_BELOW, z * series, 1.0 - torch.erfc(z))


# --------------------------------------------------------------------------- pointwise formulas
# forward(x) -> y and backward(x, grad) -> grad * f'(x), in the input's dtype.


def silu_forward(x: Tensor) -> Tensor:
    xf = _opmath(x)
    return (xf / (1.0 + torch.exp(-xf))).to(x.dtype)


def silu_backward(x: Tensor, grad: Tensor) -> Tensor:
    xf, g = _in_opmath(x, grad)
    s = 1.0 / (1.0 + torch.exp(-xf))
    return (g * (s * (1.0 + xf * (1.0 - s)))).to(x.dtype)


def quick_gelu_forward(x: Tensor) -> Tensor:
    xf = _opmath(x)
    return (xf / (1.0 + torch.exp(-QUICK_GELU_BETA * xf))).to(x.dtype)


def quick_gelu_backward(x: Tensor, grad: Tensor) -> Tensor:
    xf, g = _in_opmath(x, grad)
    z = QUICK_GELU_BETA * xf
    s = 1.0 / (1.0 + torch.exp(-z))
    return (g * _gate_slope(z, s)).to(x.dtype)


def mish_forward(x: Tensor) -> Tensor:
    """x tanh(softplus(x)) = x n / (n + 2) with e = exp(x), n = e (e + 2)."""
    xf = _opmath(x)
    e = torch.exp(xf)
    n = e * (e + 2.0)
    return torch.where(xf > MISH_LINEAR_FROM, xf, xf * n / (n + 2.0)).to(x.dtype)


def mish_backward(x: Tensor, grad: Tensor) -> Tensor:
    """f' = t + x sigmoid(x) (1 - t^2) = (n + 4 x e (e + 1) / (n + 2)) / (n + 2)."""
    xf, g = _in_opmath(x, grad)
    e = torch.exp(xf)
    n = e * (e + 2.0)
    r = 1.0 / (n + 2.0)
    slope = r * (n + (xf * e) * (4.0 * (e + 1.0) * r))  # x meets e (0 in the far left) first
    return torch.where(xf > MISH_LINEAR_FROM, g, g * slope).to(x.dtype)


def gelu_forward(x: Tensor) -> Tensor:
    """x Phi(x) = 0.5 x erfc(-x / sqrt 2): one transcendental, exact in both tails."""
    xf = _opmath(x)
    return (0.5 * xf * torch.erfc(-SQRT_HALF * xf)).to(x.dtype)


def gelu_backward(x: Tensor, grad: Tensor) -> Tensor:
    xf, g = _in_opmath(x, grad)
    slope = 0.5 * torch.erfc(-SQRT_HALF * xf) + xf * (INV_SQRT_2PI * torch.exp(-0.5 * xf * xf))
    return (g * slope).to(x.dtype)


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


def softplus_forward(x: Tensor) -> Tensor:
    xf = _opmath(x)
    return torch.where(xf > SOFTPLUS_LINEAR_FROM, xf, torch.log1p(torch.exp(xf))).to(x.dtype)


def softplus_backward(x: Tensor, grad: Tensor) -> Tensor:
    xf, g = _in_opmath(x, grad)
    return (g / (1.0 + torch.exp(-xf))).to(x.dtype)


def tanhexp_forward(x: Tensor) -> Tensor:
    xf = _opmath(x)
    return torch.where(xf > TANHEXP_CLAMP, xf, xf * torch.tanh(torch.exp(xf))).to(x.dtype)


def tanhexp_backward(x: Tensor, grad: Tensor) -> Tensor:
    """f' = t + x e (1 - t^2), e = exp(x), t = tanh(e), with 1 - t^2 = 4p / (1 + p)^2, p = exp(2e),
    free of the cancellation in 1 - t * t as t nears 1."""
    xf, g = _in_opmath(x, grad)
    e = torch.exp(xf)
    p = torch.exp(2.0 * e)
    r = 1.0 / (1.0 + p)
    slope = torch.tanh(e) + xf * e * (4.0 * p * r * r)
    return torch.where(xf > TANHEXP_CLAMP, g, g * slope).to(x.dtype)


def serf_forward(x: Tensor) -> Tensor:
    xf = _opmath(x)
    sp = torch.log1p(torch.exp(xf))
    return torch.where(xf > SERF_LINEAR_FROM, xf, xf * _erf_nonnegative(sp)).to(x.dtype)


def serf_backward(x: Tensor, grad: Tensor) -> Tensor:
    """f' = erf(sp) + x (2 / sqrt pi) exp(-sp^2) sigmoid(x), sp = log1p(e), sigmoid = e / (1 + e)."""
    xf, g = _in_opmath(x, grad)
    e = torch.exp(xf)
    sp = torch.log1p(e)
    slope = _erf_nonnegative(sp) + (xf * (e / (1.0 + e))) * (TWO_OVER_SQRT_PI * torch.exp(-sp * sp))
    return torch.where(xf > SERF_LINEAR_FROM, g, g * slope).to(x.dtype)


def logish_forward(x: Tensor) -> Tensor:
    xf = _opmath(x)
    return (xf * torch.log1p(1.0 / (1.0 + torch.exp(-xf)))).to(x.dtype)


def logish_backward(x: Tensor, grad: Tensor) -> Tensor:
    """f' = log1p(s) + x s (1 - s) / (1 + s) = log1p(s) + x (1 - s) / (2 + e), e = exp(-x)."""
    xf, g = _in_opmath(x, grad)
    e = torch.exp(-xf)
    s = 1.0 / (1.0 + e)
    return (g * (torch.log1p(s) + xf * (1.0 - s) / (2.0 + e))).to(x.dtype)


def hardswish_forward(x: Tensor) -> Tensor:
    xf = _opmath(x)
    return (xf * (torch.clamp(xf + 3.0, 0.0, 6.0) / 6.0)).to(x.dtype)


def hardswish_backward(x: Tensor, grad: Tensor) -> Tensor:
    xf, g = _in_opmath(x, grad)
    slope = torch.where(xf < -3.0, 0.0, torch.where(xf > 3.0, 1.0, (2.0 * xf + 3.0) / 6.0))
    return (g * slope).to(x.dtype)


def hard_mish_forward(x: Tensor) -> Tensor:
    xf = _opmath(x)
    return (xf * (torch.clamp(xf + 2.0, 0.0, 2.0) / 2.0)).to(x.dtype)


def hard_mish_backward(x: Tensor, grad: Tensor) -> Tensor:
    xf, g = _in_opmath(x, grad)
    slope = torch.where(xf < -2.0, 0.0, torch.where(xf > 0.0, 1.0, xf + 1.0))
    return (g * slope).to(x.dtype)


# --------------------------------------------------------------------------- with parameters


def swish_forward(x: Tensor, beta: Tensor) -> Tensor:
    xf, bf = _in_opmath(x, beta)
    return (xf / (1.0 + torch.exp(-bf * xf))).to(x.dtype)


def swish_backward(x: Tensor, grad: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """d/dx = s (1 + z (1 - s)), d/dbeta = x^2 s (1 - s), z = beta x; beta's sum in the same pass."""
    xf, g, bf = _in_opmath(x, grad, beta)
    z = bf * xf
    s = 1.0 / (1.0 + torch.exp(-z))
    grad_x = g * _gate_slope(z, s)
    grad_beta = (g * (xf * s) * (xf * (1.0 - s))).sum_to_size(beta.shape)
    return grad_x.to(x.dtype), grad_beta.to(beta.dtype)


def acon_forward(x: Tensor, p1: Tensor, p2: Tensor, beta: Tensor) -> Tensor:
    """(p1 - p2) x sigmoid(beta (p1 - p2) x) + p2 x."""
    xf, p1f, p2f, bf = _in_opmath(x, p1, p2, beta)
    dx = (p1f - p2f) * xf
    return (dx / (1.0 + torch.exp(-bf * dx)) + p2f * xf).to(x.dtype)


def acon_backward(x: Tensor, grad: Tensor, p1: Tensor, p2: Tensor, beta: Tensor, *, need_p1: bool,
                  need_p2: bool, need_beta: bool) -> tuple[Tensor | None, ...]:
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
    grad_p1 = (gx * a).sum_to_size(p1.shape).to(p1.dtype) if need_p1 else None
    grad_p2 = (gx * (1.0 - a)).sum_to_size(p2.shape).to(p2.dtype) if need_p2 else None
    grad_beta = ((g * (dx * s) * (dx * (1.0 - s))).sum_to_size(beta.shape).to(beta.dtype)
                 if need_beta else None)
    return grad_x, grad_p1, grad_p2, grad_beta


# --------------------------------------------------------------------------- kernels and Functions


_KERNELS: list[LazilyCompiled] = []


def kernel(fn: Callable[..., object], label: str) -> LazilyCompiled:
    """A formula compiled on first call (dynamic shapes: one compilation serves every size)."""
    compiled = LazilyCompiled(fn, label, dynamic=True)
    _KERNELS.append(compiled)
    return compiled


def kernels() -> list[LazilyCompiled]:
    """Every fast kernel made so far, e.g. to see which fell back (`fallback_reason`)."""
    return list(_KERNELS)


def _views(x: Tensor, params: tuple[Tensor, ...]) -> tuple[Tensor, list[Tensor]]:
    """x and its parameters shaped so one compiled kernel serves every shape of a contiguous x.

    Scalar parameters: x as 1-D. Per-channel (C,) or per-sample-and-channel (N, C, 1, ...)
    parameters: x as (N, C, L), parameters as (1 or N, C, 1). Anything else: as given, broadcast
    over dim 1 as the formulas are.
    """
    shaped = [channel_view(p, x) for p in params]
    if not x.is_contiguous():
        return x, shaped
    if all(p.dim() == 0 for p in shaped):
        return x.view(-1), shaped
    if x.dim() >= 2 and all(p.dim() == x.dim() and all(n == 1 for n in p.shape[2:]) for p in shaped):
        n, c = x.shape[:2]
        return x.view(n, c, -1), [p.reshape(*p.shape[:2], 1) for p in shaped]
    return x, shaped


def _grad_like(grad: Tensor, x: Tensor, x_view: Tensor) -> Tensor:
    """The upstream gradient in x's layout and view (an expanded gradient is made dense once)."""
    if x_view is x:
        return grad
    return grad.contiguous().view(x_view.shape)


def _elementwise_fast(name: str, forward: Callable, backward: Callable) -> Callable[[Tensor], Tensor]:
    """An autograd Function that saves only x and runs the compiled forward / backward kernels."""
    forward_kernel = kernel(forward, f"fast_{name}_forward")
    backward_kernel = kernel(backward, f"fast_{name}_backward")

    def function_forward(ctx, x):
        ctx.save_for_backward(x)
        x_view, _ = _views(x, ())
        return forward_kernel(x_view).view(x.shape)

    def function_backward(ctx, grad):
        (x,) = ctx.saved_tensors
        x_view, _ = _views(x, ())
        return backward_kernel(x_view, _grad_like(grad, x, x_view)).view(x.shape)

    class_name = f"_{name.title().replace('_', '')}Fast"
    fn = type(class_name, (torch.autograd.Function,),
              {"forward": staticmethod(function_forward), "backward": staticmethod(function_backward),
               "__doc__": f"{name}: compiled forward and backward kernels, saves only x."})
    globals()[class_name] = fn  # importable by name, so models holding it can be pickled
    return fn.apply


silu_fast = _elementwise_fast("silu", silu_forward, silu_backward)
quick_gelu_fast = _elementwise_fast("quick_gelu", quick_gelu_forward, quick_gelu_backward)
mish_fast = _elementwise_fast("mish", mish_forward, mish_backward)
gelu_fast = _elementwise_fast("gelu", gelu_forward, gelu_backward)
gelu_tanh_fast = _elementwise_fast("gelu_tanh", gelu_tanh_forward, gelu_tanh_backward)
softplus_fast = _elementwise_fast("softplus", softplus_forward, softplus_backward)
tanhexp_fast = _elementwise_fast("tanhexp", tanhexp_forward, tanhexp_backward)
serf_fast = _elementwise_fast("serf", serf_forward, serf_backward)
logish_fast = _elementwise_fast("logish", logish_forward, logish_backward)
hardswish_fast = _elementwise_fast("hardswish", hardswish_forward, hardswish_backward)
hard_mish_fast = _elementwise_fast("hard_mish", hard_mish_forward, hard_mish_backward)

_SWISH_FORWARD = kernel(swish_forward, "fast_swish_forward")
_SWISH_BACKWARD = kernel(swish_backward, "fast_swish_backward")
_ACON_FORWARD = kernel(acon_forward, "fast_acon_forward")
# one backward kernel per set of trainable parameters (ACON-A, -B, -C), each with its own
# compiled-code cache
_ACON_BACKWARD: dict[tuple[bool, bool, bool], LazilyCompiled] = {}


def _acon_backward_kernel(need_p1: bool, need_p2: bool, need_beta: bool) -> LazilyCompiled:
    key = (need_p1, need_p2, need_beta)
    if key not in _ACON_BACKWARD:
        label = "fast_acon_backward_" + "".join(n for n, need in zip(("p1", "p2", "beta"), key) if need)
        _ACON_BACKWARD[key] = kernel(partial(acon_backward, need_p1=need_p1, need_p2=need_p2,
                                             need_beta=need_beta), label)
    return _ACON_BACKWARD[key]


class _SwishFast(torch.autograd.Function):
    """x * sigmoid(beta x), beta scalar or per channel: compiled kernels, saves x and beta."""

    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x, beta)
        x_view, (beta_view,) = _views(x, (beta,))
        return _SWISH_FORWARD(x_view, beta_view).view(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x, beta = ctx.saved_tensors
        x_view, (beta_view,) = _views(x, (beta,))
        grad_x, grad_beta = _SWISH_BACKWARD(x_view, _grad_like(grad, x, x_view), beta_view)
        return grad_x.view(x.shape), grad_beta.reshape(beta.shape) if ctx.needs_input_grad[1] else None


class _AconFast(torch.autograd.Function):
    """ACON-C (and so ACON-A, -B, meta-ACON): compiled kernels, saves x and the parameters."""

    @staticmethod
    def forward(ctx, x, p1, p2, beta):
        ctx.save_for_backward(x, p1, p2, beta)
        x_view, params = _views(x, (p1, p2, beta))
        return _ACON_FORWARD(x_view, *params).view(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x, p1, p2, beta = ctx.saved_tensors
        x_view, params = _views(x, (p1, p2, beta))
        backward = _acon_backward_kernel(*ctx.needs_input_grad[1:])
        grad_x, *grads = backward(x_view, _grad_like(grad, x, x_view), *params)
        return (grad_x.view(x.shape),
                *(None if g is None else g.reshape(p.shape) for g, p in zip(grads, (p1, p2, beta))))


def swish_fast(x: Tensor, beta: Tensor) -> Tensor:
    return _SwishFast.apply(x, beta)


def acon_fast(x: Tensor, p1: Tensor, p2: Tensor, beta: Tensor) -> Tensor:
    return _AconFast.apply(x, p1, p2, beta)

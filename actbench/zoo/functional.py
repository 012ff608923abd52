"""Tensor functions behind the zoo's implementations.

Three routes to the same math, so they can be measured against each other:

- ``*_formula``: the published formula in plain torch ops, left to autograd. Where the textbook form
  overflows (``exp`` of a large input, ``x**3`` in float16) the argument is clamped at a point beyond
  which the result is already exact, so values and gradients stay finite. The smooth formulas run
  float16 / bfloat16 inputs in float32 (``half_in_float32``); the piecewise-linear ones stay in the
  input's dtype, with products ordered so that a huge x meets a zero factor before it can overflow.
- ``*_memeff``: a custom autograd Function that saves only its input (plus tiny parameters) and
  recomputes in backward with a hand-derived gradient. Half-precision inputs are computed in float32
  internally, as PyTorch's own kernels do.
- ``compiled(fn)``: ``torch.compile`` of a formula, compiled on first call, with a one-line warning
  and a permanent fall-back to the uncompiled formula where compilation is unavailable.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ..errors import ActbenchWarning

Tensor = torch.Tensor

SQRT_HALF = 1.0 / math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
GELU_TANH_COEF = 0.044715
QUICK_GELU_BETA = 1.702
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
# Beyond these inputs tanh(...) is exactly 1 even in float64, so clamping changes no value.
GELU_TANH_CLAMP = 10.0
# In the sigmoid form, the gate sigmoid(2u) is exactly 0 in float64 below this (2u < -1900).
GELU_TANH_SIGMOID_FLOOR = -30.0
TANHEXP_CLAMP = 3.0
# erf(z) = z * sum_n ERF_SERIES[n] z^(2n) for 0 <= z < ERF_SERIES_BELOW (float32: relative error
# < 4e-8)
ERF_SERIES_BELOW = 0.5
ERF_SERIES = tuple(TWO_OVER_SQRT_PI * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(7))
# Below this, softplus(x) = log1p(exp(x)) underflows to 0 even in float64 (exp(-745) is 0).
SOFTPLUS_FLOOR = -800.0


# --------------------------------------------------------------------------- formulas (autograd)


def _opmath(t: Tensor) -> Tensor:
    """Half types are computed in float32, as PyTorch's own kernels do."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def half_in_float32(formula: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Run a formula on float16 / bfloat16 tensors in float32 and return the input's dtype.

    Chains of exp / erf / tanh overflow in half precision (and autograd's products such as
    inf * 0 give NaN), so the smooth formulas do what PyTorch's own kernels do.
    """

    @functools.wraps(formula)
    def wrapper(x: Tensor, *params: Tensor, **options: float) -> Tensor:
        if x.dtype not in (torch.float16, torch.bfloat16):
            return formula(x, *params, **options)
        return formula(x.float(), *(_opmath(p) for p in params), **options).to(x.dtype)

    return wrapper


def identity_formula(x: Tensor) -> Tensor:
    return x


def relu_formula(x: Tensor) -> Tensor:
    return torch.clamp_min(x, 0.0)


def leaky_relu_formula(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return torch.where(x >= 0, x, negative_slope * x)


def prelu_formula(x: Tensor, weight: Tensor) -> Tensor:
    return torch.where(x >= 0, x, channel_view(weight, x) * x)


def relu6_formula(x: Tensor) -> Tensor:
    return torch.clamp(x, 0.0, 6.0)


def relu2_formula(x: Tensor) -> Tensor:
    # r * r with r = relu(x): autograd keeps r alone (relu saves its result), 1x the input
    r = torch.relu(x)
    return r * r


@half_in_float32
def star_relu_formula(x: Tensor, scale: Tensor, bias: Tensor) -> Tensor:
    # (s r) r: in float16 r^2 alone overflows where s r^2 does not
    r = torch.relu(x)
    return (scale * r) * r + bias


def _expm1(x: Tensor) -> Tensor:
    """exp(x) - 1 for x <= 0 whose value is exact near 0 and whose slope is exp's (autograd's expm1
    slope, result + 1, cancels to 0 below x = -16.6 in float32).

    Under torch.compile the value comes from Kahan's (u - 1) x / log(u), u = exp(x): inductor's CPU
    code computes expm1 as exp(x) - 1, which gives 0 at x = -1e-8.
    """
    e = torch.exp(x)
    if torch.compiler.is_compiling():
        kahan = torch.where(e == 1.0, x, (e - 1.0) * x / torch.log(e))
        value = torch.where(e == 0.0, -1.0, kahan)
    else:
        value = torch.expm1(x)
    return value.detach() + (e - e.detach())


def _erf_nonnegative(z: Tensor) -> Tensor:
    """erf(z) for z >= 0, accurate relative to its value also for small z.

    Under torch.compile small z take the series: inductor's float32 erf is a polynomial with an
    absolute error near 1e-7 (serf was 100 % off below x = -3.3).
    """
    if not torch.compiler.is_compiling():
        return torch.erf(z)
    zz = z * z
    series = ERF_SERIES[-1]
    for coefficient in reversed(ERF_SERIES[:-1]):
        series = coefficient + zz * series
    return torch.where(z < ERF_SERIES_BELOW, z * series, torch.erf(z))


@half_in_float32
def elu_formula(x: Tensor, alpha: float = 1.0) -> Tensor:
    return torch.where(x > 0, x, alpha * _expm1(torch.clamp_max(x, 0.0)))


@half_in_float32
def selu_formula(x: Tensor) -> Tensor:
    return SELU_SCALE * elu_formula(x, SELU_ALPHA)


@half_in_float32
def celu_formula(x: Tensor, alpha: float = 1.0) -> Tensor:
    return torch.where(x > 0, x, alpha * _expm1(torch.clamp_max(x, 0.0) / alpha))


@half_in_float32
def gelu_formula(x: Tensor) -> Tensor:
    # 1 + erf(z) = erfc(-z): no cancellation in the left tail, where 1 + erf(z) is 1 - 0.99...
    return 0.5 * x * torch.erfc(-x * SQRT_HALF)


@half_in_float32
def gelu_tanh_formula(x: Tensor) -> Tensor:
    xc = torch.clamp(x, GELU_TANH_SIGMOID_FLOOR, GELU_TANH_CLAMP)
    # (1 + tanh(u)) / 2 = sigmoid(2u): no cancellation in the left tail
    return x * torch.sigmoid(2.0 * SQRT_2_OVER_PI * (xc + GELU_TANH_COEF * xc * xc * xc))


@half_in_float32
def quick_gelu_formula(x: Tensor) -> Tensor:
    return x * torch.sigmoid(QUICK_GELU_BETA * x)


@half_in_float32
def silu_formula(x: Tensor) -> Tensor:
    return x * torch.sigmoid(x)


@half_in_float32
def swish_formula(x: Tensor, beta: Tensor) -> Tensor:
    return x * torch.sigmoid(channel_view(beta, x) * x)


@half_in_float32
def mish_formula(x: Tensor) -> Tensor:
    return x * torch.tanh(F.softplus(x))


@half_in_float32
def softplus_formula(x: Tensor) -> Tensor:
    # log(1 + e^x) as logaddexp(x, 0): exact in both tails, with the right slope at 0.
    return torch.logaddexp(x, torch.zeros_like(x))


@half_in_float32
def sigmoid_formula(x: Tensor) -> Tensor:
    # 1 / (1 + e^-x) = exp(-softplus(-x)): no overflow, no inf * 0 in the gradient.
    return torch.exp(-softplus_formula(-x))


@half_in_float32
def tanh_formula(x: Tensor) -> Tensor:
    # (1 - e^-2x) / (1 + e^-2x) for x >= 0 and its mirror below, with e^-2|x| - 1 from expm1:
    # exact near 0, where 2 sigmoid(2x) - 1 cancels to 0 (at x = 1e-8); no overflow for large |x|
    above = _expm1(-2.0 * torch.clamp_min(x, 0.0))
    below = _expm1(2.0 * torch.clamp_max(x, 0.0))
    return torch.where(x >= 0, -above / (2.0 + above), below / (2.0 + below))


def hardswish_formula(x: Tensor) -> Tensor:
    return x * (torch.clamp(x + 3.0, 0.0, 6.0) / 6.0)


def hardsigmoid_formula(x: Tensor) -> Tensor:
    return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def hard_mish_formula(x: Tensor) -> Tensor:
    return x * (torch.clamp(x + 2.0, 0.0, 2.0) / 2.0)


@half_in_float32
def tanhexp_formula(x: Tensor) -> Tensor:
    return x * torch.tanh(torch.exp(torch.clamp_max(x, TANHEXP_CLAMP)))


@half_in_float32
def serf_formula(x: Tensor) -> Tensor:
    # the floor changes no value; it keeps autograd's inf * 0 out of the tail's gradient
    return x * _erf_nonnegative(F.softplus(torch.clamp_min(x, SOFTPLUS_FLOOR)))


@half_in_float32
def logish_formula(x: Tensor) -> Tensor:
    return x * torch.log1p(torch.sigmoid(x))


@half_in_float32
def acon_formula(x: Tensor, p1: Tensor, p2: Tensor, beta: Tensor) -> Tensor:
    """ACON-C of Ma et al. 2021: (p1 - p2) x sigmoid(beta (p1 - p2) x) + p2 x."""
    p1, p2, beta = channel_view(p1, x), channel_view(p2, x), channel_view(beta, x)
    dpx = (p1 - p2) * x
    return dpx * torch.sigmoid(beta * dpx) + p2 * x


def channel_view(p: Tensor, x: Tensor) -> Tensor:
    """Shape a per-channel vector (C,) to broadcast over dim 1 of x; scalars and full shapes pass."""
    if p.dim() != 1 or x.dim() < 2:
        return p
    return p.view(1, -1, *([1] * (x.dim() - 2)))


# --------------------------------------------------------------------------- memory-efficient
# One named autograd Function class per activation, so models holding one pickle by reference.


def saving_only_input(value: Callable[[Tensor], Tensor], gradient: Callable[[Tensor, Tensor], Tensor],
                      *, differentiable_backward: bool = True) -> tuple[staticmethod, staticmethod]:
    """`forward` and `backward` of an autograd Function of one tensor that saves only that tensor.

    value(x) -> y, gradient(x, grad) -> grad * f'(x). Autograd calls both as static methods, which
    cannot see the class they belong to, so each Function class binds its own pair in its body.
    """

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return value(x)

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return gradient(x, grad)

    return staticmethod(forward), staticmethod(backward if differentiable_backward
                                               else once_differentiable(backward))


def recomputing(formula: Callable[[Tensor], Tensor],
                slope: Callable[[Tensor], Tensor]) -> tuple[staticmethod, staticmethod]:
    """`forward` and `backward` that save only x and recompute slope(x) in backward, in opmath."""

    def value(x):
        return formula(_opmath(x)).to(x.dtype)

    def gradient(x, grad):
        return (_opmath(grad) * slope(_opmath(x))).to(x.dtype)

    return saving_only_input(value, gradient)


def _mish_slope(x):
    t = torch.tanh(F.softplus(x))
    return t + x * (torch.sigmoid(x) * (1.0 - t * t))


class _MishMemeff(torch.autograd.Function):
    """mish: saves only x, recomputes the slope in backward."""
    forward, backward = recomputing(mish_formula, _mish_slope)


mish_memeff = _MishMemeff.apply


def _silu_slope(x):
    s = torch.sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


class _SiluMemeff(torch.autograd.Function):
    """silu: saves only x, recomputes the slope in backward."""
    forward, backward = recomputing(silu_formula, _silu_slope)


silu_memeff = _SiluMemeff.apply


def _gelu_slope(x):
    return 0.5 * torch.erfc(-x * SQRT_HALF) + x * (torch.exp(-0.5 * x * x) * INV_SQRT_2PI)


class _GeluMemeff(torch.autograd.Function):
    """gelu: saves only x, recomputes the slope in backward."""
    forward, backward = recomputing(gelu_formula, _gelu_slope)


gelu_memeff = _GeluMemeff.apply


def _gelu_tanh_slope(x):
    # with s = sigmoid(2u): (1 + tanh u) / 2 = s and (1 - tanh^2 u) / 2 = 2 s (1 - s), both
    # without the cancellation of 1 + tanh(u) in the left tail
    xc = torch.clamp(x, GELU_TANH_SIGMOID_FLOOR, GELU_TANH_CLAMP)
    s = torch.sigmoid(2.0 * SQRT_2_OVER_PI * (xc + GELU_TANH_COEF * xc * xc * xc))
    du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_COEF * xc * xc)
    return s + x * (2.0 * s * (1.0 - s) * du)


class _GeluTanhMemeff(torch.autograd.Function):
    """gelu_tanh: saves only x, recomputes the slope in backward."""
    forward, backward = recomputing(gelu_tanh_formula, _gelu_tanh_slope)


gelu_tanh_memeff = _GeluTanhMemeff.apply


def _quick_gelu_slope(x):
    s = torch.sigmoid(QUICK_GELU_BETA * x)
    return s + x * (QUICK_GELU_BETA * s * (1.0 - s))


class _QuickGeluMemeff(torch.autograd.Function):
    """quick_gelu: saves only x, recomputes the slope in backward."""
    forward, backward = recomputing(quick_gelu_formula, _quick_gelu_slope)


quick_gelu_memeff = _QuickGeluMemeff.apply


def _tanhexp_slope(x):
    e = torch.exp(torch.clamp_max(x, TANHEXP_CLAMP))
    t = torch.tanh(e)
    return t + x * (e * (1.0 - t * t))


class _TanhexpMemeff(torch.autograd.Function):
    """tanhexp: saves only x, recomputes the slope in backward."""
    forward, backward = recomputing(tanhexp_formula, _tanhexp_slope)


tanhexp_memeff = _TanhexpMemeff.apply


def _serf_slope(x):
    sp = F.softplus(x)
    return torch.erf(sp) + x * (TWO_OVER_SQRT_PI * torch.exp(-sp * sp) * torch.sigmoid(x))


class _SerfMemeff(torch.autograd.Function):
    """serf: saves only x, recomputes the slope in backward."""
    forward, backward = recomputing(serf_formula, _serf_slope)


serf_memeff = _SerfMemeff.apply


def _logish_slope(x):
    s = torch.sigmoid(x)
    return torch.log1p(s) + x * (s * (1.0 - s) / (1.0 + s))


class _LogishMemeff(torch.autograd.Function):
    """logish: saves only x, recomputes the slope in backward."""
    forward, backward = recomputing(logish_formula, _logish_slope)


logish_memeff = _LogishMemeff.apply


def _reduce_to(param: Tensor, view: Tensor, local: Tensor) -> Tensor:
    """Sum a broadcast gradient back to the parameter's shape and dtype."""
    return local.sum_to_size(view.shape).reshape(param.shape).to(param.dtype)


class _SwishMemeff(torch.autograd.Function):
    """x * sigmoid(beta * x) with beta a scalar or per-channel tensor; saves x and beta."""

    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x, beta)
        xf, bf = _opmath(x), _opmath(channel_view(beta, x))
        return (xf * torch.sigmoid(bf * xf)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        x, beta = ctx.saved_tensors
        xf, bf, g = _opmath(x), _opmath(channel_view(beta, x)), _opmath(grad_out)
        s = torch.sigmoid(bf * xf)
        q = s * (1.0 - s)
        grad_x = (g * (s + xf * (bf * q))).to(x.dtype)
        grad_beta = _reduce_to(beta, bf, (g * xf) * (xf * q)) if ctx.needs_input_grad[1] else None
        return grad_x, grad_beta


class _AconMemeff(torch.autograd.Function):
    """ACON-C with hand-derived gradients for x, p1, p2 and beta; saves x and the parameters."""

    @staticmethod
    def forward(ctx, x, p1, p2, beta):
        ctx.save_for_backward(x, p1, p2, beta)
        xf = _opmath(x)
        p1f, p2f, bf = (_opmath(channel_view(t, x)) for t in (p1, p2, beta))
        dpx = (p1f - p2f) * xf
        return (dpx * torch.sigmoid(bf * dpx) + p2f * xf).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        x, p1, p2, beta = ctx.saved_tensors
        xf, g = _opmath(x), _opmath(grad_out)
        p1f, p2f, bf = (_opmath(channel_view(t, x)) for t in (p1, p2, beta))
        d = p1f - p2f
        s = torch.sigmoid(bf * d * xf)
        q = s * (1.0 - s)
        grad_x = (g * (d * s + xf * (bf * d * d * q) + p2f)).to(x.dtype)
        _, need_p1, need_p2, need_beta = ctx.needs_input_grad
        grad_p1 = grad_p2 = grad_beta = None
        if need_p1 or need_p2:
            g_dy_dd = g * (xf * s + (xf * q) * xf * (bf * d))  # dy/d(p1 - p2) times the grad
            grad_p1 = _reduce_to(p1, p1f, g_dy_dd) if need_p1 else None
            grad_p2 = _reduce_to(p2, p2f, g * xf - g_dy_dd) if need_p2 else None
        if need_beta:
            grad_beta = _reduce_to(beta, bf, (g * xf) * (xf * q) * (d * d))
        return grad_x, grad_p1, grad_p2, grad_beta


class _StarReluMemeff(torch.autograd.Function):
    """s relu(x)^2 + b with scalar s and b; saves x, s and b (the formula keeps r and r^2)."""

    @staticmethod
    def forward(ctx, x, scale, bias):
        ctx.save_for_backward(x, scale, bias)
        r = torch.relu(_opmath(x))
        return ((_opmath(scale) * r) * r + _opmath(bias)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        x, scale, bias = ctx.saved_tensors
        r, g = torch.relu(_opmath(x)), _opmath(grad_out)
        grad_x = (g * ((2.0 * _opmath(scale)) * r)).to(x.dtype)
        _, need_scale, need_bias = ctx.needs_input_grad
        grad_scale = _reduce_to(scale, scale, (g * r) * r) if need_scale else None
        grad_bias = _reduce_to(bias, bias, g) if need_bias else None
        return grad_x, grad_scale, grad_bias


def star_relu_memeff(x: Tensor, scale: Tensor, bias: Tensor) -> Tensor:
    return _StarReluMemeff.apply(x, scale, bias)


def swish_memeff(x: Tensor, beta: Tensor) -> Tensor:
    return _SwishMemeff.apply(x, beta)


def acon_memeff(x: Tensor, p1: Tensor, p2: Tensor, beta: Tensor) -> Tensor:
    return _AconMemeff.apply(x, p1, p2, beta)


# --------------------------------------------------------------------------- compiled


def _own_entry(fn: Callable[..., Tensor], label: str) -> Callable[..., Tensor]:
    """A trampoline with a code object of its own around `fn`.

    Dynamo keeps its compiled-code cache, and its recompile limit (8), per code object of the
    outermost compiled frame. The half-precision decorator and expression closures share one
    code object between many formulas, so without this the ninth compiled activation in a
    process would silently run eagerly.
    """
    def entry(*args: Tensor, **options: float) -> Tensor:
        return fn(*args, **options)

    name = "compiled_" + "".join(c if c.isalnum() else "_" for c in label)[:40]
    entry.__code__ = entry.__code__.replace(co_name=name)
    return entry


class LazilyCompiled:
    """torch.compile(fn) on first call; on any compile failure, warn once and use fn itself.

    `dynamic=None`: the first shape gets a static kernel; a second shape recompiles once with
    dynamic shapes, which then serves every size.
    """

    def __init__(self, fn: Callable[..., Tensor], label: str):
        self.fn = fn
        self.label = label
        self._compiled: Callable[..., Tensor] | None = None
        self.fallback_reason: str | None = None

    def __call__(self, *args: Tensor, **options: float) -> Tensor:
        if self.fallback_reason is not None:
            return self.fn(*args, **options)
        try:
            if self._compiled is None:
                self._compiled = torch.compile(_own_entry(self.fn, self.label), dynamic=None)
            return self._compiled(*args, **options)
        except Exception as error:  # any compiler failure: missing C compiler, unsupported platform...
            first_line = (str(error).strip().splitlines() or [""])[0][:200]
            self.fallback_reason = f"{type(error).__name__}: {first_line}"
            warnings.warn(f"torch.compile is unavailable for {self.label} ({self.fallback_reason}); "
                          "using the uncompiled formula instead", ActbenchWarning, stacklevel=2)
            return self.fn(*args, **options)

    def __reduce__(self):  # modules holding one stay picklable; compilation restarts after loading
        return (LazilyCompiled, (self.fn, self.label))


_compiled_cache: dict[Callable, LazilyCompiled] = {}


def compiled(fn: Callable[..., Tensor], label: str) -> LazilyCompiled:
    """One shared compiled wrapper per formula, so compile cost is paid once per process."""
    if fn not in _compiled_cache:
        _compiled_cache[fn] = LazilyCompiled(fn, label)
    return _compiled_cache[fn]

"""`fast` for the GLU family: one fused forward and one fused backward kernel per member and order.

The input x of shape (..., 2h) reaches the kernels as an (M, 2, h) view, value and gate side by side
in dim 1. The forward reads both halves once and writes y = a * g(b), (M, h). The backward reads x and
the upstream gradient once and writes the gradient of the whole input, (M, 2, h): da = grad g(b) and
db = grad a g'(b) come from one shared g(b) (for sigmoid gates one exp), in one kernel that stores
both halves (inductor turns the concatenation of two pointwise results into stores at two offsets
of one loop). The autograd Functions save only x, as liger-kernel's SwiGLU and GeGLU do.

The kernels are compiled through :mod:`actbench.zoo.fast`'s route (inductor on first use, per dtype,
device and layout; the formulas uncompiled, after one warning, where that fails). Half types are
computed in float32 and rounded once. Each gate below returns (g(b), g'(b)) from the fewest
transcendental functions, in the tail-safe order of fast.py: a huge b meets a zero factor first.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch.autograd.function import once_differentiable

from .fast import PointwiseKernel, _check_floating, kernel
from .functional import GELU_TANH_CLAMP, GELU_TANH_COEF, INV_SQRT_2PI, SQRT_2_OVER_PI, SQRT_HALF, _opmath

Tensor = torch.Tensor


def sigmoid_gate(b: Tensor):  # -> (g(b), g'(b))
    s = 1.0 / (1.0 + torch.exp(-b))
    return s, s * (1.0 - s)


def relu_gate(b: Tensor):
    return torch.clamp_min(b, 0.0), (b > 0).to(b.dtype)


def gelu_gate(b: Tensor):
    """b Phi(b) and Phi(b) + b phi(b), Phi(b) = erfc(-b / sqrt 2) / 2: no cancellation in the left
    tail (inductor's float32 erfc is accurate relative to its value, unlike 1 + erf)."""
    phi = 0.5 * torch.erfc(-SQRT_HALF * b)
    return b * phi, phi + b * (INV_SQRT_2PI * torch.exp(-0.5 * b * b))


def gelu_tanh_gate(b: Tensor):
    """b sigmoid(2u) and s + b s (1 - s) 2u', u = sqrt(2/pi) (b + 0.044715 b^3); the slope is 1 or 0
    beyond |b| = 10, where 2u' would overflow first."""
    b2 = b * b
    s = 1.0 / (1.0 + torch.exp((-2.0 * SQRT_2_OVER_PI) * (b + GELU_TANH_COEF * b2 * b)))
    two_du = (2.0 * SQRT_2_OVER_PI) * (1.0 + 3.0 * GELU_TANH_COEF * b2)
    slope = s * (1.0 + b * (1.0 - s) * two_du)
    return b * s, torch.where(b.abs() > GELU_TANH_CLAMP, (b > 0).to(b.dtype), slope)


def silu_gate(b: Tensor):
    s = 1.0 / (1.0 + torch.exp(-b))
    return b * s, s * (1.0 + b * (1.0 - s))


def identity_gate(b: Tensor):
    return b, torch.ones_like(b)


Gate = Callable[[Tensor], tuple[Tensor, Tensor]]


def _split(x3: Tensor, gate_first: bool) -> tuple[Tensor, Tensor]:
    """(a, b) as (M, 1, h) slices of the (M, 2, h) input, in float32 for half types."""
    xf = _opmath(x3)
    first, second = xf[:, 0:1], xf[:, 1:2]
    return (second, first) if gate_first else (first, second)


def gated_forward(x3: Tensor, *, gate: Gate, gate_first: bool) -> Tensor:
    """y = a g(b), (M, 1, h)."""
    a, b = _split(x3, gate_first)
    value, _ = gate(b)
    return (a * value).to(x3.dtype)


def gated_backward(x3: Tensor, grad: Tensor, *, gate: Gate, gate_first: bool) -> Tensor:
    """The gradient of the (M, 2, h) input from grad (M, 1, h): da = grad g(b), db = grad a g'(b)."""
    a, b = _split(x3, gate_first)
    g = _opmath(grad)
    value, slope = gate(b)
    da, db = g * value, (g * a) * slope
    return torch.cat((db, da) if gate_first else (da, db), dim=1).to(x3.dtype)


def _pairs(t: Tensor, width: int) -> Tensor:
    """t as a contiguous (M, width, h) view: the (M, 2, h) input, or (M, 1, h) for y and grad."""
    h = t.shape[-1] // width
    return (t if t.is_contiguous() else t.contiguous()).view(-1, width, h)


def fused_gated(name: str, gate: Gate) -> tuple[staticmethod, staticmethod]:
    """`forward(x, gate_first)` and `backward` of an autograd Function of a * gate(b) that saves
    only x and runs one compiled kernel each way; one kernel pair per order of the halves."""
    kernels: dict[bool, tuple[PointwiseKernel, PointwiseKernel]] = {
        first: (kernel(partial(gated_forward, gate=gate, gate_first=first),
                       f"{name} forward{' (gate first)' if first else ''}"),
                kernel(partial(gated_backward, gate=gate, gate_first=first),
                       f"{name} backward{' (gate first)' if first else ''}"))
        for first in (False, True)}

    def forward(ctx, x, gate_first):
        _check_floating(x, name)
        ctx.save_for_backward(x)
        ctx.gate_first = gate_first
        out_shape = (*x.shape[:-1], x.shape[-1] // 2)
        if x.numel() == 0:
            return x.new_empty(out_shape)
        return kernels[gate_first][0](_pairs(x, 2)).view(out_shape)

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if x.numel() == 0:
            return torch.zeros_like(x), None
        return kernels[ctx.gate_first][1](_pairs(x, 2), _pairs(grad, 1)).view(x.shape), None

    return staticmethod(forward), staticmethod(once_differentiable(backward))


class _GluFast(torch.autograd.Function):
    """glu: a sigmoid(b), one exp each way; saves only x."""
    forward, backward = fused_gated("glu", sigmoid_gate)


class _RegluFast(torch.autograd.Function):
    """reglu: a relu(b), one pass each way; saves only x."""
    forward, backward = fused_gated("reglu", relu_gate)


class _GegluFast(torch.autograd.Function):
    """geglu: a gelu(b) in the erfc form, one erfc and one exp each way; saves only x."""
    forward, backward = fused_gated("geglu", gelu_gate)


class _GegluTanhFast(torch.autograd.Function):
    """geglu_tanh: a gelu_tanh(b), one exp each way; saves only x."""
    forward, backward = fused_gated("geglu_tanh", gelu_tanh_gate)


class _SwigluFast(torch.autograd.Function):
    """swiglu: a silu(b), one exp each way; saves only x."""
    forward, backward = fused_gated("swiglu", silu_gate)


class _BilinearFast(torch.autograd.Function):
    """bilinear: a b, one pass each way; saves only x."""
    forward, backward = fused_gated("bilinear", identity_gate)


def glu_fast(x: Tensor, gate_first: bool = False) -> Tensor:
    return _GluFast.apply(x, gate_first)


def reglu_fast(x: Tensor, gate_first: bool = False) -> Tensor:
    return _RegluFast.apply(x, gate_first)


def geglu_fast(x: Tensor, gate_first: bool = False) -> Tensor:
    return _GegluFast.apply(x, gate_first)


def geglu_tanh_fast(x: Tensor, gate_first: bool = False) -> Tensor:
    return _GegluTanhFast.apply(x, gate_first)


def swiglu_fast(x: Tensor, gate_first: bool = False) -> Tensor:
    return _SwigluFast.apply(x, gate_first)


def bilinear_fast(x: Tensor, gate_first: bool = False) -> Tensor:
    return _BilinearFast.apply(x, gate_first)

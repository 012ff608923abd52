"""The GLU family (Shazeer 2020): y = a * g(b), with a and b the two halves of the input's last dim.

An input of shape (..., 2h) gives an output of shape (..., h). The value a is the first half and the
gate b the second, as in ``torch.nn.functional.glu``; ``gate_first=True`` swaps them. Routes as in
:mod:`actbench.zoo.functional`:

- ``*_formula``: a * g(b) in plain torch ops, left to autograd; half types in float32;
- ``*_memeff``: an autograd Function that saves only x and recomputes g(b) and g'(b) in backward,
  returning the gradient of both halves, da = grad g(b) and db = grad a g'(b), as one tensor.

Each member is one named function or Function class, so modules holding one pickle by reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .functional import (_gelu_slope, _gelu_tanh_slope, _opmath, _silu_slope, gelu_formula,
                         gelu_tanh_formula, half_in_float32, silu_formula)

Tensor = torch.Tensor


def halves(x: Tensor, gate_first: bool = False) -> tuple[Tensor, Tensor]:
    """(value a, gate b): views of the two halves of x's last dim."""
    h = x.shape[-1] // 2
    first, second = x[..., :h], x[..., h:]
    return (second, first) if gate_first else (first, second)


def joined(da: Tensor, db: Tensor, gate_first: bool = False) -> Tensor:
    """The gradients of the value and the gate put back where their halves came from."""
    return torch.cat((db, da) if gate_first else (da, db), dim=-1)


# --------------------------------------------------------------------------- formulas (autograd)
# `gate_first` is a keyword: half_in_float32 passes positional arguments on as tensors


def glu_native(x: Tensor, gate_first: bool = False) -> Tensor:
    """torch.nn.functional.glu, which takes the value first (the module refuses gate_first)."""
    return F.glu(x, dim=-1)


@half_in_float32
def glu_formula(x: Tensor, gate_first: bool = False) -> Tensor:
    a, b = halves(x, gate_first)
    return a * torch.sigmoid(b)


@half_in_float32
def reglu_formula(x: Tensor, gate_first: bool = False) -> Tensor:
    a, b = halves(x, gate_first)
    return a * torch.relu(b)


@half_in_float32
def geglu_formula(x: Tensor, gate_first: bool = False) -> Tensor:
    a, b = halves(x, gate_first)
    return a * gelu_formula(b)


@half_in_float32
def geglu_tanh_formula(x: Tensor, gate_first: bool = False) -> Tensor:
    a, b = halves(x, gate_first)
    return a * gelu_tanh_formula(b)


@half_in_float32
def swiglu_formula(x: Tensor, gate_first: bool = False) -> Tensor:
    a, b = halves(x, gate_first)
    return a * silu_formula(b)


@half_in_float32
def bilinear_formula(x: Tensor, gate_first: bool = False) -> Tensor:
    a, b = halves(x, gate_first)
    return a * b


# --------------------------------------------------------------------------- memory-efficient


def _sigmoid_slope(b: Tensor) -> Tensor:
    s = torch.sigmoid(b)
    return s * (1.0 - s)


def _relu_slope(b: Tensor) -> Tensor:
    return (b > 0).to(b.dtype)


def _identity(b: Tensor) -> Tensor:
    return b


def _one(b: Tensor) -> Tensor:
    return torch.ones_like(b)


def recomputing_gated(gate: Callable[[Tensor], Tensor],
                      slope: Callable[[Tensor], Tensor]) -> tuple[staticmethod, staticmethod]:
    """`forward(x, gate_first)` and `backward` of an autograd Function of a * gate(b) that saves
    only x and returns the gradient of the whole input, both halves, in opmath."""

    def forward(ctx, x, gate_first):
        ctx.save_for_backward(x)
        ctx.gate_first = gate_first
        a, b = halves(_opmath(x), gate_first)
        return (a * gate(b)).to(x.dtype)

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        a, b = halves(_opmath(x), ctx.gate_first)
        g = _opmath(grad)
        return joined(g * gate(b), (g * a) * slope(b), ctx.gate_first).to(x.dtype), None

    return staticmethod(forward), staticmethod(backward)


class _GluMemeff(torch.autograd.Function):
    """glu: saves only x; da = g sigmoid(b), db = g a s (1 - s)."""
    forward, backward = recomputing_gated(torch.sigmoid, _sigmoid_slope)


class _RegluMemeff(torch.autograd.Function):
    """reglu: saves only x; da = g relu(b), db = g a [b > 0]."""
    forward, backward = recomputing_gated(torch.relu, _relu_slope)


class _GegluMemeff(torch.autograd.Function):
    """geglu: saves only x; da = g gelu(b), db = g a (Phi(b) + b phi(b))."""
    forward, backward = recomputing_gated(gelu_formula, _gelu_slope)


class _GegluTanhMemeff(torch.autograd.Function):
    """geglu_tanh: saves only x; da = g gelu_tanh(b), db = g a gelu_tanh'(b)."""
    forward, backward = recomputing_gated(gelu_tanh_formula, _gelu_tanh_slope)


class _SwigluMemeff(torch.autograd.Function):
    """swiglu: saves only x; da = g silu(b), db = g a s (1 + b (1 - s))."""
    forward, backward = recomputing_gated(silu_formula, _silu_slope)


class _BilinearMemeff(torch.autograd.Function):
    """bilinear: saves only x; da = g b, db = g a."""
    forward, backward = recomputing_gated(_identity, _one)


def glu_memeff(x: Tensor, gate_first: bool = False) -> Tensor:
    return _GluMemeff.apply(x, gate_first)


def reglu_memeff(x: Tensor, gate_first: bool = False) -> Tensor:
    return _RegluMemeff.apply(x, gate_first)


def geglu_memeff(x: Tensor, gate_first: bool = False) -> Tensor:
    return _GegluMemeff.apply(x, gate_first)


def geglu_tanh_memeff(x: Tensor, gate_first: bool = False) -> Tensor:
    return _GegluTanhMemeff.apply(x, gate_first)


def swiglu_memeff(x: Tensor, gate_first: bool = False) -> Tensor:
    return _SwigluMemeff.apply(x, gate_first)


def bilinear_memeff(x: Tensor, gate_first: bool = False) -> Tensor:
    return _BilinearMemeff.apply(x, gate_first)

"""`fast` for the squared ReLUs: relu2 (So et al. 2021) and star_relu (Yu et al. 2022).

One fused forward and one fused backward kernel each, compiled through :mod:`actbench.zoo.fast`'s
route (inductor on first use, per dtype, device and layout; the formulas uncompiled, after one
warning, where that fails). The Functions save only x (star_relu: and its two scalars); half types
are computed in float32 and rounded once.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .fast import _canonical, _check_floating, compiled_kernels, kernel
from .functional import _opmath

Tensor = torch.Tensor


def relu2_forward(x: Tensor) -> Tensor:
    r = torch.clamp_min(_opmath(x), 0.0)
    return (r * r).to(x.dtype)


def relu2_backward(x: Tensor, grad: Tensor) -> Tensor:
    """f' = 2 relu(x)."""
    r = torch.clamp_min(_opmath(x), 0.0)
    return (_opmath(grad) * (2.0 * r)).to(x.dtype)


class _Relu2Fast(torch.autograd.Function):
    """relu2: relu(x)^2, one pass each way; saves only x."""
    forward, backward = compiled_kernels("relu2", relu2_forward, relu2_backward)


relu2_fast = _Relu2Fast.apply


# no tuple return annotation: the traced graph would carry it as a string, which inductor's cache
# cannot key on


def star_relu_forward(x: Tensor, scale: Tensor, bias: Tensor) -> Tensor:
    r = torch.clamp_min(_opmath(x), 0.0)
    return ((_opmath(scale) * r) * r + _opmath(bias)).to(x.dtype)


def star_relu_backward(x: Tensor, grad: Tensor, scale: Tensor, bias: Tensor):
    """d/dx = 2 s relu(x), d/ds = relu(x)^2, d/db = 1; the scalars' sums in the same pass."""
    r = torch.clamp_min(_opmath(x), 0.0)
    g = _opmath(grad)
    grad_x = (g * ((2.0 * _opmath(scale)) * r)).to(x.dtype)
    grad_scale = ((g * r) * r).sum().to(scale.dtype)
    return grad_x, grad_scale, g.sum().to(bias.dtype)


_STAR_RELU_FORWARD = kernel(star_relu_forward, "star_relu forward")
_STAR_RELU_BACKWARD = kernel(star_relu_backward, "star_relu backward")


class _StarReluFast(torch.autograd.Function):
    """s relu(x)^2 + b with scalar s and b: compiled kernels, saves x, s and b."""

    @staticmethod
    def forward(ctx, x, scale, bias):
        ctx.save_for_backward(x, scale, bias)
        if x.numel() == 0:
            return star_relu_forward(x, scale, bias)
        canonical = _canonical(x, (scale, bias))  # the scalars broadcast: x as one flat view
        return canonical.restore(_STAR_RELU_FORWARD(canonical.x, *canonical.params))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, scale, bias = ctx.saved_tensors
        if x.numel() == 0:
            return torch.zeros_like(x), torch.zeros_like(scale), torch.zeros_like(bias)
        canonical = _canonical(x, (scale, bias))
        grad_x, grad_scale, grad_bias = _STAR_RELU_BACKWARD(canonical.x, canonical.like_x(grad),
                                                            *canonical.params)
        _, need_scale, need_bias = ctx.needs_input_grad
        return (canonical.restore(grad_x), grad_scale.view(scale.shape) if need_scale else None,
                grad_bias.view(bias.shape) if need_bias else None)


def star_relu_fast(x: Tensor, scale: Tensor, bias: Tensor) -> Tensor:
    _check_floating(x, "star_relu")
    return _StarReluFast.apply(x, scale, bias)

"""nn.Module wrappers: one small class per parameter layout, the math comes in as a tensor function.

Keeping the function separate from the module is what lets one ACON module run the formula, the
memory-efficient Function or the compiled kernel without a class per implementation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import ActbenchError

Tensor = torch.Tensor


class ZooActivation(nn.Module):
    """Base of every actbench activation module: knows its zoo name and implementation."""

    takes_channels = False  # whether the constructor takes channels= (per-channel parameters)

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor]):
        super().__init__()
        self.activation_name = name
        self.impl = impl
        self.fn = fn

    def extra_repr(self) -> str:
        return f"{self.activation_name}, impl={self.impl}"


class Elementwise(ZooActivation):
    """A parameter-free activation y = fn(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)


class Swish(ZooActivation):
    """x * sigmoid(beta * x) with one trainable beta (Ramachandran et al. 2017)."""

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor], beta: float = 1.0):
        super().__init__(name, impl, fn)
        self.beta = nn.Parameter(torch.tensor(float(beta)))

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x, self.beta)


class PReLU(ZooActivation):
    """Leaky ReLU with a trainable slope: one per channel when `channels` is given, else one."""

    takes_channels = True

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor], channels: int | None = None,
                 init: float = 0.25):
        super().__init__(name, impl, fn)
        self.weight = nn.Parameter(torch.full((channels or 1,), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x, self.weight)


def _check_channels(module_name: str, expected: int, x: Tensor) -> None:
    if x.dim() < 2 or x.shape[1] != expected:
        raise ActbenchError(f"{module_name} was built for {expected} channels but got input of shape "
                            f"{tuple(x.shape)}; expected (N, {expected}, ...)")


class ACON(ZooActivation):
    """ACON-A / B / C of Ma et al. 2021, per-channel parameters on dim 1.

    All three run through the ACON-C function (p1 - p2) x sigmoid(beta (p1 - p2) x) + p2 x:
    ACON-A fixes p1 = 1, p2 = 0 (Swish with a learnable beta per channel), ACON-B fixes p1 = 1 and
    learns p2 (its p), ACON-C learns p1 and p2. Initialisation follows the authors' code: p1, p2 ~
    N(0, 1), beta = 1 (seed it with `seed=` or torch.manual_seed).
    """

    takes_channels = True

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor], channels: int,
                 variant: str, beta: float = 1.0):
        super().__init__(name, impl, fn)
        self.channels = channels
        self.variant = variant
        ones, zeros = torch.ones(channels), torch.zeros(channels)
        if variant == "c":
            self.p1 = nn.Parameter(torch.randn(channels))
        else:
            self.register_buffer("p1", ones)
        if variant == "a":
            self.register_buffer("p2", zeros)
        else:
            self.p2 = nn.Parameter(torch.randn(channels))
        self.beta = nn.Parameter(torch.full((channels,), float(beta)))

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(self.activation_name, self.channels, x)
        return self.fn(x, self.p1, self.p2, self.beta)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, channels={self.channels}"


class MetaACON(ZooActivation):
    """meta-ACON: ACON-C whose beta is predicted per sample and channel by a switching network.

    As in the authors' code: channel means -> 1x1 conv to max(r, C // r) -> BatchNorm -> 1x1 conv
    back to C -> BatchNorm -> sigmoid. Works on (N, C), (N, C, L) and (N, C, H, W); BatchNorm in
    training mode needs more than one sample per batch.
    """

    takes_channels = True

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor], channels: int, r: int = 16):
        super().__init__(name, impl, fn)
        self.channels = channels
        hidden = max(int(r), channels // int(r))
        self.p1 = nn.Parameter(torch.randn(channels))
        self.p2 = nn.Parameter(torch.randn(channels))
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)
        self.bn2 = nn.BatchNorm2d(channels)

    def switching_beta(self, x: Tensor) -> Tensor:
        """beta of shape (N, C, 1, ...) from the per-sample channel means of x."""
        n, c = x.shape[0], x.shape[1]
        means = x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x
        # the switching network runs in its own parameters' dtype (float32 under mixed precision)
        means = means.reshape(n, c, 1, 1).to(self.fc1.weight.dtype)
        beta = torch.sigmoid(self.bn2(self.fc2(self.bn1(self.fc1(means)))))
        return beta.reshape(n, c, *([1] * (x.dim() - 2)))

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(self.activation_name, self.channels, x)
        return self.fn(x, self.p1, self.p2, self.switching_beta(x))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, channels={self.channels}"

"""The activation zoo and its library API (re-exported from the top-level ``actbench`` package)."""

from __future__ import annotations

from torch import nn

from .registry import ActivationSpec, lookup, names, register
from .replace import replace_activations

__all__ = ["ActivationSpec", "activation", "activations", "implementations", "lookup", "register",
           "replace_activations"]


def activations() -> list[str]:
    """Names of every zoo and registered activation, in zoo order."""
    return names()


def implementations(name: str) -> list[str]:
    """Implementation names of one activation (name, import path or expression)."""
    return lookup(name).implementations


def activation(name: str, impl: str | None = None, channels: int | None = None, seed: int | None = None,
               **options: float) -> nn.Module:
    """A new activation module.

    `impl` defaults to the activation's fastest implementation in eager mode (PyTorch's native
    kernel where one exists, else the formula); `impl="memeff"` trades time for memory. `channels` is required by channel-wise activations
    (ACON family) and ignored by the others; `seed` makes random initialisation reproducible without
    touching the global RNG; `options` are the activation's own (e.g. ``negative_slope=0.2``).
    """
    return lookup(name).build(impl=impl, channels=channels, seed=seed, **options)

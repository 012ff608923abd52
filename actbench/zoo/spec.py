"""What actbench knows about one activation, and how it builds modules from it.

Separate from the registry (which looks specs up) so that the zoo's definitions can make specs
without importing the registry that loads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ActbenchError, UnknownNameError

Builder = Callable[..., nn.Module]

# Preference for the default implementation, fastest first in eager mode: PyTorch's own kernel,
# then the formula (forward + backward 1.3-2.2x faster than memeff on CPU, docs/performance.md),
# then memeff; compiled and fast are never the default (their first call compiles, which costs
# seconds per kernel: docs/activations.md).
DEFAULT_PREFERENCE = ("native", "formula", "memeff", "custom", "compiled", "fast")


@dataclass(frozen=True)
class TrainableParam:
    """A trainable parameter as shown to users: name, shape in words, initial value."""

    name: str
    shape: str
    init: str


@dataclass(frozen=True)
class ActivationSpec:
    """Everything actbench knows about one activation; `build` makes modules from it."""

    name: str
    family: str
    formula: str
    source: str
    builders: Mapping[str, Builder]
    # keyword options and their defaults; None: any option goes to a custom factory unchecked
    options: Mapping[str, float] | None = field(default_factory=dict)
    trainable: tuple[TrainableParam, ...] = ()
    channelwise: bool = False  # one parameter per channel: needs channels=, unless lazy_channels
    lazy_channels: bool = False  # channel-wise, and takes channels from its first input if not given
    aliases: tuple[str, ...] = ()
    pointwise: bool = True  # y depends on x elementwise only (meta-ACON's and gated ones' do not)
    # y = a * g(b) for the two halves (a, b) of the input's last dim: (..., 2h) -> (..., h)
    gated: bool = False
    # a tensor function for use inside expressions (parameter-free pointwise activations only)
    function: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def implementations(self) -> list[str]:
        return list(self.builders)

    @property
    def default_impl(self) -> str:
        return next(i for i in (*DEFAULT_PREFERENCE, *self.builders) if i in self.builders)

    def build(self, impl: str | None = None, channels: int | None = None, seed: int | None = None,
              **options) -> nn.Module:
        """A fresh module. Channel-wise ones take `channels`, or (zoo members) read it from their
        first input; the rest ignore it."""
        impl = self.default_impl if impl is None else impl.lower()
        if impl not in self.builders:
            raise UnknownNameError(f"implementation of {self.name}", impl, self.builders)
        if self.channelwise and channels is None and not self.lazy_channels:
            raise ActbenchError(f"{self.name} is channel-wise: pass channels= (the size of dim 1 "
                                "of its input, e.g. channels=64)")
        if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int)
                                     or channels < 1):
            raise ActbenchError(f"channels must be a positive integer, got {channels!r}")
        if self.options is None:
            return self._call_builder(impl, channels, seed, options)
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(f"{k} (default {v})" for k, v in self.options.items()) or "none"
            raise ActbenchError(f"{self.name} has no option '{unknown[0]}'; accepted options: {accepted}")
        for key, value in options.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ActbenchError(f"option {key} of {self.name} must be a number, got {value!r}")
        return self._call_builder(impl, channels, seed, {**self.options, **options})

    def _call_builder(self, impl: str, channels: int | None, seed: int | None, options: dict) -> nn.Module:
        if channels is None and self.lazy_channels:  # drawn at the first call, from `seed`
            return self.builders[impl](channels=None, seed=seed, **options)
        if seed is None:
            return self.builders[impl](channels=channels, **options)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.builders[impl](channels=channels, **options)

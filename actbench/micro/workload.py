"""What is timed for each pass, and the least memory traffic that pass needs.

- ``fwd``: ``y = act(x)`` with autograd recording, as in a training step (the graph and the
  output are freed when the next call replaces them).
- ``bwd``: ``torch.autograd.grad(y, inputs, g, retain_graph=True)`` with ``y`` built once,
  outside the timed region; ``inputs`` are x and the activation's trainable parameters.
- ``fwdbwd``: both, back to back.

Inputs are seeded standard-normal tensors (mean 0, std 1: the range where activations differ);
the upstream gradient ``g`` is another one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .failures import Unsupported
from .plan import Config

INPUT_SEED = 20190823  # the Mish paper's arXiv date: any fixed seed would do

# Tensors of N elements each pass must at least read or write, once each:
#   fwd: read x, write y; bwd: read g and one saved tensor, write dx; fwdbwd: both passes.
TRAFFIC_TENSORS = {"fwd": 2, "bwd": 3, "fwdbwd": 5}


def min_bytes(pass_: str, numel: int, element_size: int) -> int:
    """The fewest bytes a pass must move through memory (parameters are negligible)."""
    return TRAFFIC_TENSORS[pass_] * numel * element_size


def torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def make_input(numel: int, dtype: str, device: str, seed: int = INPUT_SEED) -> torch.Tensor:
    """A fixed standard-normal tensor, generated on the CPU so every device sees the same values."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(numel, generator=generator, dtype=torch.float32)
    return values.to(device=device, dtype=torch_dtype(dtype))


def build_module(config: Config) -> nn.Module:
    spec = config.activation.spec
    if spec.channelwise and len(config.shape) < 2:
        raise Unsupported(f"{spec.name} is channel-wise and needs an (N, C, ...) shape; "
                         f"{config.shape_text} cannot be laid out that way")
    channels = config.shape[1] if spec.channelwise else None
    module = spec.build(impl=config.impl, channels=channels, seed=0)
    return module.to(device=config.device, dtype=torch_dtype(config.dtype)).train()


@dataclass
class Workload:
    """The callable timed for one configuration, with what it needs kept alive."""

    config: Config
    module: nn.Module
    x: torch.Tensor
    call: Callable[[], object]
    element_size: int

    @property
    def min_bytes(self) -> int:
        return min_bytes(self.config.pass_, self.config.numel, self.element_size)


def grad_inputs(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    return [x, *(p for p in module.parameters() if p.requires_grad)]


def make_workload(config: Config, flat_x: torch.Tensor, flat_g: torch.Tensor) -> Workload:
    """Build the module and the timed callable; `flat_x`/`flat_g` are shared by the whole group."""
    module = build_module(config)
    x = flat_x.detach().view(config.shape).requires_grad_(True)
    g = flat_g.detach().view(config.shape)
    inputs = grad_inputs(module, x)

    if config.pass_ == "fwd":
        def call() -> object:
            return module(x)
    elif config.pass_ == "bwd":
        y = module(x)

        def call() -> object:
            return torch.autograd.grad(y, inputs, g, retain_graph=True)
    else:
        def call() -> object:
            return torch.autograd.grad(module(x), inputs, g)

    return Workload(config, module, x, call, flat_x.element_size())


def copy_call(flat_x: torch.Tensor) -> tuple[Callable[[], object], int]:
    """The roofline reference: copy_ into a preallocated buffer (reads N, writes N elements)."""
    destination = torch.empty_like(flat_x)

    def call() -> object:
        return destination.copy_(flat_x)

    return call, 2 * flat_x.numel() * flat_x.element_size()

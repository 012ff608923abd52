"""What is timed for each pass, and the least memory traffic that pass needs.

- ``fwd``: ``y = act(x)`` with autograd recording, as in a training step (the graph and the
  output are freed when the next call replaces them).
- ``bwd``: ``torch.autograd.grad(y, inputs, g, retain_graph=True)`` with ``y`` built once,
  outside the timed region; ``inputs`` are x and the activation's trainable parameters.
- ``fwdbwd``: both, back to back.

Inputs are seeded standard-normal tensors (mean 0, std 1: the range where activations differ);
the upstream gradient ``g`` is another one.

A configuration's shape is its input's. A gated activation (the GLU family) maps (..., 2h) to
(..., h): it reads the same input as the others at that shape, its output and ``g`` are half as
wide, and a shape whose last dim is odd is unsupported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod

import torch
from torch import nn

from .failures import Unsupported
from .plan import Config

INPUT_SEED = 20190823  # the Mish paper's arXiv date: any fixed seed would do

# Input-sized and output-sized tensors each pass must at least read or write, once each:
#   fwd: read x, write y; bwd: read g (output-sized) and one saved tensor (the input), write dx;
#   fwdbwd: both passes.
TRAFFIC_TENSORS = {"fwd": (1, 1), "bwd": (2, 1), "fwdbwd": (3, 2)}


def min_bytes(pass_: str, numel: int, element_size: int, out_numel: int | None = None) -> int:
    """The fewest bytes a pass must move through memory (parameters are negligible); the output
    has `out_numel` elements (half the input's for gated activations), else as many as the input."""
    inputs, outputs = TRAFFIC_TENSORS[pass_]
    return (inputs * numel + outputs * (numel if out_numel is None else out_numel)) * element_size


def output_shape(config: Config) -> tuple[int, ...]:
    """The activation's output shape for the configuration's input shape."""
    if not config.activation.spec.gated:
        return config.shape
    return (*config.shape[:-1], config.shape[-1] // 2)


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
    if spec.gated and config.shape[-1] % 2:
        raise Unsupported(f"{spec.name} is gated and splits the last dim of its input into two "
                          f"halves; {config.shape_text} has an odd last dim")
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
        return min_bytes(self.config.pass_, self.config.numel, self.element_size,
                         prod(output_shape(self.config)))


def grad_inputs(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    return [x, *(p for p in module.parameters() if p.requires_grad)]


def make_workload(config: Config, flat_x: torch.Tensor, flat_g: torch.Tensor) -> Workload:
    """Build the module and the timed callable; `flat_x`/`flat_g` are shared by the whole group."""
    module = build_module(config)
    x = flat_x.detach().view(config.shape).requires_grad_(True)
    shape = output_shape(config)
    g = flat_g.detach()[:prod(shape)].view(shape)
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

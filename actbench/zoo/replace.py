"""Swap the activations of an existing model in place, e.g. every ReLU of a ResNet for Mish."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from ..errors import ActbenchError
from .modules import ZooActivation
from .registry import lookup

# Hidden-layer activations. Sigmoid, Tanh and Hardsigmoid are left alone by default: in most models
# they are gates (squeeze-excitation, LSTM-style), not the activation under study.
DEFAULT_TARGETS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Softplus, nn.Hardswish, nn.Hardtanh, ZooActivation,
)


def output_channels(module: nn.Module) -> int | None:
    """The channel count a layer produces (dim 1 of its output), where the layer type says so."""
    if isinstance(module, (nn.modules.conv._ConvNd,)):
        return module.out_channels
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, (nn.modules.batchnorm._NormBase,)):
        return module.num_features
    if isinstance(module, nn.GroupNorm):
        return module.num_channels
    if isinstance(module, nn.LayerNorm) and module.normalized_shape:
        return module.normalized_shape[-1]
    if isinstance(module, nn.Embedding):
        return module.embedding_dim
    return None


def _walk(module: nn.Module, prefix: str = "") -> Iterator[tuple[nn.Module, str, nn.Module, str]]:
    """(parent, attribute, child, dotted path) in registration order, not entering activations.

    Every slot is visited, also a second slot holding the same module (named_children skips those).
    """
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        path = f"{prefix}{name}"
        yield module, name, child, path
        if not isinstance(child, ZooActivation):
            yield from _walk(child, f"{path}.")


def _reference_tensor(module: nn.Module) -> torch.Tensor | None:
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor
    return None


def replace_activations(model: nn.Module, name: str, impl: str | None = None,
                        targets: tuple[type[nn.Module], ...] = DEFAULT_TARGETS, seed: int | None = None,
                        **options: float) -> int:
    """Replace every activation module of `targets` type in `model` by `name`; return how many.

    Channel-wise activations (ACON family) get `channels` from the closest preceding layer that
    declares it (conv, linear, norm); others (prelu included) are built without it. New modules land on the model's device and dtype, in its
    training mode; a module shared by several parents stays shared. With `seed`, the k-th new
    module is initialised from seed + k: reproducible, and not the same values in every layer.
    """
    spec = lookup(name)
    spec.build(impl=impl, channels=1 if spec.channelwise else None, seed=0, **options)  # validate
    reference = _reference_tensor(model)
    replaced: dict[int, nn.Module] = {}
    channels: int | None = None
    count = 0
    for parent, attr, child, path in list(_walk(model)):
        produced = output_channels(child)
        if produced is not None:
            channels = produced
        if not isinstance(child, targets):
            continue
        if id(child) not in replaced:
            if spec.channelwise and channels is None:
                raise ActbenchError(f"cannot infer channels for '{path}' (no conv, linear or norm layer "
                                    f"before it); build {spec.name} with actbench.activation(..., "
                                    "channels=N) and assign it yourself")
            layer_seed = None if seed is None else seed + len(replaced)  # reproducible, not identical
            # Only channel-wise members get a channel count: a non-channel-wise PReLU keeps one
            # slope, which is right whatever the layout ((N, C, H, W), (N, L, D), after Flatten).
            module = spec.build(impl=impl, channels=channels if spec.channelwise else None,
                                seed=layer_seed, **options)
            if reference is not None:
                module = module.to(device=reference.device, dtype=reference.dtype)
            replaced[id(child)] = module.train(child.training)
        setattr(parent, attr, replaced[id(child)])
        count += 1
    return count

"""Swap the activations of an existing model in place, e.g. every ReLU of a ResNet for Mish."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.fx
from torch import nn

from ..errors import ActbenchError, ActbenchWarning
from .modules import ZooActivation
from .registry import lookup
from .spec import ActivationSpec

# Hidden-layer activations. Sigmoid, Tanh and Hardsigmoid are left alone by default: in most models
# they are gates (squeeze-excitation, LSTM-style), not the activation under study.
DEFAULT_TARGETS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Softplus, nn.Hardswish, nn.Hardtanh, ZooActivation,
)
GATES: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Tanh, nn.Hardsigmoid, nn.GLU)
GATE_NAMES = frozenset({"sigmoid", "tanh", "hardsigmoid"})

# Activation classes of other libraries that do not subclass torch's, by `module.qualname`
# (matched along the class's MRO, so their subclasses count too); no library is imported.
# torchvision builds its models from torch's own classes, which are matched by type.
_TIMM = {"Swish": "silu", "SiLU": "silu", "Mish": "mish", "Sigmoid": "sigmoid", "Tanh": "tanh",
         "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid", "HardMish": "hard_mish",
         "PReLU": "prelu", "GELU": "gelu", "GELUTanh": "gelu_tanh", "QuickGELU": "quick_gelu"}
_TIMM_ME = {"SwishMe": "silu", "MishMe": "mish", "HardSigmoidMe": "hardsigmoid",
            "HardSwishMe": "hardswish", "HardMishMe": "hard_mish"}
FOREIGN_ACTIVATIONS: dict[str, str] = {
    f"{package}.{module}.{cls}": zoo_name
    for package in ("timm.layers", "timm.models.layers")
    for module, table in (("activations", _TIMM), ("activations_me", _TIMM_ME))
    for cls, zoo_name in table.items()
}
_ACTIVATION_LIKE = re.compile(r"[Aa]ctivation|Act(?![a-z])|(^|_)act(_|$)")
LAST_DIM_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Embedding)  # their outputs: (..., C)


@dataclass(frozen=True)
class Replacement:
    """One entry of replace_activations' plan: a module found at `path` and what becomes of it.

    `new` is the activation it becomes, None when it is left alone (`note` says why). `channels`
    is None where the channel count is read from the data at the first forward (the ACON family)
    or not needed; `axis` is the channel dim of channel-wise activations (1, or -1 after a Linear).
    """

    path: str
    old: str
    new: str | None
    channels: int | None = None
    axis: int | None = None
    note: str = ""


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def foreign_activation(module: nn.Module) -> str | None:
    """The zoo name of another library's activation class (or a subclass of one), else None."""
    for cls in type(module).__mro__:
        name = FOREIGN_ACTIVATIONS.get(qualified_name(cls))
        if name is not None:
            return name
    return None


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


def _is_target(module: nn.Module, targets: tuple | None) -> bool:
    """Whether `module` is replaced: one of `targets` (types, or qualified class names), or by
    default a torch hidden-layer activation or another library's one that is not a gate."""
    if targets is None:
        name = foreign_activation(module)
        return isinstance(module, DEFAULT_TARGETS) or (name is not None and name not in GATE_NAMES)
    names = {qualified_name(cls) for cls in type(module).__mro__}
    return any(isinstance(module, t) if isinstance(t, type) else t in names for t in targets)


def _left_alone(module: nn.Module) -> str:
    """Why an activation-like module that is not replaced is worth a mention ("" if it is not)."""
    if isinstance(module, GATES) or foreign_activation(module) in GATE_NAMES:
        return "a gate by design, left alone unless named in targets="
    if not module._modules and _ACTIVATION_LIKE.search(type(module).__name__):
        return "unknown activation-like class, not replaced: name it in targets= to replace it"
    return ""


def _walk(module: nn.Module, stop: Callable[[nn.Module], bool],
          prefix: str = "") -> Iterator[tuple[nn.Module, str, nn.Module, str]]:
    """(parent, attribute, child, dotted path) in registration order, not entering activations.

    Every slot is visited, also a second slot holding the same module (named_children skips those).
    """
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        path = f"{prefix}{name}"
        yield module, name, child, path
        if not (isinstance(child, ZooActivation) or stop(child)):
            yield from _walk(child, stop, f"{path}.")


def _reference_tensor(module: nn.Module) -> torch.Tensor | None:
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor
    return None


def _channels_and_axis(spec: ActivationSpec, lazy: bool, previous: nn.Module | None, path: str,
                       channel_dim: int | None) -> tuple[int | None, int | None, str]:
    """(channels, axis, note) for a new module at `path`; `previous` is the last layer before it
    that declares its output channels."""
    if not spec.channelwise:
        return None, None, ""
    if lazy:
        if channel_dim is not None:
            return None, channel_dim, "channel_dim given"
        if isinstance(previous, LAST_DIM_LAYERS):
            return None, -1, f"after {type(previous).__name__}: channels on the last dim"
        return None, 1, ""
    channels = None if previous is None else output_channels(previous)
    if channels is None:
        raise ActbenchError(f"cannot infer channels for '{path}' (no conv, linear or norm layer "
                            f"before it); build {spec.name} with actbench.activation(..., "
                            "channels=N) and assign it yourself")
    return channels, 1, f"channels of the preceding {type(previous).__name__}"


def _plan(model: nn.Module, spec: ActivationSpec, lazy: bool, targets: tuple | None,
          channel_dim: int | None) -> tuple[list[Replacement], list[tuple]]:
    """Every activation-like module found, and the (parent, attribute, child, record) slots to fill."""
    records: list[Replacement] = []
    slots: list[tuple] = []
    previous: nn.Module | None = None
    for parent, attr, child, path in list(_walk(model, lambda m: _is_target(m, targets))):
        if output_channels(child) is not None:
            previous = child
        old = qualified_name(type(child))
        if not _is_target(child, targets):
            reason = _left_alone(child)
            if reason:
                records.append(Replacement(path, old, None, note=reason))
            continue
        channels, axis, note = _channels_and_axis(spec, lazy, previous, path, channel_dim)
        records.append(Replacement(path, old, spec.name, channels, axis, note))
        slots.append((parent, attr, child, records[-1]))
    return records, slots


def _build(spec: ActivationSpec, impl: str | None, lazy: bool, record: Replacement,
           seed: int | None, options: dict) -> nn.Module:
    if not lazy:
        return spec.build(impl=impl, channels=record.channels, seed=seed, **options)
    impl = spec.default_impl if impl is None else impl.lower()
    axis = None if record.axis == 1 else record.axis
    return spec.builders[impl](channels=None, **{**spec.options, **options}, seed=seed,
                               channel_dim=axis)


def replace_activations(model: nn.Module, name: str, impl: str | None = None,
                        targets: tuple[type[nn.Module] | str, ...] | None = None,
                        seed: int | None = None, dry_run: bool = False,
                        channel_dim: int | None = None, **options: float) -> int | list[Replacement]:
    """Replace every hidden-layer activation module in `model` by `name`; return how many.

    By default the targets are torch's activation classes (DEFAULT_TARGETS, subclasses included)
    and other libraries' ones known by qualified name (FOREIGN_ACTIVATIONS); gates (Sigmoid, Tanh,
    Hardsigmoid, GLU) are left alone. A gated activation (the GLU family: (..., 2h) -> (..., h))
    is refused: it would change the widths the model's layers expect. `targets` replaces that choice: classes, or qualified class
    names ("timm.layers.activations.Sigmoid"). With `dry_run`, nothing changes: the plan comes
    back, a Replacement per module found (left-alone ones included). When nothing is replaced, or
    an unknown class that looks like an activation is met, an ActbenchWarning says so.

    Channel-wise activations (ACON family) read their channel count from the data at the first
    forward (build optimisers after it); the channels are on dim 1, or on the last dim right after
    a Linear or Embedding (tokens (N, L, D), channels-last (N, H, W, C)), or on `channel_dim`.
    Others (prelu included) get one parameter set. New modules land on the model's device and
    dtype, in its training mode; a module shared by several parents stays shared. With `seed`,
    the k-th new module is initialised from seed + k: reproducible, and not the same in every layer.
    """
    spec = lookup(name)
    if spec.gated:
        raise ActbenchError(f"{spec.name} is gated: it maps (..., 2h) to (..., h), so it cannot take "
                            "the place of an activation that keeps the width; build it with "
                            f"actbench.activation('{spec.name}') after a layer twice as wide")
    probe = spec.build(impl=impl, channels=1 if spec.channelwise else None, seed=0, **options)
    lazy = spec.channelwise and spec.options is not None and getattr(probe, "lazy_class", None) is not None
    records, slots = _plan(model, spec, lazy, None if targets is None else tuple(targets), channel_dim)
    records += functional_calls(model, None if targets is None else tuple(targets)) or []
    if dry_run:
        return records
    reference = _reference_tensor(model)
    built: dict[int, nn.Module] = {}
    for parent, attr, child, record in slots:
        if id(child) not in built:
            layer_seed = None if seed is None else seed + len(built)  # reproducible, not identical
            module = _build(spec, impl, lazy, record, layer_seed, options)
            if reference is not None:
                module = module.to(device=reference.device, dtype=reference.dtype)
            built[id(child)] = module.train(child.training)
        setattr(parent, attr, built[id(child)])
    _warn_about(model, spec, records, len(slots))
    return len(slots)


# Activation functions called in a forward rather than held as modules (found by torch.fx):
# they are named in the plan and the warning, never replaced.
FUNCTIONAL_NAMES = ("relu", "relu_", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu",
                    "mish", "hardswish", "softplus", "prelu", "rrelu", "hardtanh")
FUNCTIONAL_NOTE = "a functional call in forward: not a module, so not replaced"


class _ActivationsAsLeaves(torch.fx.Tracer):
    """Traces into a model's own modules but not into activation modules (torch's, other
    libraries', the zoo's): the functions an activation module calls are its own business."""

    def __init__(self, targets: tuple | None):
        super().__init__()
        self.targets = targets

    def is_leaf_module(self, module: nn.Module, qualified: str) -> bool:
        return (super().is_leaf_module(module, qualified) or _is_target(module, self.targets)
                or isinstance(module, ZooActivation) or bool(_left_alone(module)))


def functional_calls(model: nn.Module, targets: tuple | None = None) -> list[Replacement] | None:
    """Activation functions `model` calls in its forward (F.relu(x), torch.relu(x), x.relu()),
    each with the path of the module whose forward calls it; None where torch.fx cannot trace the
    model (data-dependent control flow, say)."""
    import torch.nn.functional as F

    functions: dict = {}
    for owner, prefix in ((F, "torch.nn.functional"), (torch, "torch")):
        for name in FUNCTIONAL_NAMES:
            if hasattr(owner, name):
                functions.setdefault(getattr(owner, name), f"{prefix}.{name}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = _ActivationsAsLeaves(targets).trace(model)
    except Exception:  # noqa: BLE001 - untraceable models are common; the plan says so
        return None
    found = []
    for node in graph.nodes:
        if node.op == "call_function" and node.target in functions:
            old = functions[node.target]
        elif node.op == "call_method" and node.target in FUNCTIONAL_NAMES:
            old = f"torch.Tensor.{node.target}"
        else:
            continue
        stack = list((node.meta.get("nn_module_stack") or {}).values())
        path = stack[-1][0] if stack and isinstance(stack[-1], tuple) else ""
        found.append(Replacement(path, old, None, note=FUNCTIONAL_NOTE))
    return found


def _warn_about(model: nn.Module, spec: ActivationSpec, records: list[Replacement], count: int) -> None:
    left = [r for r in records if r.new is None]
    unknown = [r for r in left if r.note.startswith("unknown") or r.note == FUNCTIONAL_NOTE]
    if count and not unknown:
        return
    shown = [f"'{r.path or type(model).__name__}' ({r.old}: {r.note})"
             for r in (left if not count else unknown)][:6]
    more = f" and {len(left) - len(shown)} more" if not count and len(left) > len(shown) else ""
    head = (f"replace_activations replaced nothing in {type(model).__name__} by {spec.name}"
            if not count else f"replace_activations replaced {count} module(s) by {spec.name}")
    detail = f"; left alone: {', '.join(shown)}{more}" if shown else "; no activation module found"
    warnings.warn(ActbenchWarning(head + detail), stacklevel=3)

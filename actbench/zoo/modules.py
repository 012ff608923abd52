"""nn.Module wrappers: one small class per parameter layout, the math comes in as a tensor function.

Keeping the function separate from the module is what lets one ACON module run the formula, the
memory-efficient Function or the compiled kernel without a class per implementation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy

from ..errors import ActbenchError

Tensor = torch.Tensor


class ZooActivation(nn.Module):
    """Base of every actbench activation module: knows its zoo name and implementation."""

    takes_channels = False  # whether the constructor takes channels= (per-channel parameters)
    gated = False  # True: (..., 2h) -> (..., h), the input's last dim split into value and gate
    lazy_class: type[nn.Module] | None = None  # built instead when channels is None (from the data)

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


class StarReLU(ZooActivation):
    """s * relu(x)^2 + b with trainable scalars s and b (Yu et al. 2022, MetaFormer Baselines)."""

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor], scale: float = 1.0,
                 bias: float = 0.0):
        super().__init__(name, impl, fn)
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.bias = nn.Parameter(torch.tensor(float(bias)))

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x, self.scale, self.bias)


def check_gated_width(name: str, x: Tensor) -> None:
    """A gated activation halves the last dim, so that dim must exist and be even."""
    if x.dim() == 0 or x.shape[-1] % 2:
        raise ActbenchError(f"{name} is gated: it splits the last dim of its input into a value "
                            f"half and a gate half, so that dim must be even; got input of shape "
                            f"{tuple(x.shape)}")


class Gated(ZooActivation):
    """y = a * g(b) for the halves of the last dim, (..., 2h) -> (..., h) (Shazeer 2020).

    a = x[..., :h] is the value and b = x[..., h:] the gate, as in torch.nn.functional.glu;
    `gate_first=1` reads the gate from the first half instead.
    """

    gated = True

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor], gate_first: float = 0):
        super().__init__(name, impl, fn)
        if isinstance(gate_first, bool) or gate_first not in (0, 1):
            raise ActbenchError(f"option gate_first of {name} must be 0 (value first, as "
                                f"torch.nn.functional.glu) or 1 (gate first), got {gate_first!r}")
        if gate_first and impl == "native":
            raise ActbenchError(f"{name}'s native implementation (torch.nn.functional.glu) takes the "
                                "value first; with gate_first=1 use impl formula, memeff, compiled "
                                "or fast")
        self.gate_first = bool(gate_first)

    def forward(self, x: Tensor) -> Tensor:
        check_gated_width(self.activation_name, x)
        return self.fn(x, gate_first=self.gate_first)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", gate_first=1" if self.gate_first else "")


class PReLU(ZooActivation):
    """Leaky ReLU with a trainable slope: one per channel when `channels` is given, else one."""

    takes_channels = True

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor], channels: int | None = None,
                 init: float = 0.25):
        super().__init__(name, impl, fn)
        self.weight = nn.Parameter(torch.full((channels or 1,), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x, self.weight)


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Random initialisation from seed (global RNG untouched), or from the global RNG if None."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def channel_axis(module_name: str, channel_dim: int | None, x: Tensor) -> int:
    """The dim of x holding the channels: `channel_dim` (negative counts from the end), else 1."""
    if x.dim() < 2:
        raise ActbenchError(f"{module_name} needs a batch and a channel dim, got input of shape "
                            f"{tuple(x.shape)}")
    if channel_dim is None:
        return 1
    if not -x.dim() <= channel_dim < x.dim() or channel_dim % x.dim() == 0:
        raise ActbenchError(f"{module_name}: channel_dim={channel_dim} is not a channel dim of input "
                            f"of shape {tuple(x.shape)} (dim 0 is the batch)")
    return channel_dim % x.dim()


def _check_channels(module_name: str, expected: int, x: Tensor, channel_dim: int | None = None) -> int:
    axis = channel_axis(module_name, channel_dim, x)
    if x.shape[axis] != expected:
        where = "(N, C, ...)" if axis == 1 else f"dim {axis} of size {expected}"
        raise ActbenchError(f"{module_name} was built for {expected} channels but got input of shape "
                            f"{tuple(x.shape)}; expected {where}")
    return axis


def _channel_vectors(state_dict: dict, prefix: str, names: tuple[str, ...]) -> None:
    """Per-channel tensors stored as (1, C, 1, 1), as in the ACON authors' code, become (C,)."""
    for name in names:
        value = state_dict.get(prefix + name)
        if isinstance(value, Tensor) and value.dim() > 1 and value.numel() == value.shape[1]:
            state_dict[prefix + name] = value.reshape(-1)


_ACON_LEARNS = {"a": ("beta",), "b": ("p2", "beta"), "c": ("p1", "p2", "beta")}


def _acon_initial(variant: str, channels: int, beta: float) -> dict[str, Tensor]:
    """p1, p2 ~ N(0, 1) where learnt (p1 first, as in the authors' code), else 1 and 0; beta."""
    p1 = torch.randn(channels) if variant == "c" else torch.ones(channels)
    p2 = torch.zeros(channels) if variant == "a" else torch.randn(channels)
    return {"p1": p1, "p2": p2, "beta": torch.full((channels,), float(beta))}


class ACON(ZooActivation):
    """ACON-A / B / C of Ma et al. 2021, one parameter per channel.

    All three run through the ACON-C function (p1 - p2) x sigmoid(beta (p1 - p2) x) + p2 x:
    ACON-A fixes p1 = 1, p2 = 0 (Swish with a learnable beta per channel), ACON-B fixes p1 = 1 and
    learns p2 (its p), ACON-C learns p1 and p2. Initialisation follows the authors' code: p1, p2 ~
    N(0, 1), beta = 1 (seed it with `seed=` or torch.manual_seed). The channels are on dim 1, or
    on `channel_dim` (e.g. -1 for (N, L, D) tokens). The authors' state dicts (parameters of shape
    (1, C, 1, 1)) load as well as this module's own.
    """

    takes_channels = True

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor], channels: int | None,
                 variant: str, beta: float = 1.0, channel_dim: int | None = None):
        super().__init__(name, impl, fn)
        self.channels = channels
        self.variant = variant
        self.channel_dim = channel_dim
        self.init_beta = float(beta)
        initial = _acon_initial(variant, channels, beta) if channels is not None else {}
        for key in ("p1", "p2", "beta"):
            learnt = key in _ACON_LEARNS[variant]
            value = initial.get(key)
            if learnt:
                self.register_parameter(key, UninitializedParameter() if value is None
                                        else nn.Parameter(value))
            else:
                self.register_buffer(key, UninitializedBuffer() if value is None else value)

    def forward(self, x: Tensor) -> Tensor:
        axis = _check_channels(self.activation_name, self.channels, x, self.channel_dim)
        params = (self.p1, self.p2, self.beta)
        if axis == 1:
            return self.fn(x, *params)
        if axis == x.dim() - 1:  # (..., C): a (M, C) view, channels on dim 1
            return self.fn(x.reshape(-1, x.shape[-1]), *params).reshape(x.shape)
        return self.fn(x.movedim(axis, 1), *params).movedim(1, axis)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _channel_vectors(state_dict, prefix, ("p1", "p2", "beta"))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.channels is None and not is_lazy(self.p1):
            self.channels = self.p1.shape[0]

    def extra_repr(self) -> str:
        axis = "" if self.channel_dim is None else f", channel_dim={self.channel_dim}"
        return f"{super().extra_repr()}, channels={self.channels}{axis}"


class LazyACON(LazyModuleMixin, ACON):
    """ACON whose channel count is read from its first input (channels on dim 1 or `channel_dim`).

    Its parameters are materialised on the first call, drawn from `seed` if given; it then becomes
    an ACON. Build optimisers after one forward (as with torch's Lazy modules).
    """

    cls_to_become = ACON

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor], variant: str,
                 beta: float = 1.0, channel_dim: int | None = None, seed: int | None = None,
                 channels: None = None):
        super().__init__(name, impl, fn, None, variant, beta, channel_dim)
        self.init_seed = seed

    def initialize_parameters(self, x: Tensor) -> None:
        if self.has_uninitialized_params():
            self.materialize(x.shape[channel_axis(self.activation_name, self.channel_dim, x)])
        self.channels = self.p1.shape[0]

    def materialize(self, channels: int) -> None:
        with _seeded(self.init_seed):
            initial = _acon_initial(self.variant, channels, self.init_beta)
        with torch.no_grad():
            for key, value in initial.items():
                tensor = getattr(self, key)
                if is_lazy(tensor):
                    tensor.materialize((channels,))
                    tensor.copy_(value)
        self.channels = channels


ACON.lazy_class = LazyACON


class MetaACON(ZooActivation):
    """meta-ACON: ACON-C whose beta is predicted per sample and channel by a switching network.

    As in the authors' code: channel means -> 1x1 conv to max(r, C // r) -> BatchNorm -> 1x1 conv
    back to C -> BatchNorm -> sigmoid. Works on (N, C), (N, C, L) and (N, C, H, W), or with the
    channels on `channel_dim`; BatchNorm in training mode needs more than one sample per batch.
    The authors' state dicts (p1, p2 of shape (1, C, 1, 1), same submodule names) load as well.
    """

    takes_channels = True

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor], channels: int | None,
                 r: int = 16, channel_dim: int | None = None):
        super().__init__(name, impl, fn)
        self.channels = channels
        self.r = int(r)
        self.channel_dim = channel_dim
        if channels is None:
            self.p1, self.p2 = UninitializedParameter(), UninitializedParameter()
            return
        hidden = max(self.r, channels // self.r)
        self.p1 = nn.Parameter(torch.randn(channels))
        self.p2 = nn.Parameter(torch.randn(channels))
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)
        self.bn2 = nn.BatchNorm2d(channels)

    def switching_beta(self, x: Tensor) -> Tensor:
        """beta of shape (N, C, 1, ...) from the per-sample channel means of x (channels on dim 1)."""
        n, c = x.shape[0], x.shape[1]
        means = x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x
        # the switching network runs in its own parameters' dtype (float32 under mixed precision)
        means = means.reshape(n, c, 1, 1).to(self.fc1.weight.dtype)
        beta = torch.sigmoid(self.bn2(self.fc2(self.bn1(self.fc1(means)))))
        return beta.reshape(n, c, *([1] * (x.dim() - 2)))

    def forward(self, x: Tensor) -> Tensor:
        axis = _check_channels(self.activation_name, self.channels, x, self.channel_dim)
        moved = x if axis == 1 else x.movedim(axis, 1)
        y = self.fn(moved, self.p1, self.p2, self.switching_beta(moved))
        return y if axis == 1 else y.movedim(1, axis)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _channel_vectors(state_dict, prefix, ("p1", "p2"))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        axis = "" if self.channel_dim is None else f", channel_dim={self.channel_dim}"
        return f"{super().extra_repr()}, channels={self.channels}{axis}"


class LazyMetaACON(LazyModuleMixin, MetaACON):
    """meta-ACON whose channel count (and so its switching network) comes from its first input;
    it then becomes a MetaACON. Build optimisers after one forward."""

    cls_to_become = MetaACON

    def __init__(self, name: str, impl: str, fn: Callable[..., Tensor], r: int = 16,
                 channel_dim: int | None = None, seed: int | None = None, channels: None = None):
        super().__init__(name, impl, fn, None, r, channel_dim)
        self.init_seed = seed

    def initialize_parameters(self, x: Tensor) -> None:
        if self.has_uninitialized_params():
            self.materialize(x.shape[channel_axis(self.activation_name, self.channel_dim, x)])

    def materialize(self, channels: int) -> None:
        """p1, p2 and the switching network for `channels`, on p1's device and dtype, drawn as an
        eagerly built MetaACON of that size would be."""
        with _seeded(self.init_seed):
            built = MetaACON(self.activation_name, self.impl, self.fn, channels, self.r)
        built = built.to(device=self.p1.device, dtype=self.p1.dtype).train(self.training)
        with torch.no_grad():
            for key in ("p1", "p2"):
                getattr(self, key).materialize((channels,))
                getattr(self, key).copy_(getattr(built, key))
        for key in ("fc1", "bn1", "fc2", "bn2"):
            setattr(self, key, getattr(built, key))
        self.channels = channels

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        stored = state_dict.get(prefix + "p1")
        if self.has_uninitialized_params() and isinstance(stored, Tensor) and not is_lazy(stored):
            self.materialize(stored.numel())  # the switching network must exist to receive its keys
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


MetaACON.lazy_class = LazyMetaACON

"""Models for activation comparisons; every one takes an activation factory, never a name.

Interface: ``MODEL_OPTIONS[name]`` (the `model:` keys each model accepts and their defaults),
``build_model(name, act, input_shape, num_classes, **options) -> nn.Module`` where
``act(channels: int) -> nn.Module`` builds one activation layer; the facts suite validation checks
against: ``INITIALISERS``, ``CHOICES`` (string options), ``RESNET_DEPTHS``, ``INPUT_DIMS``.

Every activation layer is built by calling ``act(channels)`` with the size of dim 1 of the tensor it
acts on ((N, C), (N, C, L) or (N, C, H, W); gpt's see its tokens as (N * L, C)), so channel-wise
activations (ACON family) work in every model. Input shapes are given without the batch dimension:
(C, H, W) images, (C, L) signals, (L,) token ids (gpt, whose num_classes is the vocabulary).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ActbenchError, UnknownNameError
from ..zoo.modules import ZooActivation
from . import gpt

ActFactory = Callable[[int], nn.Module]  # act(channels) -> a fresh activation module

COMMON_OPTIONS: dict[str, object] = {"init": "default", "init_std": 0.02}

# model name -> accepted `model:` options (besides name and COMMON_OPTIONS) and their defaults
MODEL_OPTIONS: dict[str, dict[str, object]] = {
    "mlp": {"depth": 3, "width": 256, "dropout": 0.0, "batchnorm": False},
    "cnn": {"conv_layers": 2, "width": 32, "hidden": 128, "dropout": 0.0, "batchnorm": True},
    "deep_fc": {"depth": 10, "width": 500, "dropout": 0.25, "stem_channels": 32},
    # shortcut "B": 1x1 conv projection where the shape changes; "A": zero-padded identity (He et al.'s
    # CIFAR models, the published 0.27M parameters of ResNet-20)
    "resnet": {"depth": 20, "version": "v1", "width_mult": 1.0, "shortcut": "B"},
    "cnn1d": {"depth": 3, "width": 32, "hidden": 256, "dropout": 0.0, "batchnorm": False},
    # a small decoder-only transformer: trains in minutes on two CPU cores (gpt.py)
    "gpt": {"depth": 2, "width": 128, "heads": 4, "mlp_ratio": 4.0, "dropout": 0.0,
            "positions": "learned"},
}

INITIALISERS = ("default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform",
                "orthogonal", "normal")

# 6n + 2 with n = 3, 5, 7, 9, 18: the CIFAR ResNets of He et al. 2016, Table 6
RESNET_DEPTHS = (20, 32, 44, 56, 110)

# dimensions of one input sample each model needs: 3 for images (C, H, W), 2 for signals (C, L),
# 1 for token ids (L,); mlp flattens anything
INPUT_DIMS: dict[str, int] = {"cnn": 3, "deep_fc": 3, "resnet": 3, "cnn1d": 2, "gpt": 1}
# the models that take token ids and give a prediction per position (a sample is (L,))
SEQUENCE_MODELS = tuple(name for name, dims in INPUT_DIMS.items() if dims == 1)
# the models built for gated activations ((..., 2h) -> (..., h)): their MLP widens the layer before
GATED_MODELS = ("gpt",)

# the choices of the string options
CHOICES: dict[str, tuple[str, ...]] = {"version": ("v1", "v2"), "shortcut": ("A", "B"),
                                       "positions": gpt.POSITIONS}

# options that must be positive integers
_POSITIVE_INTS = ("depth", "width", "hidden", "conv_layers", "stem_channels", "heads")


# --------------------------------------------------------------------------- public API


def build_model(name: str, act: ActFactory, input_shape: tuple[int, ...], num_classes: int,
                **options) -> nn.Module:
    """A freshly initialised model `name` whose every activation layer comes from `act(channels)`.

    `options` are the model's MODEL_OPTIONS keys plus COMMON_OPTIONS (``init``, ``init_std``);
    missing ones take their defaults. Everything is checked before any layer is built.
    """
    key = str(name).lower()
    if key not in MODEL_OPTIONS:
        raise UnknownNameError("model", str(name), MODEL_OPTIONS)
    shape = _checked_shape(input_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ActbenchError(f"num_classes must be a positive integer, got {num_classes!r}")
    settings = _checked_options(key, options)
    init, init_std = settings.pop("init"), settings.pop("init_std")

    made: list[nn.Module] = []

    def recording_act(channels: int) -> nn.Module:
        module = act(channels)
        if not isinstance(module, nn.Module):
            raise ActbenchError(f"the activation factory returned {type(module).__name__} for "
                                f"channels={channels}; expected an nn.Module")
        made.append(module)
        return module

    model = _BUILDERS[key](recording_act, shape, num_classes, **settings)
    initialise(model, init, init_std, skip=made)
    return model


def initialise(model: nn.Module, scheme: str, std: float = 0.02, *,
               skip: Iterable[nn.Module] = ()) -> None:
    """Re-initialise every conv and linear weight of `model` in place and zero their biases.

    ``default`` leaves the model's own initialisation (PyTorch's; GPT-2's for gpt); ``kaiming_*``
    use fan_in and the ReLU gain (He et al. 2015), ``xavier_*`` and ``orthogonal`` gain 1,
    ``normal`` N(0, std^2). Norm layers and embeddings are left alone, and so is everything inside
    activation modules (zoo activations and the modules in `skip`): ACON's p1/p2/beta and
    meta-ACON's switching network belong to the activation under test.
    """
    scheme = _checked_init(scheme, std)
    if scheme == "default":
        return
    skipped = {id(module) for module in skip}
    for layer in _weight_layers(model, skipped):
        _INIT_FUNCTIONS[scheme](layer.weight, std)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (each shared parameter counted once); buffers not included."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------- validation


def _checked_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ActbenchError(f"input shape must be a non-empty tuple of positive integers (without the "
                            f"batch dimension, e.g. (3, 32, 32)), got {input_shape!r}")
    return shape


def _checked_options(model: str, options: dict[str, object]) -> dict[str, object]:
    """Defaults merged with `options`, each value checked against its default's type and range."""
    defaults = {**MODEL_OPTIONS[model], **COMMON_OPTIONS}
    for key in options:
        if key not in defaults:
            raise UnknownNameError(f"{model} option", key, defaults)
    settings = {**defaults, **options}
    for key, value in settings.items():
        if key not in COMMON_OPTIONS:
            settings[key] = _checked_value(model, key, value, defaults[key])
    if model == "resnet" and settings["depth"] not in RESNET_DEPTHS:
        raise ActbenchError(f"resnet depth must be 6n+2, one of {', '.join(map(str, RESNET_DEPTHS))}; "
                            f"got {settings['depth']}")
    if model == "gpt":
        problem = gpt.option_problem(settings["width"], settings["heads"], settings["positions"],
                                     settings["mlp_ratio"])
        if problem is not None:
            key, expected, value = problem
            raise ActbenchError(f"gpt option {key} must be {expected}, got {value}")
    settings["init"] = _checked_init(settings["init"], settings["init_std"])
    return settings


def _checked_value(model: str, key: str, value: object, default: object) -> object:
    what = f"{model} option {key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ActbenchError(f"{what} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ActbenchError(f"{what} must be an integer, got {value!r}")
        if key in _POSITIVE_INTS and value < 1:
            raise ActbenchError(f"{what} must be at least 1, got {value}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ActbenchError(f"{what} must be a number, got {value!r}")
        value = float(value)
        if key == "dropout" and not 0.0 <= value < 1.0:
            raise ActbenchError(f"{what} must be in [0, 1), got {value}")
        if key in ("width_mult", "mlp_ratio") and value <= 0.0:
            raise ActbenchError(f"{what} must be positive, got {value}")
    elif isinstance(default, str):
        choices = CHOICES[key]
        if not isinstance(value, str):
            raise ActbenchError(f"{what} must be one of {', '.join(choices)}; got {value!r}")
        matched = [c for c in choices if c.lower() == value.lower()]
        if not matched:
            raise UnknownNameError(f"{model} {key}", value, choices)
        value = matched[0]
    return value


def _checked_init(scheme: str, std: float) -> str:
    if not isinstance(scheme, str) or scheme.lower() not in INITIALISERS:
        raise UnknownNameError("initialiser", str(scheme), INITIALISERS)
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not (std > 0 and math.isfinite(std)):
        raise ActbenchError(f"init_std must be a positive number, got {std!r}")
    return scheme.lower()


def _require_dims(model: str, shape: tuple[int, ...], layout: str) -> None:
    if len(shape) != INPUT_DIMS[model]:
        raise ActbenchError(f"{model} takes input of shape {layout}; got input shape {shape}")


# --------------------------------------------------------------------------- initialisation


def _weight_layers(module: nn.Module, skipped: set[int]) -> Iterator[nn.Module]:
    """Conv and linear layers of `module`, not entering activation modules."""
    for child in module.children():
        if isinstance(child, ZooActivation) or id(child) in skipped:
            continue
        if isinstance(child, (nn.modules.conv._ConvNd, nn.Linear)):
            yield child
        yield from _weight_layers(child, skipped)


_INIT_FUNCTIONS: dict[str, Callable[[torch.Tensor, float], object]] = {
    "kaiming_normal": lambda w, std: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"),
    "kaiming_uniform": lambda w, std: nn.init.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu"),
    "xavier_normal": lambda w, std: nn.init.xavier_normal_(w),
    "xavier_uniform": lambda w, std: nn.init.xavier_uniform_(w),
    "orthogonal": lambda w, std: nn.init.orthogonal_(w),
    "normal": lambda w, std: nn.init.normal_(w, mean=0.0, std=std),
}


# --------------------------------------------------------------------------- models


def _dropout(p: float) -> list[nn.Module]:
    return [nn.Dropout(p)] if p > 0 else []


def _mlp(act: ActFactory, shape: tuple[int, ...], classes: int, *, depth: int, width: int,
         dropout: float, batchnorm: bool) -> nn.Module:
    """Flatten, then `depth` x [Linear(width) (BatchNorm1d) act (Dropout)], then Linear(classes)."""
    layers: list[nn.Module] = [nn.Flatten()]
    features = math.prod(shape)
    for _ in range(depth):
        # a bias in front of BatchNorm is cancelled by its mean subtraction
        layers.append(nn.Linear(features, width, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers += [act(width), *_dropout(dropout)]
        features = width
    layers.append(nn.Linear(features, classes))
    return nn.Sequential(*layers)


def _cnn(act: ActFactory, shape: tuple[int, ...], classes: int, *, conv_layers: int, width: int,
         hidden: int, dropout: float, batchnorm: bool) -> nn.Module:
    """The small conv net of the Mish paper's MNIST/CIFAR runs.

    `conv_layers` x [Conv3x3 (BatchNorm2d) act MaxPool2] with width, 2 width, 4 width... channels,
    then flatten (the full feature map, as in the paper; the input size is known when building),
    Linear(hidden) act (Dropout), Linear(classes).
    """
    _require_dims("cnn", shape, "(channels, height, width)")
    channels, height, width_px = shape
    if min(height, width_px) < 2 ** conv_layers:
        raise ActbenchError(f"cnn with {conv_layers} conv layers needs height and width of at least "
                            f"{2 ** conv_layers} (each layer halves them); got input shape {shape}")
    layers: list[nn.Module] = []
    for i in range(conv_layers):
        out = width * 2 ** i
        layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm2d(out))
        layers += [act(out), nn.MaxPool2d(2)]
        channels, height, width_px = out, height // 2, width_px // 2
    layers += [nn.Flatten(), nn.Linear(channels * height * width_px, hidden), act(hidden),
               *_dropout(dropout), nn.Linear(hidden, classes)]
    return nn.Sequential(*layers)


def _deep_fc(act: ActFactory, shape: tuple[int, ...], classes: int, *, depth: int, width: int,
             dropout: float, stem_channels: int) -> nn.Module:
    """The Mish paper's depth test: a conv stem, then `depth` plain fully connected blocks.

    Conv3x3(stem_channels) act MaxPool2, flatten, `depth` x [Linear(width) BatchNorm1d act Dropout]
    with no skip connections, Linear(classes).
    """
    _require_dims("deep_fc", shape, "(channels, height, width)")
    channels, height, width_px = shape
    if min(height, width_px) < 2:
        raise ActbenchError(f"deep_fc needs height and width of at least 2 (its stem halves them); "
                            f"got input shape {shape}")
    layers: list[nn.Module] = [nn.Conv2d(channels, stem_channels, 3, padding=1), act(stem_channels),
                               nn.MaxPool2d(2), nn.Flatten()]
    features = stem_channels * (height // 2) * (width_px // 2)
    for _ in range(depth):
        layers += [nn.Linear(features, width, bias=False), nn.BatchNorm1d(width), act(width),
                   *_dropout(dropout)]
        features = width
    layers.append(nn.Linear(features, classes))
    return nn.Sequential(*layers)


def _cnn1d(act: ActFactory, shape: tuple[int, ...], classes: int, *, depth: int, width: int,
           hidden: int, dropout: float, batchnorm: bool) -> nn.Module:
    """A 1-D conv net in the spirit of the MNIST-1D paper's CNN (Greydanus 2020; that one is
    smaller: 3 convs of 25 channels, no hidden layer), for (channels, length) input.

    `depth` x [Conv1d(width, kernel 5, padding 2, stride 2) (BatchNorm1d) act], each halving the
    length (40 -> 20 -> 10 -> 5), flatten, Linear(hidden) act (Dropout), Linear(classes).
    """
    _require_dims("cnn1d", shape, "(channels, length), e.g. (1, 40)")
    channels, length = shape
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers.append(nn.Conv1d(channels, width, 5, stride=2, padding=2, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(act(width))
        channels, length = width, (length + 1) // 2
    layers += [nn.Flatten(), nn.Linear(channels * length, hidden), act(hidden), *_dropout(dropout),
               nn.Linear(hidden, classes)]
    return nn.Sequential(*layers)


# ---- ResNet (He et al. 2016, CIFAR variant of section 4.2)


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class PadShortcut(nn.Module):
    """Option A: subsample by `stride` and zero-pad the new channels; no parameters."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.stride = stride
        self.before = (c_out - c_in) // 2
        self.after = c_out - c_in - self.before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))


def _shortcut(c_in: int, c_out: int, stride: int, kind: str, norm: bool) -> nn.Module | None:
    """None where the shapes match (identity), else option A or B (1x1 conv, BatchNorm if `norm`)."""
    if stride == 1 and c_in == c_out:
        return None
    if kind == "A":
        return PadShortcut(c_in, c_out, stride)
    conv = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out)) if norm else conv


class BasicBlock(nn.Module):
    """v1 (post-activation): act(BN(conv(act(BN(conv(x))))) + shortcut(x))."""

    def __init__(self, act: ActFactory, c_in: int, c_out: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1, self.bn1, self.act1 = _conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out), act(c_out)
        self.conv2, self.bn2 = _conv3x3(c_out, c_out), nn.BatchNorm2d(c_out)
        self.shortcut = _shortcut(c_in, c_out, stride, shortcut, norm=True)
        self.act2 = act(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + (x if self.shortcut is None else self.shortcut(x)))


class PreActBlock(nn.Module):
    """v2 (pre-activation, He et al. 2016 "Identity mappings"): conv(act(BN(conv(act(BN(x)))))) + x.

    A projection shortcut (option B) takes the pre-activated input, as in the authors' code, so
    that the block's both paths start from the normalised tensor; identity and option A take x.
    """

    def __init__(self, act: ActFactory, c_in: int, c_out: int, stride: int, shortcut: str):
        super().__init__()
        self.bn1, self.act1, self.conv1 = nn.BatchNorm2d(c_in), act(c_in), _conv3x3(c_in, c_out, stride)
        self.bn2, self.act2, self.conv2 = nn.BatchNorm2d(c_out), act(c_out), _conv3x3(c_out, c_out)
        self.shortcut = _shortcut(c_in, c_out, stride, shortcut, norm=False)
        self.projects = isinstance(self.shortcut, nn.Conv2d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        if self.shortcut is None:
            skip = x
        else:
            skip = self.shortcut(pre if self.projects else x)
        return self.conv2(self.act2(self.bn2(self.conv1(pre)))) + skip


class ResNet(nn.Module):
    """CIFAR ResNet: 3x3 stem, 3 stages of n blocks (16, 32, 64 channels x width_mult; the 2nd and 3rd
    stages halve H and W), global average pool, Linear. Depth = 6n + 2 weighted layers."""

    def __init__(self, act: ActFactory, in_channels: int, classes: int, depth: int, version: str,
                 width_mult: float, shortcut: str):
        super().__init__()
        blocks_per_stage = (depth - 2) // 6
        widths = [max(1, round(w * width_mult)) for w in (16, 32, 64)]
        block = BasicBlock if version == "v1" else PreActBlock
        stem: list[nn.Module] = [_conv3x3(in_channels, widths[0])]
        if version == "v1":
            stem += [nn.BatchNorm2d(widths[0]), act(widths[0])]
        self.stem = nn.Sequential(*stem)
        stages, c_in = [], widths[0]
        for i, c_out in enumerate(widths):
            blocks = []
            for j in range(blocks_per_stage):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(act, c_in, c_out, stride, shortcut))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # v2 blocks end on a convolution: one more BN + act before pooling
        self.post = (nn.Sequential(nn.BatchNorm2d(c_in), act(c_in)) if version == "v2"
                     else nn.Identity())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.post(self.stages(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def _resnet(act: ActFactory, shape: tuple[int, ...], classes: int, *, depth: int, version: str,
            width_mult: float, shortcut: str) -> nn.Module:
    _require_dims("resnet", shape, "(channels, height, width)")
    return ResNet(act, shape[0], classes, depth, version, width_mult, shortcut)


def _gpt(act: ActFactory, shape: tuple[int, ...], classes: int, **options) -> nn.Module:
    """gpt.build_gpt with the context length from the input shape and the vocabulary from classes."""
    _require_dims("gpt", shape, "(length,) of token ids, e.g. (64,)")
    return gpt.build_gpt(act, shape[0], classes, **options)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": _mlp, "cnn": _cnn, "deep_fc": _deep_fc, "resnet": _resnet, "cnn1d": _cnn1d, "gpt": _gpt,
}

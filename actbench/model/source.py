"""Where `actbench model MODEL` gets its network, and how an activation goes into it.

MODEL is one of actbench's own models (`resnet20`, `mlp`, `gpt`, ...: built with the activation
in place), `timm:NAME` or `torchvision:NAME` (optional extras, imported only here and only when
named), or an import path `pkg.mod:factory` (called with no arguments). Other libraries' models
get the activation through `replace_activations`, which also says what it left alone.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ..errors import ActbenchError, ActbenchWarning, UnknownNameError
from ..train.models import GATED_MODELS, INPUT_DIMS, SEQUENCE_MODELS

# actbench's own models as `actbench model` names them: (train model, options, sample shape, classes)
OWN_MODELS: dict[str, tuple[str, dict[str, object], tuple[int, ...], int]] = {
    **{f"resnet{depth}": ("resnet", {"depth": depth}, (3, 32, 32), 10)
       for depth in (20, 32, 44, 56, 110)},
    "preact_resnet20": ("resnet", {"depth": 20, "version": "v2"}, (3, 32, 32), 10),
    "cnn": ("cnn", {}, (3, 32, 32), 10),
    "deep_fc": ("deep_fc", {}, (3, 32, 32), 10),
    "mlp": ("mlp", {}, (40,), 10),
    "cnn1d": ("cnn1d", {}, (1, 40), 10),
    # byte-level: a sample is a sequence of 256 token ids (its context), the classes its vocabulary
    "gpt": ("gpt", {}, (256,), 256),
}


EXTRAS = {"timm": "pip install 'actbench[timm]'", "torchvision": "pip install 'actbench[torchvision]'"}
IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
TORCHVISION_INPUT = (3, 224, 224)


@dataclass
class BuiltModel:
    """A model with the activation in place: the modules that are the activation (for the
    saved-tensor hooks), and what was left alone (gates, unknown classes, functional calls)."""

    module: nn.Module
    activations: list[nn.Module]
    left_alone: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelSource:
    """A model as MODEL names it: its library, one sample's shape and the number of classes."""

    text: str
    library: str  # "actbench", "timm", "torchvision" or "import"
    name: str
    sample_shape: tuple[int, ...]
    num_classes: int | None
    _factory: Callable[[], nn.Module] | None = None
    vocab: int | None = None  # token models: input ids are drawn from range(vocab)

    @property
    def takes_gated(self) -> bool:
        """Whether the model has a place for a gated activation: only a model built for one
        widens the layer before it; a swapped-in one would halve the width the next layer expects."""
        return self.library == "actbench" and OWN_MODELS[self.name][0] in GATED_MODELS

    def build(self, activation: str, impl: str | None, seed: int) -> BuiltModel:
        """A fresh model (seeded) with `activation` in every activation slot."""
        import torch

        torch.manual_seed(seed)
        if self.library == "actbench":
            return _build_own(self, activation, impl, seed)
        model = self._factory()
        if not isinstance(model, nn.Module):
            raise ActbenchError(f"{self.text} gave {type(model).__name__}; expected an nn.Module")
        return _swap_in(model, activation, impl, seed)


def model_source(text: str, input_shape: tuple[int, ...] | None = None) -> ModelSource:
    """Resolve MODEL (and --input-shape, one sample without the batch) or say what is wrong."""
    text = (text or "").strip()
    if not text:
        raise ActbenchError("MODEL is empty; expected one of actbench's models "
                            f"({', '.join(OWN_MODELS)}), timm:NAME, torchvision:NAME or pkg.mod:factory")
    library, _, name = text.partition(":")
    if library in ("timm", "torchvision") and name:
        _require(library, text)
        return (_timm if library == "timm" else _torchvision)(text, name, input_shape)
    if IMPORT_PATH.match(text):
        return _import_path(text, input_shape)
    key = text.lower().replace("-", "_")
    if key not in OWN_MODELS:
        raise UnknownNameError("model", text, OWN_MODELS)
    model_name, _, shape, classes = OWN_MODELS[key]
    if input_shape is not None:
        _check_own_shape(key, model_name, input_shape)
    return ModelSource(key, "actbench", key, input_shape or shape, classes,  # MLP and mlp: one key
                       vocab=classes if model_name in SEQUENCE_MODELS else None)  # token ids in


def _check_own_shape(key: str, model_name: str, shape: tuple[int, ...]) -> None:
    """--input-shape of the wrong rank for an own model: refused now, not as a row per
    configuration when each model is built."""
    dims = INPUT_DIMS.get(model_name)  # mlp flattens any shape
    if dims is not None and len(shape) != dims:
        layout = "token ids, the context length" if model_name in SEQUENCE_MODELS else \
            f"such as {','.join(map(str, OWN_MODELS[key][2]))}"
        raise ActbenchError(f"--input-shape {','.join(map(str, shape))} does not fit {key}: it "
                            f"takes samples of {dims} dimension(s) ({layout})")


def _require(library: str, text: str) -> None:
    if importlib.util.find_spec(library) is None:
        raise ActbenchError(f"{text} needs {library}, which is not installed: {EXTRAS[library]}")


def _timm(text: str, name: str, input_shape: tuple[int, ...] | None) -> ModelSource:
    import timm

    base = name.split(".")[0]  # resnet18.a1_in1k names a pretrained tag of resnet18
    if any(c in name for c in "*?[]") or base not in timm.list_models(base):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:5]
        raise ActbenchError(f"timm has no model '{name}'"
                            + (f"; did you mean {', '.join(close)}?" if close else ""))
    config = timm.get_pretrained_cfg(name) if hasattr(timm, "get_pretrained_cfg") else None
    shape = input_shape or tuple(getattr(config, "input_size", None) or TORCHVISION_INPUT)
    num_classes = getattr(config, "num_classes", None) or 1000
    return ModelSource(text, "timm", name, shape, num_classes,
                       lambda: timm.create_model(name, pretrained=False))


def _torchvision(text: str, name: str, input_shape: tuple[int, ...] | None) -> ModelSource:
    from torchvision import models

    known = models.list_models()
    if name not in known:
        raise UnknownNameError("torchvision model", name, known)
    return ModelSource(text, "torchvision", name, input_shape or TORCHVISION_INPUT, 1000,
                       lambda: models.get_model(name, weights=None))


def _import_path(text: str, input_shape: tuple[int, ...] | None) -> ModelSource:
    from ..zoo.registry import import_path_object

    factory = import_path_object(text, what="model")
    if not callable(factory):
        raise ActbenchError(f"model '{text}' names a {type(factory).__name__}; expected a class or "
                            "a function that returns an nn.Module")
    if input_shape is None:
        raise ActbenchError(f"model '{text}' needs --input-shape (one sample, without the batch: "
                            "3,224,224 for an ImageNet model)")
    return ModelSource(text, "import", text, input_shape, None, factory)


def _build_own(source: ModelSource, activation: str, impl: str | None, seed: int) -> BuiltModel:
    from ..train.models import build_model
    from ..zoo.registry import lookup

    spec = lookup(activation)
    model_name, options, _, classes = OWN_MODELS[source.name]
    made: list[nn.Module] = []

    def act(channels: int) -> nn.Module:
        module = spec.build(impl=impl, channels=channels, seed=seed + len(made))
        made.append(module)
        return module

    module = build_model(model_name, act, source.sample_shape, classes, **options)
    inside = {id(m) for m in module.modules()}  # gpt builds one to ask whether it is gated
    return BuiltModel(module, [m for m in made if id(m) in inside])


def _swap_in(model: nn.Module, activation: str, impl: str | None, seed: int) -> BuiltModel:
    """Replace the model's activations; the replaced modules are found again by their paths."""
    from ..zoo.replace import replace_activations

    plan = replace_activations(model, activation, impl=impl, dry_run=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ActbenchWarning)  # what was left alone goes to the report
        replace_activations(model, activation, impl=impl, seed=seed)
    modules = dict(model.named_modules())
    replaced = [modules[r.path] for r in plan if r.new is not None and r.path in modules]
    left = [f"{r.path or type(model).__name__} ({r.old}{': ' + r.note if r.note else ''})"
            for r in plan if r.new is None]
    return BuiltModel(model, list({id(m): m for m in replaced}.values()), left)

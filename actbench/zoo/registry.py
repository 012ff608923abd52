"""Name -> spec -> implementations: the one place every command looks activations up.

An activation can be named three ways, everywhere (API, CLI flags, YAML suites):

- a zoo or registered name (case-insensitive, aliases allowed): ``mish``, ``GELU``, ``swish1``;
- an import path ``package.module:attr`` naming an nn.Module class, a factory returning a module,
  or a tensor function;
- an expression in ``x`` parsed by :mod:`actbench.zoo.expression`, never eval'd.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import threading
from collections.abc import Callable

import torch
from torch import nn

from ..errors import ActbenchError, UnknownNameError
from .modules import Elementwise
from .spec import ActivationSpec, Builder, TrainableParam

__all__ = ["ActivationSpec", "TrainableParam", "add", "expression_functions", "lookup", "names",
           "register", "specs", "specs_in_family", "split_names"]

IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

_registry: dict[str, ActivationSpec] = {}
_aliases: dict[str, str] = {}
_zoo_loaded = False
_ZOO_LOCK = threading.RLock()


def add(spec: ActivationSpec, overwrite: bool = False) -> ActivationSpec:
    """Put a spec into the registry under its name and aliases."""
    key = spec.name.lower()
    if not overwrite and (key in _registry or key in _aliases):
        raise ActbenchError(f"activation '{spec.name}' is already registered; pass overwrite=True "
                            "to replace it")
    _registry[key] = spec
    for alias in spec.aliases:
        _aliases[alias.lower()] = key
    return spec


def names() -> list[str]:
    """Registered activation names in zoo order (registration order)."""
    _ensure_zoo()
    return [spec.name for spec in _registry.values()]


def specs() -> list[ActivationSpec]:
    _ensure_zoo()
    return list(_registry.values())


def aliases() -> dict[str, str]:
    """Every alias, lower case, and the name it stands for."""
    _ensure_zoo()
    return dict(_aliases)


def specs_in_family(family: str | None = None) -> list[ActivationSpec]:
    """Zoo specs, all or one family (case-insensitive)."""
    every = specs()
    if family is None:
        return every
    families = {spec.family.lower(): spec.family for spec in every}
    if family.lower() not in families:
        raise UnknownNameError("family", family, families.values())
    return [spec for spec in every if spec.family.lower() == family.lower()]


def split_names(text: str) -> list[str]:
    """Split a comma list of names, keeping commas inside parentheses: expressions such as
    "max(x, 0.1 * x)" stay whole ("max(x, 0.1 * x),relu" is two items)."""
    items, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def lookup(text: str) -> ActivationSpec:
    """The spec for a name, an import path or an expression (see the module docstring)."""
    _ensure_zoo()
    if not isinstance(text, str) or not text.strip():
        raise ActbenchError("an activation must be a non-empty name, import path or expression")
    text = text.strip()
    key = text.lower().replace("-", "_")
    key = _aliases.get(key, key)
    if key in _registry:
        return _registry[key]
    if IMPORT_PATH.match(text):
        return _spec_from_import_path(text)
    from .expression import looks_like_expression

    if looks_like_expression(text):
        return _spec_from_expression(text)
    raise UnknownNameError("activation", text, _registry, _aliases)


def register(name: str, factory: Callable[..., nn.Module] | type[nn.Module], *, family: str = "custom",
             formula: str = "", source: str = "user-registered", channelwise: bool = False,
             overwrite: bool = False) -> ActivationSpec:
    """Add a custom activation: `factory(channels=None, **options)` or an nn.Module class."""
    if not re.fullmatch(r"[A-Za-z_][\w]*", name or ""):
        raise ActbenchError(f"activation name '{name}' must be an identifier (letters, digits, _)")
    if not callable(factory):
        raise ActbenchError(f"factory for '{name}' must be callable, got {type(factory).__name__}")
    _ensure_zoo()
    builder = _module_builder(factory, name)
    spec = ActivationSpec(name=name.lower(), family=family, formula=formula or name, source=source,
                          builders={"custom": builder}, channelwise=channelwise, options=None)
    return add(spec, overwrite=overwrite)


def _accepts(fn: Callable, parameter: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return parameter in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _module_builder(factory: Callable, label: str) -> Builder:
    """Wrap a class or factory so it is called as builder(channels=..., **options)."""

    def build(channels: int | None = None, **options) -> nn.Module:
        if channels is not None and _accepts(factory, "channels"):
            options["channels"] = channels
        module = factory(**options)
        if not isinstance(module, nn.Module):
            raise ActbenchError(f"factory for '{label}' returned {type(module).__name__}, "
                                "expected a torch.nn.Module")
        return module

    return build


def _is_factory(obj: object) -> bool:
    """A module class, or a Python function (or partial, or method) whose parameters are all
    optional (so it takes no tensor). Built-in functions and other callable objects are never
    factories: `os:getpid` or `builtins:exit` take no tensor either, and calling them is no
    way to build a module."""
    if isinstance(obj, type):
        return issubclass(obj, nn.Module)
    if not (inspect.isfunction(obj) or inspect.ismethod(obj) or isinstance(obj, functools.partial)):
        return False
    return _takes_a_required_argument(obj) is False


def _takes_a_required_argument(obj: object) -> bool | None:
    """Whether `obj`'s signature has a parameter without a default; None when it cannot be read."""
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return None
    return any(p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in params)


def import_path_object(path: str, what: str = "activation") -> object:
    """The object an import path ('pkg.mod:Name.attr') names, looked up and never called.
    Dunder attributes are refused: they reach the interpreter's internals, not activations."""
    module_name, _, attr_path = path.partition(":")
    if any(part.startswith("__") for part in [*module_name.split("."), *attr_path.split(".")]):
        raise ActbenchError(f"{what} '{path}': an import path may not name dunder attributes "
                            "(__...__); name a module-level class, factory or function")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as error:
        raise ActbenchError(f"cannot import '{module_name}' for {what} '{path}': {error}") from None
    for attr in attr_path.split("."):
        if not hasattr(obj, attr):
            raise ActbenchError(f"module '{module_name}' has no attribute '{attr_path}' "
                                f"({what} '{path}')")
        obj = getattr(obj, attr)
    return obj


def factory_option_problem(path: str, options: dict, channels: bool) -> str | None:
    """Why the factory an import path names cannot take these options, judged from its signature
    alone (a suite is checked without running user code); None when it can, or cannot be told."""
    obj = import_path_object(path)
    if not _is_factory(obj):
        return f"'{path}' is a tensor function; it takes no options" if options else None
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    if channels and _accepts(obj, "channels"):
        options = {**options, "channels": 1}
    try:
        signature.bind(**options)
    except TypeError as error:
        return f"{path}{signature} cannot take {sorted(options)}: {error}"
    return None


def _spec_from_import_path(path: str) -> ActivationSpec:
    obj = import_path_object(path)
    if isinstance(obj, nn.Module):
        raise ActbenchError(f"'{path}' is a module instance; name its class or a factory instead")
    if not callable(obj):
        raise ActbenchError(f"'{path}' is not callable; expected an nn.Module class, a factory or "
                            "a tensor function")
    if isinstance(obj, type) and not issubclass(obj, nn.Module):
        raise ActbenchError(f"'{path}' is a class but not an nn.Module; expected an nn.Module "
                            "class, a factory or a tensor function")
    if not _is_factory(obj) and _takes_a_required_argument(obj) is False:
        raise ActbenchError(f"'{path}' takes no tensor and is not a factory written in Python; "
                            "expected an nn.Module class, a factory or a tensor function")
    if _is_factory(obj):
        builder = _module_builder(obj, path)
    else:
        function = obj

        def builder(channels: int | None = None, **options) -> nn.Module:
            return Elementwise(path, "custom", function)

    return ActivationSpec(name=path, family="import path", formula=path, source=path,
                          builders={"custom": builder}, options=None if _is_factory(obj) else {})


def _spec_from_expression(text: str) -> ActivationSpec:
    from .expression import parse_expression
    from .functional import compiled

    expr = parse_expression(text, expression_functions())

    def formula(channels: int | None = None) -> nn.Module:
        return Elementwise(expr.source, "formula", expr)

    def compiled_builder(channels: int | None = None) -> nn.Module:
        return Elementwise(expr.source, "compiled", compiled(expr, expr.source))

    return ActivationSpec(name=expr.source, family="expression", formula=expr.source,
                          source="expression", builders={"formula": formula, "compiled": compiled_builder})


def expression_functions() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Zoo members usable inside expressions: the parameter-free pointwise ones."""
    _ensure_zoo()
    return {spec.name: spec.function for spec in _registry.values() if spec.function is not None}


def _ensure_zoo() -> None:
    """Fill the registry once; a second thread waits until it is full rather than seeing it half
    filled (the flag is set only after the definitions have run)."""
    global _zoo_loaded
    if _zoo_loaded:
        return
    with _ZOO_LOCK:
        if not _zoo_loaded:
            from .definitions import ZOO

            for spec in ZOO:
                add(spec)
            _zoo_loaded = True

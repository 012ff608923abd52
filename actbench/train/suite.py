"""Training suites: the YAML schema, its defaults, validation, overrides and sweep expansion.

A suite names what to train (data, model, optimiser, schedule, training and evaluation options),
which activations and seeds to compare and, optionally, a grid (`sweep`) over any dotted key.
`load_suite` reads the file with ``yaml.safe_load``, applies command-line overrides to the raw
document, checks every value at every sweep point and raises one `SuiteError` that lists every
problem, so nothing starts until the whole suite is valid. `Suite.runs()` expands it into
`RunSpec`s (sweep point, then seed, then activation), each with its fully resolved config and a
hash that identifies the run independently of file layout, names and labels.

The option tables of data sets and models belong to `data` and `models`; this module reads them at
validation time and never copies them. docs/suites.md documents every key.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ActbenchError, close_matches
from ..zoo.registry import lookup, split_names
from . import data, models

SHIPPED_SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"

OPTIMISERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adamax", "nadam", "adadelta")
SCHEDULES = ("constant", "step", "multistep", "cosine", "onecycle")
SECTION_NAMES = ("data", "model", "optim", "schedule", "train", "eval")
TOP_LEVEL_KEYS = ("name", "description", *SECTION_NAMES, "activations", "seeds", "baseline", "sweep")
ACTIVATION_KEYS = ("name", "impl", "params", "label")
DEFAULT_SEEDS = (0, 1, 2)
HASH_LENGTH = 12
# Where the data lives does not change what a run computes: moving the files keeps the hashes.
HASH_EXCLUDED = (("data", "root"), ("data", "download"))

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
NAME_PATTERN = re.compile(r"^[\w.-]+$")
OVERRIDE_KEY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
# YAML 1.1 reads 1e-8 (no dot) as a string; number keys accept such text so `eps: 1e-8` works.
SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


class SuiteError(ActbenchError):
    """Everything wrong with a suite, one problem per line (file or override, key path, expectation)."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class ActivationEntry:
    """One activation of a suite: canonical name, concrete implementation, all options, report label."""

    name: str
    impl: str | None
    params: dict
    label: str


@dataclass(frozen=True)
class RunSpec:
    """One training run: a sweep point, a seed and an activation, with everything resolved."""

    index: int
    activation: ActivationEntry
    seed: int
    sweep: dict[str, object]
    config: dict
    config_hash: str


@dataclass
class Suite:
    """A validated suite; `runs()` expands it, `resolved()` is its plain-data form for sidecars."""

    name: str
    path: Path | None
    description: str
    config: dict
    activations: list[ActivationEntry]
    seeds: list[int]
    baseline: str | None
    sweep: dict[str, list]
    # the sections as written (after overrides): a sweep over model.name or data.name changes
    # which defaults apply, so each point is resolved from these, not from `config`
    sections: dict = field(default_factory=dict, repr=False)

    def points(self) -> list[dict[str, object]]:
        """Every sweep point as {dotted key: value}, the last key varying fastest ([{}] without a sweep)."""
        keys = list(self.sweep)
        return [dict(zip(keys, values)) for values in itertools.product(*self.sweep.values())]

    def runs(self) -> list[RunSpec]:
        """Every run, ordered by sweep point, then seed, then activation (so a suite stopped early
        has every activation for its first seeds)."""
        runs: list[RunSpec] = []
        for point in self.points():
            config, _ = resolve_config(_with_point(self.sections or self.config, point))
            swept = {key: _get_dotted(config, key) for key in point}
            for seed in self.seeds:
                for entry in self.activations:
                    runs.append(RunSpec(index=len(runs), activation=entry, seed=seed, sweep=dict(swept),
                                        config=copy.deepcopy(config),
                                        config_hash=config_hash(config, entry, seed)))
        return runs

    def resolved(self) -> dict:
        """The whole suite as plain, JSON-ready data (for the report's sidecar)."""
        return {
            "name": self.name,
            "path": None if self.path is None else str(self.path),
            "description": self.description,
            "config": copy.deepcopy(self.config),
            "activations": [{"name": a.name, "impl": a.impl, "params": dict(a.params), "label": a.label}
                            for a in self.activations],
            "seeds": list(self.seeds),
            "baseline": self.baseline,
            "sweep": copy.deepcopy(self.sweep),
            "num_runs": len(self.points()) * len(self.seeds) * len(self.activations),
        }


# ----------------------------------------------------------------------------------------------
# Value checks: each returns the normalised value or raises _Invalid naming what was expected.


class _Invalid(Exception):
    """A value that fails its key's check: (sub-path, message) pairs, sub-path '' for the key itself."""

    def __init__(self, message: str = "", problems: list[tuple[str, str]] | None = None):
        self.problems = problems if problems is not None else [("", message)]
        super().__init__(self.problems[0][1])


Check = Callable[[object], object]


def _show(value: object) -> str:
    """A value as the user would write it in YAML/JSON (true, null, "text"), kept short."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(what: str, value: object) -> _Invalid:
    return _Invalid(f"expected {what}, got {_show(value)}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_number(value: object) -> float | None:
    """The finite float a YAML value stands for, or None (bools are not numbers)."""
    if isinstance(value, str) and SCIENTIFIC.match(value.strip()):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _integer(minimum: int | None = None) -> Check:
    what = "an integer" + (f" >= {minimum}" if minimum is not None else "")

    def check(value):
        if not _is_int(value) or (minimum is not None and value < minimum):
            raise _expected(what, value)
        return value

    check.what = what
    return check


def _number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
            high_open: bool = False) -> Check:
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    what = "a number" + (" " + " and ".join(bounds) if bounds else "")

    def check(value):
        number = _as_number(value)
        if (number is None
                or (low is not None and (number < low or (low_open and number == low)))
                or (high is not None and (number > high or (high_open and number == high)))):
            raise _expected(what, value)
        return number

    check.what = what
    return check


def _boolean() -> Check:
    def check(value):
        if not isinstance(value, bool):
            raise _expected("true or false", value)
        return value

    check.what = "true or false"
    return check


def _string(pattern: re.Pattern | None = None, what: str = "a string") -> Check:
    def check(value):
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise _expected(what, value)
        return value

    check.what = what
    return check


def _choice(known: Callable[[], Iterable[str]], noun: str) -> Check:
    """A name from a table read at check time (case-insensitive), with a did-you-mean hint."""

    def check(value):
        names = list(known())
        if not isinstance(value, str):
            raise _expected(f"a {noun} name (one of {', '.join(names)})", value)
        matched = [name for name in names if name.lower() == value.lower()]
        if matched:
            return matched[0]
        close = close_matches(value, names)
        hint = f" (did you mean {_quoted(close)}?)" if close else f"; expected one of {', '.join(names)}"
        raise _Invalid(f"unknown {noun} '{value}'{hint}")

    check.what = f"a {noun} name"
    return check


def _optional(inner: Check) -> Check:
    def check(value):
        return None if value is None else inner(value)

    check.what = f"null or {inner.what}"
    return check


def _anything() -> Check:
    def check(value):
        return value

    check.what = "any value"
    return check


def _list_of(item: Check, *, min_length: int = 0, max_length: int | None = None,
             increasing: bool = False, what: str | None = None) -> Check:
    if what is None:
        what = f"a list of {item.what.removeprefix('a ').removeprefix('an ')}s"
        if min_length:
            what = "a non-empty " + what.removeprefix("a ")

    def check(value):
        if (not isinstance(value, list) or len(value) < min_length
                or (max_length is not None and len(value) > max_length)):
            raise _expected(what, value)
        items, problems = [], []
        for i, element in enumerate(value):
            try:
                items.append(item(element))
            except _Invalid as invalid:
                problems += [(f"[{i}]{sub}", message) for sub, message in invalid.problems]
                items.append(element)
        if problems:
            raise _Invalid(problems=problems)
        if increasing:
            for i in range(1, len(items)):
                if items[i] <= items[i - 1]:
                    message = f"expected values in increasing order, got {_show(items[i])} after {items[i - 1]}"
                    raise _Invalid(problems=[(f"[{i}]", message)])
        return items

    check.what = what
    return check


def _quoted(names: Iterable[str]) -> str:
    """'a', 'b' or 'c'"""
    quoted = [f"'{name}'" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


@dataclass(frozen=True)
class Key:
    """One key of a section: its default and its check (docs/suites.md describes each)."""

    default: object
    check: Check


# Checks for the option names that data.DATASET_OPTIONS and models.MODEL_OPTIONS / COMMON_OPTIONS
# use; an option not listed here is checked by the type of its default (see _inferred_check).
OPTION_CHECKS: dict[str, Check] = {
    "init": _choice(lambda: models.INITIALISERS, "initialiser"),
    "init_std": _number(0, low_open=True),
    "depth": _integer(1),
    "width": _integer(1),
    "hidden": _integer(1),
    "conv_layers": _integer(1),
    "stem_channels": _integer(1),
    "dropout": _number(0, 1, high_open=True),
    "batchnorm": _boolean(),
    # the models' own table of string choices (resnet version and shortcut)
    **{name: _choice(lambda choices=choices: choices, f"model {name}")
       for name, choices in getattr(models, "_CHOICES", {}).items()},
    "width_mult": _number(0, low_open=True),
    "train_subset": _optional(_integer(1)),
    "num_samples": _integer(10),
    "shape": _list_of(_integer(1), min_length=1, max_length=3,
                      what="a list of 1 to 3 integers >= 1 (channels, then spatial sizes)"),
    "classes": _integer(2),
    "train_size": _integer(1),
    "test_size": _integer(1),
}


def _inferred_check(default: object) -> Check:
    """A check from the type of an option's default, for options this module does not know yet."""
    if isinstance(default, bool):
        return _boolean()
    if isinstance(default, int):
        return _integer()
    if isinstance(default, float):
        return _number()
    if isinstance(default, str):
        return _string()
    if isinstance(default, list):
        return _list_of(_anything(), what="a list")
    return _anything()


def _option_keys(options: Mapping[str, object]) -> dict[str, Key]:
    return {name: Key(copy.deepcopy(default), OPTION_CHECKS.get(name) or _inferred_check(default))
            for name, default in options.items()}


def _fixed_keys() -> dict[str, dict[str, Key]]:
    """The keys every suite accepts in each section (data set and model options come on top)."""
    return {
        "data": {
            "name": Key("mnist1d", _choice(lambda: data.DATASET_OPTIONS, "data set")),
            "root": Key(None, _optional(_string(re.compile(r"\S"), "a directory path"))),
            "download": Key(False, _boolean()),
        },
        "model": {
            "name": Key("mlp", _choice(lambda: models.MODEL_OPTIONS, "model")),
            **_option_keys(models.COMMON_OPTIONS),
        },
        "optim": {
            "name": Key("adam", _choice(lambda: OPTIMISERS, "optimiser")),
            "lr": Key(0.001, _number(0, low_open=True)),
            "momentum": Key(0.9, _number(0, 1, high_open=True)),
            "nesterov": Key(False, _boolean()),
            "weight_decay": Key(0.0, _number(0)),
            "l1": Key(0.0, _number(0)),
            "betas": Key([0.9, 0.999], _list_of(_number(0, 1, high_open=True), min_length=2, max_length=2,
                                                 what="a list of two numbers >= 0 and < 1")),
            "eps": Key(1e-8, _number(0, low_open=True)),
        },
        "schedule": {
            "name": Key("constant", _choice(lambda: SCHEDULES, "schedule")),
            "warmup_epochs": Key(0, _integer(0)),
            "step_size": Key(30, _integer(1)),
            "milestones": Key([], _list_of(_integer(1), increasing=True,
                                           what="a list of epochs (integers >= 1)")),
            "gamma": Key(0.1, _number(0, low_open=True)),
            "max_lr": Key(None, _optional(_number(0, low_open=True))),
            "min_lr": Key(0.0, _number(0)),
        },
        "train": {
            "epochs": Key(10, _integer(1)),
            "batch_size": Key(128, _integer(1)),
            "eval_batch_size": Key(1024, _integer(1)),
            "augment": Key(False, _boolean()),
            "mixup": Key(0.0, _number(0)),
            "label_smoothing": Key(0.0, _number(0, 1, high_open=True)),
            "grad_clip": Key(None, _optional(_number(0, low_open=True))),
            "amp": Key(False, _boolean()),
            "channels_last": Key(False, _boolean()),
            "compile": Key(False, _boolean()),
            "deterministic": Key(False, _boolean()),
            "device": Key("auto", _string(DEVICE_PATTERN, "auto, cpu, cuda, cuda:N or mps")),
        },
        "eval": {
            "noise": Key([], _list_of(_number(0), what="a list of noise standard deviations >= 0")),
        },
    }


def schema() -> dict[str, dict[str, object]]:
    """Every section key any suite may use, with its default (data set/model options: all of them)."""
    result = {section: {name: key.default for name, key in keys.items()}
              for section, keys in _fixed_keys().items()}
    for options in data.DATASET_OPTIONS.values():
        for name, default in options.items():
            result["data"].setdefault(name, default)
    for options in models.MODEL_OPTIONS.values():
        for name, default in options.items():
            result["model"].setdefault(name, default)
    return result


# ----------------------------------------------------------------------------------------------
# Resolving the sections of one sweep point

Problem = tuple[str, str]  # (key path, message)


def resolve_config(sections: Mapping[str, object]) -> tuple[dict, list[Problem]]:
    """Fill defaults into the six sections and check every value.

    Returns the resolved config (invalid values kept as written) and the problems found, each as
    (key path, message). Data set and model options follow the data set and model named here.
    """
    fixed = _fixed_keys()
    config: dict = {}
    problems: list[Problem] = []
    for section in SECTION_NAMES:
        raw = sections.get(section)
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            problems.append((section, f"expected a mapping of {section} options, got {_show(raw)}"))
            raw = {}
        keys = dict(fixed[section])
        other_keys: dict[str, list[str]] = {}  # options of other data sets / models: name -> owners
        if section in ("data", "model"):
            table = data.DATASET_OPTIONS if section == "data" else models.MODEL_OPTIONS
            chosen = _check_one(keys["name"], raw.get("name", keys["name"].default), f"{section}.name", [])
            if chosen in table:
                keys.update(_option_keys(table[chosen]))
            for owner, options in table.items():
                for option in options:
                    if option not in keys:
                        other_keys.setdefault(option, []).append(owner)
        config[section] = _resolve_section(section, raw, keys, other_keys, problems)
    _check_across_keys(config, problems)
    return config, problems


def _check_one(key: Key, value: object, path: str, problems: list[Problem]) -> object:
    try:
        return key.check(value)
    except _Invalid as invalid:
        problems += [(path + sub, message) for sub, message in invalid.problems]
        return value


def _resolve_section(section: str, raw: Mapping, keys: Mapping[str, Key],
                     other_keys: Mapping[str, list[str]], problems: list[Problem]) -> dict:
    fixed = _fixed_keys()[section]
    given = {}
    for name, value in raw.items():  # in file order, so problems come in file order
        path = f"{section}.{name}"
        if name in keys:
            given[name] = _check_one(keys[name], value, path, problems)
        elif name in other_keys:
            chosen = _check_one(keys["name"], raw.get("name", keys["name"].default), "", [])
            if chosen not in (data.DATASET_OPTIONS if section == "data" else models.MODEL_OPTIONS):
                continue  # the data set or model name is wrong (reported): its options are unknown
            what = "data set" if section == "data" else "model"
            own = [key for key in keys if key not in fixed] or ["none"]
            problems.append((path, f"not an option of {what} '{chosen}' (only of "
                                   f"{', '.join(other_keys[name])}); its options: {', '.join(own)}"))
        else:  # suggestions from every data set's / model's options, so each sweep point agrees
            problems.append((path, _unknown_key(str(name), [*keys, *other_keys])))
    return {name: given[name] if name in given else copy.deepcopy(key.default) for name, key in keys.items()}


def _unknown_key(name: str, known: Iterable[str]) -> str:
    known = list(known)
    close = close_matches(name, known, n=1)  # a typo usually has one intended key
    hint = f"did you mean {_quoted(close)}?" if close else f"expected one of {', '.join(known)}"
    return f"unknown key ({hint})"


AUGMENTED = ("cifar10", "cifar100")
# per-sample input dimensions each model needs (mlp flattens anything)
MODEL_INPUT_DIMS = {"cnn": 3, "deep_fc": 3, "resnet": 3, "cnn1d": 2}
DATASET_INPUT_DIMS = {"cifar10": 3, "cifar100": 3, "mnist": 3, "fashion_mnist": 3, "mnist1d": 2}
DATASET_IMAGE_SIDE = {"cifar10": 32, "cifar100": 32, "mnist": 28, "fashion_mnist": 28}


def _image_side(data_cfg: Mapping) -> int | None:
    """The smaller of height and width of the data set's images (None: not images / unknown)."""
    if data_cfg["name"] == "synthetic":
        shape = data_cfg.get("shape")
        ok = isinstance(shape, (list, tuple)) and len(shape) == 3 and all(_is_int(v) for v in shape)
        return min(shape[1:]) if ok else None
    return DATASET_IMAGE_SIDE.get(data_cfg["name"])


def _input_dims(data_cfg: Mapping) -> int | None:
    if data_cfg["name"] == "synthetic":
        shape = data_cfg.get("shape")
        return len(shape) if isinstance(shape, (list, tuple)) else None
    return DATASET_INPUT_DIMS.get(data_cfg["name"])


def _check_across_keys(config: dict, problems: list[Problem]) -> None:
    """Checks that involve two keys; each runs only when both keys passed their own checks."""
    bad = {path.split("[")[0] for path, _ in problems}

    def ok(*paths: str) -> bool:
        return not any(path in bad or path.split(".")[0] in bad for path in paths)

    optim, schedule, train, model = config["optim"], config["schedule"], config["train"], config["model"]
    resnet_depths = getattr(models, "RESNET_DEPTHS", None)
    if ok("model.name", "model.depth") and model["name"] == "resnet" and resnet_depths \
            and model["depth"] not in resnet_depths:
        problems.append(("model.depth", f"expected one of {', '.join(map(str, resnet_depths))} for resnet "
                                        f"(6n+2), got {_show(model['depth'])}"))
    if (ok("optim.name", "optim.nesterov", "optim.momentum") and optim["name"] == "sgd"
            and optim["nesterov"] and optim["momentum"] == 0):
        problems.append(("optim.nesterov", "needs optim.momentum > 0 with sgd"))
    if ok("schedule.name", "schedule.milestones") and schedule["name"] == "multistep" \
            and not schedule["milestones"]:
        problems.append(("schedule.milestones", "expected a non-empty list of epochs for the multistep "
                                                "schedule"))
    if ok("schedule.warmup_epochs", "train.epochs") and schedule["warmup_epochs"] >= train["epochs"]:
        problems.append(("schedule.warmup_epochs", f"expected fewer than train.epochs "
                                                   f"({train['epochs']}), got {schedule['warmup_epochs']}"))
    data_cfg = config["data"]
    if ok("train.augment", "data.name") and train["augment"] and data_cfg["name"] not in AUGMENTED:
        problems.append(("train.augment", f"{data_cfg['name']} has no standard augmentation (only "
                                          f"{' and '.join(AUGMENTED)} do); expected false"))
    if ok("model.name", "data.name", "data.shape"):
        dims = _input_dims(data_cfg)
        needed = MODEL_INPUT_DIMS.get(model["name"])
        if dims is not None and needed is not None and dims != needed:
            kind = {2: "1-D signals (C, L), e.g. mnist1d", 3: "images (C, H, W)"}[needed]
            problems.append(("model.name", f"{model['name']} takes {kind}; {data_cfg['name']} "
                                           f"gives {dims}-D samples"))
    side = _image_side(data_cfg) if ok("data.name", "data.shape") else None
    if ok("model.name", "model.conv_layers") and model["name"] == "cnn" and side is not None \
            and side < 2 ** model["conv_layers"]:
        problems.append(("model.conv_layers", f"expected at most {max(side.bit_length() - 1, 0)} for "
                                              f"{side}-pixel images (each layer halves them), got "
                                              f"{model['conv_layers']}"))
    if ok("schedule.name", "schedule.min_lr", "schedule.max_lr", "optim.lr") \
            and schedule["name"] in ("cosine", "onecycle"):
        peak = schedule["max_lr"] if schedule["name"] == "onecycle" and schedule["max_lr"] else optim["lr"]
        if schedule["min_lr"] >= peak:
            problems.append(("schedule.min_lr", f"expected less than the peak learning rate ({peak:g}), "
                                                f"got {schedule['min_lr']:g}"))


# ----------------------------------------------------------------------------------------------
# Activations, seeds, baseline, sweep


def _activation_entry(item: object, path: str, problems: list[Problem]) -> ActivationEntry | None:
    """Resolve one `activations` item and build it once, so bad names and params fail here."""
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping):
        problems.append((path, "expected a name, an expression, an import path or a mapping with "
                               f"name/impl/params/label, got {_show(item)}"))
        return None
    count = len(problems)
    for key in item:
        if key not in ACTIVATION_KEYS:
            problems.append((f"{path}.{key}", _unknown_key(str(key), ACTIVATION_KEYS)))
    name, impl, params, label = (item.get(key) for key in ACTIVATION_KEYS)
    name_path = f"{path}.name" if len(item) > 1 else path
    if not isinstance(name, str) or not name.strip():
        problems.append((name_path, f"expected an activation name, expression or import path, got "
                                    f"{_show(name)}"))
        return None
    try:
        spec = lookup(name)
    except ActbenchError as error:
        problems.append((name_path, str(error)))
        return None
    if impl is not None and (not isinstance(impl, str) or impl.lower() not in spec.implementations):
        close = close_matches(impl, spec.implementations) if isinstance(impl, str) else []
        hint = f" (did you mean {_quoted(close)}?)" if close else ""
        problems.append((f"{path}.impl", f"unknown implementation {_show(impl)} of {spec.name}{hint}; "
                                         f"expected one of {', '.join(spec.implementations)}"))
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        problems.append((f"{path}.params", f"expected a mapping of activation options, got {_show(params)}"))
        params = {}
    params = dict(params)
    if spec.options is not None:
        for key, value in list(params.items()):
            if key not in spec.options:
                known = ", ".join(f"{k} (default {v})" for k, v in spec.options.items()) or "none"
                close = close_matches(str(key), spec.options, n=1)
                hint = f"did you mean {_quoted(close)}?" if close else f"{spec.name} accepts: {known}"
                problems.append((f"{path}.params.{key}", f"unknown key ({hint})"))
            elif _as_number(value) is None:
                problems.append((f"{path}.params.{key}", f"expected a number, got {_show(value)}"))
            elif isinstance(spec.options[key], float) or not _is_int(value):
                params[key] = _as_number(value)
    if label is not None and (not isinstance(label, str) or not label.strip()):
        problems.append((f"{path}.label", f"expected a non-empty string, got {_show(label)}"))
    if len(problems) > count:
        return None
    impl = spec.default_impl if impl is None else impl.lower()
    try:
        spec.build(impl=impl, channels=1 if spec.channelwise else None, **params)
    except Exception as error:  # a user's factory may fail any way; report it like a bad option
        message = str(error) if isinstance(error, ActbenchError) else f"{type(error).__name__}: {error}"
        problems.append((path, f"cannot build {spec.name}: {message}"))
        return None
    canonical = _canonical_expression(name) if spec.family == "expression" else spec.name
    if label is None:
        label = canonical + (f"[{impl}]" if item.get("impl") is not None else "")
        if params:
            label += "(" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                     for k, v in params.items()) + ")"
    resolved_params = dict(params) if spec.options is None else {**spec.options, **params}
    return ActivationEntry(name=canonical, impl=impl, params=resolved_params, label=label.strip())


def _canonical_expression(text: str) -> str:
    """One spelling per expression ("x*sigmoid( x )" -> "x * sigmoid(x)"), for labels and hashes."""
    try:
        return ast.unparse(ast.parse(text.strip(), mode="eval"))
    except SyntaxError:  # the zoo accepted it, so this does not happen; keep the text then
        return text.strip()


def _activations(raw: object, problems: list[Problem]) -> list[ActivationEntry]:
    if raw is None:
        problems.append(("activations", "required: list the activations to compare, e.g. [relu, mish]"))
        return []
    if not isinstance(raw, list) or not raw:
        problems.append(("activations", f"expected a non-empty list of activations, got {_show(raw)}"))
        return []
    entries: list[ActivationEntry] = []
    first_of: dict[object, int] = {}
    for i, item in enumerate(raw):
        entry = _activation_entry(item, f"activations[{i}]", problems)
        if entry is None:
            continue
        identity = (entry.name, entry.impl, json.dumps(entry.params, sort_keys=True, default=str))
        for key, what in ((identity, "the same activation as"), (entry.label, "the same label as")):
            if key in first_of:
                problems.append((f"activations[{i}]", f"{what} activations[{first_of[key]}] "
                                                      f"('{entry.label}'); list each activation once"))
                break
        else:
            first_of[identity] = first_of[entry.label] = i
            entries.append(entry)
    return entries


def _seeds(raw: object, problems: list[Problem]) -> list[int]:
    if raw is None:
        return list(DEFAULT_SEEDS)
    if _is_int(raw):
        if raw < 1:
            problems.append(("seeds", f"expected a list of seeds or a count >= 1, got {raw}"))
            return []
        return list(range(raw))
    if not isinstance(raw, list) or not raw:
        problems.append(("seeds", f"expected a non-empty list of integers >= 0 or a count, got {_show(raw)}"))
        return []
    seeds: list[int] = []
    for i, seed in enumerate(raw):
        if not _is_int(seed) or seed < 0:
            problems.append((f"seeds[{i}]", f"expected an integer >= 0, got {_show(seed)}"))
        elif seed >= 2**63:
            problems.append((f"seeds[{i}]", f"expected a seed below 2**63, got {seed}"))
        elif seed in seeds:
            problems.append((f"seeds[{i}]", f"duplicate seed {seed}"))
        else:
            seeds.append(seed)
    return seeds


def _baseline(raw: object, entries: list[ActivationEntry], problems: list[Problem]) -> str | None:
    """The label of the activation named as baseline (by label, or by name when that is unambiguous)."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        problems.append(("baseline", f"expected the name or label of one of the activations, "
                                     f"got {_show(raw)}"))
        return None
    labels = [entry.label for entry in entries]
    if raw.strip() in labels:
        return raw.strip()
    try:
        name = lookup(raw).name
    except ActbenchError:
        name = raw.strip()
    matches = [entry.label for entry in entries if entry.name == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        problems.append(("baseline", f"'{raw}' matches several activations ({', '.join(matches)}); name "
                                     "one by its label"))
    elif entries:
        problems.append(("baseline", f"'{raw}' is not among the activations ({', '.join(labels)}); add it "
                                     "or set baseline to null"))
    return None


def _sweep(raw: object, problems: list[Problem]) -> dict[str, list]:
    """The sweep's keys and value lists; values are checked later, at each point."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append(("sweep", f"expected a mapping of dotted keys to lists of values, got {_show(raw)}"))
        return {}
    known = [f"{section}.{key}" for section, keys in schema().items() for key in keys]
    sweep: dict[str, list] = {}
    for key, values in raw.items():
        path = f"sweep.{key}"
        if key in ("activations", "seeds"):
            problems.append((path, f"cannot be swept: every sweep point already runs every one of the {key}"))
            continue
        if key not in known:
            problems.append((path, _unknown_key(str(key), known)))
            continue
        if not isinstance(values, list) or not values:
            problems.append((path, f"expected a non-empty list of values, got {_show(values)}"))
            continue
        seen: list[str] = []
        for i, value in enumerate(values):
            text = json.dumps(value, sort_keys=True, default=str)
            if text in seen:
                problems.append((f"{path}[{i}]", f"duplicate value {_show(value)}"))
            seen.append(text)
        if len(set(seen)) == len(seen):
            sweep[key] = list(values)
    return sweep


def _with_point(sections: Mapping, point: Mapping[str, object]) -> dict:
    """A copy of the sections with each dotted key of the sweep point set."""
    result = {name: dict(value) if isinstance(value, Mapping) else value for name, value in sections.items()}
    for key, value in point.items():
        section, name = key.split(".", 1)
        if not isinstance(result.get(section), dict):
            result[section] = {}
        result[section][name] = copy.deepcopy(value)
    return result


def _get_dotted(config: Mapping, key: str) -> object:
    section, name = key.split(".", 1)
    return config[section][name]


def _check_points(sections: Mapping, sweep: dict[str, list], check_data: bool) -> list[Problem]:
    """Resolve every sweep point; a problem found only at some points says which sweep values cause it."""
    keys = list(sweep)
    found: dict[Problem, list[tuple[int, ...]]] = {}
    from_sweep: dict[tuple[str, str, str], list[int]] = {}  # (sweep key, sub-path, message) -> indices
    available: dict[tuple, str | None] = {}
    for indices in itertools.product(*(range(len(values)) for values in sweep.values())):
        point = {key: sweep[key][i] for key, i in zip(keys, indices)}
        config, problems = resolve_config(_with_point(sections, point))
        if check_data and not any(path == "data" or path.startswith("data.") for path, _ in problems):
            message = _data_problem(config["data"], available)
            if message:
                problems.append(("data", message))
        for path, message in problems:
            key = next((key for key in keys if path == key or path.startswith(key + "[")), None)
            if key is None:
                found.setdefault((path, message), []).append(indices)
            else:  # the value came from the sweep: name the sweep entry
                where = from_sweep.setdefault((key, path[len(key):], message), [])
                if indices[keys.index(key)] not in where:
                    where.append(indices[keys.index(key)])
    every = math.prod(len(values) for values in sweep.values())
    result = []
    for (path, message), where in found.items():
        if len(where) < every:
            message += f" (when {_describe_points(sweep, where)})"
        result.append((path, message))
    for (key, sub, message), where in from_sweep.items():
        if len(where) == len(sweep[key]) > 1:
            result.append((f"sweep.{key}{sub}", f"{message} (every value)"))
        else:
            result += [(f"sweep.{key}[{i}]{sub}", message) for i in sorted(where)]
    return result


def _describe_points(sweep: dict[str, list], where: list[tuple[int, ...]]) -> str:
    """The sweep values that a set of points share, e.g. "sweep sets model.name=cnn"."""
    parts = []
    for k, (key, values) in enumerate(sweep.items()):
        used = sorted({indices[k] for indices in where})
        if len(used) < len(values):
            shown = [_show(values[i]) for i in used]
            parts.append(f"{key}={shown[0]}" if len(shown) == 1 else f"{key} in [{', '.join(shown)}]")
    return "sweep sets " + ", ".join(parts) if parts else "at some sweep points"


def _data_problem(data_config: Mapping, cache: dict[tuple, str | None]) -> str | None:
    """The data module's message when a data set's files are missing (checked once per location)."""
    key = (data_config["name"], data_config["root"], data_config["download"])
    if key not in cache:
        try:
            data.check_available(*key)
            cache[key] = None
        except ActbenchError as error:
            cache[key] = str(error)
    return cache[key]


def missing_data(suite: Suite) -> list[str]:
    """One line per data set of the suite whose files are missing (a dry run's notes)."""
    cache: dict[tuple, str | None] = {}
    source = suite.path.name if suite.path is not None else suite.name
    messages = {_data_problem(run.config["data"], cache) for run in suite.runs()}
    return [f"{source}: data: {message}" for message in sorted(m for m in messages if m)]


# ----------------------------------------------------------------------------------------------
# Hashes


def config_hash(config: Mapping, activation: ActivationEntry, seed: int) -> str:
    """Short sha256 of the canonical JSON of what a run computes: config, activation, seed.

    Canonical JSON: keys sorted, separators (",", ":"), ASCII only. Leaves out where the data lives
    (HASH_EXCLUDED), the activation's label, the suite's name, description and baseline.
    """
    config = copy.deepcopy(dict(config))
    for section, key in HASH_EXCLUDED:
        if isinstance(config.get(section), dict):
            config[section].pop(key, None)
    payload = {"config": config, "seed": seed,
               "activation": {"name": activation.name, "impl": activation.impl,
                              "params": activation.params}}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


# ----------------------------------------------------------------------------------------------
# Overrides and loading


def parse_override(text: str) -> tuple[str, object]:
    """`KEY=VALUE` from --set: a dotted key and a YAML value ("train.epochs=2" -> ("train.epochs", 2))."""
    key, sep, value = str(text).partition("=")
    key = key.strip()
    if not sep or not OVERRIDE_KEY.match(key):
        raise SuiteError([f"--set {text}: expected KEY=VALUE with a dotted key, e.g. train.epochs=2"])
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SuiteError([f"--set {text}: the value is not valid YAML ({problem}); quote text that "
                          "contains YAML punctuation"]) from None


def _apply_override(document: dict, key: str, value: object) -> str | None:
    """Set a dotted key in the raw document; sweep keys are themselves dotted (sweep.model.depth)."""
    parts = key.split(".")
    if parts[0] == "sweep" and len(parts) > 1:
        parts = ["sweep", ".".join(parts[1:])]
    target = document
    for depth, part in enumerate(parts[:-1]):
        if target.get(part) is None:
            target[part] = {}
        if not isinstance(target[part], dict):
            where = ".".join(parts[:depth + 1])
            return f"cannot set {key}: {where} is {_show(target[part])}, not a mapping"
        target = target[part]
    target[parts[-1]] = value
    return None


def _seed_list(seeds: object) -> object:
    """--seeds as given by the CLI ("0,1" or a list) or the API (an int n: range(n), as in a file)."""
    if isinstance(seeds, str):
        values: list[object] = []
        for part in split_names(seeds):
            values.append(int(part) if re.fullmatch(r"[-+]?\d+", part) else part)
        return values
    if isinstance(seeds, Iterable) and not isinstance(seeds, Mapping):
        return [int(s) if isinstance(s, str) and re.fullmatch(r"[-+]?\d+", s.strip()) else s for s in seeds]
    return seeds


def _activation_list(activations: str | Iterable[str]) -> list[str]:
    items = [activations] if isinstance(activations, str) else list(activations)
    return [part for item in items for part in split_names(str(item))]


def _duplicate_keys(text: str) -> list[str]:
    """Keys written twice in one mapping (YAML keeps the last silently; here it is a mistake)."""
    problems = []

    def walk(node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                child = f"{path}.{key}" if path else str(key)
                if key is not None and key in seen:
                    problems.append(f"line {key_node.start_mark.line + 1}: {child}: duplicate key (the "
                                    "later one would silently replace the first)")
                seen.add(key)
                walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, "")
    return problems


def _read_yaml(path: Path) -> tuple[object, list[str]]:
    """The document and the problems of keys written twice (which yaml.safe_load hides)."""
    label = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ActbenchError(f"suite file '{path}' is not UTF-8 text; expected a YAML suite file") from None
    except OSError as error:
        raise ActbenchError(f"cannot read suite file '{path}': {error.strerror}") from None
    try:
        document = yaml.safe_load(text)
        duplicates = _duplicate_keys(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        context = getattr(error, "context", None)
        context = f" ({context})" if context else ""
        raise SuiteError([f"{label}: {where}invalid YAML: {problem}{context}"]) from None
    return document, [f"{label}: {problem}" for problem in duplicates]


def find_suite(path: str | Path) -> Path:
    """The suite file a CLI argument names: a path, or the name of a shipped suite ("quick")."""
    path = Path(path)
    if path.is_dir():
        raise ActbenchError(f"'{path}' is a directory; expected a YAML suite file")
    if path.is_file():
        return path
    shipped = sorted(p.stem for p in SHIPPED_SUITES_DIR.glob("*.yaml"))
    if len(path.parts) == 1 and path.suffix in ("", ".yaml", ".yml") and path.stem in shipped:
        return SHIPPED_SUITES_DIR / f"{path.stem}.yaml"
    close = close_matches(path.stem, shipped)
    hint = f"; shipped suites: {', '.join(shipped)}" if shipped else ""
    if close:
        hint = f"; did you mean the shipped suite {_quoted(close)}?"
    raise ActbenchError(f"suite file '{path}' not found{hint}")


def load_suite(path: str | Path, *, overrides: Iterable[str] = (), seeds: object = None,
               activations: str | Iterable[str] | None = None, device: str | None = None,
               check_data: bool = True) -> Suite:
    """Read, override and validate a suite file; raises SuiteError listing every problem.

    `overrides` are --set KEY=VALUE texts applied to the raw document before validation; `seeds`
    ("0,1", a list, or an int n meaning range(n)), `activations` ("mish,relu" or a list) and
    `device` replace the file's. `check_data=False` skips the check that data files exist.
    """
    path = find_suite(path)
    document, duplicates = _read_yaml(path)
    try:
        suite = suite_from_dict(document, source=path.name, path=path, default_name=path.stem,
                                overrides=overrides, seeds=seeds, activations=activations, device=device,
                                check_data=check_data)
    except SuiteError as error:
        raise SuiteError([*duplicates, *error.problems]) from None
    if duplicates:
        raise SuiteError(duplicates)
    return suite


def suite_from_dict(document: object, *, source: str = "suite", path: Path | None = None,
                    default_name: str = "suite", overrides: Iterable[str] = (), seeds: object = None,
                    activations: str | Iterable[str] | None = None, device: str | None = None,
                    check_data: bool = True) -> Suite:
    """Validate a suite given as plain data (as `yaml.safe_load` returns it); `source` labels problems."""
    if document is None:
        raise SuiteError([f"{source}: the suite is empty; expected a mapping with at least 'activations'"])
    if not isinstance(document, Mapping):
        raise SuiteError([f"{source}: top level: expected a mapping of suite keys "
                          f"({', '.join(TOP_LEVEL_KEYS)}), got {_show(document)}"])
    document = copy.deepcopy(dict(document))
    origin: dict[str, str] = {}  # key path -> the override that set it
    problems: list[str] = []
    for text in overrides:
        try:
            key, value = parse_override(text)
        except SuiteError as error:
            problems += error.problems
            continue
        failure = _apply_override(document, key, value)
        if failure:
            problems.append(f"--set {text}: {failure}")
        else:
            origin[key] = f"--set {text}"
    for key, value, flag in (("seeds", None if seeds is None else _seed_list(seeds), "--seeds"),
                             ("activations", None if activations is None else _activation_list(activations),
                              "--act"),
                             ("train.device", device, "--device")):
        if value is not None:
            _apply_override(document, key, value)
            origin[key] = flag

    found: list[Problem] = []
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            found.append((str(key), _unknown_key(str(key), TOP_LEVEL_KEYS)))
    name = document.get("name", default_name)  # a file name is taken as it is; a written name is checked
    if "name" in document and (not isinstance(name, str) or not NAME_PATTERN.match(name)):
        found.append(("name", f"expected a name of letters, digits, '_', '-' or '.', got {_show(name)}"))
    description = document.get("description")
    description = "" if description is None else description
    if not isinstance(description, str):
        found.append(("description", f"expected a string, got {_show(description)}"))
    sections = {section: document[section] for section in SECTION_NAMES if section in document}
    entries = _activations(document.get("activations"), found)
    seed_list = _seeds(document.get("seeds"), found)
    baseline = _baseline(document.get("baseline"), entries, found)
    sweep = _sweep(document.get("sweep"), found)
    found += _check_points(sections, sweep, check_data)
    found.sort(key=lambda problem: _top_level_position(problem[0]))

    problems += [_problem_line(source, origin, path, message) for path, message in found]
    if problems:
        raise SuiteError(problems)
    config, _ = resolve_config(sections)
    # the sweep's values as normalised (1e-3 written as text becomes 0.001)
    sweep = {key: [_get_dotted(resolve_config(_with_point(sections, {key: value}))[0], key)
                   for value in values] for key, values in sweep.items()}
    same = [_problem_line(source, origin, f"sweep.{key}[{i}]", f"the same setting as "
                          f"sweep.{key}[{j}] ({_show(values[i])}); a sweep point would run twice")
            for key, values in sweep.items() for i in range(len(values)) for j in range(i)
            if _canonical(values[i]) == _canonical(values[j])]
    if same:
        raise SuiteError(same)
    return Suite(name=name, path=path, description=description, config=config, activations=entries,
                 seeds=seed_list, baseline=baseline, sweep=sweep, sections=sections)


def _canonical(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text.lower() if isinstance(value, str) else text


def _top_level_position(path: str) -> int:
    """Problems are listed in the order of the top-level keys (the usual order of a file)."""
    head = re.split(r"[.\[]", path, maxsplit=1)[0]
    return TOP_LEVEL_KEYS.index(head) if head in TOP_LEVEL_KEYS else -1


def _problem_line(source: str, origin: Mapping[str, str], path: str, message: str) -> str:
    """'<file or override>: <key path>: <message>', naming the override that set the key if one did."""
    for key, flag in origin.items():
        if path == key or path.startswith(key + ".") or path.startswith(key + "["):
            source = flag
    return f"{source}: {path}: {message}" if path else f"{source}: {message}"

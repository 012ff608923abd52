"""Typed, frozen configuration: what one training run computes, as validation leaves it.

Suite validation (`suite_keys.py` with the toolkit of `validation.py`) checks the raw YAML
sections as plain dicts, so every problem can be listed at once, and only then builds these objects. They are plain data so that a run can be sent to another
process unchanged: every class pickles and round-trips through `to_dict()` / `from_dict()`, whose
dicts are exactly the resolved sections a suite's sidecar records and its config hash is made of.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

HASH_LENGTH = 12
# Where the data lives does not change what a run computes: moving the files keeps the hashes.
# Neither do the resources a run is given (threads, GPUs per run): a suite run with 2 workers of
# 1 thread each writes the hashes a sequential run writes, and either resumes the other.
HASH_EXCLUDED = (("data", "root"), ("data", "download"), ("train", "threads"),
                 ("train", "gpus_per_run"))
RESOURCE_KEYS = ("train.threads", "train.gpus_per_run")


def freeze(value: Any) -> Any:
    """Lists as tuples and mappings as `Options`, all the way down."""
    if isinstance(value, Mapping):
        return Options(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """The plain JSON-ready form of a frozen value: tuples as lists, `Options` as dicts."""
    if isinstance(value, Options):
        return {key: thaw(item) for key, item in value._items}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


class Options(Mapping):
    """A read-only mapping for the keys that depend on a name (a model's or a data set's options,
    a sweep point). Values are stored frozen and handed out as plain data (lists, dicts), so
    callers see what the YAML said and nothing they do changes the stored value."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | None = None):
        object.__setattr__(self, "_items", tuple((str(k), freeze(v)) for k, v in (items or {}).items()))

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items:
            if name == key:
                return thaw(value)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items))  # equal mappings (in any key order) hash alike

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Options are read-only")

    def __reduce__(self):
        return (Options, (thaw(self),))

    def __repr__(self) -> str:
        return f"Options({thaw(self)!r})"


@dataclass(frozen=True)
class _Section:
    """A suite section: its fixed keys as fields; `options` (where present) holds the keys that
    depend on the section's name and comes after them in `to_dict()`, as in the YAML."""

    def to_dict(self) -> dict[str, Any]:
        result = {f.name: thaw(getattr(self, f.name)) for f in fields(self) if f.name != "options"}
        result.update(thaw(getattr(self, "options", Options())))
        return result

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]):
        """The section from its dict; a field with a default may be missing (an older sidecar)."""
        names = [f.name for f in fields(cls)]
        fixed = {f.name: freeze(values[f.name]) for f in fields(cls)
                 if f.name != "options" and (f.name in values or f.default is MISSING)}
        if "options" in names:
            fixed["options"] = Options({k: v for k, v in values.items() if k not in fixed})
        elif set(values) - set(fixed):
            raise KeyError(f"unknown {cls.__name__} keys: {', '.join(sorted(set(values) - set(fixed)))}")
        return cls(**fixed)


@dataclass(frozen=True)
class DataConfig(_Section):
    name: str
    root: str | None
    download: bool
    options: Options  # the data set's own keys (data.DATASET_OPTIONS[name])


@dataclass(frozen=True)
class ModelConfig(_Section):
    name: str
    init: str
    init_std: float
    options: Options  # the model's own keys (models.MODEL_OPTIONS[name])


@dataclass(frozen=True)
class OptimConfig(_Section):
    name: str
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    l1: float
    betas: tuple[float, float]
    eps: float


@dataclass(frozen=True)
class ScheduleConfig(_Section):
    name: str
    warmup_epochs: int
    step_size: int
    milestones: tuple[int, ...]
    gamma: float
    max_lr: float | None
    min_lr: float


@dataclass(frozen=True)
class TrainConfig(_Section):
    epochs: int
    batch_size: int
    eval_batch_size: int
    augment: bool
    mixup: float
    label_smoothing: float
    grad_clip: float | None
    amp: bool
    channels_last: bool
    compile: bool
    deterministic: bool
    device: str  # as written ('auto'); RunSpec.device is the concrete one
    # resources, not part of what a run computes (HASH_EXCLUDED): None lets the executor choose
    threads: int | None = None
    gpus_per_run: float | None = None


@dataclass(frozen=True)
class EvalConfig(_Section):
    noise: tuple[float, ...]


SECTIONS: dict[str, type[_Section]] = {"data": DataConfig, "model": ModelConfig,
                                       "optim": OptimConfig, "schedule": ScheduleConfig,
                                       "train": TrainConfig, "eval": EvalConfig}


@dataclass(frozen=True)
class RunConfig:
    """The six resolved sections of one sweep point."""

    data: DataConfig
    model: ModelConfig
    optim: OptimConfig
    schedule: ScheduleConfig
    train: TrainConfig
    eval: EvalConfig

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: getattr(self, name).to_dict() for name in SECTIONS}

    @classmethod
    def from_dict(cls, values: Mapping[str, Mapping[str, Any]]) -> RunConfig:
        return cls(**{name: section.from_dict(values[name]) for name, section in SECTIONS.items()})


@dataclass(frozen=True)
class ActivationEntry:
    """One activation of a suite: canonical name, concrete implementation, all options, report label."""

    name: str
    impl: str | None
    params: Options
    label: str

    def __post_init__(self) -> None:
        if not isinstance(self.params, Options):
            object.__setattr__(self, "params", Options(self.params))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "impl": self.impl, "params": thaw(self.params), "label": self.label}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ActivationEntry:
        return cls(values["name"], values["impl"], Options(values["params"]), values["label"])


@dataclass(frozen=True)
class RunSpec:
    """One training run, fully resolved: a sweep point, a seed and an activation, the typed config,
    the concrete device (resolved once, when the suite is expanded) and the hash that identifies
    the run in reports (resuming matches runs by it)."""

    index: int
    activation: ActivationEntry
    seed: int
    sweep: Options  # dotted key -> value at this run's sweep point
    config: RunConfig
    device: str
    config_hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "activation": self.activation.to_dict(), "seed": self.seed,
                "sweep": thaw(self.sweep), "config": self.config.to_dict(), "device": self.device,
                "config_hash": self.config_hash}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunSpec:
        return cls(index=values["index"], activation=ActivationEntry.from_dict(values["activation"]),
                   seed=values["seed"], sweep=Options(values["sweep"]),
                   config=RunConfig.from_dict(values["config"]), device=values["device"],
                   config_hash=values["config_hash"])


def config_hash(config: RunConfig | Mapping, activation: ActivationEntry, seed: int) -> str:
    """Short sha256 of the canonical JSON of what a run computes: config, activation, seed.

    Canonical JSON: keys sorted, separators (",", ":"), ASCII only. Leaves out where the data lives
    (HASH_EXCLUDED), the activation's label, the suite's name, description and baseline. Reports
    written by earlier versions resume by this value: its input and format must never change.
    """
    config = config.to_dict() if isinstance(config, RunConfig) else copy.deepcopy(dict(config))
    for section, key in HASH_EXCLUDED:
        if isinstance(config.get(section), dict):
            config[section].pop(key, None)
    activation_part = {"name": activation.name, "impl": activation.impl,
                       "params": thaw(activation.params)}
    payload = {"config": config, "seed": seed, "activation": activation_part}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]

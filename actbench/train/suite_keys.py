"""The keys of a suite's six sections, their defaults and checks, and how one sweep point's
sections are resolved against them (defaults filled in, every value checked).

Data set and model options come from their owners' tables (data.DATASET_OPTIONS,
models.MODEL_OPTIONS / COMMON_OPTIONS) and follow the data set and model a point names; the typed
objects built from a resolved point are in config.py. docs/suites.md documents every key.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping

from . import data, models, sequences
from .suite_rules import check_across_keys
from .validation import (Check, Key, Problem, anything, boolean, check_one, choice, integer, list_of,
                         number, optional, show, string, unknown_key)

OPTIMISERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adamax", "nadam", "adadelta")
SCHEDULES = ("constant", "step", "multistep", "cosine", "onecycle")
SECTION_NAMES = ("data", "model", "optim", "schedule", "train", "eval")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
# Limits on what would otherwise run or allocate without end (a typo of a few digits): more
# epochs than any short training run has, more generated samples than fit a worker's memory.
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 24
MAX_SAMPLES = 10_000_000

# Checks for the option names that data.DATASET_OPTIONS and models.MODEL_OPTIONS / COMMON_OPTIONS
# use; an option not listed here is checked by the type of its default (see inferred_check).
OPTION_CHECKS: dict[str, Check] = {
    "init": choice(lambda: models.INITIALISERS, "initialiser"),
    "init_std": number(0, low_open=True),
    "depth": integer(1),
    "width": integer(1),
    "hidden": integer(1),
    "conv_layers": integer(1),
    "stem_channels": integer(1),
    "dropout": number(0, 1, high_open=True),
    "batchnorm": boolean(),
    # the models' own table of string choices (resnet version and shortcut)
    **{name: choice(lambda choices=choices: choices, f"model {name}")
       for name, choices in models.CHOICES.items()},
    "width_mult": number(0, low_open=True),
    "heads": integer(1),
    "mlp_ratio": number(0, low_open=True),
    "train_subset": optional(integer(1)),
    "num_samples": integer(10, MAX_SAMPLES),
    "shape": list_of(integer(1), min_length=1, max_length=3,
                      what="a list of 1 to 3 integers >= 1 (channels, then spatial sizes)"),
    "classes": integer(2),
    "train_size": integer(1, MAX_SAMPLES),
    "test_size": integer(1, MAX_SAMPLES),
    # sequence data sets (data.option_problem checks how they fit together)
    "vocab_size": integer(2, sequences.MAX_VOCAB),
    "seq_len": integer(1, sequences.MAX_SEQ_LEN),
    "train_targets": choice(lambda: sequences.TRAIN_TARGETS, "train_targets setting"),
    "noise_vocab_size": integer(1, sequences.MAX_VOCAB),
    "noise_fraction": number(0, 1, high_open=True),
    "key_tokens": integer(1),
    "value_tokens": integer(1),
    "copy_tokens": integer(1),
    "path": string(re.compile(r"\S"), "a file path"),
    "val_fraction": number(0, 1, low_open=True, high_open=True),
}


def inferred_check(default: object) -> Check:
    """A check from the type of an option's default, for options this module does not know yet."""
    if isinstance(default, bool):
        return boolean()
    if isinstance(default, int):
        return integer()
    if isinstance(default, float):
        return number()
    if isinstance(default, str):
        return string()
    if isinstance(default, list):
        return list_of(anything(), what="a list")
    return anything()


def option_keys(options: Mapping[str, object]) -> dict[str, Key]:
    return {name: Key(copy.deepcopy(default), OPTION_CHECKS.get(name) or inferred_check(default))
            for name, default in options.items()}


def fixed_keys() -> dict[str, dict[str, Key]]:
    """The keys every suite accepts in each section (data set and model options come on top)."""
    return {
        "data": {
            "name": Key("mnist1d", choice(lambda: data.DATASET_OPTIONS, "data set")),
            "root": Key(None, optional(string(re.compile(r"\S"), "a directory path"))),
            "download": Key(False, boolean()),
        },
        "model": {
            "name": Key("mlp", choice(lambda: models.MODEL_OPTIONS, "model")),
            **option_keys(models.COMMON_OPTIONS),
        },
        "optim": {
            "name": Key("adam", choice(lambda: OPTIMISERS, "optimiser")),
            "lr": Key(0.001, number(0, low_open=True)),
            "momentum": Key(0.9, number(0, 1, high_open=True)),
            "nesterov": Key(False, boolean()),
            "weight_decay": Key(0.0, number(0)),
            "l1": Key(0.0, number(0)),
            "betas": Key([0.9, 0.999], list_of(number(0, 1, high_open=True), min_length=2, max_length=2,
                                                 what="a list of two numbers >= 0 and < 1")),
            "eps": Key(1e-8, number(0, low_open=True)),
        },
        "schedule": {
            "name": Key("constant", choice(lambda: SCHEDULES, "schedule")),
            "warmup_epochs": Key(0, integer(0)),
            "step_size": Key(30, integer(1)),
            "milestones": Key([], list_of(integer(1), increasing=True,
                                           what="a list of epochs (integers >= 1)")),
            "gamma": Key(0.1, number(0, low_open=True)),
            "max_lr": Key(None, optional(number(0, low_open=True))),
            "min_lr": Key(0.0, number(0)),
        },
        "train": {
            "epochs": Key(10, integer(1, MAX_EPOCHS)),
            "batch_size": Key(128, integer(1, MAX_BATCH)),
            "eval_batch_size": Key(1024, integer(1, MAX_BATCH)),
            "augment": Key(False, boolean()),
            "mixup": Key(0.0, number(0)),
            "label_smoothing": Key(0.0, number(0, 1, high_open=True)),
            "grad_clip": Key(None, optional(number(0, low_open=True))),
            "amp": Key(False, boolean()),
            "channels_last": Key(False, boolean()),
            "compile": Key(False, boolean()),
            "deterministic": Key(False, boolean()),
            "device": Key("auto", string(DEVICE_PATTERN, "auto, cpu, cuda, cuda:N or mps")),
            "threads": Key(None, optional(integer(1))),
            "gpus_per_run": Key(None, optional(number(0, 1, low_open=True))),
        },
        "eval": {
            "noise": Key([], list_of(number(0), what="a list of noise standard deviations >= 0")),
        },
    }


def schema() -> dict[str, dict[str, object]]:
    """Every section key any suite may use, with its default (data set/model options: all of them)."""
    result = {section: {name: key.default for name, key in keys.items()}
              for section, keys in fixed_keys().items()}
    for options in data.DATASET_OPTIONS.values():
        for name, default in options.items():
            result["data"].setdefault(name, default)
    for options in models.MODEL_OPTIONS.values():
        for name, default in options.items():
            result["model"].setdefault(name, default)
    return result


def resolve_config(sections: Mapping[str, object]) -> tuple[dict, list[Problem]]:
    """Fill defaults into the six sections and check every value.

    Returns the resolved config (invalid values kept as written) and the problems found, each as
    (key path, message). Data set and model options follow the data set and model named here.
    """
    fixed = fixed_keys()
    config: dict = {}
    problems: list[Problem] = []
    for section in SECTION_NAMES:
        raw = sections.get(section)
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            problems.append((section, f"expected a mapping of {section} options, got {show(raw)}"))
            raw = {}
        keys = dict(fixed[section])
        other_keys: dict[str, list[str]] = {}  # options of other data sets / models: name -> owners
        if section in ("data", "model"):
            table = data.DATASET_OPTIONS if section == "data" else models.MODEL_OPTIONS
            chosen = check_one(keys["name"], raw.get("name", keys["name"].default), f"{section}.name", [])
            if chosen in table:
                keys.update(option_keys(table[chosen]))
            for owner, options in table.items():
                for option in options:
                    if option not in keys:
                        other_keys.setdefault(option, []).append(owner)
        config[section] = _resolve_section(section, raw, keys, other_keys, problems)
    check_across_keys(config, problems)
    return config, problems


def _resolve_section(section: str, raw: Mapping, keys: Mapping[str, Key],
                     other_keys: Mapping[str, list[str]], problems: list[Problem]) -> dict:
    fixed = fixed_keys()[section]
    given = {}
    for name, value in raw.items():  # in file order, so problems come in file order
        path = f"{section}.{name}"
        if name in keys:
            given[name] = check_one(keys[name], value, path, problems)
        elif name in other_keys:
            chosen = check_one(keys["name"], raw.get("name", keys["name"].default), "", [])
            if chosen not in (data.DATASET_OPTIONS if section == "data" else models.MODEL_OPTIONS):
                continue  # the data set or model name is wrong (reported): its options are unknown
            what = "data set" if section == "data" else "model"
            own = [key for key in keys if key not in fixed] or ["none"]
            problems.append((path, f"not an option of {what} '{chosen}' (only of "
                                   f"{', '.join(other_keys[name])}); its options: {', '.join(own)}"))
        else:  # suggestions from every data set's / model's options, so each sweep point agrees
            problems.append((path, unknown_key(str(name), [*keys, *other_keys])))
    return {name: given[name] if name in given else copy.deepcopy(key.default) for name, key in keys.items()}

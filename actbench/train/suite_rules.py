"""Checks that involve two or more keys of a resolved sweep point (each key already passed its own).

The facts they check against belong to their owners: `models` (RESNET_DEPTHS, INPUT_DIMS,
SEQUENCE_MODELS), `gpt` (option_problem), `data` (input_shape, AUGMENTATIONS, SEQUENCE_DATASETS)
and `language` (why mixup and input noise mean nothing for token ids). Each rule names the keys it
reads; it runs only when none of them has a problem of its own, so one mistake is reported once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from . import data, gpt, language, models
from .validation import Problem, is_int, show

Config = Mapping[str, Mapping[str, object]]


def _resnet_depth(config: Config) -> Problem | None:
    model = config["model"]
    if model["name"] == "resnet" and model["depth"] not in models.RESNET_DEPTHS:
        return ("model.depth", f"expected one of {', '.join(map(str, models.RESNET_DEPTHS))} for "
                               f"resnet (6n+2), got {show(model['depth'])}")
    return None


def _gpt_shape(config: Config) -> Problem | None:
    model = config["model"]
    if model["name"] != "gpt":
        return None
    problem = gpt.option_problem(model["width"], model["heads"], model["positions"],
                                 model["mlp_ratio"])
    if problem is None:
        return None
    key, expected, value = problem
    return (f"model.{key}", f"expected {expected} for gpt, got {show(value)}")


def _nesterov(config: Config) -> Problem | None:
    optim = config["optim"]
    if optim["name"] == "sgd" and optim["nesterov"] and optim["momentum"] == 0:
        return ("optim.nesterov", "needs optim.momentum > 0 with sgd")
    return None


def _milestones(config: Config) -> Problem | None:
    schedule = config["schedule"]
    if schedule["name"] == "multistep" and not schedule["milestones"]:
        return ("schedule.milestones", "expected a non-empty list of epochs for the multistep "
                                       "schedule")
    return None


def _warmup(config: Config) -> Problem | None:
    warmup, epochs = config["schedule"]["warmup_epochs"], config["train"]["epochs"]
    if warmup >= epochs:
        return ("schedule.warmup_epochs", f"expected fewer than train.epochs ({epochs}), "
                                          f"got {warmup}")
    return None


def _augment(config: Config) -> Problem | None:
    name = config["data"]["name"]
    if config["train"]["augment"] and name not in data.AUGMENTATIONS:
        return ("train.augment", f"{name} has no standard augmentation (only "
                                 f"{' and '.join(data.AUGMENTATIONS)} do); expected false")
    return None


def _task_fit(config: Config) -> Problem | None:
    """Sequence data (token ids, a target per position) need a sequence model, and a sequence
    model needs sequence data: the key to change is the model's, or the data's for gpt."""
    name, model = config["data"]["name"], config["model"]["name"]
    sequence_data, sequence_model = name in data.SEQUENCE_DATASETS, model in models.SEQUENCE_MODELS
    if sequence_data and not sequence_model:
        return ("model.name", f"expected {' or '.join(models.SEQUENCE_MODELS)} for sequence data set "
                              f"{name} (token ids, a target per position), got {model}")
    if sequence_model and not sequence_data:
        return ("data.name", f"expected a sequence data set for model {model} (one of "
                             f"{', '.join(sorted(data.SEQUENCE_DATASETS))}), got {name}")
    return None


def _sequence_mixup(config: Config) -> Problem | None:
    """Mixup blends the inputs' values: meaningless for token ids."""
    if config["data"]["name"] in data.SEQUENCE_DATASETS and config["train"]["mixup"] > 0:
        return ("train.mixup", language.MIXUP_PROBLEM)
    return None


def _sequence_noise(config: Config) -> Problem | None:
    """Input noise is added to the inputs' values: meaningless for token ids."""
    if config["data"]["name"] in data.SEQUENCE_DATASETS and config["eval"]["noise"]:
        return ("eval.noise", language.NOISE_PROBLEM)
    return None


def _input_dims(config: Config) -> Problem | None:
    data_cfg, model = config["data"], config["model"]
    shape = data.input_shape(data_cfg["name"], data_cfg)
    needed = models.INPUT_DIMS.get(model["name"])
    if shape is not None and needed is not None and len(shape) != needed:
        kind = {1: "token sequences (L,)", 2: "1-D signals (C, L), e.g. mnist1d",
                3: "images (C, H, W)"}[needed]
        return ("model.name", f"{model['name']} takes {kind}; {data_cfg['name']} gives "
                              f"{len(shape)}-D samples")
    return None


def _image_side(data_cfg: Mapping[str, object]) -> int | None:
    """The smaller of height and width of the data set's images (None: not images / unknown)."""
    shape = data.input_shape(data_cfg["name"], data_cfg)
    if shape is None or len(shape) != 3 or not all(is_int(size) for size in shape):
        return None
    return min(shape[1:])


def _conv_layers(config: Config) -> Problem | None:
    model, side = config["model"], _image_side(config["data"])
    if model["name"] == "cnn" and side is not None and side < 2 ** model["conv_layers"]:
        return ("model.conv_layers", f"expected at most {max(side.bit_length() - 1, 0)} for "
                                     f"{side}-pixel images (each layer halves them), got "
                                     f"{model['conv_layers']}")
    return None


def _min_lr(config: Config) -> Problem | None:
    schedule, lr = config["schedule"], config["optim"]["lr"]
    if schedule["name"] not in ("cosine", "onecycle"):
        return None
    peak = schedule["max_lr"] if schedule["name"] == "onecycle" and schedule["max_lr"] else lr
    if schedule["min_lr"] >= peak:
        return ("schedule.min_lr", f"expected less than the peak learning rate ({peak:g}), "
                                   f"got {schedule['min_lr']:g}")
    return None


def _sequence_options(config: Config) -> Problem | None:
    """Options of a sequence data set that are fine alone but not together (data.option_problem)."""
    data_cfg = config["data"]
    return data.option_problem(data_cfg["name"], data_cfg)


# (the keys a rule reads, the rule), in the order their problems are listed
RULES: tuple[tuple[tuple[str, ...], Callable[[Config], Problem | None]], ...] = (
    (("model.name", "model.depth"), _resnet_depth),
    (("model.name", "model.width", "model.heads", "model.positions", "model.mlp_ratio"), _gpt_shape),
    (("optim.name", "optim.nesterov", "optim.momentum"), _nesterov),
    (("schedule.name", "schedule.milestones"), _milestones),
    (("schedule.warmup_epochs", "train.epochs"), _warmup),
    (("train.augment", "data.name"), _augment),
    (("model.name", "data.name"), _task_fit),
    (("data.name", "train.mixup"), _sequence_mixup),
    (("data.name", "eval.noise"), _sequence_noise),
    (("model.name", "data.name", "data.shape"), _input_dims),
    (("model.name", "model.conv_layers", "data.name", "data.shape"), _conv_layers),
    (("schedule.name", "schedule.min_lr", "schedule.max_lr", "optim.lr"), _min_lr),
    (("data.name", "data.vocab_size", "data.seq_len", "data.train_size", "data.test_size",
      "data.train_targets", "data.noise_vocab_size", "data.noise_fraction", "data.key_tokens",
      "data.value_tokens", "data.copy_tokens", "data.path", "data.val_fraction"), _sequence_options),
)


def check_across_keys(config: Config, problems: list[Problem]) -> None:
    """Append the problems of every rule whose keys are free of problems of their own, or of an
    earlier rule's (gpt on images is one problem, not also one of input dimensions)."""
    bad = {path.split("[")[0] for path, _ in problems}
    for paths, rule in RULES:
        if not any(path in bad or path.split(".")[0] in bad for path in paths):
            problem = rule(config)
            if problem is not None:
                problems.append(problem)
                bad.add(problem[0].split("[")[0])

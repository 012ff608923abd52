"""`actbench model`'s configurations: activation x implementation x device x precision x batch
size x mode, for one model, each checked before anything is built.

Two references are always measured beside what was asked: `identity` (the model with no
activation at all, which gives each activation's share of the step) and the baseline (relu),
which `compare` and the tables take ratios to. A gated activation ((..., 2h) -> (..., h)) is
refused here, before anything is built, for a model not built for one (all but gpt); `--act all`
then means every activation but the gated ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..devices import resolve_device
from ..errors import ActbenchError
from ..micro.plan import (ActivationChoice, activation_choices, baseline_choice, checked_names,
                          given_items, implementations_for, split_list)
from ..zoo.registry import lookup
from .step import DTYPES, StepSetup

MODES = ("infer", "train")
REFERENCE = "identity"
MAX_BATCH = 1 << 16


@dataclass(frozen=True)
class ModelConfig:
    """One measurement: the model with one activation implementation, run one way."""

    model: str
    activation: ActivationChoice
    impl: str
    setup: StepSetup
    sample_shape: tuple[int, ...] = ()

    @property
    def input_shape(self) -> str:
        """The batch's shape as the report writes it: 32x3x32x32."""
        return "x".join(map(str, (self.setup.batch_size, *self.sample_shape)))

    @property
    def key(self) -> tuple[str, ...]:
        """The report's MODEL_KEY cells, as the CSV holds them."""
        s = self.setup
        return (self.model, self.activation.label, self.impl, s.device, s.dtype, _flag(s.amp),
                str(s.batch_size), s.mode, _flag(s.channels_last), _flag(s.compile),
                self.input_shape)

    @property
    def label(self) -> str:
        s = self.setup
        return f"{self.activation.label}/{self.impl} {s.mode} batch {s.batch_size}"


@dataclass
class ModelPlan:
    configs: list[ModelConfig] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    baseline_label: str | None = None


def _flag(value: bool) -> str:
    return "true" if value else "false"


def parse_batch_sizes(values: Sequence[str] | None) -> list[int]:
    sizes = []
    for text in given_items("--batch-size", values) or ["32"]:
        try:
            size = int(text)
        except ValueError:
            raise ActbenchError(f"--batch-size '{text}' is not a whole number; expected sizes "
                                "such as 1,32,256") from None
        if not 1 <= size <= MAX_BATCH:
            raise ActbenchError(f"--batch-size {size} is out of range; expected 1 to {MAX_BATCH}")
        sizes.append(size)
    return list(dict.fromkeys(sizes))


def make_model_plan(model: str, activations: Sequence[str] | None = None, impl: str | None = None,
                    devices: Sequence[str] | None = None, dtypes: Sequence[str] | None = None,
                    amp: bool = False, batch_sizes: Sequence[str] | None = None,
                    modes: Sequence[str] | None = None, channels_last: bool = False,
                    compile: bool = False, baseline: str | None = "relu",
                    resolve=resolve_device, sample_shape: tuple[int, ...] = (),
                    takes_gated: bool = False) -> ModelPlan:
    """Expand the options into configurations (the references first in every group);
    `takes_gated`: the model is built for gated activations (ModelSource.takes_gated)."""
    given = list(activations) if activations else ["relu", "silu", "mish"]
    choices = activation_choices(given)
    if not takes_gated:
        choices = _without_implied_gated(given, choices)
    impls = implementations_for(impl, choices)
    added, baseline_label = baseline_choice(baseline, choices)
    measured = choices + ([added] if added is not None else [])
    if not takes_gated:
        _refuse_gated(model, measured)
    references = [c for c in (_reference(measured), added) if c is not None]
    impls = [(c, [c.spec.default_impl]) for c in references] + impls
    device_names = list(dict.fromkeys(resolve(d) for d in (given_items("--device", devices)
                                                          or ["auto"])))
    dtype_names = checked_names("dtype", [d.lower() for d in given_items("--dtype", dtypes)]
                                or ["float32"], tuple(DTYPES))
    if amp and dtype_names != ["float32"]:
        raise ActbenchError("--amp runs a float32 model under autocast; leave --dtype out with it")
    mode_names = checked_names("mode", [m.lower() for m in given_items("--mode", modes)]
                               or list(MODES), MODES)
    plan = ModelPlan(devices=device_names, baseline_label=baseline_label)
    for device in device_names:
        for dtype in dtype_names:
            for batch in parse_batch_sizes(batch_sizes):
                for mode in mode_names:
                    setup = StepSetup(device, dtype, amp, batch, mode, channels_last, compile)
                    plan.configs += [ModelConfig(model, choice, name, setup, tuple(sample_shape))
                                     for choice, selected in impls for name in selected]
    _check_compiled_groups(plan.configs, compile, channels_last, sample_shape)
    return plan


COMPILES_PER_CLASS = 8  # torch.compile's recompile limit: beyond it a model runs eagerly


def _check_compiled_groups(configs: list[ModelConfig], compile: bool, channels_last: bool,
                           sample_shape: Sequence[int]) -> None:
    """Options that would be recorded but not take effect are refused."""
    if channels_last and sample_shape and len(sample_shape) != 3:
        raise ActbenchError(f"--channels-last lays out images (channels, height, width); this "
                            f"model's samples are {'x'.join(map(str, sample_shape))}")
    largest = max((len(group) for group in groups(configs)), default=0)
    if compile and largest > COMPILES_PER_CLASS:
        raise ActbenchError(f"--compile with {largest} activation implementations side by side: "
                            f"torch compiles one model class at most {COMPILES_PER_CLASS} times "
                            "and then runs it eagerly; measure at most "
                            f"{COMPILES_PER_CLASS} (identity and the baseline included) at a time")


def _without_implied_gated(given: list[str], choices: list[ActivationChoice]
                           ) -> list[ActivationChoice]:
    """`--act all` for a model with no place for a gated activation: the gated ones it brought
    in are dropped (one named as well stays, and is refused)."""
    named = {label.lower() for label in split_list(given)}
    if "all" not in named:
        return choices
    return [c for c in choices if not c.spec.gated or c.label.lower() in named]


def _refuse_gated(model: str, choices: list[ActivationChoice]) -> None:
    """A gated activation halves the width the next layer expects: only a model built for one
    (gpt, whose MLP widens the layer before it) can take it."""
    gated = [c.label for c in choices if c.spec.gated]
    if gated:
        what = "is a gated activation" if len(gated) == 1 else "are gated activations"
        raise ActbenchError(f"{', '.join(gated)} {what} ((..., 2h) -> (..., h)), which {model} "
                            "has no place for: gated activations need a model built for them "
                            "(gpt)")


def _reference(choices: list[ActivationChoice]) -> ActivationChoice | None:
    """`identity`, unless it was asked for."""
    if any(choice.spec.name == REFERENCE for choice in choices):
        return None
    return ActivationChoice(REFERENCE, lookup(REFERENCE))


def groups(configs: Sequence[ModelConfig]) -> list[list[ModelConfig]]:
    """Configurations that differ only in the activation: measured side by side, interleaved."""
    by_setup: dict[tuple[str, StepSetup], list[ModelConfig]] = {}
    for config in configs:
        by_setup.setdefault((config.model, config.setup), []).append(config)
    return list(by_setup.values())

"""From command-line options to the list of configurations to measure, validated up front.

Every mistake (unknown activation, bad size, CUDA asked for but absent, ...) is raised here,
before the first measurement starts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from itertools import product
from math import prod

from ..errors import ActbenchError, UnknownNameError
from ..devices import resolve_device  # noqa: F401  (part of planning: checked up front)
from ..zoo.registry import ActivationSpec, lookup, split_names

DEFAULT_ACTIVATIONS = ("relu", "leaky_relu", "silu", "swish", "gelu", "mish", "acon_c", "meta_acon",
                       "hardswish", "elu")
DEFAULT_SIZES = (2**16, 2**20, 2**24)
# the layout of the published mish-cuda and PyTorch Mish tables
DEFAULT_SHAPES = ((16, 10, 256, 256),)
PASSES = ("fwd", "bwd", "fwdbwd")
DTYPES = ("float32", "float16", "bfloat16", "float64")
# channel-wise activations need (N, C, ...): a flat size N is laid out as (4, 64, N / 256)
CHANNELWISE_BATCH, CHANNELWISE_CHANNELS = 4, 64


@dataclass(frozen=True)
class ActivationChoice:
    label: str  # as the user wrote it (the report's `activation` column)
    spec: ActivationSpec


@dataclass(frozen=True)
class Config:
    """One measurement: an activation implementation, a tensor, a pass, on a device."""

    activation: ActivationChoice
    impl: str
    device: str
    dtype: str
    shape: tuple[int, ...]
    pass_: str
    threads: int | None = None  # torch's CPU threads while measuring (None: as the process has it)

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def shape_text(self) -> str:
        return "x".join(map(str, self.shape))

    @property
    def key(self) -> tuple[str, ...]:
        """Matches records.schema.MICRO_KEY; used to skip what a report already holds."""
        return (self.activation.label, self.impl, self.device, self.dtype, self.shape_text, self.pass_,
                "" if self.threads is None else str(self.threads))

    @property
    def label(self) -> str:
        """How progress names it: mish/native fwd 1048576."""
        return f"{self.activation.label}/{self.impl} {self.pass_} {self.shape_text}"

    @property
    def group(self) -> tuple[str, str, int, int | None]:
        """Configurations of one group share one input tensor and a thread count, and are measured
        interleaved."""
        return (self.device, self.dtype, self.numel, self.threads)


@dataclass
class Plan:
    configs: list[Config] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    baseline_label: str | None = None  # the baseline's `activation` label in this plan


def split_list(values: list[str] | None) -> list[str]:
    """Repeatable options that also take comma lists: ['a,b', 'c'] -> ['a', 'b', 'c'].

    Commas inside parentheses belong to expressions: 'x * clamp(x, 0, 1)' stays one item."""
    out: list[str] = []
    for value in values or []:
        out.extend(split_names(value))
    return out


MAX_NUMEL = 2 ** 62  # torch indexes elements with signed 64-bit integers; sizes past this are typos


def parse_size(text: str) -> int:
    """'1048576', '2^20', '2**20' or '1M' (binary multiples K/M/G) -> elements."""
    cleaned = text.strip().replace("**", "^")
    match = re.fullmatch(r"(\d+)\^(\d+)", cleaned)
    try:
        if match:
            value = int(match.group(1)) ** int(match.group(2))
        elif cleaned[-1:].upper() in "KMG" and cleaned[:-1].isdigit():
            value = int(cleaned[:-1]) * 1024 ** ("KMG".index(cleaned[-1].upper()) + 1)
        else:
            value = int(cleaned)
    except ValueError:
        raise ActbenchError(f"size '{text}' is not a number of elements; expected e.g. 1048576, "
                            "2^20 or 1M") from None
    if value <= 0:
        raise ActbenchError(f"size {text} must be a positive number of elements")
    if value > MAX_NUMEL:
        raise ActbenchError(f"size {text} ({value} elements) is larger than any tensor torch can "
                            f"index (at most 2^62 elements)")
    return value


def parse_shape(text: str) -> tuple[int, ...]:
    parts = text.lower().replace("(", "").replace(")", "").replace(" ", "").rstrip(",")
    try:
        shape = tuple(int(part) for part in parts.replace(",", "x").split("x"))
    except ValueError:
        shape = ()
    if not shape or min(shape) <= 0:
        raise ActbenchError(f"shape '{text}' is malformed; expected positive integers joined by x, "
                            "e.g. 16x10x256x256")
    return shape


def layout(spec: ActivationSpec, size: int) -> tuple[int, ...] | None:
    """The tensor shape a flat size becomes for `spec`; None where it cannot be laid out."""
    if not spec.channelwise:
        return (size,)
    per = CHANNELWISE_BATCH * CHANNELWISE_CHANNELS
    if size % per:
        return None
    return (CHANNELWISE_BATCH, CHANNELWISE_CHANNELS, size // per)


def make_plan(activations: list[str] | None = None, impl: str | None = None,
              devices: list[str] | None = None, dtypes: list[str] | None = None,
              sizes: list[str] | None = None, shapes: list[str] | None = None,
              passes: list[str] | None = None, baseline: str | None = None,
              resolve=None, threads: list[str] | None = None) -> Plan:
    """Expand the options into configurations (activation x impl x device x dtype x shape x pass,
    and on the CPU x thread count).

    The `baseline` activation is added (its default implementation) when it is not among the
    activations, so every table can show ratios to it. Devices are resolved on this machine unless
    the plan is only checked here and measured elsewhere (`resolve=str`).
    """
    resolve = resolve or resolve_device
    choices = activation_choices(activations)
    added_baseline, baseline_label = baseline_choice(baseline, choices)
    impls_by_choice = implementations_for(impl, choices)
    if added_baseline is not None:
        impls_by_choice.append((added_baseline, [added_baseline.spec.default_impl]))
    device_names = list(dict.fromkeys(resolve(d)
                                      for d in (given_items("--device", devices) or ["auto"])))
    dtype_names = checked_names("dtype", [d.lower() for d in given_items("--dtype", dtypes)]
                                or ["float32"], DTYPES)
    tensors = _tensors(sizes, shapes)
    pass_names = checked_names("pass", [p.lower() for p in given_items("--pass", passes)]
                               or list(PASSES), PASSES)

    counts = thread_counts(threads, device_names)

    plan = Plan(devices=device_names, baseline_label=baseline_label)
    for device, count, dtype, (size, shape) in product(device_names, counts, dtype_names, tensors):
        for choice, selected in impls_by_choice:
            # a size that cannot be laid out stays flat and is reported as unsupported
            config_shape = shape or layout(choice.spec, size) or (size,)
            for impl_name, pass_name in product(selected, pass_names):
                plan.configs.append(Config(choice, impl_name, device, dtype, config_shape,
                                           pass_name, count))
    # '--size 1M --size 2^20' or '--size 64 --shape 64' name one configuration twice
    unique = {config.key: config for config in reversed(plan.configs)}
    plan.configs = [config for config in plan.configs if unique.get(config.key) is config]
    return plan


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as taskset or a container sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_counts(threads: list[str] | None, devices: list[str]) -> list[int]:
    """--threads '1,2,all' -> [1, 2, <available CPUs>]; default: torch's own count.

    A list sweeps the CPU's threads; an accelerator is measured at one count, so a list with a
    GPU in the plan is refused rather than measured once per count for nothing."""
    items = given_items("--threads", threads, "no thread count",
                        "expected counts such as 1,2,all, or leave it out for torch's default")
    if not items:
        import torch

        return [torch.get_num_threads()]
    counts: list[int] = []
    for item in items:
        text = item.strip().lower()
        count = available_cpus() if text == "all" else int(text) if text.isdigit() else 0
        if count < 1:
            raise ActbenchError(f"--threads '{item}' is not a thread count; expected positive "
                                "integers or 'all' (the CPUs this process may use), e.g. 1,2,all")
        counts.append(count)
    counts = list(dict.fromkeys(counts))
    others = [d for d in devices if d != "cpu"]
    if len(counts) > 1 and others:
        raise ActbenchError(f"--threads {','.join(map(str, counts))} sweeps CPU threads, but the "
                            f"plan also measures {others[0]}; give one thread count, or measure "
                            "the CPU on its own")
    return counts


def given_items(option: str, values: list[str] | None, nothing: str = "nothing",
           hint: str = "give a value (comma lists work), or leave it out for the default") -> list[str]:
    """The items of a repeatable option; one given with nothing in it (`--size ''`, a shell
    variable left empty) is a mistake, not a request for the defaults."""
    items = split_list(values)
    if values is not None and list(values) and not items:
        raise ActbenchError(f"{option} was given but names {nothing}; {hint}")
    return items


def activation_choices(activations: list[str] | None) -> list[ActivationChoice]:
    labels = given_items("--act", activations, "no activation", "expected names, import paths or "
                    "expressions (comma lists), or leave it out for the default set")
    labels = labels or list(DEFAULT_ACTIVATIONS)
    if "all" in [label.lower() for label in labels]:
        from ..zoo.registry import names

        labels = [label for label in labels if label.lower() != "all"] + names()
    return [ActivationChoice(label, lookup(label)) for label in dict.fromkeys(labels)]


def baseline_choice(baseline: str | None, choices: list[ActivationChoice]
              ) -> tuple[ActivationChoice | None, str | None]:
    """The baseline to add (None when it is measured anyway) and its label in this plan."""
    if not baseline:
        return None, None
    baseline_spec = lookup(baseline)
    # an alias names the same activation: `--act lrelu --baseline leaky_relu` measures it once
    present = [c for c in choices if c.spec.name == baseline_spec.name]
    if present:
        return None, present[0].label
    return ActivationChoice(baseline, baseline_spec), baseline


def _zoo_implementations() -> set[str]:
    from ..zoo.registry import names

    return {impl for name in names() for impl in lookup(name).implementations}


def implementations_for(impl: str | None, choices: list[ActivationChoice]
                     ) -> list[tuple[ActivationChoice, list[str]]]:
    impl_names = [name.lower() for name in split_list([impl] if impl else None)]
    known_impls = sorted({name for choice in choices for name in choice.spec.implementations})
    for name in impl_names:
        if name != "all" and name not in known_impls:
            if len(choices) == 1 and name in _zoo_implementations():  # this one lacks it
                spec = choices[0].spec
                raise ActbenchError(f"{choices[0].label} has no '{name}' implementation; it has "
                                    f"{', '.join(spec.implementations)}")
            raise UnknownNameError("implementation", name, known_impls)
    impls_by_choice: list[tuple[ActivationChoice, list[str]]] = []
    for choice in choices:
        available = choice.spec.implementations
        if "all" in impl_names:
            selected = available
        else:  # an implementation this activation lacks (memeff for relu): measure its default
            selected = [name for name in impl_names if name in available] or [choice.spec.default_impl]
        impls_by_choice.append((choice, selected))
    return impls_by_choice


def checked_names(what: str, names: list[str], known: tuple[str, ...]) -> list[str]:
    """`names` without repeats, each one known (or UnknownNameError with the closest)."""
    for name in names:
        if name not in known:
            raise UnknownNameError(what, name, known)
    return list(dict.fromkeys(names))


def _tensors(sizes: list[str] | None, shapes: list[str] | None
             ) -> list[tuple[int | None, tuple[int, ...] | None]]:
    """(flat size, None) per --size and (None, shape) per --shape; the defaults without either."""
    size_values = [parse_size(s) for s in given_items("--size", sizes)]
    shape_values = [parse_shape(s) for s in (shapes or [])]
    if not size_values and not shape_values:
        size_values, shape_values = list(DEFAULT_SIZES), list(DEFAULT_SHAPES)
    return [(size, None) for size in size_values] + [(None, shape) for shape in shape_values]

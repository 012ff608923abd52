"""What a suite varies: its activations (each resolved and built once, so a bad name or option
fails before any run), its seeds and its sweep, plus the baseline that names one activation.
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Mapping

from ..errors import ActbenchError, close_matches
from ..zoo.registry import factory_option_problem, lookup
from .config import RESOURCE_KEYS, ActivationEntry
from .suite_keys import schema
from .validation import Problem, as_number, is_int, quoted, show, unknown_key

ACTIVATION_KEYS = ("name", "impl", "params", "label")
DEFAULT_SEEDS = (0, 1, 2)



def _activation_entry(item: object, path: str, problems: list[Problem]) -> ActivationEntry | None:
    """Resolve one `activations` item and build it once, so bad names and params fail here."""
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping):
        problems.append((path, "expected a name, an expression, an import path or a mapping with "
                               f"name/impl/params/label, got {show(item)}"))
        return None
    count = len(problems)
    for key in item:
        if key not in ACTIVATION_KEYS:
            problems.append((f"{path}.{key}", unknown_key(str(key), ACTIVATION_KEYS)))
    name, impl, params, label = (item.get(key) for key in ACTIVATION_KEYS)
    spec = _spec(name, f"{path}.name" if len(item) > 1 else path, problems)
    if spec is None:
        return None
    _check_impl(spec, impl, path, problems)
    params = _checked_params(spec, params, path, problems)
    if label is not None and (not isinstance(label, str) or not label.strip()):
        problems.append((f"{path}.label", f"expected a non-empty string, got {show(label)}"))
    if len(problems) > count:
        return None
    impl = spec.default_impl if impl is None else impl.lower()
    if not _buildable(spec, impl, params, path, problems):
        return None
    canonical = _canonical_expression(name) if spec.family == "expression" else spec.name
    if label is None:
        label = _default_label(canonical, impl if item.get("impl") is not None else None, params)
    resolved_params = dict(params) if spec.options is None else {**spec.options, **params}
    return ActivationEntry(name=canonical, impl=impl, params=resolved_params, label=label.strip())


def _buildable(spec, impl: str, params: dict, path: str, problems: list[Problem]) -> bool:
    """Whether the activation builds with these options. The zoo's own are built once to find
    out; a user's factory named by an import path is judged from its signature only, so checking
    a suite (a dry run) never runs code the suite names."""
    if spec.family == "import path":
        problem = factory_option_problem(spec.name, dict(params), spec.channelwise)
        if problem:
            problems.append((path, f"cannot build {spec.name}: {problem}"))
        return problem is None
    try:
        spec.build(impl=impl, channels=1 if spec.channelwise else None, **params)
    except Exception as error:  # a custom registration may fail any way; report it like a bad option
        message = str(error) if isinstance(error, ActbenchError) else f"{type(error).__name__}: {error}"
        problems.append((path, f"cannot build {spec.name}: {message}"))
        return False
    return True


def _spec(name: object, path: str, problems: list[Problem]):
    """The zoo's spec for an activation name, expression or import path (None: a problem)."""
    if not isinstance(name, str) or not name.strip():
        problems.append((path, f"expected an activation name, expression or import path, got "
                               f"{show(name)}"))
        return None
    try:
        return lookup(name)
    except ActbenchError as error:
        problems.append((path, str(error)))
        return None


def _check_impl(spec, impl: object, path: str, problems: list[Problem]) -> None:
    if impl is not None and (not isinstance(impl, str) or impl.lower() not in spec.implementations):
        close = close_matches(impl, spec.implementations) if isinstance(impl, str) else []
        hint = f" (did you mean {quoted(close)}?)" if close else ""
        problems.append((f"{path}.impl", f"unknown implementation {show(impl)} of {spec.name}{hint}; "
                                         f"expected one of {', '.join(spec.implementations)}"))


def _checked_params(spec, params: object, path: str, problems: list[Problem]) -> dict:
    """The activation's options as numbers (floats where the default is one)."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        problems.append((f"{path}.params", f"expected a mapping of activation options, got {show(params)}"))
        params = {}
    params = dict(params)
    if spec.options is None:
        return params
    for key, value in list(params.items()):
        if key not in spec.options:
            known = ", ".join(f"{k} (default {v})" for k, v in spec.options.items()) or "none"
            close = close_matches(str(key), spec.options, n=1)
            hint = f"did you mean {quoted(close)}?" if close else f"{spec.name} accepts: {known}"
            problems.append((f"{path}.params.{key}", f"unknown key ({hint})"))
        elif as_number(value) is None:
            problems.append((f"{path}.params.{key}", f"expected a number, got {show(value)}"))
        elif isinstance(spec.options[key], float) or not is_int(value):
            params[key] = as_number(value)
    return params


def _default_label(canonical: str, impl: str | None, params: Mapping[str, object]) -> str:
    """relu, mish[formula], swish(beta=1.5): the implementation only where the suite named one."""
    label = canonical + (f"[{impl}]" if impl is not None else "")
    if params:
        label += "(" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in params.items()) + ")"
    return label


def _canonical_expression(text: str) -> str:
    """One spelling per expression ("x*sigmoid( x )" -> "x * sigmoid(x)"), for labels and hashes."""
    try:
        return ast.unparse(ast.parse(text.strip(), mode="eval"))
    except SyntaxError:  # the zoo accepted it, so this does not happen; keep the text then
        return text.strip()


def activations(raw: object, problems: list[Problem]) -> list[ActivationEntry]:
    if raw is None:
        problems.append(("activations", "required: list the activations to compare, e.g. [relu, mish]"))
        return []
    if not isinstance(raw, list) or not raw:
        problems.append(("activations", f"expected a non-empty list of activations, got {show(raw)}"))
        return []
    entries: list[ActivationEntry] = []
    first_of: dict[object, int] = {}
    for i, item in enumerate(raw):
        entry = _activation_entry(item, f"activations[{i}]", problems)
        if entry is None:
            continue
        identity = (entry.name, entry.impl, json.dumps(dict(entry.params), sort_keys=True, default=str))
        for key, what in ((identity, "the same activation as"), (entry.label, "the same label as")):
            if key in first_of:
                problems.append((f"activations[{i}]", f"{what} activations[{first_of[key]}] "
                                                      f"('{entry.label}'); list each activation once"))
                break
        else:
            first_of[identity] = first_of[entry.label] = i
            entries.append(entry)
    return entries


# Seeds per activation and sweep point (the papers this tool mirrors ran 23): a count beyond this
# is a typo, not a plan, and would not fit in memory as a list of runs.
MAX_SEEDS = 10_000
# Runs in one suite (activations x seeds x sweep points), for the same reason.
MAX_RUNS = 100_000


def seeds(raw: object, problems: list[Problem]) -> list[int]:
    if raw is None:
        return list(DEFAULT_SEEDS)
    if is_int(raw):
        if raw < 1 or raw > MAX_SEEDS:
            problems.append(("seeds", f"expected a list of seeds or a count from 1 to {MAX_SEEDS}, "
                                      f"got {raw}"))
            return []
        return list(range(raw))
    if not isinstance(raw, list) or not raw:
        problems.append(("seeds", f"expected a non-empty list of integers >= 0 or a count, got {show(raw)}"))
        return []
    seeds: list[int] = []
    for i, seed in enumerate(raw):
        if not is_int(seed) or seed < 0:
            problems.append((f"seeds[{i}]", f"expected an integer >= 0, got {show(seed)}"))
        elif seed >= 2**63:
            problems.append((f"seeds[{i}]", f"expected a seed below 2**63, got {seed}"))
        elif seed in seeds:
            problems.append((f"seeds[{i}]", f"duplicate seed {seed}"))
        else:
            seeds.append(seed)
    return seeds


def baseline(raw: object, entries: list[ActivationEntry], problems: list[Problem]) -> str | None:
    """The label of the activation named as baseline (by label, or by name when that is unambiguous)."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        problems.append(("baseline", f"expected the name or label of one of the activations, "
                                     f"got {show(raw)}"))
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


def sweep(raw: object, problems: list[Problem]) -> dict[str, list]:
    """The sweep's keys and value lists; values are checked later, at each point."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append(("sweep", f"expected a mapping of dotted keys to lists of values, got {show(raw)}"))
        return {}
    known = [f"{section}.{key}" for section, keys in schema().items() for key in keys]
    sweep: dict[str, list] = {}
    for key, values in raw.items():
        path = f"sweep.{key}"
        if key in ("activations", "seeds"):
            problems.append((path, f"cannot be swept: every sweep point already runs every one of the {key}"))
            continue
        if key in RESOURCE_KEYS:
            problems.append((path, "cannot be swept: it sets the resources of a run, not what the "
                                   "run computes (run the suite once per value with --threads)"))
            continue
        if key not in known:
            problems.append((path, unknown_key(str(key), known)))
            continue
        if not isinstance(values, list) or not values:
            problems.append((path, f"expected a non-empty list of values, got {show(values)}"))
            continue
        seen: list[str] = []
        for i, value in enumerate(values):
            text = json.dumps(value, sort_keys=True, default=str)
            if text in seen:
                problems.append((f"{path}[{i}]", f"duplicate value {show(value)}"))
            seen.append(text)
        if len(set(seen)) == len(seen):
            sweep[key] = list(values)
    return sweep


def with_point(sections: Mapping, point: Mapping[str, object]) -> dict:
    """A copy of the sections with each dotted key of the sweep point set."""
    result = {name: dict(value) if isinstance(value, Mapping) else value for name, value in sections.items()}
    for key, value in point.items():
        section, name = key.split(".", 1)
        if not isinstance(result.get(section), dict):
            result[section] = {}
        result[section][name] = copy.deepcopy(value)
    return result


def get_dotted(config: Mapping, key: str) -> object:
    section, name = key.split(".", 1)
    return config[section][name]

"""Training suites: loading, command-line overrides, validation at every sweep point, expansion.

A suite names what to train (data, model, optimiser, schedule, training and evaluation options),
which activations and seeds to compare and, optionally, a grid (`sweep`) over any dotted key.
`load_suite` reads the file with ``yaml.safe_load``, applies command-line overrides to the raw
document, checks every value at every sweep point and raises one `SuiteError` that lists every
problem, so nothing starts until the whole suite is valid. `Suite.runs()` expands it into frozen
`RunSpec`s (sweep point, then seed, then activation), each with its typed config, its device and
a hash that identifies the run independently of file layout, names and labels.

Where the parts live: validation.py (value checks, problem wording), suite_keys.py (the keys of
each section, their defaults), suite_rules.py (checks across keys), suite_axes.py (activations,
seeds, baseline, sweep), suite_file.py (YAML, shipped suites, overrides), config.py (the typed
objects and the hash). docs/suites.md documents every key.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import devices
from ..errors import ActbenchError
from . import data, models, suite_axes
from .config import ActivationEntry, Options, RunConfig, RunSpec, config_hash
from .suite_axes import get_dotted, with_point
from .suite_file import (activation_list, apply_override, find_suite, parse_override, read_yaml,
                         seed_list)
from .suite_keys import SECTION_NAMES, resolve_config, schema
from .validation import Problem, SuiteError, show, unknown_key

TOP_LEVEL_KEYS = ("name", "description", *SECTION_NAMES, "activations", "seeds", "baseline", "sweep")
NAME_PATTERN = re.compile(r"^[\w.-]+$")

# the names callers use from here (the suite's public surface), wherever they are defined
__all__ = ["ActivationEntry", "RunSpec", "Suite", "SuiteError", "TOP_LEVEL_KEYS", "config_hash",
           "find_suite", "load_suite", "missing_data", "parse_override", "schema",
           "suite_from_dict"]


@dataclass
class Suite:
    """A validated suite; `runs()` expands it, `resolved()` is its plain-data form for sidecars."""

    name: str
    path: Path | None
    description: str
    config: RunConfig  # the sections without the sweep
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

    def runs(self, resolve: Callable[[str], str] | None = None) -> list[RunSpec]:
        """Every run, ordered by sweep point, then seed, then activation (so a suite stopped early
        has every activation for its first seeds). Devices are resolved here ('auto' -> this
        machine's), once per name; an unavailable one raises ActbenchError. Runs that execute
        elsewhere (on a Ray cluster) pass `resolve=str` and are resolved where they run."""
        resolve = resolve or devices.resolve_device
        runs: list[RunSpec] = []
        resolved_devices: dict[str, str] = {}
        for point in self.points():
            values, _ = resolve_config(with_point(self.sections or self.config.to_dict(), point))
            config = RunConfig.from_dict(values)
            swept = Options({key: get_dotted(values, key) for key in point})
            written = config.train.device
            if written not in resolved_devices:
                resolved_devices[written] = resolve(written)
            for seed in self.seeds:
                for entry in self.activations:
                    runs.append(RunSpec(index=len(runs), activation=entry, seed=seed, sweep=swept,
                                        config=config, device=resolved_devices[written],
                                        config_hash=config_hash(config, entry, seed)))
        return runs

    def resolved(self) -> dict:
        """The whole suite as plain, JSON-ready data (for the report's sidecar)."""
        return {
            "name": self.name,
            "path": None if self.path is None else str(self.path),
            "description": self.description,
            "config": self.config.to_dict(),
            "activations": [entry.to_dict() for entry in self.activations],
            "seeds": list(self.seeds),
            "baseline": self.baseline,
            "sweep": copy.deepcopy(self.sweep),
            "num_runs": len(self.points()) * len(self.seeds) * len(self.activations),
        }


def load_suite(path: str | Path, *, overrides: Iterable[str] = (), seeds: object = None,
               activations: str | Iterable[str] | None = None, device: str | None = None,
               check_data: bool = True) -> Suite:
    """Read, override and validate a suite file; raises SuiteError listing every problem.

    `overrides` are --set KEY=VALUE texts applied to the raw document before validation; `seeds`
    ("0,1", a list, or an int n meaning range(n)), `activations` ("mish,relu" or a list) and
    `device` replace the file's. `check_data=False` skips the check that data files exist.
    """
    path = find_suite(path)
    document, duplicates = read_yaml(path)
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
                          f"({', '.join(TOP_LEVEL_KEYS)}), got {show(document)}"])
    document, origin, problems = _with_flags(document, overrides, seeds, activations, device)
    suite, found = _checked_suite(document, default_name, check_data)
    problems += [_problem_line(source, origin, key, message) for key, message in found]
    if problems:
        raise SuiteError(problems)
    suite.path = path
    same = [_problem_line(source, origin, key, message) for key, message in _repeated_points(suite.sweep)]
    if same:
        raise SuiteError(same)
    return suite


def _with_flags(document: Mapping, overrides: Iterable[str], seeds: object,
                activations: str | Iterable[str] | None,
                device: str | None) -> tuple[dict, dict[str, str], list[str]]:
    """A copy of the document with --set, --seeds, --act and --device applied; which flag set
    each key (so problems name it), and the problems of malformed --set texts."""
    document = copy.deepcopy(dict(document))
    origin: dict[str, str] = {}  # key path -> the override that set it
    problems: list[str] = []
    for text in overrides:
        try:
            key, value = parse_override(text)
        except SuiteError as error:
            problems += error.problems
            continue
        failure = apply_override(document, key, value)
        if failure:
            problems.append(f"--set {text}: {failure}")
        else:
            origin[key] = f"--set {text}"
    for key, value, flag in (("seeds", None if seeds is None else seed_list(seeds), "--seeds"),
                             ("activations", None if activations is None else activation_list(activations),
                              "--act"),
                             ("train.device", device, "--device")):
        if value is not None:
            apply_override(document, key, value)
            origin[key] = flag
    return document, origin, problems


def _checked_suite(document: dict, default_name: str, check_data: bool) -> tuple[Suite, list[Problem]]:
    """The suite (meaningful only without problems) and every problem, in top-level key order."""
    found: list[Problem] = []
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            found.append((str(key), unknown_key(str(key), TOP_LEVEL_KEYS)))
    name = document.get("name", default_name)  # a file name is taken as it is; a written name is checked
    if "name" in document and (not isinstance(name, str) or not NAME_PATTERN.match(name)):
        found.append(("name", f"expected a name of letters, digits, '_', '-' or '.', got {show(name)}"))
    description = document.get("description")
    description = "" if description is None else description
    if not isinstance(description, str):
        found.append(("description", f"expected a string, got {show(description)}"))
    sections = {section: document[section] for section in SECTION_NAMES if section in document}
    entries = suite_axes.activations(document.get("activations"), found)
    seed_values = suite_axes.seeds(document.get("seeds"), found)
    baseline = suite_axes.baseline(document.get("baseline"), entries, found)
    sweep = suite_axes.sweep(document.get("sweep"), found)
    runs = len(entries) * len(seed_values) * math.prod(len(values) for values in sweep.values())
    if runs > suite_axes.MAX_RUNS:  # checked before any point is resolved: there are too many
        found.append(("sweep" if sweep else "seeds",
                      f"the suite has {runs} runs (activations x seeds x sweep points); at most "
                      f"{suite_axes.MAX_RUNS} fit in one suite: split it into several"))
    else:
        found += _check_points(sections, sweep, check_data)
        found += _gated_without_a_place(entries, sections, sweep)
    found.sort(key=lambda problem: _top_level_position(problem[0]))
    if found:
        return None, found
    values, _ = resolve_config(sections)
    # the sweep's values as normalised (1e-3 written as text becomes 0.001)
    sweep = {key: [get_dotted(resolve_config(with_point(sections, {key: value}))[0], key)
                   for value in values_] for key, values_ in sweep.items()}
    return Suite(name=name, path=None, description=description, config=RunConfig.from_dict(values),
                 activations=entries, seeds=seed_values, baseline=baseline, sweep=sweep,
                 sections=sections), found


def _gated_without_a_place(entries: list[ActivationEntry], sections: Mapping,
                           sweep: dict[str, list]) -> list[Problem]:
    """A gated activation ((..., 2h) -> (..., h)) halves the width the next layer expects: only a
    model built for one (models.GATED_MODELS: gpt, whose MLP widens the layer before it) has a
    place for it."""
    from ..catalogue import gated

    names = sweep.get("model.name") or [get_dotted(resolve_config(sections)[0], "model.name")]
    others = [str(name) for name in names if name not in models.GATED_MODELS]
    if not others:
        return []
    built = " or ".join(models.GATED_MODELS)
    return [(f"activations[{i}]", f"{entry.name} is a gated activation ((..., 2h) -> (..., h)); only "
                                  f"model {built} has a place for one, got model {others[0]}")
            for i, entry in enumerate(entries) if gated(entry.name)]


def _repeated_points(sweep: Mapping[str, list]) -> list[Problem]:
    """Sweep values that are the same setting once normalised (1e-3 and 0.001)."""
    return [(f"sweep.{key}[{i}]", f"the same setting as sweep.{key}[{j}] ({show(values[i])}); a "
                                  "sweep point would run twice")
            for key, values in sweep.items() for i in range(len(values)) for j in range(i)
            if _canonical(values[i]) == _canonical(values[j])]


def _check_points(sections: Mapping, sweep: dict[str, list], check_data: bool) -> list[Problem]:
    """Resolve every sweep point; a problem found only at some points says which sweep values cause it."""
    keys = list(sweep)
    found: dict[Problem, list[tuple[int, ...]]] = {}
    from_sweep: dict[tuple[str, str, str], list[int]] = {}  # (sweep key, sub-path, message) -> indices
    available: dict[tuple, str | None] = {}
    for indices in itertools.product(*(range(len(values)) for values in sweep.values())):
        point = {key: sweep[key][i] for key, i in zip(keys, indices)}
        config, problems = resolve_config(with_point(sections, point))
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
            shown = [show(values[i]) for i in used]
            parts.append(f"{key}={shown[0]}" if len(shown) == 1 else f"{key} in [{', '.join(shown)}]")
    return "sweep sets " + ", ".join(parts) if parts else "at some sweep points"


def _data_problem(data_config: Mapping, cache: dict[tuple, str | None]) -> str | None:
    """The data module's message when a data set's files are missing (checked once per location
    and set of options: a text file's size must fit its seq_len)."""
    fixed = ("name", "root", "download")
    options = {name: value for name, value in data_config.items() if name not in fixed}
    key = (*(data_config[name] for name in fixed), json.dumps(options, sort_keys=True, default=str))
    if key not in cache:
        try:
            data.check_available(*key[:3], **options)
            cache[key] = None
        except ActbenchError as error:
            cache[key] = str(error)
    return cache[key]


def missing_data(suite: Suite) -> list[str]:
    """One line per data set of the suite whose files are missing (a dry run's notes)."""
    cache: dict[tuple, str | None] = {}
    source = suite.path.name if suite.path is not None else suite.name
    messages = {_data_problem(run.config.data.to_dict(), cache) for run in suite.runs()}
    return [f"{source}: data: {message}" for message in sorted(m for m in messages if m)]


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
"""Suite files and command-line changes to them: reading YAML (keys written twice are mistakes),
finding shipped suites by name, and --set / --seeds / --act applied to the raw document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from ..errors import ActbenchError, close_matches
from ..zoo.registry import split_names
from .validation import SuiteError, quoted, show

SHIPPED_SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"
OVERRIDE_KEY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")



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


def apply_override(document: dict, key: str, value: object) -> str | None:
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
            return f"cannot set {key}: {where} is {show(target[part])}, not a mapping"
        target = target[part]
    target[parts[-1]] = value
    return None


def seed_list(seeds: object) -> object:
    """--seeds as given by the CLI ("0,1" or a list) or the API (an int n: range(n), as in a file)."""
    if isinstance(seeds, str):
        values: list[object] = []
        for part in split_names(seeds):
            values.append(int(part) if re.fullmatch(r"[-+]?\d+", part) else part)
        return values
    if isinstance(seeds, Iterable) and not isinstance(seeds, Mapping):
        return [int(s) if isinstance(s, str) and re.fullmatch(r"[-+]?\d+", s.strip()) else s for s in seeds]
    return seeds


def activation_list(activations: str | Iterable[str]) -> list[str]:
    items = [activations] if isinstance(activations, str) else list(activations)
    return [part for item in items for part in split_names(str(item))]


# Values a suite may expand to once YAML aliases are followed: a few hundred make a real suite;
# an "alias bomb" of a kilobyte expands to hundreds of millions.
MAX_EXPANDED_NODES = 100_000


def _duplicate_keys(text: str) -> list[str]:
    """Keys written twice in one mapping (YAML keeps the last silently; here it is a mistake).
    Each node is looked at once, however many aliases point to it; a document that expands to
    more than MAX_EXPANDED_NODES values is refused before anything walks it expanded."""
    problems: list[str] = []
    visited: set[int] = set()
    sizes: dict[int, int] = {}

    def expanded(node: yaml.Node) -> int:
        if id(node) not in sizes:
            children = ([child for pair in node.value for child in pair]
                        if isinstance(node, yaml.MappingNode) else
                        node.value if isinstance(node, yaml.SequenceNode) else [])
            sizes[id(node)] = 1 + sum(expanded(child) for child in children)
        return sizes[id(node)]

    def walk(node: yaml.Node, path: str) -> None:
        if id(node) in visited:
            return
        visited.add(id(node))
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
        total = expanded(root)
        if total > MAX_EXPANDED_NODES:
            raise SuiteError([f"the suite expands to {total} values once its YAML aliases are "
                              f"followed; at most {MAX_EXPANDED_NODES} make sense for a suite"])
        walk(root, "")
    return problems


def read_yaml(path: Path) -> tuple[object, list[str]]:
    """The document and the problems of keys written twice (which yaml.safe_load hides)."""
    label = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ActbenchError(f"suite file '{path}' is not UTF-8 text; expected a YAML suite file") from None
    except OSError as error:
        raise ActbenchError(f"cannot read suite file '{path}': {error.strerror}") from None
    try:
        duplicates = _duplicate_keys(text)  # first: it refuses an alias bomb before it is built
        document = yaml.safe_load(text)
    except RecursionError:
        raise SuiteError([f"{label}: nested too deeply to read (thousands of levels of [ or {{); "
                          "expected a YAML suite file"]) from None
    except SuiteError as error:
        raise SuiteError([f"{label}: {problem}" for problem in error.problems]) from None
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
        hint = f"; did you mean the shipped suite {quoted(close)}?"
    raise ActbenchError(f"suite file '{path}' not found{hint}")

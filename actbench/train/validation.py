"""The suite validator's toolkit: value checks that return the normalised value or raise
`Invalid` naming what was expected, and the one-line wording of every problem.

Nothing here knows about suites' keys (suite_keys.py) or how keys relate (suite_rules.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..errors import ActbenchError, close_matches

# YAML 1.1 reads 1e-8 (no dot) as a string; number keys accept such text so `eps: 1e-8` works.
SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")

Problem = tuple[str, str]  # (key path, message)


class SuiteError(ActbenchError):
    """Everything wrong with a suite, one problem per line (file or override, key path, expectation)."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))



class Invalid(Exception):
    """A value that fails its key's check: (sub-path, message) pairs, sub-path '' for the key itself."""

    def __init__(self, message: str = "", problems: list[tuple[str, str]] | None = None):
        self.problems = problems if problems is not None else [("", message)]
        super().__init__(self.problems[0][1])


Check = Callable[[object], object]


def show(value: object) -> str:
    """A value as the user would write it in YAML/JSON (true, null, "text"), kept short."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def expected(what: str, value: object) -> Invalid:
    return Invalid(f"expected {what}, got {show(value)}")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_number(value: object) -> float | None:
    """The finite float a YAML value stands for, or None (bools are not numbers)."""
    if isinstance(value, str) and SCIENTIFIC.match(value.strip()):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """An integer in range. A maximum bounds what would otherwise run or allocate without end
    (10^30 epochs, 10^13 generated samples): every such key states its limit in the docs."""
    bounds = [f">= {minimum}" if minimum is not None else "",
              f"<= {maximum}" if maximum is not None else ""]
    what = "an integer " + " and ".join(b for b in bounds if b) if any(bounds) else "an integer"

    def check(value):
        if not is_int(value) or (minimum is not None and value < minimum) or \
                (maximum is not None and value > maximum):
            raise expected(what.strip(), value)
        return value

    check.what = what.strip()
    return check


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
            high_open: bool = False) -> Check:
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    what = "a number" + (" " + " and ".join(bounds) if bounds else "")

    def check(value):
        number = as_number(value)
        if (number is None
                or (low is not None and (number < low or (low_open and number == low)))
                or (high is not None and (number > high or (high_open and number == high)))):
            raise expected(what, value)
        return number

    check.what = what
    return check


def boolean() -> Check:
    def check(value):
        if not isinstance(value, bool):
            raise expected("true or false", value)
        return value

    check.what = "true or false"
    return check


def string(pattern: re.Pattern | None = None, what: str = "a string") -> Check:
    def check(value):
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise expected(what, value)
        return value

    check.what = what
    return check


def choice(known: Callable[[], Iterable[str]], noun: str) -> Check:
    """A name from a table read at check time (case-insensitive), with a did-you-mean hint."""

    def check(value):
        names = list(known())
        if not isinstance(value, str):
            raise expected(f"a {noun} name (one of {', '.join(names)})", value)
        matched = [name for name in names if name.lower() == value.lower()]
        if matched:
            return matched[0]
        close = close_matches(value, names)
        hint = f" (did you mean {quoted(close)}?)" if close else f"; expected one of {', '.join(names)}"
        raise Invalid(f"unknown {noun} '{value}'{hint}")

    check.what = f"a {noun} name"
    return check


def optional(inner: Check) -> Check:
    def check(value):
        return None if value is None else inner(value)

    check.what = f"null or {inner.what}"
    return check


def anything() -> Check:
    def check(value):
        return value

    check.what = "any value"
    return check


def list_of(item: Check, *, min_length: int = 0, max_length: int | None = None,
             increasing: bool = False, what: str | None = None) -> Check:
    if what is None:
        what = f"a list of {item.what.removeprefix('a ').removeprefix('an ')}s"
        if min_length:
            what = "a non-empty " + what.removeprefix("a ")

    def check(value):
        if (not isinstance(value, list) or len(value) < min_length
                or (max_length is not None and len(value) > max_length)):
            raise expected(what, value)
        items, problems = [], []
        for i, element in enumerate(value):
            try:
                items.append(item(element))
            except Invalid as invalid:
                problems += [(f"[{i}]{sub}", message) for sub, message in invalid.problems]
                items.append(element)
        if problems:
            raise Invalid(problems=problems)
        if increasing:
            for i in range(1, len(items)):
                if items[i] <= items[i - 1]:
                    message = f"expected values in increasing order, got {show(items[i])} after {items[i - 1]}"
                    raise Invalid(problems=[(f"[{i}]", message)])
        return items

    check.what = what
    return check


def quoted(names: Iterable[str]) -> str:
    """'a', 'b' or 'c'"""
    quoted = [f"'{name}'" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


@dataclass(frozen=True)
class Key:
    """One key of a section: its default and its check (docs/suites.md describes each)."""

    default: object
    check: Check



def check_one(key: Key, value: object, path: str, problems: list[Problem]) -> object:
    try:
        return key.check(value)
    except Invalid as invalid:
        problems += [(path + sub, message) for sub, message in invalid.problems]
        return value



def unknown_key(name: str, known: Iterable[str]) -> str:
    known = list(known)
    close = close_matches(name, known, n=1)  # a typo usually has one intended key
    hint = f"did you mean {quoted(close)}?" if close else f"expected one of {', '.join(known)}"
    return f"unknown key ({hint})"

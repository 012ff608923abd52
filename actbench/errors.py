"""actbench's exception and warning types: user mistakes (the CLI edge turns them into exit code 2)
and the one warning category."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping


class ActbenchError(Exception):
    """A problem with what the user asked for (not a bug): reported in one line, exit code 2."""


class UnknownNameError(ActbenchError):
    """A name that is not in a registry; the message lists the closest known names."""

    def __init__(self, what: str, name: str, known: Iterable[str],
                 aliases: Mapping[str, str] | None = None):
        """`aliases` (alias -> name) are matched too but suggested by the name they stand for,
        so a hint never names something `list` does not show."""
        self.what = what
        self.name = name
        self.known = sorted(known)
        aliases = aliases or {}
        matches = close_matches(name, [*self.known, *aliases], n=6)
        close = list(dict.fromkeys(aliases.get(match, match) for match in matches))[:3]
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(self.known)}"
        super().__init__(f"unknown {what} '{name}'{hint}")


class ExpressionError(ActbenchError):
    """An activation expression that the safe parser refuses."""


class ReportWriteError(ActbenchError):
    """A report could not be written (a full disk, a lost mount): what is on disk is kept, and
    the command stops rather than record every later result as failed."""


class ActbenchWarning(UserWarning):
    """Something worked, but not the way the user asked (e.g. a compiler fell back)."""


def close_matches(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to `name`, best first (for hints in error messages)."""
    return difflib.get_close_matches(name.lower(), sorted(known), n=n, cutoff=0.5)


MESSAGE_LIMIT = 2000  # characters of a report's `message` cell: room for any message of ours


def describe_error(error: BaseException, limit: int = MESSAGE_LIMIT) -> str:
    """One line for a report's `message` column: the exception's type and text, whitespace folded;
    only a message longer than `limit` (a foreign error's dump) is cut, and says so."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[:limit - 1] + "…"

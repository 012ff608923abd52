"""Which way is better, for any report column: the one rule micro and train comparisons share."""

from __future__ import annotations

import re
from collections.abc import Collection

import pandas as pd

_HIGHER_IS_BETTER = re.compile(r"acc|_per_s$|gbps|roofline_frac")
# what a language model is judged by, lower always, whatever else the name holds
_LOWER_IS_BETTER = re.compile(r"loss|perplexity|bits_per_byte")


def higher_is_better(metric: str) -> bool:
    """Accuracies, throughputs (samples_per_s, gbps) and roofline fractions grow with quality;
    times, losses, perplexities, bits per byte, bytes and errors are better lower."""
    name = metric.lower()
    return not _LOWER_IS_BETTER.search(name) and bool(_HIGHER_IS_BETTER.search(name))


def is_accuracy(metric: str) -> bool:
    """A fraction of correct predictions (final_test_acc, noise_0.5_acc): shown in %."""
    return bool(re.search(r"(^|_)acc($|_)", metric.lower()))


def numeric_columns(frame: pd.DataFrame, exclude: Collection[str] = ()) -> list[str]:
    """Columns a comparison can use as its metric: numeric, with at least one value, not excluded
    (keys and settings) and not internal (a leading underscore)."""
    return [c for c in frame.columns
            if c not in exclude and not str(c).startswith("_")
            and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].notna().any()]

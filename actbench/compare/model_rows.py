"""Model reports (`actbench model`) compared with the micro machinery.

A model row is one configuration timed like a micro one (a median, its interval, flags), so it
is given micro's key columns and compared by the same rules: `pass` is the mode and the model
("train · resnet20": a section each), `shape` the batch ("batch 32 · 3x32x32", plus
channels-last / compiled), `numel` the input's element count (it orders the rows by batch size)
and `dtype` says "+amp" for a float32 model under autocast. Ratios to the baseline activation
(relu) are then taken within one model, batch, sample shape, mode, precision and device, with
intervals from the two medians' intervals.
"""

from __future__ import annotations

import math

import pandas as pd

MODEL_TEXT_COLUMNS = ("mode", "channels_last", "compile", "input_shape", "left_alone")


def as_micro_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The model rows with micro's key columns filled in from theirs."""
    def described(row) -> str:
        extras = [label for label, column in (("channels-last", "channels_last"),
                                              ("compiled", "compile"))
                  if str(row.get(column)).lower() == "true"]
        sample = str(row["input_shape"]).partition("x")[2]
        return " · ".join([f"batch {row['batch_size']}", sample, *extras])

    def elements(text) -> float:
        try:
            return float(math.prod(int(part) for part in str(text).split("x")))
        except ValueError:
            return math.nan

    amp = frame["amp"].astype(str).str.lower() == "true"
    return frame.assign(
        shape=frame.apply(described, axis=1) if len(frame) else pd.Series(dtype=object),
        numel=frame["input_shape"].map(elements),
        dtype=frame["dtype"].astype(str).where(~amp, frame["dtype"].astype(str) + "+amp"),
        **{"pass": frame["mode"].astype(str) + " · " + frame["model"].astype(str)})

"""Per activation (and sweep point): how many seeds finished, and mean ± std of the outcome."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ActivationSummary:
    activation: str
    point: tuple[tuple[str, str], ...]  # (sweep key, value) pairs
    runs: int  # all runs, whatever their status
    seeds_ok: int
    mean_acc: float
    std_acc: float  # sample standard deviation (ddof=1); nan for one seed
    mean_epoch_s: float
    peak_bytes: float
    failed: int
    diverged: int
    diff_to_baseline: float | None = None  # mean accuracy minus the baseline's, same point


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def summarise(rows: Iterable[Mapping[str, str]], sweep_keys: list[str],
              baseline: str | None) -> list[ActivationSummary]:
    groups: dict[tuple, list[Mapping[str, str]]] = {}
    for row in rows:
        point = tuple((key, str(row.get(key, ""))) for key in sweep_keys)
        groups.setdefault((point, row["activation"]), []).append(row)
    summaries = []
    for (point, activation), members in groups.items():
        ok = [r for r in members if r.get("status") == "ok"]
        acc = np.array([_float(r["final_test_acc"]) for r in ok])
        epoch_s = np.array([_float(r["mean_epoch_s"]) for r in ok])
        peak = np.array([_float(r["peak_bytes"]) for r in ok])
        summaries.append(ActivationSummary(
            activation, point, len(members), len(ok),
            float(acc.mean()) if len(acc) else math.nan,
            float(acc.std(ddof=1)) if len(acc) > 1 else math.nan,
            float(np.nanmean(epoch_s)) if len(epoch_s) and not np.isnan(epoch_s).all() else math.nan,
            float(np.nanmax(peak)) if len(peak) and not np.isnan(peak).all() else math.nan,
            sum(r.get("status") == "failed" for r in members),
            sum(r.get("status") == "diverged" for r in members)))
    if baseline:
        reference = {s.point: s.mean_acc for s in summaries if s.activation == baseline}
        summaries = [ActivationSummary(**{**vars(s), "diff_to_baseline":
                                          s.mean_acc - reference[s.point]
                                          if s.point in reference else None})
                     for s in summaries]
    return summaries

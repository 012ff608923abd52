"""Per activation (and sweep point): how many seeds finished, and mean ± std of the outcome.

Each number says what it is: accuracies are final test accuracies of the runs that finished ok
(token accuracies over the scored positions for sequence data, whose runs also have their test
loss, perplexity and, for byte-level text, bits per byte averaged); epoch time is the steady-state
mean (the warm-up is measured apart, in `warmup_s`); peak memory is shown only where the runs
measured it the same way and in processes of their own, since a CUDA allocator peak, a process's
resident set and a resident set shared by runs one after another in one process are three
different quantities.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

# peak_kind values whose numbers may be compared between runs of one suite, and what they are
PEAK_MEANINGS = {
    "cuda_max_allocated": "CUDA memory allocated at the peak of each run, above its start (tensors "
                          "only)",
    "process_peak_rss": "peak resident memory of each run's own process (interpreter, data set, "
                        "model and activations: compare within this suite)",
}
SIGNIFICANCE = 0.05


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
    accuracies: tuple[float, ...] = ()
    peak_kinds: tuple[str, ...] = ()  # the distinct peak_kind values of its ok runs
    mean_loss: float = math.nan  # final test loss (nats per scored position for sequence data)
    mean_perplexity: float = math.nan  # runs on sequence data only
    mean_bits_per_byte: float = math.nan  # runs on byte-level text only

    @property
    def language(self) -> bool:
        """Runs on sequence data: their perplexity was recorded (a report's runs file tells)."""
        return not math.isnan(self.mean_perplexity)


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _mean(rows: list[Mapping[str, str]], column: str) -> float:
    """The mean of a column over the rows that hold a value (NaN where none does: a column an
    older report lacks, or one left empty for this kind of run)."""
    values = np.array([_float(r.get(column)) for r in rows])
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else math.nan


def _summary(activation: str, point: tuple, members: list[Mapping[str, str]]) -> ActivationSummary:
    ok = [r for r in members if r.get("status") == "ok"]
    acc = np.array([_float(r["final_test_acc"]) for r in ok])
    epoch_s = np.array([_float(r["mean_epoch_s"]) for r in ok])
    peak = np.array([_float(r["peak_bytes"]) for r in ok])
    return ActivationSummary(
        activation, point, len(members), len(ok),
        float(acc.mean()) if len(acc) else math.nan,
        float(acc.std(ddof=1)) if len(acc) > 1 else math.nan,
        float(np.nanmean(epoch_s)) if len(epoch_s) and not np.isnan(epoch_s).all() else math.nan,
        float(np.nanmax(peak)) if len(peak) and not np.isnan(peak).all() else math.nan,
        sum(r.get("status") == "failed" for r in members),
        sum(r.get("status") == "diverged" for r in members),
        accuracies=tuple(float(a) for a in acc),
        peak_kinds=tuple(sorted({str(r.get("peak_kind") or "") for r in ok} - {""})),
        mean_loss=_mean(ok, "final_test_loss"), mean_perplexity=_mean(ok, "final_test_perplexity"),
        mean_bits_per_byte=_mean(ok, "final_test_bits_per_byte"))


def summarise(rows: Iterable[Mapping[str, str]], sweep_keys: list[str],
              baseline: str | None) -> list[ActivationSummary]:
    groups: dict[tuple, list[Mapping[str, str]]] = {}
    for row in rows:
        point = tuple((key, str(row.get(key, ""))) for key in sweep_keys)
        groups.setdefault((point, row["activation"]), []).append(row)
    summaries = [_summary(activation, point, members)
                 for (point, activation), members in groups.items()]
    if baseline:
        reference = {s.point: s.mean_acc for s in summaries if s.activation == baseline}
        summaries = [ActivationSummary(**{**vars(s), "diff_to_baseline":
                                          s.mean_acc - reference[s.point]
                                          if s.point in reference else None})
                     for s in summaries]
    return summaries


def peak_memory_meaning(summaries: list[ActivationSummary]) -> tuple[bool, str]:
    """(whether the peaks may be shown side by side, the sentence that says what they are or why
    they are left out)."""
    from .memory import SHARED_PEAK_KIND

    kinds = sorted({kind for s in summaries for kind in s.peak_kinds})
    if not kinds:
        return False, "peak memory: not measured on this device"
    if SHARED_PEAK_KIND in kinds:
        return False, ("peak memory: not shown, the runs shared one process (--executor inline), "
                       "so each peak includes what earlier runs left behind")
    if len(kinds) > 1:
        return False, f"peak memory: not shown, the runs measured it in different ways ({', '.join(kinds)})"
    return True, f"peak memory: {PEAK_MEANINGS.get(kinds[0], kinds[0])}"


def significantly_best(summaries: list[ActivationSummary]) -> set[tuple[tuple, str]]:
    """(point, activation) of each sweep point's best mean accuracy where Welch's t-test says it
    beats the runner-up (p < 0.05, two seeds or more on each side); none where it is within noise."""
    from ..stats import welch_t_test

    best: set[tuple[tuple, str]] = set()
    for point in dict.fromkeys(s.point for s in summaries):
        ranked = sorted((s for s in summaries if s.point == point and not math.isnan(s.mean_acc)),
                        key=lambda s: -s.mean_acc)
        if len(ranked) < 2 or len(ranked[0].accuracies) < 2 or len(ranked[1].accuracies) < 2:
            continue
        test = welch_t_test(ranked[0].accuracies, ranked[1].accuracies)
        if test.diff > 0 and test.p_value < SIGNIFICANCE:
            best.add((point, ranked[0].activation))
    return best

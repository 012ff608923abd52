"""One comparison of a set of reports: load, filter, compare micro and train rows, check gates.

The CLI's `compare` and `report` commands both call `compare_reports`; renderers take its result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import ActbenchError
from .environments import difference_warnings, environments
from .gates import GateResult, check_gate, parse_gate
from .load import Reports, apply_where, load_reports
from .micro import MicroComparison, compare_micro, numeric_metrics

DEFAULT_TRAIN_METRIC = "final_test_acc"


@dataclass
class Comparison:
    reports: Reports
    micro: MicroComparison | None
    train: object | None  # compare.train.TrainComparison
    noise: object | None  # the same, per input noise level, where the suites evaluated noise
    environments: dict[str, dict[str, str]]
    warnings: list[str] = field(default_factory=list)


def _train_baseline(reports: Reports, requested: str | None) -> str | None:
    """The one asked for, else the suites' own baseline (from the sidecars), else relu."""
    if requested:
        return requested
    named = {(f.sidecar or {}).get("suite", {}).get("baseline") for f in reports.files_of("train")}
    named.discard(None)
    return named.pop() if len(named) == 1 else "relu"


def _pick_metric(metric: str | None, reports: Reports) -> tuple[str, str]:
    """(micro metric, train metric): --metric applies to whichever kind has that column."""
    if metric is None:
        return "median_s", DEFAULT_TRAIN_METRIC
    in_micro = not reports.micro.empty and metric in numeric_metrics(reports.micro)
    in_train = not reports.train.empty and metric in reports.train.columns
    if not (in_micro or in_train):
        known = sorted(set(numeric_metrics(reports.micro) if not reports.micro.empty else [])
                       | set(_train_metrics(reports)))
        raise ActbenchError(f"metric '{metric}' is in none of the reports; expected one of "
                            f"{', '.join(known)}")
    return (metric if in_micro else "median_s"), (metric if in_train else DEFAULT_TRAIN_METRIC)


def _train_metrics(reports: Reports) -> list[str]:
    from .train import numeric_metrics as train_metrics

    return [] if reports.train.empty else train_metrics(reports.train)


def compare_reports(patterns: Sequence[str], *, where: Sequence[str] = (), metric: str | None = None,
                    by: str = "activation", baseline: str | None = None, alpha: float = 0.05,
                    default_baseline: str = "relu") -> Comparison:
    if not 0 < alpha < 1:
        raise ActbenchError(f"--alpha {alpha} is out of range; expected a level between 0 and 1, "
                            "e.g. 0.05")
    reports = load_reports(patterns)
    if where:
        reports = apply_where(reports, where)
    warnings = []
    micro_metric, train_metric = _pick_metric(metric, reports)
    micro = None
    if not reports.micro.empty:
        micro_baseline = baseline
        if baseline is None and by == "activation" and \
                default_baseline not in set(reports.micro["activation"]):
            micro_baseline = str(reports.micro["activation"].iloc[0])
            warnings.append(f"{default_baseline} is not in the micro reports; ratios are to "
                            f"{micro_baseline}")
        micro = compare_micro(reports.micro, reports.samples, metric=micro_metric, by=by,
                              baseline=micro_baseline)
    train = noise = None
    if not reports.train.empty:
        from .train import compare_noise, compare_train

        group_by = None if by == "activation" else [by]
        train_baseline = _train_baseline(reports, baseline if by == "activation" else None)
        train = compare_train(reports.train, metric=train_metric, baseline=train_baseline,
                              by=group_by, alpha=alpha)
        noise = compare_noise(reports.train, baseline=train_baseline, by=group_by, alpha=alpha)
    elif reports.epochs.empty and reports.micro.empty:
        raise ActbenchError("the reports hold no micro or train rows to compare")
    envs = environments(reports)
    warnings += difference_warnings(envs)
    return Comparison(reports, micro, train, noise, envs, warnings)


def check_gates(comparison: Comparison, texts: Sequence[str]) -> list[GateResult]:
    """Parse every gate first (a typo fails before any is judged), then evaluate each."""
    gates = [parse_gate(text) for text in texts]
    return [check_gate(gate, comparison.reports.micro, comparison.micro, comparison.train)
            for gate in gates]

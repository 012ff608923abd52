"""One comparison of a set of reports: load, filter, compare micro and train rows, check gates.

The CLI's `compare` and `report` commands both call `compare_reports`; renderers take its result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import ActbenchError
from .environments import difference_warnings, environments
from .gates import GateResult, check_gate, parse_gate
from .load import Reports, apply_where, load_reports
from .micro import MicroComparison, compare_micro, numeric_metrics

if TYPE_CHECKING:
    from .train import TrainComparison

DEFAULT_TRAIN_METRIC = "final_test_acc"


@dataclass
class Comparison:
    reports: Reports
    micro: MicroComparison | None
    train: TrainComparison | None
    noise: TrainComparison | None  # per input noise level, where the suites evaluated noise
    environments: dict[str, dict[str, str]]
    warnings: list[str] = field(default_factory=list)

    def file_environments(self) -> list[tuple[str, dict]]:
        """Per report file: the key facts its rows carry, then everything its sidecar recorded."""
        return [(f.label, {**self.environments.get(f.label, {}), **f.environment})
                for f in self.reports.files]


def _suite_baseline(reports: Reports) -> str | None:
    """The baseline the train reports' suites name, when they agree (from the sidecars)."""
    named = set()
    for report in reports.files_of("train"):
        suite = (report.sidecar or {}).get("suite")
        if isinstance(suite, dict) and isinstance(suite.get("baseline"), str):
            named.add(suite["baseline"])
    return named.pop() if len(named) == 1 else None


def _resolve_baseline(requested: str | None, default: str | None, present: list[str], kind: str,
                      warnings: list[str], fits_other_kind: bool) -> str | None:
    """The baseline for one kind of report: the one asked for where that kind has it; else the
    default, else the first activation present, with a warning whenever it is not the one asked
    for. A baseline that no kind has is the caller's error to raise."""
    from .micro import canonical_activation

    if requested is not None:
        name = canonical_activation(requested, present)  # an alias (swish1) names silu
        if name in present or not fits_other_kind:
            return name
        warnings.append(f"baseline {requested} is not in the {kind} reports; there the baseline is "
                        f"{default if default in present else present[0]}")
    chosen = default if default in present else present[0]
    if requested is None and default is not None and default not in present:
        warnings.append(f"{default} is not in the {kind} reports; their baseline is {chosen}")
    return chosen


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
    """Options that fit only one kind of report (a baseline, a --by column) apply to that kind;
    the other kind keeps its default, with a warning. An option that fits no kind is an error."""
    if not 0 < alpha < 1:
        raise ActbenchError(f"--alpha {alpha} is out of range; expected a level between 0 and 1, "
                            "e.g. 0.05")
    reports = load_reports(patterns)
    if where:
        reports = apply_where(reports, where)
    warnings = list(reports.warnings)
    micro_metric, train_metric = _pick_metric(metric, reports)
    has_micro, has_train = not reports.micro.empty, not reports.train.empty
    if not (has_micro or has_train):
        if reports.epochs.empty:  # every row left out: say why (the warnings are not shown)
            why = f" ({warnings[0]})" if warnings else ""
            raise ActbenchError(f"the reports hold no micro, model or train rows to compare{why}")
        warnings.append("only epoch files were given: they feed the training curves of --plot; "
                        "pass the runs report (the .csv beside them) for tables")
    by_fits = {kind: by in ("activation", "file", "impl") or by in frame.columns
               for kind, frame in (("micro", reports.micro), ("train", reports.train)) if not frame.empty}
    if by_fits and not any(by_fits.values()):
        known = sorted({c for frame in (reports.micro, reports.train) for c in frame.columns})
        raise ActbenchError(f"--by '{by}' is not a column of the reports; expected activation, impl, "
                            f"file or one of {', '.join(known)}")
    activations = {kind: list(pd.unique(frame["activation"].astype(str)))
                   for kind, frame in (("micro", reports.micro), ("train", reports.train))
                   if not frame.empty}
    if baseline is not None and by == "activation" and len(activations) == 2:
        from .micro import canonical_activation

        if not any(canonical_activation(baseline, present) in present
                   for present in activations.values()):
            raise ActbenchError(f"baseline '{baseline}' is in none of the reports; activations: "
                                f"{', '.join(sorted(set().union(*activations.values())))}")
    micro = None
    if has_micro and by_fits["micro"]:
        micro_baseline = baseline
        if by == "activation":
            micro_baseline = _resolve_baseline(baseline, default_baseline, activations["micro"],
                                               "micro", warnings, fits_other_kind=has_train)
        micro = compare_micro(reports.micro, reports.samples, metric=micro_metric, by=by,
                              baseline=micro_baseline)
    elif has_micro:
        warnings.append(f"--by '{by}' is not a column of the micro reports; they are left out")
    train = noise = None
    if has_train and by_fits["train"]:
        from .train import compare_noise, compare_train

        group_by = None if by == "activation" else [by]
        train_baseline = _resolve_baseline(baseline if by == "activation" else None,
                                           _suite_baseline(reports) or default_baseline,
                                           activations["train"], "train", warnings,
                                           fits_other_kind=has_micro)
        train = compare_train(reports.train, metric=train_metric, baseline=train_baseline,
                              by=group_by, alpha=alpha)
        noise = compare_noise(reports.train, baseline=train_baseline, by=group_by, alpha=alpha)
    elif has_train:
        warnings.append(f"--by '{by}' is not a column of the train reports; they are left out")
    envs = environments(reports)
    warnings += difference_warnings(envs)
    return Comparison(reports, micro, train, noise, envs, warnings)


def check_gates(comparison: Comparison, texts: Sequence[str]) -> list[GateResult]:
    """Parse every gate first (a typo fails before any is judged), then evaluate each."""
    gates = [parse_gate(text) for text in texts]
    return [check_gate(gate, comparison.reports.micro, comparison.micro, comparison.train)
            for gate in gates]

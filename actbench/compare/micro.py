"""Micro reports side by side: each configuration's metric as a ratio to a baseline, with its uncertainty.

What is compared depends on `by`: activations against a baseline activation (relu), implementations
against a baseline implementation (native) of the same activation, or the same configuration
across report files (two machines, before / after a change) or across the values of any other
column. Rows are matched on every key column except the one compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import stats
from ..errors import ActbenchError, UnknownNameError
from ..records.schema import MICRO_KEY
from .metrics import higher_is_better, numeric_columns

USABLE_STATUSES = ("ok", "noisy")  # noisy rows are measurements too, flagged
TIME_METRICS = ("median_s", "mean_s", "min_s", "q1_s", "q3_s")
DEFAULT_BASELINES = {"activation": "relu", "impl": "native"}


@dataclass
class MicroComparison:
    metric: str
    by: str
    baseline: str
    higher_is_better: bool
    group_keys: list[str]  # the rows of one group share these and are compared with each other
    label_keys: list[str]  # what tells the rows of a group apart
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def is_time(self) -> bool:
        return self.metric in TIME_METRICS


NOT_METRICS = frozenset({"schema_version", "numel", "threads", "samples", "calls_per_sample"})


def numeric_metrics(frame: pd.DataFrame) -> list[str]:
    return numeric_columns(frame, NOT_METRICS)


MIN_SAMPLES_FOR_INTERVAL = 6  # below this a median's 95 % interval is the full range: no ratio interval


def _unit_keys(frame: pd.DataFrame, by: str) -> tuple[list[str], list[str]]:
    """(group keys, label keys) for comparing along `by`.

    Activations are compared within a size (element count), because channel-wise activations are
    laid out (4, 64, N/256) beside flat baselines; everything else is matched shape for shape. The
    file is a group key unless it is what is compared, or `by` is a column that is constant within
    each file (host, torch_version): then files are matched with each other.
    """
    if by == "activation":
        return ["device", "dtype", "numel", "pass", "file"], ["activation", "impl", "shape"]
    if by == "file":
        return ["activation", "impl", "device", "dtype", "shape", "pass"], ["file"]
    group = [k for k in ("activation", "impl", "device", "dtype", "shape", "pass") if k != by]
    if by == "impl" or frame.groupby("file")[by].nunique(dropna=False).max() > 1:
        group.append("file")
    return group, [by]


def canonical_activation(name: str, present) -> str:
    """The report's label for an activation named by the user, aliases included (swish1 -> silu)."""
    if name in present:
        return name
    from ..zoo.registry import lookup

    try:
        return lookup(name).name
    except ActbenchError:
        return name


def prefer_native(rows: pd.DataFrame) -> pd.DataFrame:
    """One activation measured in several implementations stands for itself by its native one
    (else its first): the rule for baselines and for gate references alike."""
    if len(rows) > 1 and "impl" in rows:
        native = rows[rows["impl"] == "native"]
        return native.iloc[:1] if len(native) else rows.iloc[:1]
    return rows


def _choose_baseline(frame: pd.DataFrame, by: str, baseline: str | None) -> str:
    column = "activation" if by == "activation" else by
    present = list(dict.fromkeys(frame[column].astype(str)))
    if baseline is None:
        baseline = DEFAULT_BASELINES.get(by, present[0])
    if by == "activation":
        baseline = canonical_activation(baseline, present)
    if baseline not in present:
        raise UnknownNameError(f"baseline (a value of '{column}' in the micro reports)", baseline,
                               present)
    return baseline


def _baseline_for(row: pd.Series, candidates: pd.DataFrame, by: str) -> pd.Series | None:
    """The baseline row a row is compared with: by activation, the baseline's row of the same
    shape, else its flat row of the same size; otherwise the group's one baseline row."""
    if candidates.empty:
        return None
    if by == "activation":
        same = prefer_native(candidates[candidates["shape"] == row["shape"]])
        if same.empty:
            same = prefer_native(candidates[candidates["shape"] == str(int(row["numel"]))])
        if same.empty:
            same = prefer_native(candidates)
        return same.iloc[0]
    return candidates.iloc[0]


def _sample_index(samples: pd.DataFrame) -> dict[tuple, np.ndarray]:
    if samples.empty:
        return {}
    keys = ["file", *MICRO_KEY]
    return {tuple(str(v) for v in key): group["seconds_per_call"].to_numpy(dtype=float)
            for key, group in samples.groupby(keys, sort=False)}


def _row_key(row: pd.Series) -> tuple:
    return tuple(str(row[k]) for k in ("file", *MICRO_KEY))


def _ratio_interval(row, base, metric: str, samples: dict, confidence: float):
    """The ratio and its interval: bootstrap of the raw samples when both have them, else the
    medians' own confidence intervals combined on the log scale, else none. With fewer than
    MIN_SAMPLES_FOR_INTERVAL samples on a side there is no interval: the median's own interval
    is then the full range and the combination would claim more than it has."""
    value, reference = float(row[metric]), float(base[metric])
    if not (math.isfinite(value) and math.isfinite(reference)) or reference == 0:
        return math.nan, math.nan, math.nan, ""
    ratio = value / reference
    if metric != "median_s" or row.name == base.name:
        return ratio, math.nan, math.nan, ""
    counts = [float(row.get("samples", math.nan)), float(base.get("samples", math.nan))]
    if not all(math.isfinite(c) and c >= MIN_SAMPLES_FOR_INTERVAL for c in counts):
        return ratio, math.nan, math.nan, ""
    mine, theirs = samples.get(_row_key(row)), samples.get(_row_key(base))
    if mine is not None and theirs is not None:
        _, low, high = stats.ratio_of_medians_ci(mine, theirs, confidence=confidence)
        return ratio, low, high, "bootstrap"
    cis = [float(x) for x in (row["ci_low_s"], row["ci_high_s"], base["ci_low_s"], base["ci_high_s"])]
    if all(math.isfinite(x) and x > 0 for x in cis):
        _, low, high = stats.ratio_ci_from_intervals(value, cis[0], cis[1], reference, cis[2], cis[3])
        return ratio, low, high, "median CIs"
    return ratio, math.nan, math.nan, ""


def _check_unique(frame: pd.DataFrame, group_keys: list[str], label_keys: list[str], by: str) -> None:
    """Each compared thing once per group: otherwise rows of different runs would be mixed."""
    duplicated = frame.duplicated([*group_keys, *label_keys], keep=False)
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        files = sorted(set(frame[duplicated]["file"]))
        raise ActbenchError(
            f"--by {by}: {' '.join(str(row[k]) for k in label_keys)} occurs more than once for "
            f"{row['activation']} {row['pass']} {row['shape']} (in {', '.join(files)}); narrow "
            "with --where file=... or compare with --by file")


@dataclass(frozen=True)
class _Plan:
    """What one micro comparison matches and measures, shared by its steps."""

    metric: str
    by: str
    baseline: str
    column: str  # whose values are compared: the baseline is one of them
    group_keys: list[str]
    label_keys: list[str]
    expected: list  # every compared value, where a group lacking one shows it as missing
    samples: dict[tuple, np.ndarray]
    confidence: float


def compare_micro(frame: pd.DataFrame, samples: pd.DataFrame | None = None, *,
                  metric: str = "median_s", by: str = "activation", baseline: str | None = None,
                  confidence: float = 0.95) -> MicroComparison:
    """One row per measured configuration with its ratio to the baseline row of its group.

    With --by file (or another column), a configuration the baseline has but another report
    lacks gets a row with status "missing", so regressions by omission stay visible.
    """
    if frame.empty:
        raise ActbenchError("no micro rows to compare")
    _check_options(frame, metric, by)
    frame = frame.assign(**{by: frame[by].astype(str)}) if by not in ("activation", "file") else frame
    plan = _plan(frame, samples, metric, by, baseline, confidence)
    records, missing_baseline = [], 0
    for _, group in frame.groupby(plan.group_keys, sort=False, dropna=False):
        group_records, has_baseline = _compare_group(group, plan)
        records += group_records
        missing_baseline += not has_baseline
    table = _in_order(pd.DataFrame.from_records(records), plan.group_keys)
    return MicroComparison(metric, by, plan.baseline, higher_is_better(metric), plan.group_keys,
                           plan.label_keys, table, _notes(table, missing_baseline, plan))


def _check_options(frame: pd.DataFrame, metric: str, by: str) -> None:
    """The metric must be a numeric column, `by` a column with values."""
    metrics = numeric_metrics(frame)
    if metric not in frame.columns or metric not in metrics:
        raise ActbenchError(f"metric '{metric}' is not a numeric column of the micro reports; "
                            f"expected one of {', '.join(metrics)}")
    if by not in frame.columns:
        known = ", ".join(["activation", "impl", "file", *[c for c in frame.columns if c not in
                                                          ("activation", "impl", "file")]])
        raise ActbenchError(f"--by '{by}' is not a column of the micro reports; expected one of "
                            f"{known}")
    if by not in ("activation", "impl", "file") and not (frame[by].astype(str) != "").any():
        raise ActbenchError(f"--by '{by}': the column is blank in every micro row")


def _plan(frame: pd.DataFrame, samples: pd.DataFrame | None, metric: str, by: str,
          baseline: str | None, confidence: float) -> _Plan:
    baseline = _choose_baseline(frame, by, baseline)
    group_keys, label_keys = _unit_keys(frame, by)
    _check_unique(frame, group_keys, label_keys, by)
    column = "activation" if by == "activation" else by
    # where reports are what is compared, a configuration one of them lacks is shown as missing
    expected = list(dict.fromkeys(frame[column])) if "file" not in group_keys else []
    samples_by_key = _sample_index(samples if samples is not None else pd.DataFrame())
    return _Plan(metric, by, baseline, column, group_keys, label_keys, expected, samples_by_key,
                 confidence)


def _compare_group(group: pd.DataFrame, plan: _Plan) -> tuple[list[dict], bool]:
    """Each row of one group against its baseline row, plus a row per expected value the group
    lacks; and whether the group has a usable baseline row at all."""
    usable = group[group["status"].isin(USABLE_STATUSES)]
    candidates = usable[usable[plan.column].astype(str) == plan.baseline]
    records = [_compared_row(row, _baseline_for(row, candidates, plan.by), plan)
               for _, row in group.iterrows()]
    if plan.expected and not candidates.empty:
        present = set(group[plan.column].astype(str))
        records += [_missing_row(group.iloc[0], value, plan)
                    for value in plan.expected if value not in present]
    return records, not candidates.empty


def _compared_row(row: pd.Series, base: pd.Series | None, plan: _Plan) -> dict:
    """A row's value and its ratio to `base` with the interval; the baseline's flags join its own."""
    is_base = base is not None and row.name == base.name
    ratio = low = high = math.nan
    method = ""
    if base is not None and row["status"] in USABLE_STATUSES:
        ratio, low, high, method = _ratio_interval(row, base, plan.metric, plan.samples,
                                                   plan.confidence)
    flags = {f for f in str(row.get("flags", "")).split(";") if f}
    if base is not None and not is_base:
        flags |= {f"baseline {f}" for f in str(base.get("flags", "")).split(";")
                  if f and f not in flags}
    metric = plan.metric
    return {
        **{k: row[k] for k in plan.group_keys}, **{k: row[k] for k in plan.label_keys},
        "shape": row["shape"], "numel": row["numel"], "status": row["status"],
        "value": row[metric],
        "value_low": row["ci_low_s"] if metric == "median_s" else math.nan,
        "value_high": row["ci_high_s"] if metric == "median_s" else math.nan,
        "ratio": ratio, "ratio_low": low, "ratio_high": high, "uncertainty": method,
        "is_baseline": is_base, "has_baseline": base is not None,
        "flags": ";".join(sorted(flags)),
        "gbps": row.get("gbps", math.nan), "roofline_frac": row.get("roofline_frac", math.nan),
        "saved_x_input": row.get("saved_x_input", math.nan),
    }


def _missing_row(first: pd.Series, absent: str, plan: _Plan) -> dict:
    """A configuration the group's baseline has and `absent` lacks: no value, status missing."""
    return {**{k: first[k] for k in plan.group_keys}, plan.column: absent,
            "shape": first["shape"], "numel": first["numel"],
            "status": "missing", "value": math.nan, "value_low": math.nan,
            "value_high": math.nan, "ratio": math.nan, "ratio_low": math.nan,
            "ratio_high": math.nan, "uncertainty": "", "is_baseline": False,
            "has_baseline": True, "flags": "", "gbps": math.nan,
            "roofline_frac": math.nan, "saved_x_input": math.nan}


def _in_order(table: pd.DataFrame, group_keys: list[str]) -> pd.DataFrame:
    """Within a group: by size, the baseline first, then the rest in measurement order."""
    order = table.assign(_base=~table["is_baseline"]).sort_values(
        [*[k for k in group_keys if k != "numel"], "numel", "_base"], kind="stable").index
    return table.loc[order].reset_index(drop=True)


def _notes(table: pd.DataFrame, missing_baseline: int, plan: _Plan) -> list[str]:
    notes = []
    if missing_baseline:
        notes.append(f"{missing_baseline} group(s) have no usable {plan.baseline} row: their ratios "
                     "are blank")
    lost = table[table["has_baseline"] & ~table["status"].isin(USABLE_STATUSES)]
    if len(lost):
        notes.append(f"{len(lost)} configuration(s) measured in the baseline have no usable value "
                     f"here ({', '.join(sorted(set(lost['status'])))}); gates count them as failures")
    if plan.by == "file":
        notes.append("ratios are each configuration's value over the same configuration in "
                     f"'{plan.baseline}'")
    return notes

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


MIN_SAMPLES_FOR_INTERVAL = stats.MIN_SAMPLES_FOR_INTERVAL  # fewer: no ratio interval


def _unit_keys(frame: pd.DataFrame, by: str) -> tuple[list[str], list[str]]:
    """(group keys, label keys) for comparing along `by`.

    Activations are compared within a size (element count), because channel-wise activations are
    laid out (4, 64, N/256) beside flat baselines; everything else is matched shape for shape, and
    at one thread count. The file is a group key unless it is what is compared, or `by` is a
    column that is constant within each file (host, torch_version): then files are matched with
    each other. Files are matched across thread counts (another machine, another default) unless
    a file sweeps them.
    """
    threads = [] if by == "threads" or "threads" not in frame else ["threads"]
    if by == "activation":
        return ["device", "dtype", "numel", "pass", *threads, "file"], ["activation", "impl", "shape"]
    if by == "file":
        sweeps = threads and frame.groupby("file")["threads"].nunique(dropna=False).max() > 1
        return ["activation", "impl", "device", "dtype", "shape", "pass",
                *(threads if sweeps else [])], ["file"]
    group = [k for k in ("activation", "impl", "device", "dtype", "shape", "pass") if k != by]
    group += threads
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
    present = list(pd.unique(frame[column].astype(str)))
    if baseline is None:
        baseline = DEFAULT_BASELINES.get(by, present[0])
    if by == "activation":
        baseline = canonical_activation(baseline, present)
    if baseline not in present:
        raise UnknownNameError(f"baseline (a value of '{column}' in the micro reports)", baseline,
                               present)
    return baseline


def _first_match(candidate_keys: np.ndarray, candidates: np.ndarray,
                 row_keys: np.ndarray) -> np.ndarray:
    """For each row key, the first of `candidates` (in the order given) with that key; -1 for
    none. Keys are integers; a negative row key matches nothing."""
    keys, first = np.unique(candidate_keys, return_index=True)
    found = np.full(len(row_keys), -1, dtype=np.int64)
    if not len(keys):
        return found
    where = np.clip(np.searchsorted(keys, row_keys), 0, len(keys) - 1)
    hit = (keys[where] == row_keys) & (row_keys >= 0)
    found[hit] = candidates[first[where[hit]]]
    return found


def _baseline_positions(frame: pd.DataFrame, group: np.ndarray, plan: _Plan) -> np.ndarray:
    """Per row, the position of the baseline row it is compared with, -1 where its group has no
    usable baseline row. By activation: the baseline's row of the same shape, else its flat row of
    the same size, else any of the group's, each time as prefer_native picks (the native
    implementation, else the first); otherwise the group's first baseline row."""
    usable = frame["status"].isin(USABLE_STATUSES).to_numpy()
    is_baseline = (frame[plan.column].astype(str) == plan.baseline).to_numpy()
    candidates = np.flatnonzero(usable & is_baseline)
    if plan.by != "activation":
        return _first_match(group[candidates], candidates, group)
    native = ((frame["impl"] == "native").to_numpy() if "impl" in frame
              else np.zeros(len(frame), dtype=bool))
    candidates = candidates[np.lexsort((candidates, ~native[candidates]))]  # native ones first
    sizes, inverse = np.unique(_floats(frame, "numel"), return_inverse=True)
    flat_text = np.array([str(int(n)) if math.isfinite(n) else None for n in sizes],
                         dtype=object)[inverse.ravel()]
    shapes = frame["shape"].to_numpy(dtype=object)
    codes, uniques = pd.factorize(np.concatenate([shapes, flat_text]))
    shape_code, flat_code = codes[:len(frame)], codes[len(frame):]
    width = len(uniques) + 1

    def key(code: np.ndarray, rows) -> np.ndarray:  # (group, shape): -1 for a shape that is nan
        return np.where(code >= 0, group[rows] * width + code, -1)

    candidate_keys = key(shape_code[candidates], candidates)
    found = _first_match(candidate_keys, candidates, key(shape_code, slice(None)))
    lacking = found < 0
    found[lacking] = _first_match(candidate_keys, candidates,
                                  key(flat_code[lacking], lacking))
    lacking = found < 0
    found[lacking] = _first_match(group[candidates], candidates, group[lacking])
    return found


def _sample_index(samples: pd.DataFrame) -> tuple[pd.MultiIndex | None, list[np.ndarray]]:
    """The raw samples of each configuration (file and key columns as text), in file order."""
    if samples.empty:
        return None, []
    keys = ["file", *MICRO_KEY]
    text = samples[keys].astype(str)
    group = text.groupby(keys, sort=False).ngroup().to_numpy()
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    values = samples["seconds_per_call"].to_numpy(dtype=float)[order]
    index = pd.MultiIndex.from_frame(text.iloc[order[np.r_[0, bounds]]])
    return index, np.split(values, bounds)


def _sample_ids(frame: pd.DataFrame, plan: _Plan) -> np.ndarray:
    """Per row, its entry in the sample index; -1 where no raw samples were given for it."""
    index, _ = plan.samples
    if index is None:
        return np.full(len(frame), -1, dtype=np.int64)
    keys = pd.MultiIndex.from_frame(frame[["file", *MICRO_KEY]].astype(str))
    return index.get_indexer(keys)


def _ratios(frame: pd.DataFrame, base: np.ndarray, is_base: np.ndarray, plan: _Plan):
    """Each row's ratio to its baseline row and the interval: a bootstrap of the raw samples where
    both rows have them, else the medians' own confidence intervals combined on the log scale,
    else none. With fewer than MIN_SAMPLES_FOR_INTERVAL samples on a side there is no interval:
    the median's own interval is then the full range and the combination would claim more than
    it has. Returns (ratio, low, high, method) arrays."""
    rows = len(frame)
    has = base >= 0
    ref = np.where(has, base, 0)
    value = _floats(frame, plan.metric)
    reference = value[ref]
    usable = frame["status"].isin(USABLE_STATUSES).to_numpy()
    ok = has & usable & np.isfinite(value) & np.isfinite(reference) & (reference != 0)
    ratio = np.full(rows, math.nan)
    ratio[ok] = value[ok] / reference[ok]
    low, high = np.full(rows, math.nan), np.full(rows, math.nan)
    method = np.full(rows, "", dtype=object)
    if plan.metric != "median_s":
        return ratio, low, high, method
    counts = _floats(frame, "samples")
    enough = np.nan_to_num(counts, nan=0.0) >= MIN_SAMPLES_FOR_INTERVAL
    eligible = ok & ~is_base & enough & enough[ref]
    ids = _sample_ids(frame, plan)
    boot = np.flatnonzero(eligible & (ids >= 0) & (ids[ref] >= 0))
    if len(boot):
        arrays = plan.samples[1]
        _, low[boot], high[boot] = stats.ratios_of_medians_ci(
            [arrays[i] for i in ids[boot]], [arrays[i] for i in ids[ref[boot]]],
            confidence=plan.confidence)
        method[boot] = "bootstrap"
    ci_low, ci_high = _floats(frame, "ci_low_s"), _floats(frame, "ci_high_s")
    bounds = np.isfinite(ci_low) & (ci_low > 0) & np.isfinite(ci_high) & (ci_high > 0)
    combined = eligible & bounds & bounds[ref]
    combined[boot] = False
    if combined.any():
        r = ref[combined]
        _, low[combined], high[combined] = stats.ratios_from_intervals(
            value[combined], ci_low[combined], ci_high[combined], reference[combined], ci_low[r],
            ci_high[r])
        method[combined] = "median CIs"
    return ratio, low, high, method


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as floats; all nan where the frame lacks it."""
    if column not in frame:
        return np.full(len(frame), math.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=math.nan)


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
    samples: tuple[pd.MultiIndex | None, list[np.ndarray]]  # _sample_index
    confidence: float


def compare_micro(frame: pd.DataFrame, samples: pd.DataFrame | None = None, *,
                  metric: str = "median_s", by: str = "activation", baseline: str | None = None,
                  confidence: float = 0.95) -> MicroComparison:
    """One row per measured configuration with its ratio to the baseline row of its group.

    With --by file (or another column), a configuration the baseline has but another report
    lacks gets a row with status "missing", so regressions by omission stay visible. Every step
    works on whole columns (groups are numbered, each row's baseline found by key), so the time
    grows with the rows, not with rows times group size.
    """
    if frame.empty:
        raise ActbenchError("no micro rows to compare")
    _check_options(frame, metric, by)
    frame = frame.assign(**{by: frame[by].astype(str)}) if by not in ("activation", "file") else frame
    frame = frame.reset_index(drop=True)
    plan = _plan(frame, samples, metric, by, baseline, confidence)
    group = frame.groupby(plan.group_keys, sort=False, dropna=False).ngroup().to_numpy()
    base = _baseline_positions(frame, group, plan)
    with_baseline = np.unique(group[base >= 0])
    compared = _compared_rows(frame, base, plan).assign(_group=group, _part=0,
                                                        _rank=np.arange(len(frame)))
    missing = _missing_rows(frame, group, with_baseline, plan)
    table = pd.concat([compared, missing], ignore_index=True) if len(missing) else compared
    table = table.sort_values(["_group", "_part", "_rank"], kind="stable")
    table = _in_order(table.drop(columns=["_group", "_part", "_rank"]).reset_index(drop=True),
                      plan.group_keys)
    missing_baseline = int(group.max() + 1 - len(with_baseline))
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
    expected = list(pd.unique(frame[column])) if "file" not in group_keys else []
    sample_index = _sample_index(samples if samples is not None else pd.DataFrame())
    return _Plan(metric, by, baseline, column, group_keys, label_keys, expected, sample_index,
                 confidence)


def _compared_rows(frame: pd.DataFrame, base: np.ndarray, plan: _Plan) -> pd.DataFrame:
    """Each row's value and its ratio to its baseline row with the interval; the baseline's flags
    join the row's own (as "baseline noisy")."""
    rows = np.arange(len(frame))
    is_base = base == rows
    ratio, low, high, method = _ratios(frame, base, is_base, plan)
    metric = plan.metric
    nan = np.full(len(frame), math.nan)
    columns = {k: frame[k] for k in (*plan.group_keys, *plan.label_keys)}
    columns.update({
        "shape": frame["shape"], "numel": frame["numel"], "status": frame["status"],
        "value": frame[metric],
        "value_low": frame["ci_low_s"] if metric == "median_s" else nan,
        "value_high": frame["ci_high_s"] if metric == "median_s" else nan,
        "ratio": ratio, "ratio_low": low, "ratio_high": high, "uncertainty": method,
        "is_baseline": is_base, "has_baseline": base >= 0,
        "flags": _joined_flags(frame, base, (base >= 0) & ~is_base),
        "gbps": frame.get("gbps", nan), "roofline_frac": frame.get("roofline_frac", nan),
        "saved_x_input": frame.get("saved_x_input", nan),
    })
    return pd.DataFrame(columns)


def _joined_flags(frame: pd.DataFrame, base: np.ndarray, inherits: np.ndarray) -> np.ndarray:
    """A row's flags and, where it `inherits`, its baseline's flags it lacks, as "baseline F";
    worked out once per distinct pair of flag texts."""
    own = (frame["flags"].astype(str).to_numpy(dtype=object) if "flags" in frame
           else np.full(len(frame), "", dtype=object))
    own_codes, own_texts = pd.factorize(own)
    base_codes = np.where(inherits, own_codes[np.where(base >= 0, base, 0)], -1)
    pairs, codes = np.unique(own_codes * (len(own_texts) + 1) + base_codes + 1, return_inverse=True)
    joined = []
    for pair in pairs:
        mine, baseline = own_texts[pair // (len(own_texts) + 1)], pair % (len(own_texts) + 1) - 1
        flags = {f for f in mine.split(";") if f}
        if baseline >= 0:
            flags |= {f"baseline {f}" for f in own_texts[baseline].split(";")
                      if f and f not in flags}
        joined.append(";".join(sorted(flags)))
    return np.array(joined, dtype=object)[codes.ravel()]


def _missing_rows(frame: pd.DataFrame, group: np.ndarray, with_baseline: np.ndarray,
                  plan: _Plan) -> pd.DataFrame:
    """A row, status missing, for each expected value a group with a baseline lacks (shape and
    keys from the group's first row)."""
    if not plan.expected or not len(with_baseline):
        return pd.DataFrame()
    expected = pd.DataFrame({"_group": np.repeat(with_baseline, len(plan.expected)),
                             "_rank": np.tile(np.arange(len(plan.expected)), len(with_baseline))})
    texts = np.array([str(v) for v in plan.expected], dtype=object)
    codes, values = pd.factorize(np.concatenate(
        [frame[plan.column].astype(str).to_numpy(dtype=object), texts]))
    width = len(values)
    present = group * width + codes[:len(frame)]
    rank = expected["_rank"].to_numpy()
    wanted = expected["_group"].to_numpy() * width + codes[len(frame):][rank]
    lacking = ~np.isin(wanted, present)
    expected = expected[lacking]
    if expected.empty:
        return pd.DataFrame()
    _, first = np.unique(group, return_index=True)
    firsts = frame.iloc[first[expected["_group"].to_numpy()]].reset_index(drop=True)
    nan = math.nan
    columns = {k: firsts[k] for k in plan.group_keys}
    columns[plan.column] = np.array(plan.expected, dtype=object)[expected["_rank"].to_numpy()]
    columns.update({"shape": firsts["shape"], "numel": firsts["numel"], "status": "missing",
                    "value": nan, "value_low": nan, "value_high": nan, "ratio": nan,
                    "ratio_low": nan, "ratio_high": nan, "uncertainty": "", "is_baseline": False,
                    "has_baseline": True, "flags": "", "gbps": nan, "roofline_frac": nan,
                    "saved_x_input": nan})
    return pd.DataFrame(columns).assign(_group=expected["_group"].to_numpy(), _part=1,
                                        _rank=expected["_rank"].to_numpy())


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

"""Training runs compared with a baseline: per group and activation the seeds' mean and interval, the
difference to the baseline with a test (paired by seed where the seeds match), Holm's correction over
the table, the effect size, the power the design had, and how many seeds would be needed.

The numbers come from actbench.stats; this module only chooses which test applies, groups the runs
and words the notes. Rendering is elsewhere (report/compare_tables.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import stats
from ..errors import ActbenchError
from .load import NOISE_COLUMN, sweep_columns
from .metrics import higher_is_better

TARGET_POWER = 0.8
MAX_RUNS = 10_000  # runs_for_power searches up to here; beyond it the note says "more than"
MIN_RANK_TEST_RUNS = 4  # Mann-Whitney U only where each side has at least this many runs

TABLE_COLUMNS = (
    "activation", "n", "seeds", "mean", "std", "ci_low", "ci_high", "diff", "diff_ci_low",
    "diff_ci_high", "test", "p_value", "p_mannwhitney", "p_holm", "significant", "cohens_d",
    "power", "seeds_needed", "rank", "note",
)

_NOT_METRICS = frozenset({"schema_version", "run_index", "seed", "epochs", "batch_size", "best_epoch"})

@dataclass
class TrainComparison:
    metric: str
    higher_is_better: bool
    baseline: str
    alpha: float
    group_keys: list[str]
    table: pd.DataFrame  # one row per (group, activation), columns *group_keys + TABLE_COLUMNS
    notes: list[str] = field(default_factory=list)


def compare_train(frame: pd.DataFrame, *, metric: str = "final_test_acc", baseline: str = "relu",
                  by: list[str] | None = None, alpha: float = 0.05,
                  confidence: float = 0.95) -> TrainComparison:
    """Every activation against the baseline in each group (sweep point, data set and model, `by` keys)."""
    by = [key for key in (by or []) if key != "activation"]
    _check_request(frame, metric, by, alpha, confidence)
    with_impl = "impl" in by
    frame = frame.assign(_label=_labels(frame, with_impl)).reset_index(drop=True)
    baseline_label, baseline_note = _baseline_label(frame, baseline)
    group_keys = _group_keys(frame, [key for key in by if key != "impl"])
    values = pd.to_numeric(frame[metric], errors="coerce").astype(float)
    frame = frame.assign(_ok=(frame["status"].astype(str) == "ok") & np.isfinite(values))

    rows: list[dict] = []
    missing_baseline: list[str] = []
    for index, (key, group) in enumerate(_groups(frame, group_keys)):
        reference = group[group["_ok"] & (group["_label"] == baseline_label)]
        if reference.empty:
            missing_baseline.append(_describe(group_keys, key))
        for label, runs in group.groupby("_label", sort=False):
            row = dict(zip(group_keys, key))
            row.update(_row(runs, reference if label != baseline_label else None,
                            metric=metric, alpha=alpha, confidence=confidence,
                            is_baseline=label == baseline_label))
            rows.append({"activation": label, "_group": index, **row})

    table = pd.DataFrame(rows)
    table["p_holm"] = stats.holm(table["p_value"].to_numpy(dtype=float))
    table["significant"] = (table["p_holm"] < alpha).astype(bool)
    table["rank"] = table.groupby("_group")["mean"].rank(
        method="min", ascending=not higher_is_better(metric)).astype("Int64")
    table["note"] = [_note(row, alpha) for row in table.to_dict("records")]
    notes = _notes(frame, table, metric=metric, baseline=baseline_label, alpha=alpha,
                   confidence=confidence)
    table = table.sort_values(["_group", "rank"], kind="stable", na_position="last")
    table = table[[*group_keys, *TABLE_COLUMNS]].reset_index(drop=True)
    notes += [baseline_note] if baseline_note else []
    if missing_baseline:
        notes.append(f"no finished {baseline_label} runs in {', '.join(missing_baseline)}: "
                     "no difference or test there")
    return TrainComparison(metric, higher_is_better(metric), baseline_label, alpha, group_keys,
                           table, notes)


# -- checking the request ------------------------------------------------------------------------

def numeric_metrics(frame: pd.DataFrame) -> list[str]:
    """The columns a comparison can use: numeric, with at least one value, not a key or a setting."""
    sweeps = set(sweep_columns(frame))
    return [column for column in frame.columns
            if column not in _NOT_METRICS and column not in sweeps and not column.startswith("_")
            and pd.api.types.is_numeric_dtype(frame[column]) and frame[column].notna().any()]


def _check_request(frame: pd.DataFrame, metric: str, by: list[str], alpha: float,
                   confidence: float) -> None:
    if frame.empty or not {"activation", "status"} <= set(frame.columns):
        raise ActbenchError("no training runs to compare; expected train reports written by "
                            "actbench train")
    if metric not in frame.columns or not pd.api.types.is_numeric_dtype(frame[metric]):
        problem = "is not a column of" if metric not in frame.columns else "is not numeric in"
        raise ActbenchError(f"metric '{metric}' {problem} the train reports; numeric metrics: "
                            f"{', '.join(numeric_metrics(frame)) or 'none'}")
    unknown = [key for key in by if key not in frame.columns]
    if unknown:
        raise ActbenchError(f"cannot group train runs by {', '.join(unknown)}: no such column; "
                            f"expected activation, impl, file or one of {', '.join(frame.columns)}")
    for name, value in (("alpha", alpha), ("confidence", confidence)):
        if not 0 < value < 1:
            raise ActbenchError(f"{name} {value} is not between 0 and 1 (e.g. 0.05 for alpha, "
                                "0.95 for confidence)")


def _labels(frame: pd.DataFrame, with_impl: bool) -> pd.Series:
    """The row label: the activation, with its implementation in brackets when comparing by impl
    (unless the report's label already names one, as in gelu[tanh])."""
    labels = frame["activation"].astype(str)
    if not with_impl or "impl" not in frame.columns:
        return labels
    impl = frame["impl"].fillna("").astype(str)
    return pd.Series([label if not i or label.endswith("]") else f"{label}[{i}]"
                      for label, i in zip(labels, impl)], index=frame.index)


def _baseline_label(frame: pd.DataFrame, baseline: str) -> tuple[str, str]:
    """The label of the baseline's rows, and a note when one of several implementations was chosen."""
    labels = frame["_label"]
    if (labels == baseline).any():
        return baseline, ""
    candidates = sorted(set(labels[frame["activation"].astype(str) == baseline]))
    if not candidates:
        present = ", ".join(dict.fromkeys(frame["activation"].astype(str)))
        raise ActbenchError(f"baseline '{baseline}' is not in the train reports; activations "
                            f"present: {present}")
    native = [c for c in candidates if c.endswith("[native]")]
    chosen = (native or candidates)[0]
    note = f"baseline {chosen} (of {', '.join(candidates)})" if len(candidates) > 1 else ""
    return chosen, note


def _group_keys(frame: pd.DataFrame, by: list[str]) -> list[str]:
    """Data set and model where they differ within the other keys, sweep keys that vary, `by` keys."""
    sweeps = [key for key in sweep_columns(frame) if frame[key].nunique(dropna=False) > 1]
    others = [key for key in by if key not in sweeps]
    keys = [*sweeps, *others]
    varying = []
    for column in ("dataset", "model"):
        if column in frame.columns and column not in keys:
            within = frame.groupby(keys, dropna=False)[column] if keys else [(None, frame[column])]
            if any(values.nunique(dropna=False) > 1 for _, values in within):
                varying.append(column)
    return [*varying, *keys]


def _groups(frame: pd.DataFrame, keys: list[str]):
    if not keys:
        yield (), frame
        return
    yield from frame.groupby(keys, sort=False, dropna=False)


def _describe(keys: list[str], values: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values)) or "the table"


# -- one row: an activation in a group against the baseline --------------------------------------

def _seeds(runs: pd.DataFrame) -> list:
    if "seed" not in runs.columns:
        return []
    seeds = pd.to_numeric(runs["seed"], errors="coerce")
    return sorted(int(s) if float(s).is_integer() else s for s in seeds.dropna())


def _row(runs: pd.DataFrame, reference: pd.DataFrame | None, *, metric: str, alpha: float,
         confidence: float, is_baseline: bool) -> dict:
    ok = runs[runs["_ok"]]
    values = ok[metric].to_numpy(dtype=float)
    summary = stats.mean_ci(values, confidence)
    row = {"n": summary.n, "seeds": ",".join(str(s) for s in _seeds(ok)), "mean": summary.mean,
           "std": summary.std, "ci_low": summary.ci_low, "ci_high": summary.ci_high,
           "diff": 0.0 if is_baseline and summary.n else math.nan, "diff_ci_low": math.nan,
           "diff_ci_high": math.nan, "test": "", "p_value": math.nan, "p_mannwhitney": math.nan,
           "cohens_d": math.nan, "power": math.nan, "seeds_needed": math.nan,
           "_n_baseline": 0, "_failed": runs["status"].astype(str).isin(["failed", "diverged"]).sum()}
    if is_baseline or reference is None or reference.empty or summary.n == 0:
        return row
    base = reference[metric].to_numpy(dtype=float)
    row["_n_baseline"] = base.size
    row["diff"] = summary.mean - float(base.mean())
    row["cohens_d"] = stats.cohens_d(values, base)
    if _same_seeds(ok, reference):
        mine, theirs = (ok.sort_values("seed")[metric].to_numpy(dtype=float),
                        reference.sort_values("seed")[metric].to_numpy(dtype=float))
        result = stats.paired_t_test(mine, theirs, confidence)
        effect = stats.cohens_dz(mine, theirs)
        row.update(test="paired t", power=stats.power_paired(effect, mine.size, alpha),
                   seeds_needed=stats.runs_for_power(effect, paired=True, power=TARGET_POWER,
                                                     alpha=alpha, max_runs=MAX_RUNS))
    else:
        result = stats.welch_t_test(values, base, confidence) if min(values.size, base.size) >= 2 \
            else None
        effect = row["cohens_d"]
        row.update(test="welch" if result else "",
                   power=stats.power_two_sample(effect, min(values.size, base.size), alpha),
                   seeds_needed=stats.runs_for_power(effect, power=TARGET_POWER, alpha=alpha,
                                                     max_runs=MAX_RUNS))
    if result is not None:
        row.update(p_value=result.p_value, diff_ci_low=result.ci_low, diff_ci_high=result.ci_high)
    if min(values.size, base.size) >= MIN_RANK_TEST_RUNS:
        row["p_mannwhitney"] = stats.mann_whitney_p(values, base)
    return row


def _same_seeds(runs: pd.DataFrame, reference: pd.DataFrame) -> bool:
    """Pairing by seed needs each seed once on each side, the same seeds, and at least two pairs."""
    mine, theirs = _seeds(runs), _seeds(reference)
    return (len(mine) >= 2 and len(mine) == len(runs) and len(theirs) == len(reference)
            and len(set(mine)) == len(mine) and mine == theirs)


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g} %"


def _runs_text(needed: float) -> str:
    return f"more than {MAX_RUNS}" if math.isinf(needed) else str(int(needed))


def _note(row: dict, alpha: float) -> str:
    """Why a comparison says little: no runs, too few runs to test, or too little power."""
    n, m, failed, needed = row["n"], row["_n_baseline"], row["_failed"], row["seeds_needed"]
    if n == 0:
        return f"no finished runs ({failed} failed or diverged)" if failed else "no finished runs"
    if not m:
        return ""
    if not row["test"]:
        parts = [f"too few runs to test: {n} vs {m}"]
    elif not row["significant"] and row["power"] < TARGET_POWER:
        parts = [f"too few seeds: {n} vs {m} runs"]
    else:
        return ""
    if not math.isnan(needed):  # (a rank test's floor is said once, under the table)
        parts.append(f"about {_runs_text(needed)} per activation for {_percent(TARGET_POWER)} power "
                     "at the observed effect")
    return "; ".join(parts)


# -- notes under the table -----------------------------------------------------------------------

def _notes(frame: pd.DataFrame, table: pd.DataFrame, *, metric: str, baseline: str, alpha: float,
           confidence: float) -> list[str]:
    direction = "higher" if higher_is_better(metric) else "lower"
    notes = [f"{metric}: {direction} is better; mean ± std over seeds, {_percent(confidence)} "
             f"t intervals of the mean; diff = activation - {baseline}"]
    family = int(table["p_value"].notna().sum())
    if family:
        notes.append(f"p: paired t-test where both sides ran the same seeds, Welch's t-test "
                     f"otherwise; Mann-Whitney U where each side has at least {MIN_RANK_TEST_RUNS} "
                     f"runs; Holm correction over the {family} comparison"
                     f"{'s' if family > 1 else ''} against {baseline} in this table, significant "
                     f"when the adjusted p < {alpha:g}")
    else:
        notes.append("no comparison could be tested: each side needs at least two finished runs")
    tested = table[table["test"] != ""]
    for n, m in sorted(set(zip(tested["n"].astype(int), tested["_n_baseline"].astype(int)))):
        smallest = stats.smallest_rank_test_p(n, m)
        if smallest >= alpha:
            notes.append(f"{n} vs {m} runs cannot reach p < {alpha:g} with a rank test "
                         f"(smallest two-sided p = {smallest:.3g})")
    left_out = frame[~frame["_ok"]]
    if len(left_out):
        status = left_out["status"].astype(str).replace("ok", f"without a finite {metric}")
        counts = ", ".join(f"{count} {what}" for what, count in status.value_counts(sort=False).items())
        notes.append(f"runs left out: {counts}")
    return notes



# -- robustness to input noise -------------------------------------------------------------------

NOISE_KEY = "input noise σ"
NOISE_METRIC = "noisy_test_acc"


def compare_noise(frame: pd.DataFrame, *, baseline: str = "relu", by: list[str] | None = None,
                  alpha: float = 0.05, confidence: float = 0.95) -> TrainComparison | None:
    """Test accuracy under each evaluated input noise level (the `noise_<σ>_acc` columns) as a
    comparison with σ as a group key, for the Mish paper's accuracy-against-noise figure.

    None when the reports evaluated no noise levels.
    """
    levels = {}
    for column in frame.columns:
        match = NOISE_COLUMN.fullmatch(column)
        if match and column.endswith("_acc"):
            sigma = pd.to_numeric(column[len("noise_"):-len("_acc")], errors="coerce")
            if np.isfinite(sigma):
                levels[float(sigma)] = column
    if not levels:
        return None
    long = pd.concat([frame.assign(**{NOISE_KEY: sigma, NOISE_METRIC: frame[column]})
                      for sigma, column in sorted(levels.items())], ignore_index=True)
    return compare_train(long, metric=NOISE_METRIC, baseline=baseline,
                         by=[*(by or []), NOISE_KEY], alpha=alpha, confidence=confidence)

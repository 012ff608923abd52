"""Training runs compared with a baseline: per group and activation the seeds' mean and interval, the
difference to the baseline with a test (paired on the seeds both sides ran), Holm's correction over
the table, the effect size, the power the design had, and how many seeds would be needed.

Groups: runs are compared only with runs of the same setup. Sweep keys, `by` keys and the training
setup (suite, data set, model, optimizer, epochs, batch size, amp, device) separate groups wherever
they vary, so unlike setups are never pooled; a key a report lacks shows as MISSING_VALUE. Within a
group a run (label, impl, seed, config hash) counts once, however many copies of it were given.

`by=["impl"]` labels rows activation[impl] and compares every label with the baseline activation's
native implementation (relu[native]): how each activation in each implementation fares against the
reference. (Micro's --by impl instead sets each implementation against its own activation's native
one.) `bare_activation` gives the activation of such a label, for colours and matching.

The numbers come from actbench.stats; this module only chooses which test applies, groups the runs
and words the notes. Rendering is elsewhere (report/compare_tables.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import stats
from ..errors import ActbenchError
from ..records.schema import TRAIN_RUN_LANGUAGE
from .load import NOISE_COLUMN, sweep_columns
from .metrics import higher_is_better, is_accuracy, numeric_columns

TARGET_POWER = 0.8
MAX_RUNS = 10_000  # runs_for_power searches up to here; beyond it the note says "more than"
MIN_RANK_TEST_RUNS = 4  # Mann-Whitney U only where each side has at least this many runs
MISSING_VALUE = "—"  # a group key a report does not have (or left blank)

# the training setup: runs that differ in any of these are never pooled
SETUP_KEYS = ("suite", "dataset", "model", "optimizer", "epochs", "batch_size", "amp", "device")

TABLE_COLUMNS = (
    "activation", "n", "seeds", "mean", "std", "ci_low", "ci_high", "diff", "diff_ci_low",
    "diff_ci_high", "test", "p_value", "p_mannwhitney", "p_holm", "significant", "cohens_d",
    "power", "seeds_needed", "rank", "note",
)

_NOT_METRICS = frozenset({"schema_version", "run_index", "seed", "epochs", "batch_size", "best_epoch",
                          "amp"})
_IMPL_SUFFIX = re.compile(r"\[[^\[\]()]*\]")


@dataclass
class TrainComparison:
    metric: str
    higher_is_better: bool
    baseline: str
    alpha: float
    group_keys: list[str]
    table: pd.DataFrame  # one row per (group, activation), columns *group_keys + TABLE_COLUMNS
    notes: list[str] = field(default_factory=list)
    confidence: float = 0.95  # the level of the intervals
    power_alpha: float = 0.05  # the level power and seeds_needed are computed at: alpha / tests
    labels_with_impl: bool = False  # labels are activation[impl] (by impl)


def compare_train(frame: pd.DataFrame, *, metric: str = "final_test_acc", baseline: str = "relu",
                  by: list[str] | None = None, alpha: float = 0.05,
                  confidence: float = 0.95) -> TrainComparison:
    """Every activation against the baseline in each group (sweep point, setup, `by` keys)."""
    by = [key for key in (by or []) if key != "activation"]
    _check_request(frame, metric, by, alpha, confidence)
    with_impl = "impl" in by
    frame = frame.assign(_label=run_labels(frame, with_impl)).reset_index(drop=True)
    baseline_label, baseline_note = _baseline_label(frame, baseline)
    frame, group_keys = _with_group_keys(frame, [key for key in by if key != "impl"])
    values = pd.to_numeric(frame[metric], errors="coerce").astype(float)
    frame = frame.assign(**{metric: values},
                         _ok=(frame["status"].astype(str) == "ok") & np.isfinite(values))
    frame, duplicates_note = _drop_duplicate_runs(frame, group_keys, metric)

    rows: list[dict] = []
    missing_baseline: list[str] = []
    for index, (key, group) in enumerate(_groups(frame, group_keys)):
        reference = group[group["_ok"] & (group["_label"] == baseline_label)]
        if reference.empty:
            missing_baseline.append(_describe(group_keys, key))
        for label, runs in group.groupby("_label", sort=False):
            row = dict(zip(group_keys, key))
            row.update(_row(runs, reference if label != baseline_label else None,
                            metric=metric, confidence=confidence, label=label,
                            baseline=baseline_label, is_baseline=label == baseline_label))
            rows.append({"activation": label, "_group": index, **row})

    table = pd.DataFrame(rows)
    table["p_holm"] = stats.holm(table["p_value"].to_numpy(dtype=float))
    table["significant"] = (table["p_holm"] < alpha).astype(bool)
    family = int(table["p_value"].notna().sum())
    power_alpha = alpha / max(family, 1)
    table = _with_power(table, power_alpha)
    table["rank"] = table.groupby("_group")["mean"].rank(
        method="min", ascending=not higher_is_better(metric)).astype("Int64")
    table["note"] = [_note(row, power_alpha) for row in table.to_dict("records")]
    notes = _notes(frame, table, metric=metric, baseline=baseline_label, alpha=alpha,
                   confidence=confidence, power_alpha=power_alpha)
    table = table.sort_values(["_group", "rank"], kind="stable", na_position="last")
    table = table[[*group_keys, *TABLE_COLUMNS]].reset_index(drop=True)
    notes += [note for note in (duplicates_note, baseline_note) if note]
    if missing_baseline:
        notes.append(f"no finished {baseline_label} runs in {', '.join(missing_baseline)}: "
                     "no difference or test there")
    return TrainComparison(metric, higher_is_better(metric), baseline_label, alpha, group_keys,
                           table, notes, confidence=confidence, power_alpha=power_alpha,
                           labels_with_impl=with_impl)


# -- checking the request ------------------------------------------------------------------------

def numeric_metrics(frame: pd.DataFrame) -> list[str]:
    """The columns a comparison can use: numeric, with at least one value, not a key or a setting."""
    return numeric_columns(frame, _NOT_METRICS | set(sweep_columns(frame)))


def _check_request(frame: pd.DataFrame, metric: str, by: list[str], alpha: float,
                   confidence: float) -> None:
    if frame.empty or not {"activation", "status"} <= set(frame.columns):
        raise ActbenchError("no training runs to compare; expected train reports written by "
                            "actbench train")
    if metric not in frame.columns or not pd.api.types.is_numeric_dtype(frame[metric]):
        problem = "is not a column of" if metric not in frame.columns else "is not numeric in"
        raise ActbenchError(f"metric '{metric}' {problem} the train reports; numeric metrics: "
                            f"{', '.join(numeric_metrics(frame)) or 'none'}")
    if metric in _NOT_METRICS or metric in sweep_columns(frame) or metric.startswith("_"):
        raise ActbenchError(f"'{metric}' is a run key or setting, not a result to compare; numeric "
                            f"metrics: {', '.join(numeric_metrics(frame)) or 'none'}")
    unknown = [key for key in by if key not in frame.columns]
    if unknown:
        raise ActbenchError(f"cannot group train runs by {', '.join(unknown)}: no such column; "
                            f"expected activation, impl, file or one of {', '.join(frame.columns)}")
    for name, value in (("alpha", alpha), ("confidence", confidence)):
        if not 0 < value < 1:
            raise ActbenchError(f"{name} {value} is not between 0 and 1 (e.g. 0.05 for alpha, "
                                "0.95 for confidence)")
    blank = _blank(frame["activation"])
    if blank.any():
        where = _files_of(frame[blank])
        raise ActbenchError(f"{int(blank.sum())} train row{'s' if blank.sum() > 1 else ''} "
                            f"{'have' if blank.sum() > 1 else 'has'} no activation{where}; every "
                            "run needs the activation it trained with")


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


def _files_of(rows: pd.DataFrame) -> str:
    """' in a, b' naming the report files of the rows, or '' when the rows do not say."""
    if "file" not in rows.columns:
        return ""
    return " in " + ", ".join(dict.fromkeys(rows["file"].astype(str)))


# -- labels, groups and duplicates ---------------------------------------------------------------

def bare_activation(label: str) -> str:
    """The activation of a row label, without the implementation in brackets: mish[fast] -> mish,
    gelu(approximate=tanh)[native] -> gelu(approximate=tanh)."""
    return _IMPL_SUFFIX.sub("", str(label)).strip() or str(label)


def run_labels(frame: pd.DataFrame, with_impl: bool) -> pd.Series:
    """Each run's row label: the activation, with its implementation in brackets when comparing by
    impl (unless the report's label already names it, as in mish[fast])."""
    labels = frame["activation"].astype(str)
    if not with_impl or "impl" not in frame.columns:
        return labels
    impl = frame["impl"].fillna("").astype(str)
    return pd.Series([label if not i or f"[{i}]" in label else f"{label}[{i}]"
                      for label, i in zip(labels, impl)], index=frame.index)


def _baseline_label(frame: pd.DataFrame, baseline: str) -> tuple[str, str]:
    """The label of the baseline's rows (its native implementation where labels carry one), and a
    note when one of several implementations was chosen."""
    labels = frame["_label"]
    if (labels == baseline).any():
        return baseline, ""
    candidates = sorted({label for label in labels if bare_activation(label) == baseline})
    if not candidates:
        present = ", ".join(dict.fromkeys(frame["activation"].astype(str)))
        raise ActbenchError(f"baseline '{baseline}' is not in the train reports; activations "
                            f"present: {present}")
    native = [c for c in candidates if c.endswith("[native]")]
    chosen = (native or candidates)[0]
    note = f"baseline {chosen} (of {', '.join(candidates)})" if len(candidates) > 1 else ""
    return chosen, note


def _with_group_keys(frame: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The group keys: the setup columns that vary within the other keys, the sweep keys that
    vary, the `by` keys. Blank or missing values of a key become MISSING_VALUE, one group."""
    filled = {column: _blank_as_missing(frame[column])
              for column in dict.fromkeys([*SETUP_KEYS, *sweep_columns(frame), *by])
              if column in frame.columns}
    view = frame.assign(**filled)
    sweeps = [key for key in sweep_columns(frame) if view[key].nunique(dropna=False) > 1]
    keys = [*sweeps, *(key for key in by if key not in sweeps)]
    setup: list[str] = []
    for column in SETUP_KEYS:
        if column in view.columns and column not in keys:
            within = view.groupby([*setup, *keys], dropna=False)[column] if setup or keys \
                else [(None, view[column])]
            if any(values.nunique(dropna=False) > 1 for _, values in within):
                setup.append(column)
    group_keys = [*setup, *keys]
    return frame.assign(**{key: filled[key] for key in group_keys if key in filled}), group_keys


def _blank_as_missing(values: pd.Series) -> pd.Series:
    blank = _blank(values)
    return values.astype(object).where(~blank, MISSING_VALUE) if blank.any() else values


def _groups(frame: pd.DataFrame, keys: list[str]):
    if not keys:
        yield (), frame
        return
    yield from frame.groupby(keys, sort=False, dropna=False)


def _describe(keys: list[str], values: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values)) or "the table"


def _drop_duplicate_runs(frame: pd.DataFrame, group_keys: list[str],
                         metric: str) -> tuple[pd.DataFrame, str]:
    """One row per run: rows of a group with the same label, impl, seed and config hash are copies
    of one run (a report given twice, a backup). Identical copies are dropped with a note; copies
    that disagree are refused, naming the run and the files."""
    if not {"seed", "config_hash"} <= set(frame.columns):
        return frame, ""
    run_key = [*group_keys, "_label", *(c for c in ("impl", "seed", "config_hash")
                                         if c in frame.columns)]
    candidates = frame[frame["seed"].notna() & ~_blank(frame["config_hash"])]
    copies = candidates[candidates.duplicated(run_key, keep=False)]
    if copies.empty:
        return frame, ""
    for _, same in copies.groupby(run_key, sort=False, dropna=False):
        outcome = same[["status", metric]].astype(str)
        if len(outcome.drop_duplicates()) > 1:
            first = same.iloc[0]
            shown = ", ".join(f"{status} {value:.6g}" if status == "ok" else status
                              for status, value in zip(same["status"].astype(str), same[metric]))
            raise ActbenchError(f"run {first['_label']} seed {_seed_text(first['seed'])} (config "
                                f"{first['config_hash']}) "
                                f"occurs {len(same)} times{_files_of(same)} with different "
                                f"results ({metric}: {shown}); keep one copy (--where file=...) or "
                                "compare the files with --by file")
    dropped = candidates.index[candidates.duplicated(run_key, keep="first")]
    note = (f"{len(dropped)} duplicated run{'s' if len(dropped) > 1 else ''} left out (the same "
            f"activation, seed and configuration{_files_of(copies)}): each run counts once")
    return frame.drop(index=dropped), note


def _seed_text(seed) -> str:
    value = float(seed)
    return str(int(value)) if value.is_integer() else f"{value:g}"


# -- one row: an activation in a group against the baseline --------------------------------------

def _seeds(runs: pd.DataFrame) -> list:
    if "seed" not in runs.columns:
        return []
    seeds = pd.to_numeric(runs["seed"], errors="coerce")
    return sorted(int(s) if float(s).is_integer() else s for s in seeds.dropna())


def _row(runs: pd.DataFrame, reference: pd.DataFrame | None, *, metric: str, confidence: float,
         label: str, baseline: str, is_baseline: bool) -> dict:
    ok = runs[runs["_ok"]]
    values = ok[metric].to_numpy(dtype=float)
    summary = stats.mean_ci(values, confidence)
    row = {"n": summary.n, "seeds": ",".join(str(s) for s in _seeds(ok)), "mean": summary.mean,
           "std": summary.std, "ci_low": summary.ci_low, "ci_high": summary.ci_high,
           "diff": 0.0 if is_baseline and summary.n else math.nan, "diff_ci_low": math.nan,
           "diff_ci_high": math.nan, "test": "", "p_value": math.nan, "p_mannwhitney": math.nan,
           "cohens_d": math.nan, "_effect": math.nan, "_power_runs": 0, "_paired": False,
           "_pairing": "", "_n_baseline": 0,
           "_failed": runs["status"].astype(str).isin(["failed", "diverged"]).sum()}
    if is_baseline or reference is None or reference.empty or summary.n == 0:
        return row
    base = reference[metric].to_numpy(dtype=float)
    row["_n_baseline"] = base.size
    row["diff"] = summary.mean - float(base.mean())
    row["cohens_d"] = stats.cohens_d(values, base)
    shared = _shared_seeds(ok, reference)
    if shared:
        mine, theirs = _by_seed(ok, shared, metric), _by_seed(reference, shared, metric)
        result = stats.paired_t_test(mine, theirs, confidence)
        row.update(test="paired t", diff=result.diff, _effect=stats.cohens_dz(mine, theirs),
                   _power_runs=len(shared), _paired=True,
                   _pairing=_pairing_note(ok, reference, shared, label, baseline))
    else:
        result = stats.welch_t_test(values, base, confidence) if min(values.size, base.size) >= 2 \
            else None
        row.update(test="welch" if result else "", _effect=row["cohens_d"],
                   _power_runs=min(values.size, base.size))
    if result is not None:
        row.update(p_value=result.p_value, diff_ci_low=result.ci_low, diff_ci_high=result.ci_high)
    if min(values.size, base.size) >= MIN_RANK_TEST_RUNS:
        row["p_mannwhitney"] = stats.mann_whitney_p(values, base)
    return row


def _shared_seeds(runs: pd.DataFrame, reference: pd.DataFrame) -> list:
    """The seeds to pair on: those both sides ran, when each side ran each of its seeds once and at
    least two are shared; otherwise [] (no pairing)."""
    mine, theirs = _seeds(runs), _seeds(reference)
    if len(mine) != len(runs) or len(theirs) != len(reference) or \
            len(set(mine)) != len(mine) or len(set(theirs)) != len(theirs):
        return []
    shared = sorted(set(mine) & set(theirs))
    return shared if len(shared) >= 2 else []


def _by_seed(runs: pd.DataFrame, seeds: list, metric: str) -> np.ndarray:
    indexed = runs.assign(_seed=pd.to_numeric(runs["seed"], errors="coerce")).set_index("_seed")
    return indexed.loc[[float(s) for s in seeds], metric].to_numpy(dtype=float)


def _pairing_note(runs: pd.DataFrame, reference: pd.DataFrame, shared: list, label: str,
                  baseline: str) -> str:
    """Which seeds a pairing on the shared seeds left out ('' when none)."""
    left = [(name, [s for s in _seeds(side) if s not in set(shared)])
            for name, side in ((label, runs), (baseline, reference))]
    left = [f"{name} seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))}"
            for name, seeds in left if seeds]
    if not left:
        return ""
    return (f"paired on the {len(shared)} seeds both ran (diff and p over those pairs); "
            f"left out of the pairing: {', '.join(left)}")


def _with_power(table: pd.DataFrame, level: float) -> pd.DataFrame:
    """Power at the observed effect and runs for TARGET_POWER, both at the two-sided level `level`."""
    power, needed = [], []
    for effect, runs, paired in zip(table["_effect"], table["_power_runs"], table["_paired"]):
        power.append(stats.power_paired(effect, int(runs), level) if paired
                     else stats.power_two_sample(effect, int(runs), level))
        needed.append(stats.runs_for_power(effect, paired=bool(paired), power=TARGET_POWER,
                                           alpha=level, max_runs=MAX_RUNS))
    return table.assign(power=power, seeds_needed=needed)


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g} %"


def _runs_text(needed: float) -> str:
    return f"more than {MAX_RUNS}" if math.isinf(needed) else str(int(needed))


def _note(row: dict, power_alpha: float) -> str:
    """Why a comparison says little: no runs, too few runs to test, no variation to test, or too
    little power at the level Holm's correction asks for; and which seeds the pairing left out."""
    n, m, failed, needed = row["n"], row["_n_baseline"], row["_failed"], row["seeds_needed"]
    if n == 0:
        return f"no finished runs ({failed} failed or diverged)" if failed else "no finished runs"
    if not m:
        return ""
    parts = [row["_pairing"]] if row["_pairing"] else []
    if not row["test"]:
        parts.append(f"too few runs to test: {n} vs {m}")
    elif math.isnan(row["p_value"]):
        parts.append("no p-value: no variation in the differences" if row["_paired"]
                     else "no p-value: no variation on either side")
        needed = math.nan
    elif not row["significant"] and row["power"] < TARGET_POWER:
        parts.append(f"too few seeds: {n} vs {m} runs")
    else:
        needed = math.nan
    if not math.isnan(needed):  # (the level and a rank test's floor are said once, under the table)
        parts.append(f"about {_runs_text(needed)} per activation for {_percent(TARGET_POWER)} power")
    return "; ".join(parts)


# -- notes under the table -----------------------------------------------------------------------

def _notes(frame: pd.DataFrame, table: pd.DataFrame, *, metric: str, baseline: str, alpha: float,
           confidence: float, power_alpha: float) -> list[str]:
    direction = "higher" if higher_is_better(metric) else "lower"
    notes = [f"{metric}: {direction} is better; mean ± std over seeds, {_percent(confidence)} "
             f"t intervals of the mean; diff = activation - {baseline}"]
    family = int(table["p_value"].notna().sum())
    if family:
        notes.append(f"p: paired t-test on the seeds both sides ran (where at least two), Welch's "
                     f"t-test otherwise; Mann-Whitney U where each side has at least "
                     f"{MIN_RANK_TEST_RUNS} runs (exact for small samples, ties included); Holm "
                     f"correction over the {family} comparison{'s' if family > 1 else ''} against "
                     f"{baseline} in this table, significant when the adjusted p < {alpha:g}")
    elif (table["test"] != "").any():
        notes.append("no p-value: no variation in the differences")
    else:
        notes.append("no comparison could be tested: each side needs at least two finished runs")
    if table["seeds_needed"].notna().any() or table["power"].notna().any():
        level = f"α/k = {alpha:g}/{family} = {power_alpha:.3g}, the level Holm's correction asks " \
                f"of the smallest of the {family} p-values" if family > 1 else f"α = {alpha:g}"
        notes.append(f"power and seeds needed: for {_percent(TARGET_POWER)} power with a t-test at "
                     f"{level}; post-hoc and rough: what the runs could detect if the observed "
                     "effect were real")
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
    return notes + _language_hint(frame, metric)


def _language_hint(frame: pd.DataFrame, metric: str) -> list[str]:
    """Where runs on sequence data are compared by accuracy, how to compare them by what language
    models are judged by (a column that has values here)."""
    present = [c for c in reversed(TRAIN_RUN_LANGUAGE) if c in frame.columns
               and np.isfinite(pd.to_numeric(frame[c], errors="coerce")).any()]
    if not is_accuracy(metric) or not present:
        return []
    return [f"runs on sequence data: --metric {' / '.join([*present, 'final_test_loss'])} "
            "compares them by loss (lower is better)"]


# -- robustness to input noise -------------------------------------------------------------------

NOISE_KEY = "input noise σ"
NOISE_METRIC = "noisy_test_acc"
CLEAN_METRIC = "final_test_acc"  # the accuracy at σ = 0


def compare_noise(frame: pd.DataFrame, *, baseline: str = "relu", by: list[str] | None = None,
                  alpha: float = 0.05, confidence: float = 0.95) -> TrainComparison | None:
    """Test accuracy under each evaluated input noise level (the `noise_<σ>_acc` columns) as a
    comparison with σ as a group key, for the Mish paper's accuracy-against-noise figure. σ = 0 is
    the clean final_test_acc (unless a noise_0_acc column evaluated it), so the curves start there.

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
    if 0.0 not in levels and CLEAN_METRIC in frame.columns:
        levels[0.0] = CLEAN_METRIC
    long = pd.concat([frame.assign(**{NOISE_KEY: sigma, NOISE_METRIC: frame[column]})
                      for sigma, column in sorted(levels.items())], ignore_index=True)
    return compare_train(long, metric=NOISE_METRIC, baseline=baseline,
                         by=[*(by or []), NOISE_KEY], alpha=alpha, confidence=confidence)

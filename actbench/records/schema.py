"""The report columns, in one place: writers write these, readers check them, docs describe them.

Every report row carries `kind` and `schema_version`; bump the version when a column changes
meaning or disappears (adding a column at the end is compatible).
"""

from __future__ import annotations

SCHEMA_VERSION = 1

ENV_COLUMNS = ("host", "cpu", "gpu", "torch_version", "actbench_version")

# what names one micro configuration; threads, a column since the first reports, joined the key when
# one report could hold several thread counts (`--threads 1,2,all`)
MICRO_KEY = ("activation", "impl", "device", "dtype", "shape", "pass", "threads")

MICRO_COLUMNS = (
    "kind", "schema_version", "timestamp_utc", "activation", "impl", "device", "dtype", "shape",
    "pass", "numel", "threads", "timer",
    "status", "message", "flags",
    # timing (seconds per call)
    "samples", "calls_per_sample", "median_s", "mean_s", "min_s", "q1_s", "q3_s", "iqr_pct",
    "ci_low_s", "ci_high_s", "ci_rel_halfwidth", "warmup_s", "sampling_s", "converged",
    # roofline
    "min_bytes", "gbps", "copy_gbps", "roofline_frac", "peak_gbps", "fits_l2",
    # memory
    "saved_bytes", "saved_x_input", "peak_bytes",
    # accuracy against float64
    "max_abs_err", "max_rel_err", "grad_max_abs_err", "grad_max_rel_err", "finite",
    # GPU health and energy
    "sm_clock_mhz", "mem_clock_mhz", "throttled", "throttle_reasons", "energy_j_per_call",
    # a busy machine while sampling (MICRO_ADDED)
    "load_before", "load_after", "other_cpu_pct", "steal_pct",
    *ENV_COLUMNS,
)

# Added to micro reports when busy machines came to be detected; a report written before keeps
# its layout when resumed (micro_columns(legacy=True)).
MICRO_ADDED = ("load_before", "load_after", "other_cpu_pct", "steal_pct")


def micro_columns(legacy: bool = False) -> tuple[str, ...]:
    """A micro report's columns (`legacy`: the layout before MICRO_ADDED)."""
    return tuple(c for c in MICRO_COLUMNS if c not in MICRO_ADDED) if legacy else MICRO_COLUMNS

MICRO_SAMPLE_COLUMNS = (*MICRO_KEY[:-1], "sample", "seconds_per_call", "calls", "threads")
# raw samples written before threads joined the key; read back with the thread count of their row
MICRO_SAMPLE_LEGACY = MICRO_SAMPLE_COLUMNS[:-1]

# -- model reports: one row per whole-model configuration (`actbench model`)
MODEL_KEY = ("model", "activation", "impl", "device", "dtype", "amp", "batch_size", "mode",
             "channels_last", "compile", "input_shape")

MODEL_COLUMNS = (
    "kind", "schema_version", "timestamp_utc", *MODEL_KEY, "threads", "timer",
    "status", "message", "flags",
    # one step (an inference forward, or forward + backward + optimizer step), seconds
    "samples", "calls_per_sample", "median_s", "mean_s", "min_s", "q1_s", "q3_s", "iqr_pct",
    "ci_low_s", "ci_high_s", "ci_rel_halfwidth", "warmup_s", "sampling_s", "converged",
    "samples_per_s", "samples_per_s_ci_low", "samples_per_s_ci_high",
    # the activation's share of the step: 1 - t(identity swapped in) / t(this row)
    "act_share", "act_share_ci_low", "act_share_ci_high",
    # what was swapped in, and memory
    "replaced", "left_alone", "params", "act_saved_bytes", "step_saved_bytes", "peak_bytes",
    "peak_kind",
    # a busy machine while sampling
    "load_before", "load_after", "other_cpu_pct", "steal_pct",
    *ENV_COLUMNS,
)

COLUMNS = {"micro": MICRO_COLUMNS, "model": MODEL_COLUMNS}


# -- train reports: one row per run (kind "train") and per run and epoch (kind "train_epoch");
# every sweep key is a column of its own (dotted name, e.g. "model.depth"), after the run keys.
TRAIN_RUN_KEY = ("suite", "run_index", "config_hash", "activation", "impl", "seed")

TRAIN_RUN_RESULT = (
    "dataset", "model", "optimizer", "epochs", "batch_size", "device", "amp",
    "status", "message", "epochs_done", "final_test_acc", "final_test_loss", "final_train_loss",
    "final_train_acc", "best_test_acc", "best_epoch", "params", "total_s", "mean_epoch_s",
    "samples_per_s", "peak_bytes", "peak_kind",
)

# Added to the runs file when runs moved into worker processes: the warm-up measured apart from
# the (steady-state) epoch times, the torch threads a run had, how many tries it took. A report
# written before keeps its columns when resumed (train_columns(..., legacy=True)).
TRAIN_RUN_ADDED = ("warmup_s", "threads", "attempts")

# Added to the runs file when language runs became first-class: perplexity exp(final_test_loss) of
# a run on sequence data, bits per byte final_test_loss / ln 2 of a run on byte-level text (empty
# for classification runs). A report written before keeps its columns when resumed.
TRAIN_RUN_LANGUAGE = ("final_test_perplexity", "final_test_bits_per_byte")

# The runs file's layouts, oldest first: the columns each has after TRAIN_RUN_RESULT (then the
# noise and environment columns). The last is today's; a report in an earlier one resumes in it.
TRAIN_RUN_LAYOUTS = ((), TRAIN_RUN_ADDED, (*TRAIN_RUN_ADDED, *TRAIN_RUN_LANGUAGE))

TRAIN_EPOCH_RESULT = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_s",
                      "samples_per_s")


def noise_columns(levels: list[float]) -> list[str]:
    """Column names for the noise evaluation: noise_<sigma>_acc / noise_<sigma>_loss."""
    columns: list[str] = []
    for sigma in levels:
        columns += [f"noise_{sigma:g}_acc", f"noise_{sigma:g}_loss"]
    return columns


def train_columns(sweep_keys: list[str], noise_columns: list[str], legacy: bool = False,
                  layout: int = -1) -> tuple[str, ...]:
    """A suite's runs file: run keys, its sweep keys, results, its noise levels, environment
    (`layout`: an index into TRAIN_RUN_LAYOUTS, today's by default; `legacy`: the first, before
    TRAIN_RUN_ADDED)."""
    added = TRAIN_RUN_LAYOUTS[0 if legacy else layout]
    return ("kind", "schema_version", "timestamp_utc", *TRAIN_RUN_KEY, *sweep_keys,
            *TRAIN_RUN_RESULT, *added, *noise_columns, *ENV_COLUMNS)


def earlier_train_columns(sweep_keys: list[str], noise_columns: list[str]) -> list[tuple[str, ...]]:
    """The runs file's earlier layouts for this suite, oldest first (each resumes as it is)."""
    return [train_columns(sweep_keys, noise_columns, layout=index)
            for index in range(len(TRAIN_RUN_LAYOUTS) - 1)]


def train_epoch_columns(sweep_keys: list[str]) -> tuple[str, ...]:
    """A suite's epochs file: run keys, its sweep keys, one epoch's results, environment."""
    return ("kind", "schema_version", "timestamp_utc", *TRAIN_RUN_KEY, *sweep_keys,
            *TRAIN_EPOCH_RESULT, *ENV_COLUMNS)

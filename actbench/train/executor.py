"""Run a suite: every pending run trained in order, each row on disk as soon as it exists.

Resuming is by config hash: a run whose hash is in the runs file is done and skipped. Epoch rows
of a run that was killed before its run row was written are dropped before resuming, so the
re-run never duplicates them.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import env
from ..errors import ActbenchError, describe_error
from ..progress import ItemAdvanced, ItemFinished, ItemStarted, OnProgress, PlanStarted, ignore
from ..records.paths import check_writable, epochs_path, stamped_report_path
from ..records.rows import new_row
from ..records.schema import TRAIN_RUN_KEY, noise_columns, train_columns, train_epoch_columns
from ..records.writer import (ReportWriter, check_header, filter_rows, read_header, read_rows,
                              write_sidecar)
from .config import RunSpec
from .loop import EpochResult, RunResult, result_columns, train_run
from .suite import Suite


def default_report_path(suite: Suite, folder: Path = Path("reports")) -> Path:
    return stamped_report_path("train", suite.name, folder=folder)


@dataclass
class SuiteRun:
    suite: Suite
    out: Path
    runs: list[RunSpec]
    done_hashes: set[str]
    sweep_keys: list[str]
    noise_columns: list[str]
    results: list[tuple[RunSpec, RunResult]] = field(default_factory=list)

    @property
    def pending(self) -> list[RunSpec]:
        return [run for run in self.runs if run.config_hash not in self.done_hashes]

    @property
    def epochs_out(self) -> Path:
        return epochs_path(self.out)


def prepare(suite: Suite, out: Path | None = None, resume: bool = False) -> SuiteRun:
    """Work out the report paths and what is left to run; nothing is trained or written yet."""
    if resume and (out is None or not Path(out).exists()):
        raise ActbenchError(f"cannot resume {out}: no such report (to start a new one, use --out)")
    out = Path(out) if out is not None else default_report_path(suite)
    check_writable(out)
    check_writable(epochs_path(out))
    runs = suite.runs()  # resolves every device: one that is not there fails here
    sweep_keys = list(suite.sweep)
    levels = sorted({float(s) for run in runs for s in run.config.eval.noise})
    done: set[str] = set()
    if out.exists() and out.stat().st_size > 0:
        expected = list(train_columns(sweep_keys, noise_columns(levels)))
        if read_header(out) != expected:
            raise ActbenchError(f"{out} was written by a different suite or version (its columns "
                                "differ); resume with the suite and flags that wrote it, or choose "
                                "a new --out")
        # ok and diverged runs are done (a diverged run diverges again); failed ones run again
        done = {row["config_hash"] for row in read_rows(out) if row.get("status") in FINISHED}
    check_header(epochs_path(out), train_epoch_columns(sweep_keys))
    return SuiteRun(suite, out, runs, done, sweep_keys, noise_columns(levels))


FINISHED = ("ok", "diverged")
# The data set is generated / subsampled with one fixed seed for every run: runs of one suite
# see the same data, and seeds vary initialisation, batch order and dropout only. 42 is
# MNIST-1D's canonical seed (the data set its published results use).
DATA_SEED = 42


class DataCache:
    """The last data set loaded (runs are ordered so consecutive ones share it). A load that
    failed is remembered too: the runs that need it fail at once with the same message instead of
    retrying a download for every one."""

    def __init__(self):
        self._key: str | None = None
        self._splits = None
        self._error: Exception | None = None

    def get(self, run: RunSpec, device):
        from . import data

        config = run.config.data.to_dict()
        key = json.dumps([config, str(device)], sort_keys=True, default=str)
        if key != self._key:
            self._key, self._splits, self._error = key, None, None  # free the previous one first
            name = config.pop("name")
            root, download = config.pop("root", None), config.pop("download", False)
            try:
                splits = data.load_dataset(name, root=root, download=download, seed=DATA_SEED,
                                           **config)
                if device.type == "cuda":  # the whole set on the GPU, augmented there
                    splits = splits.to(device)
            except Exception as error:
                self._error = error
                raise
            self._splits = splits
        if self._error is not None:
            raise self._error
        return self._splits


def _run_key_columns(suite_run: SuiteRun, run: RunSpec) -> dict[str, Any]:
    return {"suite": suite_run.suite.name, "run_index": run.index, "config_hash": run.config_hash,
            "activation": run.activation.label, "impl": run.activation.impl or "", "seed": run.seed,
            **{key: _sweep_cell(run.sweep.get(key)) for key in suite_run.sweep_keys}}


def _sweep_cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def execute(suite_run: SuiteRun, on_progress: OnProgress = ignore) -> None:
    """Train every pending run, each row written as soon as it exists; progress goes to
    `on_progress` as the typed events of actbench.progress (one item per run, its batches as
    steps, a finished line per run)."""
    environment = env.capture()
    key_env = env.key_columns(environment)
    write_sidecar(suite_run.out, {"kind": "train", "suite": suite_run.suite.resolved(),
                                  "environment": environment},
                  resumed=suite_run.out.exists() and suite_run.out.stat().st_size > 0)
    # rows of the runs about to run (failed earlier, or killed mid-way) go; other rows stay
    pending = suite_run.pending
    hashes = {run.config_hash for run in pending}
    filter_rows(suite_run.out, lambda row: row.get("config_hash") not in hashes)
    filter_rows(suite_run.epochs_out, lambda row: row.get("config_hash") not in hashes)
    run_columns = train_columns(suite_run.sweep_keys, suite_run.noise_columns)
    epoch_columns = train_epoch_columns(suite_run.sweep_keys)
    cache = DataCache()
    on_progress(PlanStarted(total=len(pending), unit="runs"))
    with ReportWriter(suite_run.out, run_columns) as runs_writer, \
            ReportWriter(suite_run.epochs_out, epoch_columns) as epochs_writer:
        for run in pending:
            label = f"{run.activation.label} seed {run.seed}"
            on_progress(ItemStarted(label))
            keys = _run_key_columns(suite_run, run)

            def on_epoch(record: EpochResult, keys=keys) -> None:
                epochs_writer.write(new_row("train_epoch", epoch_columns, keys, vars(record), key_env))

            def on_batch(epoch: int, step: int, steps: int, label=label, epochs=run.config.train.epochs):
                on_progress(ItemAdvanced(f"{label} epoch {epoch}", (epoch - 1) * steps + step,
                                         epochs * steps))

            result = _train_one(run, cache, on_epoch, on_batch)
            runs_writer.write(new_row("train", run_columns, keys, result_columns(result), key_env,
                                      **_run_facts(run)))
            suite_run.done_hashes.add(run.config_hash)
            suite_run.results.append((run, result))
            on_progress(ItemFinished(label, result.status, run_line(run, len(suite_run.runs), result)))


def _train_one(run: RunSpec, cache: DataCache, on_epoch, on_batch) -> RunResult:
    """One run's result; a data set that does not load fails the run, not the suite."""
    import torch

    try:
        splits = cache.get(run, torch.device(run.device))
    except Exception as error:  # noqa: BLE001 - recorded as a failed run
        return RunResult(status="failed", message=describe_error(error))
    return train_run(run, splits, on_epoch, on_batch)


def _run_facts(run: RunSpec) -> dict[str, Any]:
    """The run row's columns that describe the set-up (beside the key columns and results)."""
    cfg = run.config
    return {"dataset": cfg.data.name, "model": cfg.model.name, "optimizer": cfg.optim.name,
            "epochs": cfg.train.epochs, "batch_size": cfg.train.batch_size, "device": run.device,
            "amp": cfg.train.amp}


def run_line(run: RunSpec, total: int, result: RunResult) -> str:
    """The line a person reads about a finished run."""
    final = result.final
    acc = f"{100 * final.test_acc:.2f} %" if final else "—"
    sweep = " ".join(f"{k}={v}" for k, v in run.sweep.items())
    line = (f"run {run.index + 1}/{total} {run.activation.label} seed {run.seed} {sweep} "
            f"{result.status}: test acc {acc}, {result.total_s:.1f} s")
    if result.message:
        line += f" ({result.message[:80]})"
    return line


def resume_command(suite_path: str, overrides: Iterable[str] | None, seeds: str | None,
                   activations: Iterable[str] | None, device: str | None, out: Path) -> str:
    """The command that resumes a run: the same suite and flags, --resume on its report."""
    words = ["actbench", "train", suite_path]
    for item in overrides or []:
        words += ["--set", item]
    if seeds:
        words += ["--seeds", seeds]
    for item in activations or []:
        words += ["--act", item]
    if device:
        words += ["--device", device]
    return shlex.join([*words, "--resume", str(out)])


def run_rows(suite_run: SuiteRun) -> list[dict[str, str]]:
    """The report's rows of this suite's runs (earlier invocations' included, others' not)."""
    if not suite_run.out.exists():
        return []
    hashes = {run.config_hash for run in suite_run.runs}
    return [row for row in read_rows(suite_run.out) if row.get("config_hash") in hashes]


__all__ = ["DataCache", "SuiteRun", "prepare", "execute", "run_rows", "run_line", "resume_command"]

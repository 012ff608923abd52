"""Run a suite: every pending run handed to an executor, each row on disk as soon as it exists.

The driver is the one writer. Runs execute where the executor puts them (in this process, in
worker processes of their own, as Ray tasks); their messages come back here in any order and
become rows, appended and fsynced as they arrive, and progress events.

Resuming is by config hash: a run whose hash is in the runs file is done and skipped, whichever
executor wrote it. Epoch rows of a run that was killed before its run row was written are dropped
before resuming, so the re-run never duplicates them.
"""

from __future__ import annotations

import json
import shlex
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import env
from ..errors import ActbenchError
from ..progress import (ItemAdvanced, ItemFinished, ItemStarted, Notice, OnProgress, PlanStarted,
                        ignore)
from ..records.lock import ReportLock
from ..records.paths import check_writable, epochs_path, stamped_report_path
from ..records.rows import new_row
from ..records.schema import (earlier_train_columns, noise_columns, train_columns,
                               train_epoch_columns)
from ..records.writer import (ReportWriter, check_header, filter_rows, read_header, read_rows,
                              resumable_columns, update_sidecar, write_sidecar)
from . import resources
from .config import RunSpec
from .loop import RunResult, result_columns
from .messages import BatchFinished, EpochFinished, Message, RunBegan, RunFinished, RunLost
from .suite import Suite
from .worker import DataCache  # noqa: F401  (the cache runs in one process share)

EXECUTORS = ("local", "inline", "ray")
SHOWN_MESSAGE = 600  # characters of a failed run's message on screen; the report has it whole
CUT = " … (the whole message is in the report)"


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
    run_columns: tuple[str, ...] = ()  # those of the report being resumed, else today's
    results: list[tuple[RunSpec, RunResult]] = field(default_factory=list)

    @property
    def pending(self) -> list[RunSpec]:
        return [run for run in self.runs if run.config_hash not in self.done_hashes]

    @property
    def epochs_out(self) -> Path:
        return epochs_path(self.out)


def prepare(suite: Suite, out: Path | None = None, resume: bool = False,
            resolve_devices: bool = True) -> SuiteRun:
    """Work out the report paths and what is left to run; nothing is trained or written yet.
    Devices are resolved here unless the runs execute elsewhere (`resolve_devices=False`)."""
    if resume and (out is None or not Path(out).exists()):
        raise ActbenchError(f"cannot resume {out}: no such report (to start a new one, use --out)")
    out = Path(out) if out is not None else default_report_path(suite)
    check_writable(out)
    check_writable(epochs_path(out))
    # resolves every device: one that is not there fails here
    runs = suite.runs() if resolve_devices else suite.runs(resolve=str)
    sweep_keys = list(suite.sweep)
    levels = sorted({float(s) for run in runs for s in run.config.eval.noise})
    # a report written before the newer columns is resumed in its own layout
    columns = resumable_columns(out, train_columns(sweep_keys, noise_columns(levels)),
                                *earlier_train_columns(sweep_keys, noise_columns(levels)))
    done: set[str] = set()
    if out.exists() and out.stat().st_size > 0:
        if tuple(read_header(out)) != columns:
            raise ActbenchError(f"{out} was written by a different suite or version (its columns "
                                "differ); resume with the suite and flags that wrote it, or choose "
                                "a new --out")
        # ok and diverged runs are done (a diverged run diverges again); failed ones run again
        done = {row["config_hash"] for row in read_rows(out) if row.get("status") in FINISHED}
    check_header(epochs_path(out), train_epoch_columns(sweep_keys))
    return SuiteRun(suite, out, runs, done, sweep_keys, noise_columns(levels), columns)


FINISHED = ("ok", "diverged")


def _run_key_columns(suite_run: SuiteRun, run: RunSpec) -> dict[str, Any]:
    return {"suite": suite_run.suite.name, "run_index": run.index, "config_hash": run.config_hash,
            "activation": run.activation.label, "impl": run.activation.impl or "", "seed": run.seed,
            **{key: _sweep_cell(run.sweep.get(key)) for key in suite_run.sweep_keys}}


def _sweep_cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


@dataclass(frozen=True)
class Execution:
    """How a suite's runs execute: the executor (local worker processes, inline in this process,
    or Ray tasks), runs at once (None: auto), torch threads per run (None: the suite's
    train.threads, else the cores shared out), tries after a lost worker, Ray's address (None:
    a local Ray for this command) and GPUs per run on Ray (None: the suite's, else 1 for CUDA)."""

    executor: str = "local"
    workers: int | None = None
    threads: int | None = None
    retries: int = 0
    address: str | None = None
    gpus_per_run: float | None = None

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ActbenchError(f"unknown executor '{self.executor}'; expected one of "
                                f"{', '.join(EXECUTORS)}")
        if self.executor == "inline" and (self.workers or 1) > 1:
            raise ActbenchError("--executor inline runs one run at a time in this process; for "
                                "--workers above 1 use --executor local or ray")
        if self.retries < 0:
            raise ActbenchError(f"--retries must be >= 0, got {self.retries}")
        if self.address and self.executor != "ray":
            raise ActbenchError("--address names a Ray cluster; it needs --executor ray")


def execute(suite_run: SuiteRun, on_progress: OnProgress = ignore,
            execution: Execution = Execution(),
            observe: Callable[[Message], None] | None = None) -> None:
    """Train every pending run as `execution` says, each row written as soon as it exists;
    progress goes to `on_progress` as the typed events of actbench.progress (one item per run,
    its batches as steps, a finished line per run). `observe` hears every worker message once
    it is recorded (for tools and tests)."""
    with ReportLock(suite_run.out):  # one writer: a second command on this report is refused
        _execute_locked(suite_run, on_progress, execution, observe)


def _execute_locked(suite_run: SuiteRun, on_progress: OnProgress, execution: Execution,
                    observe) -> None:
    if suite_run.out.exists() and suite_run.out.stat().st_size > 0:  # as it is now, locked
        suite_run.done_hashes |= {row["config_hash"] for row in read_rows(suite_run.out)
                                  if row.get("status") in FINISHED}
    environment = env.capture()
    write_sidecar(suite_run.out, {"kind": "train", "suite": suite_run.suite.resolved(),
                                  "environment": environment},
                  resumed=suite_run.out.exists() and suite_run.out.stat().st_size > 0)
    # rows of the runs about to run (failed earlier, or killed mid-way) go; other rows stay
    pending = suite_run.pending
    hashes = {run.config_hash for run in pending}
    filter_rows(suite_run.out, lambda row: row.get("config_hash") not in hashes)
    filter_rows(suite_run.epochs_out, lambda row: row.get("config_hash") not in hashes)
    if not pending:
        return
    if execution.executor == "ray":
        from ..cluster import ray_session

        with ray_session(execution.address, num_cpus=resources.Machine.here().cores) as ray:
            _execute(suite_run, pending, environment, on_progress, execution, observe, ray)
    else:
        _execute(suite_run, pending, environment, on_progress, execution, observe, None)


def _execute(suite_run: SuiteRun, pending: list[RunSpec], environment: dict, on_progress,
             execution: Execution, observe, ray) -> None:
    from .scheduling import schedule

    machine = _machine(ray)
    device = pending[0].device if pending else "cpu"
    workers = resources.choose_workers(execution.workers, _threads_asked(suite_run, execution),
                                       device, machine, max(len(pending), 1))
    if execution.executor == "inline":
        workers = 1
    threads = resources.choose_threads(_threads_asked(suite_run, execution), workers, machine)
    placements = resources.placements(workers, threads, device, machine)
    record = _Recorder(suite_run, env.key_columns(environment), on_progress, {
        "executor": execution.executor, "workers": workers, "threads": threads,
        "retries": execution.retries, "address": execution.address, "hosts": {}})
    on_progress(Notice(resources.describe(workers, threads, execution.executor)))
    on_progress(PlanStarted(total=len(pending), unit="runs"))
    with record:
        gpus = execution.gpus_per_run or suite_run.suite.config.train.gpus_per_run
        schedule(_pool_factory(execution, placements, device, ray, gpus), pending,
                 execution.retries, _observed(record, observe))


def _observed(record: _Recorder, observe) -> Callable[[Message], None]:
    if observe is None:
        return record
    return lambda message: (record(message), observe(message))


def _threads_asked(suite_run: SuiteRun, execution: Execution) -> int | None:
    return execution.threads or suite_run.suite.config.train.threads


def _machine(ray) -> resources.Machine:
    """This machine, or the Ray cluster seen as one."""
    here = resources.Machine.here()
    if ray is None:
        return here
    from ..cluster import cluster_cpus, cluster_gpus

    return resources.Machine(cores=max(int(cluster_cpus(ray)), 1), gpus=int(cluster_gpus(ray)),
                             free_bytes=None)


def _pool_factory(execution: Execution, placements: list[resources.Placement], device: str, ray,
                  gpus: float | None):
    if execution.executor == "inline":
        from .scheduling import InlinePool

        return lambda deliver: InlinePool(placements[0], deliver)
    if execution.executor == "local":
        from .local_pool import LocalPool

        return lambda deliver: LocalPool(placements, deliver)
    from ..cluster import cluster_gpus
    from .ray_pool import RayPool

    gpus = resources.gpus_per_run(gpus, device, cluster_gpus(ray))
    return lambda deliver: RayPool(ray, placements, gpus, deliver)


class _Recorder:
    """Messages in, rows and progress out: the driver's half of every executor."""

    def __init__(self, suite_run: SuiteRun, driver_environment: dict[str, Any], on_progress,
                 execution: dict[str, Any]):
        self.suite_run, self.driver_environment, self.on_progress = suite_run, driver_environment, on_progress
        self.execution = execution  # the sidecar's record of how the runs executed, hosts included
        self.runs = {run.config_hash: run for run in suite_run.runs}
        self.began: dict[str, RunBegan] = {}
        self.epoch_columns = train_epoch_columns(suite_run.sweep_keys)

    def __enter__(self) -> _Recorder:
        update_sidecar(self.suite_run.out, {"execution": self.execution})
        self.runs_writer = ReportWriter(self.suite_run.out, self.suite_run.run_columns)
        self.epochs_writer = ReportWriter(self.suite_run.epochs_out, self.epoch_columns)
        return self

    def __exit__(self, *exc) -> None:
        self.runs_writer.close()
        self.epochs_writer.close()

    def __call__(self, message: Message) -> None:
        run = self.runs[message.config_hash]
        label = run_label(run)
        if isinstance(message, RunBegan):
            self.began[run.config_hash] = message
            self.on_progress(ItemStarted(label))
        elif isinstance(message, EpochFinished):
            self.epochs_writer.write(new_row("train_epoch", self.epoch_columns, self._keys(run),
                                             vars(message.record), self._environment(run)))
        elif isinstance(message, BatchFinished):
            steps = message.steps * run.config.train.epochs
            self.on_progress(ItemAdvanced(f"{label} epoch {message.epoch}",
                                          (message.epoch - 1) * message.steps + message.step, steps,
                                          item=label))
        elif isinstance(message, RunLost):
            self.on_progress(Notice(f"{label}: {message.reason}"))
        elif isinstance(message, RunFinished):
            self._finished(run, label, message)

    def _finished(self, run: RunSpec, label: str, message: RunFinished) -> None:
        began = self.began.get(run.config_hash)
        columns = self.suite_run.run_columns
        values = {**result_columns(message.result), **_run_facts(run),
                  "threads": began.threads if began else None, "attempts": message.attempts}
        if began is not None:
            values["device"] = began.device
        self.runs_writer.write(new_row("train", columns, self._keys(run), self._environment(run),
                                       {k: v for k, v in values.items() if k in columns}))
        self.suite_run.done_hashes.add(run.config_hash)
        self.suite_run.results.append((run, message.result))
        self.execution["hosts"][run.config_hash] = self._environment(run).get("host", "")
        update_sidecar(self.suite_run.out, {"execution": self.execution})
        self.on_progress(ItemFinished(label, message.result.status,
                                      run_line(run, len(self.suite_run.runs), message.result)))

    def _keys(self, run: RunSpec) -> dict[str, Any]:
        return _run_key_columns(self.suite_run, run)

    def _environment(self, run: RunSpec) -> dict[str, Any]:
        began = self.began.get(run.config_hash)
        return began.environment if began is not None else self.driver_environment


def run_label(run: RunSpec) -> str:
    """A run's name on screen: activation, seed and sweep point (unique within a suite)."""
    sweep = " ".join(f"{k}={v}" for k, v in run.sweep.items())
    return f"{run.activation.label} seed {run.seed} {sweep}".strip()


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
            f"{result.status}: test acc {acc}{_language_text(result)}, {result.total_s:.1f} s")
    if result.message:  # whole: a cut message loses what to do (where to put a file, ...)
        line += f" ({textwrap.shorten(result.message, SHOWN_MESSAGE, placeholder=CUT)})"
    return line


def _language_text(result: RunResult) -> str:
    """', loss 1.23, perplexity 3.42' (and bits per byte for byte-level text) for a run on
    sequence data, where the loss is what one reads; '' otherwise."""
    columns = result_columns(result)
    if columns["final_test_perplexity"] is None:
        return ""
    text = (f", loss {columns['final_test_loss']:.4g}, perplexity "
            f"{columns['final_test_perplexity']:.4g}")
    if columns["final_test_bits_per_byte"] is not None:
        text += f", {columns['final_test_bits_per_byte']:.4g} bits/byte"
    return text


def resume_command(suite_path: str, overrides: Iterable[str] | None, seeds: str | None,
                   activations: Iterable[str] | None, device: str | None, out: Path,
                   execution: Iterable[str] = ()) -> str:
    """The command that resumes a run: the same suite and flags (`execution`: the executor's
    flags as typed), --resume on its report."""
    words = ["actbench", "train", suite_path]
    for item in overrides or []:
        words += ["--set", item]
    if seeds:
        words += ["--seeds", seeds]
    for item in activations or []:
        words += ["--act", item]
    if device:
        words += ["--device", device]
    return shlex.join([*words, *execution, "--resume", str(out)])


def run_rows(suite_run: SuiteRun) -> list[dict[str, str]]:
    """The report's rows of this suite's runs (earlier invocations' included, others' not)."""
    if not suite_run.out.exists():
        return []
    hashes = {run.config_hash for run in suite_run.runs}
    return [row for row in read_rows(suite_run.out) if row.get("config_hash") in hashes]


__all__ = ["DataCache", "EXECUTORS", "Execution", "SuiteRun", "prepare", "execute", "run_rows",
           "run_line", "run_label", "resume_command"]

"""One `actbench micro` run: options, plan, report files, resume, and the runner, wired together.

`open_run(MicroOptions(...))` validates everything (plan, settings, output paths) before any
measurement; `execute` measures what is pending. The report is opened before the first
measurement and every finished configuration is appended at once; pointing `out` at an existing
report skips the configurations it already holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import env
from ..errors import ActbenchError
from ..progress import OnProgress
from ..records.lock import ReportLock
from ..records.paths import check_writable, stamped_report_path
from ..records.schema import (MICRO_COLUMNS, MICRO_KEY, MICRO_SAMPLE_COLUMNS, MICRO_SAMPLE_LEGACY,
                              micro_columns)
from ..records.writer import (ReportWriter, check_header, completed_keys, filter_rows,
                              resumable_columns, write_sidecar)
from .device import device_for
from .plan import Config, Plan, make_plan
from .runner import Runner, Settings, keep_freed_memory
from .stopping import StoppingRule


@dataclass(frozen=True)
class MicroOptions:
    """What `actbench micro` was asked, as its options spell it (lists may hold comma lists)."""

    activations: Sequence[str] | None = None
    impl: str | None = None
    devices: Sequence[str] | None = None
    dtypes: Sequence[str] | None = None
    sizes: Sequence[str] | None = None
    shapes: Sequence[str] | None = None
    passes: Sequence[str] | None = None
    baseline: str | None = "relu"
    target_rsd: float = 0.02
    min_time: float = 0.0
    max_time: float = 0.5
    cold: bool | None = None  # None: the device's default
    threads: Sequence[str] | None = None  # counts or 'all', comma lists; None: torch's default
    energy: bool = True
    out: Path | None = None
    samples: Path | None = None


@dataclass
class MicroRun:
    plan: Plan
    settings: Settings
    out: Path
    samples_out: Path | None = None
    skipped: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pending(self) -> list[Config]:
        done = completed_keys(self.out, MICRO_KEY)
        return [config for config in self.plan.configs if config.key not in done]


def default_report_path(devices: list[str], folder: Path = Path("reports")) -> Path:
    device = "+".join(d.replace(":", "") for d in devices)
    return stamped_report_path("micro", env.capture_host(), device, folder=folder)


def open_run(options: MicroOptions) -> MicroRun:
    """Plan, settings and output paths from the options, every mistake raised before measuring."""
    return prepare(plan_for(options), settings_for(options), options.out, options.samples)


def plan_for(options: MicroOptions, resolve=None) -> Plan:
    """The configurations the options ask for (devices resolved by `resolve`, default here)."""
    return make_plan(options.activations, impl=options.impl, devices=options.devices,
                     dtypes=options.dtypes, sizes=options.sizes, shapes=options.shapes,
                     passes=options.passes, baseline=options.baseline, resolve=resolve,
                     threads=options.threads)


def settings_for(options: MicroOptions) -> Settings:
    for option, seconds in (("--min-time", options.min_time), ("--max-time", options.max_time)):
        if not math.isfinite(seconds):  # inf would sample one configuration for ever
            raise ActbenchError(f"{option} {seconds} is not a finite number of seconds")
    stopping = StoppingRule(target_rsd=options.target_rsd, min_time=options.min_time,
                            max_time=max(options.max_time, options.min_time))
    return Settings(stopping=stopping, cold=options.cold, energy=options.energy)


def report_columns(out: Path) -> tuple[str, ...]:
    """The micro columns, or the layout of a report written before MICRO_ADDED (resumed as is)."""
    return resumable_columns(out, MICRO_COLUMNS, micro_columns(legacy=True))


def sample_columns(out: Path) -> tuple[str, ...]:
    """The raw-sample columns, or the layout of a samples file written before threads joined."""
    return resumable_columns(out, MICRO_SAMPLE_COLUMNS, MICRO_SAMPLE_LEGACY)


def prepare(plan: Plan, settings: Settings, out: Path | None = None,
            samples_out: Path | None = None) -> MicroRun:
    """Check the output paths (before any measurement) and work out what is left to do."""
    out = Path(out) if out is not None else default_report_path(plan.devices)
    check_writable(out)
    check_header(out, report_columns(out))
    if samples_out is not None and Path(samples_out).resolve() == out.resolve():
        raise ActbenchError(f"--samples and --out are the same file ({out}); give the raw samples "
                            "a file of their own")
    if samples_out is not None:
        check_writable(Path(samples_out))
        check_header(Path(samples_out), sample_columns(Path(samples_out)))
    run = MicroRun(plan, settings, out, Path(samples_out) if samples_out else None)
    run.skipped = len(plan.configs) - len(run.pending)
    return run


def execute(run: MicroRun, on_progress: OnProgress | None = None) -> None:
    """Measure what is pending; rows reach the report (and `run.rows`) as each one finishes.

    `on_progress` hears PlanStarted (the pending configurations), then ItemStarted and
    ItemFinished (with the row's status) per configuration. A second command on the same report
    is refused while this one writes it."""
    with ReportLock(run.out):
        _execute_locked(run, on_progress)


def _execute_locked(run: MicroRun, on_progress: OnProgress | None) -> None:
    pending = run.pending
    if pending and pending[0].threads:
        torch.set_num_threads(pending[0].threads)  # before the environment records it
    on_heap = any(device_for(c.device).on_process_heap for c in pending)
    allocator = keep_freed_memory() if on_heap else "n/a"
    environment = env.capture()
    with ReportWriter(run.out, report_columns(run.out)) as writer:  # checks an existing report's header
        write_sidecar(run.out, {"kind": "micro", "environment": environment,
                             "settings": _settings_dict(run.settings), "cpu_allocator": allocator,
                             "threads": sorted({c.threads for c in run.plan.configs if c.threads}),
                             "configurations": [dict(zip(MICRO_KEY, c.key))
                                                for c in run.plan.configs]},
                      resumed=run.out.exists() and run.out.stat().st_size > 0)
        key_columns = env.key_columns(environment)
        samples_writer = None
        if run.samples_out:
            # samples of a configuration without a row (killed in between) would be duplicated
            done = completed_keys(run.out, MICRO_KEY)
            filter_rows(run.samples_out, _sample_of(done, sample_columns(run.samples_out)))
            samples_writer = ReportWriter(run.samples_out, sample_columns(run.samples_out))

        def emit(row: dict[str, Any]) -> None:
            writer.write(row)
            run.rows.append(row)

        def emit_samples(config: Config, samples: list[float], calls: int) -> None:
            samples_writer.write_many({**dict(zip(MICRO_KEY, config.key)), "sample": index,
                                       "seconds_per_call": seconds, "calls": calls}
                                      for index, seconds in enumerate(samples))

        try:
            Runner(run.settings, key_columns, emit, emit_samples if samples_writer else None,
                   on_progress).run(pending)
        finally:
            if samples_writer is not None:
                samples_writer.close()


def _settings_dict(settings: Settings) -> dict[str, Any]:
    return {"target_rsd": settings.stopping.target_rsd, "min_samples": settings.stopping.min_samples,
            "min_time_s": settings.stopping.min_time, "max_time_s": settings.stopping.max_time,
            "warmup_min_s": settings.warmup.min_time, "warmup_max_s": settings.warmup.max_time,
            "cold": settings.cold, "energy": settings.energy}


def _sample_of(done: set[tuple], columns: Sequence[str]):
    """Whether a raw-sample row belongs to a configuration the report holds (a samples file
    without the threads column is matched on the rest of the key)."""
    width = len(MICRO_KEY) if "threads" in columns else len(MICRO_KEY) - 1
    keys = {key[:width] for key in done}
    return lambda row: tuple(row.get(k, "") for k in MICRO_KEY[:width]) in keys

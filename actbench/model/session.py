"""One `actbench model` run: options, plan, report, resume and the runner, wired together as
micro's session is: everything is checked before the first model is built, rows reach the report
as each group finishes, and pointing `out` at an existing report skips what it holds."""

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
from ..records.schema import MODEL_COLUMNS, MODEL_KEY
from ..records.writer import ReportWriter, check_header, completed_keys, write_sidecar
from ..micro.stopping import StoppingRule
from .plan import REFERENCE, ModelConfig, ModelPlan, make_model_plan
from .runner import ModelRunner
from .source import ModelSource, model_source


@dataclass(frozen=True)
class ModelOptions:
    """What `actbench model` was asked, as its options spell it (lists may hold comma lists)."""

    model: str
    activations: Sequence[str] | None = None
    impl: str | None = None
    devices: Sequence[str] | None = None
    dtypes: Sequence[str] | None = None
    amp: bool = False
    batch_sizes: Sequence[str] | None = None
    modes: Sequence[str] | None = None
    channels_last: bool = False
    compile: bool = False
    input_shape: str | None = None
    baseline: str | None = "relu"
    target_rsd: float = 0.02
    min_time: float = 0.0
    max_time: float = 2.0
    threads: int | None = None
    seed: int = 0
    out: Path | None = None


@dataclass
class ModelRun:
    source: ModelSource
    plan: ModelPlan
    stopping: StoppingRule
    out: Path
    threads: int | None = None
    seed: int = 0
    skipped: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pending(self) -> list[ModelConfig]:
        done = completed_keys(self.out, MODEL_KEY)
        return [config for config in self.plan.configs if config.key not in done]

    def to_measure(self) -> list[ModelConfig]:
        """The pending configurations, and the identity model of their groups even where the
        report holds it already: a share is only measured side by side."""
        pending = {config.key for config in self.pending}
        wanted = {(c.model, c.setup) for c in self.plan.configs if c.key in pending}
        return [c for c in self.plan.configs if c.key in pending
                or ((c.model, c.setup) in wanted and c.activation.spec.name == REFERENCE)]


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """`3,224,224` (or `3x224x224`): one sample's shape, without the batch."""
    if text is None:
        return None
    parts = text.strip().lower().replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)  # an empty part ("3,,224") is a typo, not a rank less
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape) or math.prod(shape) > 1 << 28:
        raise ActbenchError(f"--input-shape '{text}' is not a shape; expected one sample's "
                            "dimensions without the batch, such as 3,224,224")
    return shape


def open_run(options: ModelOptions) -> ModelRun:
    """Source, plan, stopping rule and report path, every mistake raised before measuring."""
    source = model_source(options.model, parse_input_shape(options.input_shape))
    plan = make_model_plan(source.text, options.activations, options.impl, options.devices,
                           options.dtypes, options.amp, options.batch_sizes, options.modes,
                           options.channels_last, options.compile, options.baseline,
                           sample_shape=source.sample_shape, takes_gated=source.takes_gated)
    for option, seconds in (("--min-time", options.min_time), ("--max-time", options.max_time)):
        if not math.isfinite(seconds):
            raise ActbenchError(f"{option} {seconds} is not a finite number of seconds")
    stopping = StoppingRule(target_rsd=options.target_rsd, min_time=options.min_time,
                            max_time=max(options.max_time, options.min_time))
    out = Path(options.out) if options.out is not None else default_report_path(source, plan)
    check_writable(out)
    check_header(out, MODEL_COLUMNS)
    run = ModelRun(source, plan, stopping, out, options.threads, options.seed)
    run.skipped = len(plan.configs) - len(run.pending)
    return run


def default_report_path(source: ModelSource, plan: ModelPlan, folder: Path = Path("reports")) -> Path:
    device = "+".join(d.replace(":", "") for d in plan.devices)
    name = source.name.replace("/", "_").replace(":", "_").replace(".", "_")
    return stamped_report_path("model", env.capture_host(), f"{name}-{device}", folder=folder)


def execute(run: ModelRun, on_progress: OnProgress | None = None) -> None:
    """Measure what is pending; rows reach the report (and `run.rows`) group by group."""
    with ReportLock(run.out):
        if run.threads:
            torch.set_num_threads(run.threads)  # before the environment records it
        environment = env.capture()
        with ReportWriter(run.out, MODEL_COLUMNS) as writer:
            write_sidecar(run.out, {"kind": "model", "environment": environment,
                                    "model": run.source.text, "library": run.source.library,
                                    "sample_shape": list(run.source.sample_shape),
                                    "settings": _settings(run),
                                    "configurations": [dict(zip(MODEL_KEY, c.key))
                                                       for c in run.plan.configs]},
                          resumed=run.out.exists() and run.out.stat().st_size > 0)

            def emit(row: dict[str, Any]) -> None:
                writer.write(row)
                run.rows.append(row)

            pending = {config.key for config in run.pending}
            ModelRunner(run.source, run.stopping, env.key_columns(environment), emit, on_progress,
                        seed=run.seed).run(run.to_measure(), write=pending)


def _settings(run: ModelRun) -> dict[str, Any]:
    return {"target_rsd": run.stopping.target_rsd, "min_samples": run.stopping.min_samples,
            "min_time_s": run.stopping.min_time, "max_time_s": run.stopping.max_time,
            "threads": run.threads, "seed": run.seed}

"""Timing whole-model steps with micro's machinery: the device's timer, the warm-up and stopping
rules, and interleaving.

The configurations of a group (one model, device, precision, batch size and mode; one per
activation) are built together and sampled in rounds, one sample each per round, so that a
drift of the machine (clocks, heat, another process) lands on every activation alike. A group's
rows are written when its last configuration stops: each row's activation share needs the
identity model's samples of the same group.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .. import stats
from ..errors import describe_error
from ..micro.busy import busy_columns
from ..micro.busy import snapshot as cpu_snapshot
from ..micro.device import MicroDevice, device_for
from ..micro.stopping import SampleSeries, StoppingRule, WarmupRule
from ..micro.timers import TARGET_SAMPLE_S, Timer, calls_per_sample
from ..progress import ItemFinished, ItemStarted, OnProgress, PlanStarted
from ..records.rows import new_row
from ..records.schema import MODEL_KEY
from .memory import process_peak_bytes
from .plan import REFERENCE, ModelConfig, groups
from .source import ModelSource
from .step import Workload, prepare

Row = dict[str, Any]
MODEL_WARMUP = WarmupRule(min_time=0.2, min_samples=3, tolerance=0.1, max_time=2.0)


@dataclass
class _Item:
    config: ModelConfig
    workload: Workload | None  # dropped when its step fails, so its memory can go
    series: SampleSeries
    timer: Timer
    calls: int
    replaced: int
    left_alone: list[str]
    sized: bool = False  # steps per sample re-sized from the warm-up median
    failure: tuple[str, str] | None = None  # (status, message) of a step that failed sampling


class ModelRunner:
    """Measures configurations group by group; `emit` gets each finished row."""

    def __init__(self, source: ModelSource, stopping: StoppingRule, environment_columns: Row,
                 emit: Callable[[Row], None], on_progress: OnProgress | None = None,
                 seed: int = 0, warmup: WarmupRule = MODEL_WARMUP):
        self.source, self.stopping, self.warmup = source, stopping, warmup
        self.environment_columns, self.emit, self.seed = environment_columns, emit, seed
        self.on_progress = on_progress or (lambda event: None)

    def run(self, configs: Sequence[ModelConfig], write: set[tuple[str, ...]] | None = None) -> None:
        """Measure `configs`; rows are written for those whose key is in `write` (default: all;
        a resumed group re-measures its identity model without writing it twice)."""
        self.write = {c.key for c in configs} if write is None else write
        self.on_progress(PlanStarted(len([c for c in configs if c.key in self.write]),
                                     "configurations"))
        for group in groups(configs):
            self._run_group(group)

    def _run_group(self, configs: list[ModelConfig]) -> None:
        device = device_for(configs[0].setup.device)
        if configs[0].setup.compile:
            torch.compiler.reset()  # each group starts within torch.compile's recompile limit
        items = [item for item in (self._prepare(c, device) for c in configs) if item is not None]
        before = cpu_snapshot()
        try:
            _sample_in_rounds(items, device)
            busy = busy_columns(before, cpu_snapshot(), torch.get_num_threads())
            reference = next((i for i in items if i.config.activation.spec.name == REFERENCE), None)
            for item in (i for i in items if i.config.key in self.write):
                if item.failure is not None:
                    self._emit_failure(item.config, *item.failure)
                    continue
                row = self._row(item, reference if reference and not reference.failure else None,
                                busy)
                row.update(_peak(item, device))
                self.emit(row)
                self.on_progress(ItemFinished(item.config.label, row["status"]))
        finally:
            items.clear()
            gc.collect()
            device.release()

    def _prepare(self, config: ModelConfig, device: MicroDevice) -> _Item | None:
        if config.key in self.write:
            self.on_progress(ItemStarted(config.label))
        try:
            built = self.source.build(config.activation.label, config.impl, self.seed)
            workload = prepare(built, self.source.sample_shape, self.source.num_classes,
                               config.setup, self.seed, vocab=self.source.vocab)
            timer = device.timer(cold=False, numel=0, graph_max_numel=-1)  # no CUDA graphs
            first = timer.measure(workload.step, 1)  # the first call builds (and compiles)
        except Exception as error:  # noqa: BLE001 - one configuration failing is a row, not the end
            self._emit_failure(config, *failure_of(error))
            device.release()
            return None
        series = SampleSeries(self.stopping, self.warmup)
        return _Item(config, workload, series, timer, calls_per_sample(first),
                     len(built.activations), built.left_alone)

    def _base_row(self, config: ModelConfig) -> Row:
        return new_row("model", None, self.environment_columns, dict(zip(MODEL_KEY, config.key)),
                       threads=torch.get_num_threads())

    def _emit_failure(self, config: ModelConfig, status: str, message: str) -> None:
        if config.key not in self.write:
            return
        row = self._base_row(config)
        row.update(status=status, message=message)
        self.emit(row)
        self.on_progress(ItemFinished(config.label, status))

    def _row(self, item: _Item, reference: _Item | None, busy: Row) -> Row:
        summary, series = item.series.summary(), item.series
        batch = item.config.setup.batch_size
        row = self._base_row(item.config)
        row.update(timer=item.timer.mode, samples=summary.n, calls_per_sample=item.calls,
                   median_s=summary.median, mean_s=summary.mean, min_s=summary.minimum,
                   q1_s=summary.q1, q3_s=summary.q3, iqr_pct=100 * summary.iqr_rel,
                   ci_low_s=summary.ci_low, ci_high_s=summary.ci_high,
                   ci_rel_halfwidth=summary.ci_rel_halfwidth, warmup_s=series.warmup_time,
                   sampling_s=series.sampling_time, converged=series.converged,
                   samples_per_s=batch / summary.median, samples_per_s_ci_low=batch / summary.ci_high,
                   samples_per_s_ci_high=batch / summary.ci_low,
                   replaced=item.replaced, left_alone="; ".join(item.left_alone),
                   params=item.workload.params, act_saved_bytes=item.workload.act_saved_bytes,
                   step_saved_bytes=item.workload.step_saved_bytes)
        if summary.n < MIN_SAMPLES:  # the median's interval is the whole range: none to show
            row.update(samples_per_s_ci_low="", samples_per_s_ci_high="")
        if reference is not None and reference is not item:
            row.update(activation_share(reference.series.samples, series.samples))
        row.update({k: v for k, v in busy.items() if k != "busy"})
        untouched = item.replaced == 0 and item.config.activation.spec.name != REFERENCE
        flags = ([] if series.converged else ["noisy"]) + (["busy"] if busy.get("busy") else []) \
            + (["nothing_replaced"] if untouched else [])
        row["flags"] = ";".join(flags)
        row["status"] = "noisy" if "noisy" in flags else "ok"
        return row


def failure_of(error: BaseException) -> tuple[str, str]:
    """(status, message) for a configuration that failed; the traceback is let go, so that the
    tensors of the failed step can be freed."""
    out_of_memory = isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error)
    error.__traceback__ = None
    return ("oom" if out_of_memory else "error"), describe_error(error)


def activation_share(identity: Sequence[float], with_activation: Sequence[float]) -> Row:
    """The share of a step the activation takes: 1 - median(identity) / median(this), with the
    ratio's bootstrap interval turned around (a negative share: the activation is lost in noise,
    or the identity model is slower, as a fused kernel can make it)."""
    ratio, low, high = stats.ratio_of_medians_ci(identity, with_activation)
    if min(len(identity), len(with_activation)) < MIN_SAMPLES:  # too few for an interval
        low = high = math.nan
    return {"act_share": 1 - ratio, "act_share_ci_low": 1 - high if math.isfinite(high) else "",
            "act_share_ci_high": 1 - low if math.isfinite(low) else ""}


MIN_SAMPLES = stats.MIN_SAMPLES_FOR_INTERVAL  # fewer give a median no interval
OVERTIME = 5.0  # ... so sampling goes on past --max-time for them, up to this many times it


def _stopped(item: _Item) -> bool:
    """The stopping rule's verdict, and at least MIN_SAMPLES samples (a model's step can take
    longer than --max-time allows samples for), unless OVERTIME x --max-time has gone by; a
    configuration whose step failed has stopped."""
    series = item.series
    if item.failure is not None:
        return True
    if not series.finished:
        return False
    return (len(series.samples) >= MIN_SAMPLES
            or series.sampling_time >= OVERTIME * series.stopping.max_time)


def _sample_in_rounds(items: list[_Item], device: MicroDevice) -> None:
    """One sample of each unfinished configuration per round, until every one has stopped."""
    while True:
        pending = [item for item in items if not _stopped(item)]
        if not pending:
            return
        for item in pending:
            _take_sample(item, device)


def _take_sample(item: _Item, device: MicroDevice) -> None:
    """One sample; steps per sample sized as micro sizes them: during warm-up from the last
    sample, once warm from the warm-up median (the first call, which builds, is no guide)."""
    series = item.series
    if series.warm and not item.sized:
        item.calls, item.sized = calls_per_sample(stats.summarize(series.warmup_samples).median), True
    start = time.perf_counter()
    try:
        seconds = item.timer.measure(item.workload.step, item.calls)
    except Exception as error:  # noqa: BLE001 - this configuration ends; the others go on
        item.failure, item.workload = failure_of(error), None
        device.release()
        return
    series.add(seconds, time.perf_counter() - start)
    if not series.warm and seconds * item.calls < TARGET_SAMPLE_S / 2:
        item.calls = calls_per_sample(seconds)


def _peak(item: _Item, device: MicroDevice) -> Row:
    """The peak over one more step: the CUDA allocator's, or on the CPU the process's resident
    peak (model/memory.py); empty where neither can be read."""
    try:
        if device.kind == "cpu":
            peak, kind = process_peak_bytes(item.workload.step), "process_rss"
        else:
            peak, kind = device.peak_bytes(item.workload.step), "cuda_allocator"
    except Exception:  # noqa: BLE001 - the extra step ran out of memory: the timings stand
        device.release()
        return {}
    return {"peak_bytes": peak, "peak_kind": kind} if peak is not None else {}

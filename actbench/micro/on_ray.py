"""`actbench micro --executor ray`: the same plan measured on every GPU of a Ray cluster (or on
every node, for the CPU), each task alone on its device, into one report.

Each task plans on its own machine (so 'auto' and 'cuda' mean that machine's device), measures
with the same Runner as a local micro run, and sends its rows back through a Ray queue as they
finish; the driver is the one writer. Rows carry the host and GPU they were measured on, and a GPU
task's `device` names the physical GPU (`cuda:3`), so machines and GPU types compare in one
`actbench compare` (which tells a report's machines apart). Resuming skips, per machine, the
configurations the report already holds for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import env
from ..errors import ActbenchError
from ..progress import ItemFinished, Notice, OnProgress, PlanStarted, ignore
from ..records.lock import ReportLock
from ..records.paths import check_writable, stamped_report_path
from ..records.schema import MICRO_KEY
from ..records.writer import ReportWriter, check_header, read_rows, write_sidecar
from .session import MicroOptions, plan_for, report_columns, settings_for

MACHINE_COLUMNS = ("host", "gpu")
WAIT_S = 0.5


@dataclass
class ClusterRun:
    out: Path
    tasks: list[str] = field(default_factory=list)  # where each task measures, in words
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def done_keys(out: Path) -> set[tuple[str, ...]]:
    """(host, gpu, *MICRO_KEY) of every configuration the report already holds."""
    if not out.exists() or out.stat().st_size == 0:
        return set()
    return {tuple(row.get(c, "") for c in (*MACHINE_COLUMNS, *MICRO_KEY)) for row in read_rows(out)}


def measure_task(options: MicroOptions, done: set[tuple[str, ...]], queue) -> int:
    """The body of one Ray task: plan here, measure what this machine has not measured, send
    each row (and each finished line) through `queue`; returns the rows measured."""
    import ray

    from .runner import Runner

    plan = plan_for(options)  # resolved on this machine
    columns = env.key_columns(env.capture())
    gpu_ids = [str(i) for i in ray.get_gpu_ids()]
    physical = f"cuda:{gpu_ids[0]}" if len(gpu_ids) == 1 else None
    measured = 0

    def emit(row: dict[str, Any]) -> None:
        nonlocal measured
        if physical and str(row.get("device", "")).startswith("cuda"):
            row = {**row, "device": physical}
        queue.put(("row", row))
        measured += 1

    def on_progress(event) -> None:
        if isinstance(event, ItemFinished):
            queue.put(("line", f"{columns['host']} {physical or ''} {event.label}: {event.status}"))

    machine = tuple(str(columns.get(c, "")) for c in MACHINE_COLUMNS)
    pending = [c for c in plan.configs
               if (*machine, *_relabelled(c.key, physical)) not in done]
    Runner(settings_for(options), columns, emit, None, on_progress).run(pending)
    return measured


def _relabelled(key: tuple, physical: str | None) -> tuple[str, ...]:
    index = MICRO_KEY.index("device")
    key = tuple(str(k) for k in key)
    if physical and key[index].startswith("cuda"):
        key = (*key[:index], physical, *key[index + 1:])
    return key


def prepare(options: MicroOptions) -> ClusterRun:
    """Check the plan (devices are resolved where it runs) and the report before connecting."""
    if options.samples is not None:
        raise ActbenchError("--samples is not available with --executor ray; the report's rows "
                            "come back from the cluster, raw samples stay there")
    plan_for(options, resolve=str)
    settings_for(options)  # its checks, before the cluster is asked
    device = "+".join(d.replace(":", "") for d in (options.devices or ["auto"]))
    out = Path(options.out) if options.out else stamped_report_path("micro", "ray", device)
    check_writable(out)
    check_header(out, report_columns(out))
    return ClusterRun(out)


def execute(run: ClusterRun, options: MicroOptions, address: str | None,
            on_progress: OnProgress = ignore) -> None:
    """Measure on the cluster: one task per GPU when the plan asks for CUDA (or 'auto' on a
    cluster with GPUs), else one per node holding all its CPUs."""
    from ..cluster import ray_session

    with ReportLock(run.out), ray_session(address) as ray:
        from ray.util.queue import Queue

        queue = Queue()
        remote = ray.remote(max_calls=1)(measure_task)
        tasks = _placed_tasks(ray, remote, options)
        done = done_keys(run.out)
        write_sidecar(run.out, {"kind": "micro", "executor": "ray", "address": address,
                                "options": _options_dict(options), "tasks": [t for t, _ in tasks],
                                "environment": env.capture()},
                      resumed=run.out.exists() and run.out.stat().st_size > 0)
        run.tasks = [where for where, _ in tasks]
        refs = {task.remote(options, done, queue): where for where, task in tasks}
        on_progress(PlanStarted(total=len(refs), unit="machines"))
        with ReportWriter(run.out, report_columns(run.out)) as writer:
            try:
                _collect(ray, refs, queue, writer, run, on_progress)
            finally:  # Ctrl-C, or an error here: no task goes on measuring for nobody
                for ref in refs:
                    try:
                        ray.cancel(ref, force=True)
                    except Exception:  # noqa: BLE001 - already finished or gone
                        pass


def _placed_tasks(ray, remote, options: MicroOptions) -> list[tuple[str, Any]]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from ..cluster import cluster_gpus

    wanted = [d.strip().lower() for d in (options.devices or ["auto"])]
    gpus = int(cluster_gpus(ray))
    if any(d.startswith("cuda") for d in wanted) or (wanted == ["auto"] and gpus):
        if not gpus:
            raise ActbenchError("the plan asks for CUDA but the Ray cluster has no GPUs")
        return [(f"GPU {i + 1} of {gpus}", remote.options(num_gpus=1, num_cpus=1))
                for i in range(gpus)]
    tasks = []
    for node in ray.nodes():
        if node.get("Alive"):
            cpus = node.get("Resources", {}).get("CPU", 1)
            strategy = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            tasks.append((f"node {node.get('NodeManagerHostname', node['NodeID'][:8])}",
                          remote.options(num_cpus=cpus, scheduling_strategy=strategy)))
    return tasks


def _collect(ray, refs: dict, queue, writer: ReportWriter, run: ClusterRun,
             on_progress: Callable) -> None:
    """Write rows as they arrive until every task has ended; a task that failed is a line in
    `run.failures`, the others go on."""
    outstanding = dict(refs)
    while outstanding:
        ready, _ = ray.wait(list(outstanding), num_returns=len(outstanding), timeout=WAIT_S)
        _drain(queue, writer, run, on_progress)
        for ref in ready:
            where = outstanding.pop(ref)
            try:
                measured = ray.get(ref)
                line = f"{where}: {measured} configuration(s) measured"
                status = "ok"
            except Exception as error:  # noqa: BLE001 - one machine lost; the others go on
                line = f"{where}: failed ({type(error).__name__}: {str(error).splitlines()[0]})"
                run.failures.append(line)
                status = "failed"
            on_progress(ItemFinished(where, status, line))
    _drain(queue, writer, run, on_progress)


def _drain(queue, writer: ReportWriter, run: ClusterRun, on_progress: Callable) -> None:
    waiting = queue.qsize()
    for what, payload in queue.get_nowait_batch(waiting) if waiting else ():
        if what == "row":
            writer.write(payload)
            run.rows.append(payload)
        else:
            on_progress(Notice(payload))


def _options_dict(options: MicroOptions) -> dict[str, Any]:
    return {name: (str(value) if isinstance(value, Path) else value)
            for name, value in vars(options).items()}

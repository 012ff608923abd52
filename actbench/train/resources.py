"""How many runs at once, and what each is given: workers, torch threads, GPU slots.

Pure arithmetic on facts about the machine (usable cores, GPUs, free memory), so the choice
`--workers auto` makes can be tested on any machine and explained in one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..devices import device_kind
from ..errors import ActbenchError

# A worker process holds torch (about 300 MB resident), its data set and its model; auto never
# starts more workers than free memory allows at this much each.
WORKER_MEMORY_BYTES = 1 << 30


@dataclass(frozen=True)
class Machine:
    """What `--workers auto` looks at."""

    cores: int  # cores this process may run on (its affinity mask, not the whole machine's)
    gpus: int  # CUDA devices torch sees
    free_bytes: int | None  # memory available to new processes; None when unknown

    @classmethod
    def here(cls) -> Machine:
        import psutil
        import torch

        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        try:
            free = int(psutil.virtual_memory().available)
        except Exception:  # noqa: BLE001 - unknown memory only removes a cap
            free = None
        return cls(cores=max(cores, 1), gpus=torch.cuda.device_count(), free_bytes=free)


@dataclass(frozen=True)
class Placement:
    """The resources one run is given in its worker: torch threads and, on CUDA, which GPU."""

    threads: int
    gpu: int | None = None  # index among the devices the driver sees; None: as the run says


def parse_workers(text: str | int | None) -> int | None:
    """'auto' (or nothing) -> None, a count >= 1 -> that count; anything else is a usage error."""
    if text is None or str(text).strip().lower() == "auto":
        return None
    try:
        count = int(str(text).strip())
    except ValueError:
        count = 0
    if count < 1:
        raise ActbenchError(f"--workers must be 'auto' or a whole number >= 1, got '{text}'")
    return count


def choose_workers(requested: int | None, threads: int | None, device: str, machine: Machine,
                   runs: int) -> int:
    """How many runs at once. Given a count, that count (never more than there are runs). Auto:
    one run per GPU on CUDA, one at a time on MPS, and on CPU as many runs as the cores hold at
    `threads` each (one thread each unless told), capped by free memory."""
    if requested is not None:
        return max(1, min(requested, runs))
    kind = device_kind(device) if device != "auto" else ("cuda" if machine.gpus else "cpu")
    if kind == "cuda":
        count = max(machine.gpus, 1)
    elif kind == "mps":
        count = 1
    else:
        count = max(1, machine.cores // (threads or 1))
        if machine.free_bytes is not None:
            count = min(count, max(1, machine.free_bytes // WORKER_MEMORY_BYTES))
    return max(1, min(count, runs))


def choose_threads(requested: int | None, workers: int, machine: Machine) -> int:
    """Torch threads per run: as asked, else the cores shared out between the workers."""
    if requested is not None:
        return requested
    return max(1, machine.cores // workers)


def placements(workers: int, threads: int, device: str, machine: Machine) -> list[Placement]:
    """One placement per worker slot; CUDA slots go round the GPUs (slot i on GPU i mod n), so
    `--workers 2` on two GPUs gives each run a GPU of its own."""
    if device_kind(device) == "cuda" and machine.gpus > 1:
        return [Placement(threads, gpu=slot % machine.gpus) for slot in range(workers)]
    return [Placement(threads) for _ in range(workers)]


def gpus_per_run(asked: float | None, device: str, cluster_gpus: float) -> float:
    """GPUs a Ray task asks for: as asked, else one for a CUDA run, or for an 'auto' run on a
    cluster that has GPUs (where 'auto' will resolve to one), else none."""
    if asked is not None:
        return asked
    if device == "auto":
        return 1.0 if cluster_gpus > 0 else 0.0
    return 1.0 if device_kind(device) == "cuda" else 0.0


def describe(workers: int, threads: int, executor: str) -> str:
    """The line a person reads about how the suite will run."""
    runs = "1 run at a time" if workers == 1 else f"{workers} runs at a time"
    return f"{executor} executor: {runs}, {threads} torch thread(s) each"

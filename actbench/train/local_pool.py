"""Worker processes on this machine: each run in a fresh process of its own, so its peak memory,
warm-up and timings are its own and a crash, an out-of-memory kill or a SIGKILL loses that run
only.

Processes come from multiprocessing's forkserver where the platform has it (a server with torch
already imported forks each worker in milliseconds), else from spawn. Each worker sends its
messages down a pipe of its own: a worker killed mid-message breaks only its own pipe.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for

from .config import RunSpec
from .messages import RunFinished, RunLost
from .resources import Placement
from .scheduling import Deliver
from .worker import process_main

# Imported once in the fork server, so that every worker forked from it starts warm.
PRELOAD = ["actbench.train.forkserver_hooks", "actbench.train.preload", "actbench.train.worker"]
# How long a stopped worker is given to exit after SIGKILL before the driver moves on (seconds).
KILL_WAIT_S = 5.0


def context():
    """forkserver where available (Linux, macOS), else spawn; never plain fork, which is unsafe
    once torch has started its thread pools."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: object
    config_hash: str
    finished: bool = False
    messages: list = field(default_factory=list)


def exit_reason(exitcode: int | None) -> str:
    """How a worker that sent no result ended, in words."""
    if exitcode is None:
        return "the worker process did not exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = (" (the kernel's out-of-memory killer sends it when memory runs out; see dmesg)"
                if -exitcode == signal.SIGKILL else "")
        return f"the worker process was killed by {name}{hint}"
    return f"the worker process exited with code {exitcode} before the run finished"


class LocalPool:
    """`slots` worker processes at most, one run each."""

    def __init__(self, placements: list[Placement], deliver: Deliver):
        self.placements, self.deliver = placements, deliver
        self.slots = len(placements)
        self.ctx = context()
        self.workers: dict[int, _Worker] = {}
        self.exiting: list[multiprocessing.process.BaseProcess] = []

    def start(self, slot: int, run: RunSpec) -> None:
        reader, writer = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(target=process_main, name=f"actbench-run-{run.index}",
                                   args=(writer, run, self.placements[slot], dict(os.environ)))
        self.workers[slot] = _Worker(process, reader, run.config_hash)  # stop() sees it from now
        # A stop (Ctrl-C, SIGTERM) that lands inside start() may leave a worker whose pid never
        # arrived: stop() closes its pipe, and a worker whose pipe or driver is gone exits.
        process.start()
        writer.close()  # the worker holds the only writing end: its death closes the pipe

    def wait(self, timeout: float) -> None:
        watched = {}
        for slot, worker in self.workers.items():
            watched[worker.connection] = slot
            watched[worker.process.sentinel] = slot
        ready = wait_for(list(watched), timeout)
        for slot in sorted({watched[item] for item in ready}):
            self._collect(slot)
        self.exiting = [p for p in self.exiting if p.is_alive()]

    def _collect(self, slot: int) -> None:
        """Deliver what the slot's worker sent; a worker that ended without a result is lost."""
        worker = self.workers[slot]
        ended = not _drain(worker)
        for message in worker.messages:
            worker.finished = worker.finished or isinstance(message, RunFinished)
            self.deliver(slot, message)
        worker.messages.clear()
        if worker.finished:
            del self.workers[slot]
            self.exiting.append(worker.process)  # it exits by itself; the slot is free now
            worker.connection.close()
        elif ended or not worker.process.is_alive():
            _drain(worker)
            worker.process.join(KILL_WAIT_S)
            del self.workers[slot]
            worker.connection.close()
            for message in worker.messages:  # sent just before it died
                self.deliver(slot, message)
            self.deliver(slot, RunLost(worker.config_hash, exit_reason(worker.process.exitcode)))

    def stop(self) -> None:
        """Kill every worker still running (their runs are left unfinished, to run again on
        resume) and reap the ones exiting."""
        started = [w for w in self.workers.values() if w.process.pid is not None]
        for worker in started:
            worker.process.kill()
        for worker in started:
            worker.process.join(KILL_WAIT_S)
        for worker in self.workers.values():
            worker.connection.close()
        for process in self.exiting:
            process.join(KILL_WAIT_S)
        self.workers.clear()
        self.exiting.clear()


def _drain(worker: _Worker) -> bool:
    """Move every message waiting in the worker's pipe to `worker.messages`; False once the pipe
    is closed (the worker ended) or broken (it died mid-message)."""
    try:
        while worker.connection.poll():
            worker.messages.append(worker.connection.recv())
    except (EOFError, OSError):
        return False
    return True

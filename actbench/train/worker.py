"""One run where it executes: its placement applied (torch threads, GPU), its data set prepared
there, trained, and every step told to `send` as the messages of messages.py.

The same function serves every executor: called directly (inline), in a worker process of its
own (local), or as a Ray task. torch is imported inside the functions, so a worker process can
set its threads before torch starts any.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import env
from ..errors import describe_error
from .config import RunSpec
from .messages import BatchFinished, EpochFinished, Message, RunBegan, RunFinished
from .resources import Placement

# The data set is generated / subsampled with one fixed seed for every run: runs of one suite
# see the same data, and seeds vary initialisation, batch order and dropout only. 42 is
# MNIST-1D's canonical seed (the data set its published results use).
DATA_SEED = 42
# Progress inside a run reaches the driver at most this often (and at each epoch's end); through
# Ray, where each message is a call to the queue's actor, less often.
BATCH_MESSAGE_INTERVAL_S = 0.25
RAY_BATCH_MESSAGE_INTERVAL_S = 1.0


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


@functools.cache
def worker_environment() -> dict[str, Any]:
    """The key columns (host, cpu, gpu, versions) of the machine this process runs on."""
    return env.key_columns(env.capture())


def concrete_device(run: RunSpec, placement: Placement) -> str:
    """The device the run trains on here: its GPU slot's, else its own name if the driver
    resolved it, else that name resolved on this machine (runs sent to a cluster keep the name
    the suite wrote: 'auto' means the best device of whichever machine runs it)."""
    from .. import devices

    if placement.gpu is not None:
        return f"cuda:{placement.gpu}"
    if devices.is_concrete(run.device):
        return run.device
    return devices.resolve_device(run.device)


def execute_run(run: RunSpec, placement: Placement, send: Callable[[Message], None],
                cache: DataCache | None = None,
                batch_interval: float = BATCH_MESSAGE_INTERVAL_S) -> RunFinished:
    """Train `run` here with `placement`; every message goes to `send`, the last one (the
    RunFinished) is also returned. Never raises for a failing run: the result says how it ended."""
    import torch

    from .loop import RunResult, train_run

    torch.set_num_threads(placement.threads)
    try:
        device = concrete_device(run, placement)
    except Exception as error:  # noqa: BLE001 - this machine cannot run it: a failed run
        device = run.device
        send(RunBegan(run.config_hash, worker_environment(), os.getpid(), placement.threads, device))
        return _finish(send, RunFinished(run.config_hash, RunResult(
            status="failed", message=f"on host {worker_environment()['host']}: {describe_error(error)}")))
    send(RunBegan(run.config_hash, worker_environment(), os.getpid(), placement.threads, device))
    run = dataclasses.replace(run, device=device)
    try:
        splits = (cache or DataCache()).get(run, torch.device(device))
    except Exception as error:  # noqa: BLE001 - a data set that does not load fails the run
        where = f" (on host {worker_environment()['host']})"  # a cluster's nodes differ in files
        return _finish(send, RunFinished(run.config_hash, RunResult(
            status="failed", message=describe_error(error) + where)))
    throttle = _Throttle(batch_interval)

    def on_batch(epoch: int, step: int, steps: int) -> None:
        if step == steps or throttle.ready():
            send(BatchFinished(run.config_hash, epoch, step, steps))

    result = train_run(run, splits, lambda record: send(EpochFinished(run.config_hash, record)),
                       on_batch)
    return _finish(send, RunFinished(run.config_hash, result))


def _finish(send: Callable[[Message], None], message: RunFinished) -> RunFinished:
    send(message)
    return message


class _Throttle:
    def __init__(self, interval: float):
        self.interval, self.last = interval, 0.0

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False


def process_main(connection, run: RunSpec, placement: Placement,
                 environ: dict[str, str] | None = None) -> None:
    """The body of a local worker process: one run, its messages sent down `connection`.

    `environ` is the driver's environment as it is now (a fork server keeps the one it started
    with). Ctrl-C goes to the whole terminal's process group; a worker ignores it and leaves
    stopping to the driver, which kills it. A worker whose driver is gone (killed without a chance
    to clean up) stops by itself rather than train for nobody."""
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    try:
        execute_run(run, placement, connection.send)
    except (BrokenPipeError, EOFError, ConnectionError):
        os._exit(1)  # the driver stopped listening (it was stopped): nobody to train for
    finally:
        connection.close()


def _exit_with_parent(poll_s: float = 0.5) -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="actbench-parent-watch", daemon=True).start()


def ray_task(run: RunSpec, placement: Placement, queue) -> RunFinished:
    """The body of a Ray task: progress and epochs go through `queue` (a ray.util.queue.Queue)
    as they happen; the RunFinished is the task's return value."""

    from . import preload  # noqa: F401  (a fresh process: its first-use imports before the run's clock)

    def send(message: Message) -> None:
        if not isinstance(message, RunFinished):
            queue.put(message)

    return execute_run(run, placement, send, batch_interval=RAY_BATCH_MESSAGE_INTERVAL_S)

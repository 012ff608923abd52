"""Runs as Ray tasks, on a local Ray or a cluster: one task per run in a fresh worker process
(`max_calls=1`), asking Ray for the run's CPUs (its threads) and GPUs.

Epoch results and progress come back through a Ray queue as they happen; the task's return value
is the RunFinished. A task whose worker died (killed, out of memory, its node lost) is a RunLost,
retried by the scheduler rather than silently by Ray, so every try is counted and reported.
"""

from __future__ import annotations

from .config import RunSpec
from .messages import RunFinished, RunLost
from .resources import Placement
from .loop import RunResult
from .scheduling import Deliver
from .worker import ray_task


# Each look at the cluster is a few calls to Ray; on a small machine they cost the runs CPU.
RAY_WAIT_S = 0.5


class RayPool:
    def __init__(self, ray, placements: list[Placement], gpus_per_run: float, deliver: Deliver):
        from ray.util.queue import Queue

        self.ray, self.placements, self.deliver = ray, placements, deliver
        self.slots = len(placements)
        self.queue = Queue()
        self.remote = ray.remote(max_calls=1)(ray_task).options(
            num_cpus=placements[0].threads, num_gpus=gpus_per_run, max_retries=0,
            retry_exceptions=False)
        self.tasks: dict[object, tuple[int, str]] = {}  # object ref -> (slot, config hash)

    def start(self, slot: int, run: RunSpec) -> None:
        placement = Placement(self.placements[slot].threads)  # Ray picks the GPU
        self.tasks[self.remote.remote(run, placement, self.queue)] = (slot, run.config_hash)

    def wait(self, timeout: float) -> None:
        ready, _ = self.ray.wait(list(self.tasks), num_returns=len(self.tasks),
                                 timeout=max(timeout, RAY_WAIT_S))
        self._drain_queue()  # a task's epochs were queued before it returned
        for ref in ready:
            slot, config_hash = self.tasks.pop(ref)
            self.deliver(slot, self._outcome(ref, config_hash))

    def _drain_queue(self) -> None:
        slots = {config_hash: slot for slot, config_hash in self.tasks.values()}
        waiting = self.queue.qsize()  # one call for the count, one for the batch
        for message in self.queue.get_nowait_batch(waiting) if waiting else ():
            if message.config_hash in slots:
                self.deliver(slots[message.config_hash], message)

    def _outcome(self, ref, config_hash: str):
        from ray.exceptions import RayTaskError

        try:
            return self.ray.get(ref)
        except RayTaskError as error:  # our code raised outside the run's own handling
            return RunFinished(config_hash, RunResult(status="failed", message=_first_line(error)))
        except Exception as error:  # noqa: BLE001 - the worker or its node is gone
            return RunLost(config_hash, f"the Ray worker was lost: {type(error).__name__}: "
                                        f"{_first_line(error)}")

    def stop(self) -> None:
        """Cancel every outstanding task (their workers are killed)."""
        for ref in self.tasks:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or gone
                pass
        self.tasks.clear()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__

"""What a worker tells the driver about a run, whichever executor carries it (a direct call, a
pipe from a worker process, a Ray queue): plain frozen data that pickles.

The driver is the one writer: it turns these into report rows and progress events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .loop import EpochResult, RunResult


@dataclass(frozen=True)
class RunBegan:
    """A worker took the run: where it executes (`environment`: the worker's key columns, host,
    cpu, gpu and versions, so each row says where its run ran), its process, threads and the
    concrete device."""

    config_hash: str
    environment: dict[str, Any]
    pid: int
    threads: int
    device: str


@dataclass(frozen=True)
class EpochFinished:
    config_hash: str
    record: EpochResult


@dataclass(frozen=True)
class BatchFinished:
    """Progress inside a run (sent at most a few times a second)."""

    config_hash: str
    epoch: int
    step: int
    steps: int


@dataclass(frozen=True)
class RunFinished:
    """The run ended (ok, diverged or failed) after `attempts` tries."""

    config_hash: str
    result: RunResult
    attempts: int = 1


@dataclass(frozen=True)
class RunLost:
    """The worker died before the run finished (killed, out of memory, its node lost): `reason`
    says how. The scheduler retries it or records it as failed."""

    config_hash: str
    reason: str


Message = RunBegan | EpochFinished | BatchFinished | RunFinished | RunLost

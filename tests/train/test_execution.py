"""Where runs execute: the resources arithmetic, worker processes (isolation, faults, Ctrl-C,
resume) and the same results whichever executor ran a run."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from actbench.errors import ActbenchError
from actbench.train import loop
from actbench.train.executor import Execution, execute, prepare
from actbench.train.local_pool import exit_reason
from actbench.train.messages import RunBegan, RunFinished
from actbench.train.resources import (Machine, Placement, choose_threads, choose_workers,
                                      gpus_per_run, parse_workers, placements)
from actbench.train.suite import suite_from_dict

TINY = {
    "name": "tiny",
    "data": {"name": "synthetic", "shape": [1, 6, 6], "classes": 4, "train_size": 128,
             "test_size": 64},
    "model": {"name": "mlp", "depth": 1, "width": 16},
    "optim": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 2, "batch_size": 32, "device": "cpu", "deterministic": True},
    "activations": ["relu", "mish"],
    "seeds": [0, 1],
}
OUTCOME = ("config_hash", "status", "epochs_done", "final_test_acc", "final_test_loss",
           "final_train_loss", "best_test_acc", "params")


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def outcomes(path: Path) -> dict[str, tuple[str, ...]]:
    return {row["config_hash"]: tuple(row[c] for c in OUTCOME) for row in read(path)}


def run_suite(tmp_path: Path, name: str, execution: Execution, suite: dict = TINY, observe=None):
    suite_run = prepare(suite_from_dict(suite), tmp_path / f"{name}.csv")
    execute(suite_run, execution=execution, observe=observe)
    return suite_run


# ------------------------------------------------------------------ resources, as arithmetic
LAPTOP = Machine(cores=8, gpus=0, free_bytes=64 << 30)


def test_auto_workers_fill_the_cores_at_the_threads_each_run_gets():
    assert choose_workers(None, None, "cpu", LAPTOP, runs=30) == 8
    assert choose_workers(None, 2, "cpu", LAPTOP, runs=30) == 4
    assert choose_workers(None, None, "cpu", LAPTOP, runs=3) == 3  # never more than the runs
    assert choose_workers(None, 16, "cpu", LAPTOP, runs=30) == 1


def test_auto_workers_are_capped_by_free_memory_and_follow_gpus_on_cuda():
    tight = Machine(cores=16, gpus=0, free_bytes=3 << 30)
    assert choose_workers(None, None, "cpu", tight, runs=30) == 3
    box = Machine(cores=32, gpus=4, free_bytes=None)
    assert choose_workers(None, None, "cuda:0", box, runs=30) == 4
    assert choose_workers(None, None, "mps", LAPTOP, runs=30) == 1
    assert choose_workers(5, None, "cuda:0", box, runs=30) == 5  # as asked


def test_threads_share_the_cores_unless_asked_and_gpus_go_round():
    assert choose_threads(None, 4, LAPTOP) == 2
    assert choose_threads(None, 16, LAPTOP) == 1
    assert choose_threads(3, 4, LAPTOP) == 3
    box = Machine(cores=32, gpus=2, free_bytes=None)
    assert placements(3, 4, "cuda:0", box) == [Placement(4, 0), Placement(4, 1), Placement(4, 0)]
    assert placements(2, 4, "cpu", box) == [Placement(4), Placement(4)]


def test_ray_tasks_ask_for_a_gpu_only_where_the_run_will_use_one():
    assert gpus_per_run(None, "cuda", cluster_gpus=8) == 1.0
    assert gpus_per_run(None, "cuda:0", cluster_gpus=0) == 1.0  # Ray then says none is free
    assert gpus_per_run(None, "auto", cluster_gpus=8) == 1.0
    assert gpus_per_run(None, "auto", cluster_gpus=0) == 0.0
    assert gpus_per_run(None, "cpu", cluster_gpus=8) == 0.0
    assert gpus_per_run(0.25, "cuda", cluster_gpus=8) == 0.25


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_workers_must_be_auto_or_a_positive_count(text):
    with pytest.raises(ActbenchError, match="--workers must be 'auto' or a whole number >= 1"):
        parse_workers(text)
    assert parse_workers("auto") is None and parse_workers(" 3 ") == 3


def test_execution_refuses_what_cannot_work():
    with pytest.raises(ActbenchError, match="unknown executor 'slurm'"):
        Execution(executor="slurm")
    with pytest.raises(ActbenchError, match="inline runs one run at a time"):
        Execution(executor="inline", workers=2)
    with pytest.raises(ActbenchError, match="--address names a Ray cluster"):
        Execution(address="ray://head:10001")


def test_a_lost_worker_says_how_it_ended():
    assert "killed by SIGKILL" in exit_reason(-signal.SIGKILL)
    assert "out-of-memory killer" in exit_reason(-signal.SIGKILL)
    assert exit_reason(-signal.SIGTERM) == "the worker process was killed by SIGTERM"
    assert exit_reason(3) == "the worker process exited with code 3 before the run finished"


# ------------------------------------------------------------------ the same runs, any executor
def test_workers_give_bit_identical_runs_to_the_driver_in_deterministic_mode(tmp_path):
    inline = run_suite(tmp_path, "inline", Execution(executor="inline", threads=1))
    local = run_suite(tmp_path, "local", Execution(workers=2, threads=1))
    assert outcomes(local.out) == outcomes(inline.out)
    assert len(outcomes(local.out)) == 4
    rows = read(local.out)
    assert {row["threads"] for row in rows} == {"1"} and {row["attempts"] for row in rows} == {"1"}
    assert all(float(row["warmup_s"]) > 0 for row in rows)
    if sys.platform.startswith("linux"):  # a process of its own per run, or one shared by all
        assert {row["peak_kind"] for row in rows} == {"process_peak_rss"}
        assert {row["peak_kind"] for row in read(inline.out)} == {"shared_process_peak_rss"}
    epochs = {(r["config_hash"], r["epoch"], r["test_loss"]) for r in read(local.epochs_out)}
    assert epochs == {(r["config_hash"], r["epoch"], r["test_loss"]) for r in read(inline.epochs_out)}
    sidecar = json.loads(local.out.with_suffix(".json").read_text())
    assert sidecar["execution"]["executor"] == "local" and sidecar["execution"]["workers"] == 2
    assert set(sidecar["execution"]["hosts"]) == set(outcomes(local.out))


def test_the_warm_up_changes_nothing_in_the_run(tmp_path, monkeypatch):
    warm = run_suite(tmp_path, "warm", Execution(executor="inline", threads=1))
    monkeypatch.setattr(loop, "WARMUP_STEPS", 0)
    cold = run_suite(tmp_path, "cold", Execution(executor="inline", threads=1))
    assert outcomes(cold.out) == outcomes(warm.out)
    assert {row["warmup_s"] for row in read(cold.out)} == {"0.0"}


def test_each_run_has_its_own_peak_memory(tmp_path):
    """A CNN keeps a 32 MiB feature map per batch where the MLP keeps kilobytes; in worker
    processes of their own the peaks differ by at least that, and identical runs agree."""
    suite = {**TINY, "data": {"name": "synthetic", "shape": [3, 32, 32], "classes": 4,
                              "train_size": 256, "test_size": 32},
             "model": {"name": "mlp", "width": 32},
             "train": {**TINY["train"], "epochs": 1, "batch_size": 256},
             "activations": ["relu"], "sweep": {"model.name": ["mlp", "cnn"]}}
    suite_run = run_suite(tmp_path, "memory", Execution(workers=2, threads=1), suite=suite)
    peaks: dict[str, list[int]] = {}
    for row in read(suite_run.out):
        assert row["status"] == "ok", row["message"]
        assert row["peak_kind"] == "process_peak_rss"
        peaks.setdefault(row["model.name"], []).append(int(row["peak_bytes"]))
    feature_map = 256 * 32 * 32 * 32 * 4  # batch x channels x 32 x 32 floats after the first conv
    assert min(peaks["cnn"]) - max(peaks["mlp"]) >= feature_map
    assert max(peaks["mlp"]) - min(peaks["mlp"]) < 16 << 20  # no growth from run to run


# ------------------------------------------------------------------ faults
def _kill_first_worker(victims: list[int]):
    def observe(message):
        if isinstance(message, RunBegan) and not victims:
            victims.append(message.pid)
            os.kill(message.pid, signal.SIGKILL)
    return observe


def test_a_killed_worker_fails_its_run_and_the_suite_goes_on(tmp_path):
    victims: list[int] = []
    suite_run = run_suite(tmp_path, "killed", Execution(workers=2, threads=1),
                          observe=_kill_first_worker(victims))
    rows = read(suite_run.out)
    assert len(rows) == 4 and len(victims) == 1
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(failed) == 1 and "killed by SIGKILL" in failed[0]["message"]
    assert sum(row["status"] == "ok" for row in rows) == 3
    # its epochs, if any were written, go when the run is tried again on resume
    again = prepare(suite_from_dict(TINY), suite_run.out)
    assert [run.config_hash for run in again.pending] == [failed[0]["config_hash"]]
    execute(again, execution=Execution(workers=2, threads=1))
    assert {row["status"] for row in read(suite_run.out)} == {"ok"}
    per_run = [r["config_hash"] for r in read(suite_run.epochs_out)]
    assert all(per_run.count(h) == 2 for h in set(per_run)) and len(set(per_run)) == 4


def test_a_killed_worker_is_retried_when_asked(tmp_path):
    victims: list[int] = []
    suite_run = run_suite(tmp_path, "retried", Execution(workers=2, threads=1, retries=1),
                          observe=_kill_first_worker(victims))
    rows = read(suite_run.out)
    assert {row["status"] for row in rows} == {"ok"} and len(rows) == 4
    assert sorted(row["attempts"] for row in rows) == ["1", "1", "1", "2"]
    reference = run_suite(tmp_path, "reference", Execution(executor="inline", threads=1))
    assert outcomes(suite_run.out) == outcomes(reference.out)


def test_ctrl_c_stops_every_worker_keeps_finished_rows_and_resume_completes(tmp_path):
    finished: list[str] = []
    workers: list[int] = []

    def observe(message):
        if isinstance(message, RunBegan):
            workers.append(message.pid)
        if isinstance(message, RunFinished):
            finished.append(message.config_hash)
        if finished and len(workers) >= 2:
            # as Ctrl-C would, once a run is recorded and both workers have begun (on a loaded
            # machine the first tiny run may finish before the second worker starts)
            raise KeyboardInterrupt

    suite_run = prepare(suite_from_dict(TINY), tmp_path / "stopped.csv")
    with pytest.raises(KeyboardInterrupt):
        execute(suite_run, execution=Execution(workers=2, threads=1), observe=observe)
    assert len(workers) >= 2 and not [pid for pid in workers if _alive(pid)]
    assert [row["config_hash"] for row in read(suite_run.out)] == finished
    again = prepare(suite_from_dict(TINY), suite_run.out)
    assert len(again.pending) == len(again.runs) - len(finished) > 0
    execute(again, execution=Execution(workers=2, threads=1))
    reference = run_suite(tmp_path, "whole", Execution(executor="inline", threads=1))
    assert outcomes(suite_run.out) == outcomes(reference.out)
    assert sorted(r["config_hash"] for r in read(suite_run.epochs_out)) == \
        sorted(r["config_hash"] for r in read(reference.epochs_out))


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_without_ray_the_ray_executor_names_the_install_command(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from actbench.cli import app

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(TINY))
    for args in (["train", str(path), "--executor", "ray"],
                 ["micro", "--executor", "ray", "--act", "relu"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2
        assert "pip install 'actbench[ray]'" in result.output
        assert "Traceback" not in result.output


def test_a_worker_forked_as_the_driver_stops_exits_without_a_traceback():
    """The fork server's child reports an uncaught error through sys.excepthook; one whose parent
    went away while it started (EOFError reading its start-up data) stays quiet, others print."""
    from actbench.train.local_pool import PRELOAD

    assert PRELOAD[0] == "actbench.train.forkserver_hooks"
    code = ("import sys, actbench.train.forkserver_hooks\n"
            "for error in (EOFError('Ran out of input'), ValueError('a real bug')):\n"
            "    try:\n        raise error\n"
            "    except Exception:\n        sys.excepthook(*sys.exc_info())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "EOFError" not in result.stderr
    assert "Traceback" in result.stderr and "ValueError: a real bug" in result.stderr
    assert "actbench.train.forkserver_hooks" not in sys.modules or sys.excepthook is not \
        sys.modules["actbench.train.forkserver_hooks"].quiet_when_parent_gone  # never the driver's

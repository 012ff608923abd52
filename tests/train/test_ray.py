"""The Ray executor on a local Ray: the same runs as everywhere else, lost workers, Ctrl-C and
resume, and micro measured per machine. Skipped where Ray is not installed."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from actbench.train.executor import Execution, execute, prepare
from actbench.train.messages import RunBegan
from actbench.train.suite import suite_from_dict
from tests.waiting import rows_so_far

from .test_execution import TINY, outcomes, read, run_suite

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # each test starts a Ray cluster (10-20 s on 2 cores)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module's in-process tests (actbench joins a Ray already up)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


ONE_SEED = {**TINY, "seeds": [0]}  # two runs, one per Ray worker: each run starts a process


def test_ray_runs_give_the_runs_of_every_other_executor(tmp_path, local_ray):
    on_ray = run_suite(tmp_path, "ray", Execution(executor="ray", workers=2, threads=1), ONE_SEED)
    reference = run_suite(tmp_path, "inline", Execution(executor="inline", threads=1), ONE_SEED)
    assert outcomes(on_ray.out) == outcomes(reference.out) and len(outcomes(on_ray.out)) == 2
    rows = read(on_ray.out)
    assert {row["host"] for row in rows} == {os.uname().nodename}
    assert {row["device"] for row in rows} == {"cpu"} and {row["threads"] for row in rows} == {"1"}


# Runs of a few seconds, so that a worker is still training when the driver hears it began
# (progress through Ray arrives every half second).
LONGER = {**TINY, "data": {**TINY["data"], "train_size": 2048}, "seeds": [0],
          "train": {**TINY["train"], "epochs": 30}}


def _kill_first(victims: list[int]):
    def observe(message):
        if isinstance(message, RunBegan) and not victims:
            victims.append(message.pid)
            os.kill(message.pid, signal.SIGKILL)
    return observe


def test_a_killed_ray_worker_is_retried_and_the_suite_completes(tmp_path, local_ray):
    victims: list[int] = []
    suite_run = run_suite(tmp_path, "retried", Execution(executor="ray", workers=2, threads=1,
                                                         retries=1),
                          suite=LONGER, observe=_kill_first(victims))
    rows = read(suite_run.out)
    assert len(victims) == 1 and len(rows) == 2
    assert {row["status"] for row in rows} == {"ok"}
    assert sorted(row["attempts"] for row in rows) == ["1", "2"]


def test_a_killed_ray_worker_without_retries_is_a_failed_run(tmp_path, local_ray):
    victims: list[int] = []
    suite_run = run_suite(tmp_path, "lost", Execution(executor="ray", workers=2, threads=1),
                          suite=LONGER, observe=_kill_first(victims))
    rows = read(suite_run.out)
    failed = [row for row in rows if row["status"] != "ok"]
    assert len(rows) == 2 and len(failed) == 1
    assert failed[0]["status"] == "failed" and "the Ray worker was lost" in failed[0]["message"]


def test_micro_on_ray_measures_per_machine_and_resumes(tmp_path, local_ray):
    from typer.testing import CliRunner

    from actbench.cli import app

    out = tmp_path / "m.csv"
    args = ["micro", "--executor", "ray", "--act", "relu,mish", "--size", "1024", "--pass", "fwd",
            "--device", "cpu", "--max-time", "0.01", "--no-energy", "--out", str(out)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    rows = read(out)
    assert sorted(row["activation"] for row in rows) == ["mish", "relu"]
    assert {row["host"] for row in rows} == {os.uname().nodename}
    assert all(float(row["median_s"]) > 0 for row in rows)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len(read(out)) == 2  # everything measured on this machine was skipped


# ------------------------------------------------------------------ the command, end to end
def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _command_line(process: psutil.Process) -> str:
    """'' for a process that has ended meanwhile."""
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return ""


def _still_running(processes: list[psutil.Process], within_s: float) -> list[psutil.Process]:
    """Those of `processes` still running (zombies count as ended) after waiting up to
    `within_s` for them to end: a busy machine is slow to reap Ray's processes."""
    def running(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + within_s
    left = [p for p in processes if running(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [p for p in left if running(p)]
    return left


def test_ctrl_c_on_ray_stops_its_local_ray_and_a_local_resume_gives_the_uninterrupted_rows(tmp_path):
    suite = {**TINY, "seeds": [0, 1], "train": {**TINY["train"], "epochs": 3}}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    out = tmp_path / "r.csv"
    command = [sys.executable, "-m", "actbench", "train", str(path), "--executor", "ray",
               "--workers", "2", "--threads", "1", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if rows_so_far(out):
            break
        time.sleep(0.05)
    started_by_actbench = _children(process.pid)
    assert any("raylet" in _command_line(p) for p in started_by_actbench)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "resume with:" in err and "--executor ray" in err
    assert not _still_running(started_by_actbench, within_s=15), "Ray left running"
    kept = read(out)
    assert 1 <= len(kept) < 4 and {row["status"] for row in kept} == {"ok"}
    # resumed by local workers: a report resumes whichever executor wrote it (and a second Ray
    # start would double the test's time)
    local = [arg if arg != "ray" else "local" for arg in command[:-2]]
    resumed = subprocess.run([*local, "--resume", str(out), "-q"], capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    reference = prepare(suite_from_dict(suite), tmp_path / "whole.csv")
    execute(reference, execution=Execution(executor="inline", threads=1))
    assert outcomes(out) == outcomes(reference.out) and len(outcomes(out)) == 4
    epochs = sorted((r["config_hash"], r["epoch"]) for r in read(reference.epochs_out))
    assert sorted((r["config_hash"], r["epoch"]) for r in read(out.with_suffix(".epochs.csv"))) \
        == epochs

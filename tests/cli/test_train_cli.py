"""`actbench train` end to end on synthetic data and MNIST-1D: reports, resume, failures."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from actbench.records.schema import train_columns, train_epoch_columns

from tests.waiting import rows_so_far, wait_for_a_row

SYNTHETIC = {
    "name": "tiny",
    "data": {"name": "synthetic", "shape": [1, 6, 6], "classes": 4, "train_size": 128,
             "test_size": 64},
    "model": {"name": "mlp", "depth": 1, "width": 16},
    "optim": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 2, "batch_size": 32, "device": "cpu"},
    "eval": {"noise": [0.5]},
    "activations": ["relu", "mish"],
    "seeds": [0, 1],
    "baseline": "relu",
}


def write_suite(tmp_path: Path, **changes) -> Path:
    suite = {**SYNTHETIC, **changes}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def read(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_synthetic_suite_writes_runs_epochs_and_a_summary(run_cli, tmp_path):
    suite, out = write_suite(tmp_path), tmp_path / "r.csv"
    result = run_cli("train", str(suite), "--out", str(out))
    assert result.exit_code == 0, result.output
    runs, epochs = read(out), read(tmp_path / "r.epochs.csv")
    assert len(runs) == 4 and len(epochs) == 8
    with open(out) as handle:
        assert next(csv.reader(handle)) == list(train_columns([], ["noise_0.5_acc", "noise_0.5_loss"]))
    with open(tmp_path / "r.epochs.csv") as handle:
        assert next(csv.reader(handle)) == list(train_epoch_columns([]))
    assert {r["status"] for r in runs} == {"ok"}
    assert all(r["kind"] == "train" and 0 <= float(r["final_test_acc"]) <= 1 for r in runs)
    assert all(float(r["noise_0.5_acc"]) >= 0 for r in runs)
    assert len({r["config_hash"] for r in runs}) == 4
    # the data are learnable: better than chance (25 %) after two epochs
    assert sum(float(r["final_test_acc"]) for r in runs) / 4 > 0.4
    assert "mean ± std" in result.output and "vs relu" in result.output
    assert f"actbench compare {out} {tmp_path / 'r.epochs.csv'}" in " ".join(result.output.split())
    assert (tmp_path / "r.json").exists()


def test_resume_on_a_finished_report_runs_nothing(run_cli, tmp_path):
    suite, out = write_suite(tmp_path), tmp_path / "r.csv"
    assert run_cli("train", str(suite), "--out", str(out), "-q").exit_code == 0
    before = out.read_text()
    result = run_cli("train", str(suite), "--resume", str(out))
    assert result.exit_code == 0
    assert "4 of 4 runs already done" in result.output
    assert out.read_text() == before


def test_sweep_keys_become_columns(run_cli, tmp_path):
    suite = write_suite(tmp_path, sweep={"model.width": [8, 16]}, seeds=[0], activations=["relu"])
    out = tmp_path / "r.csv"
    assert run_cli("train", str(suite), "--out", str(out), "-q").exit_code == 0
    assert sorted(r["model.width"] for r in read(out)) == ["16", "8"]


def test_divergence_is_recorded_and_the_suite_goes_on(run_cli, tmp_path):
    suite = write_suite(tmp_path, optim={"name": "sgd", "lr": 1e12}, seeds=[0])
    out = tmp_path / "r.csv"
    result = run_cli("train", str(suite), "--out", str(out))
    assert result.exit_code == 1
    runs = read(out)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"diverged"}
    assert "loss became" in runs[0]["message"]
    assert "did not finish ok" in result.output


def test_a_failing_run_is_recorded_with_its_message(run_cli, tmp_path):
    suite = write_suite(tmp_path, activations=["relu", "tests.micro.test_runner:Unsupported"],
                        seeds=[0], baseline=None)
    out = tmp_path / "r.csv"
    result = run_cli("train", str(suite), "--out", str(out))
    assert result.exit_code == 1
    status = {r["activation"]: (r["status"], r["message"]) for r in read(out)}
    assert status["relu"][0] == "ok"
    failed = status["tests.micro.test_runner:Unsupported"]
    assert failed[0] == "failed" and "no kernel for this dtype" in failed[1]


def test_same_seed_same_metrics(tmp_path):
    from actbench.train.executor import DataCache
    from actbench.train.loop import train_run
    from actbench.train.suite import load_suite

    suite = load_suite(write_suite(tmp_path, seeds=[3], activations=["acon_c"], baseline=None,
                                   model={"name": "mlp", "depth": 1, "width": 16, "dropout": 0.2}))
    run = suite.runs()[0]
    import torch

    splits = DataCache().get(run, torch.device("cpu"))
    first, second = train_run(run, splits), train_run(run, splits)
    assert first.status == "ok"
    assert [vars(e) | {"epoch_s": 0, "samples_per_s": 0} for e in first.epochs] == \
        [vars(e) | {"epoch_s": 0, "samples_per_s": 0} for e in second.epochs]


def test_a_run_failing_after_its_model_is_built_still_reports_its_parameters(tmp_path,
                                                                             monkeypatch):
    import torch

    from actbench.train import loop
    from actbench.train.executor import DataCache
    from actbench.train.suite import load_suite

    run = load_suite(write_suite(tmp_path, seeds=[0], activations=["relu"])).runs()[0]
    splits = DataCache().get(run, torch.device("cpu"))

    def broken_optimizer(*args, **kwargs):
        raise RuntimeError("no optimiser today")

    monkeypatch.setattr(loop, "build_optimizer", broken_optimizer)
    result = loop.train_run(run, splits)
    assert result.status == "failed" and "no optimiser today" in result.message
    # mlp, depth 1, width 16 on 1x6x6 inputs and 4 classes: 36*16+16 + 16*4+4
    assert result.params == 36 * 16 + 16 + 16 * 4 + 4


@pytest.mark.slow
def test_quick_suite_runs_on_mnist1d(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ACTBENCH_DATA", str(tmp_path / "data"))
    out = tmp_path / "q.csv"
    result = run_cli("train", "quick", "--seeds", "0", "--act", "relu", "--set", "train.epochs=1",
                     "--set", "data.num_samples=400", "--out", str(out))
    assert result.exit_code == 0, result.output
    runs = read(out)
    # rows arrive in the order runs finish (two workers)
    assert sorted(r["model.name"] for r in runs) == ["cnn1d", "mlp"]
    assert all(r["dataset"] == "mnist1d" and r["status"] == "ok" for r in runs)


def test_dry_run_lists_runs_and_says_where_data_goes(run_cli):
    result = run_cli("train", "suites/cifar10.yaml", "--dry-run")
    assert result.exit_code == 0
    assert "21 of 21 runs to do" in result.output
    assert "cifar-10-python.tar.gz" in result.output


def test_missing_data_without_dry_run_is_exit_2(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ACTBENCH_DATA", str(tmp_path / "empty"))
    result = run_cli("train", "suites/cifar10.yaml")
    assert result.exit_code == 2
    assert "error:" in result.output and "cifar-10-python.tar.gz" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_killed_suite_resumes_with_every_run_exactly_once(tmp_path):
    suite = write_suite(tmp_path, seeds=[0, 1, 2], activations=["relu", "silu"],
                        train={"epochs": 3, "batch_size": 8, "device": "cpu"})
    out = tmp_path / "r.csv"
    command = [sys.executable, "-m", "actbench", "train", str(suite), "--out", str(out), "-q"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    epochs_file = tmp_path / "r.epochs.csv"
    deadline = time.time() + 120
    # kill once a run has finished and the next one is part-way through its epochs
    while time.time() < deadline:
        if len(rows_so_far(out)) >= 1 and len(rows_so_far(epochs_file)) % 3 != 0:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(read(out))
    assert 1 <= done_before < 6
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    runs, epochs = read(out), read(epochs_file)
    assert len(runs) == 6 and len({r["config_hash"] for r in runs}) == 6
    per_run = {}
    for row in epochs:
        per_run.setdefault(row["config_hash"], []).append(int(row["epoch"]))
    assert all(sorted(e) == [1, 2, 3] for e in per_run.values()) and len(per_run) == 6


@pytest.mark.parametrize("args, message", [
    (["--seeds", "a,b"], "--seeds"),
    (["--set", "train.epochs=0"], "train.epochs"),
    (["--set", "nonsense"], "KEY=VALUE"),
    (["--act", "mihs"], "mish"),
    (["--device", "tpu"], "device"),
])
def test_bad_flags_exit_2(run_cli, tmp_path, args, message):
    result = run_cli("train", str(write_suite(tmp_path)), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


class FailsWhenAsked(__import__("torch").nn.Module):
    """ReLU that raises while ACTBENCH_TEST_FAIL is set: a failure that goes away on re-run."""

    def forward(self, x):
        if os.environ.get("ACTBENCH_TEST_FAIL"):
            raise RuntimeError("transient failure")
        return x.clamp_min(0)


def test_resume_runs_failed_runs_again_without_duplicating_them(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from actbench.cli import app

    suite = write_suite(tmp_path, activations=["relu", "tests.cli.test_train_cli:FailsWhenAsked"],
                        seeds=[0], baseline=None)
    out = tmp_path / "r.csv"
    runner = CliRunner()
    first = runner.invoke(app, ["train", str(suite), "--out", str(out), "-q"],
                          env={"ACTBENCH_TEST_FAIL": "1"})
    assert first.exit_code == 1
    assert sorted(r["status"] for r in read(out)) == ["failed", "ok"]
    monkeypatch.delenv("ACTBENCH_TEST_FAIL", raising=False)
    second = runner.invoke(app, ["train", str(suite), "--resume", str(out), "-q"])
    assert second.exit_code == 0, second.output
    runs = read(out)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"ok"}
    epochs = read(tmp_path / "r.epochs.csv")
    assert len(epochs) == 4  # 2 runs x 2 epochs, the failed attempt left none behind


def test_the_resume_hint_repeats_the_flags():
    from actbench.train.executor import resume_command

    line = resume_command("quick", ["train.epochs=2"], "0,1", ["mish,relu"], "cpu", Path("r.csv"))
    assert line == ("actbench train quick --set train.epochs=2 --seeds 0,1 --act mish,relu "
                    "--device cpu --resume r.csv")


def test_cuda_without_cuda_is_refused_before_training(run_cli, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = run_cli("train", str(write_suite(tmp_path)), "--device", "cuda")
    assert result.exit_code == 2 and "CUDA is not available" in result.output


def test_resuming_keeps_the_earlier_sidecar(run_cli, tmp_path):
    import json

    suite, out = write_suite(tmp_path, seeds=[0]), tmp_path / "r.csv"
    assert run_cli("train", str(suite), "--out", str(out), "-q").exit_code == 0
    assert run_cli("train", str(suite), "--resume", str(out), "-q").exit_code == 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["kind"] == "train" and len(sidecar["earlier_invocations"]) == 1
    assert sidecar["earlier_invocations"][0]["suite"]["name"] == "tiny"


def test_resume_of_a_missing_report_is_an_error(run_cli, tmp_path):
    result = run_cli("train", str(write_suite(tmp_path)), "--resume", str(tmp_path / "typo.csv"))
    assert result.exit_code == 2 and "no such report" in result.output


def test_an_unrelated_epochs_file_is_refused_and_left_alone(run_cli, tmp_path):
    epochs = tmp_path / "x.epochs.csv"
    epochs.write_text("a,b\n1,2\n3,4\n")
    result = run_cli("train", str(write_suite(tmp_path)), "--out", str(tmp_path / "x.csv"))
    assert result.exit_code == 2 and "different columns" in result.output
    assert epochs.read_text() == "a,b\n1,2\n3,4\n"
    assert not (tmp_path / "x.csv").exists()


def test_resuming_with_fewer_activations_keeps_the_others_rows(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from actbench.cli import app

    suite = write_suite(tmp_path, activations=["relu", "tests.cli.test_train_cli:FailsWhenAsked"],
                        seeds=[0], baseline=None)
    out = tmp_path / "r.csv"
    runner = CliRunner()
    runner.invoke(app, ["train", str(suite), "--out", str(out), "-q"], env={"ACTBENCH_TEST_FAIL": "1"})
    monkeypatch.delenv("ACTBENCH_TEST_FAIL", raising=False)
    result = runner.invoke(app, ["train", str(suite), "--resume", str(out), "--act", "relu", "-q"])
    assert result.exit_code == 0
    assert sorted(r["status"] for r in read(out)) == ["failed", "ok"]


def test_amp_uses_bfloat16_only_where_the_hardware_has_it(monkeypatch):
    import torch

    from actbench.train.loop import native_bf16

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    assert not native_bf16(torch.device("cuda"))  # V100: float16 with a GradScaler
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert native_bf16(torch.device("cuda"))


def test_a_data_set_that_fails_to_load_is_tried_once(tmp_path, monkeypatch):
    import torch

    from actbench.train import data
    from actbench.train.executor import DataCache
    from actbench.train.suite import load_suite

    calls = []

    def failing(*args, **kwargs):
        calls.append(args)
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "load_dataset", failing)
    cache = DataCache()
    for run in load_suite(write_suite(tmp_path)).runs():
        with pytest.raises(OSError, match="network unreachable"):
            cache.get(run, torch.device("cpu"))
    assert len(calls) == 1


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_with_the_resume_command(tmp_path):
    suite = write_suite(tmp_path, seeds=[0, 1, 2], activations=["relu", "silu"],
                        train={"epochs": 3, "batch_size": 8, "device": "cpu"})
    out = tmp_path / "r.csv"
    command = [sys.executable, "-m", "actbench", "train", str(suite), "--out", str(out),
               "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "300"})
    wait_for_a_row(out)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "resume with:" in stderr and "--workers 1" in stderr and "Traceback" not in stderr
    kept = read(out)
    assert 1 <= len(kept) < 6 and {row["status"] for row in kept} == {"ok"}

"""`actbench micro` and `actbench env` end to end at tiny sizes, bad inputs, interrupt and resume."""

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from actbench.records.schema import MICRO_COLUMNS

from tests.waiting import wait_for_a_row

TINY = ["--size", "256", "--max-time", "0.05", "--device", "cpu"]


def read(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_micro_writes_the_documented_columns_and_prints_tables(run_cli, tmp_path):
    out = tmp_path / "r.csv"
    result = run_cli("micro", "--act", "mish,relu", "--pass", "fwd", *TINY, "--out", str(out))
    assert result.exit_code == 0, result.output
    with open(out, newline="") as handle:
        assert next(csv.reader(handle)) == list(MICRO_COLUMNS)
    rows = read(out)
    assert {(r["activation"], r["pass"]) for r in rows} == {("mish", "fwd"), ("relu", "fwd")}
    assert all(r["kind"] == "micro" and r["schema_version"] == "1" for r in rows)
    assert "fwd · 256 · float32 · cpu" in result.output
    assert "x" in result.output and "report:" in result.output  # the ratio column, e.g. 1.52x
    sidecar = out.with_suffix(".json")
    assert '"environment"' in sidecar.read_text()


@pytest.mark.slow
def test_mish_impl_all_shows_saved_multiples_and_the_ratio_to_relu(run_cli, tmp_path):
    out = tmp_path / "r.csv"
    result = run_cli("micro", "--act", "mish", "--impl", "all", "--pass", "fwd", *TINY,
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    saved = {r["impl"]: float(r["saved_x_input"]) for r in read(out) if r["activation"] == "mish"}
    assert saved == {"native": 1.0, "formula": 2.0, "memeff": 1.0, "compiled": 1.0, "fast": 1.0}
    assert [r["impl"] for r in read(out) if r["activation"] == "relu"] == ["native"]
    relu_line = next(line for line in result.output.splitlines() if line.startswith("│ relu"))
    assert "1.00x" in relu_line


def test_a_report_of_another_kind_is_refused_and_its_sidecar_kept(run_cli, tmp_path):
    out = tmp_path / "other.csv"
    out.write_text("a,b\n1,2\n")
    out.with_suffix(".json").write_text('{"x": 1}')
    result = run_cli("micro", "--act", "relu", *TINY, "--out", str(out))
    assert result.exit_code == 2 and "different columns" in result.output
    assert out.with_suffix(".json").read_text() == '{"x": 1}'


def test_resuming_keeps_the_earlier_sidecar(run_cli, tmp_path):
    import json

    out = tmp_path / "r.csv"
    assert run_cli("micro", "--act", "relu", "--pass", "fwd", *TINY, "--out", str(out), "-q").exit_code == 0
    assert run_cli("micro", "--act", "silu", "--baseline", "silu", "--pass", "fwd", *TINY,
                   "--out", str(out), "-q").exit_code == 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert len(sidecar["earlier_invocations"]) == 1
    assert sidecar["earlier_invocations"][0]["kind"] == "micro"


def test_quiet_prints_only_the_path(run_cli, tmp_path):
    out = tmp_path / "q.csv"
    result = run_cli("micro", "--act", "relu", "--pass", "fwd", *TINY, "--out", str(out), "--quiet")
    assert result.exit_code == 0
    assert result.output.strip() == str(out)


def test_samples_file_holds_raw_samples(run_cli, tmp_path):
    out, samples = tmp_path / "r.csv", tmp_path / "s.csv"
    result = run_cli("micro", "--act", "relu", "--pass", "fwd", *TINY, "--out", str(out),
                     "--samples", str(samples), "-q")
    assert result.exit_code == 0
    rows = read(samples)
    assert len(rows) == int(read(out)[0]["samples"])
    assert all(float(r["seconds_per_call"]) > 0 for r in rows)


def test_rerun_on_the_same_report_resumes(run_cli, tmp_path):
    out = tmp_path / "r.csv"
    assert run_cli("micro", "--act", "relu", "--pass", "fwd", *TINY, "--out", str(out), "-q").exit_code == 0
    result = run_cli("micro", "--act", "relu,silu", "--pass", "fwd", *TINY, "--out", str(out))
    assert result.exit_code == 0
    assert "1 configuration(s) already measured" in result.output
    assert sorted(r["activation"] for r in read(out)) == ["relu", "silu"]


@pytest.mark.parametrize("args, message", [
    (["--device", "cuda"], "CUDA is not available"),
    (["--size", "0"], "size 0 must be a positive"),
    (["--size", "-3"], "must be a positive"),
    (["--shape", "16xx4"], "shape '16xx4' is malformed"),
    (["--dtype", "float8"], "unknown dtype 'float8'"),
    (["--act", "mihs"], "mish"),
    (["--impl", "turbo"], "unknown implementation 'turbo'"),
    (["--pass", "forward"], "unknown pass"),
    (["--baseline", "rleu"], "relu"),
    (["--out", "/proc/nope/r.csv"], "cannot"),
    (["--out", "report.txt"], "must end in .csv"),
    (["--act", "x * clamp(x, 0, 1"], "expression"),
    (["--out", "same.csv", "--samples", "same.csv"], "same file"),
])
def test_bad_inputs_exit_2_with_one_line(run_cli, args, message):
    result = run_cli("micro", "--act", "relu", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1


def test_env_prints_the_environment(run_cli):
    result = run_cli("env")
    assert result.exit_code == 0
    for key in ("actbench", "python", "torch", "cpu", "ram_bytes"):
        assert key in result.output
    result = run_cli("env", "--json")
    assert '"torch"' in result.output


@pytest.mark.slow
def test_killed_run_keeps_finished_rows_and_resumes(tmp_path):
    out = tmp_path / "r.csv"
    # groups (sizes) run one after another: the first group's rows land well before the end
    command = [sys.executable, "-m", "actbench", "micro", "--act", "relu,silu",
               "--pass", "fwd,bwd", "--size", "512,1024,2048", "--min-time", "0.2", "--max-time", "0.2",
               "--device", "cpu", "--out", str(out), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wait_for_a_row(out, poll_s=0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = read(out)
    assert 1 <= len(finished) < 12
    assert all(r["median_s"] for r in finished)  # every kept row is whole
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    rows = read(out)
    keys = [(r["activation"], r["pass"], r["shape"]) for r in rows]
    assert len(keys) == 12 and len(set(keys)) == 12


@pytest.mark.slow
def test_ctrl_c_exits_130_and_says_where_the_report_is(tmp_path):
    out = tmp_path / "r.csv"
    # eight groups of at least 0.5 s: seconds of work left when the first row lands, even when a
    # busy machine is slow to deliver the signal
    command = [sys.executable, "-m", "actbench", "micro", "--act", "relu,silu", "--pass", "fwd",
               "--size", "512,1024,2048,4096,8192,16384,32768,65536", "--min-time", "0.5",
               "--max-time", "0.5", "--device", "cpu", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_a_row(out, poll_s=0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert str(out) in stderr.replace("\n", "") and "resume" in stderr


def test_a_baseline_named_by_alias_still_gives_ratios(run_cli, tmp_path):
    result = run_cli("micro", "--act", "lrelu,mish", "--baseline", "leaky_relu", "--pass", "fwd",
                     *TINY, "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 0
    lrelu = next(line for line in result.output.splitlines() if line.startswith("│ lrelu"))
    assert "1.00x" in lrelu


def test_a_malformed_sidecar_does_not_stop_a_resume(run_cli, tmp_path):
    out = tmp_path / "r.csv"
    assert run_cli("micro", "--act", "relu", "--pass", "fwd", *TINY, "--out", str(out), "-q").exit_code == 0
    out.with_suffix(".json").write_text("[]")
    result = run_cli("micro", "--act", "silu", "--pass", "fwd", *TINY, "--out", str(out), "-q")
    assert result.exit_code == 0, result.output


def test_a_run_where_no_configuration_was_measured_exits_1(run_cli, tmp_path, monkeypatch):
    from actbench.micro import session

    def all_out_of_memory(run, on_progress=None):  # as a size too large for the device ends
        run.rows.extend({"status": "oom", "activation": name} for name in ("relu", "mish"))

    monkeypatch.setattr(session, "execute", all_out_of_memory)
    result = run_cli("micro", "--act", "mish", "--pass", "fwd", *TINY, "--out",
                     str(tmp_path / "r.csv"), "-q")
    assert result.exit_code == 1, result.output
    assert "no configuration was measured (oom x2)" in result.output
    monkeypatch.undo()
    ok = run_cli("micro", "--act", "mish", "--pass", "fwd", *TINY, "--out", str(tmp_path / "s.csv"), "-q")
    assert ok.exit_code == 0, ok.output

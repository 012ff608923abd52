"""Reports written by actbench before the records layer existed still resume and compare.

The files in fixtures/ were written by the earlier release with
`actbench train fixtures/tiny_suite.yaml --out fixtures/train-legacy.csv` and
`actbench micro --act relu,mish --size 1024 --pass fwd,fwdbwd --device cpu --max-time 0.01
--out fixtures/micro-legacy.csv --samples fixtures/micro-legacy.samples.csv`; they are never
regenerated, so a change to config hashes, columns or headers shows up here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actbench.cli import app
from actbench.records.writer import read_rows

FIXTURES = Path(__file__).parent / "fixtures"


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "240", "NO_COLOR": "1",
                                                    "TERM": "dumb"})


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    for path in FIXTURES.iterdir():
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_a_finished_legacy_train_report_resumes_with_nothing_left_to_run(legacy):
    report = legacy / "train-legacy.csv"
    before = report.read_bytes(), (legacy / "train-legacy.epochs.csv").read_bytes()
    dry = run("train", str(legacy / "tiny_suite.yaml"), "--resume", str(report), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "0 of 4 runs to do" in dry.output
    result = run("train", str(legacy / "tiny_suite.yaml"), "--resume", str(report), "-q")
    assert result.exit_code == 0, result.output
    assert (report.read_bytes(), (legacy / "train-legacy.epochs.csv").read_bytes()) == before


@pytest.mark.slow
def test_a_legacy_train_report_missing_a_run_runs_only_that_one(legacy):
    report = legacy / "train-legacy.csv"
    rows = read_rows(report)
    dropped = rows[-1]["config_hash"]
    lines = report.read_text().splitlines(keepends=True)
    report.write_text("".join(lines[:-1]))  # as if killed before the last run finished
    result = run("train", str(legacy / "tiny_suite.yaml"), "--resume", str(report), "-q")
    assert result.exit_code == 0, result.output
    after = read_rows(report)
    assert [row["config_hash"] for row in after] == [row["config_hash"] for row in rows]
    assert after[:-1] == rows[:-1]  # the finished runs' rows are untouched
    epochs = read_rows(legacy / "train-legacy.epochs.csv")
    assert sum(row["config_hash"] == dropped for row in epochs) == 2  # re-run once, not twice
    sidecar = json.loads((legacy / "train-legacy.json").read_text())
    assert sidecar["earlier_invocations"][0]["suite"]["name"] == "tiny-legacy"


def test_a_legacy_micro_report_resumes_with_every_configuration_skipped(legacy):
    report, samples = legacy / "micro-legacy.csv", legacy / "micro-legacy.samples.csv"
    before = report.read_bytes(), samples.read_bytes()
    result = run("micro", "--act", "relu,mish", "--size", "1024", "--pass", "fwd,fwdbwd",
                 "--device", "cpu", "--max-time", "0.01", "--out", str(report), "--samples",
                 str(samples))
    assert result.exit_code == 0, result.output
    assert "4 configuration(s) already measured" in result.output
    assert (report.read_bytes(), samples.read_bytes()) == before


def test_a_legacy_micro_report_missing_a_row_measures_it_in_the_old_layout(legacy):
    """Columns added since (the busy-machine ones) are left out of a report that lacks them."""
    report = legacy / "micro-legacy.csv"
    header = report.read_text().splitlines()[0]
    lines = report.read_text().splitlines(keepends=True)
    report.write_text("".join(lines[:-1]))
    result = run("micro", "--act", "relu,mish", "--size", "1024", "--pass", "fwd,fwdbwd",
                 "--device", "cpu", "--max-time", "0.01", "--out", str(report))
    assert result.exit_code == 0, result.output
    assert report.read_text().splitlines()[0] == header and "other_cpu_pct" not in header
    assert len(read_rows(report)) == 4


def test_legacy_reports_compare(legacy):
    result = run("compare", str(legacy), "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    micro = payload["micro"]["rows"]
    assert {row["activation"] for row in micro} == {"relu", "mish"}
    assert len(micro) == 4 and all(row["value"] > 0 for row in micro)
    train = payload["train"]["rows"]  # each activation at each sweep point
    assert sorted((row["model.width"], row["activation"]) for row in train) == [
        ("16", "mish"), ("16", "relu"), ("8", "mish"), ("8", "relu")]
    assert payload["noise"]["rows"]

"""One writer per report: a second command on a report being written is refused, clearly."""

from __future__ import annotations

import os

import pytest
import yaml
from typer.testing import CliRunner

from actbench.cli import app
from actbench.errors import ActbenchError
from actbench.records.lock import ReportLock, lock_path


def test_a_held_report_is_refused_with_its_owner_and_free_again_after(tmp_path):
    report = tmp_path / "r.csv"
    with ReportLock(report):
        assert lock_path(report).read_text().startswith(f"pid {os.getpid()} on ")
        with pytest.raises(ActbenchError, match=r"r\.csv is being written by another actbench "
                                                r"command \(pid \d+ on .+\); wait for it"):
            ReportLock(report).__enter__()
    with ReportLock(report):  # released on exit
        pass


def _tiny_suite(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "data": {"name": "synthetic", "shape": [1, 4, 4], "classes": 3, "train_size": 32,
                 "test_size": 16},
        "model": {"name": "mlp", "depth": 1, "width": 8},
        "train": {"epochs": 1, "batch_size": 16, "device": "cpu"},
        "activations": ["relu"], "seeds": [0]}))
    return path


@pytest.mark.parametrize("command", ["train", "micro"])
def test_a_second_command_on_a_report_being_written_exits_2_and_changes_nothing(tmp_path, command):
    out = tmp_path / "r.csv"
    args = (["train", str(_tiny_suite(tmp_path)), "--executor", "inline"] if command == "train"
            else ["micro", "--act", "relu", "--size", "64", "--pass", "fwd", "--max-time", "0.01",
                  "--device", "cpu"])
    with ReportLock(out):
        result = CliRunner().invoke(app, [*args, "--out", str(out), "-q"])
    assert result.exit_code == 2, result.output
    assert "is being written by another actbench command" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or out.stat().st_size == 0
    again = CliRunner().invoke(app, [*args, "--out", str(out), "-q"])
    assert again.exit_code == 0, again.output

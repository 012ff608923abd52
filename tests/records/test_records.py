"""The records layer: rows, paths, and the crash-safe writer that every report goes through."""

from __future__ import annotations

import json
import re

import pytest

from actbench.errors import ActbenchError
from actbench.records.clock import utc_now, utc_stamp
from actbench.records.paths import (check_writable, epochs_path,
                                    file_name_part, sidecar_path, stamped_report_path)
from actbench.records.rows import blank_row, new_row
from actbench.records.schema import (MICRO_COLUMNS, SCHEMA_VERSION, noise_columns, train_columns,
                                     train_epoch_columns)
from actbench.records.writer import (ReportWriter, check_header, completed_keys, filter_rows,
                                     read_header, read_rows, write_sidecar)


def test_new_row_fills_kind_version_time_and_every_column():
    row = new_row("micro", None, {"activation": "mish"}, impl="fast", median_s=1.5e-6)
    assert list(row) == list(MICRO_COLUMNS)
    assert row["kind"] == "micro" and row["schema_version"] == SCHEMA_VERSION
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", row["timestamp_utc"])
    assert (row["activation"], row["impl"], row["median_s"]) == ("mish", "fast", 1.5e-6)
    assert row["host"] == ""  # untouched columns stay empty, never missing


def test_new_row_lays_later_parts_over_earlier_ones():
    columns = train_epoch_columns([])
    row = new_row("train_epoch", columns, {"epoch": 1, "lr": 0.1}, {"lr": 0.05}, epoch=2)
    assert (row["epoch"], row["lr"]) == (2, 0.05)
    assert row["kind"] == "train_epoch"


def test_new_row_refuses_a_name_outside_the_columns():
    with pytest.raises(KeyError, match="not_a_column"):
        new_row("micro", None, not_a_column=1)


def test_blank_row_has_no_timestamp():
    assert blank_row("micro")["timestamp_utc"] == ""


def test_train_columns_put_sweep_and_noise_where_the_format_says():
    columns = train_columns(["model.depth"], noise_columns([0.5, 1.0]))
    assert columns[:3] == ("kind", "schema_version", "timestamp_utc")
    assert columns.index("model.depth") == columns.index("seed") + 1
    assert columns[-7:-5] == ("noise_1_acc", "noise_1_loss")
    assert noise_columns([0.25]) == ["noise_0.25_acc", "noise_0.25_loss"]


def test_paths():
    path = stamped_report_path("train", "my suite/v2", folder="out")
    assert re.fullmatch(r"out/train-my-suite-v2-\d{8}T\d{6}Z\.csv", path.as_posix())
    assert file_name_part("a b:c") == "a-b-c"
    assert file_name_part("cpu+cuda0") == "cpu+cuda0"  # micro joins its devices with +
    assert epochs_path(path).name.endswith(".epochs.csv")
    assert epochs_path(path).parent == path.parent
    assert sidecar_path(path).suffix == ".json"
    assert re.fullmatch(r"\d{8}T\d{6}Z", utc_stamp())
    assert utc_now().endswith("+00:00")


def test_check_writable_refuses_folders_and_other_suffixes(tmp_path):
    with pytest.raises(ActbenchError, match="is a directory"):
        check_writable(tmp_path)
    with pytest.raises(ActbenchError, match="must end in .csv"):
        check_writable(tmp_path / "report.txt")
    target = tmp_path / "new" / "report.csv"
    check_writable(target)
    assert not target.parent.exists()  # checked, nothing left behind (the writer creates it)


def test_writer_appends_and_resumes_with_the_same_columns(tmp_path):
    path = tmp_path / "r.csv"
    with ReportWriter(path, ("a", "b")) as writer:
        writer.write({"a": 1, "b": float("inf")})
        assert read_rows(path) == [{"a": "1", "b": "inf"}]  # on disk as soon as write returns
    with ReportWriter(path, ("a", "b")) as writer:
        writer.write_many([{"a": True, "b": None}, {"a": float("nan"), "b": 2}])
    assert read_rows(path) == [{"a": "1", "b": "inf"}, {"a": "true", "b": ""},
                               {"a": "nan", "b": "2"}]
    assert completed_keys(path, ("a",)) == {("1",), ("true",), ("nan",)}
    with pytest.raises(ActbenchError, match="different columns"):
        ReportWriter(path, ("a", "c"))
    with pytest.raises(ActbenchError, match="different columns"):
        check_header(path, ("b", "a"))


def test_a_half_written_last_line_is_dropped_on_read_and_on_resume(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n3,")  # killed mid-row
    assert read_rows(path) == [{"a": "1", "b": "2"}]
    with ReportWriter(path, ("a", "b")) as writer:
        writer.write({"a": 5, "b": 6})
    assert path.read_text() == "a,b\n1,2\n5,6\n"


def test_filter_rows_rewrites_atomically(tmp_path):
    path = tmp_path / "r.csv"
    with ReportWriter(path, ("a",)) as writer:
        writer.write_many({"a": i} for i in range(4))
    filter_rows(path, lambda row: int(row["a"]) % 2 == 0)
    assert [row["a"] for row in read_rows(path)] == ["0", "2"]
    assert read_header(path) == ["a"]
    assert not list(tmp_path.glob("*.tmp"))


def test_sidecar_keeps_earlier_invocations_when_resumed(tmp_path):
    report = tmp_path / "r.csv"
    write_sidecar(report, {"run": 1})
    write_sidecar(report, {"run": 2}, resumed=True)
    write_sidecar(report, {"run": 3}, resumed=True)
    content = json.loads(sidecar_path(report).read_text())
    assert content["run"] == 3
    assert [item["run"] for item in content["earlier_invocations"]] == [1, 2]
    write_sidecar(report, {"run": 4})  # a fresh report forgets them
    assert json.loads(sidecar_path(report).read_text())["earlier_invocations"] == []


# ------------------------------------------------------------------ a disk that fills up
def _disk_fills_after(monkeypatch, syncs: int):
    """Every fsync after the first `syncs` fails as a full disk does."""
    import errno

    from actbench.records import writer

    real, calls = writer.ReportWriter._sync, []

    def sync(self):
        calls.append(self.path)
        if len(calls) > syncs:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self)

    monkeypatch.setattr(writer.ReportWriter, "_sync", sync)


def test_a_full_disk_stops_train_with_the_resume_command_and_no_traceback(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from actbench.cli import app
    from tests.cli.test_train_cli import write_suite

    _disk_fills_after(monkeypatch, syncs=2)  # the two headers, then nothing
    folder = tmp_path / ("a-long-folder-name-" * 8)  # the message runs past 160 columns
    folder.mkdir()
    out = folder / "r.csv"
    result = CliRunner().invoke(app, ["train", str(write_suite(tmp_path)), "--executor", "inline",
                                      "--out", str(out)])
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert line.startswith("error: cannot write to") and "No space left on device" in line
    assert "resume with: actbench train" in line and str(out) in line  # one line, not wrapped
    assert "Traceback" not in result.output
    assert not list(folder.glob("*.tmp"))


def test_a_full_disk_mid_micro_is_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from actbench.cli import app

    _disk_fills_after(monkeypatch, syncs=1)  # the header, then nothing
    result = CliRunner().invoke(app, ["micro", "--act", "relu,mish", "--size", "256", "--pass", "fwd",
                                      "--max-time", "0.01", "--device", "cpu", "--out",
                                      str(tmp_path / "m.csv")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0]
    assert "Traceback" not in result.output


def test_a_sidecar_the_disk_refuses_leaves_no_temporary_file(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    from actbench.errors import ReportWriteError
    from actbench.records.writer import write_sidecar

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(ReportWriteError, match="No space left on device"):
        write_sidecar(tmp_path / "r.csv", {"kind": "micro"})
    assert list(tmp_path.iterdir()) == []


def test_a_disk_full_before_trains_first_row_says_no_run_finished_and_leaves_no_empty_report(
        tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from actbench.cli import app
    from tests.cli.test_train_cli import write_suite

    _disk_fills_after(monkeypatch, syncs=0)  # not even a header
    folder = tmp_path / ("a-long-folder-name-" * 8)
    folder.mkdir()
    out = folder / "r.csv"
    result = CliRunner().invoke(app, ["train", str(write_suite(tmp_path)), "--executor", "inline",
                                      "--out", str(out)])
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "No space left on device" in line and "no run finished" in line
    assert "finished runs are in" not in result.output and "Traceback" not in result.output
    assert not out.exists() and not out.with_suffix(".epochs.csv").exists()


def test_a_disk_full_before_micros_header_is_one_line_and_leaves_no_empty_report(tmp_path,
                                                                              monkeypatch):
    from typer.testing import CliRunner

    from actbench.cli import app

    _disk_fills_after(monkeypatch, syncs=0)
    out = tmp_path / "m.csv"
    result = CliRunner().invoke(app, ["micro", "--act", "relu", "--size", "256", "--pass", "fwd",
                                      "--max-time", "0.01", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0], result.output
    assert "Traceback" not in result.output and not out.exists()


def test_a_lock_file_the_full_disk_refuses_to_fill_still_locks(tmp_path, monkeypatch):
    import builtins
    import errno

    from actbench.errors import ActbenchError
    from actbench.records.lock import ReportLock

    real_open = builtins.open

    class RefusingFlush:
        """A text file whose writes the disk refuses (as flush and close do on a full disk)."""

        def __init__(self, handle):
            self._handle = handle

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self._handle.close()
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk_open(path, *args, **kwargs):
        handle = real_open(path, *args, **kwargs)
        return RefusingFlush(handle) if str(path).endswith(".lock") else handle

    report = tmp_path / "r.csv"
    with ReportLock(report):
        monkeypatch.setattr(builtins, "open", full_disk_open)
        with ReportLock(tmp_path / "s.csv"):  # the full disk: still a lock, no error
            monkeypatch.undo()
            with pytest.raises(ActbenchError, match="being written by another"):
                with ReportLock(tmp_path / "s.csv"):
                    pass
        with pytest.raises(ActbenchError, match="being written by another"):
            with ReportLock(report):
                pass

"""The exporters: one function per format, the format from -o's suffix, the unknown-format error."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from actbench.compare.run import check_gates, compare_reports
from actbench.errors import ActbenchError
from actbench.records.writer import write_sidecar
from actbench.report.compare_output import compare_output
from actbench.report.export import (EXPORTERS, SUFFIX_FORMATS, export, output_format,
                                    write_export)
from tests.compare.factories import micro_row, train_row, write_micro, write_train


@pytest.fixture
def comparison(tmp_path):
    micro = write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3)])
    train = write_train(tmp_path / "t.csv", [train_row(act, seed, acc + 0.01 * seed)
                                             for act, acc in (("relu", 0.8), ("mish", 0.82))
                                             for seed in range(3)])
    return compare_reports([str(micro), str(train)])


def test_every_format_has_an_exporter():
    assert list(EXPORTERS) == ["table", "markdown", "csv", "json"]
    assert all(callable(exporter) for exporter in EXPORTERS.values())
    assert set(SUFFIX_FORMATS.values()) <= set(EXPORTERS)


@pytest.mark.parametrize("fmt, out, expected", [
    (None, None, "table"), (None, "x.md", "markdown"), (None, "x.markdown", "markdown"),
    (None, "x.CSV", "csv"), (None, "dir/x.json", "json"), (None, "x.txt", "table"),
    ("markdown", "x.json", "markdown"), ("csv", None, "csv")])
def test_the_format_is_asked_for_or_read_from_the_suffix(fmt, out, expected):
    assert output_format(fmt, Path(out) if out else None) == expected


def test_an_unknown_format_names_the_known_ones():
    with pytest.raises(ActbenchError) as error:
        output_format("html", Path("x.html"))
    assert str(error.value) == "--format 'html' is unknown; expected one of table, markdown, csv, json"


def test_each_exporter_returns_its_format(comparison):
    gates = check_gates(comparison, ["mish.fwd <= 1.5 * relu.fwd"])
    table = export("table", comparison, gates)
    assert "vs relu" in table and "3.00x" in table and "\x1b[" not in table
    markdown = export("markdown", comparison, gates)
    assert "| activation |" in markdown and "- FAILED: mish.fwd &lt;= 1.5 * relu.fwd" in markdown
    rows = list(csv.DictReader(io.StringIO(export("csv", comparison, gates))))
    assert {row["section"] for row in rows} == {"micro", "train"}
    document = json.loads(export("json", comparison, gates))
    assert document["gates"][0]["passed"] is False and document["gates"][0]["checked"] == 1
    assert {"micro", "train"} <= set(document)


def test_the_table_file_starts_with_the_warnings(comparison):
    comparison.warnings[:] = ["a difference"]
    assert export("table", comparison).startswith("warning: a difference\n")


def test_write_export_refuses_a_folder_and_creates_parents(tmp_path):
    with pytest.raises(ActbenchError, match="is a folder"):
        write_export(tmp_path, "text")
    write_export(tmp_path / "new" / "out.md", "text")
    assert (tmp_path / "new" / "out.md").read_text() == "text"


def test_output_comes_in_order_warnings_export_verdicts(tmp_path):
    micro = write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3)])
    other = write_micro(tmp_path / "n.csv", [micro_row("relu", 1e-3, cpu="Other CPU")])
    for report in (micro, other):  # as actbench writes them: a sidecar beside each
        write_sidecar(report, {"kind": "micro"})
    messages = list(compare_output([str(micro), str(other)], fmt="csv",
                                   gates=["mish.fwd <= 1.5 * relu.fwd"]))
    assert messages[0].line.startswith("warning: reports differ in CPU")
    assert messages[1].text.startswith("section,")
    assert messages[2].line.startswith("gate FAILED: mish.fwd <= 1.5 * relu.fwd") and messages[2].failed
    assert not any(message.failed for message in messages[3:])


def test_a_bad_format_fails_before_any_output(tmp_path):
    micro = write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3)])
    messages = compare_output([str(micro)], fmt="xml")
    with pytest.raises(ActbenchError, match="--format 'xml' is unknown"):
        next(messages)

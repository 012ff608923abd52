"""docs/report-format.md and records/schema.py must name the same columns, so neither drifts.

Each column table in the doc is marked with `<!-- columns: KIND -->`; its first cells, in order,
must be exactly the columns that kind's file has. The train tables document the per-suite columns
with placeholders (`<sweep key>`, `noise_<sigma>_acc`), which are expanded here through the same
functions the writer uses.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from actbench.records.schema import (ENV_COLUMNS, MICRO_COLUMNS, MICRO_SAMPLE_COLUMNS,
                                    MODEL_COLUMNS, train_columns, train_epoch_columns)
from actbench.records.schema import noise_columns

DOC = Path(__file__).resolve().parents[2] / "docs" / "report-format.md"
MARKER = re.compile(r"^<!--\s*columns:\s*(\w+)\s*-->\s*$")
FIRST_CELL = re.compile(r"^\|\s*`([^`]+)`\s*\|")

SWEEP_PLACEHOLDER, SWEEP_EXAMPLE = "<sweep key>", "model.depth"
SIGMA_PLACEHOLDER, SIGMA_EXAMPLE = "<sigma>", 0.5
NOISE_EXAMPLE = noise_columns([SIGMA_EXAMPLE])  # noise_0.5_acc, noise_0.5_loss

EXPECTED = {
    "micro": MICRO_COLUMNS,
    "micro_samples": MICRO_SAMPLE_COLUMNS,
    "model": MODEL_COLUMNS,
    "train": train_columns([SWEEP_EXAMPLE], NOISE_EXAMPLE),
    "train_epoch": train_epoch_columns([SWEEP_EXAMPLE]),
}


def column_tables(text: str) -> dict[str, list[str]]:
    """KIND -> the backticked first cells of the table after its marker, in order."""
    tables: dict[str, list[str]] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines):
        match = MARKER.match(line.strip())
        if not match:
            continue
        kind = match.group(1)
        assert kind not in tables, f"two column tables marked {kind}"
        header = lines[number + 1].strip()
        assert header.startswith("| column |"), f"the marker for {kind} is not followed by a table"
        names: list[str] = []
        for row in lines[number + 3:]:  # after the header and the |---| line
            if not row.startswith("|"):
                break
            cell = FIRST_CELL.match(row)
            assert cell, f"{kind}: a row whose first cell is not a `column`: {row}"
            names.append(cell.group(1))
        tables[kind] = names
    return tables


def expand(name: str) -> str:
    """A documented name with its placeholder replaced by the example value the schema gets."""
    if name == SWEEP_PLACEHOLDER:
        return SWEEP_EXAMPLE
    return name.replace(SIGMA_PLACEHOLDER, f"{SIGMA_EXAMPLE:g}")


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tables(doc_text: str) -> dict[str, list[str]]:
    return column_tables(doc_text)


def test_the_doc_has_one_column_table_per_report_kind(tables):
    assert set(tables) == set(EXPECTED)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_table_lists_the_kinds_columns_in_file_order(tables, kind):
    documented = [expand(name) for name in tables[kind]]
    assert len(documented) == len(set(documented)), f"{kind}: a column is documented twice"
    missing = [column for column in EXPECTED[kind] if column not in documented]
    unknown = [column for column in documented if column not in EXPECTED[kind]]
    assert not missing, f"{kind}: columns the doc does not describe: {missing}"
    assert not unknown, f"{kind}: documented columns the schema does not have: {unknown}"
    assert documented == list(EXPECTED[kind])


def test_every_fixed_schema_column_appears_as_a_backticked_table_cell(doc_text):
    fixed = {*MICRO_COLUMNS, *MICRO_SAMPLE_COLUMNS, *train_columns([], []),
             *train_epoch_columns([]), *ENV_COLUMNS}
    absent = sorted(column for column in fixed if f"| `{column}` |" not in doc_text)
    assert not absent


def test_the_per_suite_columns_are_documented_by_placeholder(tables):
    # the run table documents both noise columns and the sweep keys; the epoch table the sweep keys
    assert {"noise_<sigma>_acc", "noise_<sigma>_loss", SWEEP_PLACEHOLDER} <= set(tables["train"])
    assert SWEEP_PLACEHOLDER in tables["train_epoch"]
    assert not any("noise" in name for name in tables["train_epoch"])


def test_the_parser_rejects_drift_both_ways():
    """The check above must be able to fail: a missing and an invented column are both seen."""
    text = ("<!-- columns: micro_samples -->\n| column | type | meaning |\n|---|---|---|\n"
            + "".join(f"| `{name}` | x | y |\n" for name in MICRO_SAMPLE_COLUMNS[:-1])
            + "| `made_up_s` | x | y |\n\nafter the table\n")
    documented = column_tables(text)["micro_samples"]
    assert MICRO_SAMPLE_COLUMNS[-1] not in documented
    assert "made_up_s" in documented and len(documented) == len(MICRO_SAMPLE_COLUMNS)

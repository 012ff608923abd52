"""compare on language runs: perplexity, bits per byte and loss are lower-is-better everywhere (the
direction, the test's sign, rank, highlighted best, gates, figure), checked on reports built with
known numbers; and reports without the language columns still compare beside ones with them."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from tests.compare.factories import train_row, write_train

from actbench.cli import app
from actbench.compare.metrics import higher_is_better
from actbench.compare.run import check_gates, compare_reports
from actbench.records.schema import train_columns
from actbench.records.writer import ReportWriter
from actbench.report import compare_plots
from actbench.report.compare_tables import train_sections

LEGACY = Path(__file__).resolve().parents[1] / "records" / "fixtures"
# perplexities by seed 0..4: swiglu lower than gelu at every seed, by 0.8 to 1.1
GELU = [6.0, 6.2, 5.9, 6.1, 6.3]
SWIGLU = [5.1, 5.4, 5.0, 5.3, 5.2]


def language_row(activation: str, seed: int, perplexity: float, bytes_: bool = True) -> dict:
    loss = math.log(perplexity)
    return train_row(activation, seed, 0.4, dataset="text", model="gpt", final_test_loss=loss,
                     final_test_perplexity=perplexity,
                     final_test_bits_per_byte=loss / math.log(2) if bytes_ else "")


def two_reports(tmp_path: Path) -> list[str]:
    """Each activation's runs in a report of its own, as two invocations would write them."""
    gelu = write_train(tmp_path / "gelu.csv", [language_row("gelu", s, v) for s, v in enumerate(GELU)])
    swiglu = write_train(tmp_path / "swiglu.csv",
                         [language_row("swiglu", s, v) for s, v in enumerate(SWIGLU)])
    return [str(gelu), str(swiglu)]


def swiglu_row(comparison):
    table = comparison.train.table
    return table[table["activation"] == "swiglu"].iloc[0]


def test_language_metrics_are_lower_is_better_and_accuracies_higher():
    for metric in ("final_test_perplexity", "final_test_bits_per_byte", "final_test_loss",
                   "test_loss", "noise_0.5_loss", "PERPLEXITY"):
        assert not higher_is_better(metric), metric
    for metric in ("final_test_acc", "best_test_acc", "samples_per_s", "noise_0.5_acc"):
        assert higher_is_better(metric), metric


@pytest.mark.parametrize("metric, values", [
    ("final_test_perplexity", (GELU, SWIGLU)),
    ("final_test_bits_per_byte", ([math.log2(v) for v in GELU], [math.log2(v) for v in SWIGLU])),
    ("final_test_loss", ([math.log(v) for v in GELU], [math.log(v) for v in SWIGLU])),
])
def test_two_reports_compare_with_the_lower_value_best(tmp_path, metric, values):
    gelu, swiglu = values
    comparison = compare_reports(two_reports(tmp_path), metric=metric, baseline="gelu")
    train = comparison.train
    assert train.higher_is_better is False
    assert train.notes[0].startswith(f"{metric}: lower is better")
    row = swiglu_row(comparison)
    reference = sps.ttest_rel(swiglu, gelu)  # paired on the seeds both ran
    interval = reference.confidence_interval(0.95)
    assert row["test"] == "paired t"
    assert row["diff"] == pytest.approx(np.mean(swiglu) - np.mean(gelu)) and row["diff"] < 0
    assert row["p_value"] == pytest.approx(reference.pvalue) and row["significant"]
    assert (row["diff_ci_low"], row["diff_ci_high"]) == (pytest.approx(interval.low),
                                                         pytest.approx(interval.high))
    assert row["diff_ci_high"] < 0  # surely lower: surely better
    assert row["cohens_d"] < 0 and row["rank"] == 1
    (section,) = train_sections(train)
    assert section.title.endswith("(lower is better)")
    best = {position for position, column in section.highlight}
    assert [section.table["activation"][p] for p in best] == ["swiglu"]


def test_gates_read_language_metrics_as_they_are(tmp_path):
    comparison = compare_reports(two_reports(tmp_path), metric="final_test_perplexity",
                                 baseline="gelu")
    held, also_held, broken = check_gates(comparison, [
        "swiglu.final_test_perplexity < gelu.final_test_perplexity",
        "ci_high(swiglu.diff) < 0",  # surely below the baseline
        "ci_low(swiglu.final_test_perplexity) > gelu.final_test_perplexity"])
    assert held.passed and also_held.passed and held.checked == 1
    assert not broken.passed


def test_the_figure_puts_the_lowest_first_and_says_lower_is_better(tmp_path, monkeypatch):
    comparison = compare_reports(two_reports(tmp_path), metric="final_test_bits_per_byte",
                                 baseline="gelu")
    drawn = {}

    def keep(fig, output, dpi):
        drawn["fig"] = fig
        return output

    monkeypatch.setattr(compare_plots, "_save", keep)
    compare_plots.plot_train(comparison.train, comparison.reports.train, tmp_path / "f.png", dpi=40)
    fig = drawn["fig"]
    assert "lower is better" in fig.get_suptitle()
    (axes,) = [ax for ax in fig.axes if ax.get_visible() and ax.get_xticklabels()]
    ticks = [label.get_text() for label in axes.get_xticklabels()]
    assert ticks[0].startswith("swiglu") and ticks[1].startswith("gelu")


def test_the_cli_json_says_the_direction_and_accuracy_tables_name_the_loss_metrics(tmp_path):
    runner = CliRunner()
    env = {"COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"}
    result = runner.invoke(app, ["compare", *two_reports(tmp_path), "--metric",
                                 "final_test_perplexity", "--baseline", "gelu", "--format", "json"],
                           env=env)
    assert result.exit_code == 0, result.output
    train = json.loads(result.stdout)["train"]
    assert train["higher_is_better"] is False and train["metric"] == "final_test_perplexity"
    by_accuracy = compare_reports(two_reports(tmp_path), baseline="gelu")
    assert by_accuracy.train.higher_is_better is True
    assert any("--metric final_test_bits_per_byte / final_test_perplexity / final_test_loss" in note
               for note in by_accuracy.train.notes)


def test_reports_without_the_language_columns_compare_beside_ones_with_them(tmp_path):
    """The release's fixtures (no warmup_s either) and a report of the layout before the language
    columns compare with a language report; by perplexity their runs are left out, saying why."""
    for path in LEGACY.glob("train-legacy*"):
        shutil.copy(path, tmp_path / path.name)
    older = train_columns([], [], layout=1)
    with ReportWriter(tmp_path / "older.csv", older) as writer:
        writer.write_many([{k: v for k, v in train_row(a, s, acc).items() if k in older}
                           for a, s, acc in (("relu", 0, 0.8), ("relu", 1, 0.82),
                                             ("mish", 0, 0.85), ("mish", 1, 0.86))])
    reports = [str(tmp_path / "train-legacy.csv"), str(tmp_path / "older.csv"),
               *two_reports(tmp_path)]
    by_accuracy = compare_reports(reports)
    assert {"relu", "mish", "gelu", "swiglu"} <= set(by_accuracy.train.table["activation"])
    by_perplexity = compare_reports(reports, metric="final_test_perplexity", baseline="gelu")
    table = by_perplexity.train.table
    compared = table[table["n"] > 0]
    assert set(compared["activation"]) == {"gelu", "swiglu"}
    assert any(note.startswith("runs left out:") and "without a finite final_test_perplexity"
               in note for note in by_perplexity.train.notes)

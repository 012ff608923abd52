"""Model reports compared with the micro rules: ratios to relu within a model, batch size, mode
and precision, with intervals from the medians' intervals; figures of throughput by batch."""

from __future__ import annotations

import pytest

from actbench import stats
from actbench.compare.run import compare_reports
from actbench.records.rows import blank_row
from actbench.records.schema import MODEL_COLUMNS
from actbench.records.writer import ReportWriter
from actbench.report.compare_plots import write_figures

from .factories import ENV, micro_row, write_micro


def model_row(activation: str, median: float, *, batch: int = 32, mode: str = "train",
              model: str = "resnet20", ci: float = 0.02, amp: bool = False, **extra) -> dict:
    row = blank_row("model")
    row.update(ENV)
    row.update(model=model, activation=activation, impl="native", device="cpu", dtype="float32",
               amp="true" if amp else "false", batch_size=batch, mode=mode, channels_last="false",
               compile="false", input_shape=f"{batch}x3x32x32", status="ok", flags="", samples=8,
               median_s=median, ci_low_s=median * (1 - ci), ci_high_s=median * (1 + ci),
               samples_per_s=batch / median, samples_per_s_ci_low=batch / (median * (1 + ci)),
               samples_per_s_ci_high=batch / (median * (1 - ci)))
    row.update(extra)
    return row


def write_model(path, rows):
    with ReportWriter(path, MODEL_COLUMNS) as writer:
        writer.write_many(rows)
    return path


ROWS = [model_row("relu", 0.100), model_row("mish", 0.130, ci=0.05),
        model_row("relu", 0.300, batch=128), model_row("mish", 0.450, batch=128),
        model_row("relu", 0.040, mode="infer"), model_row("mish", 0.048, mode="infer"),
        model_row("relu", 0.500, model="resnet56"), model_row("mish", 0.600, model="resnet56")]


def test_ratios_to_relu_stay_within_one_model_batch_and_mode(tmp_path):
    report = write_model(tmp_path / "m.csv", ROWS)
    table = compare_reports([str(report)]).micro.table
    mish = table[table["activation"] == "mish"].set_index(["shape", "pass"])
    expected = {("batch 32 · 3x32x32", "train · resnet20"): (0.130, 0.05, 0.100),
                ("batch 128 · 3x32x32", "train · resnet20"): (0.450, 0.02, 0.300),
                ("batch 32 · 3x32x32", "infer · resnet20"): (0.048, 0.02, 0.040),
                ("batch 32 · 3x32x32", "train · resnet56"): (0.600, 0.02, 0.500)}
    assert len(mish) == len(expected)
    for key, (median, ci, relu) in expected.items():
        ratio, low, high = stats.ratio_ci_from_intervals(median, median * (1 - ci), median * (1 + ci),
                                                         relu, relu * 0.98, relu * 1.02)
        row = mish.loc[key]
        assert row["ratio"] == pytest.approx(median / relu) == pytest.approx(ratio)
        assert (row["ratio_low"], row["ratio_high"]) == pytest.approx((low, high))
        assert low < ratio < high


def test_amp_and_channels_last_rows_are_groups_of_their_own(tmp_path):
    rows = [model_row("relu", 0.1), model_row("mish", 0.2), model_row("relu", 0.05, amp=True),
            model_row("mish", 0.06, amp=True),
            model_row("relu", 0.08, channels_last="true"), model_row("mish", 0.12, channels_last="true")]
    table = compare_reports([str(write_model(tmp_path / "m.csv", rows))]).micro.table
    mish = table[table["activation"] == "mish"]
    assert sorted(mish["ratio"].round(6)) == sorted(round(r, 6) for r in (2.0, 1.2, 1.5))
    assert {"float32", "float32+amp"} == set(table["dtype"])
    assert "batch 32 · 3x32x32 · channels-last" in set(table["shape"])


def test_model_and_micro_reports_compare_side_by_side_and_each_get_their_figure(tmp_path):
    model = write_model(tmp_path / "m.csv", ROWS)
    micro = write_micro(tmp_path / "u.csv", [micro_row("relu", 1e-4), micro_row("mish", 3e-4)])
    comparison = compare_reports([str(model), str(micro)])
    table = comparison.micro.table
    micro_mish = table[(table["activation"] == "mish") & (table["pass"] == "fwd")]
    assert list(micro_mish["ratio"]) == pytest.approx([3.0])
    assert len(table[table["pass"].str.startswith(("train · ", "infer · "))]) == len(ROWS)
    written = write_figures(comparison.reports.micro, None, None, None, tmp_path / "f.png")
    assert sorted(p.name for p in written) == ["f-micro.png", "f-model.png"]
    assert all(p.stat().st_size > 10_000 for p in written)


def test_a_model_report_alone_draws_throughput_and_compare_prints_it(tmp_path, run_cli_wide):
    report = write_model(tmp_path / "m.csv", ROWS)
    result = run_cli_wide("compare", str(report), "--plot", str(tmp_path / "f.png"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f.png").exists() and "train · resnet56" in result.output
    assert "1.30x" in result.output


@pytest.fixture
def run_cli_wide():
    from typer.testing import CliRunner

    from actbench.cli import app

    def run(*args):
        return CliRunner().invoke(app, list(args), env={"COLUMNS": "240", "NO_COLOR": "1"})
    return run

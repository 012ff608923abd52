import numpy as np
import pytest
from scipy import stats as scipy_stats

from actbench.compare.load import load_reports
from actbench.compare.train import NOISE_KEY, compare_noise
from actbench.report.compare_plots import write_figures

from .factories import train_row, write_train

NOISE = ["noise_0.5_acc", "noise_0.5_loss", "noise_2_acc", "noise_2_loss"]


def _report(tmp_path):
    rows = []
    for act, shift in (("relu", 0.0), ("mish", 0.05)):
        for seed in range(3):
            rows.append(train_row(act, seed, 0.9, **{"noise_0.5_acc": 0.8 + shift + 0.01 * seed,
                                                     "noise_0.5_loss": 1.0,
                                                     "noise_2_acc": 0.5 + shift - 0.01 * seed,
                                                     "noise_2_loss": 2.0}))
    return write_train(tmp_path / "t.csv", rows, noise_columns=NOISE)


def test_noise_levels_become_a_group_key_with_t_intervals(tmp_path):
    reports = load_reports([str(_report(tmp_path))])
    assert reports.train["noise_0.5_acc"].dtype.kind == "f"  # results, not sweep keys
    comparison = compare_noise(reports.train)
    table = comparison.table.set_index([NOISE_KEY, "activation"])
    values = [0.85, 0.86, 0.87]
    row = table.loc[(0.5, "mish")]
    assert row["mean"] == pytest.approx(np.mean(values))
    low, high = scipy_stats.t.interval(0.95, 2, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert table.loc[(2.0, "mish"), "mean"] == pytest.approx(0.54)
    assert table.loc[(2.0, "mish"), "diff"] == pytest.approx(0.05)


def test_no_noise_columns_means_no_noise_comparison(tmp_path):
    reports = load_reports([str(write_train(tmp_path / "t.csv", [train_row("relu", 0, 0.9)]))])
    assert compare_noise(reports.train) is None


def test_noise_figure_is_written(tmp_path):
    reports = load_reports([str(_report(tmp_path))])
    paths = write_figures(None, None, None, None, tmp_path / "fig.png", dpi=40,
                          noise=compare_noise(reports.train))
    assert paths == [tmp_path / "fig.png"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"


def test_the_clean_accuracy_is_the_first_noise_level(tmp_path):
    reports = load_reports([str(_report(tmp_path))])
    table = compare_noise(reports.train).table
    assert table[NOISE_KEY].tolist()[:2] == [0.0, 0.0] and sorted(set(table[NOISE_KEY])) == [0, 0.5, 2]
    clean = table.set_index([NOISE_KEY, "activation"]).loc[(0.0, "mish")]
    assert clean["mean"] == pytest.approx(0.9) and clean["diff"] == pytest.approx(0.0)


def test_an_evaluated_zero_noise_level_is_not_doubled(tmp_path):
    rows = [train_row(act, seed, 0.9, **{"noise_0_acc": 0.8, "noise_0_loss": 1.0})
            for act in ("relu", "mish") for seed in range(2)]
    path = write_train(tmp_path / "t.csv", rows, noise_columns=["noise_0_acc", "noise_0_loss"])
    table = compare_noise(load_reports([str(path)]).train).table
    assert table[NOISE_KEY].tolist() == [0.0, 0.0] and (table["mean"] == 0.8).all()

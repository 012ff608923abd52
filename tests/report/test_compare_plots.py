"""Figures of `actbench compare` drawn from hand-made report frames shaped like loaded reports."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.colors
import matplotlib.image
import matplotlib.pyplot
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.compare.factories import train_row, write_epochs, write_train

from actbench.compare.load import load_reports
from actbench.errors import ActbenchError
from actbench.report import compare_plots
from actbench.report.plots import activation_color
from actbench.report.compare_plots import (hollow_rows, measured_micro_rows, metric_axis,
                                           plot_curves, plot_micro, plot_sweep, plot_train,
                                           sweep_axis_kind, train_sweep_keys, write_figures)

DPI = 40
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZES = [2.0**k for k in range(10, 25, 2)]


def micro_frame(files=("before",), impls=("native",), passes=("fwd", "bwd"),
                flags: dict | None = None) -> pd.DataFrame:
    """Micro rows as the loader gives them: numbers as floats, text as text, a file column."""
    flags = flags or {}
    rows = []
    for f, file in enumerate(files):
        for activation, cost in (("relu", 1.0), ("silu", 1.3), ("mish", 1.8)):
            for impl in impls:
                for pass_ in passes:
                    k = {"fwd": 2, "bwd": 3}[pass_]
                    for numel in SIZES:
                        min_bytes = k * numel * 4
                        median = 3e-6 + cost * (1 + 0.2 * f) * min_bytes / 200e9 * \
                            (1.4 if impl == "formula" else 1.0)
                        flag = flags.get((activation, numel), "")
                        rows.append({
                            "file": file, "kind": "micro", "activation": activation, "impl": impl,
                            "device": "cpu", "dtype": "float32", "shape": str(int(numel)),
                            "pass": pass_, "numel": numel, "status": "ok", "flags": flag,
                            "median_s": median, "ci_low_s": median * 0.97,
                            "ci_high_s": median * 1.04, "min_bytes": float(min_bytes),
                            "gbps": min_bytes / median / 1e9, "copy_gbps": 250.0 / (1 + 0.2 * f),
                            "throttled": "", "message": ""})
    return pd.DataFrame(rows)


def train_frame(depths=(2, 8, 32, 128), seeds=range(4)) -> pd.DataFrame:
    """Train run rows with a sweep over model.depth (kept as text, as the loader does)."""
    gain = {"relu": 0.0, "silu": 0.01, "mish": 0.02}
    rows = []
    for depth in depths:
        for seed in seeds:
            for activation, extra in gain.items():
                accuracy = 0.9 - 0.0005 * depth + extra * np.log2(depth) / 4 + 0.004 * np.sin(
                    seed * 2.1 + depth + extra * 100)
                rows.append({"file": "train-a", "kind": "train", "suite": "demo",
                             "activation": activation, "impl": "native", "seed": float(seed),
                             "model.depth": str(depth), "dataset": "mnist1d", "model": "deep_fc",
                             "status": "ok", "final_test_acc": accuracy,
                             "config_hash": f"{depth}-{seed}-{activation}"})
    rows.append({**rows[0], "status": "failed", "final_test_acc": np.nan, "seed": 99.0})
    return pd.DataFrame(rows)


def comparison_of(frame: pd.DataFrame, keys=("model.depth",), baseline="relu"):
    """A TrainComparison-shaped object computed with scipy (the analysis module's contract)."""
    ok = frame[frame["status"] == "ok"]
    rows = []
    for values, group in ok.groupby(list(keys), sort=False) if keys else [((), ok)]:
        values = values if isinstance(values, tuple) else (values,)
        base = group[group["activation"] == baseline]["final_test_acc"]
        for activation, runs in group.groupby("activation", sort=False):
            acc = runs["final_test_acc"].to_numpy()
            mean = acc.mean()
            low, high = stats.t.interval(0.95, len(acc) - 1, loc=mean, scale=stats.sem(acc))
            p = stats.ttest_ind(acc, base, equal_var=False).pvalue if activation != baseline \
                else np.nan
            rows.append({**dict(zip(keys, values)), "activation": activation, "n": len(acc),
                         "mean": mean, "std": acc.std(ddof=1), "ci_low": low, "ci_high": high,
                         "diff": mean - base.mean(), "p_holm": p,
                         "significant": bool(p < 0.05) if np.isfinite(p) else False})
    table = pd.DataFrame(rows)
    ranked = table.groupby(list(keys))["mean"] if keys else table["mean"]
    table["rank"] = ranked.rank(ascending=False, method="min")
    return SimpleNamespace(metric="final_test_acc", higher_is_better=True, baseline=baseline,
                           alpha=0.05, group_keys=list(keys), table=table, notes=[])


def epoch_frame(depths=(8, 32), seeds=range(3), epochs=8) -> pd.DataFrame:
    rows = []
    for depth in depths:
        for seed in seeds:
            for activation, rate in (("relu", 0.3), ("silu", 0.4), ("mish", 0.45)):
                for epoch in range(1, epochs + 1):
                    test = 0.9 * (1 - np.exp(-rate * epoch)) + 0.01 * np.cos(seed + epoch)
                    rows.append({"file": "train-a", "kind": "train_epoch", "suite": "demo",
                                 "config_hash": f"{depth}-{seed}-{activation}",
                                 "activation": activation, "impl": "native", "seed": float(seed),
                                 "model.depth": str(depth), "epoch": float(epoch),
                                 "test_acc": test, "train_acc": test + 0.03,
                                 "test_loss": 1 - test, "train_loss": 0.9 - test})
    return pd.DataFrame(rows)


def assert_png(path: Path, min_width: int = 150) -> np.ndarray:
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert width >= min_width and height >= 100
    assert image[..., :3].std() > 0.02  # something was drawn
    return image


# -- micro ----------------------------------------------------------------------------------------

def test_micro_time_and_throughput_figures(tmp_path):
    frame = micro_frame()
    for metric in ("median_s", "gbps"):
        out = plot_micro(frame, tmp_path / f"micro-{metric}.png", metric, dpi=DPI)
        assert out == tmp_path / f"micro-{metric}.png"
        assert_png(out)


def test_micro_gbps_uses_the_minimum_bytes_and_ci_bounds_swap():
    rows = measured_micro_rows(micro_frame(), "gbps")
    first = rows.iloc[0]
    assert first["_y"] == pytest.approx(first["min_bytes"] / first["median_s"] / 1e9)
    assert first["_low"] == pytest.approx(first["min_bytes"] / first["ci_high_s"] / 1e9)
    assert first["_low"] < first["_y"] < first["_high"]
    assert first["_roofline"] == first["copy_gbps"]  # the copy bandwidth itself


def test_micro_time_roofline_is_the_copy_time_for_the_pass_bytes():
    rows = measured_micro_rows(micro_frame(), "median_s")
    first = rows.iloc[0]
    assert first["_roofline"] == pytest.approx(first["min_bytes"] / 250e9)


def test_micro_failed_rows_skipped_noisy_kept():
    frame = micro_frame()
    frame.loc[0, ["status", "median_s"]] = ["error", np.nan]
    frame.loc[1, "status"] = "oom"
    frame.loc[2, ["status", "flags"]] = ["noisy", "noisy"]
    rows = measured_micro_rows(frame)
    assert 0 not in rows.index and 1 not in rows.index
    assert rows.loc[2, "_hollow"]


def test_noisy_and_throttled_rows_are_hollow(tmp_path):
    frame = micro_frame(flags={("mish", SIZES[3]): "noisy", ("silu", SIZES[4]): "throttled"})
    frame.loc[5, "throttled"] = "true"
    hollow = hollow_rows(frame)
    expected = frame["flags"].isin(["noisy", "throttled"]) | (frame.index == 5)
    assert hollow.tolist() == expected.tolist()
    assert hollow.sum() == 2 * 2 + 1  # two flagged sizes x two passes, one throttled cell
    assert_png(plot_micro(frame, tmp_path / "noisy.png", dpi=DPI))


def test_micro_with_several_files_and_implementations(tmp_path):
    frame = micro_frame(files=("before", "after"), impls=("native", "formula"),
                        passes=("fwd", "bwd"))
    assert_png(plot_micro(frame, tmp_path / "files.png", dpi=DPI))


def test_micro_without_timings_is_refused(tmp_path):
    frame = micro_frame()
    frame["status"] = "unsupported"
    with pytest.raises(ActbenchError, match="no micro timings to plot"):
        plot_micro(frame, tmp_path / "x.png", dpi=DPI)
    with pytest.raises(ActbenchError, match="not one of median_s, gbps"):
        plot_micro(micro_frame(), tmp_path / "x.png", "mean_s", dpi=DPI)
    with pytest.raises(ActbenchError, match="must end in one of .png"):
        plot_micro(micro_frame(), tmp_path / "x.txt", dpi=DPI)


# -- training -------------------------------------------------------------------------------------

def test_train_points_figure(tmp_path):
    frame = train_frame()
    assert_png(plot_train(comparison_of(frame), frame, tmp_path / "train.png", dpi=DPI))


def test_train_without_groups_gives_one_panel(tmp_path):
    frame = train_frame(depths=(8,))
    comparison = comparison_of(frame, keys=())
    assert_png(plot_train(comparison, frame, tmp_path / "one.png", dpi=DPI))


def test_train_empty_comparison_is_refused(tmp_path):
    frame = train_frame()
    comparison = comparison_of(frame)
    comparison.table = comparison.table.iloc[0:0]
    with pytest.raises(ActbenchError, match="no training results to plot"):
        plot_train(comparison, frame, tmp_path / "x.png", dpi=DPI)
    with pytest.raises(ActbenchError, match="no column 'final_test_acc'"):
        plot_train(comparison_of(frame), frame.drop(columns="final_test_acc"),
                   tmp_path / "x.png", dpi=DPI)


def test_metric_axis_labels_and_scales():
    assert metric_axis("final_test_acc") == ("final test accuracy (%)", 100.0)
    assert metric_axis("mean_epoch_s") == ("mean epoch (s)", 1.0)
    assert metric_axis("samples_per_s") == ("samples per second", 1.0)
    assert metric_axis("peak_bytes") == ("peak (MiB)", 2.0**-20)
    assert metric_axis("noise_0.5_acc")[0] == "test accuracy (%) with input noise σ = 0.5"
    assert metric_axis("final_test_loss") == ("final test loss", 1.0)


@pytest.mark.parametrize("values, kind", [
    (["2", "8", "32", "128", "512"], "log"),
    (["2", "8", "32", "128"], "linear"),  # 64x: under two decades
    ([1.0, 10.0, 100.0], "log"),
    ([1.0, 10.0, 99.0], "linear"),
    (["0", "0.1", "0.5"], "linear"),  # zero cannot sit on a log axis
    (["-1", "1000"], "linear"),
    (["mlp", "resnet"], "categorical"),
    (["8", "wide"], "categorical"),
])
def test_sweep_axis_kind(values, kind):
    assert sweep_axis_kind(pd.Series(values)) == kind


@pytest.mark.parametrize("depths", [(2, 8, 32, 128, 512), (1, 2, 3)])
def test_sweep_figure_numeric(tmp_path, depths):
    comparison = comparison_of(train_frame(depths=depths))
    assert_png(plot_sweep(comparison, "model.depth", tmp_path / "sweep.png", dpi=DPI))


def test_sweep_figure_categorical_with_panels(tmp_path):
    frame = pd.concat([train_frame().assign(**{"model.name": name}) for name in ("mlp", "cnn")],
                      ignore_index=True)
    comparison = comparison_of(frame, keys=("model.name", "model.depth"))
    assert train_sweep_keys(comparison) == ["model.name", "model.depth"]
    assert_png(plot_sweep(comparison, "model.name", tmp_path / "names.png", dpi=DPI))
    assert_png(plot_sweep(comparison, "model.depth", tmp_path / "depths.png", dpi=DPI))
    with pytest.raises(ActbenchError, match="'optim.lr' is not a group key"):
        plot_sweep(comparison, "optim.lr", tmp_path / "x.png", dpi=DPI)


# -- curves ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["test_acc", "both", "train_loss"])
def test_curves_figure(tmp_path, metric):
    assert_png(plot_curves(epoch_frame(), tmp_path / f"curves-{metric}.png", metric, dpi=DPI))


def test_curves_refuse_empty_and_unknown(tmp_path):
    with pytest.raises(ActbenchError, match="no epoch rows to plot"):
        plot_curves(epoch_frame().iloc[0:0], tmp_path / "x.png", dpi=DPI)
    with pytest.raises(ActbenchError, match="curve metric 'accuracy' is not one of"):
        plot_curves(epoch_frame(), tmp_path / "x.png", "accuracy", dpi=DPI)
    nan_rows = epoch_frame().assign(test_acc=np.nan)
    with pytest.raises(ActbenchError, match="no epoch rows with a finite test_acc"):
        plot_curves(nan_rows, tmp_path / "x.png", dpi=DPI)


def test_curves_band_is_min_max_over_seeds(monkeypatch, tmp_path):
    """The drawn line is the mean over seeds per epoch and the band spans their min and max."""
    figures = []
    monkeypatch.setattr(compare_plots, "_save", lambda fig, out, dpi: figures.append(fig) or out)
    epochs = epoch_frame(depths=(8,))
    plot_curves(epochs, tmp_path / "c.png", dpi=DPI)
    ax = figures[0].axes[0]
    relu = epochs[epochs["activation"] == "relu"].groupby("epoch")["test_acc"]
    line = ax.get_lines()[0]  # relu comes first
    assert matplotlib.colors.to_hex(line.get_color()) == \
        matplotlib.colors.to_hex(activation_color("relu"))
    np.testing.assert_allclose(line.get_ydata(), 100 * relu.mean().to_numpy())
    band = ax.collections[0].get_paths()[0].vertices
    np.testing.assert_allclose(band[1:9], np.column_stack([np.arange(1, 9),
                                                           100 * relu.min().to_numpy()]))
    assert band[:, 1].max() == pytest.approx(100 * relu.max().max())
    matplotlib.pyplot.close(figures[0])


# -- write_figures --------------------------------------------------------------------------------

def test_write_figures_names_each_kind(tmp_path):
    train = train_frame()
    paths = write_figures(micro_frame(), train, epoch_frame(), comparison_of(train),
                          tmp_path / "cmp.png", dpi=DPI)
    assert [p.name for p in paths] == ["cmp-micro.png", "cmp-train.png",
                                       "cmp-sweep-model.depth.png", "cmp-curves.png"]
    for path in paths:
        assert_png(path)
    assert not (tmp_path / "cmp.png").exists()


def test_write_figures_single_figure_takes_the_name(tmp_path):
    paths = write_figures(micro_frame(), None, None, None, tmp_path / "only.png", dpi=DPI)
    assert paths == [tmp_path / "only.png"]
    assert_png(paths[0])


def test_write_figures_without_sweep_when_one_point(tmp_path):
    train = train_frame(depths=(8,))
    paths = write_figures(None, train, pd.DataFrame(), comparison_of(train), tmp_path / "t.png",
                          dpi=DPI)
    assert paths == [tmp_path / "t.png"]


def test_write_figures_with_nothing_is_refused(tmp_path):
    failed = micro_frame().assign(status="error")
    with pytest.raises(ActbenchError, match="nothing to plot"):
        write_figures(failed, None, None, None, tmp_path / "x.png", dpi=DPI)
    with pytest.raises(ActbenchError, match="must end in one of"):
        write_figures(micro_frame(), None, None, None, tmp_path / "x.csv", dpi=DPI)


# -- curves: runs that stopped early, runs of different lengths -----------------------------------

def runs_of(epochs: pd.DataFrame, planned: int, file: str = "train-a", **statuses) -> pd.DataFrame:
    """The train report's rows for the runs of `epochs`: status ok unless `statuses` names the
    config hash; a hash mapped to None has no row (its process ended before writing one)."""
    rows = []
    for config_hash, run in epochs.groupby("config_hash", sort=False):
        status = statuses.get(config_hash, "ok")
        if status is not None:
            rows.append({"file": file, "kind": "train", "config_hash": config_hash,
                         "activation": run["activation"].iloc[0], "seed": run["seed"].iloc[0],
                         "status": status, "epochs": float(planned),
                         "epochs_done": float(run["epoch"].max())})
    return pd.DataFrame(rows)


def drawn(monkeypatch, tmp_path, epochs, runs=None, metric="test_acc"):
    figures = []
    monkeypatch.setattr(compare_plots, "_save", lambda fig, out, dpi: figures.append(fig) or out)
    plot_curves(epochs, tmp_path / "c.png", metric, runs=runs, dpi=DPI)
    return figures[0]


def test_interrupted_run_is_dashed_labelled_and_left_out_of_the_mean(monkeypatch, tmp_path):
    epochs = epoch_frame(depths=(8,), seeds=range(3), epochs=8)
    stopped = (epochs["config_hash"] == "8-2-relu") & (epochs["epoch"] > 5)
    epochs = epochs[~stopped]
    fig = drawn(monkeypatch, tmp_path, epochs, runs_of(epochs, 8, **{"8-2-relu": None}))
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    early = lines["relu: interrupted at 5/8"]
    assert early.get_linestyle() == "--" and early.get_marker() == "X"
    assert early.get_markevery() == [4]  # the X sits on its last epoch
    np.testing.assert_allclose(early.get_xdata(), np.arange(1, 6))
    mean = lines["relu: mean of 2 complete runs"]
    assert mean.get_linestyle() == "-"
    complete = epochs[(epochs["activation"] == "relu") & (epochs["seed"] < 2)]
    np.testing.assert_allclose(mean.get_ydata(),
                               100 * complete.groupby("epoch")["test_acc"].mean().to_numpy())
    assert "silu: mean of 3 complete runs" in lines
    assert [text.get_text() for text in ax.texts] == ["relu: interrupted at 5/8"]
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert "mean over complete runs" in legend
    assert any("stopped early" in text for text in legend)
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("status, label", [("failed", "failed at 3/8"),
                                           ("diverged", "diverged at 3/8"),
                                           ("ok", "interrupted at 3/8")])
def test_failed_diverged_and_short_runs_are_drawn_apart(monkeypatch, tmp_path, status, label):
    epochs = epoch_frame(depths=(8,), seeds=range(2), epochs=8)
    epochs = epochs[~((epochs["config_hash"] == "8-0-mish") & (epochs["epoch"] > 3))]
    fig = drawn(monkeypatch, tmp_path, epochs, runs_of(epochs, 8, **{"8-0-mish": status}))
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert f"mish: {label}" in labels
    assert "mish: mean of 1 complete runs" in labels
    matplotlib.pyplot.close(fig)


def test_runs_of_different_lengths_get_their_own_panels(monkeypatch, tmp_path):
    """A 2-epoch smoke run beside 8-epoch runs of the same sweep point is never averaged in."""
    long = epoch_frame(depths=(8,), seeds=range(2), epochs=8)
    short = epoch_frame(depths=(8,), seeds=range(2), epochs=2).assign(file="smoke.epochs")
    runs = pd.concat([runs_of(long, 8), runs_of(short, 2, file="smoke")], ignore_index=True)
    fig = drawn(monkeypatch, tmp_path, pd.concat([long, short], ignore_index=True), runs)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["8 epochs", "2 epochs"]
    for ax, last in zip(fig.axes, (8, 2)):
        assert all(max(line.get_xdata()) == last for line in ax.get_lines())
        assert all(line.get_linestyle() == "-" for line in ax.get_lines())
    matplotlib.pyplot.close(fig)


def test_run_outcomes_without_a_runs_report_use_the_epochs_sweep_key():
    epochs = epoch_frame(depths=(8,), seeds=range(1), epochs=4).assign(**{"train.epochs": "6"})
    epochs = epochs[~((epochs["activation"] == "relu") & (epochs["epoch"] > 2))]
    outcomes = compare_plots.run_outcomes(epochs).set_index("config_hash")
    assert outcomes.loc["8-0-relu", "end"] == "interrupted at 2/6"
    assert outcomes.loc["8-0-mish", "end"] == "interrupted at 4/6"
    assert not outcomes["complete"].any()
    unknown = compare_plots.run_outcomes(epoch_frame(depths=(8,), seeds=range(1), epochs=4))
    assert unknown["complete"].all() and (unknown["status"] == "").all()
    assert unknown["planned"].isna().all() and (unknown["done"] == 4).all()


def test_write_figures_hands_the_runs_to_the_curves(monkeypatch, tmp_path):
    epochs = epoch_frame(depths=(8,), seeds=range(2), epochs=8)
    epochs = epochs[~((epochs["config_hash"] == "8-1-silu") & (epochs["epoch"] > 6))]
    train = runs_of(epochs, 8, **{"8-1-silu": "failed"}).assign(model="deep_fc",
                                                                final_test_acc=0.9)
    figures = []
    monkeypatch.setattr(compare_plots, "_save", lambda fig, out, dpi: figures.append(fig) or out)
    write_figures(None, train, epochs, None, tmp_path / "c.png", dpi=DPI)
    labels = [line.get_label() for line in figures[-1].axes[0].get_lines()]
    assert "silu: failed at 6/8" in labels
    matplotlib.pyplot.close(figures[-1])


def test_loaded_reports_interrupted_run_found_by_its_missing_row(monkeypatch, tmp_path):
    """Written and read back as on disk: t.csv has a row per finished run (6 epochs planned),
    t.epochs.csv the epochs; mish seed 2 has 4 epochs and no row, its process ended first."""
    accs = [0.5, 0.6, 0.7, 0.75, 0.78, 0.8]
    write_epochs(tmp_path / "t.epochs.csv",
                 {(a, s): accs[:4] if (a, s) == ("mish", 2) else accs
                  for a in ("relu", "mish") for s in range(3)})
    write_train(tmp_path / "t.csv", [train_row(a, s, 0.8, epochs=6, epochs_done=6)
                                     for a in ("relu", "mish") for s in range(3)
                                     if (a, s) != ("mish", 2)])
    reports = load_reports([str(tmp_path / "*.csv")])
    outcomes = compare_plots.run_outcomes(reports.epochs, reports.train)
    assert outcomes.loc[~outcomes["complete"], "end"].tolist() == ["interrupted at 4/6"]
    fig = drawn(monkeypatch, tmp_path, reports.epochs, reports.train)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["relu: mean of 3 complete runs", "mish: mean of 2 complete runs",
                      "mish: interrupted at 4/6"]
    matplotlib.pyplot.close(fig)

"""The column-at-a-time comparison against a plain row-by-row computation of the same rules.

compare_micro finds every row's baseline by key and computes ratios and intervals for whole
columns; here the documented rules are applied one row at a time (docs/compare.md: baseline of
the same shape, else the flat one of the same size, its native implementation first; intervals
from raw samples by bootstrap, else from the medians' intervals, none below 6 samples), and the
two must agree on every row.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actbench import stats
from actbench.compare.load import load_reports
from actbench.compare.micro import compare_micro
from actbench.compare.run import compare_reports
from actbench.errors import ActbenchError
from actbench.records.schema import MICRO_COLUMNS
from actbench.report import compare_tables
from actbench.report.compare_tables import comparison_sections, json_text

from .factories import micro_row, write_micro, write_samples

KEY = ("device", "dtype", "numel", "pass", "file")


def _samples(rng, median: float, count: int) -> list[float]:
    """`count` samples whose median is `median` (as a row computed from them)."""
    values = rng.lognormal(0.0, 0.03, count)
    return (values * (median / np.median(values))).tolist()


def _report(tmp_path: Path) -> list[str]:
    """Several sizes, dtypes and passes; relu in two implementations (native is the baseline),
    a channel-wise activation compared with the flat relu of its size, failures, flags, a row
    with too few samples, raw samples for some rows, and a group without a usable baseline."""
    rng = np.random.default_rng(7)
    rows, samples = [], {}
    for numel in (1024, 4096):
        for dtype in ("float32", "float16"):
            for pass_ in ("fwd", "fwdbwd"):
                scale = numel / 1024 * (2 if pass_ == "fwdbwd" else 1)
                group = [
                    micro_row("relu", 1.1e-4 * scale, impl="formula", numel=numel, dtype=dtype,
                              pass_=pass_, ci=0.03),
                    micro_row("relu", 1e-4 * scale, numel=numel, dtype=dtype, pass_=pass_,
                              flags="noisy" if dtype == "float16" else "", ci=0.02,
                              status="noisy" if dtype == "float16" else "ok"),
                    micro_row("mish", 3e-4 * scale, numel=numel, dtype=dtype, pass_=pass_, ci=0.04),
                    micro_row("mish", 2.5e-4 * scale, impl="fast", numel=numel, dtype=dtype,
                              pass_=pass_, ci=0.01, flags="throttled"),
                    micro_row("gelu", 2e-4 * scale, numel=numel, dtype=dtype, pass_=pass_,
                              samples=4),  # too few samples for an interval
                    micro_row("acon_c", 5e-4 * scale, impl="formula", numel=numel, dtype=dtype,
                              pass_=pass_, shape=f"4x64x{numel // 256}"),
                    micro_row("silu", math.nan, numel=numel, dtype=dtype, pass_=pass_,
                              status="oom", flags="oom"),
                ]
                rows += group
                for row in group[1:3]:
                    if numel == 4096:  # raw samples for relu native and mish: the bootstrap
                        key = (row["activation"], row["impl"], "cpu", dtype, row["shape"], pass_)
                        samples[key] = _samples(rng, row["median_s"], 20 + (dtype == "float16"))
                        row["ci_low_s"], row["ci_high_s"] = min(samples[key]), max(samples[key])
    # a size where relu failed: no usable baseline, no ratios
    rows += [micro_row("relu", math.nan, numel=65536, status="error", flags="error"),
             micro_row("mish", 1e-2, numel=65536)]
    write_micro(tmp_path / "m.csv", rows)
    write_samples(tmp_path / "m.samples.csv", samples)
    return [str(tmp_path / "m.csv"), str(tmp_path / "m.samples.csv")]


def _baseline_row(row: pd.Series, frame: pd.DataFrame) -> pd.Series | None:
    """The documented rule, one row at a time."""
    same_group = frame[np.logical_and.reduce([frame[k] == row[k] for k in KEY])]
    usable = same_group[same_group["status"].isin(["ok", "noisy"]) &
                        (same_group["activation"] == "relu")]
    for candidates in (usable[usable["shape"] == row["shape"]],
                       usable[usable["shape"] == str(int(row["numel"]))], usable):
        if len(candidates):
            native = candidates[candidates["impl"] == "native"]
            return (native if len(native) else candidates).iloc[0]
    return None


def _expected(row: pd.Series, base: pd.Series | None, samples: dict) -> dict:
    """Ratio, interval and method as the docs define them, with math and the scalar bootstrap."""
    if base is None or row["status"] not in ("ok", "noisy"):
        return {"ratio": math.nan, "ratio_low": math.nan, "ratio_high": math.nan,
                "uncertainty": ""}
    ratio = row["median_s"] / base["median_s"]
    nothing = {"ratio": ratio, "ratio_low": math.nan, "ratio_high": math.nan, "uncertainty": ""}
    if row.name == base.name or min(row["samples"], base["samples"]) < 6:
        return nothing
    key = lambda r: (r["activation"], r["impl"], r["device"], r["dtype"], r["shape"], r["pass"])
    if key(row) in samples and key(base) in samples:
        _, low, high = stats.ratio_of_medians_ci(samples[key(row)], samples[key(base)])
        return {"ratio": ratio, "ratio_low": low, "ratio_high": high, "uncertainty": "bootstrap"}
    half = math.hypot(math.log(row["ci_high_s"] / row["ci_low_s"]) / 2,
                      math.log(base["ci_high_s"] / base["ci_low_s"]) / 2)
    return {"ratio": ratio, "ratio_low": ratio * math.exp(-half),
            "ratio_high": ratio * math.exp(half), "uncertainty": "median CIs"}


def _same(actual: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    return actual == pytest.approx(expected, rel=1e-12)


def test_column_at_a_time_comparison_matches_the_rules_row_by_row(tmp_path):
    reports = load_reports(_report(tmp_path))
    frame = reports.micro
    samples = {key: group["seconds_per_call"].tolist()
               for key, group in reports.samples.groupby(
                   ["activation", "impl", "device", "dtype", "shape", "pass"], sort=False)}
    table = compare_micro(frame, reports.samples).table
    assert len(table) == len(frame)
    by_key = table.set_index(["activation", "impl", "dtype", "numel", "pass"])
    methods = set()
    for _, row in frame.iterrows():
        base = _baseline_row(row, frame)
        expected = _expected(row, base, samples)
        got = by_key.loc[(row["activation"], row["impl"], row["dtype"], row["numel"], row["pass"])]
        for column in ("ratio", "ratio_low", "ratio_high"):
            assert _same(got[column], expected[column]), (row["activation"], column)
        assert got["uncertainty"] == expected["uncertainty"]
        assert got["has_baseline"] == (base is not None)
        assert got["is_baseline"] == (base is not None and base.name == row.name)
        # significance: the interval excludes 1 in exactly the same rows
        excludes = lambda r: r["ratio_low"] > 1 or r["ratio_high"] < 1
        assert excludes(got) == excludes(expected)
        inherited = {f"baseline {f}" for f in str(base["flags"]).split(";") if f} \
            if base is not None and base.name != row.name else set()
        own = {f for f in str(row["flags"]).split(";") if f}
        assert set(filter(None, got["flags"].split(";"))) == own | {f for f in inherited
                                                                   if f[9:] not in own}
        methods.add(expected["uncertainty"])
    assert methods == {"", "bootstrap", "median CIs"}  # every path was exercised
    acon = by_key.loc[("acon_c", "formula", "float32", 1024, "fwd")]
    assert acon["ratio"] == pytest.approx(5.0)  # laid out 4x64x4, against the flat relu


def test_reports_compared_by_file_show_what_one_of_them_lacks(tmp_path):
    first = [micro_row(a, t, numel=n) for a, t in (("relu", 1e-4), ("mish", 3e-4))
             for n in (1024, 2048)]
    write_micro(tmp_path / "before.csv", first)
    write_micro(tmp_path / "after.csv", [dict(r, median_s=r["median_s"] * 1.5) for r in first[1:]])
    comparison = compare_reports([str(tmp_path / "before.csv"), str(tmp_path / "after.csv")],
                                 by="file")
    table = comparison.micro.table
    after = table[table["file"] == "after"].set_index(["activation", "numel"])
    assert after.loc[("relu", 1024), "status"] == "missing"
    assert math.isnan(after.loc[("relu", 1024), "ratio"])
    for key in (("relu", 2048), ("mish", 1024), ("mish", 2048)):
        assert after.loc[key, "ratio"] == pytest.approx(1.5)
    assert len(table) == 8


@pytest.mark.filterwarnings("ignore:The BCa confidence interval")  # scipy, on the nan sample
@pytest.mark.parametrize("sizes", [(20, 20), (7, 12), (21, 6), (2, 3), (40, 41)])
def test_many_bootstraps_at_once_are_the_one_at_a_time_bootstrap(sizes):
    rng = np.random.default_rng(sum(sizes))
    numerators = [np.round(rng.lognormal(0, 0.05, sizes[0]), 3) for _ in range(12)]
    denominators = [np.round(rng.lognormal(0, 0.05, sizes[1]), 3) for _ in range(12)]
    numerators[3] = np.full(sizes[0], 2.0)  # no spread at all
    numerators[5] = numerators[5].copy()
    numerators[5][0] = math.nan  # one at a time
    ratios, lows, highs = stats.ratios_of_medians_ci(numerators, denominators)
    for i, (x, y) in enumerate(zip(numerators, denominators)):
        expected = stats.ratio_of_medians_ci(x, y)
        for got, want in zip((ratios[i], lows[i], highs[i]), expected):
            assert (math.isnan(got) and math.isnan(want)) or got == want


def test_many_bootstraps_with_long_series_drawn_in_batches():
    rng = np.random.default_rng(3)
    x, y = rng.lognormal(0, 0.05, 15_000), rng.lognormal(0.1, 0.05, 15_001)  # 2 batches of draws
    _, lows, highs = stats.ratios_of_medians_ci([x], [y], resamples=300)
    _, low, high = stats.ratio_of_medians_ci(x, y, resamples=300)
    assert (lows[0], highs[0]) == (low, high)
    assert stats.ratios_of_medians_ci([[1.0]], [[1.0, 2.0]])[1][0] != 0  # nan: no spread
    with pytest.raises(ValueError):
        stats.ratios_of_medians_ci([[]], [[1.0]])


def test_intervals_from_arrays_are_the_scalar_ones():
    rng = np.random.default_rng(5)
    values = rng.lognormal(0, 1, (6, 50))
    values[:, :3] = [[0.0] * 3, [-1.0] * 3, [math.nan] * 3, [math.inf] * 3, [1.0] * 3, [2.0] * 3]
    ratio, low, high = stats.ratios_from_intervals(*values)
    for i in range(values.shape[1]):
        expected = stats.ratio_ci_from_intervals(*values[:, i])
        for got, want in zip((ratio[i], low[i], high[i]), expected):
            assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-14)


def test_the_terminal_shows_the_first_rows_and_says_how_to_get_the_rest(tmp_path):
    paths = _report(tmp_path)
    comparison = compare_reports(paths)
    every = comparison_sections(comparison)
    total = sum(len(s.table) for s in every)
    shown = comparison_sections(comparison, max_micro_rows=10)
    assert sum(len(s.table) for s in shown) == 10
    assert [s.title for s in shown] == [s.title for s in every[:len(shown)]]
    for cut, full in zip(shown, every):
        assert cut.table.equals(full.table.iloc[:len(cut.table)].reset_index(drop=True)
                                [cut.table.columns])
    assert any(f"only the first 10 of {total} rows are shown" in n for n in shown[-1].notes)
    assert not any("are shown here" in n for s in every for n in s.notes)


def test_json_rows_written_a_chunk_at_a_time_are_json_dumps(tmp_path, monkeypatch):
    comparison = compare_reports(_report(tmp_path))
    monkeypatch.setattr(compare_tables, "JSON_CHUNK_ROWS", 7)
    text = json_text(comparison.micro, warnings=["naïve \"quoted\" warning"])
    rows = [{k: compare_tables._json_value(v) for k, v in row.items()}
            for row in comparison.micro.table.to_dict("records")]
    micro = comparison.micro
    expected = {"warnings": ["naïve \"quoted\" warning"], "gates": [],
                "micro": {"metric": micro.metric, "by": micro.by, "baseline": micro.baseline,
                          "notes": micro.notes, "rows": rows}}
    assert text == json.dumps(expected, indent=2) + "\n"


def test_quoted_fields_and_a_damaged_row_after_a_message_over_two_lines(tmp_path):
    rows = [micro_row("relu", 1e-4), micro_row("mish", 3e-4), micro_row("silu", 2e-4)]
    rows[1].update(status="error", message='failed: "x", then\nmore', median_s="")
    path = write_micro(tmp_path / "m.csv", rows)
    reports = load_reports([str(path)])
    assert reports.micro["message"].tolist()[1] == 'failed: "x", then\nmore'
    lines = path.read_bytes().split(b"\r\n")
    lines[-2] = lines[-2][:30]  # the last record loses its fields, not its line end
    path.write_bytes(b"\r\n".join(lines))
    expected = rf"line 4 has \d+ fields, the header {len(MICRO_COLUMNS)}"
    with pytest.raises(ActbenchError, match=expected):
        load_reports([str(path)])


def test_the_benchmark_writes_a_report_that_compares_cleanly(tmp_path):
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_rows.py"
    spec = importlib.util.spec_from_file_location("compare_rows", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules["compare_rows"] = module
    spec.loader.exec_module(module)
    module.write_report(tmp_path / "r.csv", 700, samples_share=0.3)
    comparison = compare_reports([str(tmp_path / "r.csv"), str(tmp_path / "r.samples.csv")])
    assert len(comparison.micro.table) == 700
    assert not [w for w in comparison.warnings if "left out" in w or "not used" in w]
    assert {"bootstrap", "median CIs"} <= set(comparison.micro.table["uncertainty"])


def test_samples_matched_by_key_whatever_the_report_holds(tmp_path):
    """Samples are matched to their rows by key and median; a report of several machines (its
    rows labelled per machine) or a row with another median leaves them out, with the warning."""
    rows = [micro_row("relu", 1e-3, host="a", gpu="H100"),
            micro_row("relu", 2e-3, host="b", gpu="A100")]
    write_micro(tmp_path / "c.csv", rows)
    write_samples(tmp_path / "c.samples.csv",
                  {("relu", "native", "cpu", "float32", "1024", "fwd"): [0.9e-3, 1e-3, 1.1e-3]})
    reports = load_reports([str(tmp_path / "c.csv"), str(tmp_path / "c.samples.csv")])
    assert reports.samples.empty
    assert any("1 configuration(s) do not match" in w for w in reports.warnings)
    write_micro(tmp_path / "d.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3)])
    write_samples(tmp_path / "d.samples.csv", {
        ("mish", "native", "cpu", "float32", "1024", "fwd"): [3e-3, 2e-3, 4e-3],  # kept
        ("relu", "native", "cpu", "float32", "1024", "fwd"): [2e-3, 2e-3, 2e-3]})  # another run
    reports = load_reports([str(tmp_path / "d.csv"), str(tmp_path / "d.samples.csv")])
    assert reports.samples["seconds_per_call"].tolist() == [3e-3, 2e-3, 4e-3]
    assert set(reports.samples["file"]) == {"d"}

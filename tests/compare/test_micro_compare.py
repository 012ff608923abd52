import math

import numpy as np
import pytest

from actbench.compare.load import load_reports
from actbench.compare.micro import compare_micro
from actbench.errors import ActbenchError
from actbench.report.compare_tables import speedup_text

from .factories import micro_row, write_micro, write_samples


def _table(comparison):
    return {(r.activation, r.impl, r.get("file", ""), r["pass"]): r
            for _, r in comparison.table.iterrows()}


def test_ratio_to_baseline_with_interval_from_the_medians_cis(tmp_path):
    write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3, ci=0.01),
                                     micro_row("mish", 3e-3, ci=0.02)])
    reports = load_reports([str(tmp_path / "m.csv")])
    rows = _table(compare_micro(reports.micro))
    mish = rows[("mish", "native", "m", "fwd")]
    assert mish.ratio == pytest.approx(3.0)
    # hand-computed: log half-widths atanh-free, ln(1.02/0.98)/2 and ln(1.01/0.99)/2 in quadrature
    half = math.hypot(math.log(1.02 / 0.98) / 2, math.log(1.01 / 0.99) / 2)
    assert mish.ratio_low == pytest.approx(3 * math.exp(-half))
    assert mish.ratio_high == pytest.approx(3 * math.exp(half))
    assert mish.uncertainty == "median CIs"
    assert rows[("relu", "native", "m", "fwd")].is_baseline


def test_bootstrap_interval_when_samples_exist(tmp_path):
    rng = np.random.default_rng(1)
    relu, mish = rng.normal(1e-3, 2e-5, 40), rng.normal(3e-3, 6e-5, 40)
    write_micro(tmp_path / "m.csv", [micro_row("relu", float(np.median(relu))),
                                     micro_row("mish", float(np.median(mish)))])
    write_samples(tmp_path / "m.samples.csv", {
        ("relu", "native", "cpu", "float32", "1024", "fwd"): list(relu),
        ("mish", "native", "cpu", "float32", "1024", "fwd"): list(mish)})
    reports = load_reports([str(tmp_path / "*.csv")])
    row = _table(compare_micro(reports.micro, reports.samples))[("mish", "native", "m", "fwd")]
    assert row.uncertainty == "bootstrap"
    assert row.ratio == pytest.approx(np.median(mish) / np.median(relu))
    assert row.ratio_low < row.ratio < row.ratio_high
    assert row.ratio_high - row.ratio_low < 0.1  # 2 % noise on 40 samples: a tight interval


def test_groups_are_per_pass_and_size(tmp_path):
    write_micro(tmp_path / "m.csv", [
        micro_row("relu", 1e-3), micro_row("mish", 2e-3),
        micro_row("relu", 4e-3, pass_="fwdbwd"), micro_row("mish", 20e-3, pass_="fwdbwd"),
        micro_row("relu", 10e-3, numel=4096), micro_row("mish", 30e-3, numel=4096)])
    table = compare_micro(load_reports([str(tmp_path / "m.csv")]).micro).table
    mish = table[table.activation == "mish"].set_index(["pass", "numel"])["ratio"]
    assert mish[("fwd", 1024)] == pytest.approx(2)
    assert mish[("fwdbwd", 1024)] == pytest.approx(5)
    assert mish[("fwd", 4096)] == pytest.approx(3)


def test_by_impl_compares_each_activation_with_its_native(tmp_path):
    write_micro(tmp_path / "m.csv", [micro_row("mish", 3e-3), micro_row("mish", 1e-3, impl="fast"),
                                     micro_row("silu", 1e-3), micro_row("silu", 2e-3, impl="formula")])
    comparison = compare_micro(load_reports([str(tmp_path / "m.csv")]).micro, by="impl")
    assert comparison.baseline == "native"
    ratios = comparison.table.set_index(["activation", "impl"])["ratio"]
    assert ratios[("mish", "fast")] == pytest.approx(1 / 3)
    assert ratios[("silu", "formula")] == pytest.approx(2)


def test_by_file_matches_the_same_configuration_across_reports(tmp_path):
    write_micro(tmp_path / "before.csv", [micro_row("mish", 3e-3), micro_row("relu", 1e-3)])
    write_micro(tmp_path / "after.csv", [micro_row("mish", 2e-3), micro_row("relu", 1.1e-3)])
    comparison = compare_micro(load_reports([str(tmp_path / "before.csv"),
                                             str(tmp_path / "after.csv")]).micro, by="file")
    assert comparison.baseline == "before"
    after = comparison.table[comparison.table.file == "after"].set_index("activation")
    assert after.loc["mish", "ratio"] == pytest.approx(2 / 3)
    assert speedup_text(after.loc["mish", "ratio"], math.nan, math.nan, True) == "1.50x faster"
    assert speedup_text(after.loc["relu", "ratio"], math.nan, math.nan, True) == "1.10x slower"


def test_speedup_text_uncertainty():
    assert speedup_text(0.5, 0.48, 0.52, True) == "2.00x faster ± 0.08"
    assert speedup_text(2.0, 1.9, 2.2, True) == "2.00x slower ± 0.20"
    assert speedup_text(1.001, 0.99, 1.01, True).startswith("1.00x (same)")


def test_flags_and_failures_stay_visible(tmp_path):
    write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3, flags="noisy", status="noisy"),
                                     micro_row("mish", 3e-3, flags="throttled"),
                                     micro_row("gelu", math.nan, status="oom")])
    table = compare_micro(load_reports([str(tmp_path / "m.csv")]).micro).table.set_index("activation")
    assert table.loc["relu", "flags"] == "noisy"
    assert table.loc["mish", "flags"] == "baseline noisy;throttled"
    assert table.loc["mish", "ratio"] == pytest.approx(3)  # noisy baselines still give ratios
    assert table.loc["gelu", "status"] == "oom" and math.isnan(table.loc["gelu", "ratio"])


def test_higher_is_better_metric_and_bad_names(tmp_path):
    write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("mish", 2e-3)])
    micro = load_reports([str(tmp_path / "m.csv")]).micro
    comparison = compare_micro(micro, metric="gbps")
    assert comparison.higher_is_better
    assert comparison.table.set_index("activation").loc["mish", "ratio"] == pytest.approx(0.5)
    with pytest.raises(ActbenchError, match="metric 'speed'.*expected one of .*median_s"):
        compare_micro(micro, metric="speed")
    with pytest.raises(ActbenchError, match="unknown baseline.*'gelu'"):
        compare_micro(micro, baseline="gelu")
    with pytest.raises(ActbenchError, match="--by 'colour'"):
        compare_micro(micro, by="colour")



def test_baseline_by_alias(tmp_path):
    write_micro(tmp_path / "m.csv", [micro_row("silu", 1e-3), micro_row("mish", 2e-3)])
    comparison = compare_micro(load_reports([str(tmp_path / "m.csv")]).micro, baseline="swish1")
    assert comparison.baseline == "silu"
    assert comparison.table.set_index("activation").loc["mish", "ratio"] == pytest.approx(2)


def test_channelwise_layouts_are_matched_by_element_count(tmp_path):
    write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("acon_c", 4e-3, shape="4x64x4")])
    table = compare_micro(load_reports([str(tmp_path / "m.csv")]).micro).table.set_index("activation")
    assert table.loc["acon_c", "ratio"] == pytest.approx(4)
    assert table.loc["acon_c", "shape"] == "4x64x4"


def test_by_a_column_refuses_rows_it_cannot_tell_apart(tmp_path):
    write_micro(tmp_path / "a.csv", [micro_row("mish", 3e-3, dtype="float32"),
                                     micro_row("mish", 2e-3, dtype="bfloat16")])
    write_micro(tmp_path / "b.csv", [micro_row("mish", 3.3e-3, dtype="float32")])
    write_micro(tmp_path / "c.csv", [micro_row("mish", 3.1e-3, dtype="float32")])
    frame = load_reports([str(tmp_path / "a.csv")]).micro
    ratios = compare_micro(frame, by="dtype", baseline="float32").table.set_index("dtype")["ratio"]
    assert ratios["bfloat16"] == pytest.approx(2 / 3)
    both = load_reports([str(tmp_path / "b.csv"), str(tmp_path / "c.csv")]).micro
    with pytest.raises(ActbenchError, match="--by dtype: float32 occurs more than once"):
        compare_micro(both, by="dtype")
    with pytest.raises(ActbenchError, match="blank in every micro row"):
        compare_micro(frame, by="throttle_reasons")


def test_baseline_rows_carry_no_interval_and_few_samples_give_none(tmp_path):
    write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3, samples=4)])
    table = compare_micro(load_reports([str(tmp_path / "m.csv")]).micro).table.set_index("activation")
    assert math.isnan(table.loc["relu", "ratio_low"]) and table.loc["relu", "uncertainty"] == ""
    assert table.loc["mish", "ratio"] == pytest.approx(3) and math.isnan(table.loc["mish", "ratio_low"])

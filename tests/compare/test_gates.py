import pytest

from actbench.compare.gates import GateError, check_gate, parse_gate
from actbench.compare.load import load_reports
from actbench.compare.micro import compare_micro

from .factories import micro_row, train_row, write_micro, write_train


@pytest.fixture
def micro(tmp_path):
    write_micro(tmp_path / "m.csv", [
        micro_row("relu", 1e-3), micro_row("mish", 3e-3), micro_row("mish", 1.2e-3, impl="fast"),
        micro_row("relu", 2e-3, pass_="fwdbwd"), micro_row("mish", 9e-3, pass_="fwdbwd"),
        micro_row("relu", 4e-3, numel=4096), micro_row("mish", 20e-3, numel=4096)])
    frame = load_reports([str(tmp_path / "m.csv")]).micro
    return frame, compare_micro(frame)


def _check(text, micro):
    frame, comparison = micro
    return check_gate(parse_gate(text), frame, comparison)


def test_passing_and_failing_gates(micro):
    assert _check("mish.fwd <= 5 * relu.fwd", micro).passed
    failed = _check("mish.fwd <= 4 * relu.fwd", micro)  # 3x at 1024, 5x at 4096
    assert not failed.passed and failed.checked == 2 and len(failed.failures) == 1
    assert failed.failures[0].startswith("2^12 float32 cpu: mish.fwd = 0.02 [0.0198, 0.0202]")
    assert _check("mish.fast.fwd < 1.25 * relu.fwd", micro).passed  # the impl named explicitly
    assert _check("mish.fwd.gbps < relu.fwd.gbps", micro).passed
    assert _check("1 < mish.fwdbwd / relu.fwdbwd < 5", micro).passed
    assert not _check("mish.fwdbwd / relu.fwdbwd < 4", micro).passed


def test_aggregates_and_percent(micro):
    # ratios to relu: 3, 1.2 (fast), 4.5 (fwdbwd), 5 (4096)
    assert _check("max_ratio <= 5", micro).passed
    assert _check("min_ratio >= 120%", micro).passed
    assert not _check("max_slowdown <= 300%", micro).passed
    assert _check("max_slowdown <= 400%", micro).passed


@pytest.mark.parametrize("text, message", [
    ("mish.fwd <=", "not a comparison"),
    ("mish.fwd + 1", "not a comparison"),
    ("__import__('os').system('x') < 1", "not allowed"),
    ("mish.fwd ** 2 < 1", "not allowed"),
    ("mish.fwd < 'a'", "not a number"),
    ("mish.fwd < relu.fwd if 1 else 2", "not a comparison"),
    ("(mish.fwd if 1 else 2) < 1", "not allowed"),
    ("mish.fwd() < 1", "not allowed"),
    ("mish[0].fwd < 1", "dotted names"),
    ("mish.fwd in relu.fwd", "only <"),
    ("x" * 400 + " < 1", "longer than"),
    ("ci_low(1) < 2", "takes one reference"),
    ("ci_low(mish.fwd, relu.fwd) < 1", "takes one reference"),
    ("ci_high(ci_low(mish.fwd)) < 1", "takes one reference"),
    ("ci_low(x=mish.fwd) < 1", "takes one reference"),
    ("surely(max_slowdown) < 1", "not allowed"),
])
def test_malformed_gates_are_refused_before_evaluation(text, message):
    with pytest.raises(GateError, match=message):
        parse_gate(text)


def test_references_that_resolve_nowhere(micro):
    with pytest.raises(GateError, match="cannot resolve 'mish.forward'"):
        _check("mish.forward < 1", micro)
    with pytest.raises(GateError, match="no configuration has all of"):
        _check("gelu.fwd < relu.fwd", micro)
    with pytest.raises(GateError, match="'speed' is not a numeric micro column"):
        _check("mish.fwd.speed < 1", micro)


def test_a_configuration_that_fails_in_the_new_report_fails_the_gate(tmp_path):
    write_micro(tmp_path / "before.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3),
                                          micro_row("silu", 2e-3)])
    write_micro(tmp_path / "after.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3,
                                                                            status="error")])
    frame = load_reports([str(tmp_path / "before.csv"), str(tmp_path / "after.csv")]).micro
    comparison = compare_micro(frame, by="file")
    statuses = comparison.table.set_index(["activation", "file"])["status"]
    assert statuses[("mish", "after")] == "error" and statuses[("silu", "after")] == "missing"
    result = check_gate(parse_gate("max_slowdown <= 5%"), frame, comparison)
    assert not result.passed
    assert any("mish" in line and "error" in line for line in result.failures)
    assert any("silu" in line and "missing" in line for line in result.failures)
    reference = check_gate(parse_gate("mish.fwd <= 4 * relu.fwd"), frame, compare_micro(frame))
    assert not reference.passed and "no value (error)" in reference.failures[0]


def test_same_element_count_in_two_layouts_is_matched_shape_for_shape(tmp_path):
    rows = [micro_row("relu", 1e-4, numel=4096), micro_row("relu", 2e-4, numel=4096, shape="4x32x32"),
            micro_row("mish", 3e-4, numel=4096), micro_row("mish", 6e-4, numel=4096, shape="4x32x32"),
            micro_row("acon_c", 8e-4, numel=4096, shape="4x64x16")]
    for name in ("a", "b"):
        write_micro(tmp_path / f"{name}.csv", rows)
    frame = load_reports([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]).micro
    by_activation = compare_micro(frame).table
    ratios = by_activation[by_activation.file == "a"].set_index(["activation", "shape"])["ratio"]
    assert ratios[("mish", "4096")] == pytest.approx(3) and ratios[("mish", "4x32x32")] == pytest.approx(3)
    assert ratios[("acon_c", "4x64x16")] == pytest.approx(8)  # channel-wise: the flat baseline
    assert check_gate(parse_gate("max_slowdown <= 1%"), frame, compare_micro(frame, by="file")).passed


# -- every failing configuration named; noise-aware forms ---------------------------------------

BEFORE_AFTER = {  # activation: (after's median over before's 1.0, half-width of after's CI)
    "silu": (1.08, 0.01),  # slower, and surely so: ratio interval about [1.065, 1.095]
    "mish": (1.06, 0.25),  # slower by its median, measured under load: about [0.82, 1.37]
    "relu": (1.04, 0.01),  # within 5 %, though its interval reaches 1.055
    "gelu": (1.00, 0.01),
}


@pytest.fixture
def before_after(tmp_path):
    size = 2 ** 20
    write_micro(tmp_path / "before.csv", [micro_row(a, 1e-3, numel=size) for a in BEFORE_AFTER])
    write_micro(tmp_path / "after.csv", [
        micro_row(a, ratio * 1e-3, numel=size, ci=ci, status="noisy" if ci > 0.1 else "ok",
                  flags="noisy" if ci > 0.1 else "") for a, (ratio, ci) in BEFORE_AFTER.items()])
    frame = load_reports([str(tmp_path / "before.csv"), str(tmp_path / "after.csv")]).micro
    return frame, compare_micro(frame, by="file")


def _failing(result):
    return [line.split("/")[0] for line in result.failures]


def test_point_form_names_every_failing_configuration_worst_first(before_after):
    result = _check("max_slowdown <= 5%", before_after)
    assert not result.passed and result.checked == 4
    assert _failing(result) == ["silu", "mish"]
    assert result.failures[0] == "silu/native fwd 2^20 float32 cpu in after: 1.08x [1.06, 1.10]"
    assert result.failures[1] == "mish/native fwd 2^20 float32 cpu in after: 1.06x [0.82, 1.37] (noisy)"
    assert result.lines()[0] == "gate FAILED: max_slowdown <= 5% (2 of 4 checked)"
    assert result.lines()[1:] == [f"  {line}" for line in result.failures]


def test_ci_low_fails_only_where_the_whole_interval_is_past_the_threshold(before_after):
    result = _check("ci_low(max_slowdown) <= 5%", before_after)
    assert _failing(result) == ["silu"]  # mish's interval reaches below 5 %: noise, not a failure
    assert _check("ci_low(max_slowdown) <= 7%", before_after).passed  # silu's low end is 6.5 %
    assert not _check("max_slowdown <= 7%", before_after).passed


def test_ci_high_fails_unless_the_whole_interval_is_within(before_after):
    result = _check("ci_high(max_slowdown) <= 5%", before_after)
    assert _failing(result) == ["mish", "silu", "relu"]  # by their high ends: 1.37, 1.10, 1.055
    assert _check("ci_high(max_slowdown) <= 40%", before_after).passed
    # the other direction: min_ratio with its low end
    assert _check("ci_low(min_ratio) >= 80%", before_after).passed
    assert _failing(_check("ci_low(min_ratio) >= 99%", before_after)) == ["mish", "gelu"]


def test_a_gate_no_single_configuration_breaks_shows_the_aggregate(before_after):
    result = _check("geomean_ratio <= 1.01", before_after)
    assert not result.passed and result.overall
    assert result.failures == ["geomean_ratio = 1.045 [0.9696, 1.125]"]
    assert result.lines()[0] == "gate FAILED: geomean_ratio <= 1.01 (4 checked)"


def test_a_long_list_is_cut_with_a_count(tmp_path):
    rows = [micro_row("relu", 1e-3, numel=2 ** 10)]
    rows += [micro_row(f"act{i}", (2 + i) * 1e-3, numel=2 ** 10) for i in range(15)]
    write_micro(tmp_path / "m.csv", rows)
    frame = load_reports([str(tmp_path / "m.csv")]).micro
    result = check_gate(parse_gate("max_ratio <= 1.5"), frame, compare_micro(frame))
    lines = result.lines()
    assert lines[0] == "gate FAILED: max_ratio <= 1.5 (15 of 15 checked)"
    assert lines[1].startswith("  act14/native fwd 2^10 float32 cpu: 16.00x")  # the worst first
    assert len(lines) == 12 and lines[-1] == "  and 5 more"


def test_a_configuration_without_a_value_fails_every_form(tmp_path):
    write_micro(tmp_path / "before.csv", [micro_row("relu", 1e-3), micro_row("mish", 1e-3)])
    write_micro(tmp_path / "after.csv", [micro_row("relu", 1e-3, ci=0.5),
                                         micro_row("mish", 1e-3, status="oom")])
    frame = load_reports([str(tmp_path / "before.csv"), str(tmp_path / "after.csv")]).micro
    comparison = compare_micro(frame, by="file")
    for text in ("max_slowdown <= 5%", "ci_low(max_slowdown) <= 5%"):
        result = check_gate(parse_gate(text), frame, comparison)
        assert result.failures == ["mish/native fwd 2^10 float32 cpu in after: no value (oom)"]


def test_bounds_of_references(micro):
    # mish.fwdbwd 9e-3 and relu.fwdbwd 2e-3, each with a 1 % interval
    assert not _check("mish.fwdbwd <= 4.45 * relu.fwdbwd", micro).passed
    assert _check("ci_low(mish.fwdbwd) <= 4.45 * ci_high(relu.fwdbwd)", micro).passed
    assert not _check("ci_high(mish.fwdbwd) <= 4.55 * ci_low(relu.fwdbwd)", micro).passed
    with pytest.raises(GateError, match="mish.fwd.gbps has no interval"):
        _check("ci_low(mish.fwd.gbps) < 1", micro)


def test_bounds_need_intervals(tmp_path):
    write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3)])
    frame = load_reports([str(tmp_path / "m.csv")]).micro
    gbps = compare_micro(frame, metric="gbps")
    assert not check_gate(parse_gate("max_slowdown <= 5%"), frame, gbps).passed  # 3x slower
    with pytest.raises(GateError, match="no ratio has an interval"):
        check_gate(parse_gate("ci_low(max_slowdown) <= 5%"), frame, gbps)


def test_train_gates_name_the_group_with_values_and_intervals(tmp_path):
    from actbench.compare.train import compare_train

    rows = [train_row(act, seed, acc, sweep={"model.depth": depth}, config_hash=f"{act}{seed}{depth}")
            for depth, shift in ((2, 0.0), (8, -0.1))
            for act, accs in (("relu", (0.80, 0.82, 0.81)), ("mish", (0.81, 0.83, 0.80)))
            for seed, acc in enumerate(accs if act == "relu" else [a + shift for a in accs])]
    write_train(tmp_path / "t.csv", rows, sweep_keys=["model.depth"])
    train = compare_train(load_reports([str(tmp_path / "t.csv")]).train)
    result = check_gate(parse_gate("mish.mean >= relu.mean - 0.02"), None, None, train)
    assert result.checked == 2 and len(result.failures) == 1
    assert result.failures[0].startswith("model.depth=8: mish.mean = 0.7133 [0.6754, 0.7513], "
                                         "relu.mean = 0.81 [")
    assert _check_train_text("ci_high(mish.diff) >= -0.02", train).failures[0].startswith(
        "model.depth=8: mish.diff = -0.09667 [")
    assert _check_train_text("ci_high(mish.diff) >= -0.2", train).passed
    with pytest.raises(GateError, match="mish.p_holm has no interval"):
        _check_train_text("ci_low(mish.p_holm) < 0.05", train)


def _check_train_text(text, train):
    return check_gate(parse_gate(text), None, None, train)


def test_flags_of_the_row_and_its_baseline_are_named(tmp_path):
    write_micro(tmp_path / "before.csv", [micro_row("mish", 1e-3, flags="noisy", status="noisy")])
    write_micro(tmp_path / "after.csv", [micro_row("mish", 1.5e-3, flags="busy;throttled")])
    frame = load_reports([str(tmp_path / "before.csv"), str(tmp_path / "after.csv")]).micro
    result = check_gate(parse_gate("max_slowdown <= 5%"), frame, compare_micro(frame, by="file"))
    assert result.failures == ["mish/native fwd 2^10 float32 cpu in after: 1.50x [1.48, 1.52] "
                               "(baseline noisy, busy, throttled)"]

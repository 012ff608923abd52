import pytest

from actbench.compare.gates import GateError, check_gate, parse_gate
from actbench.compare.load import load_reports
from actbench.compare.micro import compare_micro

from .factories import micro_row, write_micro


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
    assert "4096" in failed.failures[0] and "mish.fwd = 0.02" in failed.failures[0]
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

"""benchmarks/gpu_check.py: its CPU smoke run end to end, and its GPU verdicts on hand-made rows."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


gpu_check = load_script()


@pytest.mark.slow
def test_the_smoke_run_passes_every_claim_a_cpu_can_check(tmp_path):
    out, archive = tmp_path / "gc", tmp_path / "back" / "gpu-check.tar.gz"
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--smoke", "--out",
                             str(out), "--archive", str(archive)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = {c["name"]: c["status"]
                for c in json.loads((out / "summary.json").read_text())["claims"]}
    for claim in ("env.captured", "micro.float32.4096", "micro.timer", "micro.saved_only_input",
                  "micro.finite", "train.quick", "train.resnet20_amp_channels_last",
                  "model.resnet20_amp_channels_last",
                  "compare.report"):
        assert verdicts[claim] == "pass", claim
    for claim in ("env.nvml", "agree.do_bench", "micro.energy", "micro.copy_roofline",
                  "micro.cuda_peak_bytes", "fast.roofline_fwd", "fast.roofline_fwdbwd"):
        assert verdicts[claim] == "skip", claim  # GPU claims: never passed without a GPU
    timed = [row for row in json.loads((out / "agreement.json").read_text())
             if row["reference"] == "torch_timer"]
    assert timed and all(row["actbench_s"] > 0 and row["reference_s"] > 0 for row in timed)
    with tarfile.open(archive) as packed:
        names = packed.getnames()
    assert {"gc/summary.json", "gc/html/index.html", "gc/micro-float32-4096.csv"} <= set(names)
    assert (archive.parent / "summary.md").read_text().startswith("# gpu check: 9 passed, 0 failed")


def cuda_check(tmp_path) -> object:
    return gpu_check.Check(out=tmp_path, device="cuda:0", profile=gpu_check.FULL, smoke=False,
                           budget_s=100, archive=None)


def row(activation="mish", impl="fast", numel=16777216, **values) -> dict:
    base = {"activation": activation, "impl": impl, "numel": str(numel), "dtype": "float32",
            "pass": values.pop("pass_", "fwd"), "sm_clock_mhz": "1980", "shape": str(numel),
            "status": "ok", "timer": "events-cold",
            "copy_gbps": "2700", "peak_gbps": "3350", "throttled": "false", "roofline_frac": "0.95",
            "saved_x_input": "1.0", "peak_bytes": str(4 * numel), "finite": "true"}
    return {**base, **{key: str(value) for key, value in values.items()}}


def verdicts(check) -> dict[str, tuple[str, str]]:
    return {claim.name: (claim.status, claim.detail) for claim in check.claims}


def test_fast_kernels_below_the_roofline_target_fail_by_name(tmp_path):
    check = cuda_check(tmp_path)
    gpu_check.judge_fast_roofline(check, [
        row(), row(activation="silu", roofline_frac=0.87),
        row(activation="serf", numel=1048576, roofline_frac=0.2),  # judged at 2^24 only
        row(activation="meta_acon", roofline_frac=0.12),  # reduces: not an elementwise kernel
        row(activation="gelu", pass_="fwdbwd", roofline_frac=0.85)])
    found = verdicts(check)
    status, detail = found["fast.roofline_fwd"]
    assert status == "fail" and "silu float32 87 %" in detail
    assert "serf" not in detail and "meta_acon" not in detail
    assert "2 of 6 rows (float32)" in detail
    assert found["fast.roofline_fwdbwd"][0] == "pass"  # 85 % against the two-kernel target


def test_the_copy_reference_is_judged_against_nvml_peak_bandwidth(tmp_path):
    check = cuda_check(tmp_path)
    gpu_check.judge_timer_and_roofline(check, [row(copy_gbps=2700), row(copy_gbps=2300),
                                               row(dtype="bfloat16", copy_gbps=100)])
    found = verdicts(check)
    assert found["micro.timer"][0] == "pass"
    assert found["micro.copy_roofline"][0] == "pass"  # median 2500 of 3350: 75 %
    assert "75 %" in found["micro.copy_roofline"][1]
    slow = cuda_check(tmp_path)
    gpu_check.judge_timer_and_roofline(slow, [row(copy_gbps=1500, throttled="true",
                                                  timer="events-hot")])
    found = verdicts(slow)
    assert found["micro.copy_roofline"][0] == "fail"
    assert found["micro.timer"][0] == "fail" and found["micro.not_throttled"][0] == "fail"


def test_memory_claims_name_what_breaks_them(tmp_path):
    check = cuda_check(tmp_path)
    numel = 16777216
    gpu_check.judge_memory_and_accuracy(check, [
        row(), row(activation="acon_c", saved_x_input=1.0000004),  # its p1, p2, beta: allowed
        row(impl="memeff", saved_x_input=2.0), row(impl="native", peak_bytes=10),
        row(activation="silu", impl="native", peak_bytes=3 * 4 * numel),
        row(impl="formula", peak_bytes=3 * 4 * numel, finite="false")])
    found = verdicts(check)
    status, detail = found["micro.saved_only_input"]
    assert status == "fail" and "mish/memeff 2.0x" in detail and "acon_c" not in detail
    status, detail = found["micro.cuda_peak_bytes"]
    assert status == "fail" and "mish/native float32 0.00x" in detail
    assert "silu/native float32 3.00x" in detail and "formula" not in detail  # temporaries allowed
    assert found["micro.finite"][0] == "fail" and "mish/formula" in found["micro.finite"][1]


def test_throttling_unseen_without_clocks_is_not_a_pass(tmp_path):
    check = cuda_check(tmp_path)
    gpu_check.judge_timer_and_roofline(check, [row(sm_clock_mhz="")])
    assert verdicts(check)["micro.not_throttled"][0] == "skip"


@pytest.mark.parametrize(("ratio", "status"), [(1.04, "pass"), (0.85, "fail")])
def test_agreement_is_judged_on_every_configuration(tmp_path, monkeypatch, ratio, status):
    rows = [{"activation": activation, "impl": "native", "numel": 16777216,
             "reference": reference, "actbench_s": 1.0, "reference_s": 1.0, "ratio": value,
             "note": ""}
            for reference in ("do_bench", "torch_timer")
            for activation, value in (("relu", 1.01), ("mish", ratio))]

    def child(check, step, command, timeout):  # the measuring process, as it would write
        (check.out / "agreement.json").write_text(json.dumps(rows))

    monkeypatch.setattr(gpu_check.Check, "command", child)
    check = cuda_check(tmp_path)
    gpu_check.step_agreement(check, timeout=60)
    found = verdicts(check)
    assert found["agree.do_bench"][0] == status and found["agree.torch_timer"][0] == status
    assert f"mish/native {ratio:.3f}" in found["agree.do_bench"][1]


def test_a_broken_step_costs_only_its_own_claims(tmp_path, monkeypatch):
    def broken(check, timeout):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    def fine(check, timeout):
        check.judge("fine", True, f"ran within {timeout:.0f} s")

    Step = gpu_check.Step
    monkeypatch.setattr(gpu_check, "plan", lambda check: [
        Step("broken", broken), Step("fine", fine, needs=10, most=30),
        Step("too long", fine, needs=50, leaves=60)])
    check = cuda_check(tmp_path)
    assert gpu_check.run(check) == 1
    found = verdicts(check)
    assert found["step.broken"][0] == "fail" and "illegal memory access" in found["step.broken"][1]
    assert found["fine"] == ("pass", "ran within 30 s")
    assert found["step.too_long"][0] == "skip"
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert [claim["name"] for claim in saved["claims"]] == ["step.broken", "fine", "step.too_long"]

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


def test_the_smoke_run_passes_every_claim_a_cpu_can_check(tmp_path):
    out, archive = tmp_path / "gc", tmp_path / "back" / "gpu-check.tar.gz"
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--smoke", "--out",
                             str(out), "--archive", str(archive)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = {c["name"]: c["status"]
                for c in json.loads((out / "summary.json").read_text())["claims"]}
    for claim in ("env.captured", "micro.float32", "micro.timer", "micro.saved_only_input",
                  "micro.finite", "train.quick", "train.resnet20_amp_channels_last",
                  "compare.report"):
        assert verdicts[claim] == "pass", claim
    for claim in ("env.nvml", "agree.do_bench", "micro.energy", "micro.copy_roofline",
                  "micro.cuda_peak_bytes", "fast.roofline"):
        assert verdicts[claim] == "skip", claim  # GPU claims: never passed without a GPU
    timed = [row for row in json.loads((out / "agreement.json").read_text())
             if row["reference"] == "torch_timer"]
    assert timed and all(row["actbench_s"] > 0 and row["reference_s"] > 0 for row in timed)
    with tarfile.open(archive) as packed:
        names = packed.getnames()
    assert {"gc/summary.json", "gc/html/index.html", "gc/micro-float32.csv"} <= set(names)
    assert (archive.parent / "summary.md").read_text().startswith("# gpu check: 8 passed, 0 failed")


def cuda_check(tmp_path) -> object:
    return gpu_check.Check(out=tmp_path, device="cuda:0", profile=gpu_check.FULL, smoke=False,
                           budget_s=100, archive=None)


def row(activation="mish", impl="fast", numel=16777216, **values) -> dict:
    base = {"activation": activation, "impl": impl, "numel": str(numel), "dtype": "float32",
            "pass": "fwd", "shape": str(numel), "status": "ok", "timer": "events-cold",
            "copy_gbps": "2700", "peak_gbps": "3350", "throttled": "false", "roofline_frac": "0.95",
            "saved_x_input": "1.0", "peak_bytes": str(4 * numel), "finite": "true"}
    return {**base, **{key: str(value) for key, value in values.items()}}


def verdicts(check) -> dict[str, tuple[str, str]]:
    return {claim.name: (claim.status, claim.detail) for claim in check.claims}


def test_fast_kernels_below_the_roofline_target_fail_by_name(tmp_path):
    check = cuda_check(tmp_path)
    gpu_check.judge_fast_roofline(check, [
        row(), row(activation="silu", roofline_frac=0.87), row(activation="serf", numel=1048576,
                                                               roofline_frac=0.2)])
    status, detail = verdicts(check)["fast.roofline"]
    assert status == "fail"
    assert "silu float32 fwd 87 %" in detail and "serf" not in detail  # judged at 2^24 only


def test_the_copy_reference_is_judged_against_nvml_peak_bandwidth(tmp_path):
    check = cuda_check(tmp_path)
    gpu_check.judge_timer_and_roofline(check, [row(copy_gbps=2700), row(copy_gbps=2300)])
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
    gpu_check.judge_memory_and_accuracy(check, [
        row(), row(impl="memeff", saved_x_input=2.0), row(impl="native", peak_bytes=10),
        row(impl="formula", finite="false")])
    found = verdicts(check)
    assert found["micro.saved_only_input"][0] == "fail" and "mish/memeff 2.0x" in found[
        "micro.saved_only_input"][1]
    assert found["micro.cuda_peak_bytes"][0] == "fail" and "mish/native" in found[
        "micro.cuda_peak_bytes"][1]
    assert found["micro.finite"][0] == "fail" and "mish/formula" in found["micro.finite"][1]


@pytest.mark.parametrize(("ratio", "status"), [(1.04, "pass"), (0.85, "fail")])
def test_agreement_is_judged_at_the_largest_size(tmp_path, monkeypatch, ratio, status):
    rows = [{"activation": "mish", "impl": "native", "numel": numel, "reference": reference,
             "actbench_s": 1.0, "reference_s": 1.0, "ratio": value, "note": ""}
            for reference in ("do_bench", "torch_timer")
            for numel, value in ((1048576, 0.5), (16777216, ratio))]
    monkeypatch.setattr(gpu_check, "agreement_rows", lambda check: rows)
    check = cuda_check(tmp_path)
    gpu_check.step_agreement(check)
    found = verdicts(check)
    assert found["agree.do_bench"][0] == status and found["agree.torch_timer"][0] == status
    assert json.loads((tmp_path / "agreement.json").read_text()) == rows


def test_a_broken_step_costs_only_its_own_claims(tmp_path, monkeypatch):
    def broken(check):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    def fine(check):
        check.judge("fine", True, "ran")

    monkeypatch.setattr(gpu_check, "plan", lambda check: [("broken", 0, broken),
                                                         ("fine", 0, fine),
                                                         ("too long", 10**6, fine)])
    check = cuda_check(tmp_path)
    assert gpu_check.run(check) == 1
    found = verdicts(check)
    assert found["step.broken"][0] == "fail" and "illegal memory access" in found["step.broken"][1]
    assert found["fine"] == ("pass", "ran")
    assert found["step.too_long"][0] == "skip"
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert [claim["name"] for claim in saved["claims"]] == ["step.broken", "fine", "step.too_long"]

"""Every CUDA claim of actbench checked in one call on a lent GPU; `--device cpu --smoke` runs the
same steps in seconds so the script cannot rot.

Steps, most important first, each within a share of `--budget` seconds (default 450, under the
8 minutes one call allows): the environment with NVML facts; the agreement of actbench's CUDA-event
medians with `triton.testing.do_bench` (cold) and `torch.utils.benchmark` (hot); micro for the
papers' activations with every implementation at 2^20 and 2^24 in float32, then energy per call,
then `train quick --device cuda --seeds 0`, one epoch of ResNet-20 on synthetic CIFAR-shaped data
with AMP (bfloat16) and channels-last, micro again in bfloat16 and float16; then every claim is
judged from the reports, and `compare` and `report` run on all of it. Each step's report is
written as it runs; a step that fails or runs out of time costs only its own claims.

Needs: what `pip install -e .` brings (on the GPU image: everything but mnist1d, whose 14 kB
wheel can travel; without it `train quick` is skipped and said so), a torch with CUDA, and
Triton for the do_bench comparison. On a lent machine, from the repository root:

    PYTHONPATH=$PWD PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out /tmp/gpu-check \\
        --archive $OUT/gpu-check.tar.gz

Writes under --out: env.json, micro-*.csv (with samples and sidecars), agreement.json,
train-*.csv, compare.md, compare.json, figures-*.png, html/index.html, logs/, summary.json and
summary.md; --archive packs the folder into one file (after every step, so a call cut short
still brings back what finished) and puts summary.md beside it. Exit code 0 when no claim
failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # a bare GPU machine: the checkout, not an installed package
    sys.path.insert(0, str(REPO))
SMOOTH_FAST = ("silu", "gelu", "mish", "swish", "acon_c", "meta_acon", "tanhexp", "serf",
               "logish")
FAST_ROOFLINE_TARGET = 0.90
AGREEMENT_TOLERANCE = 0.10
COPY_OF_PEAK_TARGET = 0.70


@dataclass(frozen=True)
class Profile:
    """What each step measures: the full check on a GPU, or a seconds-long smoke run."""

    activations: str
    impls: str
    sizes: str
    dtypes: tuple[str, ...]
    max_time: float
    agreement_activations: str
    agreement_impls: str
    agreement_sizes: str
    agreement_time: float
    quick_args: tuple[str, ...]
    resnet_train_size: int
    resnet_batch: int
    resnet_activations: str


FULL = Profile(
    activations="relu,silu,gelu,mish,swish,acon_c,meta_acon,tanhexp,serf,logish", impls="all",
    sizes="1048576,16777216", dtypes=("float32", "bfloat16", "float16"), max_time=0.2,
    agreement_activations="relu,silu,mish", agreement_impls="native,fast",
    agreement_sizes="1048576,16777216", agreement_time=0.5,
    quick_args=("--seeds", "0"), resnet_train_size=10_000, resnet_batch=128,
    resnet_activations="[relu, mish, {name: mish, impl: fast}]")

SMOKE = Profile(
    activations="relu,mish", impls="native,memeff", sizes="4096", dtypes=("float32",), max_time=0.02,
    agreement_activations="relu,mish", agreement_impls="native", agreement_sizes="4096",
    agreement_time=0.05,
    quick_args=("--seeds", "0", "--act", "relu", "--set", "train.epochs=1",
                "--set", "data.num_samples=400"),
    resnet_train_size=64, resnet_batch=32, resnet_activations="[relu, mish]")
# (smoke leaves out the compiled implementations: their first compilation takes 20 s on a CPU)


@dataclass
class Claim:
    """One claim and its verdict: pass, fail or skip (with why)."""

    name: str
    status: str
    detail: str


@dataclass
class Check:
    """The run's state: where files go, the time left, the claims judged so far."""

    out: Path
    device: str
    profile: Profile
    smoke: bool
    budget_s: float
    archive: Path | None
    started: float = field(default_factory=time.monotonic)
    claims: list[Claim] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)

    def judge(self, name: str, ok: bool | None, detail: str) -> None:
        """Record a claim: True pass, False fail, None skip."""
        status = "skip" if ok is None else ("pass" if ok else "fail")
        self.claims.append(Claim(name, status, detail))
        print(f"  {status.upper():4} {name}: {detail}", flush=True)

    def actbench(self, step: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
        """`python -m actbench ARGS` in its own process (a CUDA fault stays there), logged."""
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]), "COLUMNS": "200"}
        command = [sys.executable, "-m", "actbench", *args]
        try:
            result = subprocess.run(command, cwd=self.out, env=env, capture_output=True,
                                    text=True, timeout=max(timeout, 1.0), check=False)
        except subprocess.TimeoutExpired as expired:
            result = subprocess.CompletedProcess(command, 124, _text(expired.stdout),
                                                 _text(expired.stderr) + "\n(timed out)")
        with open(logs / f"{step}.log", "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n{result.stdout}\n{result.stderr}\n"
                      f"exit {result.returncode}\n")
        return result


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def number(text: str | None) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# -- steps ----------------------------------------------------------------------------------------

def step_environment(check: Check) -> None:
    """`actbench env --json`: torch sees the GPU, NVML reads its facts, clocks and throttle state."""
    result = check.actbench("env", "env", "--json", timeout=min(60, check.left()))
    if result.returncode != 0:
        check.judge("env.captured", False, f"actbench env exited {result.returncode}")
        return
    (check.out / "env.json").write_text(result.stdout, encoding="utf-8")
    environment = json.loads(result.stdout)
    check.judge("env.captured", True, f"torch {environment.get('torch')}, "
                f"{environment.get('cpu')}, {len(environment.get('gpus') or [])} GPU(s)")
    if not check.cuda:
        check.judge("env.nvml", None, "no GPU on this run")
        return
    gpus = environment.get("gpus") or []
    needed = ("name", "driver", "peak_bandwidth_gbps", "max_sm_clock_mhz", "uuid")
    missing = [key for key in needed if not gpus or gpus[0].get(key) in (None, "", "n/a")]
    check.judge("env.nvml", bool(gpus) and not missing,
                f"{gpus[0].get('name') if gpus else 'no GPU'}; missing: {', '.join(missing) or 'none'}")
    check.judge("env.health", *_health_now())


def _health_now() -> tuple[bool, str]:
    from actbench.nvml import Nvml, nvml_index

    nvml = Nvml()
    index = nvml_index("cuda:0", nvml) if nvml.available else None
    health = nvml.health(index) if index is not None else None
    if health is None:
        return False, "NVML gave no clocks or throttle reasons for cuda:0"
    return (health.sm_clock_mhz is not None and health.throttle_mask is not None,
            f"SM {health.sm_clock_mhz} MHz, memory {health.mem_clock_mhz} MHz, "
            f"{health.temperature_c} C, {health.power_w} W, throttle reasons "
            f"{', '.join(health.throttle_reasons) or 'none'}")


def step_agreement(check: Check) -> None:
    """actbench's medians against do_bench (both flush L2: cold) and torch.utils.benchmark (hot),
    on the same callables in this process."""
    rows = agreement_rows(check)
    (check.out / "agreement.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    for reference, mode in (("do_bench", "cold"), ("torch_timer", "hot")):
        judged = [row for row in rows if row["reference"] == reference]
        if not judged or all(row["ratio"] is None for row in judged):
            why = judged[0]["note"] if judged else "not measured"
            check.judge(f"agree.{reference}", None, why)
            continue
        largest = max(row["numel"] for row in judged)
        at_largest = [row for row in judged if row["numel"] == largest and row["ratio"]]
        worst = max(at_largest, key=lambda row: abs(row["ratio"] - 1))
        text = ", ".join(f"{r['activation']}/{r['impl']} {r['ratio']:.3f}" for r in at_largest)
        ok = None if check.smoke else abs(worst["ratio"] - 1) <= AGREEMENT_TOLERANCE
        check.judge(f"agree.{reference}", ok, f"actbench {mode} / {reference} at {largest} "
                    f"elements: {text}" + (" (smoke: not judged)" if check.smoke else ""))


def agreement_rows(check: Check) -> list[dict]:
    from actbench.micro.plan import make_plan
    from actbench.micro.workload import make_input, make_workload

    profile = check.profile
    plan = make_plan([profile.agreement_activations], impl=profile.agreement_impls,
                     devices=[check.device], sizes=[profile.agreement_sizes], passes=["fwd"])
    rows = []
    for config in plan.configs:
        if check.left() < 60:
            break
        flat_x = make_input(config.numel, "float32", check.device)
        flat_g = make_input(config.numel, "float32", check.device, seed=1)
        workload = make_workload(config, flat_x, flat_g)
        workload.call()
        base = {"activation": config.activation.label, "impl": config.impl, "numel": config.numel}
        for reference, cold in (("do_bench", True), ("torch_timer", False)):
            ours = _actbench_median(config, cold, profile.agreement_time)
            theirs, note = _reference_median(reference, workload.call, check)
            ratio = ours / theirs if ours and theirs else None
            rows.append({**base, "reference": reference, "actbench_s": ours,
                         "reference_s": theirs, "ratio": ratio, "note": note})
        del flat_x, flat_g, workload
    if check.cuda:  # hand the memory back before the next steps' processes need it
        import torch

        torch.cuda.empty_cache()
    return rows


def _actbench_median(config, cold: bool, max_time: float) -> float | None:
    from actbench.micro.runner import Runner, Settings
    from actbench.micro.stopping import StoppingRule

    rows: list[dict] = []
    Runner(Settings(stopping=StoppingRule(max_time=max_time), cold=cold, energy=False), {},
           rows.append).run([config])
    return number(str(rows[0].get("median_s"))) if rows else None


def _reference_median(reference: str, call, check: Check) -> tuple[float | None, str]:
    if reference == "do_bench":
        if not check.cuda:
            return None, "do_bench times CUDA only"
        try:
            from triton.testing import do_bench
        except ImportError:
            return None, "Triton is not installed"
        return do_bench(call, warmup=25, rep=200, return_mode="median") / 1e3, ""
    import torch.utils.benchmark as torch_benchmark

    timer = torch_benchmark.Timer(stmt="call()", globals={"call": call})
    return timer.blocked_autorange(min_run_time=check.profile.agreement_time).median, ""


def step_micro(check: Check, dtype: str, reserve_s: float) -> None:
    """One dtype of the micro sweep, every implementation, fwd and fwdbwd, no energy."""
    profile = check.profile
    report = check.out / f"micro-{dtype}.csv"
    result = check.actbench(
        f"micro-{dtype}", "micro", "--act", profile.activations, "--impl", profile.impls, "--size",
        profile.sizes, "--dtype", dtype, "--pass", "fwd,fwdbwd", "--device", check.device,
        "--max-time", str(profile.max_time), "--no-energy", "--out", str(report), "--samples",
        str(report.with_suffix(".samples.csv")), "-q", timeout=check.left() - reserve_s)
    rows = read_rows(report)
    failed = [f"{r['activation']}/{r['impl']} {r['pass']} {r['shape']}: {r['status']}"
              for r in rows if r["status"] not in ("ok", "noisy")]
    finished = "finished" if result.returncode == 0 else f"stopped (exit {result.returncode})"
    check.judge(f"micro.{dtype}", result.returncode == 0 and not failed and bool(rows),
                f"{len(rows)} configurations, {finished}; not measured: "
                f"{'; '.join(failed[:6]) or 'none'}")


def step_energy(check: Check) -> None:
    """Energy per call over NVML's >= 1 s window, on a few configurations."""
    if not check.cuda:
        check.judge("micro.energy", None, "energy is read from NVML on CUDA only")
        return
    report = check.out / "micro-energy.csv"
    check.actbench("micro-energy", "micro", "--act", "relu,mish", "--impl", "native,fast",
                   "--size", "16777216", "--pass", "fwd", "--device", check.device,
                   "--out", str(report), "-q", timeout=min(90, check.left() - 150))
    watts = []
    for row in read_rows(report):
        energy, seconds = number(row.get("energy_j_per_call")), number(row.get("median_s"))
        if energy and seconds:
            watts.append((f"{row['activation']}/{row['impl']}", energy / seconds))
    ok = bool(watts) and all(30 <= w <= 1500 for _, w in watts)
    check.judge("micro.energy", ok, ", ".join(f"{name} {w:.0f} W" for name, w in watts)
                or "no energy column")


def step_train_quick(check: Check) -> None:
    """`train quick` on the device: every run finishes, accuracies where the CPU puts them."""
    try:
        import mnist1d  # noqa: F401
    except ImportError:
        check.judge("train.quick", None, "mnist1d is not installed (carry its wheel)")
        return
    report = check.out / "train-quick.csv"
    result = check.actbench("train-quick", "train", "quick", "--device", check.device,
                            *check.profile.quick_args, "--out", str(report), "-q",
                            timeout=min(150, check.left() - 90))
    rows = read_rows(report)
    accuracy = {}
    for row in rows:
        accuracy.setdefault(row["model.name"], []).append(number(row["final_test_acc"]) or 0.0)
    detail = ", ".join(f"{model} {100 * statistics.mean(values):.1f} %"
                       for model, values in accuracy.items())
    bad = [row["activation"] for row in rows if row["status"] != "ok"]
    # quick.yaml's CPU figures: MLP 57-61 %, 1-D CNN 81-92 % (30 epochs); a wide margin either way
    in_range = check.smoke or (45 <= 100 * statistics.mean(accuracy.get("mlp", [0])) <= 70
                               and 70 <= 100 * statistics.mean(accuracy.get("cnn1d", [0])) <= 97)
    check.judge("train.quick", result.returncode == 0 and rows and not bad and in_range,
                f"{len(rows)} runs, not ok: {', '.join(bad) or 'none'}; mean accuracy {detail}")


RESNET_SUITE = """\
name: gpu-check-resnet20
description: one epoch of ResNet-20 on synthetic CIFAR-shaped data, AMP and channels-last.
data: {{name: synthetic, shape: [3, 32, 32], classes: 10, train_size: {train}, test_size: {test}}}
model: {{name: resnet, depth: 20}}
optim: {{name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.0005}}
train: {{epochs: 1, batch_size: {batch}, device: {device}, amp: true, channels_last: true}}
activations: {activations}
seeds: [0]
baseline: relu
"""


def step_train_resnet(check: Check) -> None:
    """ResNet-20, AMP (bfloat16 where the GPU has it) and channels-last: every run trains."""
    profile = check.profile
    suite = check.out / "resnet20.yaml"
    suite.write_text(RESNET_SUITE.format(train=profile.resnet_train_size,
                                         test=max(profile.resnet_train_size // 5, 32),
                                         batch=profile.resnet_batch, device=check.device,
                                         activations=profile.resnet_activations),
                     encoding="utf-8")
    report = check.out / "train-resnet20.csv"
    result = check.actbench("train-resnet20", "train", str(suite), "--out", str(report), "-q",
                            timeout=min(150, check.left() - 60))
    rows = read_rows(report)
    text = "; ".join(f"{r['activation']}/{r['impl']} {r['status']} "
                     f"{number(r['samples_per_s']) or 0:.0f} samples/s, peak "
                     f"{(number(r['peak_bytes']) or 0) / 2**20:.0f} MiB ({r['peak_kind']})"
                     for r in rows)
    expected = len(yaml.safe_load(profile.resnet_activations))
    ok = result.returncode == 0 and len(rows) == expected and all(r["status"] == "ok" for r in rows)
    check.judge("train.resnet20_amp_channels_last", ok, text or f"exit {result.returncode}")


def step_judge_micro(check: Check) -> None:
    """Claims read off the micro reports: timer, roofline, memory, accuracy, fast kernels."""
    rows = [row for path in sorted(check.out.glob("micro-*.csv"))
            if not path.name.endswith(".samples.csv") for row in read_rows(path)]
    measured = [row for row in rows if row["status"] in ("ok", "noisy")]
    if not measured:
        check.judge("micro.measured", False, "no micro row was measured")
        return
    judge_timer_and_roofline(check, measured)
    judge_memory_and_accuracy(check, measured)
    judge_fast_roofline(check, measured)


def judge_timer_and_roofline(check: Check, rows: list[dict]) -> None:
    modes = sorted({row["timer"] for row in rows})
    expected = "events-cold" if check.cuda else "wallclock"
    check.judge("micro.timer", modes == [expected], f"timer modes {', '.join(modes)}")
    largest = max(int(row["numel"]) for row in rows)
    copies = [number(r["copy_gbps"]) for r in rows if int(r["numel"]) == largest]
    peaks = [number(r["peak_gbps"]) for r in rows if number(r["peak_gbps"])]
    copy = statistics.median([c for c in copies if c]) if any(copies) else None
    if not check.cuda or not peaks or copy is None:
        check.judge("micro.copy_roofline", None if not check.cuda else False,
                    f"copy {copy or 0:.0f} GB/s; NVML peak {'n/a' if not peaks else peaks[0]}")
        return
    fraction = copy / peaks[0]
    check.judge("micro.copy_roofline", fraction >= COPY_OF_PEAK_TARGET,
                f"copy {copy:.0f} GB/s at {largest} elements = {100 * fraction:.0f} % of NVML's "
                f"peak {peaks[0]:.0f} GB/s (target {100 * COPY_OF_PEAK_TARGET:.0f} %)")
    throttled = [f"{r['activation']}/{r['impl']}" for r in rows if r["throttled"] == "true"]
    check.judge("micro.not_throttled", not throttled,
                f"throttled: {', '.join(throttled[:8]) or 'none'}")


def judge_memory_and_accuracy(check: Check, rows: list[dict]) -> None:
    lean = [r for r in rows if r["impl"] in ("memeff", "fast")]
    heavy = [f"{r['activation']}/{r['impl']} {r['saved_x_input']}x" for r in lean
             if number(r["saved_x_input"]) is None or number(r["saved_x_input"]) > 1.0 + 1e-9]
    check.judge("micro.saved_only_input", bool(lean) and not heavy,
                f"{len(lean)} memeff/fast rows; saving more: {', '.join(heavy[:6]) or 'none'}")
    if check.cuda:
        forward = [r for r in rows if r["pass"] == "fwd"]
        low = [f"{r['activation']}/{r['impl']}" for r in forward
               if (number(r["peak_bytes"]) or 0) < int(r["numel"]) * _element_size(r["dtype"])]
        check.judge("micro.cuda_peak_bytes", bool(forward) and not low,
                    f"{len(forward)} fwd rows; peak below one output: {', '.join(low[:6]) or 'none'}")
    else:
        check.judge("micro.cuda_peak_bytes", None, "the allocator peak is read on CUDA only")
    infinite = [f"{r['activation']}/{r['impl']} {r['dtype']}" for r in rows
                if r["finite"] not in ("true", "")]
    check.judge("micro.finite", not infinite, f"not finite: {', '.join(infinite[:6]) or 'none'}")


def judge_fast_roofline(check: Check, rows: list[dict]) -> None:
    largest = max(int(row["numel"]) for row in rows)
    fast = [r for r in rows if r["impl"] == "fast" and int(r["numel"]) == largest
            and r["activation"] in SMOOTH_FAST]
    if not check.cuda or not fast:
        check.judge("fast.roofline", None, "judged on CUDA at 2^24 only" if not check.cuda
                    else "no fast rows at the largest size")
        return
    below = [f"{r['activation']} {r['dtype']} {r['pass']} {100 * (number(r['roofline_frac']) or 0):.0f} %"
             for r in fast if (number(r["roofline_frac"]) or 0) < FAST_ROOFLINE_TARGET]
    check.judge("fast.roofline", not below, f"{len(fast)} fast rows at {largest}; below "
                f"{100 * FAST_ROOFLINE_TARGET:.0f} % of copy: {'; '.join(below) or 'none'}")


def _element_size(dtype: str) -> int:
    return {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}.get(dtype, 4)


def step_compare(check: Check) -> None:
    """`compare` (Markdown, JSON, figures) and `report` (HTML) over every report written."""
    reports = [str(p) for p in sorted(check.out.glob("*.csv"))]
    if not reports:
        check.judge("compare.report", False, "no report to compare")
        return
    timeout = max(check.left(), 60)
    results = [check.actbench("compare", "compare", *reports, "--format", fmt, "-o",
                              str(check.out / f"compare.{suffix}"), timeout=timeout)
               for fmt, suffix in (("markdown", "md"), ("json", "json"))]
    results.append(check.actbench("compare", "compare", *reports, "-q", "--plot",
                                  str(check.out / "figures.png"), timeout=timeout))
    results.append(check.actbench("report", "report", *reports, "-o", str(check.out / "html"),
                                  timeout=timeout))
    codes = [r.returncode for r in results]
    figures = sorted(p.name for p in check.out.glob("figures*.png"))
    ok = codes == [0, 0, 0, 0] and (check.out / "html" / "index.html").exists()
    check.judge("compare.report", ok, f"exit codes {codes}; figures {', '.join(figures)}")


# -- driver ---------------------------------------------------------------------------------------

def plan(check: Check) -> list[tuple[str, float, Callable[[Check], None]]]:
    """(name, seconds the step needs at least, step), most important first."""
    first, *later = check.profile.dtypes
    steps = [("environment", 5, step_environment), ("agreement", 60, step_agreement),
             (f"micro {first}", 60, lambda c: step_micro(c, first, reserve_s=200)),
             ("energy", 30, step_energy), ("train quick", 40, step_train_quick),
             ("train resnet20", 40, step_train_resnet)]
    steps += [(f"micro {dtype}", 40, lambda c, d=dtype: step_micro(c, d, reserve_s=45))
              for dtype in later]
    return steps + [("judge micro", 0, step_judge_micro), ("compare", 0, step_compare)]


def run(check: Check) -> int:
    check.out.mkdir(parents=True, exist_ok=True)
    print(f"gpu check on {check.device}{' (smoke)' if check.smoke else ''}, "
          f"{check.budget_s:.0f} s budget, output in {check.out}", flush=True)
    for name, needs, step in plan(check):
        if check.left() < needs:
            check.judge(f"step.{name.replace(' ', '_')}", None,
                        f"skipped: {check.left():.0f} s left, the step needs {needs} s")
        else:
            run_step(check, name, step)
        save(check)
    failed = [claim.name for claim in check.claims if claim.status == "fail"]
    print(summary_text(check), flush=True)
    return 1 if failed else 0


def run_step(check: Check, name: str, step: Callable[[Check], None]) -> None:
    print(f"[{check.budget_s - check.left():5.0f} s] {name}", flush=True)
    started = time.monotonic()
    try:
        step(check)
    except Exception as error:  # noqa: BLE001 - one broken step costs only its own claims
        check.judge(f"step.{name.replace(' ', '_')}", False,
                    f"{type(error).__name__}: {' '.join(str(error).split())[:300]}")
    check.steps.append({"step": name, "seconds": round(time.monotonic() - started, 1)})


def summary_text(check: Check) -> str:
    counts = {status: sum(c.status == status for c in check.claims)
              for status in ("pass", "fail", "skip")}
    lines = [f"# gpu check: {counts['pass']} passed, {counts['fail']} failed, "
             f"{counts['skip']} skipped ({check.device}{', smoke' if check.smoke else ''}, "
             f"{check.budget_s - check.left():.0f} s)", "", "| claim | verdict | detail |",
             "|---|---|---|"]
    lines += [f"| {c.name} | {c.status} | {c.detail.replace('|', '/')} |" for c in check.claims]
    lines += ["", "| step | seconds |", "|---|---:|"]
    lines += [f"| {s['step']} | {s['seconds']} |" for s in check.steps]
    return "\n".join(lines) + "\n"


def save(check: Check) -> None:
    """summary.json and summary.md now, and the archive, so a call cut short keeps them."""
    (check.out / "summary.json").write_text(json.dumps(
        {"device": check.device, "smoke": check.smoke, "claims": [asdict(c) for c in check.claims],
         "steps": check.steps}, indent=2), encoding="utf-8")
    text = summary_text(check)
    (check.out / "summary.md").write_text(text, encoding="utf-8")
    if check.archive is not None:
        check.archive.parent.mkdir(parents=True, exist_ok=True)
        partial = check.archive.with_name(check.archive.name + ".part")
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(check.out, arcname=check.out.name)
        os.replace(partial, check.archive)
        shutil.copyfile(check.out / "summary.md", check.archive.parent / "summary.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: the steps in seconds")
    parser.add_argument("--out", type=Path, default=Path("reports/gpu-check"))
    parser.add_argument("--archive", type=Path, default=None,
                        help="also pack --out into this .tar.gz after every step")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for everything")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty; give a new folder")
    check = Check(out=args.out.resolve(), device=args.device,
                  profile=SMOKE if args.smoke else FULL, smoke=args.smoke,
                  budget_s=args.budget, archive=args.archive)
    return run(check)


if __name__ == "__main__":
    sys.exit(main())

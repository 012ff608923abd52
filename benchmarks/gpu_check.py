"""Every CUDA claim of actbench checked in one call on a lent GPU; `--device cpu --smoke` runs the
same steps in seconds so the script cannot rot.

Steps, most important first, each given a share of `--budget` seconds (default 450, under the
8 minutes one call allows) and skipped, with a line saying so, where too little is left: the
environment with NVML facts; the agreement of actbench's CUDA-event medians with
`triton.testing.do_bench` (cold) and `torch.utils.benchmark` (hot) at 2^24; micro for the papers'
activations with every implementation at 2^24 in float32; energy per call; `train quick --device
cuda --seeds 0`; one epoch of ResNet-20 on synthetic CIFAR-shaped data with AMP (bfloat16) and
channels-last; micro at 2^20 and in bfloat16 and float16; then every claim is judged from the
reports, and `compare` and `report` run on all of it. Every measuring step runs in a process of
its own (a CUDA fault or a hang stays there and is killed at its time), writes its report as it
goes, and costs only its own claims when it fails.

Needs: what `pip install -e .` brings (on the GPU image: everything but mnist1d, whose 14 kB
wheel can travel; without it `train quick` is skipped and said so), a torch with CUDA, and
Triton for the do_bench comparison. On a lent machine, from the repository root:

    PYTHONPATH=$PWD PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out /tmp/gpu-check \\
        --archive $OUT/gpu-check.tar.gz

Writes under --out: env.json, micro-<dtype>-<size>.csv (with samples and sidecars), agreement.json,
train-*.csv, compare.md, compare.json, figures-*.png, html/index.html, logs/, summary.json and
summary.md; --archive packs the folder into one file (after every step, so a call cut short
still brings back what finished) and puts summary.md beside it. Exit code 0 when no claim
failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
LOG_LOCK = threading.Lock()  # steps that run commands side by side share a log file
SCRIPT = Path(__file__).resolve()
if str(REPO) not in sys.path:  # a bare GPU machine: the checkout, not an installed package
    sys.path.insert(0, str(REPO))

ALL_TEN = "relu,silu,gelu,mish,swish,acon_c,meta_acon,tanhexp,serf,logish"
# the transformer MLP's activations: gated ones (2h in, h out; fast keeps only the input, through
# Triton on CUDA) and squared ReLU, judged with the rest (every row measured, saved and accuracy)
WITH_GATED = ALL_TEN + ",swiglu,geglu,relu2"
# fast kernels that are one elementwise pass each way: the copy roofline is within their reach.
# swish and the ACON family also reduce their parameters' gradients, meta-ACON its channel means.
ELEMENTWISE_FAST = ("silu", "gelu", "mish", "tanhexp", "serf", "logish")
FAST_FWD_TARGET = 0.90
FAST_FWDBWD_TARGET = 0.80  # two kernels with autograd's bookkeeping between them
AGREEMENT_TOLERANCE = 0.10
COPY_OF_PEAK_TARGET = 0.70
SAVED_SLACK = 0.01  # trainable parameters saved beside the input (ACON's p1, p2, beta)
PEAK_SLACK = 1.25  # a forward of native / memeff / fast allocates its output and little else


@dataclass(frozen=True)
class MicroRun:
    """One `actbench micro` invocation of the sweep: a dtype and a size (one runner group, so a
    run stopped by the clock loses no finished group), these implementations and activations."""

    dtype: str
    size: str
    impls: str
    activations: str = ALL_TEN

    @property
    def name(self) -> str:
        return f"{self.dtype}.{self.size}"


@dataclass(frozen=True)
class Profile:
    """What each step measures: the full check on a GPU, or a seconds-long smoke run."""

    micro_runs: tuple[MicroRun, ...]
    max_time: float
    agreement_activations: str
    agreement_impls: str
    agreement_size: str
    agreement_time: float
    quick_args: tuple[str, ...]
    train_args: tuple[str, ...]  # for both train steps
    resnet_train_size: int
    resnet_batch: int
    resnet_activations: str
    model_batches: str
    model_max_time: float


FULL = Profile(
    micro_runs=(MicroRun("float32", "16777216", "all"),
                MicroRun("float32", "1048576", "all", WITH_GATED),
                MicroRun("bfloat16", "16777216", "native,memeff,fast", WITH_GATED),
                MicroRun("float16", "16777216", "native,memeff,fast", WITH_GATED),
                MicroRun("bfloat16", "1048576", "all"), MicroRun("float16", "1048576", "all")),
    max_time=0.1, agreement_activations="relu,silu,mish", agreement_impls="native,fast",
    agreement_size="16777216", agreement_time=0.5, quick_args=("--seeds", "0"), train_args=(),
    resnet_train_size=10_000, resnet_batch=128,
    resnet_activations="[relu, mish, {name: mish, impl: fast}]",
    model_batches="32,256", model_max_time=0.5)

SMOKE = Profile(  # no compiled implementations: their first compilation takes 20 s on a CPU
    micro_runs=(MicroRun("float32", "4096", "native,memeff", "relu,mish"),), max_time=0.02,
    agreement_activations="relu,mish", agreement_impls="native", agreement_size="4096",
    agreement_time=0.05,
    quick_args=("--seeds", "0", "--act", "relu", "--set", "train.epochs=1",
                "--set", "data.num_samples=400"),
    train_args=("--executor", "inline"),  # the runs in the command's process: no worker start-ups
    resnet_train_size=64, resnet_batch=32, resnet_activations="[relu, mish]",
    model_batches="4", model_max_time=0.02)


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
        return self.command(step, [sys.executable, "-m", "actbench", *args], timeout)

    def command(self, step: str, command: list[str], timeout: float) -> subprocess.CompletedProcess:
        """Run `command` in a session of its own, killed whole (compile workers included) when
        `timeout` runs out; its output goes to logs/<step>.log."""
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]), "COLUMNS": "200"}
        process = subprocess.Popen(command, cwd=self.out, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=max(timeout, 1.0))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            stderr += f"\n(killed after {timeout:.0f} s)"
        with LOG_LOCK, open(logs / f"{step}.log", "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n{stdout}\n{stderr}\nexit {process.returncode}\n")
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def read_rows(path: Path) -> list[dict[str, str]]:
    """A report's complete rows (a row cut off by a killed step is left out); none if absent."""
    from actbench.records.writer import read_rows as read_report

    return read_report(path) if path.exists() else []


def number(text: str | None) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def device_index(device: str) -> int:
    return int(device.partition(":")[2] or 0)


# -- steps: each takes the check and the seconds it may use ---------------------------------------

def step_environment(check: Check, timeout: float) -> None:
    """`actbench env --json`: torch sees the GPU; NVML reads its facts, clocks, throttle state."""
    result = check.actbench("env", "env", "--json", timeout=timeout)
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
    gpus = {gpu.get("index"): gpu for gpu in environment.get("gpus") or []}
    gpu = gpus.get(device_index(check.device), {})
    needed = ("name", "driver", "peak_bandwidth_gbps", "max_sm_clock_mhz", "uuid")
    missing = [key for key in needed if gpu.get(key) in (None, "", "n/a")]
    check.judge("env.nvml", bool(gpu) and not missing,
                f"{gpu.get('name', 'no such GPU')}; missing: {', '.join(missing) or 'none'}")
    check.judge("env.health", *_health_now(check.device))


def _health_now(device: str) -> tuple[bool, str]:
    from actbench.nvml import Nvml, nvml_index

    nvml = Nvml()
    index = nvml_index(device, nvml) if nvml.available else None
    health = nvml.health(index) if index is not None else None
    if health is None:
        return False, f"NVML gave no clocks or throttle reasons for {device}"
    return (health.sm_clock_mhz is not None and health.throttle_mask is not None,
            f"SM {health.sm_clock_mhz} MHz, memory {health.mem_clock_mhz} MHz, "
            f"{health.temperature_c} C, {health.power_w} W, throttle reasons "
            f"{', '.join(health.throttle_reasons) or 'none'}")


def step_agreement(check: Check, timeout: float) -> None:
    """actbench's medians against do_bench (both flush L2: cold) and torch.utils.benchmark (hot),
    on the same callables, measured in a process of its own that writes each row as it goes."""
    target = check.out / "agreement.json"
    check.command("agreement", [sys.executable, str(SCRIPT), "--agreement-into", str(target),
                                "--device", check.device, *(["--smoke"] if check.smoke else [])],
                  timeout)
    rows = json.loads(target.read_text(encoding="utf-8")) if target.exists() else []
    for reference, mode in (("do_bench", "cold"), ("torch_timer", "hot")):
        judged = [row for row in rows if row["reference"] == reference]
        measured = [row for row in judged if row["ratio"]]
        if not measured:
            check.judge(f"agree.{reference}", None, judged[0]["note"] if judged else "not measured")
            continue
        worst = max(measured, key=lambda row: abs(row["ratio"] - 1))
        text = ", ".join(f"{r['activation']}/{r['impl']} {r['ratio']:.3f}" for r in measured)
        ok = None if check.smoke else abs(worst["ratio"] - 1) <= AGREEMENT_TOLERANCE
        check.judge(f"agree.{reference}", ok, f"actbench {mode} / {reference} at "
                    f"{check.profile.agreement_size} elements: {text}"
                    + (" (smoke: not judged)" if check.smoke else ""))


def write_agreement(check: Check, target: Path) -> None:
    """The agreement rows, the file rewritten after each one (a kill keeps what finished)."""
    from actbench.micro.plan import make_plan
    from actbench.micro.workload import make_input, make_workload

    profile = check.profile
    plan = make_plan([profile.agreement_activations], impl=profile.agreement_impls,
                     devices=[check.device], sizes=[profile.agreement_size], passes=["fwd"])
    rows: list[dict] = []
    for config in plan.configs:
        workload = make_workload(config, make_input(config.numel, "float32", config.device),
                                 make_input(config.numel, "float32", config.device, seed=1))
        workload.call()
        for reference, cold in (("do_bench", True), ("torch_timer", False)):
            ours = _actbench_median(config, cold, profile.agreement_time)
            theirs, note = _reference_median(reference, workload.call, check)
            rows.append({"activation": config.activation.label, "impl": config.impl,
                         "numel": config.numel, "reference": reference, "actbench_s": ours,
                         "reference_s": theirs, "ratio": ours / theirs if ours and theirs else None,
                         "note": note})
            partial = target.with_name(target.name + ".part")
            partial.write_text(json.dumps(rows, indent=2), encoding="utf-8")
            os.replace(partial, target)


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


def step_micro(check: Check, run: MicroRun, timeout: float) -> None:
    """One dtype and size of the micro sweep, fwd and fwdbwd, no energy."""
    report = check.out / f"micro-{run.dtype}-{run.size}.csv"
    result = check.actbench(
        f"micro-{run.name}", "micro", "--act", run.activations, "--impl", run.impls, "--size",
        run.size, "--dtype", run.dtype, "--pass", "fwd,fwdbwd", "--device", check.device,
        "--max-time", str(check.profile.max_time), "--no-energy", "--out", str(report),
        "--samples", str(report.with_suffix(".samples.csv")), "-q", timeout=timeout)
    rows = read_rows(report)
    failed = [f"{r['activation']}/{r['impl']} {r['pass']}: {r['status']}"
              for r in rows if r["status"] not in ("ok", "noisy")]
    finished = "finished" if result.returncode == 0 else f"stopped (exit {result.returncode})"
    check.judge(f"micro.{run.name}", result.returncode == 0 and not failed and bool(rows),
                f"{len(rows)} configurations, {finished}; not measured: "
                f"{'; '.join(failed[:6]) or 'none'}")


def step_energy(check: Check, timeout: float) -> None:
    """Energy per call over NVML's >= 1 s window, on a few configurations."""
    if not check.cuda:
        check.judge("micro.energy", None, "energy is read from NVML on CUDA only")
        return
    report = check.out / "micro-energy.csv"
    check.actbench("micro-energy", "micro", "--act", "relu,mish", "--impl", "native,fast",
                   "--size", "16777216", "--pass", "fwd", "--device", check.device,
                   "--out", str(report), "-q", timeout=timeout)
    watts = []
    for row in read_rows(report):
        energy, seconds = number(row.get("energy_j_per_call")), number(row.get("median_s"))
        if energy and seconds:
            watts.append((f"{row['activation']}/{row['impl']}", energy / seconds))
    ok = bool(watts) and all(30 <= w <= 1500 for _, w in watts)
    check.judge("micro.energy", ok, ", ".join(f"{name} {w:.0f} W" for name, w in watts)
                or "no energy column")


def step_train_quick(check: Check, timeout: float) -> None:
    """`train quick` on the device: every run finishes, accuracies where the CPU puts them."""
    try:
        import mnist1d  # noqa: F401
    except ImportError:
        check.judge("train.quick", None, "mnist1d is not installed (carry its wheel)")
        return
    report = check.out / "train-quick.csv"
    result = check.actbench("train-quick", "train", "quick", "--device", check.device,
                            *check.profile.quick_args, *check.profile.train_args,
                            "--out", str(report), "-q",
                            timeout=timeout)
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
    check.judge("train.quick", result.returncode == 0 and bool(rows) and not bad and in_range,
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


def step_train_resnet(check: Check, timeout: float) -> None:
    """ResNet-20, AMP (bfloat16 where the GPU has it) and channels-last: every run trains."""
    profile = check.profile
    suite = check.out / "resnet20.yaml"
    suite.write_text(RESNET_SUITE.format(train=profile.resnet_train_size,
                                         test=max(profile.resnet_train_size // 5, 32),
                                         batch=profile.resnet_batch, device=check.device,
                                         activations=profile.resnet_activations),
                     encoding="utf-8")
    report = check.out / "train-resnet20.csv"
    result = check.actbench("train-resnet20", "train", str(suite), *profile.train_args,
                            "--out", str(report), "-q", timeout=timeout)
    rows = read_rows(report)
    text = "; ".join(f"{r['activation']}/{r['impl']} {r['status']} amp={r['amp']} "
                     f"{number(r['samples_per_s']) or 0:.0f} samples/s, peak "
                     f"{(number(r['peak_bytes']) or 0) / 2**20:.0f} MiB ({r['peak_kind']})"
                     for r in rows)
    expected = len(yaml.safe_load(profile.resnet_activations))
    ok = (result.returncode == 0 and len(rows) == expected
          and all(r["status"] == "ok" and r["amp"] == "true" for r in rows))
    check.judge("train.resnet20_amp_channels_last", ok, text or f"exit {result.returncode}")


def step_model(check: Check, timeout: float) -> None:
    """`actbench model resnet20` under AMP and channels-last: every configuration measured, the
    activation's share against identity, and the step's peak from the CUDA allocator."""
    report = check.out / "model-resnet20.csv"
    result = check.actbench("model-resnet20", "model", "resnet20", "--act", "relu,mish",
                            "--device", check.device, "--batch-size", check.profile.model_batches,
                            "--amp", "--channels-last", "--max-time",
                            str(check.profile.model_max_time), "--out", str(report), "-q",
                            timeout=timeout)
    rows = read_rows(report)
    expected = 3 * 2 * len(check.profile.model_batches.split(","))  # identity, relu, mish x modes
    measured = [r for r in rows if r["status"] in ("ok", "noisy")
                and (number(r["samples_per_s"]) or 0) > 0 and r["replaced"] == "19"]
    shares = [r for r in rows if r["activation"] == "mish" and number(r["act_share"]) is not None]
    peaks = {r["peak_kind"] for r in rows}
    timers = {r["timer"] for r in rows}
    ok = (result.returncode == 0 and len(rows) == expected and len(measured) == expected
          and len(shares) == expected // 3
          and (not check.cuda or (peaks == {"cuda_allocator"} and timers == {"events-hot"})))
    text = "; ".join(f"{r['activation']} {r['mode']} b{r['batch_size']} {r['status']} "
                     f"{number(r['samples_per_s']) or 0:.0f}/s" for r in rows)
    check.judge("model.resnet20_amp_channels_last", ok,
                f"{text or f'exit {result.returncode}'}; peaks {', '.join(sorted(peaks))}; "
                f"timers {', '.join(sorted(timers))}")


def step_judge_micro(check: Check, timeout: float) -> None:
    """Claims read off the micro reports: timer, roofline, memory, accuracy, fast kernels."""
    reports = [path for path in sorted(check.out.glob("micro-*.csv"))
               if not path.name.endswith(".samples.csv")]
    if not reports:
        check.judge("micro.measured", None, "no micro step ran")
        return
    rows = [row for path in reports for row in read_rows(path)]
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
    single = [row for row in rows if row["dtype"] == "float32"]  # one dtype: one copy size
    largest = max((int(row["numel"]) for row in single), default=0)
    copies = [c for c in (number(r["copy_gbps"]) for r in single if int(r["numel"]) == largest)
              if c]
    peaks = [p for p in (number(r["peak_gbps"]) for r in rows) if p]
    if not check.cuda or not peaks or not copies:
        check.judge("micro.copy_roofline", None if not check.cuda else False,
                    f"copy {statistics.median(copies) if copies else 0:.0f} GB/s; NVML peak "
                    f"{peaks[0] if peaks else 'n/a'}")
    else:
        copy = statistics.median(copies)
        check.judge("micro.copy_roofline", copy / peaks[0] >= COPY_OF_PEAK_TARGET,
                    f"copy {copy:.0f} GB/s at {largest} float32 elements = "
                    f"{100 * copy / peaks[0]:.0f} % of NVML's peak {peaks[0]:.0f} GB/s "
                    f"(target {100 * COPY_OF_PEAK_TARGET:.0f} %)")
    if not any(number(row.get("sm_clock_mhz")) for row in rows):
        check.judge("micro.not_throttled", None, "no row has NVML clocks: throttling unseen")
        return
    throttled = [f"{r['activation']}/{r['impl']}" for r in rows if r["throttled"] == "true"]
    check.judge("micro.not_throttled", not throttled,
                f"throttled: {', '.join(throttled[:8]) or 'none'}")


def judge_memory_and_accuracy(check: Check, rows: list[dict]) -> None:
    lean = [r for r in rows if r["impl"] in ("memeff", "fast")]
    heavy = [f"{r['activation']}/{r['impl']} {r['saved_x_input']}x" for r in lean
             if (number(r["saved_x_input"]) or math.inf) > 1.0 + SAVED_SLACK]
    check.judge("micro.saved_only_input", bool(lean) and not heavy,
                f"{len(lean)} memeff/fast rows; saving more than the input: "
                f"{', '.join(heavy[:6]) or 'none'}")
    if check.cuda:
        judge_cuda_peak(check, rows)
    else:
        check.judge("micro.cuda_peak_bytes", None, "the allocator peak is read on CUDA only")
    infinite = [f"{r['activation']}/{r['impl']} {r['dtype']}" for r in rows
                if r["finite"] not in ("true", "")]
    check.judge("micro.finite", not infinite, f"not finite: {', '.join(infinite[:6]) or 'none'}")


def judge_cuda_peak(check: Check, rows: list[dict]) -> None:
    """A forward pass of a fused implementation allocates one output (and little else); a gated
    activation's output is half its input."""
    from actbench.catalogue import gated

    fused = [r for r in rows if r["pass"] == "fwd" and r["impl"] in ("native", "memeff", "fast")]
    off = []
    for r in fused:
        output = int(r["numel"]) // (2 if gated(r["activation"]) else 1) * _element_size(r["dtype"])
        peak = number(r["peak_bytes"]) or 0
        if not output <= peak <= PEAK_SLACK * output:
            off.append(f"{r['activation']}/{r['impl']} {r['dtype']} {peak / output:.2f}x")
    check.judge("micro.cuda_peak_bytes", bool(fused) and not off,
                f"{len(fused)} fused fwd rows; peak outside 1-{PEAK_SLACK}x the output: "
                f"{', '.join(off[:6]) or 'none'}")


def judge_fast_roofline(check: Check, rows: list[dict]) -> None:
    largest = max(int(row["numel"]) for row in rows)
    dtypes = sorted({r["dtype"] for r in rows if int(r["numel"]) == largest})
    for pass_, target in (("fwd", FAST_FWD_TARGET), ("fwdbwd", FAST_FWDBWD_TARGET)):
        name = f"fast.roofline_{pass_}"
        fast = [r for r in rows if r["impl"] == "fast" and r["pass"] == pass_
                and int(r["numel"]) == largest and r["activation"] in ELEMENTWISE_FAST]
        if not check.cuda or not fast:
            check.judge(name, None, "judged on CUDA at 2^24 only" if not check.cuda
                        else "no fast rows at the largest size")
            continue
        below = [f"{r['activation']} {r['dtype']} {100 * (number(r['roofline_frac']) or 0):.0f} %"
                 for r in fast if (number(r["roofline_frac"]) or 0) < target]
        expected = len(ELEMENTWISE_FAST) * len(dtypes)
        check.judge(name, not below, f"{len(fast)} of {expected} rows ({', '.join(dtypes)}) at "
                    f"{largest}; below {100 * target:.0f} % of copy: {'; '.join(below) or 'none'}")


def _element_size(dtype: str) -> int:
    return {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}.get(dtype, 4)


def step_compare(check: Check, timeout: float) -> None:
    """`compare` (Markdown, JSON, figures) and `report` (HTML) over every report written,
    within one shared deadline."""
    reports = [str(p) for p in sorted(check.out.glob("*.csv"))]
    if not reports:
        check.judge("compare.report", None, "no step wrote a report")
        return
    deadline = time.monotonic() + timeout
    calls = [("compare", ("compare", *reports, "--format", "markdown", "-o",
                          str(check.out / "compare.md"))),
             ("compare", ("compare", *reports, "--format", "json", "-o",
                          str(check.out / "compare.json"))),
             ("compare", ("compare", *reports, "-q", "--plot", str(check.out / "figures.png"))),
             ("report", ("report", *reports, "-o", str(check.out / "html")))]
    # they only read the reports and write files of their own: run side by side, since most of
    # each is start-up (imports), which a second core halves
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        codes = list(pool.map(lambda call: check.actbench(
            call[0], *call[1], timeout=deadline - time.monotonic()).returncode, calls))
    figures = sorted(p.name for p in check.out.glob("figures*.png"))
    ok = codes == [0, 0, 0, 0] and (check.out / "html" / "index.html").exists()
    check.judge("compare.report", ok, f"exit codes {codes}; figures {', '.join(figures)}")


# -- driver ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """A step, the least time worth starting it with, the most it may take, and the time it
    must leave for the steps after it."""

    name: str
    run: Callable[[Check, float], None]
    needs: float = 0.0
    most: float = math.inf
    leaves: float = 0.0
    floor: float = 0.0  # the closing steps run even over budget, for at least this long


def plan(check: Check) -> list[Step]:
    """The steps, most important first (the first micro run before training, the rest after)."""
    first, *later = check.profile.micro_runs
    steps = [Step("environment", step_environment, 5, 60),
             Step("agreement", step_agreement, 30, 90, leaves=300),
             Step(f"micro {first.name}", lambda c, t: step_micro(c, first, t), 60, 240, leaves=160),
             Step("energy", step_energy, 15, 60, leaves=120),
             Step("train quick", step_train_quick, 30, 120, leaves=80),
             Step("train resnet20", step_train_resnet, 30, 120, leaves=50),
             Step("model resnet20", step_model, 20, 120, leaves=50)]
    steps += [Step(f"micro {run.name}", lambda c, t, r=run: step_micro(c, r, t), 30, leaves=45)
              for run in later]
    return steps + [Step("judge micro", step_judge_micro),
                    Step("compare", step_compare, most=90, floor=60)]


def run(check: Check) -> int:
    check.out.mkdir(parents=True, exist_ok=True)
    print(f"gpu check on {check.device}{' (smoke)' if check.smoke else ''}, "
          f"{check.budget_s:.0f} s budget, output in {check.out}", flush=True)
    for step in plan(check):
        timeout = max(min(step.most, check.left() - step.leaves), step.floor)
        if timeout < step.needs:
            check.judge(f"step.{step.name.replace(' ', '_')}", None,
                        f"skipped: {max(timeout, 0):.0f} s for it, it needs {step.needs:.0f} s")
        else:
            run_step(check, step, timeout)
        save(check)
    print(summary_text(check), flush=True)
    return 1 if any(claim.status == "fail" for claim in check.claims) else 0


def run_step(check: Check, step: Step, timeout: float) -> None:
    print(f"[{check.budget_s - check.left():5.0f} s] {step.name} (up to {timeout:.0f} s)",
          flush=True)
    started = time.monotonic()
    try:
        step.run(check, timeout)
    except Exception as error:  # noqa: BLE001 - one broken step costs only its own claims
        check.judge(f"step.{step.name.replace(' ', '_')}", False,
                    f"{type(error).__name__}: {' '.join(str(error).split())[:300]}")
    check.steps.append({"step": step.name, "seconds": round(time.monotonic() - started, 1)})


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
    parser.add_argument("--agreement-into", type=Path, help=argparse.SUPPRESS)  # the child step
    args = parser.parse_args(argv)
    profile = SMOKE if args.smoke else FULL
    if args.agreement_into is not None:
        write_agreement(Check(out=args.agreement_into.parent, device=args.device, profile=profile,
                              smoke=args.smoke, budget_s=args.budget, archive=None),
                        args.agreement_into)
        return 0
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty; give a new folder")
    check = Check(out=args.out.resolve(), device=args.device, profile=profile, smoke=args.smoke,
                  budget_s=args.budget, archive=args.archive)
    return run(check)


if __name__ == "__main__":
    sys.exit(main())

"""`actbench compare` on one large micro report: wall time and peak memory against its row count.

Writes a valid synthetic micro report of ROWS rows (default 1,000,000) with the real writer,
schema and sidecar layout that `actbench micro` uses: every activation of the zoo with each of its
implementations, on several devices, every dtype and pass, and as many sizes as the row count
needs (smallest sizes first, then as a plan orders them: device, dtype, activation,
implementation, pass), with a realistic mix of noisy, throttled and failed rows and of sample
counts (some below the 6 a ratio interval needs).
`--samples-share F` also writes raw samples (`<report>.samples.csv`, 20 per configuration) for
that share of the measured configurations, so their ratios come from the bootstrap.

Then it times, each in a fresh process:

- `library`: `compare_reports` (reading, checks, ratios and intervals), then the output the CLI
  would produce from it (`comparison_sections` for the table format, else the export text);
- `cli`: `python -m actbench compare REPORT [--format F]` with stdout to /dev/null.

and prints the rows, wall seconds, peak RSS, the load average before and after, and the
command. `--profile` runs the library step under cProfile and prints the costliest functions;
`--source DIR` times the actbench found in DIR (another version) instead of the installed one.

    python benchmarks/compare_rows.py                      # 1,000,000 rows, library and cli
    python benchmarks/compare_rows.py 100000 --mode library --profile
    python benchmarks/compare_rows.py 1000000 --folder /tmp/big --keep   # reuse the report later
    git archive <commit> actbench | tar -x -C /tmp/before
    python benchmarks/compare_rows.py 20000 --folder /tmp/big --keep --source /tmp/before

Others may be using the machine: quote the load average printed with the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEVICES = ("cpu", "cuda:0", "cuda:1", "cuda:2")
SIZE_STEP = 256 * 37  # sizes are multiples of 256: channel-wise activations lay them out (4, 64, n)
SAMPLES_PER_CONFIG = 20
THREADS = 2  # torch threads every configuration is recorded with
IMPL_COST = {"native": 1.0, "formula": 1.6, "memeff": 2.1, "compiled": 0.9, "fast": 0.8}
PASS_COST = {"fwd": 1.0, "bwd": 1.9, "fwdbwd": 2.9}
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


def configurations(rows: int) -> list[tuple]:
    """(activation, impl, device, dtype, shape, numel, pass) for `rows` configurations."""
    from actbench.micro.plan import DTYPES, PASSES, layout
    from actbench.zoo.definitions import ZOO

    per_tensor = [(spec, impl) for spec in ZOO for impl in spec.implementations]
    per_size = len(per_tensor) * len(PASSES) * len(DTYPES) * len(DEVICES)
    sizes = [SIZE_STEP * (k + 1) for k in range(-(-rows // per_size))]
    configs = []
    for device in DEVICES:
        for dtype in DTYPES:
            for size in sizes:
                shape = "x".join(map(str, layout(ZOO[0], size)))
                for spec, impl in per_tensor:
                    text = "x".join(map(str, layout(spec, size))) if spec.channelwise else shape
                    configs += [(spec.name, impl, device, dtype, text, size, pass_)
                                for pass_ in PASSES]
    configs.sort(key=lambda c: c[5])  # smallest sizes first, so any row count keeps all kinds
    return configs[:rows]


def _statuses(rng: np.random.Generator, count: int) -> np.ndarray:
    """Mostly measured rows, some noisy, and the failures a long run meets."""
    return rng.choice(np.array(["ok", "noisy", "oom", "unsupported", "error"]), size=count,
                      p=[0.955, 0.03, 0.007, 0.005, 0.003])


def _measured(config: tuple, draw: dict, status: str, index: int) -> dict:
    """The result columns of a measured row, with numbers of the kind a real run writes."""
    activation, impl, device, dtype, _, numel, pass_ = config
    median = float(draw["median"][index])
    half = float(draw["half"][index])
    min_bytes = numel * DTYPE_BYTES[dtype] * (2 if pass_ == "fwd" else 4)
    gbps = min_bytes / median / 1e9
    peak = 50.0 if device == "cpu" else 2000.0
    throttled = device != "cpu" and draw["u"][index] < 0.01
    busy = 0.01 <= draw["u"][index] < 0.02  # other processes took the CPUs meanwhile
    flags = ";".join((["noisy"] if status == "noisy" else []) + (["throttled"] if throttled else [])
                     + (["busy"] if busy else []))
    return {
        "timer": "wall" if device == "cpu" else "cuda_event", "flags": flags,
        "samples": int(draw["samples"][index]), "calls_per_sample": int(draw["calls"][index]),
        "median_s": median, "mean_s": median * 1.02, "min_s": median * 0.97,
        "q1_s": median * 0.99, "q3_s": median * 1.01, "iqr_pct": 2.0,
        "ci_low_s": median * (1 - half), "ci_high_s": median * (1 + half), "ci_rel_halfwidth": half,
        "warmup_s": 0.05, "sampling_s": 0.4, "converged": status == "ok",
        "min_bytes": min_bytes, "gbps": gbps, "copy_gbps": peak * 0.8,
        "roofline_frac": gbps / (peak * 0.8), "peak_gbps": peak, "fits_l2": min_bytes < 40e6,
        "saved_bytes": numel * DTYPE_BYTES[dtype], "saved_x_input": 1.0 + (impl != "memeff"),
        "peak_bytes": 3 * numel * DTYPE_BYTES[dtype], "max_abs_err": 1e-7, "max_rel_err": 1e-6,
        "grad_max_abs_err": 2e-7, "grad_max_rel_err": 2e-6, "finite": True,
        "sm_clock_mhz": "" if device == "cpu" else 1980,
        "mem_clock_mhz": "" if device == "cpu" else 2619,
        "throttled": throttled, "throttle_reasons": "sw_power_cap" if throttled else "",
        "energy_j_per_call": "" if device == "cpu" else median * 300.0,
        "load_before": 3.5 if busy else 1.0, "load_after": 3.2 if busy else 1.1,
        "other_cpu_pct": 60.0 if busy else 2.0, "steal_pct": 0.0,
    }


def _draws(configs: list[tuple], rng: np.random.Generator) -> dict:
    """Every random number the rows need, drawn at once."""
    from actbench.zoo.definitions import ZOO

    cost = {spec.name: 1.0 + 0.15 * i for i, spec in enumerate(ZOO)}
    numel = np.array([c[5] for c in configs], dtype=float)
    scale = np.array([cost[c[0]] * IMPL_COST[c[1]] * PASS_COST[c[6]] / (20 if c[2] != "cpu" else 1)
                      for c in configs])
    median = (4e-6 + numel * 1.5e-9) * scale * rng.lognormal(0.0, 0.05, len(configs))
    samples = np.where(rng.random(len(configs)) < 0.03, rng.integers(3, 6, len(configs)),
                       rng.integers(6, 400, len(configs)))
    return {"median": median, "half": rng.uniform(0.002, 0.05, len(configs)), "samples": samples,
            "calls": rng.integers(1, 2000, len(configs)), "u": rng.random(len(configs)),
            "status": _statuses(rng, len(configs))}


def _raw_samples(median: float, rng: np.random.Generator) -> np.ndarray:
    """SAMPLES_PER_CONFIG sorted samples whose median is `median` (to rounding)."""
    values = rng.lognormal(0.0, 0.03, SAMPLES_PER_CONFIG)
    return np.sort(values * (median / np.median(values)))


def write_report(path: Path, rows: int, samples_share: float, seed: int = 0) -> None:
    """The report, its samples (where asked) and the sidecar, as `actbench micro` writes them."""
    from actbench import env
    from actbench.records.rows import new_row
    from actbench.records.schema import MICRO_COLUMNS, MICRO_KEY, MICRO_SAMPLE_COLUMNS
    from actbench.records.writer import ReportWriter, write_sidecar
    from actbench.stats import median_ci_ranks

    rng = np.random.default_rng(seed)
    configs = configurations(rows)
    draw = _draws(configs, rng)
    environment = env.capture()
    key_columns = env.key_columns(environment)
    write_sidecar(path, {"kind": "micro", "environment": environment,
                         "settings": {"target_rsd": 0.01, "min_samples": 10, "min_time_s": 0.2,
                                      "max_time_s": 2.0, "cold": False, "threads": THREADS,
                                      "energy": False},
                         "cpu_allocator": "mallopt",
                         "configurations": [dict(zip(MICRO_KEY, (*c[:5], c[6], THREADS)))
                                            for c in configs]})
    with_samples = rng.random(len(configs)) < samples_share
    lo, hi = median_ci_ranks(SAMPLES_PER_CONFIG)
    sample_writer = (ReportWriter(path.with_name(path.stem + ".samples.csv"), MICRO_SAMPLE_COLUMNS)
                     if samples_share > 0 else None)
    with ReportWriter(path, MICRO_COLUMNS) as writer:
        chunk = []
        for index, config in enumerate(configs):
            key = dict(zip(MICRO_KEY, (*config[:5], config[6], THREADS)))
            row = new_row("micro", None, key_columns, key, numel=config[5])
            status = str(draw["status"][index])
            if status in ("ok", "noisy"):
                row.update(_measured(config, draw, status, index), status=status)
                if sample_writer is not None and with_samples[index]:
                    values = _raw_samples(row["median_s"], rng)
                    row.update(samples=SAMPLES_PER_CONFIG, median_s=float(np.median(values)),
                               ci_low_s=float(values[lo]), ci_high_s=float(values[hi]))
                    sample_writer.write_many({**key, "sample": i, "seconds_per_call": float(v),
                                              "calls": row["calls_per_sample"]}
                                             for i, v in enumerate(values))
            else:
                row.update(status=status, flags=status,
                           message={"oom": "CUDA out of memory", "unsupported":
                                    f"{config[3]} is not supported by {config[1]}",
                                    "error": "RuntimeError: kernel failed"}[status])
            chunk.append(row)
            if len(chunk) == 50_000:
                writer.write_many(chunk)
                chunk = []
        writer.write_many(chunk)
    if sample_writer is not None:
        sample_writer.close()


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def time_library(paths: list[str], fmt: str, by: str, profile: bool) -> dict:
    """In this process: compare_reports, then the output the CLI makes of it (for the table
    format the terminal's sections, drawn by Rich into a buffer)."""
    from rich.console import Console

    from actbench.compare.run import compare_reports
    from actbench.report.compare_tables import comparison_sections
    from actbench.report.export import export, print_sections

    try:
        from actbench.report.compare_output import TERMINAL_MICRO_ROWS
    except ImportError:  # a version that shows every row on the terminal
        TERMINAL_MICRO_ROWS = None  # noqa: N806

    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    comparison = compare_reports(paths, by=by)
    analysed = time.perf_counter()
    if fmt == "table":
        buffer = io.StringIO()
        sections = (comparison_sections(comparison) if TERMINAL_MICRO_ROWS is None
                    else comparison_sections(comparison, TERMINAL_MICRO_ROWS))
        print_sections(Console(file=buffer, width=160), sections)
        shown = len(buffer.getvalue())
    else:
        shown = len(export(fmt, comparison))
    if profiler:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        print(out.getvalue(), file=sys.stderr)
    finished = time.perf_counter()
    rows = 0 if comparison.micro is None else len(comparison.micro.table)
    return {"compare_s": analysed - started, "output_s": finished - analysed,
            "total_s": finished - started, "compared_rows": rows, "output_chars": shown,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(command: list[str], stdout=subprocess.DEVNULL,
              source: Path | None = None) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS (MiB), exit code and stdout of one child process (importing
    actbench from `source` where given)."""
    environment = {**os.environ, "PYTHONPATH": str(source)} if source else None
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True,
                             env=environment, cwd=source)
    output = child.stdout.read() if stdout == subprocess.PIPE else ""
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    sys.stderr.write(errors)  # warnings, a profile, or what went wrong
    return time.perf_counter() - started, usage.ru_maxrss / 1024, child.returncode, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, help="where the report goes (default: a temporary "
                        "folder, removed afterwards unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the report (and reuse one of the "
                        "same row count already in --folder)")
    parser.add_argument("--samples-share", type=float, default=0.0)
    parser.add_argument("--mode", choices=("library", "cli", "both"), default="both")
    parser.add_argument("--format", dest="fmt", default="table",
                        choices=("table", "markdown", "csv", "json"))
    parser.add_argument("--by", default="activation")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--source", type=Path, help="import actbench from this folder (e.g. "
                        "`git archive <commit> actbench | tar -x -C DIR`) to time another version")
    parser.add_argument("--library-child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.library_child:
        print(json.dumps(time_library(args.library_child, args.fmt, args.by, args.profile)))
        return
    folder = (args.folder or Path(tempfile.mkdtemp(prefix="compare-rows-"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / f"micro-synthetic-{args.rows}-s{args.samples_share:g}.csv"
    try:
        if not (args.keep and report.exists()):
            started = time.perf_counter()
            write_report(report, args.rows, args.samples_share)
            print(f"wrote {report} ({report.stat().st_size / 2**20:.0f} MiB) in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
        paths = [str(report)] + ([str(report.with_name(report.stem + ".samples.csv"))]
                                 if args.samples_share > 0 else [])
        _measure(args, paths)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def _measure(args, paths: list[str]) -> None:
    print(f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
          f"{sys.platform}, Python {sys.version.split()[0]}; actbench from "
          f"{args.source or 'the installed package'}")
    if args.mode in ("library", "both"):
        command = [sys.executable, str(Path(__file__).resolve()), "--format", args.fmt,
                   "--by", args.by, *(["--profile"] if args.profile else []),
                   "--library-child", *paths]
        before = load_average()
        seconds, rss, code, output = run_child(command, stdout=subprocess.PIPE,
                                               source=args.source)
        result = json.loads(output.strip().splitlines()[-1]) if code == 0 else {}
        print(f"library: rows {args.rows}, compared {result.get('compared_rows')}, compare "
              f"{result.get('compare_s', float('nan')):.1f} s + output "
              f"{result.get('output_s', float('nan')):.1f} s ({args.fmt}), process {seconds:.1f} s, "
              f"peak RSS {rss:.0f} MiB, load average {before} -> {load_average()}", flush=True)
    if args.mode in ("cli", "both"):
        command = [sys.executable, "-m", "actbench", "compare", *paths, "--format", args.fmt,
                   "--by", args.by]
        before = load_average()
        seconds, rss, code, _ = run_child(command, source=args.source)
        print(f"cli: rows {args.rows}, {seconds:.1f} s, peak RSS {rss:.0f} MiB, exit {code}, load "
              f"average {before} -> {load_average()}\n  command: {' '.join(command)} > /dev/null",
              flush=True)


if __name__ == "__main__":
    main()

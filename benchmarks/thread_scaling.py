"""Do the `fast` kernels scale with threads like PyTorch's own ops? One `actbench micro` run, checked.

Measures relu, silu, gelu, mish (native, compiled, fast) and every other activation with a `fast`
implementation at each thread count (`--threads`, default 1,2,all), 2^20 and 2^24 float32 elements,
fwd and fwd + bwd, side by side in one report; then confirms the headline ratios (mish `fast`
against F.silu and F.mish) with torch.utils.benchmark at the same thread counts, in this process.
Prints Markdown: the mish targets (fast <= 1.35x F.silu, >= 5x faster than F.mish) per thread
count, each fast activation's ratio to SiLU against its own one-thread ratio, and how relu, silu,
gelu and mish (native, compiled, fast) scale.

    python benchmarks/thread_scaling.py --out reports/threads.csv [--threads 1,2,all] [--max-time 0.5]
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
import torch.utils.benchmark as torch_benchmark

from actbench.env import capture
from actbench.micro.plan import available_cpus
from actbench.micro.session import MicroOptions, execute, open_run
from actbench.records.writer import read_rows
from actbench.zoo.registry import lookup, names

SIZES = ("2^20", "2^24")
PASSES = ("fwd", "fwdbwd")
REFERENCE = ("relu", "silu", "gelu", "mish")  # native, compiled and fast where they have them


def fast_activations() -> list[str]:
    return [n for n in names() if "fast" in lookup(n).implementations and lookup(n).pointwise
            and not getattr(lookup(n), "gated", False)]


def measure(out: Path, threads: str, max_time: float) -> pd.DataFrame:
    acts = list(dict.fromkeys([*REFERENCE, *fast_activations()]))
    options = MicroOptions(activations=[",".join(acts)], impl="native,compiled,fast",
                           devices=["cpu"], sizes=[",".join(SIZES)], passes=[",".join(PASSES)],
                           threads=[threads], baseline="silu", max_time=max_time, out=out)
    execute(open_run(options))
    rows = pd.DataFrame(read_rows(out))
    rows = rows[rows["status"].isin(["ok", "noisy"])].copy()
    rows["median_s"] = rows["median_s"].astype(float)
    return rows.sort_values(["threads", "numel", "activation", "pass"], key=_natural)


def verdict(ratio: float, limit: float, at_most: bool) -> str:
    """The ratio to three places and whether it meets its target, so 1.346 is not read as 1.35."""
    met = ratio <= limit if at_most else ratio >= limit
    return f"{ratio:.3f}x {'met' if met else '**not met**'}"


def _median(rows: pd.DataFrame, act: str, impl: str, threads: str, numel: str, pass_: str) -> float:
    hit = rows[(rows["activation"] == act) & (rows["impl"] == impl) & (rows["threads"] == threads)
               & (rows["numel"] == numel) & (rows["pass"] == pass_)]
    return float(hit["median_s"].iloc[0]) if len(hit) else float("nan")


def mish_table(rows: pd.DataFrame) -> list[str]:
    out = ["| threads | elements | pass | F.silu µs | F.mish µs | mish fast µs | fast / F.silu "
           "(≤ 1.35) | F.mish / fast (≥ 5) |", "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for (threads, numel, pass_), _ in rows.groupby(["threads", "numel", "pass"], sort=False):
        silu, mish, fast = (_median(rows, a, i, threads, numel, pass_)
                            for a, i in (("silu", "native"), ("mish", "native"), ("mish", "fast")))
        out.append(f"| {threads} | {int(numel):,} | {pass_} | {silu * 1e6:,.0f} | {mish * 1e6:,.0f} | "
                   f"{fast * 1e6:,.0f} | {verdict(fast / silu, 1.35, True)} | "
                   f"{verdict(mish / fast, 5, False)} |")
    return out


def scaling_table(rows: pd.DataFrame) -> list[str]:
    """Each fast activation's time over native SiLU's, at each count against one thread."""
    counts = sorted(rows["threads"].unique(), key=int)
    out = ["| activation | elements | pass | " + " | ".join(f"{c} thr / SiLU" for c in counts)
           + " | worst / 1-thread ratio (≤ 1.5) |", "|---|---:|---|" + "---:|" * (len(counts) + 1)]
    fast = rows[rows["impl"] == "fast"]
    for (act, numel, pass_), _ in fast.sort_values(["activation", "numel", "pass"], key=_natural) \
            .groupby(["activation", "numel", "pass"], sort=False):
        ratios = [_median(rows, act, "fast", c, numel, pass_) / _median(rows, "silu", "native", c,
                                                                          numel, pass_) for c in counts]
        worst = max(r / ratios[0] for r in ratios)
        out.append(f"| {act} | {int(numel):,} | {pass_} | " + " | ".join(f"{r:.2f}x" for r in ratios)
                   + f" | {verdict(worst, 1.5, True)} |")
    return out


def reference_table(rows: pd.DataFrame) -> list[str]:
    """relu, silu, gelu and mish as each implementation scales: time at each count, and speed-up."""
    counts = sorted(rows["threads"].unique(), key=int)
    out = ["| activation | impl | elements | pass | " + " | ".join(f"{c} thr µs" for c in counts)
           + " | " + " | ".join(f"speed-up at {c}" for c in counts[1:]) + " |",
           "|---|---|---:|---|" + "---:|" * (2 * len(counts) - 1)]
    chosen = rows[rows["activation"].isin(REFERENCE) & rows["impl"].isin(["native", "compiled", "fast"])]
    for (act, impl, numel, pass_), _ in chosen.sort_values(["activation", "impl", "numel", "pass"],
                                                           key=_natural) \
            .groupby(["activation", "impl", "numel", "pass"], sort=False):
        times = [_median(rows, act, impl, c, numel, pass_) for c in counts]
        out.append(f"| {act} | {impl} | {int(numel):,} | {pass_} | "
                   + " | ".join(f"{t * 1e6:,.0f}" for t in times) + " | "
                   + " | ".join(f"{times[0] / t:.2f}x" for t in times[1:]) + " |")
    return out


def _natural(column: pd.Series) -> pd.Series:
    """Thread counts and sizes sort as numbers, everything else as text."""
    return column.astype(int) if column.name in ("threads", "numel") else column


def confirm(threads: list[int]) -> list[str]:
    """mish fast against F.silu and F.mish by torch.utils.benchmark, in this process."""
    from actbench.zoo.fast import mish_fast

    out = ["| threads | elements | pass | F.silu µs | F.mish µs | mish fast µs | fast / F.silu | "
           "F.mish / fast |", "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for count in threads:
        torch.set_num_threads(count)
        for numel in (2**20, 2**24):
            x = torch.randn(numel, requires_grad=True)
            g = torch.randn(numel)
            for pass_ in PASSES:
                stmt = "f(x)" if pass_ == "fwd" else "torch.autograd.grad(f(x), x, g)"
                medians = [torch_benchmark.Timer(stmt, globals={"f": f, "x": x, "g": g, "torch": torch},
                                                 num_threads=count).blocked_autorange(min_run_time=1.0)
                           .median for f in (F.silu, F.mish, mish_fast)]
                silu, mish, fast = medians
                out.append(f"| {count} | {numel:,} | {pass_} | {silu * 1e6:,.0f} | {mish * 1e6:,.0f} | "
                           f"{fast * 1e6:,.0f} | {verdict(fast / silu, 1.35, True)} | "
                           f"{verdict(mish / fast, 5, False)} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the micro report (resumed if there)")
    parser.add_argument("--threads", default="1,2,all")
    parser.add_argument("--max-time", type=float, default=0.5)
    args = parser.parse_args()
    environment = capture()
    print(f"# {environment['cpu']}, {available_cpus()} CPUs, torch {environment['torch']}, "
          f"Python {platform.python_version()}, load average before {os.getloadavg()[0]:.2f}")
    rows = measure(args.out, args.threads, args.max_time)
    print("\n".join(["", "actbench micro:", *mish_table(rows), "", *scaling_table(rows), "",
                     *reference_table(rows)]))
    counts = sorted({int(t) for t in rows["threads"]})
    print("\n".join(["", "torch.utils.benchmark:", *confirm(counts)]))
    print(f"\nload average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Does `actbench micro` agree with torch.utils.benchmark? Same callables, same process, one run.

For relu, silu, gelu and mish (every implementation) at 2^20 float32 elements on the CPU, each
pass is timed by actbench's runner and by `Timer.blocked_autorange`, alternately (`--rounds`
times each, A B A B ...), and the median of each method's medians is printed with their ratio.
Both time the same kind of closure (actbench's workload), so a difference comes from the method
(warm-up, stopping, batching) or from the machine changing between the two, not from what is
measured; alternating rounds keep the second small.

    python benchmarks/micro_vs_timer.py --threads 2 [--rounds 3] [--passes fwd,fwdbwd] [--size 1048576]
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch
import torch.utils.benchmark as torch_benchmark

from actbench.env import capture
from actbench.micro.plan import make_plan
from actbench.micro.runner import Runner, Settings, keep_freed_memory
from actbench.micro.stopping import StoppingRule
from actbench.micro.workload import make_input, make_workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", default="1048576")
    parser.add_argument("--passes", default="fwd,fwdbwd")
    parser.add_argument("--activations", default="relu,silu,gelu,mish")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--system-allocator", action="store_true",
                        help="do not reuse freed heap blocks (what actbench micro does on Linux)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    allocator = "system default" if args.system_allocator else keep_freed_memory()
    environment = capture()
    print(f"# {environment['cpu']}, {environment['cpu_cores_logical']} logical cores, "
          f"torch {environment['torch']}, Python {platform.python_version()}, "
          f"{args.threads} threads, allocator: {allocator}")
    plan = make_plan([args.activations], impl="all", devices=["cpu"], sizes=[args.size],
                     passes=[args.passes])
    numel = plan.configs[0].numel
    flat_x = make_input(numel, "float32", "cpu")
    flat_g = make_input(numel, "float32", "cpu", seed=1)

    print("| activation | impl | pass | actbench median | torch.utils.benchmark median | "
          "actbench / timer |")
    print("|---|---|---|---:|---:|---:|")
    ratios = []
    for config in plan.configs:
        workload = make_workload(config, flat_x, flat_g)
        timer = torch_benchmark.Timer(stmt="call()", globals={"call": workload.call},
                                      num_threads=args.threads)
        ours_all, theirs_all = [], []
        for _ in range(args.rounds):
            rows: list[dict] = []
            Runner(Settings(stopping=StoppingRule(max_time=1.0), energy=False), {},
                   rows.append).run([config])
            ours_all.append(rows[0]["median_s"])
            theirs_all.append(timer.blocked_autorange(min_run_time=1.0).median)
        ours, theirs = statistics.median(ours_all), statistics.median(theirs_all)
        ratios.append(ours / theirs)
        print(f"| {config.activation.label} | {config.impl} | {config.pass_} | "
              f"{ours * 1e6:.1f} µs | {theirs * 1e6:.1f} µs | {ours / theirs:.3f} |", flush=True)
    ratios.sort()
    print(f"\nmedian ratio {ratios[len(ratios) // 2]:.3f}, range {ratios[0]:.3f} .. {ratios[-1]:.3f}; "
          f"{sum(abs(r - 1) <= 0.10 for r in ratios)}/{len(ratios)} within 10 %")


if __name__ == "__main__":
    main()

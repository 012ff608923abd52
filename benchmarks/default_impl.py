"""Which implementation should be the default where PyTorch has no native op: formula or memeff?

Times forward + backward of each non-native smooth activation at 2^20 float32 elements with
torch.utils.benchmark, formula and memeff alternated twice so drift hits both; prints the best
median of each and their ratio. Run: python benchmarks/default_impl.py [--threads N]
"""

from __future__ import annotations

import argparse
import platform

import torch
from torch.utils.benchmark import Timer

import actbench

NAMES = ["quick_gelu", "swish", "tanhexp", "serf", "logish", "acon_a", "acon_b", "acon_c", "meta_acon"]


def fwd_bwd_seconds(name: str, impl: str, x: torch.Tensor, grad: torch.Tensor) -> float:
    module = actbench.activation(name, impl=impl, channels=x.shape[1], seed=0)
    timer = Timer("module(x).backward(grad)", globals={"module": module, "x": x, "grad": grad})
    return timer.blocked_autorange(min_run_time=0.5).median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(16, 64, 32, 32).requires_grad_(True)  # 2^20 float32 elements
    grad = torch.ones_like(x)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} threads, 2^20 float32, forward + backward")
    print("| activation | formula (ms) | memeff (ms) | memeff / formula |")
    print("|---|---|---|---|")
    for name in NAMES:
        best = {"formula": float("inf"), "memeff": float("inf")}
        for _ in range(2):
            for impl in best:
                best[impl] = min(best[impl], fwd_bwd_seconds(name, impl, x, grad))
        print(f"| {name} | {best['formula'] * 1e3:.2f} | {best['memeff'] * 1e3:.2f} | "
              f"{best['memeff'] / best['formula']:.2f}x |")


if __name__ == "__main__":
    main()

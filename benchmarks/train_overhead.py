"""actbench's training loop against a bare PyTorch loop: same model, data, batch size, optimiser.

Both loops train the same architecture (built by actbench's model factory with the same seed) on
the same in-memory data; each epoch's training time is measured the same way (synchronised wall
clock, evaluation left out). The two alternate epoch blocks so drift hits both; the script prints
the median epoch time of each and actbench's overhead.

    python benchmarks/train_overhead.py --model cnn1d --data mnist1d --epochs 6 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from actbench.env import capture
from actbench.train.executor import DataCache
from actbench.train.loop import build_run_model, train_run
from actbench.train.suite import suite_from_dict


def bare_epochs(run, splits, epochs: int, device) -> list[float]:
    """The loop a reader would write by hand: shuffle, forward, loss, backward, step."""
    torch.manual_seed(run.seed)
    model = build_run_model(run, splits, device, [])
    optimizer = torch.optim.Adam(model.parameters(), lr=run.config.optim.lr)
    x, y = splits.train_x.to(device), splits.train_y.to(device)
    batch = run.config.train.batch_size
    generator = torch.Generator().manual_seed(run.seed)
    times = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch):
            index = order[i:i + batch]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn1d")
    parser.add_argument("--data", default="mnist1d")
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    suite = suite_from_dict({
        "data": {"name": args.data}, "model": {"name": args.model},
        "optim": {"name": "adam", "lr": 0.002},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "device": args.device},
        "activations": [args.activation], "seeds": [0]}, check_data=True)
    run = suite.runs()[0]
    device = torch.device(run.device)  # resolved once, when the suite expanded
    splits = DataCache().get(run, device)
    environment = capture()
    print(f"# {environment['cpu']}, torch {environment['torch']}, {args.threads} threads, "
          f"device {device}; {args.model} on {args.data} ({len(splits.train_x)} training samples), "
          f"batch {args.batch_size}, {args.epochs} epochs x {args.repeats} repeats")

    ours, bare = [], []
    for _ in range(args.repeats):
        result = train_run(run, splits)
        assert result.status == "ok", result.message
        ours += [e.epoch_s for e in result.epochs[1:]]  # first epoch: warm-up for both
        bare += bare_epochs(run, splits, args.epochs, device)[1:]
    ours_median, bare_median = statistics.median(ours), statistics.median(bare)
    print(f"| loop | median epoch time | epochs |\n|---|---:|---:|\n"
          f"| bare PyTorch | {bare_median * 1e3:.1f} ms | {len(bare)} |\n"
          f"| actbench train | {ours_median * 1e3:.1f} ms | {len(ours)} |")
    print(f"\nactbench overhead: {100 * (ours_median / bare_median - 1):+.1f} %")


if __name__ == "__main__":
    main()

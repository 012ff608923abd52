"""A whole suite's wall time, run one run at a time against N runs at once, on this machine.

Each configuration runs the same suite as a fresh `actbench train` command into a report of its
own (so process start, the fork server and data loading are all counted), one after another; then
the script checks that every configuration wrote the config hashes of the first and, where the
suite is deterministic, its accuracies, and prints the wall times and the speed-ups against it.

    python benchmarks/train_workers.py quick --set train.deterministic=true \\
        --config "local --workers 1 --threads 1" --config "local --workers 2 --threads 1" \\
        --config "inline --threads 2" --keep reports/bench-workers

Check the load average first (printed) and quote the figures with it.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_config(suite: str, overrides: list[str], config: str, folder: Path) -> tuple[float, Path]:
    words = config.split()
    out = folder / f"{'-'.join(w.strip('-') for w in words)}.csv"
    command = [sys.executable, "-m", "actbench", "train", suite, "--out", str(out), "-q",
               "--executor", words[0], *words[1:]]
    for item in overrides:
        command += ["--set", item]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, out


def outcomes(report: Path) -> dict[str, tuple[str, str]]:
    with open(report, newline="") as handle:
        return {row["config_hash"]: (row["status"], row["final_test_acc"])
                for row in csv.DictReader(handle)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--config", action="append", required=True,
                        help="executor and flags, e.g. 'local --workers 2 --threads 1'")
    parser.add_argument("--keep", type=Path, help="keep the reports in this folder")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}")
    print(f"command: {shlex.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as scratch:
        # a fresh folder each time: an existing report would be resumed, not run
        folder = args.keep / time.strftime("%Y%m%dT%H%M%S") if args.keep else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        results = [(config, *run_config(args.suite, args.overrides, config, Path(folder)))
                   for config in args.config]
        first = outcomes(results[0][2])
        base = results[0][1]
        for config, seconds, report in results:
            same = outcomes(report)
            hashes = "same hashes" if set(same) == set(first) else "DIFFERENT hashes"
            accuracies = ("same accuracies" if same == first else
                          f"{sum(same.get(h) != v for h, v in first.items())} accuracies differ")
            print(f"{config:40s} {seconds:8.1f} s  x{base / seconds:5.2f}  {hashes}, {accuracies}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

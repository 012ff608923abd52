"""Hand-made reports with known numbers, written through the real writer and schema."""

from __future__ import annotations

from pathlib import Path

from actbench.records.rows import blank_row
from actbench.records.schema import (MICRO_COLUMNS, MICRO_SAMPLE_COLUMNS, train_columns,
                                     train_epoch_columns)
from actbench.records.writer import ReportWriter

ENV = {"host": "box", "cpu": "Test CPU", "gpu": "n/a", "torch_version": "2.13.0+cpu",
       "actbench_version": "0.1.0"}


def micro_row(activation: str, median: float, *, impl: str = "native", pass_: str = "fwd",
              numel: int = 1024, dtype: str = "float32", device: str = "cpu", ci: float = 0.01,
              status: str = "ok", flags: str = "", **extra) -> dict:
    row = blank_row("micro")
    row.update(ENV)
    row.update(activation=activation, impl=impl, device=device, dtype=dtype, shape=str(numel),
               numel=numel, status=status, flags=flags, median_s=median, mean_s=median,
               ci_low_s=median * (1 - ci), ci_high_s=median * (1 + ci), samples=20,
               min_bytes=8 * numel, gbps=8 * numel / median / 1e9, copy_gbps=10.0,
               roofline_frac=8 * numel / median / 1e10, saved_x_input=1.0, **{"pass": pass_})
    row.update(extra)
    return row


def write_micro(path: Path, rows: list[dict]) -> Path:
    with ReportWriter(path, MICRO_COLUMNS) as writer:
        writer.write_many(rows)
    return path


def write_samples(path: Path, samples: dict[tuple, list[float]]) -> Path:
    """samples: {(activation, impl, device, dtype, shape, pass): [seconds, ...]}"""
    with ReportWriter(path, MICRO_SAMPLE_COLUMNS) as writer:
        for key, values in samples.items():
            writer.write_many({**dict(zip(("activation", "impl", "device", "dtype", "shape", "pass"),
                                          key)), "sample": i, "seconds_per_call": v, "calls": 10}
                              for i, v in enumerate(values))
    return path


def train_row(activation: str, seed: int, acc: float, *, status: str = "ok",
              sweep: dict | None = None, **extra) -> dict:
    sweep = sweep or {}
    row = blank_row("train", train_columns(list(sweep), []))
    row.update(ENV)
    row.update(suite="test", run_index=seed, config_hash=f"{activation}{seed}", activation=activation,
               impl="native", seed=seed, dataset="synthetic", model="mlp", status=status,
               final_test_acc=acc, best_test_acc=acc, final_test_loss=1 - acc, mean_epoch_s=1.0,
               **sweep)
    row.update(extra)
    return row


def write_train(path: Path, rows: list[dict], sweep_keys: list[str] = (),
                noise_columns: list[str] = ()) -> Path:
    columns = train_columns(list(sweep_keys), list(noise_columns))
    with ReportWriter(path, columns) as writer:
        writer.write_many([{k: v for k, v in row.items() if k in columns} for row in rows])
    return path


def write_epochs(path: Path, runs: dict[tuple[str, int], list[float]]) -> Path:
    with ReportWriter(path, train_epoch_columns([])) as writer:
        for (activation, seed), accs in runs.items():
            for epoch, acc in enumerate(accs, start=1):
                row = blank_row("train_epoch", train_epoch_columns([]))
                row.update(ENV)
                row.update(suite="test", run_index=seed, config_hash=f"{activation}{seed}",
                           activation=activation, impl="native", seed=seed, epoch=epoch,
                           test_acc=acc, train_acc=acc, train_loss=1 - acc, test_loss=1 - acc)
                writer.write(row)
    return path

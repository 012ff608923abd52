"""One training run, readable top to bottom: build, train epoch by epoch, evaluate, report.

Epoch time counts training only (evaluation is left out, as the fast CIFAR trainers time it).
A non-finite loss ends the run as `diverged`; an exception as `failed`; the caller goes on.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import devices
from ..errors import describe_error
from ..zoo.registry import lookup
from . import data as data_module
from .memory import PeakMemory
from .models import build_model, count_parameters
from .optim import build_optimizer, build_scheduler, parameter_groups
from .suite import RunSpec


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    epoch_s: float
    samples_per_s: float


@dataclass
class RunResult:
    status: str = "ok"  # ok | diverged | failed
    message: str = ""
    epochs: list[EpochResult] = field(default_factory=list)
    noise: dict[float, tuple[float, float]] = field(default_factory=dict)  # sigma -> (acc, loss)
    params: int | None = None
    total_s: float = 0.0
    peak_bytes: int | None = None
    peak_kind: str = ""

    @property
    def final(self) -> EpochResult | None:
        return self.epochs[-1] if self.epochs else None

    @property
    def best(self) -> EpochResult | None:
        return max(self.epochs, key=lambda e: e.test_acc) if self.epochs else None


class Diverged(Exception):
    """The loss stopped being a finite number."""


# A non-finite loss poisons the epoch's running sum, which is checked every this many steps and
# at the end of each epoch (one host synchronisation, not one per step).
DIVERGENCE_CHECK_STEPS = 25


def _check_finite(loss_sum: torch.Tensor, epoch: int, step: int) -> None:
    if not torch.isfinite(loss_sum).item():
        raise Diverged(f"loss became {loss_sum.item()} in epoch {epoch} (by step {step + 1})")


def activation_factory(run: RunSpec, created: list[nn.Module]) -> Callable[[int], nn.Module]:
    """act(channels) -> a fresh activation module; remembers what it built (for weight decay)."""
    spec = lookup(run.activation.name)

    def act(channels: int) -> nn.Module:
        module = spec.build(impl=run.activation.impl, channels=channels if spec.channelwise else None,
                            **run.activation.params)
        created.append(module)
        return module

    return act


def resolve_device(name: str) -> torch.device:
    """The run's device ('auto' -> cuda:0, mps or cpu), checked as everywhere else."""
    return torch.device(devices.resolve_device(name))


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if native_bf16(device) else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def native_bf16(device: torch.device) -> bool:
    """bfloat16 in hardware (Ampere, compute capability 8, and newer); older GPUs get float16 with
    a GradScaler. (`torch.cuda.is_bf16_supported()` also says yes where bf16 is only emulated.)"""
    return torch.cuda.get_device_capability(device)[0] >= 8


@contextlib.contextmanager
def _deterministic(enabled: bool):
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    # cuBLAS is deterministic only with a fixed workspace, set before its first use
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)
        torch.backends.cudnn.benchmark = benchmark


def _l1_penalty(model: nn.Module, activation_ids: set[int]) -> torch.Tensor:
    weights = [p for p in model.parameters() if p.dim() > 1 and id(p) not in activation_ids]
    return sum(p.abs().sum() for p in weights)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
             device: torch.device, amp: bool, noise: float = 0.0,
             generator: torch.Generator | None = None) -> tuple[float, float]:
    """(accuracy, mean loss) on (x, y); Gaussian noise of std `noise` added to the inputs."""
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device, non_blocking=True)
            yb = y[start:start + batch_size].to(device, non_blocking=True)
            if noise:
                xb = xb + noise * torch.randn(xb.shape, generator=generator).to(device)
            with _autocast(device, amp):
                logits = model(xb)
            loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum").item()
            correct += (logits.argmax(1) == yb).sum().item()
    return correct / len(x), loss_sum / len(x)


def train_run(run: RunSpec, splits: data_module.DataSplits,
              on_epoch: Callable[[EpochResult], None] | None = None,
              on_batch: Callable[[int, int], None] | None = None) -> RunResult:
    """Train one run; never raises for a failing run (the result says how it ended)."""
    result = RunResult()
    started = time.perf_counter()
    train_cfg = run.config["train"]
    device = resolve_device(train_cfg["device"])
    peak = PeakMemory(device)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
                _deterministic(train_cfg["deterministic"]), peak:
            _train(run, splits, device, result, on_epoch, on_batch)
    except Diverged as error:
        result.status, result.message = "diverged", str(error)
    except Exception as error:  # noqa: BLE001 - the suite goes on; the row says what happened
        result.status = "failed"
        result.message = describe_error(error)
    result.total_s = time.perf_counter() - started
    result.peak_bytes, result.peak_kind = peak.peak_bytes, peak.kind
    return result


def _train(run: RunSpec, splits, device: torch.device, result: RunResult, on_epoch, on_batch) -> None:
    cfg = run.config
    train_cfg, optim_cfg, model_cfg = cfg["train"], cfg["optim"], cfg["model"]
    torch.manual_seed(run.seed)
    np_rng = np.random.default_rng(run.seed)
    batch_generator = torch.Generator().manual_seed(run.seed)

    created: list[nn.Module] = []
    options = {k: v for k, v in model_cfg.items() if k != "name"}
    model = build_model(model_cfg["name"], activation_factory(run, created), splits.input_shape,
                        splits.num_classes, **options).to(device)
    result.params = count_parameters(model)
    channels_last = train_cfg["channels_last"] and len(splits.input_shape) == 3
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    activation_ids = {id(p) for module in created for p in module.parameters()}
    optimizer = build_optimizer(parameter_groups(model, created, optim_cfg["weight_decay"]), optim_cfg)
    batch_size, epochs = train_cfg["batch_size"], train_cfg["epochs"]
    steps_per_epoch = max(math.ceil(len(splits.train_x) / batch_size), 1)
    scheduler = build_scheduler(optimizer, cfg["schedule"], optim_cfg["lr"], epochs, steps_per_epoch)
    amp = train_cfg["amp"]
    scaler = (torch.amp.GradScaler("cuda") if amp and device.type == "cuda"
              and not native_bf16(device) else None)
    forward = torch.compile(model) if train_cfg["compile"] else model
    criterion = nn.CrossEntropyLoss(label_smoothing=train_cfg["label_smoothing"])
    augment = splits.augment_kind if train_cfg["augment"] else None

    constant_lr = cfg["schedule"]["name"] == "constant" and not cfg["schedule"]["warmup_epochs"]
    for epoch in range(1, epochs + 1):
        model.train()
        # running sums stay on the device: no host synchronisation per step
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        lr = optimizer.param_groups[0]["lr"]
        devices.synchronize(device)
        epoch_start = time.perf_counter()
        batches = data_module.batches(splits.train_x, splits.train_y, batch_size, shuffle=True,
                                      generator=batch_generator, augment=augment)
        for step, (xb, yb) in enumerate(batches):
            if len(xb) == 1 and seen:  # BatchNorm cannot train on a last batch of one sample
                continue
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            mix = train_cfg["mixup"] > 0
            if mix:
                lam = float(np_rng.beta(train_cfg["mixup"], train_cfg["mixup"]))
                order = torch.randperm(len(xb), generator=batch_generator).to(device)
                xb = lam * xb + (1 - lam) * xb[order]
            with _autocast(device, amp):
                logits = forward(xb)
                loss = (lam * criterion(logits, yb) + (1 - lam) * criterion(logits, yb[order])
                        if mix else criterion(logits, yb))
                if optim_cfg["l1"]:
                    loss = loss + optim_cfg["l1"] * _l1_penalty(model, activation_ids)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if train_cfg["grad_clip"]:
                nn.utils.clip_grad_norm_(model.parameters(), train_cfg["grad_clip"])
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if not constant_lr:
                scheduler.step()
            loss_sum += loss.detach().float() * len(xb)
            correct += (logits.detach().argmax(1) == yb).sum()
            seen += len(xb)
            if (step + 1) % DIVERGENCE_CHECK_STEPS == 0:
                _check_finite(loss_sum, epoch, step)
            if on_batch is not None:
                on_batch(step + 1, steps_per_epoch)
        _check_finite(loss_sum, epoch, step)
        devices.synchronize(device)
        epoch_s = time.perf_counter() - epoch_start
        test_acc, test_loss = evaluate(forward, splits.test_x, splits.test_y,
                                       train_cfg["eval_batch_size"], device, amp)
        if not math.isfinite(test_loss):  # e.g. the epoch's last step produced NaN weights
            raise Diverged(f"test loss became {test_loss} after epoch {epoch}")
        record = EpochResult(epoch, loss_sum.item() / seen, correct.item() / seen, test_loss,
                             test_acc, lr,
                             epoch_s, seen / epoch_s if epoch_s > 0 else float("nan"))
        result.epochs.append(record)
        if on_epoch is not None:
            on_epoch(record)

    noise_generator = torch.Generator().manual_seed(run.seed + 1)
    for sigma in cfg["eval"]["noise"]:
        result.noise[float(sigma)] = evaluate(forward, splits.test_x, splits.test_y,
                                              train_cfg["eval_batch_size"], device, amp,
                                              noise=float(sigma), generator=noise_generator)



def result_columns(result: RunResult) -> dict[str, Any]:
    final, best = result.final, result.best
    columns: dict[str, Any] = {
        "status": result.status, "message": result.message,
        "epochs_done": len(result.epochs),
        "final_test_acc": final.test_acc if final else None,
        "final_test_loss": final.test_loss if final else None,
        "final_train_loss": final.train_loss if final else None,
        "final_train_acc": final.train_acc if final else None,
        "best_test_acc": best.test_acc if best else None,
        "best_epoch": best.epoch if best else None,
        "params": result.params, "total_s": result.total_s,
        "mean_epoch_s": (sum(e.epoch_s for e in result.epochs) / len(result.epochs)
                         if result.epochs else None),
        "samples_per_s": (sum(e.samples_per_s for e in result.epochs) / len(result.epochs)
                          if result.epochs else None),
        "peak_bytes": result.peak_bytes, "peak_kind": result.peak_kind,
    }
    for sigma, (acc, loss) in result.noise.items():
        columns[f"noise_{sigma:g}_acc"], columns[f"noise_{sigma:g}_loss"] = acc, loss
    return columns

"""One training run, readable top to bottom: set-up (`Trainer`: model, optimiser, scheduler,
scaler, criterion), a timed warm-up on a throwaway copy, `train_step`, `train_epoch` with its
evaluation, then noise evaluation. Sequence data (a target per position) are scored per
scored position: language.py says how, for training and evaluation alike.

Epoch time counts training only (evaluation is left out, as the fast CIFAR trainers time it) and
is steady-state: what a process pays the first time it runs a model (thread pools, allocator,
kernel selection) is paid by the warm-up and recorded apart, as `warmup_s`.
A non-finite loss ends the run as `diverged`; an exception as `failed`; the caller goes on.
"""

from __future__ import annotations

import contextlib
import copy
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
from ..errors import ActbenchError, describe_error
from ..zoo.registry import lookup
from . import data as data_module
from . import language
from .memory import PeakMemory
from .models import build_model, count_parameters
from .optim import build_optimizer, build_scheduler, parameter_groups
from .config import RunSpec


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
    warmup_s: float | None = None
    peak_bytes: int | None = None
    peak_kind: str = ""
    task: str = "classify"  # the data's (DataSplits.task): "sequence" runs report perplexity
    tokens_are_bytes: bool = False  # byte-level text: the loss in bits is bits per byte

    @property
    def final(self) -> EpochResult | None:
        return self.epochs[-1] if self.epochs else None

    @property
    def best(self) -> EpochResult | None:
        return max(self.epochs, key=lambda e: e.test_acc) if self.epochs else None


class Diverged(Exception):
    """The loss stopped being a finite number."""


# Training steps of the warm-up copy: the first pays the process's one-time costs, the second
# those that wait for a second call (optimiser state, caching allocators).
WARMUP_STEPS = 2

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


def native_bf16(device: torch.device) -> bool:
    """bfloat16 in hardware (Ampere, compute capability 8, and newer); older GPUs get float16 with
    a GradScaler. (`torch.cuda.is_bf16_supported()` also says yes where bf16 is only emulated.)"""
    return torch.cuda.get_device_capability(device)[0] >= 8


def autocast(device: torch.device, amp: bool):
    """Mixed precision where `amp` asks for it: bfloat16, or float16 on GPUs without native bf16.
    Without amp no autocast is built at all: torch 2.4 refuses device_type 'mps' even disabled."""
    if not amp:
        return contextlib.nullcontext()
    half = device.type == "cuda" and not native_bf16(device)
    return torch.autocast(device.type, dtype=torch.float16 if half else torch.bfloat16)


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
             generator: torch.Generator | None = None,
             sequence: bool = False) -> tuple[float, float]:
    """(accuracy, mean loss) on (x, y); Gaussian noise of std `noise` added to the inputs.
    `sequence`: token accuracy and mean loss per scored position (no noise: token ids)."""
    if sequence:
        if noise:
            raise ActbenchError(f"eval.noise: {language.NOISE_PROBLEM}")
        return _evaluate_tokens(model, x, y, batch_size, device, amp)
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device, non_blocking=True)
            yb = y[start:start + batch_size].to(device, non_blocking=True)
            if noise:
                xb = xb + noise * torch.randn(xb.shape, generator=generator).to(device)
            with autocast(device, amp):
                logits = model(xb)
            loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum").item()
            correct += (logits.argmax(1) == yb).sum().item()
    return correct / len(x), loss_sum / len(x)


def _evaluate_tokens(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                     device: torch.device, amp: bool) -> tuple[float, float]:
    """Token accuracy and mean cross-entropy over every scored position of the split: a sequence
    weighs by its scored positions, so the loss is the per-token loss that perplexity needs."""
    model.eval()
    correct, loss_sum, scored = 0, 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device, non_blocking=True)
            yb = y[start:start + batch_size].to(device, non_blocking=True)
            with autocast(device, amp):
                logits = model(xb)
            loss_sum += language.summed_cross_entropy(logits, yb).item()
            correct += language.correct_tokens(logits, yb).item()
            scored += language.scored_count(yb).item()
    if not scored:
        raise ActbenchError("the test split has no scored positions (every target is "
                            f"{language.IGNORE_INDEX}); nothing to evaluate")
    return correct / scored, loss_sum / scored


def train_run(run: RunSpec, splits: data_module.DataSplits,
              on_epoch: Callable[[EpochResult], None] | None = None,
              on_batch: Callable[[int, int, int], None] | None = None) -> RunResult:
    """Train one run on `run.device`; never raises for a failing run (the result says how it
    ended). `on_batch(epoch, step, steps)` follows each optimiser step."""
    result = RunResult(task=splits.task, tokens_are_bytes=splits.tokens_are_bytes)
    started = time.perf_counter()
    device = torch.device(run.device)
    peak = PeakMemory(device)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
                _deterministic(run.config.train.deterministic), peak:
            _train(run, splits, device, result, on_epoch, on_batch or _no_batch, peak)
    except Diverged as error:
        result.status, result.message = "diverged", str(error)
    except Exception as error:  # noqa: BLE001 - the suite goes on; the row says what happened
        result.status = "failed"
        result.message = describe_error(error)
    result.total_s = time.perf_counter() - started
    result.peak_bytes, result.peak_kind = peak.peak_bytes, peak.kind
    return result


def _no_batch(epoch: int, step: int, steps: int) -> None:
    """The batch listener used when nobody listens."""


class Trainer:
    """Everything one run trains with around its model (built first, from torch's seeded global
    RNG): numpy's RNG (mixup's mixing weights), the batch generator (batch order, augmentation,
    mixup's partners), optimiser, schedule, loss scaling and criterion."""

    def __init__(self, run: RunSpec, splits: data_module.DataSplits, device: torch.device,
                 model: nn.Module, created: list[nn.Module]):
        cfg, self.splits, self.device, self.model = run.config, splits, device, model
        self.created = created
        self.train_cfg, self.optim_cfg = cfg.train, cfg.optim
        self.np_rng = np.random.default_rng(run.seed)
        self.batch_generator = torch.Generator().manual_seed(run.seed)
        self.noise_seed = run.seed + 1

        self.channels_last = cfg.train.channels_last and len(splits.input_shape) == 3
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.activation_ids = {id(p) for module in created for p in module.parameters()}
        self.optimizer = build_optimizer(parameter_groups(self.model, created, cfg.optim.weight_decay),
                                         cfg.optim)
        self.steps_per_epoch = max(math.ceil(len(splits.train_x) / cfg.train.batch_size), 1)
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, cfg.optim.lr, cfg.train.epochs,
                                         self.steps_per_epoch)
        self.constant_lr = cfg.schedule.name == "constant" and not cfg.schedule.warmup_epochs
        half = cfg.train.amp and device.type == "cuda" and not native_bf16(device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=half)  # float16 needs loss scaling
        self.forward = torch.compile(self.model) if cfg.train.compile else self.model
        self.sequence = splits.task == "sequence"
        if self.sequence:  # summed over scored positions, divided by their number (language.py)
            _refuse_for_sequences(cfg.train.mixup, cfg.eval.noise)
            self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing,
                                                 ignore_index=language.IGNORE_INDEX, reduction="sum")
        else:
            self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing)
        self.augment = splits.augment_kind if cfg.train.augment else None
        self.noise_levels = cfg.eval.noise

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The optimised loss: the mean over samples, or over scored positions for sequences."""
        if self.sequence:
            return language.token_loss(self.criterion, logits, targets)
        return self.criterion(logits, targets)

    def batch_counts(self, logits: torch.Tensor, targets: torch.Tensor):
        """(correct predictions, what they are out of) for a batch: samples, or scored positions
        (a tensor on the device, so the epoch's sums need no synchronisation per step)."""
        if self.sequence:
            return language.correct_tokens(logits, targets), language.scored_count(targets)
        return (logits.argmax(1) == targets).sum(), len(targets)

    def mix(self, xb: torch.Tensor, yb: torch.Tensor):
        """mixup (Zhang et al. 2018): inputs blended with a shuffled copy of the batch, weight
        `lam` ~ Beta(alpha, alpha). Without mixup: the batch, no partner labels, weight 1."""
        alpha = self.train_cfg.mixup
        if alpha <= 0:
            return xb, yb, None, 1.0
        lam = float(self.np_rng.beta(alpha, alpha))
        order = torch.randperm(len(xb), generator=self.batch_generator).to(self.device)
        return lam * xb + (1 - lam) * xb[order], yb, yb[order], lam

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step on a batch already on the device; (loss, logits), not synchronised."""
        xb, yb, partner, lam = self.mix(xb, yb)
        with autocast(self.device, self.train_cfg.amp):
            logits = self.forward(xb)
            loss = self.loss(logits, yb)
            if partner is not None:
                loss = lam * loss + (1 - lam) * self.loss(logits, partner)
            if self.optim_cfg.l1:
                loss = loss + self.optim_cfg.l1 * _l1_penalty(self.model, self.activation_ids)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)  # clipping sees the true gradients
        if self.train_cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.train_cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if not self.constant_lr:
            self.scheduler.step()
        return loss, logits

    def warm_up(self, steps: int | None = None) -> float:
        """Seconds spent on `steps` training steps of a throwaway copy of the model (same
        optimiser, first batch, same precision): the first calls of a process pay for thread
        pools, allocator growth and kernel selection, which would otherwise land in epoch 1. The
        run itself is untouched: the copy is dropped and every random generator is restored."""
        steps = WARMUP_STEPS if steps is None else steps
        xb = self.splits.train_x[:self.train_cfg.batch_size].to(self.device)
        yb = self.splits.train_y[:self.train_cfg.batch_size].to(self.device)
        if len(xb) < 2 or steps < 1:  # BatchNorm cannot train on one sample
            return 0.0
        if self.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        model, created = copy.deepcopy((self.model, self.created))
        optimizer = build_optimizer(parameter_groups(model, created, self.optim_cfg.weight_decay),
                                    self.optim_cfg)
        devices.synchronize(self.device)
        started = time.perf_counter()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            model.train()
            for _ in range(steps):
                with autocast(self.device, self.train_cfg.amp):
                    loss = self.loss(model(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        devices.synchronize(self.device)
        return time.perf_counter() - started

    def evaluate(self, noise: float = 0.0, generator: torch.Generator | None = None):
        return evaluate(self.forward, self.splits.test_x, self.splits.test_y,
                        self.train_cfg.eval_batch_size, self.device, self.train_cfg.amp,
                        noise=noise, generator=generator, sequence=self.sequence)

    def train_epoch(self, epoch: int, on_batch: Callable[[int, int, int], None]) -> EpochResult:
        """One pass over the training set, timed without evaluation, then the test set. Loss and
        accuracy are means over samples, or over scored positions for sequences."""
        self.model.train()
        # running sums stay on the device: no host synchronisation per step
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        seen, scored, step = 0, 0, 0
        lr = self.optimizer.param_groups[0]["lr"]
        devices.synchronize(self.device)
        epoch_start = time.perf_counter()
        batches = data_module.batches(self.splits.train_x, self.splits.train_y,
                                      self.train_cfg.batch_size, shuffle=True,
                                      generator=self.batch_generator, augment=self.augment)
        for step, (xb, yb) in enumerate(batches):
            if len(xb) == 1 and seen:  # BatchNorm cannot train on a last batch of one sample
                continue
            xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            loss, logits = self.train_step(xb, yb)
            hits, count = self.batch_counts(logits.detach(), yb)
            loss_sum += loss.detach().float() * count
            correct += hits
            scored += count
            seen += len(xb)
            if (step + 1) % DIVERGENCE_CHECK_STEPS == 0:
                _check_finite(loss_sum, epoch, step)
            on_batch(epoch, step + 1, self.steps_per_epoch)
        _check_finite(loss_sum, epoch, step)
        devices.synchronize(self.device)
        epoch_s = time.perf_counter() - epoch_start
        test_acc, test_loss = self.evaluate()
        if not math.isfinite(test_loss):  # e.g. the epoch's last step produced NaN weights
            raise Diverged(f"test loss became {test_loss} after epoch {epoch}")
        total = float(scored)
        if not total and self.sequence:
            raise ActbenchError("the training split has no scored positions (every target is "
                                f"{language.IGNORE_INDEX}); nothing to train on")
        return EpochResult(epoch, loss_sum.item() / total, correct.item() / total, test_loss,
                           test_acc, lr, epoch_s, seen / epoch_s if epoch_s > 0 else float("nan"))


def _refuse_for_sequences(mixup: float, noise: tuple | list) -> None:
    """Mixup and input noise change the inputs' values, which for token ids means nothing; the
    suite validator refuses both, and a configuration built by hand is refused here."""
    if mixup > 0:
        raise ActbenchError(f"train.mixup: {language.MIXUP_PROBLEM}")
    if noise:
        raise ActbenchError(f"eval.noise: {language.NOISE_PROBLEM}")


def build_run_model(run: RunSpec, splits: data_module.DataSplits, device: torch.device,
                    created: list[nn.Module]) -> nn.Module:
    """The run's model on `device`, initialised from torch's global RNG; the activation modules
    it holds are appended to `created`."""
    model_cfg = run.config.model
    return build_model(model_cfg.name, activation_factory(run, created), splits.input_shape,
                       splits.num_classes, init=model_cfg.init, init_std=model_cfg.init_std,
                       **model_cfg.options).to(device)


def _train(run: RunSpec, splits: data_module.DataSplits, device: torch.device, result: RunResult,
           on_epoch, on_batch, peak: PeakMemory) -> None:
    """The run: the seeded model (counted before anything else can fail), the trainer set up
    around it, the warm-up (whose copy of the model is not the run's memory: the peak starts
    again after it), every epoch, then accuracy under input noise at each evaluation level."""
    torch.manual_seed(run.seed)
    created: list[nn.Module] = []
    model = build_run_model(run, splits, device, created)
    result.params = count_parameters(model)
    trainer = Trainer(run, splits, device, model, created)
    result.warmup_s = trainer.warm_up()
    peak.restart()
    for epoch in range(1, trainer.train_cfg.epochs + 1):
        record = trainer.train_epoch(epoch, on_batch)
        result.epochs.append(record)
        if on_epoch is not None:
            on_epoch(record)
    noise_generator = torch.Generator().manual_seed(trainer.noise_seed)
    for sigma in trainer.noise_levels:
        result.noise[float(sigma)] = trainer.evaluate(noise=float(sigma), generator=noise_generator)


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
        "warmup_s": result.warmup_s,
        "final_test_perplexity": (language.perplexity(final.test_loss)
                                  if final and result.task == "sequence" else None),
        "final_test_bits_per_byte": (language.bits_per_byte(final.test_loss)
                                     if final and result.tokens_are_bytes else None),
    }
    for sigma, (acc, loss) in result.noise.items():
        columns[f"noise_{sigma:g}_acc"], columns[f"noise_{sigma:g}_loss"] = acc, loss
    return columns

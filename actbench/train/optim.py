"""Optimisers and learning-rate schedules from a suite's `optim:` and `schedule:` sections.

Activation parameters (ACON's p1/p2/beta, PReLU slopes, Swish's beta) get no weight decay, as the
ACON authors train them; every other parameter gets `optim.weight_decay`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .config import OptimConfig, ScheduleConfig


def parameter_groups(model: nn.Module, activation_modules: Iterable[nn.Module],
                     weight_decay: float) -> list[dict[str, Any]]:
    activation_ids = {id(p) for module in activation_modules for p in module.parameters()}
    decay = [p for p in model.parameters() if p.requires_grad and id(p) not in activation_ids]
    no_decay = [p for p in model.parameters() if p.requires_grad and id(p) in activation_ids]
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(groups: list[dict[str, Any]], optim: OptimConfig) -> torch.optim.Optimizer:
    name, lr = optim.name, optim.lr
    betas, eps, momentum = tuple(optim.betas), optim.eps, optim.momentum
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=optim.nesterov
                               and momentum > 0)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, momentum=momentum, eps=eps)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr, eps=eps)
    if name == "adadelta":
        return torch.optim.Adadelta(groups, lr=lr, eps=eps)
    adam_like = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax,
                 "nadam": torch.optim.NAdam}
    return adam_like[name](groups, lr=lr, betas=betas, eps=eps)


def lr_factor(schedule: ScheduleConfig, base_lr: float, epochs: int, steps_per_epoch: int):
    """step -> multiplier of the base learning rate (a linear warm-up first, then the schedule).

    Steps are optimiser steps; epoch-based schedules (step, multistep) change at epoch boundaries.
    """
    total = max(epochs * steps_per_epoch, 1)
    warmup = schedule.warmup_epochs * steps_per_epoch
    name, gamma = schedule.name, schedule.gamma
    floor = schedule.min_lr / base_lr if base_lr else 0.0
    peak = (schedule.max_lr or base_lr) / base_lr if base_lr else 1.0

    def after_warmup(step: int) -> float:
        epoch = step // steps_per_epoch
        progress = min(max(step - warmup, 0) / max(total - warmup, 1), 1.0)
        if name == "step":
            return gamma ** (epoch // schedule.step_size)
        if name == "multistep":
            return gamma ** sum(epoch >= m for m in schedule.milestones)
        if name == "cosine":
            return floor + (1 - floor) * (1 + math.cos(math.pi * progress)) / 2
        if name == "onecycle":
            # Smith & Topin 2019: up from peak/25 to peak over 30 %, cosine down to min_lr
            rise = 0.3
            if progress < rise:
                start = peak / 25
                return start + (peak - start) * (1 - math.cos(math.pi * progress / rise)) / 2
            fall = (progress - rise) / (1 - rise)
            return floor + (peak - floor) * (1 + math.cos(math.pi * fall)) / 2
        return 1.0

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return after_warmup(warmup) * (step + 1) / warmup
        return after_warmup(step)

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: ScheduleConfig, base_lr: float,
                    epochs: int, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler; call `.step()` after every optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(schedule, base_lr, epochs, steps_per_epoch))

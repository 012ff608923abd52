"""Models that `actbench model` tests name by import path (`tests.model.nets:NAME`), and a fake
`timm` (see conftest.py) whose one model mixes torch's GELU with timm's own GELU class."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

TOKENS, DIM, HIDDEN = 5, 8, 16  # token_mlp's sample: (TOKENS, DIM)


class TokenMLP(nn.Module):
    """A transformer's MLP block on (N, L, D): Linear -> GELU -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(DIM, HIDDEN)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(HIDDEN, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def token_mlp() -> nn.Module:
    return TokenMLP()


def conv_net() -> nn.Module:
    """Two convs with a ReLU and a SiLU, pooled to (N, 3) logits; sample (3, H, W)."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                         nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


class Picky(nn.Module):
    """Linear -> act -> Linear whose forward refuses one activation (mish unless told)."""

    def __init__(self, refuses: str = "mish") -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3)
        self.refuses = refuses

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if getattr(self.act, "activation_name", None) == self.refuses:
            raise RuntimeError(f"picky refuses {self.refuses}")
        return self.fc2(self.act(self.fc1(x)))


def picky() -> nn.Module:
    return Picky()


def picky_identity() -> nn.Module:
    return Picky("identity")


class Functional(nn.Module):
    """A ReLU module, and an F.relu call that no module swap can reach."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.act(self.fc1(x))))


def functional() -> nn.Module:
    return Functional()


class Tiring(nn.Module):
    """Works for its first calls, then fails (with silu only): a step that breaks while sampled."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > 8 and getattr(self.act, "activation_name", None) == "silu":
            raise RuntimeError(f"tired after {self.calls - 1} calls")
        return self.fc2(self.act(self.fc1(x)))


def tiring() -> nn.Module:
    return Tiring()


def not_a_module() -> object:
    return "a string, not a model"


NOT_CALLABLE = 42


def exploding(x: torch.Tensor) -> torch.Tensor:
    """An activation (a tensor function) that always fails."""
    raise ValueError("exploding activation")


# ---- the fake timm's model


class GELU(nn.Module):
    """Stands for timm.layers.activations.GELU, which does not subclass torch's GELU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)


GELU.__module__ = "timm.layers.activations"  # replace_activations knows it by qualified name

VIT_TOKENS, VIT_DIM, VIT_CLASSES = 6, 8, 5


class FakeViT(nn.Module):
    """Tokens (N, L, D) -> Linear, torch GELU -> Linear, timm GELU -> a sigmoid gate -> mean over
    tokens -> (N, classes) logits."""

    def __init__(self, num_classes: int = VIT_CLASSES) -> None:
        super().__init__()
        self.fc1, self.act1 = nn.Linear(VIT_DIM, 16), nn.GELU()
        self.fc2, self.act2 = nn.Linear(16, VIT_DIM), GELU()
        self.gate = nn.Sigmoid()
        self.head = nn.Linear(VIT_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act2(self.fc2(self.act1(self.fc1(x))))
        return self.head((h * self.gate(h)).mean(1))


def no_activation() -> nn.Module:
    """Linear layers only: nothing for an activation to go into."""
    return nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))

"""What a run on sequence data measures, in one place, so training, evaluation and the report agree.

Sequence data (DataSplits.task "sequence") have a target per position, IGNORE_INDEX where a
position is not scored. Every scored position counts once: the loss is the cross-entropy summed
over scored positions divided by their number, token accuracy is the share of scored positions
whose argmax is the target, and an evaluation averages per scored token, not per sequence (a
sequence with more answers weighs more). From the mean loss in nats: perplexity exp(loss), and for
byte-level text (a token is a byte) bits per byte loss / ln 2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .sequences import IGNORE_INDEX

# why options that change the inputs' values are refused for token ids (suite_rules, loop)
MIXUP_PROBLEM = "expected 0 for sequence data: mixup blends inputs, and token ids cannot be blended"
NOISE_PROBLEM = ("expected [] for sequence data: Gaussian noise on token ids has no meaning (the "
                 "test split is evaluated as it is)")


def flat(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, L, V) logits and (N, L) targets as (N * L, V) and (N * L,): one row per position."""
    return logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)


def scored_count(targets: torch.Tensor) -> torch.Tensor:
    """How many positions are scored (on the targets' device: no host synchronisation)."""
    return (targets != IGNORE_INDEX).sum()


def token_loss(criterion: torch.nn.Module, logits: torch.Tensor,
               targets: torch.Tensor) -> torch.Tensor:
    """The mean of `criterion` (a summing cross-entropy that ignores IGNORE_INDEX) over the scored
    positions; 0, not NaN, for a batch without any (the optimiser step then changes nothing)."""
    summed = criterion(*flat(logits, targets))
    return summed / scored_count(targets).clamp(min=1)


def summed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in nats summed over the scored positions, in float32 (evaluation: no
    smoothing)."""
    return F.cross_entropy(*flat(logits.float(), targets), ignore_index=IGNORE_INDEX,
                           reduction="sum")


def correct_tokens(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Scored positions whose most likely token is the target."""
    hits = (logits.argmax(-1) == targets) & (targets != IGNORE_INDEX)
    return hits.sum()


def perplexity(loss: float) -> float:
    """exp(mean loss in nats); inf where that overflows a float, NaN for a NaN loss."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def bits_per_byte(loss: float) -> float:
    """A byte-level model's mean loss in nats per byte, in bits: loss / ln 2."""
    return loss / math.log(2)

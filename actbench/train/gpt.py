"""`gpt`: a small decoder-only transformer, for comparing activations where language models use them.

The activation under test is the MLP's, built by the factory ``act(hidden)`` like every other
model's. A gated activation (class attribute ``gated = True``: SwiGLU, GeGLU, ...) maps (..., 2h)
to (..., h); its MLP's first layer then outputs 2h with h = 2/3 of the ungated hidden width
(`mlp_hidden`), so that gated and ungated MLPs hold about the same number of parameters.

Pre-norm blocks as in GPT-2 (Radford et al. 2019) and nanoGPT: token embedding (+ learned
positions, or rotary positions on queries and keys), depth x [x + attn(LN(x)); x + mlp(LN(x))],
a final LayerNorm and an output head that is the token embedding (tied: one tensor). Input: int64
token ids (N, L) with L at most the context length; output: logits (N, L, vocab).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ActbenchError

ActFactory = Callable[[int], nn.Module]  # act(channels) -> a fresh activation module

POSITIONS = ("learned", "rope")
GATED_MULTIPLE = 8  # a gated MLP's hidden width is a multiple of this (LLaMA rounds to 256)
INIT_STD = 0.02  # GPT-2's standard deviation of every weight
ROPE_BASE = 10_000.0  # RoFormer's base of the rotary frequencies


def _nearest(x: float) -> int:
    """x rounded half up (Python's round() rounds half to even)."""
    return math.floor(x + 0.5)


def mlp_hidden(width: int, mlp_ratio: float, gated: bool) -> int:
    """The MLP's hidden width h: mlp_ratio * width, or for a gated activation 2/3 of it, to the
    nearest multiple of 8 (at least 8): three matrices of width x h then hold about as many
    parameters as the ungated MLP's two of width x (mlp_ratio * width)."""
    if not gated:
        return _nearest(mlp_ratio * width)
    return max(GATED_MULTIPLE, GATED_MULTIPLE * _nearest(2 * mlp_ratio * width / (3 * GATED_MULTIPLE)))


def option_problem(width: int, heads: int, positions: str,
                   mlp_ratio: float) -> tuple[str, str, object] | None:
    """(option, what it should be, its value) for options that do not fit together, else None;
    the model and the suite validator both ask here."""
    if width % heads:
        return "heads", f"a divisor of width ({width})", heads
    if positions == "rope" and (width // heads) % 2:
        return ("heads", f"a divisor of width ({width}) that leaves an even head size for rope "
                         f"positions (width / heads = {width // heads})", heads)
    if mlp_hidden(width, mlp_ratio, gated=False) < 1:
        return "mlp_ratio", f"at least {0.5 / width:g} at width {width} (one hidden unit)", mlp_ratio
    return None


class Rotary(nn.Module):
    """Rotary position embedding (Su et al. 2021, RoFormer): channel j of a head is paired with
    channel j + d/2 (the GPT-NeoX / LLaMA layout) and the pair rotated by position * base^(-2j/d),
    so that a query-key product depends on their distance only. No parameters: the angles are
    buffers, left out of the state dict."""

    def __init__(self, head_dim: int, context: int, base: float = ROPE_BASE):
        super().__init__()
        half = head_dim // 2
        freqs = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / head_dim)
        angles = torch.arange(context, dtype=torch.float64)[:, None] * freqs[None, :]
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., L, head_dim) with position along dim -2."""
        length = x.shape[-2]
        # in x's dtype: under autocast q and k are half precision, and v must match them
        cos, sin = self.cos[:length].to(x.dtype), self.sin[:length].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention through scaled_dot_product_attention (fused kernels)."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, rotary: Rotary | None) -> torch.Tensor:
        n, length, width = x.shape
        qkv = self.qkv(x).view(n, length, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (N, heads, L, head_dim)
        if rotary is not None:
            q, k = rotary(q), rotary(k)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)
        return self.resid_dropout(self.proj(y.transpose(1, 2).reshape(n, length, width)))


class MLP(nn.Module):
    """Linear -> activation under test -> Linear; the first layer outputs 2h for a gated one."""

    def __init__(self, act: nn.Module, width: int, hidden: int, gated: bool, dropout: float):
        super().__init__()
        self.fc = nn.Linear(width, 2 * hidden if gated else hidden)
        self.act = act
        self.proj = nn.Linear(hidden, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        # the activation sees (tokens, channels), channels on dim 1 as in every actbench model, so
        # channel-wise activations (ACON) need no layout option; a view, no copy
        h = self.act(h.reshape(-1, h.shape[-1]))
        return self.dropout(self.proj(h.reshape(*x.shape[:-1], h.shape[-1])))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, act: nn.Module, width: int, heads: int, hidden: int, gated: bool,
                 dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads, dropout)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = MLP(act, width, hidden, gated, dropout)

    def forward(self, x: torch.Tensor, rotary: Rotary | None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), rotary)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """The decoder: token ids (N, L) -> logits (N, L, vocab); see the module's docstring."""

    def __init__(self, acts: list[nn.Module], gated: bool, vocab: int, context: int, *, width: int,
                 heads: int, hidden: int, dropout: float, positions: str):
        super().__init__()
        self.context, self.gated, self.hidden = context, gated, hidden
        self.embed = nn.Embedding(vocab, width)
        self.pos_embed = nn.Embedding(context, width) if positions == "learned" else None
        self.rotary = Rotary(width // heads, context) if positions == "rope" else None
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(act, width, heads, hidden, gated, dropout) for act in acts)
        self.ln_f = nn.LayerNorm(width)
        gpt2_initialise(self)

    @property
    def head_weight(self) -> nn.Parameter:
        """The output head's weight: the token embedding itself (tied, as in GPT-2)."""
        return self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.is_floating_point() or tokens.is_complex() \
                or tokens.dtype == torch.bool:
            raise ActbenchError(f"gpt takes integer token ids of shape (N, L); got {tokens.dtype} "
                                f"of shape {tuple(tokens.shape)}")
        length = tokens.shape[1]
        if length > self.context:
            raise ActbenchError(f"gpt was built for sequences of at most {self.context} tokens; "
                                f"got {length}")
        x = self.embed(tokens)
        if self.pos_embed is not None:
            x = x + self.pos_embed(torch.arange(length, device=tokens.device))
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x, self.rotary)
        # the head is the embedding, not an nn.Linear, so `init` schemes leave the embedding alone
        return F.linear(self.ln_f(x), self.embed.weight)


def gpt2_initialise(model: GPT) -> None:
    """GPT-2's initialisation (as nanoGPT has it): embeddings and linear weights N(0, 0.02^2), the
    residual projections' (attention and MLP outputs) scaled by 1/sqrt(2 depth) so that the
    residual stream's variance does not grow with depth; biases 0; LayerNorms 1 and 0. The
    activation modules are not touched."""
    depth = len(model.blocks)
    for embedding in (model.embed, model.pos_embed):
        if embedding is not None:
            nn.init.normal_(embedding.weight, mean=0.0, std=INIT_STD)
    for block in model.blocks:
        for layer, std in ((block.attn.qkv, INIT_STD), (block.mlp.fc, INIT_STD),
                           (block.attn.proj, INIT_STD / math.sqrt(2 * depth)),
                           (block.mlp.proj, INIT_STD / math.sqrt(2 * depth))):
            nn.init.normal_(layer.weight, mean=0.0, std=std)
            nn.init.zeros_(layer.bias)


def _check_per_token(module: nn.Module) -> None:
    """A BatchNorm inside the activation (meta-ACON's switching network) averages over every token
    of the batch in training, so a position would see later ones: refused."""
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        name = getattr(module, "activation_name", type(module).__name__)
        raise ActbenchError(f"gpt cannot use activation {name}: its BatchNorm averages over all "
                            "tokens of a batch, which lets a position see later ones")


def build_gpt(act: ActFactory, context: int, vocab: int, *, depth: int, width: int, heads: int,
              mlp_ratio: float, dropout: float, positions: str) -> GPT:
    """A GPT-2-initialised model; options already checked (models.build_model checks them).

    One activation is built first to learn whether it is gated (``getattr(module, "gated",
    False)``); it becomes the first block's if not, else each block gets ``act(h)`` with h the
    width the gated activation outputs.
    """
    probe = act(mlp_hidden(width, mlp_ratio, gated=False))
    gated = bool(getattr(probe, "gated", False))
    hidden = mlp_hidden(width, mlp_ratio, gated)
    acts = [probe] if not gated else [act(hidden)]
    acts += [act(hidden) for _ in range(depth - 1)]
    for module in acts:
        _check_per_token(module)
    return GPT(acts, gated, vocab, context, width=width, heads=heads, hidden=hidden,
               dropout=dropout, positions=positions)

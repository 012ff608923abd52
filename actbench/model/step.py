"""One configuration made ready to time: the model on its device, a batch, and the step.

An inference step is a forward under `torch.inference_mode()`; a training step is a whole one:
gradients zeroed, forward, cross-entropy against fixed random labels, backward and an SGD step
with momentum. A token model (gpt) gets int64 token ids drawn from its vocabulary instead of
normal floats, and its loss is the cross-entropy at every position against random target tokens.
Memory is counted once, on a step of its own: the bytes autograd keeps for backward (distinct
storages, as micro counts them), all of them and those packed inside the activation modules, and
on CUDA the allocator's peak over the step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .source import BuiltModel

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class StepSetup:
    """How a step runs, apart from the model and the activation."""

    device: str
    dtype: str = "float32"
    amp: bool = False
    batch_size: int = 32
    mode: str = "train"  # or "infer"
    channels_last: bool = False
    compile: bool = False


@dataclass
class Workload:
    """What the timer calls, and what a row reports about it."""

    step: Callable[[], object]
    params: int
    act_saved_bytes: int | None
    step_saved_bytes: int | None


def amp_dtype(device: str) -> torch.dtype:
    """What autocast computes in: float16 on GPUs (CUDA, MPS), bfloat16 on the CPU (its fast
    path)."""
    return torch.float16 if device.startswith(("cuda", "mps")) else torch.bfloat16


def prepare(built: BuiltModel, sample_shape: tuple[int, ...], num_classes: int | None,
            setup: StepSetup, seed: int = 0, vocab: int | None = None) -> Workload:
    """The model moved, cast and (optionally) compiled, a fixed batch (token ids from
    range(vocab) for a token model), and the step to time."""
    generator = torch.Generator().manual_seed(seed)
    shape = (setup.batch_size, *sample_shape)
    x = torch.randn(shape, generator=generator) if vocab is None else \
        torch.randint(0, vocab, shape, generator=generator)
    model = built.module
    if not setup.amp:
        model = model.to(DTYPES[setup.dtype])
        x = x.to(DTYPES[setup.dtype]) if x.is_floating_point() else x  # token ids stay int64
    model, x = model.to(setup.device), x.to(setup.device)
    if setup.channels_last and x.dim() == 4:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    model.train(setup.mode == "train")
    _materialise(model, x, setup)  # lazy (channel-wise) activations learn their channels here
    params = sum(p.numel() for p in model.parameters())
    runnable = torch.compile(model) if setup.compile else model
    autocast = _autocast(setup)
    if setup.mode == "infer":
        def step() -> object:
            with torch.inference_mode(), autocast():
                return runnable(x)
        return Workload(step, params, None, None)
    labels = _labels(model, x, setup, num_classes, generator, tokens=vocab is not None)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train_step() -> object:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = _loss(runnable(x), labels)
        loss.backward()
        optimizer.step()
        return loss

    # counted on the eager model: a compiled one saves what its fused graph needs, out of sight
    act_bytes, step_bytes = saved_bytes(built.activations, lambda: _loss(model(x), labels), autocast)
    return Workload(train_step, params, act_bytes, step_bytes)


def saved_bytes(activations: list[nn.Module], forward: Callable[[], torch.Tensor],
                autocast: Callable[[], contextlib.AbstractContextManager]) -> tuple[int, int]:
    """(bytes saved for backward inside the activation modules, by the whole forward): distinct
    storages; one an activation shares with its neighbour (its input) counts in both."""
    inside = [0]
    step: dict[tuple[str, int], int] = {}
    act: dict[tuple[str, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = (str(tensor.device), storage.data_ptr())
        step[key] = storage.nbytes()
        if inside[0]:
            act[key] = storage.nbytes()
        return tensor

    def enter(*_):
        inside[0] += 1

    def leave(*_):
        inside[0] -= 1

    handles = [h for m in activations for h in (m.register_forward_pre_hook(enter),
                                                 m.register_forward_hook(leave))]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast():
            forward()
    finally:
        for handle in handles:
            handle.remove()
    return sum(act.values()), sum(step.values())


def _autocast(setup: StepSetup) -> Callable[[], contextlib.AbstractContextManager]:
    if not setup.amp:
        return contextlib.nullcontext
    kind = setup.device.split(":")[0]
    return lambda: torch.autocast(kind, dtype=amp_dtype(setup.device))


def _materialise(model: nn.Module, x: torch.Tensor, setup: StepSetup) -> None:
    with torch.no_grad(), _autocast(setup)():
        model(x[:1] if setup.mode == "infer" else x[:2])


def _labels(model: nn.Module, x: torch.Tensor, setup: StepSetup, num_classes: int | None,
            generator: torch.Generator, tokens: bool = False) -> torch.Tensor | None:
    """Random class labels when the output is (N, classes) logits, random tokens (N, L) when a
    token model's is (N, L, vocab) logits; otherwise None (the loss is then the mean square of
    the output, which still trains every layer)."""
    with torch.no_grad(), _autocast(setup)():
        out = _first_tensor(model(x[:2]))
    rank = 3 if tokens else 2
    classes = num_classes or (out.shape[-1] if out.dim() == rank else None)
    if out.dim() != rank or classes is None or out.shape[-1] != classes:
        return None
    shape = (setup.batch_size, *out.shape[1:-1])  # (N,) or (N, L)
    return torch.randint(0, classes, shape, generator=generator).to(x.device)


def _loss(out: object, labels: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy over the last dim: one per sample, or one per position, averaged."""
    out = _first_tensor(out)
    if labels is None:
        return out.float().square().mean()
    return nn.functional.cross_entropy(out.float().flatten(0, -2), labels.flatten())


def _first_tensor(out: object) -> torch.Tensor:
    """Models that return tuples or dicts (auxiliary heads) are timed on their first tensor."""
    for item in _tensors(out):
        return item
    raise TypeError(f"the model returned {type(out).__name__}, which holds no tensor")


def _tensors(out: object) -> Iterator[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, dict):
        for value in out.values():
            yield from _tensors(value)
    elif isinstance(out, (tuple, list)):
        for value in out:
            yield from _tensors(value)

"""How far an implementation at a dtype is from the float64 result, and whether it stays finite.

The reference is the same activation with the same parameters, computed in float64 on the CPU by
its `formula` implementation (the plain PyTorch expression; `native` where there is no formula).
The probe covers [-20, 20] densely plus standard-normal values, so tails and the
region around 0 both count. Relative errors are taken where |reference| is at least 1/1000 of
its largest magnitude: near a zero of the function (Mish's slope at x = -1.19) any rounding is
an unbounded relative error, so those points are judged by the absolute error. Gated activations
(y = a * g(b) for the halves of the last dim) get the probe as two rows in which value and gate
each see the dense grid and the normal values, and the extremes as every (a, b) pair of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .plan import Config
from .workload import grad_inputs, torch_dtype

PROBE_POINTS = 4096
FINITE_PROBE_FLOAT32 = 1e4


@dataclass(frozen=True)
class Accuracy:
    max_abs_err: float
    max_rel_err: float
    grad_max_abs_err: float
    grad_max_rel_err: float
    finite: bool


def probe_tensor(shape_tail: tuple[int, ...] | None) -> torch.Tensor:
    """float64 probe values; laid out as (2, C, L) for channel-wise activations."""
    generator = torch.Generator().manual_seed(7)
    values = torch.cat([torch.linspace(-20, 20, PROBE_POINTS, dtype=torch.float64),
                        torch.randn(PROBE_POINTS, generator=generator, dtype=torch.float64)])
    if shape_tail is None:
        return values
    channels = shape_tail[0]
    length = max(values.numel() // (2 * channels), 1)
    values = values[: 2 * channels * length]
    if values.numel() < 2 * channels * length:  # very wide layers: repeat the probe
        values = values.repeat(2 * channels * length // values.numel() + 1)[: 2 * channels * length]
    return values.view(2, channels, length)


def gated_probe(values: torch.Tensor) -> torch.Tensor:
    """(2, 2n) from n values: [values | reversed] and [reversed | values], so value and gate both
    see every value, in a different pairing in each row."""
    mirrored = values.flip(0)
    return torch.stack([torch.cat([values, mirrored]), torch.cat([mirrored, values])])


def gated_pairs(values: torch.Tensor) -> torch.Tensor:
    """(n * n, 2): every (a, b) pair of n values, one pair per row."""
    n = values.numel()
    return torch.stack([values.repeat_interleave(n), values.repeat(n)], dim=1)


def _probe(config: Config) -> torch.Tensor:
    spec = config.activation.spec
    if spec.gated:
        return gated_probe(probe_tensor(None))
    return probe_tensor(config.shape[1:2] if spec.channelwise else None)


def _reference_module(config: Config, measured: nn.Module) -> nn.Module:
    spec = config.activation.spec
    impl = next((name for name in ("formula", "native") if name in spec.builders), config.impl)
    channels = config.shape[1] if spec.channelwise else None
    reference = spec.build(impl=impl, channels=channels, seed=0).to(torch.float64).train()
    try:
        state = {key: value.detach().to("cpu", torch.float64)
                 for key, value in measured.state_dict().items()}
        reference.load_state_dict(state)
    except (RuntimeError, KeyError):
        pass  # different parameter layout: both were built from seed 0 anyway
    return reference


RELATIVE_FLOOR = 1e-3


def _errors(result: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    diff = (result.to(torch.float64).cpu() - reference).abs()
    magnitude = reference.abs()
    relevant = magnitude >= RELATIVE_FLOOR * magnitude.max()
    rel = (diff[relevant] / magnitude[relevant]).max().item() if relevant.any() else 0.0
    return diff.max().item(), rel


def measure_accuracy(config: Config, module: nn.Module) -> Accuracy:
    dtype = torch_dtype(config.dtype)
    # round the probe to the dtype first, so the reference sees exactly the measured inputs
    x64 = _probe(config).to(dtype).to(torch.float64)
    reference = _reference_module(config, module)
    x_ref = x64.clone().requires_grad_(True)
    y_ref = reference(x_ref)
    g64 = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    g64 = g64.to(dtype).to(torch.float64)
    (dx_ref,) = torch.autograd.grad(y_ref, x_ref, g64)

    x = x64.to(device=config.device, dtype=dtype).requires_grad_(True)
    y = module(x)
    (dx,) = torch.autograd.grad(y, x, g64.to(device=config.device, dtype=dtype))

    abs_err, rel_err = _errors(y.detach(), y_ref.detach())
    grad_abs, grad_rel = _errors(dx, dx_ref)
    return Accuracy(abs_err, rel_err, grad_abs, grad_rel,
                    finite_at_extremes(config, module, reference))


def extreme_values(dtype: torch.dtype) -> list[float]:
    """±1e4 in float32 (the documented probe), ±0.9 of the largest finite value in half
    precision, ±1e300 in float64 (its range, with room for a slope above 1)."""
    if dtype == torch.float32:
        big = FINITE_PROBE_FLOAT32
    elif dtype == torch.float64:
        big = 1e300
    else:
        big = 0.9 * torch.finfo(dtype).max
    return [-big, -1e2, -1.0, 0.0, 1.0, 1e2, big]


def _outputs_and_grads(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    y = module(x)
    grads = torch.autograd.grad(y, grad_inputs(module, x), torch.ones_like(y))
    return [y.detach(), *grads]


def finite_at_extremes(config: Config, module: nn.Module, reference: nn.Module) -> bool:
    """No NaN, and no infinity where the true value is representable in the dtype.

    The true values come from `reference` in float64 on the same (dtype-rounded) inputs: an
    output that really exceeds the dtype's range (ACON's (p1 - p2) x with |p1 - p2| > 1 near the
    largest value) may be infinite; an overflow inside the formula (x (x + 3) / 6) may not.
    """
    dtype = torch_dtype(config.dtype)
    values = torch.tensor(extreme_values(dtype), dtype=torch.float64)
    if config.activation.spec.gated:
        values = gated_pairs(values)
    elif config.activation.spec.channelwise:
        channels = config.shape[1]
        values = values.repeat(2 * channels, 1).view(2, channels, -1)
    values = values.to(dtype).to(torch.float64)
    measured = _outputs_and_grads(module, values.to(device=config.device, dtype=dtype)
                                  .requires_grad_(True))
    expected = _outputs_and_grads(reference, values.clone().requires_grad_(True))
    limit = torch.finfo(dtype).max
    for got, true in zip(measured, expected):
        got = got.detach().to("cpu", torch.float64)
        representable = torch.isfinite(true) & (true.abs() <= limit)
        if torch.isnan(got).any() or not torch.isfinite(got[representable]).all():
            return False
    return True

"""Independent float64 references: the published formulas in numpy / scipy.

Derivatives of the smooth formulas come from the complex-step method, f'(x) = Im f(x + ih) / h with
h = 1e-30, exact to round-off and independent of both autograd and the hand-derived gradients in
actbench; piecewise ones have their slopes written out by hand.
"""

from __future__ import annotations

import numpy as np
from scipy import special

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
STEP = 1e-30

# parameter values used for the trainable / channel-wise members in the reference tests
PRELU_A = 0.25
ACON_A_BETA = 0.7
ACON_B = {"p": 0.3, "beta": 0.7}
ACON_C = {"p1": 1.5, "p2": 0.25, "beta": 0.7}
# star_relu's initial scale and bias (MetaFormer Baselines): relu(x)^2 of x ~ N(0, 1) has mean 1/2
# and variance 5/4, so s = 1 / sqrt(5/4) and b = -s / 2
STAR_RELU = {"scale": 2.0 / np.sqrt(5.0), "bias": -1.0 / np.sqrt(5.0)}


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softplus(z):
    return np.log1p(np.exp(z))


def _acon(z, p1, p2, beta):
    return (p1 - p2) * z * _sigmoid(beta * (p1 - p2) * z) + p2 * z


SMOOTH = {
    "identity": lambda z: z,
    "gelu": lambda z: 0.5 * z * (1.0 + special.erf(z / np.sqrt(2.0))),
    "gelu_tanh": lambda z: 0.5 * z * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (z + 0.044715 * z ** 3))),
    "quick_gelu": lambda z: z * _sigmoid(1.702 * z),
    "silu": lambda z: z * _sigmoid(z),
    "swish": lambda z: z * _sigmoid(z),  # beta = 1 at initialisation
    "mish": lambda z: z * np.tanh(_softplus(z)),
    "softplus": _softplus,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "tanhexp": lambda z: z * np.tanh(np.exp(z)),
    "serf": lambda z: z * special.erf(_softplus(z)),
    "logish": lambda z: z * np.log1p(_sigmoid(z)),
    "acon_a": lambda z: z * _sigmoid(ACON_A_BETA * z),
    "acon_b": lambda z: _acon(z, 1.0, ACON_B["p"], ACON_B["beta"]),
    "acon_c": lambda z: _acon(z, ACON_C["p1"], ACON_C["p2"], ACON_C["beta"]),
}


def _ramp(x, slope_neg):
    return np.where(x >= 0, x, slope_neg * x), np.where(x > 0, 1.0, slope_neg)


def _elu(x, alpha=1.0, scale=1.0):
    value = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))
    slope = np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))
    return scale * value, scale * slope


PIECEWISE = {
    "relu": lambda x: _ramp(x, 0.0),
    "leaky_relu": lambda x: _ramp(x, 0.01),
    "prelu": lambda x: _ramp(x, PRELU_A),
    "relu6": lambda x: (np.clip(x, 0.0, 6.0), ((x > 0) & (x < 6)).astype(float)),
    "elu": _elu,
    "celu": _elu,  # alpha = 1
    "selu": lambda x: _elu(x, SELU_ALPHA, SELU_SCALE),
    "hardswish": lambda x: (np.where(x <= -3, 0.0, np.where(x >= 3, x, x * (x + 3) / 6)),
                            np.where(x < -3, 0.0, np.where(x > 3, 1.0, (2 * x + 3) / 6))),
    "hardsigmoid": lambda x: (np.clip((x + 3) / 6, 0.0, 1.0), ((x > -3) & (x < 3)) / 6.0),
    "hard_mish": lambda x: (np.where(x <= -2, 0.0, np.where(x >= 0, x, x * (x + 2) / 2)),
                            np.where(x < -2, 0.0, np.where(x > 0, 1.0, x + 1))),
    "relu2": lambda x: (np.maximum(x, 0.0) ** 2, 2.0 * np.maximum(x, 0.0)),
    "star_relu": lambda x: (STAR_RELU["scale"] * np.maximum(x, 0.0) ** 2 + STAR_RELU["bias"],
                            2.0 * STAR_RELU["scale"] * np.maximum(x, 0.0)),
}

KINKS = {"relu": (0.0,), "leaky_relu": (0.0,), "prelu": (0.0,), "relu6": (0.0, 6.0),
         "elu": (0.0,), "celu": (0.0,), "selu": (0.0,), "hardswish": (-3.0, 3.0),
         "hardsigmoid": (-3.0, 3.0), "hard_mish": (-2.0, 0.0)}

NAMES = set(SMOOTH) | set(PIECEWISE)


def reference(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(f(x), f'(x)) in float64."""
    if name in PIECEWISE:
        value, slope = PIECEWISE[name](x)
        return np.asarray(value, dtype=float), np.asarray(slope, dtype=float)
    f = SMOOTH[name]
    with np.errstate(over="ignore", invalid="ignore"):
        value = f(x.astype(float))
        slope = f(x + 1j * STEP).imag / STEP
    return value, slope

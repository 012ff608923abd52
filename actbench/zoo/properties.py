"""Properties of an activation computed numerically from its implementation, never typed by hand.

Everything runs in float64 on a grid over [-20, 20] (step 1e-3) plus tail probes at |x| = 1e2 ... 1e6,
so a wrong implementation shows up as wrong properties. Definitions:

- bounded below / above: the tail values stop growing (|f(±1e6)| does not exceed |f(±1e3)| + 1);
- minimum / maximum: the extreme value and where it is reached, refined with scipy's bounded scalar
  minimiser; a value reached on a half-line is reported as ``x <= a``, one only approached in a
  tail (flat from |x| > 10 on, such as tanh or sigmoid) as ``x -> -inf``;
- monotonic: non-negative (or non-positive) differences everywhere, "increasing" when strictly so
  on [-10, 10];
- smooth: continuously differentiable (C1): neighbouring slopes on the grid differ by less than
  0.02 (a second derivative under 20), so kinks such as ReLU's or hard-swish's are caught;
- slope at 0: the autograd derivative, or the two one-sided slopes where they differ.

Channel-wise activations are evaluated with one channel and their initial parameters (seed 0);
meta-ACON's beta depends on the whole input, so its ACON-C form is shown with beta = 1. A gated
activation, y = a * g(b) for the halves (a, b) of its input, is a function of two variables: it is
shown as a function of the gate b with the value a = 1, that is as g(b), through the module itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ActbenchError, describe_error
from .registry import lookup
from .spec import ActivationSpec, TrainableParam

GRID_LIMIT = 20.0
GRID_STEP = 1e-3
TAILS = (1e2, 1e3, 1e4, 1e5, 1e6)
SMOOTH_SLOPE_JUMP = 0.02
ASYMPTOTE_FROM = 10.0
STRICT_RANGE = 10.0


@dataclass(frozen=True)
class Extremum:
    """An extreme value and where: x = a, x <= a, x >= a, or x -> -inf / +inf (not attained)."""

    value: float
    relation: str  # "=", "<=", ">=", "->"
    x: float  # -inf / +inf when only approached

    @property
    def attained(self) -> bool:
        return self.relation != "->"

    def where(self, digits: int = 4) -> str:
        x = "0" if self.x == 0 else ("-inf" if self.x == -np.inf else "+inf" if self.x == np.inf
                                     else f"{self.x:.{digits}f}")
        return f"x {self.relation} {x}"


@dataclass(frozen=True)
class Properties:
    name: str
    impl: str
    formula: str
    bounded_below: bool
    bounded_above: bool
    minimum: Extremum | None
    maximum: Extremum | None
    monotonic: str  # "increasing", "non-decreasing", "decreasing", "non-increasing", "non-monotonic"
    smooth: bool
    value_at_0: float
    slope_at_0: float | None
    one_sided_slopes_at_0: tuple[float, float]
    trainable: tuple[TrainableParam, ...]
    parameter_count: int
    note: str


def scalar_function(spec: ActivationSpec, impl: str | None = None
                    ) -> tuple[Callable[[torch.Tensor], torch.Tensor], int, str]:
    """f(x) for a 1-D float64 tensor, its parameter count and a note on how it was evaluated."""
    module = spec.build(impl=impl, channels=1 if spec.channelwise else None, seed=0)
    module = module.double().eval()
    count = sum(p.numel() for p in module.parameters())
    shown = ", ".join(f"{n} = {p.detach().view(-1)[0].item():.4g}" for n, p in module.named_parameters()
                      if p.numel() == 1 or n in ("p1", "p2", "beta"))
    note = f"parameters at initialisation (seed 0): {shown}" if shown else ""
    if spec.gated:
        note = "gated, y = a * g(b): shown as g(x), the gate b = x with the value a = 1"
        return (lambda x: module(torch.cat([torch.ones_like(x), x], dim=-1))), count, note
    if not spec.pointwise:
        note = ("beta depends on the input through the switching network; shown with beta = 1 and "
                f"initial p1 = {module.p1.item():.4g}, p2 = {module.p2.item():.4g} (seed 0)")
        one = torch.ones((), dtype=torch.float64)
        return (lambda x: module.fn(x.view(-1, 1), module.p1, module.p2, one).view(-1)), count, note
    if spec.channelwise:
        return (lambda x: module(x.view(-1, 1)).view(-1)), count, note
    return module, count, note


@dataclass(frozen=True)
class Curve:
    """An activation's values and first derivatives on a grid, ready to plot."""

    name: str
    x: np.ndarray
    y: np.ndarray
    dy: np.ndarray
    label: str = ""  # the legend's text, where it says more than the name

    @property
    def legend(self) -> str:
        return self.label or self.name


def curves_for(names: list[str], xmin: float = -5.0, xmax: float = 5.0, impl: str | None = None,
               points: int = 2001) -> list[Curve]:
    """Curves of several activations over [xmin, xmax], all names checked before any is computed."""
    if not (np.isfinite(xmin) and np.isfinite(xmax) and xmin < xmax):
        raise ActbenchError(f"the x range must satisfy xmin < xmax with finite ends, got "
                            f"xmin={xmin}, xmax={xmax}")
    resolved = [lookup(name) for name in names]
    xs = np.linspace(xmin, xmax, points)
    curves = []
    for spec in resolved:
        with _user_code(spec, impl):
            f, _, _ = scalar_function(spec, impl)
            y, dy = _values_and_slopes(f, xs)
        label = f"{spec.name} (gate, value a = 1)" if spec.gated else ""
        curves.append(Curve(spec.name, xs, y, dy, label))
    return curves


@contextmanager
def _user_code(spec: ActivationSpec, impl: str | None) -> Iterator[None]:
    """An import path's or a registered activation's module is the user's code: whatever it
    raises while it is built and evaluated is the user's mistake, reported in one line (the zoo's
    own implementations are left alone, so a bug there keeps its traceback)."""
    if (impl or spec.default_impl) != "custom":
        yield
        return
    with warnings.catch_warnings(record=True) as caught:  # shown only if it works: the error
        try:                                                  # says all when it does not
            yield
        except ActbenchError:
            raise
        except Exception as error:
            raise ActbenchError(f"activation '{spec.name}' failed on a float64 tensor: "
                                f"{describe_error(error)}") from None
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _values_and_slopes(f, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    y = f(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    return y.detach().numpy(), dy.numpy()


def compute_properties(spec: ActivationSpec, impl: str | None = None) -> Properties:
    with _user_code(spec, impl):
        return _properties(spec, impl)


def _properties(spec: ActivationSpec, impl: str | None) -> Properties:
    f, count, note = scalar_function(spec, impl)
    grid = np.linspace(-GRID_LIMIT, GRID_LIMIT, int(round(2 * GRID_LIMIT / GRID_STEP)) + 1)
    grid_values, grid_slopes = _values_and_slopes(f, grid)
    tails = np.array(TAILS)
    xs = np.concatenate([-tails[::-1], grid, tails])
    with torch.no_grad():
        values = f(torch.tensor(xs, dtype=torch.float64)).numpy()
    if not np.all(np.isfinite(grid_values)):
        raise ActbenchError(f"{spec.name} gives non-finite values on [-20, 20]; its properties are "
                            "computed there, so it must be finite on that range")

    far_lo, mid_lo = values[0], values[len(TAILS) - 2]   # f(-1e6), f(-1e3)
    far_hi, mid_hi = values[-1], values[-len(TAILS) + 1]  # f(1e6), f(1e3)
    bounded_below = not (min(far_lo, far_hi) < min(mid_lo, mid_hi) - 1.0)
    bounded_above = not (max(far_lo, far_hi) > max(mid_lo, mid_hi) + 1.0)

    minimum = _extremum(f, xs, values, grid) if bounded_below else None
    maximum = _extremum(lambda t: -f(t), xs, -values, grid, negate=True) if bounded_above else None

    zero = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    y0 = f(zero)
    (slope0,) = torch.autograd.grad(y0.sum(), zero)
    h = 1e-7
    with torch.no_grad():
        left, right = f(torch.tensor([-h, h], dtype=torch.float64)).numpy()
    one_sided = ((y0.item() - left) / h, (right - y0.item()) / h)
    slope_at_0 = slope0.item() if abs(one_sided[0] - one_sided[1]) < 1e-4 else None

    return Properties(
        name=spec.name, impl=impl or spec.default_impl, formula=spec.formula,
        bounded_below=bounded_below, bounded_above=bounded_above, minimum=minimum, maximum=maximum,
        monotonic=_monotonicity(xs, values, grid, grid_values),
        smooth=bool(np.all(np.isfinite(grid_slopes))
                    and np.max(np.abs(np.diff(grid_slopes))) < SMOOTH_SLOPE_JUMP),
        value_at_0=y0.item(), slope_at_0=slope_at_0, one_sided_slopes_at_0=one_sided,
        trainable=spec.trainable, parameter_count=count, note=note,
    )


def _extremum(f, xs: np.ndarray, values: np.ndarray, grid: np.ndarray, negate: bool = False) -> Extremum:
    """Where the minimum of `values` lies (for maxima pass -f and -values with negate=True)."""
    sign = -1.0 if negate else 1.0
    best = float(values.min())
    near = values <= best + 1e-12 * max(1.0, abs(best))
    for side, order in (("-inf", range(len(xs))), ("+inf", range(len(xs) - 1, -1, -1))):
        order = list(order)
        if not near[order[0]]:
            continue
        run_end = order[0]
        for i in order:
            if not near[i]:
                break
            run_end = i
        edge = xs[run_end]
        if abs(edge) > ASYMPTOTE_FROM:
            return Extremum(sign * best, "->", float(side))
        return Extremum(sign * best, "<=" if side == "-inf" else ">=", float(edge))
    i = int(np.argmin(values[len(TAILS):len(TAILS) + len(grid)]))
    lo, hi = grid[max(i - 2, 0)], grid[min(i + 2, len(grid) - 1)]
    from scipy.optimize import minimize_scalar

    def scalar(t: float) -> float:
        with torch.no_grad():
            return float(f(torch.tensor([t], dtype=torch.float64))[0])

    result = minimize_scalar(scalar, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    x_best, value = (float(result.x), float(result.fun)) if result.fun <= best else (grid[i], best)
    return Extremum(sign * value, "=", float(x_best))


def _monotonicity(xs, values, grid, grid_values) -> str:
    diffs = np.diff(values)
    scale = 1e-12 * np.maximum(1.0, np.abs(values[1:]))
    inner = np.abs(grid[1:]) <= STRICT_RANGE
    grid_diffs = np.diff(grid_values)[inner]
    if np.all(diffs >= -scale):
        return "increasing" if np.all(grid_diffs > 0) else "non-decreasing"
    if np.all(diffs <= scale):
        return "decreasing" if np.all(grid_diffs < 0) else "non-increasing"
    return "non-monotonic"

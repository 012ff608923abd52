"""Properties computed by `actbench show`, against hand-derived values and scipy."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from actbench.zoo.properties import compute_properties, curves_for
from actbench.zoo.registry import lookup


def props(name, impl=None):
    return compute_properties(lookup(name), impl)


@pytest.mark.parametrize("impl", ["native", "formula", "memeff"])
def test_mish_minimum_matches_an_independent_minimisation(impl):
    def mish(x):
        return x * math.tanh(math.log1p(math.exp(x)))

    ref = minimize_scalar(mish, bounds=(-3, 0), method="bounded", options={"xatol": 1e-12})
    p = props("mish", impl)
    assert p.minimum.value == pytest.approx(ref.fun, abs=1e-12)
    assert p.minimum.x == pytest.approx(ref.x, abs=1e-6)
    assert round(p.minimum.value, 4) == -0.3088 and round(p.minimum.x, 4) == -1.1924
    assert (p.bounded_below, p.bounded_above, p.monotonic, p.smooth) == (True, False, "non-monotonic", True)
    assert p.slope_at_0 == pytest.approx(0.6, abs=1e-12)  # tanh(ln 2) = 3/5


def test_silu_minimum_is_the_known_closed_form():
    # x* solves 1 + x (1 - s(x)) = 0, i.e. x* = -1 - W(e^-1) = -1.278464542761074
    p = props("silu")
    assert p.minimum.x == pytest.approx(-1.278464542761074, abs=1e-6)
    assert p.minimum.value == pytest.approx(-0.2784645427610738, abs=1e-12)


def test_relu_flat_minimum_kink_and_one_sided_slopes():
    p = props("relu")
    assert p.minimum.relation == "<=" and p.minimum.x == 0 and p.minimum.value == 0
    assert not p.bounded_above and not p.smooth
    assert p.slope_at_0 is None
    assert p.one_sided_slopes_at_0 == pytest.approx((0.0, 1.0), abs=1e-6)
    assert p.monotonic == "non-decreasing"


@pytest.mark.parametrize("name, low, high", [("tanh", -1.0, 1.0), ("sigmoid", 0.0, 1.0)])
def test_saturating_functions_have_asymptotic_bounds(name, low, high):
    p = props(name)
    assert p.minimum.value == pytest.approx(low) and not p.minimum.attained
    assert p.maximum.value == pytest.approx(high) and not p.maximum.attained
    assert p.monotonic == "increasing" and p.smooth


def test_relu6_and_hardsigmoid_reach_their_bounds_on_half_lines():
    p = props("relu6")
    assert (p.minimum.relation, p.minimum.x, p.maximum.relation, p.maximum.x) == ("<=", 0, ">=", 6)
    h = props("hardsigmoid")
    assert (h.minimum.x, h.maximum.x) == pytest.approx((-3, 3), abs=1e-9)
    assert h.value_at_0 == 0.5


@pytest.mark.parametrize("name, smooth", [("elu", True), ("celu", True), ("selu", False),
                                          ("hardswish", False), ("hard_mish", False),
                                          ("leaky_relu", False), ("gelu", True), ("tanhexp", True)])
def test_smoothness_is_continuity_of_the_derivative(name, smooth):
    assert props(name).smooth is smooth


def test_hardswish_minimum_by_hand():
    p = props("hardswish")  # x (x + 3) / 6 on [-3, 3]: minimum at -1.5, value -0.375
    assert p.minimum.x == pytest.approx(-1.5, abs=1e-6) and p.minimum.value == pytest.approx(-0.375)


def test_unbounded_and_monotonic_cases():
    for name in ("identity", "leaky_relu"):
        p = props(name)
        assert not p.bounded_below and not p.bounded_above and p.monotonic == "increasing"
    assert props("elu").minimum.value == pytest.approx(-1.0) and props("softplus").monotonic == "increasing"


def test_trainable_parameters_are_counted():
    assert props("swish").parameter_count == 1
    assert props("acon_c").parameter_count == 3  # p1, p2, beta for one channel
    assert props("mish").parameter_count == 0


def test_curves_give_values_and_derivatives():
    (curve,) = curves_for(["silu"], -3, 3, points=7)
    s = 1 / (1 + np.exp(-curve.x))
    np.testing.assert_allclose(curve.y, curve.x * s, rtol=1e-12)
    np.testing.assert_allclose(curve.dy, s * (1 + curve.x * (1 - s)), rtol=1e-12)

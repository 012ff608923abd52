"""Relative accuracy where results are small: near 0 and in the left tails, with mpmath as arbiter.

The grid tests bound absolute error there; these bound error relative to the true value, in
float32, for the routes whose textbook forms cancel (1 + erf, 1 + tanh, 2 sigmoid - 1, expm1's
autograd slope) and for inductor's CPU code, whose expm1 is exp(x) - 1 and whose erf has an
absolute error near 1e-7.
"""

import mpmath
import pytest
import torch

import actbench

mpmath.mp.dps = 50

SELU_ALPHA = mpmath.mpf("1.6732632423543772848170429916717")
SELU_SCALE = mpmath.mpf("1.0507009873554804934193349852946")


def _gelu(x):
    return x * mpmath.ncdf(x)


def _gelu_tanh(x):
    u = mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x ** 3)
    return x / (1 + mpmath.exp(-2 * u))


def _elu(x):
    return x if x > 0 else mpmath.expm1(x)


def _selu(x):
    return SELU_SCALE * (x if x > 0 else SELU_ALPHA * mpmath.expm1(x))


def _serf(x):
    return x * mpmath.erf(mpmath.log1p(mpmath.exp(x)))


TRUTH = {"gelu": _gelu, "gelu_tanh": _gelu_tanh, "elu": _elu, "celu": _elu, "selu": _selu,
         "tanh": mpmath.tanh, "serf": _serf}


def truth(name, xs):
    """Values and slopes in float64 from mpmath at 50 digits."""
    f = TRUTH[name]
    values = [float(f(mpmath.mpf(float(x)))) for x in xs]
    slopes = [float(mpmath.diff(f, mpmath.mpf(float(x)))) for x in xs]
    return torch.tensor(values, dtype=torch.float64), torch.tensor(slopes, dtype=torch.float64)


def run(name, impl, xs):
    """float32 values and slopes; 64 copies of each point, so compiled code takes its vector loop."""
    module = actbench.activation(name, impl=impl)
    x = torch.tensor(xs, dtype=torch.float32).repeat_interleave(64).requires_grad_(True)
    y = module(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    return y.detach().view(len(xs), 64).double(), dy.view(len(xs), 64).double()


def assert_relatively_close(got, expected, rtol):
    error = ((got - expected[:, None]).abs() / expected.abs()[:, None]).amax(dim=1)
    assert torch.all(error <= rtol), f"relative errors {error.tolist()} (at most {rtol})"


LEFT_TAIL = [-10.0, -7.5, -5.0, -3.5, -2.5]
NEAR_ZERO = [-1e-8, -1e-20, 1e-20, 1e-8]


@pytest.mark.parametrize("impl", ["formula", "memeff", "compiled"])
@pytest.mark.parametrize("name", ["gelu", "gelu_tanh"])
def test_gelu_left_tails_keep_their_relative_precision(name, impl):
    """1 + erf(z) and 1 + tanh(u) cancel below x = -2.2; the routes use erfc and sigmoid(2u)."""
    y, dy = run(name, impl, LEFT_TAIL)
    expected_y, expected_dy = truth(name, LEFT_TAIL)
    assert_relatively_close(y, expected_y, 1e-5)
    assert_relatively_close(dy, expected_dy, 1e-5)


@pytest.mark.parametrize("impl", ["formula", "compiled"])
@pytest.mark.parametrize("name", ["elu", "celu", "selu"])
def test_exponential_units_are_exact_near_zero_and_keep_their_slope_in_the_tail(name, impl):
    """expm1's value near 0 (inductor's exp(x) - 1 gave 0 at -1e-8) and exp's slope below -5.9
    (autograd's expm1 slope, result + 1, lost precision there and was 0 below -16.6)."""
    points = NEAR_ZERO[:2] + [-5.9, -10.0, -16.6, -17.0, -30.0]
    y, dy = run(name, impl, points)
    expected_y, expected_dy = truth(name, points)
    assert_relatively_close(y, expected_y, 1e-6)
    assert_relatively_close(dy, expected_dy, 1e-6)


@pytest.mark.parametrize("impl", ["formula", "compiled"])
def test_tanh_is_its_argument_near_zero(impl):
    """2 sigmoid(2x) - 1 gave 0 at x = 1e-8, where tanh(x) = x."""
    points = NEAR_ZERO + [-0.3, 0.3, -9.0, 9.0]
    y, dy = run("tanh", impl, points)
    expected_y, expected_dy = truth("tanh", points)
    assert_relatively_close(y, expected_y, 1e-6)
    assert_relatively_close(dy, expected_dy, 1e-5)


@pytest.mark.parametrize("impl", ["formula", "memeff", "compiled", "fast"])
def test_serf_left_tail_keeps_its_relative_precision(impl):
    """erf of a small softplus: inductor's erf was 100 % off below x = -3.3."""
    points = [-15.5, -10.0, -5.0, -3.3, -1.0]
    y, dy = run("serf", impl, points)
    expected_y, expected_dy = truth("serf", points)
    assert_relatively_close(y, expected_y, 1e-5)
    assert_relatively_close(dy, expected_dy, 1e-5)

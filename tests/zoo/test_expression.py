"""The safe expression parser: accepted expressions compute the right values, the rest is refused."""

import numpy as np
import pytest
import torch

import actbench
from actbench.errors import ExpressionError
from actbench.zoo.expression import MAX_LENGTH, looks_like_expression, parse_expression
from actbench.zoo.registry import expression_functions

X = np.linspace(-8, 8, 161)


def evaluate(text, xs=X, functions=None):
    x = torch.tensor(xs, dtype=torch.float64)
    return parse_expression(text, functions).__call__(x).numpy()


@pytest.mark.parametrize("text, reference", [
    ("x * tanh(softplus(x))", lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    ("x * sigmoid(1.5 * x)", lambda x: x / (1 + np.exp(-1.5 * x))),
    ("max(x, 0.1*x)", lambda x: np.where(x > 0, x, 0.1 * x)),
    ("min(x, 0)", lambda x: np.minimum(x, 0)),
    ("clamp(x, -1, 1)", lambda x: np.clip(x, -1, 1)),
    ("-x + 2*pi - e", lambda x: -x + 2 * np.pi - np.e),
    ("0.5*x*(1 + tanh(0.79788456*(x + 0.044715*x**3)))",
     lambda x: 0.5 * x * (1 + np.tanh(0.79788456 * (x + 0.044715 * x ** 3)))),
    ("x * erf(softplus(x))", lambda x: x * np.vectorize(__import__("math").erf)(np.log1p(np.exp(x)))),
    ("x ** 2 - x ** 3 / 3", lambda x: x ** 2 - x ** 3 / 3),
    ("x", lambda x: x),
])
def test_accepted_expressions_match_numpy(text, reference):
    np.testing.assert_allclose(evaluate(text), reference(X), rtol=1e-12, atol=1e-12)


def test_negative_and_fractional_powers():
    xs = np.linspace(0.5, 4, 8)
    np.testing.assert_allclose(evaluate("x ** -1", xs), 1 / xs, rtol=1e-12)
    np.testing.assert_allclose(evaluate("x ** (1/2)", xs), np.sqrt(xs), rtol=1e-12)


def test_zoo_members_are_callable_inside_expressions():
    ref = X * np.tanh(np.log1p(np.exp(X))) + 0.1 * X
    np.testing.assert_allclose(evaluate("mish(x) + 0.1*x", functions=expression_functions()), ref,
                               rtol=1e-9, atol=1e-12)
    with pytest.raises(ExpressionError, match="unknown function 'mish'"):
        parse_expression("mish(x)")  # zoo members only when the caller supplies them


def test_expression_as_an_activation_has_gradients():
    module = actbench.activation("x * tanh(softplus(x))")
    x = torch.linspace(-4, 4, 17, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,))
    assert actbench.implementations("x * tanh(softplus(x))") == ["formula", "compiled"]


@pytest.mark.parametrize("text, message", [
    ("__import__('os')", "name '__import__' is not allowed"),
    ("x.exp()", "attribute access 'x.exp' is not allowed"),
    ("torch.exp(x)", "attribute access 'torch.exp' is not allowed"),
    ("(lambda y: y)(x)", "calling 'lambda y: y' is not allowed"),
    ("[x for x in y]", "comprehensions is not allowed"),
    ("x ** 10**9", "exponent 1e\\+09 is larger than 16"),
    ("x ** x", "exponent 'x' must be a constant"),
    ("tahn(x)", "unknown function 'tahn' in expression; did you mean tanh"),
    ("y + x", "unknown name 'y'"),
    ("tanh(x, x)", "tanh takes 1 argument, got 2"),
    ("clamp(x, x, 1)", "argument 2 of clamp must be a constant"),
    ("clamp(x, 1, -1)", "clamp bounds are reversed"),
    ("x[0]", "subscripts is not allowed"),
    ("x if x else 0", "conditional expressions is not allowed"),
    ("x < 0", "comparisons is not allowed"),
    ("'a'", "str literal 'a' is not allowed"),
    ("True * x", "bool literal True is not allowed"),
    ("x + 1j", "complex literal 1j is not allowed"),
    ("x // 2", "operator '//' is not allowed"),
    ("x @ x", "operator '@' is not allowed"),
    ("tanh(x=x)", "keyword arguments are not allowed"),
    ("x and x", "boolean operators is not allowed"),
    ("(y := x)", "assignment is not allowed"),
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("2 * 3", "does not use the variable x"),
    ("x +", "cannot parse expression"),
    ("1" * 400 + " * x", "too large"),
])
def test_refused_expressions_say_what_is_wrong(text, message):
    with pytest.raises(ExpressionError, match=message):
        parse_expression(text)


def test_length_limit():
    text = "x" + " + x" * 200
    assert len(text) > MAX_LENGTH
    with pytest.raises(ExpressionError, match=f"characters long; the limit is {MAX_LENGTH}"):
        parse_expression(text)


def test_deep_nesting_and_node_limits():
    with pytest.raises(ExpressionError, match="nested deeper than|cannot parse"):
        parse_expression("tanh(" * 40 + "x" + ")" * 40)
    with pytest.raises(ExpressionError, match="cannot parse"):
        parse_expression("(" * 240 + "x" + ")" * 240)
    with pytest.raises(ExpressionError, match="syntax nodes"):
        parse_expression("+".join(["x*1"] * 120))


@pytest.mark.parametrize("text", ["x ** 10**9**9", "9**9**9**9 * x", "x * 2**100000"])
def test_huge_constant_powers_are_refused_without_computing_them(text):
    # the exponent is checked before the power is taken: computing 9**9**9 would not return
    with pytest.raises(ExpressionError, match="exponent"):
        parse_expression(text)


@pytest.mark.parametrize("text, expected", [("x*2", True), ("x", True), ("tanh(x)", True),
                                            ("mish", False), ("leaky_relu", False),
                                            ("mypkg.mod:factory", False)])
def test_looks_like_expression(text, expected):
    assert looks_like_expression(text) is expected

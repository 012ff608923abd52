"""Activation expressions such as ``x * tanh(softplus(x))``: parsed, checked, never eval'd.

The text is parsed with :func:`ast.parse` and every node is checked against a whitelist: numbers,
the variable ``x``, the constants ``pi`` and ``e``, ``+ - * /``, unary ``+ -``, ``**`` with a small
constant exponent, and calls of named functions with positional arguments. Anything else (attribute
access, subscripts, lambdas, comprehensions, comparisons, strings, keywords...) is refused with a
message naming it. Accepted trees become nested closures over torch operations.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

from ..errors import ExpressionError, close_matches

Tensor = torch.Tensor

MAX_LENGTH = 500
MAX_EXPONENT = 16
MAX_NODES = 200
MAX_DEPTH = 32
VARIABLE = "x"
CONSTANTS: Mapping[str, float] = {"pi": math.pi, "e": math.e}
OPERATOR_CHARS = set("()+-*/") | {" ", "\t"}


def _as_tensor(value, like: Tensor) -> Tensor:
    return value if isinstance(value, Tensor) else torch.full_like(like, float(value))


def _minimum(a, b):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        return min(a, b)
    like = a if isinstance(a, Tensor) else b
    return torch.minimum(_as_tensor(a, like), _as_tensor(b, like))


def _maximum(a, b):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        return max(a, b)
    like = a if isinstance(a, Tensor) else b
    return torch.maximum(_as_tensor(a, like), _as_tensor(b, like))


def _clamp(a, low, high):
    return torch.clamp(a, low, high) if isinstance(a, Tensor) else min(max(a, low), high)


def _unary(op: Callable[[Tensor], Tensor]) -> Callable:
    """A tensor function that also accepts a Python number (a constant sub-expression)."""

    def apply(value):
        return op(value) if isinstance(value, Tensor) else op(torch.tensor(float(value))).item()

    return apply


# name -> (function, number of arguments, indices of arguments that must be constants)
BUILTINS: Mapping[str, tuple[Callable, int, tuple[int, ...]]] = {
    "exp": (_unary(torch.exp), 1, ()),
    "log": (_unary(torch.log), 1, ()),
    "log1p": (_unary(torch.log1p), 1, ()),
    "expm1": (_unary(torch.expm1), 1, ()),
    "sqrt": (_unary(torch.sqrt), 1, ()),
    "abs": (_unary(torch.abs), 1, ()),
    "tanh": (_unary(torch.tanh), 1, ()),
    "sigmoid": (_unary(torch.sigmoid), 1, ()),
    "softplus": (_unary(F.softplus), 1, ()),
    "erf": (_unary(torch.erf), 1, ()),
    "erfc": (_unary(torch.erfc), 1, ()),
    "sin": (_unary(torch.sin), 1, ()),
    "cos": (_unary(torch.cos), 1, ()),
    "atan": (_unary(torch.atan), 1, ()),
    "sign": (_unary(torch.sign), 1, ()),
    "relu": (_unary(torch.relu), 1, ()),
    "min": (_minimum, 2, ()),
    "max": (_maximum, 2, ()),
    "clamp": (_clamp, 3, (1, 2)),
}

_BINARY = {ast.Add: ("+", lambda a, b: a + b), ast.Sub: ("-", lambda a, b: a - b),
           ast.Mult: ("*", lambda a, b: a * b), ast.Div: ("/", lambda a, b: a / b),
           ast.Pow: ("**", lambda a, b: a ** b)}
_UNARY = {ast.USub: lambda a: -a, ast.UAdd: lambda a: +a}
_REFUSED = {
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambda",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions", ast.Compare: "comparisons", ast.BoolOp: "boolean operators",
    ast.IfExp: "conditional expressions", ast.JoinedStr: "strings", ast.NamedExpr: "assignment",
    ast.Starred: "starred arguments", ast.List: "lists", ast.Tuple: "tuples", ast.Dict: "dicts",
    ast.Set: "sets", ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}
_OPERATOR_SYMBOLS = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitAnd: "&",
                     ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}
_ALLOWED_SYNTAX = ("numbers, x, pi, e, + - * /, ** with a constant exponent, and calls of known "
                   "functions")


class Expression:
    """A checked expression in x, callable on tensors."""

    def __init__(self, source: str, evaluate: Callable[[Tensor], Tensor | float], names: frozenset[str]):
        self.source = source
        self._evaluate = evaluate
        self.names = names

    def __call__(self, x: Tensor) -> Tensor:
        return _as_tensor(self._evaluate(x), x)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def looks_like_expression(text: str) -> bool:
    """True for text meant as an expression rather than a plain name or 'pkg.mod:attr' path."""
    return text.strip() == VARIABLE or any(char in OPERATOR_CHARS for char in text)


def parse_expression(text: str, functions: Mapping[str, Callable[[Tensor], Tensor]] | None = None
                     ) -> Expression:
    """Check `text` and turn it into an Expression; ExpressionError says what is not allowed."""
    source = text.strip() if isinstance(text, str) else ""
    if not source:
        raise ExpressionError("empty expression; expected an expression in x such as 'x * tanh(x)'")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(source)} characters long; the limit is {MAX_LENGTH}")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        detail = getattr(error, "msg", None) or type(error).__name__
        raise ExpressionError(f"cannot parse expression '{source}': {detail}") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ExpressionError(f"expression has {nodes} syntax nodes; the limit is {MAX_NODES}")
    compiler = _Compiler(dict(functions or {}))
    evaluate = compiler.compile(tree.body, depth=0)
    if not compiler.uses_x:
        raise ExpressionError(f"expression '{source}' does not use the variable x")
    return Expression(source, evaluate, frozenset(compiler.names))


class _Compiler:
    """Walks the checked tree once, returning closures; constants are folded as it goes."""

    def __init__(self, functions: dict[str, Callable]):
        self.functions = functions
        self.uses_x = False
        self.names: set[str] = set()

    def compile(self, node: ast.AST, depth: int) -> Callable:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested deeper than {MAX_DEPTH} levels")
        constant = self._constant(node, depth)
        if constant is not None:
            return lambda x, c=constant: c
        if isinstance(node, ast.Name):
            if node.id == VARIABLE:
                self.uses_x = True
                return lambda x: x
            raise self._unknown(node.id, "name")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            if isinstance(node.op, ast.Pow):
                self._check_exponent(node.right, depth)
            _, op = _BINARY[type(node.op)]
            left, right = self.compile(node.left, depth + 1), self.compile(node.right, depth + 1)
            return lambda x: op(left(x), right(x))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            op, operand = _UNARY[type(node.op)], self.compile(node.operand, depth + 1)
            return lambda x: op(operand(x))
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        raise self._refused(node)

    def _constant(self, node: ast.AST, depth: int) -> float | None:
        """The value of a sub-expression made of numbers and constants only, else None."""
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise ExpressionError(f"{type(node.value).__name__} literal {node.value!r} is not "
                                      f"allowed in an expression; allowed: {_ALLOWED_SYNTAX}")
            try:
                return self._finite(float(node.value))
            except OverflowError:
                raise ExpressionError("a number in the expression is too large") from None
        if isinstance(node, ast.Name) and node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            value = self._constant(node.operand, depth + 1)
            return None if value is None else _UNARY[type(node.op)](value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left = self._constant(node.left, depth + 1)
            right = self._constant(node.right, depth + 1)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Pow):
                self._check_exponent_value(right)
            try:
                return self._finite(_BINARY[type(node.op)][1](left, right))
            except (ZeroDivisionError, OverflowError):
                raise ExpressionError("a constant part of the expression divides by zero or "
                                      "overflows") from None
        return None

    def _finite(self, value: float | complex) -> float:
        if isinstance(value, complex) or not math.isfinite(value) or abs(value) > 1e308:
            raise ExpressionError("a constant in the expression is not a finite real number")
        return float(value)

    def _check_exponent(self, node: ast.AST, depth: int) -> None:
        value = self._constant(node, depth + 1)
        if value is None:
            raise ExpressionError(f"exponent '{ast.unparse(node)}' must be a constant number "
                                  f"(at most {MAX_EXPONENT} in magnitude)")
        self._check_exponent_value(value)

    @staticmethod
    def _check_exponent_value(value: float) -> None:
        if abs(value) > MAX_EXPONENT:
            raise ExpressionError(f"exponent {value:g} is larger than {MAX_EXPONENT} in magnitude")

    def _call(self, node: ast.Call, depth: int) -> Callable:
        if isinstance(node.func, ast.Attribute):
            raise ExpressionError(f"attribute access '{ast.unparse(node.func)}' is not allowed in "
                                  f"an expression; allowed: {_ALLOWED_SYNTAX}")
        if not isinstance(node.func, ast.Name):
            raise ExpressionError(f"calling '{ast.unparse(node.func)}' is not allowed; only named "
                                  "functions such as tanh(x) can be called")
        name = node.func.id
        if node.keywords:
            raise ExpressionError(f"keyword arguments are not allowed (in {name}(...)); pass "
                                  "arguments by position")
        if name in BUILTINS:
            function, arity, constant_args = BUILTINS[name]
        elif name in self.functions:
            function, arity, constant_args = _unary(self.functions[name]), 1, ()
        else:
            raise self._unknown(name, "function")
        if len(node.args) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise ExpressionError(f"{name} takes {arity} {plural}, got {len(node.args)}")
        bounds = [self._constant(node.args[index], depth + 1) for index in constant_args]
        for index, value in zip(constant_args, bounds):
            if value is None:
                raise ExpressionError(f"argument {index + 1} of {name} must be a constant number")
        if name == "clamp" and bounds[0] > bounds[1]:
            raise ExpressionError(f"clamp bounds are reversed: lower {bounds[0]:g} > upper {bounds[1]:g}")
        self.names.add(name)
        args = [self.compile(arg, depth + 1) for arg in node.args]
        return lambda x: function(*(arg(x) for arg in args))

    def _unknown(self, name: str, kind: str) -> ExpressionError:
        if name.startswith("__"):
            return ExpressionError(f"name '{name}' is not allowed in an expression; allowed: "
                                   f"{_ALLOWED_SYNTAX}")
        known = sorted({VARIABLE, *CONSTANTS, *BUILTINS, *self.functions})
        close = close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else (
            f"; allowed: x, pi, e and the functions {', '.join(sorted(BUILTINS))} and zoo members")
        return ExpressionError(f"unknown {kind} '{name}' in expression{hint}")

    def _refused(self, node: ast.AST) -> ExpressionError:
        if isinstance(node, ast.BinOp):
            what = f"operator '{_OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)}'"
        elif isinstance(node, ast.UnaryOp):
            what = "operator 'not'" if isinstance(node.op, ast.Not) else "operator '~'"
        else:
            what = _REFUSED.get(type(node), type(node).__name__)
        return ExpressionError(f"{what} is not allowed in an expression; allowed: {_ALLOWED_SYNTAX}")

"""`--fail-if` regression gates: small comparisons parsed with `ast` against a whitelist, never eval'd.

Grammar: `LEFT OP RIGHT` (chains such as `1 <= a < 2` too), OP one of < <= > >= == !=; each side
is arithmetic (+ - * /, parentheses, unary minus) on numbers (`5%` is 0.05) and references:
- micro: `ACT[.IMPL].PASS[.METRIC]`, e.g. `mish.fwd`, `mish.fast.fwdbwd`, `silu.fwd.gbps`
  (METRIC defaults to the compared metric, median_s unless --metric says otherwise);
- train: `ACT.COLUMN`, e.g. `mish.mean`, `mish.p_holm`, `mish.final_test_acc` (the metric's mean);
- aggregates over the micro comparison's non-baseline rows: `max_ratio`, `min_ratio`,
  `geomean_ratio`, `max_slowdown` (the worst relative slowdown, 0.05 = 5 %).
A gate with references is checked in every group (device, dtype, shape, pass / sweep point) where
all its references exist; it fails if any group violates it.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ActbenchError
from .micro import (USABLE_STATUSES, MicroComparison, canonical_activation, numeric_metrics,
                    prefer_native)

PASSES = ("fwd", "bwd", "fwdbwd")
AGGREGATES = ("max_ratio", "min_ratio", "geomean_ratio", "max_slowdown")
TRAIN_STATS = ("mean", "std", "n", "diff", "p_value", "p_holm", "cohens_d", "rank", "ci_low",
               "ci_high")
MAX_LENGTH = 300
EXAMPLE = "e.g. 'mish.fwd <= 1.5 * relu.fwd' or 'max_slowdown <= 5%'"

_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.Div: operator.truediv}
_PERCENT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*%")


class GateError(ActbenchError):
    pass


@dataclass(frozen=True)
class Gate:
    text: str
    tree: ast.Compare
    names: tuple[str, ...]  # every reference or aggregate, dotted


@dataclass
class GateResult:
    gate: Gate
    checked: int  # groups evaluated
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def parse_gate(text: str) -> Gate:
    """Check the expression's shape and every node type before anything is evaluated."""
    def fail(reason: str) -> GateError:
        return GateError(f"--fail-if '{text}': {reason}; expected {EXAMPLE}")

    if len(text) > MAX_LENGTH:
        raise fail(f"longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(_PERCENT.sub(r"(\1/100)", text.strip()), mode="eval").body
    except SyntaxError:
        raise fail("not a comparison") from None
    if not isinstance(tree, ast.Compare):
        raise fail("not a comparison (no <, <=, >, >=, == or !=)")
    names: list[str] = []

    def check(node: ast.AST) -> None:
        if isinstance(node, (ast.Attribute, ast.Name)):
            dotted = _dotted(node)
            if dotted is None:
                raise fail("a reference must be dotted names such as mish.fwd")
            names.append(dotted)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise fail(f"'{node.value}' is not a number")
        elif isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            check(node.left)
            check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            check(node.operand)
        else:
            raise fail(f"'{ast.unparse(node)}' is not allowed (only numbers, references, + - * / "
                       "and parentheses)")

    if not all(type(op) in _COMPARE for op in tree.ops):
        raise fail("only <, <=, >, >=, == and != compare")
    for operand in [tree.left, *tree.comparators]:
        check(operand)
    return Gate(text, tree, tuple(dict.fromkeys(names)))


def _evaluate(node: ast.AST, values: dict[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, (ast.Name, ast.Attribute)):
        return values[_dotted(node)]
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, values)
        return -value if isinstance(node.op, ast.USub) else value
    left, right = _evaluate(node.left, values), _evaluate(node.right, values)
    if isinstance(node.op, ast.Div) and right == 0:
        return math.inf if left > 0 else (-math.inf if left < 0 else math.nan)
    return _ARITHMETIC[type(node.op)](left, right)


def holds(gate: Gate, values: dict[str, float]) -> bool:
    left = _evaluate(gate.tree.left, values)
    for op, comparator in zip(gate.tree.ops, gate.tree.comparators):
        right = _evaluate(comparator, values)
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


# -- resolving references ------------------------------------------------------------------------

def _aggregates(micro: MicroComparison | None) -> tuple[dict[str, float], list[str]]:
    """The aggregates, and the configurations the baseline has but that have no value here
    (error, oom, missing): they make max_ratio and max_slowdown infinite, so a gate fails."""
    if micro is None:
        return {}, []
    table = micro.table
    lost_rows = table[table["has_baseline"] & ~table["status"].isin(USABLE_STATUSES)]
    lost = [" ".join(str(row[k]) for k in (*micro.label_keys, "activation", "pass", "shape")
                     if k in row) + f": {row['status']}" for _, row in lost_rows.iterrows()]
    ratios = table.loc[~table["is_baseline"], "ratio"].dropna().to_numpy(dtype=float)
    ratios = ratios[ratios > 0]
    if not len(ratios) and not lost:
        return {}, []
    values = {}
    if len(ratios):
        slowdowns = (1 / ratios if micro.higher_is_better else ratios) - 1
        values = {"max_ratio": float(ratios.max()), "min_ratio": float(ratios.min()),
                  "geomean_ratio": float(np.exp(np.log(ratios).mean())),
                  "max_slowdown": float(slowdowns.max())}
    if lost:
        values.update(max_ratio=math.inf, max_slowdown=math.inf)
    return values, lost


def _micro_reference(gate: Gate, name: str, frame: pd.DataFrame, metric: str):
    """(activation, impl or None, pass, column) for ACT[.IMPL].PASS[.METRIC]."""
    parts = name.split(".")
    where = [i for i, part in enumerate(parts) if part in PASSES]
    if not where or where[0] == 0 or where[0] > 2 or len(parts) - where[0] > 2:
        return None
    i = where[0]
    activation, impl = parts[0], (parts[1] if i == 2 else None)
    column = parts[i + 1] if len(parts) > i + 1 else metric
    if column not in numeric_metrics(frame):
        raise GateError(f"--fail-if '{gate.text}': '{column}' is not a numeric micro column; "
                        f"expected one of {', '.join(numeric_metrics(frame))}")
    return activation, impl, parts[i], column


def _check_micro(gate: Gate, refs: dict, frame: pd.DataFrame, fixed: dict) -> GateResult:
    """Per (device, dtype, size, file): a reference measured there without a usable value (an
    error, an out-of-memory) fails the gate; one not measured there skips the group."""
    present = set(frame["activation"].astype(str))
    group_keys = [k for k in ("device", "dtype", "numel", "file") if k in frame]
    result = GateResult(gate, 0)
    for key, group in frame.groupby(group_keys, sort=False):
        where = " ".join(str(k) for k in key)
        values = dict(fixed)
        for name, (activation, impl, pass_, column) in refs.items():
            rows = group[(group["activation"] == canonical_activation(activation, present))
                         & (group["pass"] == pass_)]
            if impl is not None:
                rows = rows[rows["impl"] == impl]
            rows = prefer_native(rows)
            if rows.empty:
                break
            row = rows.iloc[0]
            if row["status"] not in USABLE_STATUSES or not math.isfinite(float(row[column])):
                result.checked += 1
                result.failures.append(f"{where}: {name} has no value ({row['status']})")
                break
            values[name] = float(row[column])
        else:
            result.checked += 1
            if not holds(gate, values):
                shown = ", ".join(f"{n} = {values[n]:.4g}" for n in refs)
                result.failures.append(f"{where}: {shown}")
    return result


def _check_train(gate: Gate, names: list[str], train, fixed: dict) -> GateResult:
    table = train.table
    present = set(table["activation"].astype(str))
    result = GateResult(gate, 0)
    groups = table.groupby(train.group_keys, sort=False) if train.group_keys else [((), table)]
    for key, group in groups:
        values = dict(fixed)
        for name in names:
            activation, column = name.split(".", 1)
            column = "mean" if column == train.metric else column
            rows = group[group["activation"] == canonical_activation(activation, present)]
            if rows.empty or not math.isfinite(float(rows.iloc[0][column])):
                break
            values[name] = float(rows.iloc[0][column])
        else:
            result.checked += 1
            if not holds(gate, values):
                where = " ".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
                shown = ", ".join(f"{n} = {values[n]:.4g}" for n in names)
                result.failures.append(f"{where + ': ' if where else ''}{shown}")
    return result


def check_gate(gate: Gate, micro_frame: pd.DataFrame | None, micro: MicroComparison | None,
               train=None) -> GateResult:
    """Evaluate one gate on the compared data; references that resolve nowhere are errors."""
    fixed = {}
    aggregates, lost = _aggregates(micro)
    micro_refs, train_refs = {}, []
    for name in gate.names:
        if name in AGGREGATES:
            if name not in aggregates:
                raise GateError(f"--fail-if '{gate.text}': '{name}' needs micro rows with ratios "
                                "to a baseline")
            fixed[name] = aggregates[name]
            continue
        reference = None
        if micro_frame is not None and not micro_frame.empty:
            reference = _micro_reference(gate, name, micro_frame, micro.metric if micro else "median_s")
        if reference is not None:
            micro_refs[name] = reference
            continue
        parts = name.split(".")
        if train is not None and len(parts) == 2 and parts[1] in (*TRAIN_STATS, train.metric):
            train_refs.append(name)
            continue
        raise GateError(f"--fail-if '{gate.text}': cannot resolve '{name}'; expected ACT.PASS "
                        "(mish.fwd), ACT.IMPL.PASS[.METRIC], ACT.STAT for train reports "
                        f"(mish.mean, mish.p_holm) or one of {', '.join(AGGREGATES)}")
    if micro_refs and train_refs:
        raise GateError(f"--fail-if '{gate.text}': mixes micro and train references")
    if micro_refs:
        result = _check_micro(gate, micro_refs, micro_frame, fixed)
    elif train_refs:
        result = _check_train(gate, train_refs, train, fixed)
    else:
        result = GateResult(gate, 1, [] if holds(gate, fixed) else
                            [", ".join(f"{n} = {v:.4g}" for n, v in fixed.items())]
                            + [f"no value: {line}" for line in lost
                               if any(n in ("max_ratio", "max_slowdown") for n in fixed)])
    if result.checked == 0:
        raise GateError(f"--fail-if '{gate.text}': no configuration has all of "
                        f"{', '.join(gate.names)}")
    return result

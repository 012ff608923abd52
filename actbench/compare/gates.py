"""`--fail-if` regression gates: small comparisons parsed with `ast` against a whitelist, never eval'd.

Grammar: `LEFT OP RIGHT` (chains such as `1 <= a < 2` too), OP one of < <= > >= == !=; each side
is arithmetic (+ - * /, parentheses, unary minus) on numbers (`5%` is 0.05) and references:
- micro: `ACT[.IMPL].PASS[.METRIC]`, e.g. `mish.fwd`, `mish.fast.fwdbwd`, `silu.fwd.gbps`
  (METRIC defaults to the compared metric, median_s unless --metric says otherwise);
- train: `ACT.COLUMN`, e.g. `mish.mean`, `mish.p_holm`, `mish.final_test_acc` (the metric's mean);
- aggregates over the micro comparison's non-baseline rows: `max_ratio`, `min_ratio`,
  `geomean_ratio`, `max_slowdown` (the worst relative slowdown, 0.05 = 5 %).
A reference wrapped in `ci_low(...)` or `ci_high(...)` is that end of its 95 % interval instead of
the point estimate (median_s references, train means and diffs, the aggregates):
`ci_low(max_slowdown) <= 5%` fails only when some configuration is more than 5 % slower even at
the low end of its interval; `ci_high(max_slowdown) <= 5%` fails unless every interval lies
within 5 %.
A gate with references is checked in every group (device, dtype, shape, pass / sweep point) where
all its references exist; an aggregate gate is checked on every configuration. A failure names
each configuration that violates the gate, worst first, with its values and intervals.
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
WORST_CASE = ("max_ratio", "max_slowdown")  # a configuration without a value makes these infinite
TRAIN_STATS = ("mean", "std", "n", "diff", "p_value", "p_holm", "cohens_d", "rank", "ci_low",
               "ci_high")
BOUNDS = ("ci_low", "ci_high")
MAX_LENGTH = 300
SHOWN_FAILURES = 10  # a failed gate lists this many failing configurations, then "and N more"
EXAMPLE = "e.g. 'mish.fwd <= 1.5 * relu.fwd' or 'max_slowdown <= 5%'"

_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.Div: operator.truediv}
_PERCENT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*%")
_NO_INTERVAL = (f"ci_low() and ci_high() take median_s references (mish.fwd), train means and "
                f"diffs (mish.mean, mish.diff) and {', '.join(AGGREGATES)}")


class GateError(ActbenchError):
    pass


@dataclass(frozen=True)
class Gate:
    text: str
    tree: ast.Compare
    names: tuple[str, ...]  # every reference or aggregate, dotted (inside ci_low / ci_high too)
    bounded: tuple[str, ...] = ()  # those taken through ci_low() or ci_high()


@dataclass
class GateResult:
    gate: Gate
    checked: int  # configurations or groups evaluated
    failures: list[str] = field(default_factory=list)  # each failing one, worst first
    overall: bool = False  # the failure is the aggregate's over everything, no one configuration's

    @property
    def passed(self) -> bool:
        return not self.failures

    def lines(self, limit: int = SHOWN_FAILURES) -> list[str]:
        """The verdict, then up to `limit` failing configurations (indented), then how many more."""
        if self.passed:
            return [f"gate passed: {self.gate.text} ({self.checked} checked)"]
        counted = f"{self.checked}" if self.overall else f"{len(self.failures)} of {self.checked}"
        shown = [f"  {line}" for line in self.failures[:limit]]
        more = len(self.failures) - limit
        return [f"gate FAILED: {self.gate.text} ({counted} checked)", *shown,
                *([f"  and {more} more"] if more > 0 else [])]


@dataclass(frozen=True)
class Quantity:
    """A value with its 95 % interval (NaN ends: none known)."""

    value: float
    low: float = math.nan
    high: float = math.nan

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def bound(self, which: str) -> float:
        """`ci_low` or `ci_high`: that end; the value itself where there is no interval."""
        edge = self.low if which == "ci_low" else self.high
        return self.value if math.isnan(edge) else edge

    def text(self, suffix: str = "", digits: str = ".4g") -> str:
        shown = f"{self.value:{digits}}{suffix}"
        if self.has_interval:
            shown += f" [{self.low:{digits}}, {self.high:{digits}}]"
        return shown


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
    if not all(type(op) in _COMPARE for op in tree.ops):
        raise fail("only <, <=, >, >=, == and != compare")
    names: list[str] = []
    bounded: list[str] = []
    for operand in [tree.left, *tree.comparators]:
        _check_node(operand, names, bounded, fail)
    return Gate(text, tree, tuple(dict.fromkeys(names)), tuple(dict.fromkeys(bounded)))


def _check_node(node: ast.AST, names: list[str], bounded: list[str], fail) -> None:
    """One operand's node, recursively: numbers, dotted references, ci_low(ref) / ci_high(ref),
    + - * / and unary signs; anything else is refused."""
    if isinstance(node, (ast.Attribute, ast.Name)):
        dotted = _dotted(node)
        if dotted is None:
            raise fail("a reference must be dotted names such as mish.fwd")
        names.append(dotted)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise fail(f"'{node.value}' is not a number")
    elif isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        _check_node(node.left, names, bounded, fail)
        _check_node(node.right, names, bounded, fail)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        _check_node(node.operand, names, bounded, fail)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in BOUNDS:
        if node.keywords or len(node.args) != 1 or not isinstance(node.args[0], (ast.Name,
                                                                                  ast.Attribute)):
            raise fail(f"{node.func.id}() takes one reference, e.g. {node.func.id}(max_slowdown)")
        _check_node(node.args[0], names, bounded, fail)
        bounded.append(_dotted(node.args[0]))
    else:
        raise fail(f"'{ast.unparse(node)}' is not allowed (only numbers, references, ci_low(...), "
                   "ci_high(...), + - * / and parentheses)")


def _evaluate(node: ast.AST, values: dict[str, Quantity]) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, (ast.Name, ast.Attribute)):
        return values[_dotted(node)].value
    if isinstance(node, ast.Call):
        return values[_dotted(node.args[0])].bound(node.func.id)
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, values)
        return -value if isinstance(node.op, ast.USub) else value
    left, right = _evaluate(node.left, values), _evaluate(node.right, values)
    if isinstance(node.op, ast.Div) and right == 0:
        return math.inf if left > 0 else (-math.inf if left < 0 else math.nan)
    return _ARITHMETIC[type(node.op)](left, right)


def _links(gate: Gate, values: dict[str, Quantity]):
    """Each link of the chain as (left, op, right), evaluated."""
    left = _evaluate(gate.tree.left, values)
    for op, comparator in zip(gate.tree.ops, gate.tree.comparators):
        right = _evaluate(comparator, values)
        yield left, op, right
        left = right


def holds(gate: Gate, values: dict[str, Quantity | float]) -> bool:
    values = {k: v if isinstance(v, Quantity) else Quantity(float(v)) for k, v in values.items()}
    return all(_COMPARE[type(op)](left, right) for left, op, right in _links(gate, values))


def _margin(gate: Gate, values: dict[str, Quantity]) -> float:
    """How far the gate is from holding (to list the worst first): over the links that fail, the
    largest log ratio of the two sides where both are positive, else their difference."""
    worst = -math.inf
    for left, op, right in _links(gate, values):
        if _COMPARE[type(op)](left, right):
            continue
        if not (math.isfinite(left) and math.isfinite(right)):
            return math.inf
        gap = math.log(left / right) if left > 0 and right > 0 else left - right
        worst = max(worst, -gap if isinstance(op, (ast.Gt, ast.GtE)) else
                    abs(gap) if isinstance(op, (ast.Eq, ast.NotEq)) else gap)
    return worst


# -- naming what failed -------------------------------------------------------------------------

_STANDARD_KEYS = ("activation", "impl", "pass", "numel", "shape", "dtype", "device", "threads", "file")


def _size(numel, shape) -> str:
    """2^20 for powers of two from 2^10 on, else the count; a laid-out shape beside it."""
    try:
        count = int(numel)
    except (TypeError, ValueError):
        return str(shape)
    power = count >= 1024 and count & (count - 1) == 0
    size = f"2^{count.bit_length() - 1}" if power else str(count)
    return size if str(shape) in ("", "nan", str(count)) else f"{size} ({shape})"


def _several_files(frame: pd.DataFrame) -> bool:
    return "file" in frame and frame["file"].nunique() > 1


def _configuration(row: pd.Series, micro: MicroComparison) -> str:
    """mish/fast fwd 2^20 float32 cpu, plus the report file and any other compared column."""
    parts = [f"{row['activation']}/{row['impl']}", str(row["pass"]),
             _size(row["numel"], row["shape"]), str(row["dtype"]), str(row["device"])]
    threads = str(row.get("threads", "")).removesuffix(".0")
    if "threads" in micro.group_keys and threads.isdigit():
        parts.append(f"{threads} thread{'' if threads == '1' else 's'}")
    parts += [f"{key}={row[key]}" for key in (*micro.group_keys, *micro.label_keys)
              if key not in _STANDARD_KEYS]
    if "file" in row and (micro.by == "file" or _several_files(micro.table)):
        parts.append(f"in {row['file']}")
    return " ".join(parts)


def _flags(row: pd.Series) -> list[str]:
    """noisy, throttled, baseline noisy, ...: what says the row's numbers were taken under load."""
    flags = [str(row["status"])] if row.get("status") == "noisy" else []
    flags += [f for f in str(row.get("flags", "")).split(";") if f and f != "nan"]
    return list(dict.fromkeys(flags))


def _line(where: str, shown: str, flags: list[str]) -> str:
    return f"{where + ': ' if where else ''}{shown}{' (' + ', '.join(flags) + ')' if flags else ''}"


# -- aggregates: every configuration checked on its own -----------------------------------------

@dataclass(frozen=True)
class _Configuration:
    """One non-baseline row of the micro comparison: its ratio, or None with the status saying
    why it has no value (error, oom, missing)."""

    where: str
    ratio: Quantity | None
    status: str
    flags: list[str]


def _configurations(micro: MicroComparison | None) -> list[_Configuration]:
    if micro is None:
        return []
    table = micro.table
    found = []
    for _, row in table[~table["is_baseline"]].iterrows():
        lost = bool(row["has_baseline"]) and row["status"] not in USABLE_STATUSES
        ratio = float(row["ratio"])
        if lost:
            found.append(_Configuration(_configuration(row, micro), None, str(row["status"]), []))
        elif math.isfinite(ratio) and ratio > 0:
            low, high = float(row["ratio_low"]), float(row["ratio_high"])
            found.append(_Configuration(_configuration(row, micro), Quantity(ratio, low, high),
                                        str(row["status"]), _flags(row)))
    return found


def _slowdown(ratio: Quantity, higher_is_better: bool) -> Quantity:
    """The relative slowdown a ratio means (0.05 = 5 % slower), its interval's ends with it."""
    if not higher_is_better:
        return Quantity(ratio.value - 1, ratio.low - 1, ratio.high - 1)

    def inverse(x: float) -> float:
        return 1 / x - 1 if x > 0 else (math.inf if x == 0 else math.nan)

    return Quantity(inverse(ratio.value), inverse(ratio.high), inverse(ratio.low))


def _own_values(config: _Configuration, higher_is_better: bool) -> dict[str, Quantity]:
    """The extreme aggregates as this one configuration alone would make them."""
    if config.ratio is None:
        return {name: Quantity(math.inf, math.inf, math.inf) for name in WORST_CASE}
    return {"max_ratio": config.ratio, "min_ratio": config.ratio,
            "max_slowdown": _slowdown(config.ratio, higher_is_better)}


def _over(quantities: list[Quantity], reduce) -> Quantity:
    """An aggregate with its range: `reduce` over the values, over the low ends, over the high."""
    ends = ([q.value for q in quantities], [q.bound("ci_low") for q in quantities],
            [q.bound("ci_high") for q in quantities])
    return Quantity(*(float(reduce(np.array(end))) for end in ends))


def _geomean(values: np.ndarray) -> float:
    return float(np.exp(np.log(values).mean()))


def _aggregates(configs: list[_Configuration], higher_is_better: bool) -> dict[str, Quantity]:
    """Each aggregate with its range over the intervals (a row without an interval counts at its
    value); a configuration without a value makes max_ratio and max_slowdown infinite."""
    ratios = [c.ratio for c in configs if c.ratio is not None]
    values: dict[str, Quantity] = {}
    if ratios:
        values = {"max_ratio": _over(ratios, np.max), "min_ratio": _over(ratios, np.min),
                  "geomean_ratio": _over(ratios, _geomean),
                  "max_slowdown": _over([_slowdown(q, higher_is_better) for q in ratios], np.max)}
    if len(ratios) < len(configs):
        values.update({name: Quantity(math.inf, math.inf, math.inf) for name in WORST_CASE})
    return values


def _shown_ratio(config: _Configuration) -> str:
    if config.ratio is None:
        return f"no value ({config.status})"
    return config.ratio.text("x", ".2f" if config.ratio.value >= 0.1 else ".3g")


def _check_aggregates(gate: Gate, configs: list[_Configuration], aggregates: dict[str, Quantity],
                      higher_is_better: bool) -> GateResult:
    """The gate on the aggregates decides; when it fails, each configuration whose own ratio
    breaks it is named, worst first. A gate no single one breaks (a geometric mean, a spread
    max_ratio / min_ratio) shows the aggregates instead."""
    result = GateResult(gate, len(configs))
    if holds(gate, aggregates):
        return result
    worst_case = any(name in WORST_CASE for name in gate.names)
    failing = []
    for config in configs if "geomean_ratio" not in gate.names else []:
        if config.ratio is None and not worst_case:
            continue
        values = {**aggregates, **_own_values(config, higher_is_better)}
        if not holds(gate, values):
            flags = [*config.flags, *([] if config.ratio is None or config.ratio.has_interval
                                      else ["no interval"])]
            line = _line(config.where, _shown_ratio(config), flags)
            failing.append((_margin(gate, values), line))
    if not failing:
        result.overall = True
        result.failures = [", ".join(f"{n} = {aggregates[n].text()}" for n in gate.names)]
        return result
    result.failures = [line for _, line in sorted(failing, key=lambda item: -item[0])]
    return result


# -- references ----------------------------------------------------------------------------------

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
    if name in gate.bounded and column != "median_s":
        raise GateError(f"--fail-if '{gate.text}': {name} has no interval; {_NO_INTERVAL}")
    return activation, impl, parts[i], column


def _micro_quantity(row: pd.Series, column: str) -> Quantity:
    if column == "median_s":
        return Quantity(float(row[column]), float(row["ci_low_s"]), float(row["ci_high_s"]))
    return Quantity(float(row[column]))


def _group_label(key, keys: list[str], frame: pd.DataFrame) -> str:
    """2^20 float32 cpu (in FILE where several reports are compared)."""
    named = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
    parts = [_size(named.get("numel"), named.get("numel")), str(named.get("dtype", "")),
             str(named.get("device", ""))]
    if _several_files(frame):
        parts.append(f"in {named.get('file')}")
    return " ".join(p for p in parts if p)


def _check_micro(gate: Gate, refs: dict, frame: pd.DataFrame, fixed: dict) -> GateResult:
    """Per (device, dtype, size, file): a reference measured there without a usable value (an
    error, an out-of-memory) fails the gate; one not measured there skips the group."""
    present = set(frame["activation"].astype(str))
    group_keys = [k for k in ("device", "dtype", "numel", "file") if k in frame]
    result = GateResult(gate, 0)
    failing = []
    for key, group in frame.groupby(group_keys, sort=False):
        where = _group_label(key, group_keys, frame)
        values, flags = dict(fixed), []
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
                failing.append((math.inf, f"{where}: {name} has no value ({row['status']})"))
                break
            values[name] = _micro_quantity(row, column)
            flags += [f"{name} {flag}" for flag in _flags(row)]
        else:
            result.checked += 1
            if not holds(gate, values):
                shown = ", ".join(f"{n} = {values[n].text()}" for n in gate.names)
                failing.append((_margin(gate, values), _line(where, shown, flags)))
    result.failures = [line for _, line in sorted(failing, key=lambda item: -item[0])]
    return result


_TRAIN_INTERVALS = {"mean": ("ci_low", "ci_high"), "diff": ("diff_ci_low", "diff_ci_high")}


def _train_quantity(row: pd.Series, column: str) -> Quantity:
    low, high = _TRAIN_INTERVALS.get(column, (None, None))
    if low is None:
        return Quantity(float(row[column]))
    return Quantity(float(row[column]), float(row[low]), float(row[high]))


def _check_train(gate: Gate, names: list[str], train, fixed: dict) -> GateResult:
    """Per group (sweep point, setup that differs, --by keys); the group's keys name it."""
    table = train.table
    present = set(table["activation"].astype(str))
    result = GateResult(gate, 0)
    failing = []
    groups = table.groupby(train.group_keys, sort=False) if train.group_keys else [((), table)]
    for key, group in groups:
        values = dict(fixed)
        for name in names:
            activation, column = name.split(".", 1)
            column = "mean" if column == train.metric else column
            if name in gate.bounded and column not in _TRAIN_INTERVALS:
                raise GateError(f"--fail-if '{gate.text}': {name} has no interval; {_NO_INTERVAL}")
            rows = group[group["activation"] == canonical_activation(activation, present)]
            if rows.empty or not math.isfinite(float(rows.iloc[0][column])):
                break
            values[name] = _train_quantity(rows.iloc[0], column)
        else:
            result.checked += 1
            if not holds(gate, values):
                named = zip(train.group_keys, key if isinstance(key, tuple) else (key,))
                where = " ".join(f"{k}={v}" for k, v in named)
                shown = ", ".join(f"{n} = {values[n].text()}" for n in gate.names)
                failing.append((_margin(gate, values), _line(where, shown, [])))
    result.failures = [line for _, line in sorted(failing, key=lambda item: -item[0])]
    return result


def _resolve(gate: Gate, micro_frame: pd.DataFrame | None, micro: MicroComparison | None,
             train) -> tuple[list[str], dict, list[str]]:
    """(aggregates, micro references by name, train references) named by the gate; a name that
    resolves nowhere is an error."""
    aggregates, micro_refs, train_refs = [], {}, []
    for name in gate.names:
        if name in AGGREGATES:
            aggregates.append(name)
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
    return aggregates, micro_refs, train_refs


def check_gate(gate: Gate, micro_frame: pd.DataFrame | None, micro: MicroComparison | None,
               train=None) -> GateResult:
    """Evaluate one gate on the compared data; references that resolve nowhere are errors."""
    aggregate_names, micro_refs, train_refs = _resolve(gate, micro_frame, micro, train)
    configs = _configurations(micro)
    higher_is_better = bool(micro and micro.higher_is_better)
    aggregates = _aggregates(configs, higher_is_better)
    for name in aggregate_names:
        if name not in aggregates:
            raise GateError(f"--fail-if '{gate.text}': '{name}' needs micro rows with ratios "
                            "to a baseline")
        if name in gate.bounded and not any(c.ratio is not None and c.ratio.has_interval
                                            for c in configs):
            raise GateError(f"--fail-if '{gate.text}': no ratio has an interval for "
                            f"ci_low() / ci_high() (intervals need --metric median_s and at least "
                            "6 samples a side)")
    fixed = {name: aggregates[name] for name in aggregate_names}
    if micro_refs:
        result = _check_micro(gate, micro_refs, micro_frame, fixed)
    elif train_refs:
        result = _check_train(gate, train_refs, train, fixed)
    else:
        result = _check_aggregates(gate, configs, aggregates, higher_is_better)
    if result.checked == 0:
        raise GateError(f"--fail-if '{gate.text}': no configuration has all of "
                        f"{', '.join(gate.names)}")
    return result

"""Rich and Markdown tables for the zoo (`actbench list`) and one activation's properties (`show`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from ..catalogue import COLUMNS as ZOO_COLUMNS

if TYPE_CHECKING:  # torch-free at import: `actbench list` never imports torch
    from ..zoo.properties import Extremum, Properties
    from ..zoo.registry import ActivationSpec


def zoo_table(rows: list[tuple[str, ...]]) -> Table:
    """`actbench list`: one row per activation (catalogue rows)."""
    table = Table(title="actbench activations (* = default implementation)", title_justify="left",
                  expand=True)
    ratios = {"formula": 4, "trainable": 2, "implementations": 3, "source": 3}
    for column in ZOO_COLUMNS:
        table.add_column(column, no_wrap=column not in ratios, ratio=ratios.get(column),
                         min_width=15 if column == "implementations" else None)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))  # formulas such as "[a, b] -> ..." are text
    return table


def zoo_markdown(rows: list[tuple[str, ...]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(ZOO_COLUMNS) + " |", "|" + "---|" * len(ZOO_COLUMNS)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


GATED_SHAPES = ("(..., 2h) -> (..., h): value a = x[..., :h], gate b = x[..., h:], as "
                "torch.nn.functional.glu (option gate_first=1 swaps them)")


def _bound(bounded: bool, extremum: Extremum | None, word: str) -> str:
    if not bounded or extremum is None:
        return "no"
    kind = word if extremum.attained else ("infimum" if word == "minimum" else "supremum")
    return f"yes, {kind} {extremum.value:.4f} at {extremum.where()}"


def _number(value: float) -> str:
    return f"{value:.6g}" if value != 0 else "0"


def properties_rows(spec: ActivationSpec, props: Properties) -> tuple[str, tuple[tuple[str, str], ...]]:
    """`actbench show`'s title and (property, value) rows, as text: what the catalogue stores."""
    heading = props.name if props.formula == props.name else f"{props.name}: {props.formula}"
    about = "; ".join(dict.fromkeys(t for t in (spec.source, spec.family) if t and t != props.name))
    if props.slope_at_0 is not None:
        slope = _number(props.slope_at_0)
    else:
        left, right = props.one_sided_slopes_at_0
        slope = f"undefined (left {_number(left)}, right {_number(right)})"
    monotonic = "no" if props.monotonic == "non-monotonic" else f"yes ({props.monotonic})"
    trainable = ", ".join(f"{p.name} ({p.shape}, init {p.init})" for p in props.trainable) or "none"
    impls = ", ".join(f"{i}*" if i == spec.default_impl else i for i in spec.implementations)
    rows = (
        ("bounded below", _bound(props.bounded_below, props.minimum, "minimum")),
        ("bounded above", _bound(props.bounded_above, props.maximum, "maximum")),
        ("monotonic", monotonic),
        ("smooth (C1)", "yes" if props.smooth else "no"),
        ("value at 0", _number(props.value_at_0)),
        ("slope at 0", slope),
        ("trainable", trainable),
        ("parameters", str(props.parameter_count) + (" (with channels=1)" if spec.channelwise else "")),
        *((("gated", GATED_SHAPES),) if spec.gated else ()),
        ("implementations", impls),
        ("analysed", props.impl + (f"; {props.note}" if props.note else "")),
    )
    return f"{heading}  ({about})" if about else heading, rows


def properties_table(title: str, rows: tuple[tuple[str, str], ...]) -> Table:
    """`actbench show`: the rows of `properties_rows` (computed now, or from the catalogue)."""
    table = Table(title=escape(title), title_justify="left")
    table.add_column("property", no_wrap=True)
    table.add_column("value", overflow="fold")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    return table

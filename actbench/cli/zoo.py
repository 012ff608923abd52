"""`actbench list`, `show` and `plot`: the zoo as tables, properties and figures."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app, console


@app.command("list")
def list_activations(
    family: str = typer.Option(None, help="Only this family (e.g. ACON, 'self-gated')."),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table instead."),
) -> None:
    """List every activation: family, formula, trainable parameters, implementations, source.

    The default implementation is marked with *. Example: `actbench list --family ACON`.
    """
    from ..catalogue import rows_in_family
    from ..report.zoo_tables import zoo_markdown, zoo_table

    selected = rows_in_family(family)
    if markdown:
        typer.echo(zoo_markdown(selected))
    else:
        console().print(zoo_table(selected))


@app.command()
def show(
    name: str = typer.Argument(..., help="Activation name, import path or expression."),
    impl: str = typer.Option(None, help="Implementation to analyse (default: the default one)."),
) -> None:
    """Formula and properties computed numerically from the implementation.

    Bounds, minimum and where, monotonicity, smoothness, value and slope at 0, parameters.
    Example: `actbench show mish`, `actbench show "x * sigmoid(1.5 * x)"`.
    """
    from ..catalogue import shown
    from ..report.zoo_tables import properties_rows, properties_table

    known = shown(name) if impl is None else None  # a registered activation: no torch to import
    if known is None:
        from ..zoo.properties import compute_properties
        from ..zoo.registry import lookup

        spec = lookup(name)
        known = properties_rows(spec, compute_properties(spec, impl))
    console().print(properties_table(*known))


@app.command()
def plot(
    names: list[str] = typer.Argument(..., help="Activations to draw (names, paths, expressions)."),
    output: Path = typer.Option(None, "--output", "-o", help="Image file (.png, .pdf or .svg); "
                                "default: the names joined by '-' with .png, in this folder."),
    xmin: float = typer.Option(-5.0, help="Left end of the x range."),
    xmax: float = typer.Option(5.0, help="Right end of the x range."),
    impl: str = typer.Option(None, help="Implementation to draw (default: each one's default)."),
) -> None:
    """Draw activations and their first derivatives side by side.

    Example: `actbench plot mish silu relu -o reports/acts.png` (the Mish paper's figure).
    """
    from ..report.plots import plot_activation_curves
    from ..zoo.properties import curves_for

    curves = curves_for(names, xmin, xmax, impl)
    written = plot_activation_curves(curves, output or default_plot_path(names))
    typer.echo(str(written))


def default_plot_path(names: list[str]) -> Path:
    """`mish-silu-relu.png`: the names (expressions made file-safe), at most 80 characters."""
    import re

    stem = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", name).strip("_.") or "activation"
                    for name in names)
    return Path(f"{stem[:80]}.png")

"""Figures. Colours are fixed per activation so every figure of a report agrees."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from ..errors import ActbenchError

IMAGE_SUFFIXES = (".png", ".pdf", ".svg")


# The activations most often compared get the ten most distinct colours; the rest share a second palette.
FEATURED = ("relu", "silu", "mish", "gelu", "leaky_relu", "acon_c", "meta_acon", "swish", "elu",
            "hardswish")


def activation_color(name: str) -> tuple[float, float, float]:
    """A stable colour per activation: fixed for the featured ones, by zoo position or name hash else."""
    import matplotlib

    from ..zoo.registry import names

    if name in FEATURED:
        return matplotlib.colormaps["tab10"].colors[FEATURED.index(name)]
    others = [n for n in names() if n not in FEATURED]
    index = others.index(name) if name in others else zlib.crc32(name.encode())
    palette = matplotlib.colormaps["Dark2"].colors + matplotlib.colormaps["Set1"].colors
    return palette[index % len(palette)]


def check_output_path(path: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Path:
    """Fail before any work if the file cannot be written. Missing parent folders are created
    for the check and removed again: `save_figure` creates them when it writes."""
    from ..records.paths import folders_for_a_check

    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ActbenchError(f"output '{path}' must end in one of {', '.join(suffixes)}")
    if path.is_dir():
        raise ActbenchError(f"output '{path}' is a folder; expected a file name")
    with folders_for_a_check(path.parent):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not os.access(path.parent, os.W_OK):
                raise ActbenchError(f"cannot write to folder '{path.parent}'")
        except OSError as error:
            raise ActbenchError(f"cannot create folder '{path.parent}': {error.strerror}") from None
    return path


def save_figure(fig, output: Path, dpi: float) -> Path:
    """Write a figure (creating missing folders) and close it; a refused write is one line."""
    import matplotlib.pyplot as plt

    try:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(output, dpi=dpi)
    except OSError as error:
        raise ActbenchError(f"cannot write '{output}': {error.strerror or error}") from None
    finally:
        plt.close(fig)
    return output


def plot_activation_curves(curves, output: Path) -> Path:
    """Activations (left) and their first derivatives (right), as in the Mish paper's figure."""
    output = check_output_path(output)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_f, ax_df) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    for curve in curves:
        color = activation_color(curve.name)
        ax_f.plot(curve.x, curve.y, label=curve.legend, color=color, linewidth=1.8)
        ax_df.plot(curve.x, curve.dy, label=curve.legend, color=color, linewidth=1.8)
    for ax, title, ylabel in ((ax_f, "Activation", "f(x)"), (ax_df, "First derivative", "f'(x)")):
        ax.set_title(title)
        ax.set_xlabel("x")
        ax.set_ylabel(ylabel)
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.axvline(0.0, color="0.6", linewidth=0.8)
        ax.grid(True, alpha=0.3)
        ax.legend(frameon=False)
    return save_figure(fig, output, dpi=150)

"""actbench: what an activation function costs and what it buys.

The library API is imported lazily so that ``actbench --help`` does not pay for importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["activation", "activations", "implementations", "register", "replace_activations",
           "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .zoo import activation, activations, implementations, register, replace_activations


def __getattr__(name: str):
    if name in __all__:
        return getattr(import_module(".zoo", __name__), name)
    raise AttributeError(f"module 'actbench' has no attribute '{name}'")

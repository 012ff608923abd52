"""Cached data arrays on disk (.npz): written atomically, since parallel runs may share a cache."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write `arrays` to `path` through a temporary file and a rename, so a reader never sees half
    a file; a cache folder that cannot be written just means no cache."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as out:
            np.savez(out, **arrays)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)

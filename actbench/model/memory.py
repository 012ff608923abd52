"""A whole step's peak memory on the CPU, as the process sees it.

PyTorch's CPU allocator keeps no statistics (micro leaves CPU peaks empty for that reason), but
a step of a whole model allocates tens to hundreds of MiB, which the process's resident size
shows. Linux resets the resident high-water mark (`VmHWM`) on writing 5 to
/proc/self/clear_refs: freed memory is first handed back (glibc's malloc_trim), then the mark is
reset, one step runs, and its peak above the resident size before is the step's. Elsewhere (or
where /proc cannot be written) the answer is None and the column stays empty.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_HIGH_WATER_MARK = "5"


def _status_bytes(key: str, status: Path = STATUS) -> int | None:
    for line in status.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024  # kB
    return None


def _hand_back_freed_memory() -> None:
    """glibc's malloc_trim(0): freed heap pages go back to the system, so the step that reuses
    them is seen touching them again; a no-op on other C libraries."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is not None:
        trim(0)


def process_peak_bytes(step: Callable[[], object]) -> int | None:
    """The resident peak over one call of `step` above the resident size before it; None where
    the high-water mark cannot be reset (not Linux, a read-only /proc)."""
    try:
        _hand_back_freed_memory()
        before = _status_bytes("VmRSS")
        CLEAR_REFS.write_text(RESET_HIGH_WATER_MARK)
        step()
        peak = _status_bytes("VmHWM")
    except OSError:
        return None
    if before is None or peak is None:
        return None
    return max(0, peak - before)

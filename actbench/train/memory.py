"""Peak memory of one training run, measured the most honest way each device allows.

- CUDA: `torch.cuda.max_memory_allocated` above what was allocated when the run started (the
  data set, which may live on the GPU, is not counted; neither are the caching allocator's
  reserve and the CUDA context).
- CPU on Linux: the process's peak resident set size (VmHWM), reset at the start of the run by
  writing 5 to /proc/self/clear_refs. It counts everything the process touches (interpreter,
  data set, model, activations), so compare runs of one suite with each other, not with the
  tensor-only CUDA number.
- Elsewhere: empty (no per-run peak can be read without one).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

# A run's peak_kind when it ran in a process that earlier runs also used (the inline executor):
# the resident set then includes what they left behind, and is not the run's alone.
SHARED_PEAK_KIND = "shared_process_peak_rss"


def _read_hwm() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """Context manager: `peak_bytes` and `kind` are set on exit."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.peak_bytes: int | None = None
        self.kind = ""
        self._cpu_ok = False
        self._baseline = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._baseline = torch.cuda.memory_allocated(self.device)
        elif sys.platform.startswith("linux"):
            self._cpu_ok = _reset_hwm() and _read_hwm() is not None
        return self

    def restart(self) -> None:
        """Measure the peak from here on (after a warm-up whose memory is not the run's)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self._cpu_ok:
            self._cpu_ok = _reset_hwm()

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_bytes = int(torch.cuda.max_memory_allocated(self.device)) - self._baseline
            self.kind = "cuda_max_allocated"
        elif self._cpu_ok:
            self.peak_bytes = _read_hwm()
            self.kind = "process_peak_rss"

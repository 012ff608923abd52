"""Memory an activation costs: bytes kept for backward.

`saved_bytes` counts what autograd keeps between forward and backward, with
`torch.autograd.graph.saved_tensors_hooks`, de-duplicated by storage: it works on every device
and is the number that decides how large a batch fits (naive Mish keeps 2x its input,
a memory-efficient one 1x).

Peak bytes during a pass are the device's to tell (`MicroDevice.peak_bytes`, micro/device.py):
CUDA's allocator counts (`max_memory_allocated`, in cuda.py); PyTorch's CPU allocator keeps no
statistics, RSS mixes in the C allocator's cache, and the profiler's memory events are
incomplete, so on other devices peak_bytes is left empty (docs/methodology.md).
"""

from __future__ import annotations

import torch
from torch import nn


def saved_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes of distinct storages autograd saves for backward in one forward call."""
    storages: dict[tuple[str, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[(str(tensor.device), storage.data_ptr())] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        module(x)
    return sum(storages.values())

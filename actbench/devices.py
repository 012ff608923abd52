"""Device names and synchronisation, shared by micro and train.

`resolve_device` is the one place that turns a user's device name into a concrete one and says
clearly why a device cannot be used (before any work starts); `device_kind` is the one place that
reads a concrete name's kind (cpu, mps, cuda), so nothing else parses device names.
"""

from __future__ import annotations

import re

from .errors import ActbenchError


def resolve_device(text: str) -> str:
    """'auto' -> cuda / mps / cpu; 'cuda' and 'cuda:N' are checked against what torch sees."""
    import torch

    name = text.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        if _mps_available():
            return "mps"
        return "cpu"
    if name == "cpu":
        return "cpu"
    if name == "mps":
        if not _mps_available():
            raise ActbenchError("MPS is not available on this machine (it needs Apple silicon and a "
                                "torch build with MPS)")
        return "mps"
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if not match:
        raise ActbenchError(f"unknown device '{text}'; expected auto, cpu, cuda, cuda:N or mps")
    if not torch.cuda.is_available():
        built = torch.version.cuda is not None
        why = ("no CUDA device or driver was found" if built
               else f"this torch build ({torch.__version__}) was built without CUDA")
        raise ActbenchError(f"CUDA is not available: {why}; use --device cpu")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ActbenchError(f"device cuda:{index} does not exist; this machine has "
                            f"{torch.cuda.device_count()} CUDA device(s)")
    return f"cuda:{index}"


def _mps_available() -> bool:
    import torch

    try:
        return bool(torch.backends.mps.is_available())
    except AttributeError:
        return False


def device_kind(device: object) -> str:
    """'cpu', 'mps' or 'cuda' for a concrete device name ('cuda:1') or a torch.device."""
    name = str(device)
    if name.startswith("cuda"):
        return "cuda"
    if name == "mps" or name.startswith("mps:"):
        return "mps"
    return "cpu"


def is_concrete(name: str) -> bool:
    """Whether a name is one `resolve_device` returns (cpu, mps, cuda:N), not one it resolves."""
    return name in ("cpu", "mps") or re.fullmatch(r"cuda:\d+", name) is not None


def synchronize(device: object) -> None:
    """Wait for the work queued on `device` (no-op on the CPU)."""
    import torch

    kind = device_kind(device)
    if kind == "cuda":
        torch.cuda.synchronize(str(device))
    elif kind == "mps":
        torch.mps.synchronize()

"""Why a configuration has no timing: the failure kinds, each carrying the report `status` it writes.

A configuration that fails (while building its input or module, on its first call, while sampling)
becomes a row with `status` and `message` and the run goes on. The status comes from the type:

- `OutOfMemory` -> ``oom``
- `Unsupported` -> ``unsupported`` (a dtype, device or layout the implementation does not handle)
- `MeasurementError` -> ``error`` (anything else)

actbench's own code raises these types; foreign exceptions (torch's, Python's) are translated
once, in `translate`, at the runner's boundary.
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import describe_error


class MeasurementFailure(Exception):
    """A configuration that could not be measured; `status` is what its report row says."""

    status: ClassVar[str] = "error"

    def __init__(self, message: str, cause: BaseException | None = None):
        super().__init__(message)
        self.cause = cause

    @property
    def message(self) -> str:
        """The row's `message`: the original exception's type and text where there was one."""
        return describe_error(self.cause if self.cause is not None else self)


class OutOfMemory(MeasurementFailure):
    status = "oom"


class Unsupported(MeasurementFailure):
    status = "unsupported"


class MeasurementError(MeasurementFailure):
    status = "error"


# torch reports some failures only as a RuntimeError (or TypeError) with a message: the CPU
# allocator ("DefaultCPUAllocator: can't allocate memory"), MPS ("MPS backend out of memory"),
# older CUDA builds ("CUDA out of memory") and kernels missing for a dtype on some backends
# ("... not implemented for 'Half'", "... not supported on MPS"). Those message patterns live
# here and nowhere else.
_OOM_TEXT = ("out of memory", "can't allocate")
_UNSUPPORTED_TEXT = ("not implemented", "not supported")


def _oom_types() -> tuple[type[BaseException], ...]:
    import torch

    types: list[type[BaseException]] = [MemoryError]
    for owner in (torch, torch.cuda):  # torch.OutOfMemoryError since 2.5, torch.cuda's before
        found = getattr(owner, "OutOfMemoryError", None)
        if isinstance(found, type):
            types.append(found)
    return tuple(types)


def translate(error: BaseException) -> MeasurementFailure:
    """The failure kind of any exception: actbench's own pass through; others by type, then
    (where torch gives only a generic error) by the message patterns above."""
    if isinstance(error, MeasurementFailure):
        return error
    text = str(error).lower()
    message = str(error)
    if isinstance(error, _oom_types()) or any(pattern in text for pattern in _OOM_TEXT):
        return OutOfMemory(message, error)
    if isinstance(error, NotImplementedError) or any(pattern in text for pattern in _UNSUPPORTED_TEXT):
        return Unsupported(message, error)
    return MeasurementError(message, error)

"""Failure kinds: each carries its report status; foreign exceptions are translated by type first."""

import pytest
import torch

from actbench.errors import describe_error
from actbench.micro.failures import (MeasurementError, MeasurementFailure, OutOfMemory,
                                     Unsupported, translate)


@pytest.mark.parametrize("error, kind, status", [
    (torch.OutOfMemoryError("Tried to allocate 2.00 GiB"), OutOfMemory, "oom"),
    (torch.cuda.OutOfMemoryError("Tried to allocate 2.00 GiB"), OutOfMemory, "oom"),
    (MemoryError(), OutOfMemory, "oom"),
    (NotImplementedError("no kernel for this dtype"), Unsupported, "unsupported"),
    (ValueError("bad value"), MeasurementError, "error"),
    (RuntimeError("expected a tensor"), MeasurementError, "error"),
])
def test_by_type(error, kind, status):
    failure = translate(error)
    assert type(failure) is kind and failure.status == status
    assert failure.cause is error


@pytest.mark.parametrize("message, status", [
    # torch gives only a RuntimeError (or TypeError) for these
    ("DefaultCPUAllocator: can't allocate memory: you tried to allocate 4 bytes", "oom"),
    ("CUDA out of memory. Tried to allocate 2.00 GiB", "oom"),
    ("MPS backend out of memory", "oom"),
    ('"mish_cpu" not implemented for \'Half\'', "unsupported"),
    ("Operation not supported on MPS", "unsupported"),
])
def test_by_message_where_torch_gives_no_type(message, status):
    assert translate(RuntimeError(message)).status == status
    assert translate(TypeError(message)).status == status


def test_a_real_cpu_allocation_failure_is_oom():
    with pytest.raises(Exception) as caught:
        torch.empty(2**62, dtype=torch.uint8)
    assert translate(caught.value).status == "oom"


def test_the_message_is_the_original_exception():
    error = NotImplementedError("no kernel for this dtype")
    assert translate(error).message == describe_error(error)
    assert translate(error).message.startswith("NotImplementedError: no kernel")


def test_own_failures_pass_through():
    failure = Unsupported("acon_c is channel-wise")
    assert translate(failure) is failure
    assert failure.message == "Unsupported: acon_c is channel-wise"
    assert issubclass(OutOfMemory, MeasurementFailure) and MeasurementFailure.status == "error"


def test_a_size_that_cannot_be_laid_out_is_unsupported():
    from actbench.micro.plan import make_plan
    from actbench.micro.workload import make_input, make_workload

    config = make_plan(["acon_c"], devices=["cpu"], sizes=["100"], passes=["fwd"]).configs[0]
    x = make_input(config.numel, config.dtype, config.device)
    with pytest.raises(Unsupported, match="cannot be laid out"):
        make_workload(config, x, x)


def test_describe_error_keeps_a_long_message_whole_and_marks_a_cut_one():
    advice = "could not download x.tar.gz: no route to host (tried " + "https://a.example/x, " * 20
    assert len(advice) > 300
    assert describe_error(ValueError(advice)) == "ValueError: " + " ".join(advice.split())
    dump = describe_error(ValueError("y" * 5000))
    assert len(dump) == 2000 and dump.endswith("…") and dump.startswith("ValueError: yyy")

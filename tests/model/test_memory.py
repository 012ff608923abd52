"""The CPU step peak: the process's resident high-water mark, reset before one step."""

from __future__ import annotations

import os

import pytest
import torch

from actbench.model import memory


def _can_reset() -> bool:
    return os.access(memory.CLEAR_REFS, os.W_OK) and memory.STATUS.exists()


@pytest.mark.skipif(not _can_reset(), reason="needs Linux's /proc/self/clear_refs")
@pytest.mark.parametrize("mib", [32, 128])
def test_a_step_that_touches_n_mib_peaks_at_n_mib(mib):
    def step():
        block = torch.ones(mib * 2**20 // 4)  # written: every page resident
        return float(block[-1])

    peaks = [memory.process_peak_bytes(step) for _ in range(3)]
    assert all(mib * 2**20 * 0.9 <= peak <= mib * 2**20 * 1.25 for peak in peaks), peaks


@pytest.mark.skipif(not _can_reset(), reason="needs Linux's /proc/self/clear_refs")
def test_a_step_that_allocates_nothing_peaks_near_zero():
    assert memory.process_peak_bytes(lambda: None) < 4 * 2**20


def test_the_status_file_is_read_in_bytes(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t   1024 kB\n")
    assert memory._status_bytes("VmHWM", status) == 2048 * 1024
    assert memory._status_bytes("VmRSS", status) == 1024 * 1024
    assert memory._status_bytes("VmSwap", status) is None


def test_no_resettable_mark_means_no_peak(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    called = []
    assert memory.process_peak_bytes(lambda: called.append(1)) is None

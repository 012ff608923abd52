"""Thread counts: `--threads 1,2,all` sweeps them in one report, keyed, titled and resumable;
the C heap keeps freed blocks (page faults at two threads once cost more than the activation);
and every `fast` kernel compiled for several threads has its parallel loop."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from typer.testing import CliRunner

from actbench.cli import app
from actbench.errors import ActbenchError
from actbench.micro import plan as plan_module
from actbench.micro.plan import make_plan, thread_counts
from actbench.micro.session import MicroOptions, execute, open_run
from actbench.records.writer import read_rows


def test_thread_counts_parse_lists_and_all(monkeypatch):
    monkeypatch.setattr(plan_module, "available_cpus", lambda: 6)
    assert thread_counts(["1,2,all"], ["cpu"]) == [1, 2, 6]
    assert thread_counts(["2", "all", "2"], ["cpu"]) == [2, 6]  # repeats measured once
    assert thread_counts(["3"], ["cpu", "cuda:0"]) == [3]  # one count goes with a GPU
    assert thread_counts(None, ["cpu"]) == [torch.get_num_threads()]


@pytest.mark.parametrize("given, message", [
    (["0"], "--threads '0' is not a thread count"),
    (["two"], "--threads 'two' is not a thread count"),
    (["-1"], "--threads '-1' is not a thread count"),
    ([""], "--threads was given but names no thread count"),
])
def test_bad_thread_counts_are_refused(given, message):
    with pytest.raises(ActbenchError, match=message):
        thread_counts(given, ["cpu"])


def test_a_thread_sweep_with_a_gpu_is_refused():
    with pytest.raises(ActbenchError, match="sweeps CPU threads, but the plan also measures cuda"):
        make_plan(["relu"], devices=["cpu", "cuda"], resolve=str, threads=["1,2"])


def test_each_thread_count_is_a_configuration_of_its_own():
    plan = make_plan(["relu"], impl="native", devices=["cpu"], sizes=["64"], passes=["fwd"],
                     threads=["1,2"])
    assert [c.threads for c in plan.configs] == [1, 2]
    assert [c.key[-1] for c in plan.configs] == ["1", "2"]
    assert len({c.group for c in plan.configs}) == 2  # never interleaved across counts


def test_a_sweep_measures_at_each_count_and_resumes(tmp_path):
    out = tmp_path / "r.csv"
    options = MicroOptions(activations=["relu"], impl="native", devices=["cpu"], sizes=["4096"],
                           passes=["fwd"], threads=["1,2"], max_time=0.02, out=out,
                           samples=tmp_path / "s.csv")
    before = torch.get_num_threads()
    run = open_run(options)
    execute(run)
    torch.set_num_threads(before)
    rows = read_rows(out)
    assert sorted(int(r["threads"]) for r in rows) == [1, 2]
    assert all(r["status"] in ("ok", "noisy") for r in rows)
    samples = read_rows(tmp_path / "s.csv")
    assert {s["threads"] for s in samples} == {"1", "2"}
    again = open_run(options)
    assert again.pending == [] and again.skipped == 2
    wider = open_run(MicroOptions(**{**options.__dict__, "threads": ["1,2,3"]}))
    assert [c.threads for c in wider.pending] == [3]


def test_the_tables_name_the_thread_count(tmp_path):
    result = CliRunner().invoke(app, ["micro", "--act", "relu", "--impl", "native", "--size", "4096",
                                      "--pass", "fwd", "--threads", "1,2", "--max-time", "0.02",
                                      "--device", "cpu", "--out", str(tmp_path / "r.csv")])
    assert result.exit_code == 0, result.output
    titles = [line.strip() for line in result.output.splitlines() if line.startswith("fwd · ")]
    assert titles == ["fwd · 4096 · float32 · cpu · 1 thread", "fwd · 4096 · float32 · cpu · 2 threads"]


def test_compare_keeps_thread_counts_apart_and_compares_along_them(tmp_path):
    out = tmp_path / "r.csv"
    result = CliRunner().invoke(app, ["micro", "--act", "relu,silu", "--impl", "native", "--size",
                                      "4096", "--pass", "fwd", "--threads", "1,2", "--max-time",
                                      "0.02", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    from actbench.compare.load import load_reports
    from actbench.compare.micro import compare_micro

    reports = load_reports([str(out)])
    by_activation = compare_micro(reports.micro, baseline="relu")
    assert "threads" in by_activation.group_keys
    assert len(by_activation.table) == 4 and by_activation.table["ratio"].notna().all()
    by_threads = compare_micro(reports.micro, by="threads", baseline="1")
    table = by_threads.table.set_index(["activation", "threads"])
    assert table.loc[("relu", "1"), "ratio"] == pytest.approx(1.0)
    assert table.loc[("silu", "2"), "ratio"] > 0


def test_the_heap_settings_reach_mallopt_as_c_ints(monkeypatch):
    """mallopt takes a C int: a trim threshold of 2**62 once wrapped to 0, trimming on every free."""
    import ctypes

    from actbench.micro import runner

    calls = []

    class FakeLibc:
        def mallopt(self, option, value):
            calls.append((option, value))
            return 1

    monkeypatch.setattr(runner.sys, "platform", "linux")
    monkeypatch.setattr(runner.ctypes, "CDLL", lambda name: FakeLibc())
    assert runner.keep_freed_memory().startswith("glibc: mmap off, trim off")
    assert calls == [(-4, 0), (-1, 2**31 - 1)]  # M_MMAP_MAX, M_TRIM_THRESHOLD
    assert all(ctypes.c_int(value).value == value for _, value in calls)


def test_freed_blocks_are_kept_so_repeated_calls_fault_no_pages():
    """Each 64 MiB output is 16384 pages; with the heap trimmed on every free (as the wrapped
    threshold did wherever the freed output was the heap's top) all ten were faulted in again."""
    script = textwrap.dedent("""
        import resource, torch
        from actbench.micro.runner import keep_freed_memory
        print(keep_freed_memory())
        x = torch.ones(2**24)
        for _ in range(12):
            torch.nn.functional.silu(x)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            torch.nn.functional.silu(x)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's mallopt is Linux only")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    allocator, faults = done.stdout.split("\n")[:2]
    assert allocator.startswith("glibc: mmap off, trim off")
    # a heap still settling (an aligned block needs a few bytes more than the freed one) may fault
    # in one more output; trimming on every free faults in all ten
    assert int(faults) < 2 * 16384


# one of each kernel shape: 1-D (mish, serf), a scalar parameter's reduction (swish), per-channel
# parameters' reductions (acon_c); compiling every fast activation at two counts took 20 s
SHAPES_OF_KERNELS = ("mish", "serf", "swish", "acon_c")


def _fast_kernels_after_use(threads: int, names=SHAPES_OF_KERNELS):
    from actbench.zoo import fast
    from actbench.zoo.registry import lookup

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randn(4, 64, 96, requires_grad=True)
        for name in names:
            spec = lookup(name)
            module = spec.build("fast", channels=64) if spec.trainable else spec.build("fast")
            module(x).sum().backward()
        # a kernel other tests compiled for a one-element input rightly has no parallel loop
        return [(k, key, compiled) for k in fast.kernels() for key, compiled in k._compiled.items()
                if key[1] == threads and getattr(compiled, "source_code", None) is not None
                and not all(key[0][0][2])]
    finally:
        torch.set_num_threads(before)


def test_every_fast_kernel_for_two_threads_has_its_parallel_loop():
    compiled = _fast_kernels_after_use(2)
    labels = {k.label for k, _, _ in compiled}
    assert {"mish forward", "mish backward", "swish backward", "acon forward"} <= labels
    serial = [k.label for k, _, c in compiled if "#pragma omp parallel" not in c.source_code]
    assert not serial, f"compiled without a parallel loop: {serial}"
    one = _fast_kernels_after_use(1, ("mish",))  # one thread: inductor writes no parallel region
    assert one and all("#pragma omp parallel" not in c.source_code for _, _, c in one)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity") else True,
                    reason="needs two CPUs")
def test_a_fast_kernel_runs_on_the_second_thread_too():
    """Counted, not read from the code: the OpenMP worker's CPU time grows while the kernel runs."""
    import psutil

    from actbench.zoo import fast

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = torch.randn(2**22)
        fast.mish_fast(x)
        time.sleep(0.3)  # workers spinning after earlier parallel work go to sleep
        process = psutil.Process()
        main = process.threads()[0].id if process.threads()[0].id == os.getpid() else os.getpid()
        start = {t.id: t.user_time + t.system_time for t in process.threads()}
        for _ in range(40):
            fast.mish_fast(x)
        end = {t.id: t.user_time + t.system_time for t in process.threads()}
    finally:
        torch.set_num_threads(before)
    mine = end[main] - start.get(main, 0.0)
    others = sum(end[t] - start.get(t, 0.0) for t in end if t != main)
    assert mine > 0 and others > 0.25 * mine, (mine, others)


def test_a_kernel_first_called_on_a_tiny_input_still_has_its_parallel_loop():
    """Inductor writes no parallel loop for small hints, and the kernel is cached per thread count:
    compiled on a (3, 2, 5) input, it would run every later (4096, 2, 1024) one on one thread."""
    from actbench.zoo.fast import PointwiseKernel

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gate = PointwiseKernel(lambda x: x[:, 0] * torch.sigmoid(x[:, 1]), "tiny-first test")
        tiny = torch.randn(3, 2, 5)
        assert torch.allclose(gate(tiny), tiny[:, 0] * torch.sigmoid(tiny[:, 1]))
        (compiled,) = gate._compiled.values()
    finally:
        torch.set_num_threads(before)
    assert "#pragma omp parallel" in compiled.source_code

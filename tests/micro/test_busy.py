"""A busy machine, a roofline above 1, and the memory a cgroup leaves: the logic, with fake counters."""

import pytest

from actbench.micro.busy import CpuSnapshot, busy_columns, busy_warning
from actbench.micro.device import CpuDevice, cgroup_memory_room, cpu_last_level_cache_bytes
from actbench.micro.plan import make_plan
from actbench.micro.runner import Runner

from .test_runner import FakeTimer, quick_settings, timer_factory


def snap(wall, busy, own, steal=0.0, load=0.0, cores=2):
    return CpuSnapshot(wall_s=wall, load1=load, busy_s=busy, steal_s=steal, own_s=own, cores=cores)


def test_a_quiet_window_is_not_busy():
    # 10 s on 2 cores; this process used 9.5 s of CPU, the system 9.6 s in all: others 0.1 s (0.5 %)
    columns = busy_columns(snap(0, 100, 50, load=1.0), snap(10, 109.6, 59.5, load=1.1), own_threads=1)
    assert columns["busy"] is False
    assert columns["other_cpu_pct"] == pytest.approx(0.5)
    assert columns["steal_pct"] == 0 and columns["load_before"] == 1.0 and columns["load_after"] == 1.1


def test_other_processes_steal_and_load_each_make_a_window_busy():
    # another process kept one of two cores busy: 10 s of 20 = 50 %
    other = busy_columns(snap(0, 0, 0), snap(10, 20, 10), own_threads=1)
    assert other["busy"] and other["other_cpu_pct"] == pytest.approx(50.0)
    # the hypervisor took 2 s of 20: 10 %
    steal = busy_columns(snap(0, 0, 0, steal=5), snap(10, 10, 10, steal=7), own_threads=1)
    assert steal["busy"] and steal["steal_pct"] == pytest.approx(10.0)
    # load 3.5 with our 2 threads on 2 cores: 1.5 runnable others > 0.5 per core
    load = busy_columns(snap(0, 0, 0, load=3.5), snap(1, 2, 2, load=3.0), own_threads=2)
    assert load["busy"] and load["other_cpu_pct"] == 0
    # our own 2 threads making the load 2.0 are not someone else's
    assert not busy_columns(snap(0, 0, 0, load=2.0), snap(1, 2, 2, load=2.0), own_threads=2)["busy"]


def test_a_short_window_needs_more_than_counter_resolution_to_be_busy():
    # 0.1 s on 2 cores: one 10 ms tick of other CPU time is 5 %, two ticks 10 %: below the floor
    assert not busy_columns(snap(0, 0, 0), snap(0.1, 0.03, 0.0), own_threads=1)["busy"]


def test_missing_counters_give_no_columns():
    assert busy_columns(None, snap(1, 1, 1), 1) == {}
    assert busy_columns(snap(1, 1, 1), snap(1, 1, 1), 1) == {}


class BusyProbe:
    """Each reading 1 s later, with another process having used a whole core meanwhile."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return snap(self.now, busy=2 * self.now, own=self.now, load=1.0)


def test_rows_sampled_on_a_busy_machine_are_flagged_and_warned_about():
    plan = make_plan(["relu,silu"], devices=["cpu"], sizes=["64"], passes=["fwd"])
    rows = []
    Runner(quick_settings(), {}, rows.append, timers=timer_factory(FakeTimer()),
           cpu_probe=BusyProbe()).run(plan.configs)
    assert all("busy" in row["flags"].split(";") for row in rows)
    assert all(row["status"] == "ok" and row["other_cpu_pct"] > 10 for row in rows)
    warning = busy_warning(rows)
    assert warning.startswith("2 of 2 configuration(s) were measured on a busy machine")
    assert "new --out" in warning
    assert busy_warning([{"flags": "noisy"}]) is None


class SmallCacheCpu(CpuDevice):
    def last_level_cache_bytes(self):
        return 1024


class BigCacheCpu(CpuDevice):
    def last_level_cache_bytes(self):
        return 2**30


def _rows_with_a_slow_copy(devices):
    """The copy reference 'takes' 10x the activation: every roofline fraction is far above 1."""
    class SlowCopy(FakeTimer):
        def measure(self, fn, calls):
            return 1e-2 if getattr(fn, "__name__", "") == "call" and fn.__qualname__.startswith(
                "copy_call") else 1e-3

    plan = make_plan(["relu"], devices=["cpu"], sizes=["4096"], passes=["fwd"])
    rows = []
    Runner(quick_settings(), {}, rows.append, timers=timer_factory(SlowCopy()),
           devices=devices).run(plan.configs)
    return rows


def test_a_roofline_above_one_says_why():
    in_cache = _rows_with_a_slow_copy(BigCacheCpu)[0]
    assert in_cache["roofline_frac"] > 1 and "in_cache" in in_cache["flags"].split(";")
    above = _rows_with_a_slow_copy(SmallCacheCpu)[0]
    assert above["roofline_frac"] > 1 and "above_copy" in above["flags"].split(";")


def test_cgroup_room_reads_v2_and_v1_and_ignores_no_limit(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text(f"{3 * 2**30}\n")
    (v2 / "memory.current").write_text(f"{2**30}\n")
    (v2 / "memory.stat").write_text(f"anon 100\ninactive_file {2**28}\n")
    assert cgroup_memory_room(str(v2)) == 2 * 2**30 + 2**28
    (v2 / "memory.max").write_text("max\n")
    assert cgroup_memory_room(str(v2)) is None
    v1 = tmp_path / "v1" / "memory"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(f"{2**31}\n")
    (v1 / "memory.usage_in_bytes").write_text(f"{2**30}\n")
    (v1 / "memory.stat").write_text("total_inactive_file 0\n")
    assert cgroup_memory_room(str(tmp_path / "v1")) == 2**30
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_memory_room(str(tmp_path / "v1")) is None
    assert cgroup_memory_room(str(tmp_path / "nothing")) is None


def test_last_level_cache_is_the_highest_data_or_unified_level(tmp_path):
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                                 (2, "Unified", "1280K"), (3, "Unified", "48M")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "type").write_text(f"{kind}\n")
        (folder / "size").write_text(f"{size}\n")
    assert cpu_last_level_cache_bytes(str(tmp_path)) == 48 * 2**20
    assert cpu_last_level_cache_bytes(str(tmp_path / "none")) is None

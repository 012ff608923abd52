"""Was the machine busy while a configuration was sampled? Load, steal, other processes' CPU time.

A timing taken while other processes compete for the cores (or the hypervisor steals them) is
slower and noisier than the code it claims to measure: the row is flagged `busy`, so nobody quotes
it as a property of the activation. The counters come from psutil (/proc on Linux): system-wide
CPU time, steal time and the load average, and this process's own CPU time, which is subtracted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

# Busy when, over a configuration's sampling window, other processes used more than this share
# of all cores' time (and at least OTHER_CPU_MIN_S: the counters tick in 10 ms)...
BUSY_OTHER_CPU_PCT = 10.0
OTHER_CPU_MIN_S = 0.05
# ... or the hypervisor took more than this share of it ...
BUSY_STEAL_PCT = 5.0
# ... or the 1-minute load average, less this process's own threads, exceeded this many per core.
BUSY_EXCESS_LOAD_PER_CORE = 0.5


@dataclass(frozen=True)
class CpuSnapshot:
    """System and own CPU counters at one moment (seconds, summed over all CPUs)."""

    wall_s: float
    load1: float
    busy_s: float  # every CPU's non-idle time: user, nice, system, irq, softirq
    steal_s: float
    own_s: float  # this process's CPU time, all its threads
    cores: int


def snapshot() -> CpuSnapshot | None:
    """The counters now; None where psutil cannot read them (the columns then stay empty)."""
    try:
        import psutil

        times = psutil.cpu_times()
        own = psutil.Process().cpu_times()
        busy = sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))
        return CpuSnapshot(wall_s=time.perf_counter(), load1=float(psutil.getloadavg()[0]),
                           busy_s=busy, steal_s=float(getattr(times, "steal", 0.0)),
                           own_s=own.user + own.system, cores=psutil.cpu_count() or 1)
    except Exception:  # noqa: BLE001 - an unusual platform: no busy columns, timings still count
        return None


def busy_columns(before: CpuSnapshot | None, after: CpuSnapshot | None,
                 own_threads: int) -> dict[str, Any]:
    """load_before, load_after, other_cpu_pct, steal_pct and `busy` for one sampling window."""
    if before is None or after is None or after.wall_s <= before.wall_s:
        return {}
    capacity = (after.wall_s - before.wall_s) * after.cores
    other_s = max(0.0, (after.busy_s - before.busy_s) - (after.own_s - before.own_s))
    other_pct = 100.0 * other_s / capacity
    steal_pct = 100.0 * max(0.0, after.steal_s - before.steal_s) / capacity
    excess_load = max(before.load1, after.load1) - own_threads
    busy = ((other_pct > BUSY_OTHER_CPU_PCT and other_s >= OTHER_CPU_MIN_S)
            or steal_pct > BUSY_STEAL_PCT
            or excess_load > BUSY_EXCESS_LOAD_PER_CORE * after.cores)
    return {"load_before": round(before.load1, 2), "load_after": round(after.load1, 2),
            "other_cpu_pct": round(other_pct, 1), "steal_pct": round(steal_pct, 1), "busy": busy}


def busy_warning(rows: list[dict[str, Any]]) -> str | None:
    """One line for a run with busy rows: how many, how busy, and what to do about it."""
    busy = [row for row in rows if "busy" in str(row.get("flags") or "").split(";")]
    if not busy:
        return None

    def worst(*columns: str) -> float:
        values = [float(row[c]) for row in busy for c in columns if row.get(c) not in (None, "")]
        return max(values) if values else 0.0
    return (f"{len(busy)} of {len(rows)} configuration(s) were measured on a busy machine (other "
            f"processes up to {worst('other_cpu_pct'):.0f} % of the CPUs, steal up to "
            f"{worst('steal_pct'):.0f} %, load average up to "
            f"{worst('load_before', 'load_after'):.1f}); they are flagged "
            "busy: stop other work (or measure on a quiet machine) and rerun them with a new --out")

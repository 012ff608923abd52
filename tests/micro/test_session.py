"""A micro session from options: validated up front, progress for what is pending, resume."""

import pytest

from actbench.errors import ActbenchError
from actbench.micro.session import MicroOptions, execute, open_run
from actbench.progress import ItemFinished, ItemStarted, PlanStarted

TINY = dict(devices=["cpu"], sizes=["256"], passes=["fwd"], max_time=0.05, energy=False)


def test_progress_counts_only_what_is_pending(tmp_path):
    out = tmp_path / "r.csv"
    events = []
    run = open_run(MicroOptions(activations=["relu"], out=out, **TINY))
    execute(run, events.append)
    assert events[0] == PlanStarted(total=1, unit="configurations")
    assert events[1] == ItemStarted("relu/native fwd 256")
    assert isinstance(events[2], ItemFinished) and events[2].label == "relu/native fwd 256"
    assert events[2].status in ("ok", "noisy") and len(events) == 3

    events.clear()
    resumed = open_run(MicroOptions(activations=["relu,silu"], out=out, **TINY))
    assert resumed.skipped == 1
    execute(resumed, events.append)
    assert events[0] == PlanStarted(total=1, unit="configurations")
    assert [e.label for e in events[1:]] == ["silu/native fwd 256"] * 2


def test_options_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(ActbenchError, match="must end in .csv"):
        open_run(MicroOptions(activations=["relu"], out=tmp_path / "r.txt", **TINY))
    assert list(tmp_path.iterdir()) == []


def test_max_time_is_at_least_min_time(tmp_path):
    run = open_run(MicroOptions(activations=["relu"], out=tmp_path / "r.csv",
                                **{**TINY, "max_time": 0.1}, min_time=0.3))
    assert run.settings.stopping.max_time == 0.3 and run.settings.stopping.min_time == 0.3

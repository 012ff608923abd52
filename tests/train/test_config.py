"""Typed configuration and run specifications: built by validation, frozen, picklable, plain-data
round trips, the device resolved once, and hashes that never change."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest

from actbench import devices
from actbench.progress import ItemAdvanced, ItemFinished, ItemStarted, Notice, PlanStarted
from actbench.train import suite_keys
from actbench.train.config import (SECTIONS, DataConfig, ModelConfig, OptimConfig, Options, RunConfig,
                                   RunSpec, TrainConfig)
from actbench.train.suite import load_suite, suite_from_dict

# Computed by the code before the typed configuration existed. They must never change: reports
# written earlier are resumed by matching these hashes.
QUICK_HASHES = {0: "d58c664c719f", 1: "de51ad9f0329", 2: "288f7ce12f95", 3: "1eaa0388b90f",
                4: "a7d7fa01614f", 15: "0819e263d73e", 16: "298fd041e046", 29: "c46a6791d00b"}
RICH = {
    "data": {"name": "synthetic", "shape": [3, 8, 8], "classes": 4, "root": "/x"},
    "model": {"name": "resnet", "depth": 32, "version": "v2", "shortcut": "A"},
    "optim": {"name": "sgd", "lr": "1e-2", "nesterov": True, "eps": "1e-7"},
    "schedule": {"name": "multistep", "milestones": [2, 4]},
    "train": {"epochs": 5, "mixup": 0.2, "grad_clip": 1.0, "amp": True},
    "eval": {"noise": [0.1, 0.2]},
    "activations": ["x*sigmoid( x )", {"name": "acon_c", "impl": "formula"},
                    {"name": "swish", "params": {"beta": 2}, "label": "sw2"}, "prelu"],
    "seeds": 2,
    "sweep": {"train.label_smoothing": [0.0, 0.1], "data.train_subset": [None, 100]},
}
RICH_HASHES = {0: "801d1918d80c", 1: "8d40fbcbff13", 2: "58e6ecd64a4d", 3: "d978dd7eb280",
               31: "70562c5ef722"}


def test_hashes_are_those_of_earlier_reports():
    runs = load_suite("quick", check_data=False).runs()
    assert {i: runs[i].config_hash for i in QUICK_HASHES} == QUICK_HASHES
    runs = suite_from_dict(RICH, check_data=False).runs()
    assert {i: runs[i].config_hash for i in RICH_HASHES} == RICH_HASHES


def test_validation_produces_typed_sections():
    suite = suite_from_dict(RICH, check_data=False)
    config = suite.config
    assert isinstance(config, RunConfig)
    assert isinstance(config.data, DataConfig) and config.data.options["shape"] == [3, 8, 8]
    assert isinstance(config.model, ModelConfig) and config.model.options["version"] == "v2"
    assert isinstance(config.optim, OptimConfig) and config.optim.lr == 0.01
    assert config.optim.betas == (0.9, 0.999) and config.schedule.milestones == (2, 4)
    assert isinstance(config.train, TrainConfig) and config.train.mixup == 0.2
    assert config.eval.noise == (0.1, 0.2)
    run = suite.runs()[-1]
    assert isinstance(run, RunSpec) and run.config.train.label_smoothing == 0.1
    assert run.config.data.options["train_subset"] == 100 and run.sweep["data.train_subset"] == 100


def test_sections_have_the_fields_of_the_key_tables():
    for name, keys in suite_keys.fixed_keys().items():
        names = [field.name for field in dataclasses.fields(SECTIONS[name]) if field.name != "options"]
        assert names == list(keys), name


def test_everything_is_frozen():
    run = suite_from_dict(RICH, check_data=False).runs()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.seed = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.config.train.epochs = 3
    with pytest.raises(TypeError):
        run.config.data.options["classes"] = 3
    with pytest.raises(AttributeError):
        run.config.model.options._items = ()
    run.config.data.options["shape"].append(9)  # a copy: the stored value stays
    assert run.config.data.options["shape"] == [3, 8, 8]
    assert hash(run) == hash(pickle.loads(pickle.dumps(run)))


def test_runs_and_configs_pickle():
    suite = suite_from_dict(RICH, check_data=False)
    for run in suite.runs():
        copy = pickle.loads(pickle.dumps(run))
        assert copy == run and copy.config.to_dict() == run.config.to_dict()
    assert pickle.loads(pickle.dumps(suite.config)) == suite.config


def test_runs_round_trip_through_plain_json():
    suite = suite_from_dict(RICH, check_data=False)
    assert RunConfig.from_dict(json.loads(json.dumps(suite.config.to_dict()))) == suite.config
    for run in suite.runs():
        plain = json.loads(json.dumps(run.to_dict()))
        assert RunSpec.from_dict(plain) == run
        assert plain["config"]["optim"]["betas"] == [0.9, 0.999]


def test_to_dict_is_the_resolved_section_the_sidecar_records():
    suite = load_suite("quick", check_data=False)
    resolved = suite.resolved()
    assert resolved["config"] == suite.config.to_dict()
    assert list(resolved["config"]["model"]) == ["name", "init", "init_std", "depth", "width",
                                                 "dropout", "batchnorm"]
    assert resolved["activations"][4] == {"name": "acon_c", "impl": "formula",
                                          "params": {"beta": 1.0}, "label": "acon_c"}


def test_unknown_keys_are_refused_by_fixed_sections():
    values = suite_from_dict({"activations": ["relu"]}).config.optim.to_dict()
    with pytest.raises(KeyError):
        OptimConfig.from_dict({**values, "typo": 1})


def test_options_compare_as_mappings():
    assert Options({"a": [1, 2]}) == {"a": [1, 2]} and dict(Options({"a": {"b": (1,)}})) == {"a": {"b": [1]}}


def test_equal_options_hash_alike_whatever_their_key_order():
    first, second = Options({"a": 1, "b": [2, 3]}), Options({"b": [2, 3], "a": 1})
    assert first == second and hash(first) == hash(second)
    assert len({first, second}) == 1
    assert Options({"a": 1}) != Options({"a": 2})


def test_the_device_is_resolved_once(monkeypatch):
    calls = []
    real = devices.resolve_device
    monkeypatch.setattr(devices, "resolve_device", lambda name: calls.append(name) or real(name))
    runs = suite_from_dict({"activations": ["relu", "mish"], "seeds": 3,
                            "sweep": {"model.depth": [1, 2]}}).runs()
    assert calls == ["auto"] and len(runs) == 12
    assert {run.device for run in runs} == {real("auto")}


def test_a_suite_run_resolves_no_device_after_expansion(tmp_path, monkeypatch):
    from actbench.train.executor import Execution, execute, prepare

    suite = suite_from_dict({
        "data": {"name": "synthetic", "shape": [1, 4, 4], "classes": 3, "train_size": 40,
                 "test_size": 20},
        "model": {"name": "mlp", "depth": 1, "width": 8},
        "train": {"epochs": 2, "batch_size": 16, "device": "cpu"},
        "activations": ["relu", "mish"], "seeds": [0]})
    suite_run = prepare(suite, tmp_path / "r.csv")
    monkeypatch.setattr(devices, "resolve_device", lambda name: pytest.fail("resolved again"))
    events = []
    execute(suite_run, events.append, Execution(executor="inline"))
    assert isinstance(events[0], Notice)
    assert events[0].line.startswith("inline executor: 1 run at a time")
    assert events[1] == PlanStarted(total=2, unit="runs")
    assert events[2] == ItemStarted("relu seed 0")
    advanced = [e for e in events if isinstance(e, ItemAdvanced)]
    # progress is sent at most every quarter second, and at each epoch's end
    assert advanced[0] == ItemAdvanced("relu seed 0 epoch 1", 1, 6, item="relu seed 0")
    assert ItemAdvanced("relu seed 0 epoch 1", 3, 6, item="relu seed 0") in advanced
    assert ItemAdvanced("relu seed 0 epoch 2", 6, 6, item="relu seed 0") in advanced
    finished = [e for e in events if isinstance(e, ItemFinished)]
    assert [(e.label, e.status) for e in finished] == [("relu seed 0", "ok"), ("mish seed 0", "ok")]
    assert finished[1].line.startswith("run 2/2 mish seed 0  ok: test acc ")
    assert finished[1].line.endswith(" s")
    assert all(pickle.loads(pickle.dumps(event)) == event for event in events)

"""Suites: schema defaults, validation messages, overrides, sweep expansion, hashes, shipped suites."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from actbench.errors import ActbenchError
from actbench.train import data, models
from actbench.train import suite as suite_module
from actbench.train.suite import (ActivationEntry, SuiteError, config_hash, load_suite, parse_override,
                                  suite_from_dict)

ROOT = Path(__file__).resolve().parents[2]
BAD_SUITES = sorted((Path(__file__).parent / "bad_suites").glob("*.yaml"))
SHIPPED = sorted((ROOT / "suites").glob("*.yaml"))
DOCS = ROOT / "docs" / "suites.md"


@pytest.fixture(autouse=True)
def data_available(monkeypatch):
    """Every data set counts as present unless a test says otherwise; records the calls."""
    calls = []
    monkeypatch.setattr(data, "check_available", lambda name, root, download=False, **options:
                        calls.append((name, root, download)), raising=False)
    return calls


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path, **kwargs) -> list[str]:
    with pytest.raises(SuiteError) as caught:
        load_suite(path, **kwargs)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def expectations(path: Path) -> list[str]:
    return [line.split("# expect:", 1)[1].strip() for line in path.read_text().splitlines()
            if line.startswith("# expect:")]


# --------------------------------------------------------------------------- the malformed corpus


def test_corpus_is_large_and_every_file_says_what_it_expects():
    assert len(BAD_SUITES) >= 15
    assert all(expectations(path) for path in BAD_SUITES)
    assert len({tuple(expectations(path)) for path in BAD_SUITES}) == len(BAD_SUITES)


@pytest.mark.parametrize("path", BAD_SUITES, ids=lambda p: p.stem)
def test_each_malformed_suite_names_its_key_path(path):
    problems = problems_of(path)
    for expected in expectations(path):
        assert any(expected in problem for problem in problems), (expected, problems)
    assert all(problem.startswith(f"{path.name}: ") for problem in problems)


def test_several_mistakes_are_all_reported_once_and_in_file_order():
    path = next(p for p in BAD_SUITES if p.stem == "several_mistakes")
    problems = problems_of(path)
    expected = expectations(path)
    assert len(problems) == len(expected)
    for problem, text in zip(problems, expected):
        assert text in problem


def test_a_sweep_problem_of_every_value_is_reported_once(tmp_path):
    path = write(tmp_path, "activations: [relu]\nmodel: {name: cnn}\ndata: {name: synthetic}\n"
                           "sweep: {model.depth: [2, 3]}\n")
    problems = problems_of(path)
    assert len(problems) == 1
    assert "sweep.model.depth: not an option of model 'cnn'" in problems[0]


def test_missing_file_and_directory_are_one_line_errors(tmp_path):
    for target, text in ((tmp_path / "absent.yaml", "not found"), (tmp_path, "is a directory")):
        with pytest.raises(ActbenchError) as caught:
            load_suite(target)
        assert not isinstance(caught.value, SuiteError)
        assert text in str(caught.value) and "\n" not in str(caught.value)


def test_the_name_defaults_to_the_file_stem_and_a_written_name_is_checked(tmp_path):
    assert load_suite(write(tmp_path, "activations: [relu]\n", "my runs.yaml")).name == "my runs"
    with pytest.raises(SuiteError, match=r"^s\.yaml: name: expected a name of letters, digits"):
        load_suite(write(tmp_path, "name: a/b\nactivations: [relu]\n"))


def test_shipped_suites_are_found_by_name_and_typos_get_a_hint():
    assert load_suite("quick").path == ROOT / "suites" / "quick.yaml"
    with pytest.raises(ActbenchError, match="did you mean the shipped suite 'quick'"):
        load_suite("quik")


# --------------------------------------------------------------------------- defaults and values


def test_a_minimal_suite_resolves_to_the_documented_defaults():
    suite = suite_from_dict({"activations": ["relu"]}, default_name="minimal")
    assert suite.name == "minimal" and suite.description == "" and suite.baseline is None
    assert suite.seeds == [0, 1, 2] and suite.sweep == {}
    assert suite.config.to_dict()["data"] == {"name": "mnist1d", "root": None, "download": False,
                                    **data.DATASET_OPTIONS["mnist1d"]}
    assert suite.config.to_dict()["model"] == {"name": "mlp", **models.COMMON_OPTIONS, **models.MODEL_OPTIONS["mlp"]}
    assert suite.config.to_dict()["optim"] == {"name": "adam", "lr": 0.001, "momentum": 0.9, "nesterov": False,
                                     "weight_decay": 0.0, "l1": 0.0, "betas": [0.9, 0.999], "eps": 1e-8}
    assert suite.config.to_dict()["schedule"] == {"name": "constant", "warmup_epochs": 0, "step_size": 30,
                                        "milestones": [], "gamma": 0.1, "max_lr": None, "min_lr": 0.0}
    assert suite.config.to_dict()["train"] == {"epochs": 10, "batch_size": 128, "eval_batch_size": 1024,
                                     "augment": False, "mixup": 0.0, "label_smoothing": 0.0,
                                     "grad_clip": None, "amp": False, "channels_last": False,
                                     "compile": False, "deterministic": False, "device": "auto",
                                     "threads": None, "gpus_per_run": None}
    assert suite.config.to_dict()["eval"] == {"noise": []}


def test_values_are_normalised():
    suite = suite_from_dict({"activations": ["relu"], "optim": {"name": "AdamW", "lr": 1, "eps": "1e-6"},
                             "model": {"name": "resnet", "shortcut": "a", "depth": 20},
                             "data": {"name": "cifar10"}, "sweep": {"optim.weight_decay": ["5e-4", 0]}})
    assert suite.config.to_dict()["optim"]["name"] == "adamw"
    assert suite.config.to_dict()["optim"]["lr"] == 1.0 and isinstance(suite.config.to_dict()["optim"]["lr"], float)
    assert suite.config.to_dict()["optim"]["eps"] == 1e-6
    assert suite.config.to_dict()["model"]["shortcut"] == "A"  # the models' own spelling
    assert suite.sweep == {"optim.weight_decay": [5e-4, 0.0]}


@pytest.mark.parametrize("value", ["1e-8x", "abc", True, float("nan"), float("inf"), [1e-8]])
def test_numbers_refuse_text_bools_and_non_finite_values(value):
    with pytest.raises(SuiteError, match=r"optim\.eps: expected a number > 0"):
        suite_from_dict({"activations": ["relu"], "optim": {"eps": value}})


def test_seeds_as_a_count_a_list_or_a_flag():
    assert suite_from_dict({"activations": ["relu"], "seeds": 4}).seeds == [0, 1, 2, 3]
    assert suite_from_dict({"activations": ["relu"], "seeds": [7, 3]}).seeds == [7, 3]
    assert suite_from_dict({"activations": ["relu"], "seeds": 4}, seeds="5,2").seeds == [5, 2]
    assert suite_from_dict({"activations": ["relu"]}, seeds=[1, "4"]).seeds == [1, 4]
    with pytest.raises(SuiteError, match=r"^suite: seeds: expected a list of seeds or a count from 1 to 10000, got 0$"):
        suite_from_dict({"activations": ["relu"], "seeds": 0})
    with pytest.raises(SuiteError, match=r'^--seeds: seeds\[1\]: expected an integer >= 0, got "x"$'):
        suite_from_dict({"activations": ["relu"]}, seeds="1,x")


# --------------------------------------------------------------------------- activations, baseline


def test_activation_entries_are_canonical_with_resolved_implementation_and_params():
    suite = suite_from_dict({"activations": [
        "swish1", "x*sigmoid( 1.5*x )", {"name": "acon_c", "impl": "memeff", "params": {"beta": 2}},
        {"name": "ACON", "label": "acon default"}, {"name": "meta_acon", "params": {"r": 8}}]})
    silu, expr, acon, acon_default, meta = suite.activations
    assert silu == ActivationEntry("silu", "native", {}, "silu")
    assert expr == ActivationEntry("x * sigmoid(1.5 * x)", "formula", {}, "x * sigmoid(1.5 * x)")
    assert acon == ActivationEntry("acon_c", "memeff", {"beta": 2.0}, "acon_c[memeff](beta=2)")
    assert acon_default == ActivationEntry("acon_c", "formula", {"beta": 1.0}, "acon default")
    assert meta.params == {"r": 8} and isinstance(meta.params["r"], int)


def test_duplicate_labels_and_wrong_param_types_are_problems():
    with pytest.raises(SuiteError) as caught:
        suite_from_dict({"activations": ["relu", {"name": "mish", "label": "relu"},
                                         {"name": "swish", "params": {"beta": "big"}},
                                         {"name": "mish", "speed": 1}, 3]})
    assert caught.value.problems == [
        "suite: activations[1]: the same label as activations[0] ('relu'); list each activation once",
        'suite: activations[2].params.beta: expected a number, got "big"',
        "suite: activations[3].speed: unknown key (expected one of name, impl, params, label)",
        "suite: activations[4]: expected a name, an expression, an import path or a mapping with "
        "name/impl/params/label, got 3",
    ]


def test_baseline_is_matched_by_label_or_unambiguous_name():
    acts = ["relu", "mish", {"name": "acon_c", "impl": "memeff"}, {"name": "acon_c", "impl": "formula"}]
    assert suite_from_dict({"activations": acts, "baseline": "ReLU"}).baseline == "relu"
    assert suite_from_dict({"activations": acts, "baseline": "acon_c[memeff]"}).baseline == "acon_c[memeff]"
    with pytest.raises(SuiteError, match=r"baseline: 'acon' matches several activations "
                                         r"\(acon_c\[memeff\], acon_c\[formula\]\)"):
        suite_from_dict({"activations": acts, "baseline": "acon"})


# --------------------------------------------------------------------------- sweep expansion


def test_sweep_expands_points_then_seeds_then_activations():
    suite = suite_from_dict({"activations": ["relu", "mish"], "seeds": [0, 1],
                             "sweep": {"model.depth": [1, 2, 3], "optim.name": ["sgd", "adam"]}})
    runs = suite.runs()
    assert len(runs) == 3 * 2 * 2 * 2
    assert [r.index for r in runs] == list(range(24))
    expected = [(depth, optim, seed, act) for depth in (1, 2, 3) for optim in ("sgd", "adam")
                for seed in (0, 1) for act in ("relu", "mish")]
    assert [(r.sweep["model.depth"], r.sweep["optim.name"], r.seed, r.activation.label) for r in runs] \
        == expected
    for run in runs:
        assert run.config.to_dict()["model"]["depth"] == run.sweep["model.depth"]
        assert run.config.to_dict()["optim"]["name"] == run.sweep["optim.name"]
    assert len({r.config_hash for r in runs}) == 24


def test_without_a_sweep_there_is_one_point():
    runs = suite_from_dict({"activations": ["relu", "mish"], "seeds": 2}).runs()
    assert [(r.seed, r.activation.name, r.sweep) for r in runs] == [
        (0, "relu", {}), (0, "mish", {}), (1, "relu", {}), (1, "mish", {})]


def test_sweeping_the_model_gives_each_point_its_own_model_defaults():
    suite = suite_from_dict({"activations": ["relu"], "seeds": 1, "model": {"depth": 2},
                             "sweep": {"model.name": ["mlp", "cnn1d"]}})
    mlp, cnn1d = (run.config.to_dict()["model"] for run in suite.runs())
    assert mlp == {"name": "mlp", **models.COMMON_OPTIONS, **models.MODEL_OPTIONS["mlp"], "depth": 2}
    assert cnn1d == {"name": "cnn1d", **models.COMMON_OPTIONS, **models.MODEL_OPTIONS["cnn1d"], "depth": 2}
    assert suite.config.to_dict()["model"]["name"] == "mlp"  # before the sweep


def test_run_configs_are_independent_copies():
    suite = suite_from_dict({"activations": ["relu", "mish"], "seeds": 1})
    first, second = suite.runs()
    first.config.to_dict()["optim"]["betas"].append(0.5)
    first.config.optim.to_dict()["betas"].append(0.5)
    assert second.config.to_dict()["optim"]["betas"] == [0.9, 0.999]
    assert first.config.to_dict()["optim"]["betas"] == [0.9, 0.999]
    assert suite.config.to_dict()["optim"]["betas"] == [0.9, 0.999]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.config.optim.betas = [0.5]
    with pytest.raises(AttributeError):  # stored as a tuple: nothing to change in place
        first.config.optim.betas.append(0.5)
    with pytest.raises(TypeError):  # name-dependent options are a read-only mapping
        first.config.model.options["depth"] = 5
    assert second.config.model.options["depth"] == first.config.model.options["depth"]
    assert first.config == second.config and hash(first.config) == hash(second.config)


def test_sweep_keys_that_cannot_be_swept():
    with pytest.raises(SuiteError) as caught:
        suite_from_dict({"activations": ["relu"], "sweep": {"seeds": [[0], [1]], "depth": [1],
                                                            "model.depth": [2, 2]}})
    assert caught.value.problems == [
        "suite: sweep.seeds: cannot be swept: every sweep point already runs every one of the seeds",
        "suite: sweep.depth: unknown key (did you mean 'model.depth'?)",
        "suite: sweep.model.depth[1]: duplicate value 2",
    ]


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize("text, expected", [
    ("train.epochs=2", ("train.epochs", 2)),
    ("optim.lr=0.5", ("optim.lr", 0.5)),
    ("eval.noise=[0, 0.5]", ("eval.noise", [0, 0.5])),
    ("train.grad_clip=null", ("train.grad_clip", None)),
    ("train.grad_clip=", ("train.grad_clip", None)),
    ("train.amp=true", ("train.amp", True)),
    ("description=x * sigmoid(x)", ("description", "x * sigmoid(x)")),
    ("model={name: cnn, width: 8}", ("model", {"name": "cnn", "width": 8})),
])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("text, message", [
    ("train.epochs", "expected KEY=VALUE"),
    ("=2", "expected KEY=VALUE"),
    ("train..epochs=2", "expected KEY=VALUE"),
    ("eval.noise=[0,", "the value is not valid YAML"),
])
def test_parse_override_refuses_bad_syntax(text, message):
    with pytest.raises(SuiteError) as caught:
        parse_override(text)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"--set {text}: ") and message in caught.value.problems[0]


def test_overrides_set_nested_keys_before_validation(tmp_path):
    path = write(tmp_path, "activations: [relu]\ntrain: {epochs: 0}\ndata: {name: synthetic}\n")
    suite = load_suite(path, overrides=["train.epochs=2", "optim.name=sgd", "model={name: cnn}",
                                       "sweep.model.width=[8, 16]", "name=renamed"])
    assert suite.name == "renamed"
    assert suite.config.to_dict()["train"]["epochs"] == 2
    assert suite.config.to_dict()["optim"]["name"] == "sgd"
    assert suite.config.to_dict()["model"]["name"] == "cnn"
    assert suite.sweep == {"model.width": [8, 16]}
    assert [run.config.to_dict()["model"]["width"] for run in suite.runs()[::3]] == [8, 16]


def test_override_problems_name_the_override_not_the_file(tmp_path):
    path = write(tmp_path, "activations: [relu]\nmodel: {name: mlp}\n")
    problems = problems_of(path, overrides=["train.epoch=2", "train.batch_size=0", "model.name.x=1",
                                            "oops", "sweep.train.epochs=[1, 0]"])
    assert problems == [
        '--set model.name.x=1: cannot set model.name.x: model.name is "mlp", not a mapping',
        "--set oops: expected KEY=VALUE with a dotted key, e.g. train.epochs=2",
        "--set train.epoch=2: train.epoch: unknown key (did you mean 'epochs'?)",
        "--set train.batch_size=0: train.batch_size: expected an integer >= 1 and <= 16777216, got 0",
        "--set sweep.train.epochs=[1, 0]: sweep.train.epochs[1]: expected an integer >= 1 and <= 100000, got 0",
    ]


def test_act_and_device_flags_replace_the_file_values(tmp_path):
    path = write(tmp_path, "activations: [relu]\nbaseline: relu\ntrain: {device: cpu}\n")
    suite = load_suite(path, activations="max(x, 0.1 * x),relu", device="cuda:1")
    assert [a.label for a in suite.activations] == ["max(x, 0.1 * x)", "relu"]
    assert suite.config.to_dict()["train"]["device"] == "cuda:1"
    assert [a.name for a in load_suite(path, activations=["mish,relu", "gelu"]).activations] == \
        ["mish", "relu", "gelu"]
    assert problems_of(path, activations="mish", device="gpu") == [
        "--device: train.device: expected auto, cpu, cuda, cuda:N or mps, got \"gpu\"",
        "s.yaml: baseline: 'relu' is not among the activations (mish); add it or set baseline to null",
    ]
    assert problems_of(path, activations="msih")[0].startswith("--act: activations[0]: unknown activation")


# --------------------------------------------------------------------------- hashes


def reference_hash(config: dict, activation: dict, seed: int) -> str:
    """The documented definition, computed independently (data.root/download and the run's
    resources, train.threads/gpus_per_run, left out)."""
    config = copy.deepcopy(config)
    del config["data"]["root"], config["data"]["download"]
    del config["train"]["threads"], config["train"]["gpus_per_run"]
    text = json.dumps({"config": config, "activation": activation, "seed": seed}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_hash_follows_its_documented_definition():
    suite = suite_from_dict({"activations": [{"name": "acon_c", "params": {"beta": 2.0}}], "seeds": [5]})
    run = suite.runs()[0]
    assert run.config_hash == reference_hash(
        run.config.to_dict(), {"name": "acon_c", "impl": "formula", "params": {"beta": 2.0}}, 5)


def test_hash_ignores_key_order_names_description_baseline_labels_data_location_and_resources(tmp_path):
    one = write(tmp_path, "name: a\ndescription: first\nactivations: [relu, mish]\nbaseline: relu\n"
                          "optim: {name: sgd, lr: 0.1}\ntrain: {epochs: 3, batch_size: 32}\n", "a.yaml")
    two = write(tmp_path, "train: {batch_size: 32, epochs: 3, threads: 3, gpus_per_run: 0.5}\n"
                          "optim: {lr: 0.1, name: sgd}\n"
                          "activations: [{name: ReLU, label: base}, mish]\nname: b\n"
                          "data: {root: /elsewhere, download: true}\n", "b.yaml")
    first, second = load_suite(one).runs(), load_suite(two).runs()
    assert [r.config_hash for r in first] == [r.config_hash for r in second]
    assert first[0].activation.label != second[0].activation.label


def leaves(tree, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "_other"
    if isinstance(value, list):
        return [*value, 1]
    return 0.5  # None


def test_hash_changes_with_every_value_that_affects_the_run():
    suite = suite_from_dict({"activations": [{"name": "swish", "params": {"beta": 1.5}}], "seeds": [0]})
    run = suite.runs()[0]
    base = config_hash(run.config, run.activation, run.seed)
    checked = 0
    for path, value in leaves(run.config.to_dict()):
        config = run.config.to_dict()
        config[path[0]][path[1]] = changed(value)
        if path in (("data", "root"), ("data", "download"), ("train", "threads"),
                    ("train", "gpus_per_run")):
            assert config_hash(config, run.activation, run.seed) == base
        else:
            assert config_hash(config, run.activation, run.seed) != base, path
            checked += 1
    assert checked == sum(1 for _ in leaves(run.config.to_dict())) - 4
    entry = run.activation
    for other in (ActivationEntry("mish", entry.impl, entry.params, entry.label),
                  ActivationEntry(entry.name, "memeff", entry.params, entry.label),
                  ActivationEntry(entry.name, entry.impl, {"beta": 1.25}, entry.label)):
        assert config_hash(run.config, other, run.seed) != base
    assert config_hash(run.config, entry, 1) != base
    assert config_hash(run.config, ActivationEntry(entry.name, entry.impl, entry.params, "x"), 0) == base


def test_hash_of_the_same_run_written_two_ways_is_equal():
    plain = suite_from_dict({"activations": ["acon_c"], "optim": {"lr": 0.001}}).runs()[0]
    spelled = suite_from_dict({"activations": [{"name": "aconc", "impl": "formula", "params": {"beta": 1}}],
                               "optim": {"lr": "1e-3"}}).runs()[0]
    assert plain.config_hash == spelled.config_hash


# --------------------------------------------------------------------------- data availability


def test_check_available_is_called_for_every_data_set_of_the_sweep(data_available):
    suite_from_dict({"activations": ["relu"], "data": {"root": "/d"},
                     "sweep": {"data.name": ["mnist", "synthetic"], "model.depth": [1, 2]}})
    assert data_available == [("mnist", "/d", False), ("synthetic", "/d", False)]
    data_available.clear()
    suite_from_dict({"activations": ["relu"]}, check_data=False)
    assert data_available == []


def test_missing_data_files_are_a_problem_of_the_suite(monkeypatch):
    def missing(name, root, download=False, **options):
        if name == "mnist":
            raise ActbenchError(f"{name} needs the MNIST IDX files in /nowhere")

    monkeypatch.setattr(data, "check_available", missing)
    problems = problems_of(ROOT / "suites" / "depth.yaml")
    assert problems == ["depth.yaml: data: mnist needs the MNIST IDX files in /nowhere"]
    with pytest.raises(SuiteError, match=r'data: mnist needs .* \(when sweep sets data.name="mnist"\)'):
        suite_from_dict({"activations": ["relu"], "sweep": {"data.name": ["synthetic", "mnist"]}})


# --------------------------------------------------------------------------- shipped suites, docs


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_suite_validates_and_says_what_it_is(path):
    suite = load_suite(path)
    assert suite.name == path.stem
    header = path.read_text().split("\nname:", 1)[0]
    for part in ("Mirrors:", "Expected run time:", "Data:"):
        assert part in header, part
    runs = suite.runs()
    stated = re.search(r"= (\d+) (?:short )?runs", header)
    assert stated and int(stated.group(1)) == len(runs)
    json.dumps(suite.resolved())


def test_the_shipped_suites_are_the_promised_ones():
    assert {p.stem for p in SHIPPED} >= {"quick", "cifar10", "cifar100", "depth", "width", "noise",
                                          "optimizers", "lr", "init", "dropout", "schedulers", "mixup"}
    quick = load_suite("quick")
    assert quick.config.to_dict()["data"]["name"] == "mnist1d" and quick.sweep == {"model.name": ["mlp", "cnn1d"]}
    assert [a.name for a in quick.activations] == ["relu", "silu", "gelu", "mish", "acon_c"]
    cifar = load_suite("cifar10")
    assert cifar.config.to_dict()["model"]["name"] == "resnet" and cifar.config.to_dict()["model"]["depth"] == 20
    assert [a.name for a in cifar.activations] == ["relu", "leaky_relu", "silu", "gelu", "mish", "acon_c",
                                                   "meta_acon"]
    for name, key in (("depth", "model.depth"), ("width", "model.width"), ("optimizers", "optim.name"),
                      ("lr", "optim.lr"), ("init", "model.init"), ("dropout", "model.dropout"),
                      ("schedulers", "schedule.name"), ("mixup", "train.mixup")):
        assert list(load_suite(name).sweep) == [key], name
    assert load_suite("noise").config.to_dict()["eval"]["noise"]
    depths = load_suite("depth").sweep["model.depth"]
    assert depths[0] == 5 and depths[-1] == 25


def test_resolved_is_plain_data():
    suite = load_suite("quick")
    resolved = json.loads(json.dumps(suite.resolved()))
    assert resolved["num_runs"] == len(suite.runs()) == 30
    assert resolved["activations"][0] == {"name": "relu", "impl": "native", "params": {}, "label": "relu"}
    assert resolved["config"] == suite.config.to_dict() and resolved["sweep"] == suite.sweep


def test_docs_describe_every_key_and_every_shipped_suite():
    text = DOCS.read_text()
    for section, keys in suite_module.schema().items():
        for key in keys:
            assert f"`{key}`" in text or f"`{section}.{key}`" in text, f"{section}.{key}"
    for key in suite_module.TOP_LEVEL_KEYS:
        assert f"`{key}`" in text, key
    for path in SHIPPED:
        assert f"`{path.name}`" in text, path.name
    for flag in ("--set", "--seeds", "--act", "--device"):
        assert flag in text


def test_the_docs_examples_are_valid_suites():
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        suite_from_dict(yaml.safe_load(block))


@pytest.mark.parametrize("text, message", [
    ("model: {name: cnn1d}\ndata: {name: synthetic, shape: [3, 8, 8]}\n",
     "model.name: cnn1d takes 1-D signals"),
    ("model: {name: resnet}\ndata: {name: mnist1d}\n", "model.name: resnet takes images"),
    ("train: {augment: true}\ndata: {name: mnist1d}\n", "train.augment: mnist1d has no standard"),
])
def test_model_and_data_must_fit_each_other(tmp_path, text, message):
    problems = problems_of(write(tmp_path, "activations: [relu]\n" + text))
    assert any(message in problem for problem in problems), problems


# --------------------------------------------------------------------------- import paths stay data
FACTORY_CALLS: list = []


def recording_factory(channels=None):
    """A user's factory that records every call (checking a suite must make none)."""
    import torch

    FACTORY_CALLS.append(channels)
    return torch.nn.ReLU()


def test_checking_a_suite_runs_no_code_its_import_paths_name():
    FACTORY_CALLS.clear()
    suite = suite_from_dict({"activations": ["tests.train.test_suite:recording_factory",
                                             "torch.nn.functional:mish"], "seeds": [0]})
    assert len(suite.runs()) == 2 and FACTORY_CALLS == []


def test_a_factory_that_cannot_take_the_options_is_refused_from_its_signature():
    FACTORY_CALLS.clear()
    with pytest.raises(SuiteError, match=r"recording_factory\(channels=None\) cannot take \['beta'\]"):
        suite_from_dict({"activations": [{"name": "tests.train.test_suite:recording_factory",
                                          "params": {"beta": 2.0}}]})
    assert FACTORY_CALLS == []


@pytest.mark.parametrize("path", ["os:__class__", "os.path:join.__globals__", "__main__:x"])
def test_an_import_path_may_not_name_dunder_attributes(path):
    with pytest.raises(SuiteError, match="may not name dunder attributes"):
        suite_from_dict({"activations": [path]})

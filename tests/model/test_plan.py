"""make_model_plan: the references added once, options checked, configurations and groups."""

import pytest

from actbench.errors import ActbenchError, UnknownNameError
from actbench.model.plan import MAX_BATCH, groups, make_model_plan, parse_batch_sizes
from actbench.model.step import StepSetup


def plan(activations=None, **kwargs):
    return make_model_plan("mlp", activations, **{"devices": ["cpu"], "modes": ["infer"], **kwargs})


def labels(p):
    return [c.activation.label for c in p.configs]


def test_identity_and_the_baseline_come_first():
    p = plan(["silu,mish"])
    assert labels(p) == ["identity", "relu", "silu", "mish"]
    assert p.baseline_label == "relu"
    assert [c.activation.spec.name for c in p.configs] == ["identity", "relu", "silu", "mish"]


def test_the_default_activations_measure_relu_once():
    assert labels(plan()) == ["identity", "relu", "silu", "mish"]


@pytest.mark.parametrize("given, expected, baseline", [
    (["relu"], ["identity", "relu"], "relu"),
    (["ReLU,silu"], ["identity", "ReLU", "silu"], "ReLU"),
    (["linear", "relu"], ["linear", "relu"], "relu"),
    (["none,ReLU,mish"], ["none", "ReLU", "mish"], "ReLU"),
    (["silu", "identity"], ["relu", "silu", "identity"], "relu"),
])
def test_identity_and_relu_are_added_once_even_under_an_alias(given, expected, baseline):
    p = plan(given)
    assert labels(p) == expected and p.baseline_label == baseline
    assert sum(c.activation.spec.name == "identity" for c in p.configs) == 1
    assert sum(c.activation.spec.name == "relu" for c in p.configs) == 1


def test_another_baseline_is_added_instead_of_relu():
    p = plan(["mish"], baseline="silu")
    assert labels(p) == ["identity", "silu", "mish"] and p.baseline_label == "silu"


def test_no_baseline_adds_only_identity():
    p = plan(["mish"], baseline=None)
    assert labels(p) == ["identity", "mish"] and p.baseline_label is None


@pytest.mark.parametrize("baseline", ["identity", "linear"])
def test_identity_as_the_baseline_is_measured_once(baseline):
    p = plan(["relu"], baseline=baseline)
    assert sum(c.activation.spec.name == "identity" for c in p.configs) == 1
    assert len({c.key for c in p.configs}) == len(p.configs)


def test_implementations_apply_to_what_was_asked_and_the_references_take_their_defaults():
    p = plan(["silu"], impl="native,formula")
    assert [(c.activation.label, c.impl) for c in p.configs] == [
        ("identity", "native"), ("relu", "native"), ("silu", "native"), ("silu", "formula")]


def test_configurations_are_every_combination_with_their_key_cells():
    p = make_model_plan("mlp", ["silu"], devices=["cpu"], dtypes=["float32,bfloat16"],
                        batch_sizes=["4", "16"], modes=["infer,train"], sample_shape=(40,))
    assert len(p.configs) == 3 * 2 * 2 * 2 and p.devices == ["cpu"]
    config = next(c for c in p.configs if c.activation.label == "silu" and c.setup.dtype == "bfloat16"
                  and c.setup.batch_size == 16 and c.setup.mode == "train")
    assert config.key == ("mlp", "silu", "native", "cpu", "bfloat16", "false", "16", "train",
                          "false", "false", "16x40")
    assert config.label == "silu/native train batch 16"
    assert config.setup == StepSetup("cpu", "bfloat16", False, 16, "train", False, False)
    assert len({c.key for c in p.configs}) == len(p.configs)


def test_the_flags_are_in_the_key():
    p = make_model_plan("cnn", ["relu"], devices=["cpu"], amp=True, batch_sizes=["2"],
                        modes=["train"], channels_last=True, compile=True, sample_shape=(3, 8, 8))
    assert p.configs[0].key == ("cnn", "identity", "native", "cpu", "float32", "true", "2", "train",
                                "true", "true", "2x3x8x8")


def test_options_that_would_not_take_effect_are_refused():
    with pytest.raises(ActbenchError, match="--channels-last lays out images"):
        make_model_plan("mlp", ["relu"], devices=["cpu"], channels_last=True, sample_shape=(40,))
    with pytest.raises(ActbenchError, match="compiles one model class at most 8 times"):
        make_model_plan("mlp", ["relu,silu,mish,gelu,elu,selu,celu,tanh"], devices=["cpu"],
                        compile=True, modes=["train"], sample_shape=(40,))
    assert len(make_model_plan("mlp", ["silu,mish,gelu,elu,selu,celu"], devices=["cpu"],
                               compile=True, modes=["train"], sample_shape=(40,)).configs) == 8


def test_modes_default_to_both_and_are_checked():
    assert {c.setup.mode for c in make_model_plan("mlp", ["relu"], devices=["cpu"]).configs} == {
        "infer", "train"}
    assert {c.setup.mode for c in plan(["relu"], modes=["TRAIN"]).configs} == {"train"}
    with pytest.raises(UnknownNameError, match="unknown mode 'fwd'"):
        plan(["relu"], modes=["fwd"])
    with pytest.raises(ActbenchError, match="--mode was given but names nothing"):
        plan(["relu"], modes=[""])


def test_amp_with_a_dtype_is_refused():
    with pytest.raises(ActbenchError, match="--amp runs a float32 model under autocast"):
        plan(["relu"], amp=True, dtypes=["bfloat16"])
    with pytest.raises(ActbenchError, match="--amp"):
        plan(["relu"], amp=True, dtypes=["float32,float16"])
    assert all(c.setup.amp and c.setup.dtype == "float32"
               for c in plan(["relu"], amp=True, dtypes=["float32"]).configs)


def test_an_unknown_dtype_is_refused():
    with pytest.raises(UnknownNameError, match="unknown dtype 'float64'"):
        plan(["relu"], dtypes=["float64"])


def test_batch_sizes_are_parsed_in_order_without_repeats():
    assert parse_batch_sizes(None) == [32]
    assert parse_batch_sizes(["8,1", "8", "32"]) == [8, 1, 32]
    assert parse_batch_sizes([str(MAX_BATCH)]) == [MAX_BATCH]
    assert [c.setup.batch_size for c in plan(["relu"], batch_sizes=["2,4"]).configs] == [2, 2, 4, 4]


@pytest.mark.parametrize("text, message", [
    ("0", "out of range"), ("-3", "out of range"), (str(MAX_BATCH + 1), "out of range"),
    ("x", "'x' is not a whole number"), ("2.5", "'2.5' is not a whole number"),
])
def test_bad_batch_sizes_are_refused(text, message):
    with pytest.raises(ActbenchError, match=message):
        parse_batch_sizes([text])
    with pytest.raises(ActbenchError, match=message):
        plan(["relu"], batch_sizes=["4", text])


def test_an_empty_batch_size_is_refused():
    with pytest.raises(ActbenchError, match="--batch-size was given but names nothing"):
        parse_batch_sizes([""])


def test_an_unknown_activation_is_refused():
    with pytest.raises(UnknownNameError, match="unknown activation 'mishh'"):
        plan(["mishh"])


def test_devices_are_resolved_once_each():
    p = make_model_plan("mlp", ["relu"], devices=["auto,cpu"], modes=["infer"],
                        resolve=lambda name: "cpu")
    assert p.devices == ["cpu"] and len(p.configs) == 2


def test_groups_hold_one_setup_each_with_every_activation_in_plan_order():
    p = make_model_plan("mlp", ["silu", "mish"], devices=["cpu"], batch_sizes=["2,4"],
                        modes=["infer,train"])
    found = groups(p.configs)
    assert len(found) == 4
    assert [(g[0].setup.batch_size, g[0].setup.mode) for g in found] == [
        (2, "infer"), (2, "train"), (4, "infer"), (4, "train")]
    for group in found:
        assert [c.activation.label for c in group] == ["identity", "relu", "silu", "mish"]
        assert len({c.setup for c in group}) == 1
    assert sorted(c.key for g in found for c in g) == sorted(c.key for c in p.configs)

"""Turning options into configurations, and every bad input refused before measuring."""

import pytest

from actbench.errors import ActbenchError
from actbench.micro.plan import (DEFAULT_ACTIVATIONS, make_plan, parse_shape, parse_size,
                                 resolve_device)


@pytest.mark.parametrize("text, value", [("1048576", 2**20), ("2^20", 2**20), ("2**16", 2**16),
                                         ("1M", 2**20), ("64K", 65536), ("3", 3)])
def test_sizes(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["0", "-5", "abc", "2^", "1.5", ""])
def test_bad_sizes(text):
    with pytest.raises(ActbenchError, match="size"):
        parse_size(text)


def test_shapes():
    assert parse_shape("16x10x256x256") == (16, 10, 256, 256)
    assert parse_shape("(4, 8)") == (4, 8)


@pytest.mark.parametrize("text", ["16xx", "axb", "0x4", "4x-1", "x"])
def test_bad_shapes(text):
    with pytest.raises(ActbenchError, match="shape"):
        parse_shape(text)


def test_default_plan_is_the_papers_set_at_three_sizes_and_the_mish_table_shape():
    plan = make_plan(devices=["cpu"])
    labels = {c.activation.label for c in plan.configs}
    assert labels == set(DEFAULT_ACTIVATIONS)
    numels = {c.numel for c in plan.configs}
    assert numels == {2**16, 2**20, 2**24, 16 * 10 * 256 * 256}
    assert {c.pass_ for c in plan.configs} == {"fwd", "bwd", "fwdbwd"}
    assert len(plan.configs) == len(DEFAULT_ACTIVATIONS) * 4 * 3
    assert all(c.dtype == "float32" and c.impl == c.activation.spec.default_impl
               for c in plan.configs)


def test_impl_all_and_comma_lists():
    plan = make_plan(["mish", "relu,silu"], impl="all", devices=["cpu"], sizes=["1024"],
                     passes=["fwd"])
    mish = sorted(c.impl for c in plan.configs if c.activation.label == "mish")
    assert mish == sorted(["native", "formula", "memeff", "compiled", "fast"])
    assert {c.activation.label for c in plan.configs} == {"mish", "relu", "silu"}


def test_an_impl_an_activation_lacks_falls_back_to_its_default():
    plan = make_plan(["mish,relu"], impl="memeff", devices=["cpu"], sizes=["1024"], passes=["fwd"])
    impls = {c.activation.label: c.impl for c in plan.configs}
    assert impls == {"mish": "memeff", "relu": "native"}


def test_channelwise_sizes_are_laid_out_with_channels():
    plan = make_plan(["acon_c"], devices=["cpu"], sizes=["2^16"], passes=["fwd"])
    assert plan.configs[0].shape == (4, 64, 256)
    assert plan.configs[0].shape_text == "4x64x256"


def test_groups_share_a_tensor_per_device_dtype_and_size():
    plan = make_plan(["relu,acon_c"], devices=["cpu"], sizes=["2^16"], passes=["fwd", "bwd"])
    assert len({c.group for c in plan.configs}) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"activations": ["mihs"]}, "mish"),
    ({"impl": "fast-ish"}, "implementation"),
    ({"dtypes": ["float8"]}, "dtype"),
    ({"passes": ["forward"]}, "pass"),
    ({"sizes": ["-1"]}, "size"),
    ({"shapes": ["3xx"]}, "shape"),
])
def test_bad_options(kwargs, message):
    kwargs.setdefault("devices", ["cpu"])
    with pytest.raises(ActbenchError, match=message):
        make_plan(**kwargs)


def test_cuda_without_cuda_says_so(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ActbenchError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ActbenchError, match="unknown device"):
        resolve_device("tpu")


def test_auto_is_cpu_without_accelerators(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


def test_expressions_with_commas_stay_whole():
    plan = make_plan(["x * clamp(x, 0, 1),relu"], devices=["cpu"], sizes=["64"], passes=["fwd"])
    assert [c.activation.label for c in plan.configs] == ["x * clamp(x, 0, 1)", "relu"]


def test_the_same_configuration_named_twice_is_measured_once():
    plan = make_plan(["relu"], devices=["cpu"], sizes=["1M", "2^20"], shapes=["1048576"],
                     passes=["fwd"])
    assert len(plan.configs) == 1


def test_the_baseline_is_added_when_missing():
    plan = make_plan(["mish"], devices=["cpu"], sizes=["64"], passes=["fwd"], baseline="relu")
    assert [(c.activation.label, c.impl) for c in plan.configs] == [("mish", "native"),
                                                                    ("relu", "native")]
    plan = make_plan(["mish,relu"], devices=["cpu"], sizes=["64"], passes=["fwd"], baseline="relu")
    assert len(plan.configs) == 2


def test_an_empty_act_is_refused_not_taken_for_the_default_set():
    with pytest.raises(ActbenchError, match="--act was given but names no activation"):
        make_plan(["", " , "])


def test_a_size_past_what_torch_can_index_is_a_usage_error():
    with pytest.raises(ActbenchError, match=r"size 2\^64 \(18446744073709551616 elements\) is larger"):
        make_plan(["relu"], sizes=["2^64"], devices=["cpu"])
    assert make_plan(["relu"], sizes=["2^20"], devices=["cpu"]).configs


def test_an_implementation_one_activation_lacks_names_the_ones_it_has():
    with pytest.raises(ActbenchError, match="relu has no 'memeff' implementation; it has native, "):
        make_plan(["relu"], impl="memeff", devices=["cpu"])

"""Activation modules behave like ordinary nn.Modules: copy, pickle, move, repr."""

import copy
import io

import pytest
import torch

import actbench

CASES = [(name, impl) for name in actbench.activations() for impl in actbench.implementations(name)]


@pytest.mark.parametrize("name, impl", CASES)
def test_deepcopy_and_pickle_round_trip(name, impl):
    module = actbench.activation(name, impl=impl, channels=3, seed=1).eval()
    restored = torch.load(_saved(module), weights_only=False)
    clone = copy.deepcopy(module)
    for other in (restored, clone):
        assert type(other) is type(module)
        assert other.state_dict().keys() == module.state_dict().keys()
        for key, value in module.state_dict().items():
            torch.testing.assert_close(other.state_dict()[key], value)
    if impl not in ("compiled", "fast"):  # calling would compile; covered in their own tests
        x = torch.randn(4, 3, 5)
        torch.testing.assert_close(restored(x), module(x))
        torch.testing.assert_close(clone(x), module(x))


def _saved(module):
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    return buffer


def test_repr_names_activation_and_implementation():
    assert "mish, impl=memeff" in repr(actbench.activation("mish", impl="memeff"))
    assert "channels=16" in repr(actbench.activation("acon_c", channels=16))


def test_parameters_follow_dtype_conversion():
    module = actbench.activation("acon_c", channels=2, seed=0).double()
    assert all(p.dtype == torch.float64 for p in module.parameters())
    assert module(torch.randn(3, 2, dtype=torch.float64)).dtype == torch.float64


def test_channel_mismatch_is_a_clear_error():
    module = actbench.activation("acon_c", channels=4)
    with pytest.raises(actbench.errors.ActbenchError, match=r"built for 4 channels.*\(2, 3\)"):
        module(torch.randn(2, 3))

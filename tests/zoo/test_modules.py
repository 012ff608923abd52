"""Activation modules behave like ordinary nn.Modules: copy, pickle, move, repr."""

import copy
import io
import pickle
import sys

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
        x = torch.randn(4, 3, 6)  # an even last dim, which gated activations split in two
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


FUNCTION_CASES = [(name, impl) for name in actbench.activations()
                  for impl in ("memeff", "fast") if impl in actbench.implementations(name)]


@pytest.mark.parametrize("name, impl", FUNCTION_CASES)
def test_autograd_functions_pickle_by_name(name, impl, eager_kernels):
    """memeff and fast modules hold a named autograd Function, found again by its module and name."""
    module = actbench.activation(name, impl=impl, channels=3, seed=1)
    function = getattr(module.fn, "__self__", None)
    if isinstance(function, type):  # an autograd Function's apply (not PyTorch's own op)
        assert issubclass(function, torch.autograd.Function)
        assert getattr(sys.modules[function.__module__], function.__qualname__) is function
    for restored in (pickle.loads(pickle.dumps(module)), torch.load(_saved(module), weights_only=False)):
        assert restored.fn == module.fn
        x = torch.randn(4, 3, 6, requires_grad=True)
        y, restored_y = module(x), restored(x)
        torch.testing.assert_close(restored_y, y)
        torch.testing.assert_close(torch.autograd.grad(restored_y.sum(), x)[0],
                                   torch.autograd.grad(y.sum(), x)[0])

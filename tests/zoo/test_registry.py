"""Name lookup: zoo names, aliases, import paths, registered factories, and their errors."""

import pytest
import torch
from torch import nn

import actbench
from actbench.errors import ActbenchError, UnknownNameError
from actbench.zoo import registry


class Star(nn.Module):
    """A custom activation with an option and an optional channel count."""

    def __init__(self, channels=None, scale=1.0):
        super().__init__()
        self.channels = channels
        self.scale = scale

    def forward(self, x):
        return self.scale * torch.relu(x) ** 2


def make_star(channels=None):
    return Star(channels, scale=3.0)


def test_every_zoo_member_of_the_issue_is_present():
    expected = {"identity", "relu", "leaky_relu", "prelu", "relu6", "elu", "selu", "celu", "gelu",
                "gelu_tanh", "quick_gelu", "silu", "swish", "mish", "softplus", "tanh", "sigmoid",
                "hardswish", "hardsigmoid", "hard_mish", "tanhexp", "serf", "logish", "acon_a",
                "acon_b", "acon_c", "meta_acon", "relu2", "star_relu", "glu", "reglu", "geglu",
                "geglu_tanh", "swiglu", "bilinear"}
    assert set(actbench.activations()) == expected


def test_default_implementation_prefers_native_then_formula():
    assert registry.lookup("mish").default_impl == "native"
    assert registry.lookup("serf").default_impl == "formula"
    assert registry.lookup("acon_c").default_impl == "formula"
    assert registry.lookup("hard_mish").default_impl == "formula"
    assert type(actbench.activation("mish").fn).__name__ != "LazilyCompiled"


@pytest.mark.parametrize("text, name", [("MISH", "mish"), ("Leaky-ReLU", "leaky_relu"),
                                        ("gelu_erf", "gelu"), ("swish1", "silu"), ("acon", "acon_c")])
def test_names_are_case_insensitive_with_aliases(text, name):
    assert registry.lookup(text).name == name


def test_unknown_name_lists_the_closest_names():
    with pytest.raises(UnknownNameError, match="did you mean mish"):
        registry.lookup("mihs")
    with pytest.raises(UnknownNameError, match="unknown activation 'zzzz'; known: "):
        registry.lookup("zzzz")


def test_import_path_to_a_module_class_with_options():
    x = torch.linspace(-2, 2, 5)
    module = actbench.activation("torch.nn:LeakyReLU", negative_slope=0.5)
    assert isinstance(module, nn.LeakyReLU)
    torch.testing.assert_close(module(x), torch.where(x > 0, x, 0.5 * x))


def test_import_path_to_a_tensor_function_is_wrapped():
    x = torch.linspace(-3, 3, 13)
    module = actbench.activation("torch.nn.functional:mish")
    torch.testing.assert_close(module(x), x * torch.tanh(torch.log1p(torch.exp(x))))


def test_import_path_to_a_factory_gets_channels():
    module = actbench.activation(f"{__name__}:make_star", channels=8)
    assert isinstance(module, Star) and module.channels == 8 and module.scale == 3.0


@pytest.mark.parametrize("path, message", [
    ("torch.nn:NoSuchThing", "has no attribute 'NoSuchThing'"),
    ("no_such_package.mod:f", "cannot import 'no_such_package.mod'"),
    ("math:pi", "is not callable"),
])
def test_bad_import_paths(path, message):
    with pytest.raises(ActbenchError, match=message):
        actbench.activation(path)


def test_register_a_class_and_build_it(clean_registry):
    actbench.register("star", Star)
    assert "star" in actbench.activations()
    assert actbench.implementations("STAR") == ["custom"]
    module = actbench.activation("star", channels=4, scale=2.0)
    assert module.channels == 4 and module.scale == 2.0
    with pytest.raises(ActbenchError, match="already registered"):
        actbench.register("star", Star)
    actbench.register("star", make_star, overwrite=True)
    assert actbench.activation("star").scale == 3.0


@pytest.mark.parametrize("name, factory, message", [
    ("bad name", Star, "must be an identifier"),
    ("notcallable", 42, "must be callable"),
])
def test_register_refuses_bad_arguments(clean_registry, name, factory, message):
    with pytest.raises(ActbenchError, match=message):
        actbench.register(name, factory)


def test_registered_factory_must_return_a_module(clean_registry):
    actbench.register("notamodule", lambda channels=None: 3)
    with pytest.raises(ActbenchError, match="expected a torch.nn.Module"):
        actbench.activation("notamodule")


def test_options_are_checked():
    with pytest.raises(ActbenchError, match="accepted options: negative_slope"):
        actbench.activation("leaky_relu", slope=0.2)
    with pytest.raises(ActbenchError, match="must be a number"):
        actbench.activation("elu", alpha="big")
    with pytest.raises(ActbenchError, match="channels must be a positive integer"):
        actbench.activation("acon_c", channels=0)


def test_did_you_mean_names_only_what_list_shows():
    """A typo of an alias (hardmsh for hardmish) is suggested the activation's own name."""
    shown = set(actbench.activations())
    assert registry._aliases, "the zoo has aliases to test with"
    for alias in registry._aliases:
        with pytest.raises(UnknownNameError) as caught:
            registry.lookup(alias[:-1] + "#")
        hint = str(caught.value).split("did you mean ")[-1].rstrip("?")
        suggested = {name.strip() for name in hint.split(",")} if "did you mean" in str(caught.value) else set()
        assert suggested <= shown, (alias, suggested - shown)
    with pytest.raises(UnknownNameError, match="did you mean hard_mish"):
        registry.lookup("hardmsh")

"""MODEL text -> ModelSource: actbench's own models, import paths, timm (faked) and the extras'
install hints; what `build` puts in the activation slots."""

import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from actbench.errors import ActbenchError, UnknownNameError
from actbench.model.source import OWN_MODELS, model_source
from actbench.zoo.modules import ZooActivation

from . import nets


@pytest.mark.parametrize("text, name, shape", [
    ("resnet20", "resnet20", (3, 32, 32)), ("resnet110", "resnet110", (3, 32, 32)),
    ("preact_resnet20", "preact_resnet20", (3, 32, 32)), ("cnn", "cnn", (3, 32, 32)),
    ("deep_fc", "deep_fc", (3, 32, 32)), ("mlp", "mlp", (40,)), ("cnn1d", "cnn1d", (1, 40)),
    ("MLP", "mlp", (40,)), ("Preact-ResNet20", "preact_resnet20", (3, 32, 32)),
])
def test_own_models_resolve_with_their_default_sample_shapes(text, name, shape):
    source = model_source(text)
    assert (source.library, source.name, source.sample_shape, source.num_classes) == (
        "actbench", name, shape, 10)
    assert source.text == name  # one key however it was typed: MLP and mlp resume each other


def test_an_own_model_takes_another_input_shape():
    source = model_source("mlp", (3, 4))
    assert source.sample_shape == (3, 4)
    built = source.build("relu", None, seed=0)
    assert built.module[1].in_features == 12  # Flatten, then Linear(3 * 4, 256)
    assert built.module(torch.randn(2, 3, 4)).shape == (2, 10)


def test_an_own_model_is_built_with_the_activation_in_every_slot():
    built = model_source("mlp").build("silu", None, seed=0)
    in_model = [m for m in built.module.modules() if isinstance(m, ZooActivation)]
    assert len(built.activations) == 3
    assert [id(m) for m in built.activations] == [id(m) for m in in_model]
    assert {m.activation_name for m in built.activations} == {"silu"}
    assert built.left_alone == []
    # the network computes silu where its activations are: Flatten, 3 x (Linear, act), Linear
    layers = [m for m in built.module if isinstance(m, nn.Linear)]
    x = torch.randn(3, 40)
    h = x
    for layer in layers[:-1]:
        h = F.silu(layer(h))
    torch.testing.assert_close(built.module(x), layers[-1](h))


def test_cnn1d_has_one_activation_per_conv_and_one_hidden():
    built = model_source("cnn1d").build("relu", None, seed=0)
    convs = [m for m in built.module.modules() if isinstance(m, nn.Conv1d)]
    assert len(convs) == 3 and len(built.activations) == 4
    assert built.module(torch.randn(2, 1, 40)).shape == (2, 10)


def test_build_is_seeded():
    source = model_source("mlp")
    a, b = source.build("relu", None, 3).module, source.build("relu", None, 3).module
    c = source.build("relu", None, 4).module
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a[1].weight, c[1].weight)


def test_an_unknown_model_names_the_known_ones_in_one_line():
    with pytest.raises(UnknownNameError) as caught:
        model_source("transformer")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("unknown model 'transformer'")
    assert all(name in message for name in OWN_MODELS)


def test_a_near_miss_is_answered_with_the_closest_models():
    with pytest.raises(UnknownNameError, match=r"did you mean .*resnet20"):
        model_source("resnet21")


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_model_is_refused(text):
    with pytest.raises(ActbenchError, match="MODEL is empty.*resnet20.*timm:NAME"):
        model_source(text)


# ---- import paths


def test_an_import_path_model_takes_its_input_shape_and_gets_the_activation():
    source = model_source("tests.model.nets:token_mlp", (nets.TOKENS, nets.DIM))
    assert (source.library, source.name, source.sample_shape, source.num_classes) == (
        "import", "tests.model.nets:token_mlp", (nets.TOKENS, nets.DIM), None)
    built = source.build("silu", None, seed=0)
    model = built.module
    assert isinstance(model, nets.TokenMLP) and built.activations == [model.act]
    assert isinstance(model.act, ZooActivation) and model.act.activation_name == "silu"
    x = torch.randn(2, nets.TOKENS, nets.DIM)
    torch.testing.assert_close(model(x), model.fc2(F.silu(model.fc1(x))))


def test_an_import_path_conv_net_has_both_its_activations_replaced():
    source = model_source("tests.model.nets:conv_net", (3, 8, 8))
    built = source.build("mish", None, seed=0)
    model = built.module
    assert [id(m) for m in built.activations] == [id(model[1]), id(model[3])]
    x = torch.randn(2, 3, 8, 8)
    h = F.mish(model[2](F.mish(model[0](x))))
    torch.testing.assert_close(model(x), model[6](h.mean((2, 3))))


def test_an_import_path_model_needs_an_input_shape():
    with pytest.raises(ActbenchError, match="needs --input-shape") as caught:
        model_source("tests.model.nets:token_mlp")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text", ["tests.model.nets:__dict__", "tests.model.nets:TokenMLP.__init__",
                                  "os:__builtins__", "tests.__init__:token_mlp"])
def test_dunder_import_paths_are_refused(text):
    with pytest.raises(ActbenchError, match="dunder"):
        model_source(text, (4,))


def test_an_import_path_naming_a_non_callable_is_refused():
    with pytest.raises(ActbenchError, match="names a int; expected a class or a function"):
        model_source("tests.model.nets:NOT_CALLABLE", (4,))


@pytest.mark.parametrize("text, message", [
    ("tests.model.nets:no_such_net", "has no attribute 'no_such_net'"),
    ("tests.model.no_such_module:net", "cannot import 'tests.model.no_such_module'"),
])
def test_an_import_path_that_leads_nowhere_is_refused(text, message):
    with pytest.raises(ActbenchError, match=message):
        model_source(text, (4,))


def test_a_functional_activation_is_left_alone_and_said_so():
    built = model_source("tests.model.nets:functional", (4,)).build("silu", None, seed=0)
    assert built.activations == [built.module.act]
    assert len(built.left_alone) == 1 and built.left_alone[0].endswith(
        "(torch.nn.functional.relu: a functional call in forward: not a module, so not replaced)")
    x = torch.randn(3, 4)
    m = built.module
    torch.testing.assert_close(m(x), m.fc2(F.relu(F.silu(m.fc1(x)))))


def test_a_functional_call_in_the_top_forward_names_where_it_is():
    built = model_source("tests.model.nets:functional", (4,)).build("silu", None, seed=0)
    assert re.match(r"\S+ \(torch\.nn\.functional\.relu", built.left_alone[0])


def test_a_factory_that_returns_no_module_is_refused_when_built():
    source = model_source("tests.model.nets:not_a_module", (4,))
    with pytest.raises(ActbenchError, match="gave str; expected an nn.Module"):
        source.build("relu", None, seed=0)


# ---- timm and torchvision, optional extras


@pytest.mark.parametrize("library, hint", [("timm", "pip install 'actbench[timm]'"),
                                           ("torchvision", "pip install 'actbench[torchvision]'")])
def test_a_missing_extra_is_named_with_its_install_command(without, library, hint):
    without("timm", "torchvision")
    with pytest.raises(ActbenchError) as caught:
        model_source(f"{library}:resnet18")
    message = str(caught.value)
    assert hint in message and f"needs {library}, which is not installed" in message
    assert "\n" not in message


def test_a_timm_model_takes_its_pretrained_config(fake_timm):
    source = model_source("timm:fake_vit")
    assert (source.library, source.name, source.sample_shape, source.num_classes) == (
        "timm", "fake_vit", (nets.VIT_TOKENS, nets.VIT_DIM), nets.VIT_CLASSES)
    assert fake_timm.created == []  # resolving builds nothing
    assert model_source("timm:fake_vit", (3, nets.VIT_DIM)).sample_shape == (3, nets.VIT_DIM)


def test_an_unknown_timm_model_is_answered_with_close_ones(fake_timm):
    with pytest.raises(ActbenchError, match="timm has no model 'fake_vitt'; did you mean "
                                            "fake_vit, fake_resnet?"):
        model_source("timm:fake_vitt")


@pytest.mark.parametrize("activation", ["gelu", "meta_acon"])
def test_a_timm_model_gets_the_activation_in_torch_and_timm_slots(fake_timm, activation):
    built = model_source("timm:fake_vit").build(activation, None, seed=0)
    model = built.module
    assert fake_timm.created == ["fake_vit"]
    assert [id(m) for m in built.activations] == [id(model.act1), id(model.act2)]
    assert all(isinstance(m, ZooActivation) for m in built.activations)
    assert isinstance(model.gate, nn.Sigmoid)  # a gate, left alone and said so
    assert len(built.left_alone) == 1 and built.left_alone[0].startswith(
        "gate (torch.nn.modules.activation.Sigmoid: a gate by design")
    assert model(torch.randn(2, nets.VIT_TOKENS, nets.VIT_DIM)).shape == (2, nets.VIT_CLASSES)


def test_a_timm_wildcard_is_not_a_model(fake_timm):
    with pytest.raises(ActbenchError, match=r"fake_\*"):
        model_source("timm:fake_*")

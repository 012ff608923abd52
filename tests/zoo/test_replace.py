"""replace_activations on small CNNs, MLPs and a nested model: counts, types, channels, sharing,
gates, errors, dtype and training mode."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actbench
from actbench.errors import ActbenchError, UnknownNameError
from actbench.zoo.modules import ACON, MetaACON, ZooActivation

TORCH_ACTIVATIONS = (nn.ReLU, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.Mish)


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


def mlp():
    return nn.Sequential(nn.Linear(20, 32), nn.GELU(), nn.Linear(32, 24), nn.SiLU(), nn.Linear(24, 5))


class Block(nn.Module):
    """A nested module with a squeeze-excitation gate (Sigmoid) that must stay a gate."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1), nn.Sigmoid())

    def forward(self, x):
        y = self.act(self.conv(x))
        return y * self.gate(y)


class Net(nn.Module):
    """A custom module: a stem, a ModuleList of blocks, a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.Mish())
        self.blocks = nn.ModuleList([Block(12), Block(12)])
        self.head = nn.Linear(12, 4)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=(2, 3)))


MODELS = [(small_cnn, (2, 3, 8, 8), 2), (mlp, (4, 20), 2), (Net, (2, 3, 8, 8), 3)]
MODEL_IDS = ["cnn", "mlp", "nested"]


def activations_of(model):
    return [m for m in model.modules() if isinstance(m, ZooActivation)]


@pytest.mark.parametrize("impl", [None, "memeff", "formula"])
@pytest.mark.parametrize("factory, inputs, count", MODELS, ids=MODEL_IDS)
def test_replace_by_mish_counts_and_keeps_the_model_working(factory, inputs, count, impl):
    model = factory()
    x = torch.randn(*inputs)
    shape = model(x).shape
    assert actbench.replace_activations(model, "mish", impl=impl) == count
    acts = activations_of(model)
    assert len(acts) == count
    expected_impl = impl or "native"  # the default: PyTorch's own kernel
    assert all(a.activation_name == "mish" and a.impl == expected_impl for a in acts)
    assert not any(isinstance(m, TORCH_ACTIVATIONS) for m in model.modules())
    y = model(x)
    assert y.shape == shape and torch.isfinite(y).all()
    y.sum().backward()


def test_replaced_mlp_computes_mish_where_the_activations_were():
    model = mlp()
    actbench.replace_activations(model, "mish", impl="memeff")
    x = torch.randn(4, 20)
    expected = model[4](F.mish(model[2](F.mish(model[0](x)))))
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize("name, cls", [("acon_c", ACON), ("meta_acon", MetaACON)])
def test_channel_wise_activations_read_their_channels_at_the_first_forward(name, cls):
    cnn = small_cnn()
    assert actbench.replace_activations(cnn, name) == 2
    assert all(isinstance(a, cls) and a.channels is None for a in activations_of(cnn))
    assert cnn(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    assert all(type(a) is cls for a in activations_of(cnn))  # materialised: plain modules again
    assert [a.channels for a in activations_of(cnn)] == [8, 16]
    net = mlp()
    assert actbench.replace_activations(net, name) == 2
    assert net(torch.randn(4, 20)).shape == (4, 5)
    assert [a.channels for a in activations_of(net)] == [32, 24]
    nested = Net()
    assert actbench.replace_activations(nested, name) == 3
    assert nested(torch.randn(2, 3, 8, 8)).shape == (2, 4)
    assert [a.channels for a in activations_of(nested)] == [12, 12, 12]


def test_acon_c_parameters_are_per_channel_after_replacement():
    cnn = small_cnn()
    actbench.replace_activations(cnn, "acon_c", seed=0)
    cnn(torch.randn(2, 3, 8, 8))
    first, second = activations_of(cnn)
    assert first.p1.shape == first.p2.shape == first.beta.shape == (8,)
    assert second.p1.shape == (16,)


def test_gates_are_left_alone_unless_targeted():
    net = Net()
    assert actbench.replace_activations(net, "silu") == 3
    gates = [m for m in net.modules() if isinstance(m, nn.Sigmoid)]
    assert len(gates) == 2 and all(isinstance(b.gate[2], nn.Sigmoid) for b in net.blocks)
    assert actbench.replace_activations(net, "hardsigmoid", targets=(nn.Sigmoid,)) == 2
    assert not any(isinstance(m, nn.Sigmoid) for m in net.modules())
    assert [b.gate[2].activation_name for b in net.blocks] == ["hardsigmoid", "hardsigmoid"]
    assert net(torch.randn(1, 3, 6, 6)).shape == (1, 4)


def test_a_shared_module_stays_shared():
    shared = nn.ReLU()
    model = nn.Sequential(nn.Linear(4, 4), shared, nn.Linear(4, 4), shared)
    assert actbench.replace_activations(model, "acon_c") == 2
    assert model[1] is model[3]
    model(torch.randn(2, 4))
    assert isinstance(model[1], ACON) and model[1].channels == 4
    assert len(activations_of(model)) == 1  # one module, two slots


def test_a_module_shared_by_two_parents_stays_shared():
    shared = nn.GELU()
    left = nn.Sequential(nn.Linear(6, 6), shared)
    right = nn.Sequential(nn.Linear(6, 6), shared)
    model = nn.ModuleDict({"left": left, "right": right})
    assert actbench.replace_activations(model, "mish") == 2
    assert model["left"][1] is model["right"][1]
    assert model["left"][1].activation_name == "mish"


def test_actbench_activations_can_be_replaced_again():
    model = mlp()
    actbench.replace_activations(model, "mish")
    assert actbench.replace_activations(model, "silu", impl="formula") == 2
    assert {(a.activation_name, a.impl) for a in activations_of(model)} == {("silu", "formula")}
    x = torch.randn(3, 20)
    torch.testing.assert_close(model(x), model[4](F.silu(model[2](F.silu(model[0](x))))))


def test_meta_acon_internals_are_not_walked_into():
    model = mlp()
    actbench.replace_activations(model, "meta_acon")
    assert actbench.replace_activations(model, "relu") == 2  # the two meta-ACONs, not their BNs
    assert all(a.activation_name == "relu" for a in activations_of(model))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


class Wrapped(ZooActivation):
    """An actbench activation built from a torch activation inside it."""

    def __init__(self):
        super().__init__("wrapped", "custom", torch.relu)
        self.inner = nn.ReLU()

    def forward(self, x):
        return self.inner(x)


def test_an_actbench_activation_is_replaced_whole_not_walked_into():
    model = nn.Sequential(nn.Linear(4, 4), Wrapped())
    assert actbench.replace_activations(model, "mish") == 1
    assert model[1].activation_name == "mish" and not list(model[1].children())


@pytest.mark.parametrize("name", ["acon_a", "acon_b", "acon_c", "meta_acon"])
def test_channels_come_from_the_data_even_with_no_layer_before(name):
    model = nn.Sequential(nn.ReLU(), nn.Linear(4, 6), nn.ReLU())
    assert actbench.replace_activations(model, name) == 2
    assert model(torch.randn(3, 4)).shape == (3, 6)
    assert [model[0].channels, model[2].channels] == [4, 6]


def test_a_custom_channel_wise_activation_still_takes_the_preceding_layers_channels(clean_registry):
    """A registered channel-wise factory gets channels= as before; none before it is an error."""
    actbench.register("test_replace_scaled", lambda channels: ACON("scaled", "custom",
                      lambda x, p1, p2, beta: x * p1.view(1, -1), channels, "a"),
                      channelwise=True)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU())
    assert actbench.replace_activations(model, "test_replace_scaled") == 1
    assert model[1].channels == 5
    model = nn.Sequential(nn.ReLU(), nn.Linear(4, 4), nn.ReLU())
    with pytest.raises(ActbenchError, match="cannot infer channels for '0'"):
        actbench.replace_activations(model, "test_replace_scaled")
    assert isinstance(model[0], nn.ReLU) and isinstance(model[2], nn.ReLU)  # nothing half-replaced


def test_bad_names_and_options_fail_before_anything_changes():
    model = mlp()
    with pytest.raises(UnknownNameError, match="did you mean mish"):
        actbench.replace_activations(model, "mihs")
    with pytest.raises(UnknownNameError, match="implementation"):
        actbench.replace_activations(model, "mish", impl="turbo")
    with pytest.raises(ActbenchError, match="accepted options"):
        actbench.replace_activations(model, "leaky_relu", slope=0.3)
    assert isinstance(model[1], nn.GELU) and isinstance(model[3], nn.SiLU)


def test_options_reach_every_new_module():
    model = mlp()
    actbench.replace_activations(model, "leaky_relu", negative_slope=0.3)
    x = -torch.ones(1, 32)
    torch.testing.assert_close(model[1](x), 0.3 * x)
    torch.testing.assert_close(model[3](x[:, :24]), 0.3 * x[:, :24])


@pytest.mark.parametrize("name", ["acon_c", "meta_acon", "swish", "prelu"])
def test_new_modules_follow_dtype_and_eval_mode(name):
    model = small_cnn().double().eval()
    actbench.replace_activations(model, name, seed=0)
    acts = activations_of(model)
    assert len(acts) == 2
    assert all(t.dtype == torch.float64 for a in acts for t in (*a.parameters(), *a.buffers())
               if t.is_floating_point())
    assert not any(m.training for a in acts for m in a.modules())
    y = model(torch.randn(2, 3, 8, 8, dtype=torch.float64))
    assert y.dtype == torch.float64


def test_new_modules_follow_training_mode():
    model = small_cnn().train()
    actbench.replace_activations(model, "meta_acon", seed=0)
    assert all(m.training for a in activations_of(model) for m in a.modules())


def test_replaced_model_trains_like_the_native_one():
    """Two optimiser steps with memeff mish give the same loss as PyTorch's own nn.Mish."""
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Linear(8, 16), nn.Mish(), nn.Linear(16, 3))
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    model.load_state_dict(reference.state_dict())
    actbench.replace_activations(model, "mish", impl="memeff")
    x, target = torch.randn(32, 8), torch.randint(0, 3, (32,))
    losses = []
    for net in (reference, model):
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), target)
            loss.backward()
            opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_new_trainable_parameters_reach_the_optimiser():
    model = mlp()
    actbench.replace_activations(model, "acon_c", seed=0)
    names = {n for n, _ in model.named_parameters()}
    assert {"1.p1", "1.p2", "1.beta", "3.p1", "3.p2", "3.beta"} <= names
    model(torch.randn(4, 20)).sum().backward()
    assert model[1].beta.grad is not None and model[3].p1.grad is not None


def test_seeded_replacement_is_reproducible_and_differs_between_layers():
    first, second = mlp(), mlp()
    for model in (first, second):
        actbench.replace_activations(model, "acon_c", seed=7)
        model(torch.randn(2, 20))
    a, b = activations_of(first), activations_of(second)
    assert all(torch.equal(x.p1, y.p1) for x, y in zip(a, b))
    assert not torch.equal(a[0].p1[:24], a[1].p1[:24])


def test_prelu_replacement_keeps_a_token_model_working():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    x = torch.randn(2, 5, 16)  # (batch, tokens, features): dim 1 is not a channel dim
    assert actbench.replace_activations(model, "prelu") == 1
    assert model(x).shape == (2, 5, 4)
    assert model[1].weight.numel() == 1

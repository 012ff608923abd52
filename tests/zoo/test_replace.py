"""replace_activations on small CNNs and MLPs: counts, types, channels, sharing, dtype, mode."""

import pytest
import torch
from torch import nn

import actbench
from actbench.errors import ActbenchError
from actbench.zoo.modules import ZooActivation


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


def activations_of(model):
    return [m for m in model.modules() if isinstance(m, ZooActivation)]


@pytest.mark.parametrize("factory, inputs, count", [(small_cnn, (2, 3, 8, 8), 2), (mlp, (4, 20), 2),
                                                    (Net, (2, 3, 8, 8), 3)])
def test_replace_by_mish_counts_and_keeps_the_model_working(factory, inputs, count):
    model = factory()
    x = torch.randn(*inputs)
    shape = model(x).shape
    assert actbench.replace_activations(model, "mish", impl="memeff") == count
    acts = activations_of(model)
    assert len(acts) == count
    assert all(a.activation_name == "mish" and a.impl == "memeff" for a in acts)
    assert not any(isinstance(m, (nn.ReLU, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.Mish)) for m in model.modules())
    assert model(x).shape == shape


def test_channel_wise_activations_get_the_preceding_layers_channels():
    cnn = small_cnn()
    assert actbench.replace_activations(cnn, "acon_c") == 2
    assert [a.channels for a in activations_of(cnn)] == [8, 16]
    assert cnn(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    net = mlp()
    actbench.replace_activations(net, "meta_acon")
    assert [a.channels for a in activations_of(net)] == [32, 24]
    assert net(torch.randn(4, 20)).shape == (4, 5)


def test_gates_are_left_alone_unless_targeted():
    net = Net()
    actbench.replace_activations(net, "silu")
    assert sum(isinstance(m, nn.Sigmoid) for m in net.modules()) == 2
    assert actbench.replace_activations(net, "hardsigmoid", targets=(nn.Sigmoid,)) == 2
    assert not any(isinstance(m, nn.Sigmoid) for m in net.modules())


def test_a_shared_module_stays_shared():
    shared = nn.ReLU()
    model = nn.Sequential(nn.Linear(4, 4), shared, nn.Linear(4, 4), shared)
    assert actbench.replace_activations(model, "acon_c") == 2
    assert model[1] is model[3]


def test_actbench_activations_can_be_replaced_again():
    model = mlp()
    actbench.replace_activations(model, "mish")
    assert actbench.replace_activations(model, "silu", impl="formula") == 2
    assert {(a.activation_name, a.impl) for a in activations_of(model)} == {("silu", "formula")}


def test_meta_acon_internals_are_not_walked_into():
    model = mlp()
    actbench.replace_activations(model, "meta_acon")
    assert actbench.replace_activations(model, "relu") == 2  # the two meta-ACONs, not their BNs
    assert all(a.activation_name == "relu" for a in activations_of(model))


def test_channels_that_cannot_be_inferred_are_an_error():
    model = nn.Sequential(nn.ReLU(), nn.Linear(4, 4))
    with pytest.raises(ActbenchError, match="cannot infer channels for '0'"):
        actbench.replace_activations(model, "acon_c")
    assert isinstance(model[0], nn.ReLU)  # nothing half-replaced before the error
    assert actbench.replace_activations(model, "mish") == 1  # pointwise ones need no channels


def test_unknown_names_fail_before_anything_changes():
    model = mlp()
    with pytest.raises(ActbenchError, match="did you mean mish"):
        actbench.replace_activations(model, "mihs")
    assert isinstance(model[1], nn.GELU)


def test_new_modules_follow_dtype_and_mode():
    model = small_cnn().double().eval()
    actbench.replace_activations(model, "acon_c", seed=0)
    acts = activations_of(model)
    assert all(p.dtype == torch.float64 for a in acts for p in a.parameters())
    assert not any(a.training for a in acts)
    assert model(torch.randn(2, 3, 8, 8, dtype=torch.float64)).dtype == torch.float64


def test_replaced_model_trains_like_the_native_one():
    """One optimiser step with memeff mish gives the same loss as PyTorch's own nn.Mish."""
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
            loss = nn.functional.cross_entropy(net(x), target)
            loss.backward()
            opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_seeded_replacement_is_reproducible_and_differs_between_layers():
    first, second = mlp(), mlp()
    for model in (first, second):
        actbench.replace_activations(model, "acon_c", seed=7)
    a, b = activations_of(first), activations_of(second)
    assert all(torch.equal(x.p1, y.p1) for x, y in zip(a, b))
    assert not torch.equal(a[0].p1[:24], a[1].p1[:24])

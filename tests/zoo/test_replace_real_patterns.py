"""replace_activations on the patterns of real networks (plain-torch copies of them): a
pre-activation block whose shortcut is registered first, token MLPs, channels-last ConvNeXt
blocks, other libraries' activation classes; dry runs; the ACON authors' state dicts."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actbench
from actbench.errors import ActbenchWarning
from actbench.zoo import replace as replace_module
from actbench.zoo.modules import ACON, MetaACON, ZooActivation
from actbench.zoo.registry import lookup, names

CHANNELWISE = [name for name in names() if lookup(name).channelwise]


class PreActBlock(nn.Module):
    """ResNet v2 block: the 1x1 shortcut conv (8 -> 16) is registered before bn1/act1 (8 channels)."""

    def __init__(self):
        super().__init__()
        self.shortcut = nn.Conv2d(8, 16, 1)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.ReLU()
        self.conv1 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.act2 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x):
        out = self.act1(self.bn1(x))
        shortcut = self.shortcut(out)
        return self.conv2(self.act2(self.bn2(self.conv1(out)))) + shortcut


class TokenMLP(nn.Module):
    """A transformer MLP on (N, L, D) tokens."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.fc1 = nn.Linear(16, 64)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(64, 16)

    def forward(self, x):
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class ConvNeXtBlock(nn.Module):
    """Depthwise conv on (N, C, H, W), then LayerNorm and Linear layers on (N, H, W, C)."""

    def __init__(self):
        super().__init__()
        self.dwconv = nn.Conv2d(8, 8, 7, padding=3, groups=8)
        self.norm = nn.LayerNorm(8)
        self.pwconv1 = nn.Linear(8, 32)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(32, 8)

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


PATTERNS = [(PreActBlock, (2, 8, 14, 14), [8, 16], [1, 1]),
            (TokenMLP, (2, 5, 16), [64], [-1]),
            (ConvNeXtBlock, (2, 8, 6, 6), [32], [-1])]
PATTERN_IDS = ["preact", "tokens", "convnext"]


def activations_of(model):
    return [m for m in model.modules() if isinstance(m, ZooActivation)]


@pytest.mark.parametrize("impl", ["formula", "memeff"])
@pytest.mark.parametrize("name", CHANNELWISE)
@pytest.mark.parametrize("factory, shape, channels, axes", PATTERNS, ids=PATTERN_IDS)
def test_every_channel_wise_activation_trains_on_each_pattern(factory, shape, channels, axes,
                                                              name, impl):
    torch.manual_seed(0)
    model = factory()
    plan = actbench.replace_activations(model, name, impl=impl, dry_run=True)
    assert [r.axis for r in plan if r.new] == axes
    assert actbench.replace_activations(model, name, impl=impl, seed=0) == len(channels)
    x = torch.randn(*shape)
    model(x).square().mean().backward()  # materialises the parameters
    acts = activations_of(model)
    assert [a.channels for a in acts] == channels
    assert all(p.grad is not None for a in acts for p in a.parameters())
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)  # built after one forward
    before = [p.detach().clone() for a in acts for p in a.parameters()]
    for _ in range(2):
        optimiser.zero_grad()
        loss = model(x).square().mean()
        loss.backward()
        optimiser.step()
    after = [p.detach() for a in acts for p in a.parameters()]
    assert any(not torch.equal(b, a) for b, a in zip(before, after))
    assert torch.isfinite(loss)


def test_channels_last_acon_is_per_channel_on_the_last_dim():
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU())
    actbench.replace_activations(model, "acon_c", seed=0)
    x = torch.randn(2, 3, 6, dtype=torch.float64)
    model.double()
    y = model(x)
    act, h = model[1], model[0](x)
    expected = (act.p1 - act.p2) * h * torch.sigmoid(act.beta * (act.p1 - act.p2) * h) + act.p2 * h
    torch.testing.assert_close(y, expected)


def test_channel_dim_overrides_the_rule_and_mismatches_are_reported():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
    actbench.replace_activations(model, "acon_c", channel_dim=-1)
    assert model(torch.randn(2, 3, 5, 7)).shape == (2, 4, 5, 7)
    assert model[1].channels == 7
    with pytest.raises(actbench.errors.ActbenchError, match="built for 7 channels"):
        model(torch.randn(2, 3, 5, 6))


def make_fake_timm_class(name, module="timm.layers.activations"):
    def forward(self, x):
        return torch.nn.functional.gelu(x)

    cls = type(name, (nn.Module,), {"forward": forward})
    cls.__module__, cls.__qualname__ = module, name
    return cls


def test_other_libraries_activation_classes_are_replaced_by_qualified_name():
    gelu, hard_mish = make_fake_timm_class("GELU"), make_fake_timm_class("HardMishMe", "timm.layers.activations_me")
    sigmoid = make_fake_timm_class("Sigmoid")
    subclass = type("MyGELU", (gelu,), {})
    model = nn.Sequential(nn.Linear(4, 4), gelu(), hard_mish(), subclass(), sigmoid())
    assert actbench.replace_activations(model, "mish") == 3
    assert [type(m).__name__ for m in model] == ["Linear", "Elementwise", "Elementwise",
                                                 "Elementwise", "Sigmoid"]
    assert actbench.replace_activations(model, "hardsigmoid",
                                        targets=("timm.layers.activations.Sigmoid",)) == 1
    assert model[4].activation_name == "hardsigmoid"


def test_nothing_to_replace_warns_and_names_what_was_left_alone():
    class ScaledAct(nn.Module):
        def forward(self, x):
            return 2 * x

    model = nn.Sequential(nn.Linear(4, 8), nn.GLU(), ScaledAct(), nn.Linear(4, 4), nn.Sigmoid())
    with pytest.warns(ActbenchWarning, match=r"replaced nothing.*'1'.*GLU.*gate.*'2'.*ScaledAct.*unknown"):
        assert actbench.replace_activations(model, "mish") == 0
    with pytest.warns(ActbenchWarning, match="no activation module found"):
        actbench.replace_activations(nn.Sequential(nn.Linear(2, 2)), "mish")


def test_an_unknown_activation_like_class_is_reported_even_when_others_are_replaced():
    class MyAct(nn.Module):
        def forward(self, x):
            return x

    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), MyAct())
    with pytest.warns(ActbenchWarning, match=r"replaced 1 module.*'2'.*MyAct"):
        actbench.replace_activations(model, "mish")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        actbench.replace_activations(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), "mish")


def test_dry_run_returns_the_plan_and_changes_nothing():
    model = nn.Sequential(PreActBlock(), nn.Sigmoid())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modules = list(model.modules())
    plan = actbench.replace_activations(model, "meta_acon", dry_run=True)
    assert list(model.modules()) == modules
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert [(r.path, r.old, r.new, r.channels, r.axis) for r in plan] == [
        ("0.act1", "torch.nn.modules.activation.ReLU", "meta_acon", None, 1),
        ("0.act2", "torch.nn.modules.activation.ReLU", "meta_acon", None, 1),
        ("1", "torch.nn.modules.activation.Sigmoid", None, None, None)]
    assert "gate" in plan[2].note
    assert [r.axis for r in actbench.replace_activations(model, "mish", dry_run=True) if r.new] == [None, None]


def test_lazy_replacement_follows_dtype_and_seed():
    first, second = TokenMLP().double(), TokenMLP().double()
    for model in (first, second):
        actbench.replace_activations(model, "meta_acon", seed=3)
        model.eval()(torch.randn(2, 5, 16, dtype=torch.float64))
    assert first.act.p1.dtype == torch.float64 and first.act.fc1.weight.dtype == torch.float64
    assert not first.act.bn1.training
    eager = actbench.activation("meta_acon", channels=64, seed=3)
    for module in (first.act, second.act):
        torch.testing.assert_close(module.p1.float(), eager.p1)
        torch.testing.assert_close(module.fc2.weight.float(), eager.fc2.weight)


# ---------------------------------------------------------------- the authors' modules (nmaac/acon)


class AconC(nn.Module):
    """ACON-C as in the authors' code: parameters of shape (1, C, 1, 1)."""

    def __init__(self, width):
        super().__init__()
        self.p1 = nn.Parameter(torch.randn(1, width, 1, 1))
        self.p2 = nn.Parameter(torch.randn(1, width, 1, 1))
        self.beta = nn.Parameter(torch.ones(1, width, 1, 1))

    def forward(self, x):
        return (self.p1 * x - self.p2 * x) * torch.sigmoid(self.beta * (self.p1 * x - self.p2 * x)) + self.p2 * x


class MetaAconC(nn.Module):
    """meta-ACON as in the authors' code: a conv / BatchNorm switching network with r = 16."""

    def __init__(self, width, r=16):
        super().__init__()
        self.fc1 = nn.Conv2d(width, max(r, width // r), kernel_size=1, stride=1, bias=True)
        self.bn1 = nn.BatchNorm2d(max(r, width // r))
        self.fc2 = nn.Conv2d(max(r, width // r), width, kernel_size=1, stride=1, bias=True)
        self.bn2 = nn.BatchNorm2d(width)
        self.p1 = nn.Parameter(torch.randn(1, width, 1, 1))
        self.p2 = nn.Parameter(torch.randn(1, width, 1, 1))

    def forward(self, x):
        beta = torch.sigmoid(self.bn2(self.fc2(self.bn1(self.fc1(x.mean(dim=(2, 3), keepdim=True))))))
        return (self.p1 * x - self.p2 * x) * torch.sigmoid(beta * (self.p1 * x - self.p2 * x)) + self.p2 * x


def randomised(module):
    """Random values in every parameter and BatchNorm statistic, as a trained checkpoint has."""
    torch.manual_seed(1)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5 if tensor.dim() == 1 else torch.randn_like(tensor))
    return module.eval()


@pytest.mark.parametrize("lazy", [False, True], ids=["channels", "lazy"])
@pytest.mark.parametrize("name, author_class", [("acon_c", AconC), ("meta_acon", MetaAconC)])
def test_the_authors_state_dicts_load_and_give_the_same_outputs(name, author_class, lazy):
    author = randomised(author_class(32)).double()
    ours = actbench.activation(name, channels=32, impl="formula")
    if lazy:
        ours = nn.Sequential(nn.ReLU())
        actbench.replace_activations(ours, name, impl="formula")
    prefix = "0." if lazy else ""
    ours.load_state_dict({prefix + key: value for key, value in author.state_dict().items()})
    ours = ours.double().eval()
    x = torch.randn(3, 32, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(ours(x), author(x), rtol=1e-12, atol=1e-12)
    act = ours[0] if lazy else ours
    assert isinstance(act, MetaACON if name == "meta_acon" else ACON) and act.channels == 32
    assert act.p1.shape == (32,)
    again = actbench.activation(name, channels=32)
    again.load_state_dict(act.state_dict())  # and our own state dicts still load
    torch.testing.assert_close(again.p2, act.p2.float())


@pytest.mark.parametrize("name", ["acon_c", "meta_acon"])
def test_a_zoo_channelwise_activation_without_channels_reads_them_from_its_input(name):
    """actbench.activation(name) with no channels= is lazy and, seeded, the same as the eager one."""
    module = actbench.activation(name, seed=3)
    x = torch.randn(2, 8, 5, requires_grad=True)
    y = module(x)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    eager = actbench.activation(name, channels=8, seed=3)
    assert torch.equal(eager(x), module(x))
    assert sum(p.numel() for p in module.parameters()) == sum(p.numel() for p in eager.parameters())


class _FunctionalBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.act = nn.ReLU()

    def forward(self, x):
        return F.gelu(self.act(self.conv(x))).relu()


class _FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = _FunctionalBlock()
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.block(x)).mean((2, 3)))


class _Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(x) if x.sum() > 0 else F.relu(x)  # data-dependent: fx cannot trace it


def test_functional_calls_are_named_in_the_plan_and_the_warning_but_left_alone():
    model = _FunctionalNet()
    plan = actbench.replace_activations(model, "mish", dry_run=True)
    functional = [(r.path, r.old) for r in plan if r.note == replace_module.FUNCTIONAL_NOTE]
    assert functional == [("block", "torch.nn.functional.gelu"), ("block", "torch.Tensor.relu"),
                          ("", "torch.relu")]
    with pytest.warns(ActbenchWarning, match=r"replaced 1 module\(s\) by mish; left alone: 'block' "
                                             r"\(torch.nn.functional.gelu"):
        assert actbench.replace_activations(model, "mish") == 1
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 2)


def test_an_untraceable_model_is_planned_from_its_modules_alone():
    assert replace_module.functional_calls(_Untraceable()) is None
    plan = actbench.replace_activations(_Untraceable(), "silu", dry_run=True)
    assert [(r.path, r.new) for r in plan] == [("act", "silu")]

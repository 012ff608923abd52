"""ACON identities, meta-ACON's switching network, what memeff saves, and seeded initialisation."""

import pytest
import torch

import actbench
from actbench.zoo.registry import lookup

IMPLS = ["formula", "memeff"]


def x4(seed=0, shape=(3, 4, 5, 5)):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("impl", IMPLS)
def test_acon_a_with_beta_one_is_silu(impl):
    x = x4()
    acon_a = actbench.activation("acon_a", impl=impl, channels=4).double()
    torch.testing.assert_close(acon_a(x), torch.nn.functional.silu(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("beta", [1.0, 1.7])
def test_acon_c_with_p1_one_p2_zero_is_swish(impl, beta):
    x = x4(1)
    acon_c = actbench.activation("acon_c", impl=impl, channels=4, beta=beta).double()
    with torch.no_grad():
        acon_c.p1.fill_(1.0)
        acon_c.p2.fill_(0.0)
    swish = actbench.activation("swish", impl=impl, beta=beta).double()
    torch.testing.assert_close(acon_c(x), swish(x), rtol=1e-12, atol=1e-12)
    b = swish.beta.item()  # beta as stored (float32 rounding of 1.7)
    torch.testing.assert_close(swish(x), x * torch.sigmoid(b * x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_acon_b_with_p_zero_is_acon_a(impl):
    x = x4(2)
    acon_b = actbench.activation("acon_b", impl=impl, channels=4, beta=1.3).double()
    acon_a = actbench.activation("acon_a", impl=impl, channels=4, beta=1.3).double()
    with torch.no_grad():
        acon_b.p2.zero_()
    torch.testing.assert_close(acon_b(x), acon_a(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_acon_parameters_are_per_channel(impl):
    acon_c = actbench.activation("acon_c", impl=impl, channels=4, seed=0).double()
    x = x4(3)
    y = acon_c(x)
    for c in range(4):  # channel c uses its own p1[c], p2[c], beta[c]
        p1, p2, beta = acon_c.p1[c], acon_c.p2[c], acon_c.beta[c]
        xc = x[:, c]
        expected = (p1 - p2) * xc * torch.sigmoid(beta * (p1 - p2) * xc) + p2 * xc
        torch.testing.assert_close(y[:, c], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(6, 4), (6, 4, 7), (6, 4, 3, 3)])
def test_meta_acon_trains_its_switching_network(impl, shape):
    module = actbench.activation("meta_acon", impl=impl, channels=4, seed=0).double()
    x = x4(4, shape).requires_grad_(True)
    y = module(x)
    assert y.shape == x.shape
    (y * x4(5, shape)).sum().backward()
    for name in ("fc1.weight", "fc2.weight", "bn1.weight", "bn2.weight", "p1", "p2"):
        grad = module.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


def test_meta_acon_hidden_width_follows_the_paper():
    assert actbench.activation("meta_acon", channels=64).fc1.out_channels == 16  # max(16, 64 // 16)
    assert actbench.activation("meta_acon", channels=512).fc1.out_channels == 32
    assert actbench.activation("meta_acon", channels=512, r=8).fc1.out_channels == 64


def saved_storages(module, x):
    """Distinct storages autograd keeps for backward, with their sizes in bytes."""
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    return saved


ELEMENTWISE_MEMEFF = [n for n in actbench.activations()
                      if "memeff" in actbench.implementations(n) and not lookup(n).trainable]


@pytest.mark.parametrize("name", ELEMENTWISE_MEMEFF)
def test_memeff_saves_only_the_input(name):
    x = torch.randn(64, 32, requires_grad=True)
    saved = saved_storages(actbench.activation(name, impl="memeff"), x)
    assert saved == {x.untyped_storage().data_ptr(): x.untyped_storage().nbytes()}


def test_formula_mish_keeps_twice_the_input_and_relu_once():
    x = torch.randn(64, 32, requires_grad=True)
    size = x.untyped_storage().nbytes()
    assert sum(saved_storages(actbench.activation("mish", impl="formula"), x).values()) >= 2 * size
    assert sum(saved_storages(actbench.activation("relu"), x).values()) == size


@pytest.mark.parametrize("impl", ["memeff", "fast"])
@pytest.mark.parametrize("name", ["swish", "star_relu", "acon_a", "acon_b", "acon_c", "meta_acon"])
def test_trainable_saves_the_input_and_nothing_that_grows_with_it(name, impl, request):
    if impl == "fast":
        request.getfixturevalue("eager_kernels")  # the kernels' formulas, uncompiled
    module = actbench.activation(name, impl=impl, channels=8)
    extra = []
    for side in (6, 12):  # 4x the elements: only the input's share may grow
        x = torch.randn(16, 8, side, side, requires_grad=True)
        saved = saved_storages(module, x)
        assert x.untyped_storage().data_ptr() in saved
        extra.append(sum(n for ptr, n in saved.items() if ptr != x.untyped_storage().data_ptr()))
    assert extra[0] == extra[1]
    if name != "meta_acon":  # beyond x, only the parameters (8 channels of float32 at most)
        assert extra[0] <= 3 * 8 * 4


def test_seed_makes_initialisation_reproducible_without_touching_global_state():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = actbench.activation("acon_c", channels=4, seed=0)
    b = actbench.activation("acon_c", channels=4, seed=0)
    c = actbench.activation("acon_c", channels=4, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.p1, b.p1) and torch.equal(a.p2, b.p2)
    assert not torch.equal(a.p1, c.p1)
    torch.manual_seed(5)
    d = actbench.activation("meta_acon", channels=4)
    torch.manual_seed(5)
    e = actbench.activation("meta_acon", channels=4)
    torch.testing.assert_close(d.state_dict(), e.state_dict())


def test_options_reach_the_module():
    x = torch.linspace(-2, 2, 9)
    leaky = actbench.activation("leaky_relu", negative_slope=0.2)
    torch.testing.assert_close(leaky(x), torch.where(x >= 0, x, 0.2 * x))
    assert actbench.activation("prelu", channels=5, init=0.1).weight.tolist() == pytest.approx([0.1] * 5)
    assert actbench.activation("prelu").weight.numel() == 1

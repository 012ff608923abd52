"""Training models: output shapes, channel counts given to the activation factory, published ResNet
sizes, deep plain nets, initialisers (checked against their distributions with scipy) and errors."""

import math

import pytest
import torch
from scipy import stats
from torch import nn

import actbench
from actbench.errors import ActbenchError, UnknownNameError
from actbench.train.models import (COMMON_OPTIONS, INITIALISERS, MODEL_OPTIONS, build_model,
                                   count_parameters, initialise)

RELU = lambda c: actbench.activation("relu")  # noqa: E731
ACON_C = lambda c: actbench.activation("acon_c", channels=c)  # noqa: E731
META_ACON = lambda c: actbench.activation("meta_acon", channels=c)  # noqa: E731

# small configurations of every model, so a forward and backward pass takes milliseconds
SMALL = {
    "mlp": {"depth": 2, "width": 16},
    "cnn": {"conv_layers": 2, "width": 4, "hidden": 16},
    "deep_fc": {"depth": 3, "width": 16, "stem_channels": 4},
    "resnet": {"depth": 20, "width_mult": 0.25},
    "cnn1d": {"depth": 3, "width": 8, "hidden": 16},
}
SHAPES = {
    "mlp": [(1, 8, 8), (40,), (1, 40), (3, 5, 7)],
    "cnn": [(1, 28, 28), (3, 32, 32), (2, 8, 12)],
    "deep_fc": [(1, 28, 28), (3, 9, 9), (1, 2, 2)],
    "resnet": [(3, 32, 32), (1, 8, 8), (5, 9, 13)],
    "cnn1d": [(1, 40), (3, 17), (2, 1)],
}


def test_every_model_has_small_config_and_shapes():
    # gpt takes token ids and returns logits per position: tests/train/test_gpt.py
    assert set(SMALL) == set(SHAPES) == set(MODEL_OPTIONS) - {"gpt"}


@pytest.mark.parametrize("name, shape", [(n, s) for n, shapes in SHAPES.items() for s in shapes])
def test_logits_have_batch_by_classes_shape(name, shape):
    torch.manual_seed(0)
    model = build_model(name, RELU, shape, 7, **SMALL[name])
    logits = model(torch.randn(3, *shape))
    assert logits.shape == (3, 7)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_resnet_versions_and_shortcuts_give_logits(version, shortcut):
    model = build_model("resnet", RELU, (3, 8, 8), 4, depth=20, width_mult=0.5, version=version,
                        shortcut=shortcut)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 4)


@pytest.mark.parametrize("factory", [RELU, ACON_C, META_ACON], ids=["relu", "acon_c", "meta_acon"])
@pytest.mark.parametrize("name", list(SMALL))
def test_channelwise_activations_work_in_every_model(name, factory):
    torch.manual_seed(0)
    shape = SHAPES[name][0]
    model = build_model(name, factory, shape, 5, **SMALL[name])
    logits = model(torch.randn(4, *shape))  # meta-ACON's BatchNorm needs more than one sample
    logits.sum().backward()
    assert logits.shape == (4, 5)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


class Recorder(nn.Module):
    """A fake activation: records its channel count and the shapes it is called with."""

    def __init__(self, channels, log):
        super().__init__()
        self.channels = channels
        self.seen = []
        log.append(self)

    def forward(self, x):
        self.seen.append(tuple(x.shape))
        return torch.relu(x)


# hand-computed channel counts, in construction order, for one small configuration of each model
CHANNEL_CASES = [
    ("mlp", (1, 6, 6), {"depth": 2, "width": 5}, [5, 5]),
    ("mlp", (10,), {"depth": 3, "width": 4, "batchnorm": True, "dropout": 0.5}, [4, 4, 4]),
    ("cnn", (3, 16, 16), {"conv_layers": 3, "width": 4, "hidden": 6}, [4, 8, 16, 6]),
    ("deep_fc", (1, 8, 8), {"depth": 3, "width": 7, "stem_channels": 2}, [2, 7, 7, 7]),
    ("cnn1d", (1, 40), {"depth": 3, "width": 4, "hidden": 9}, [4, 4, 4, 9]),
    # v1: stem act, then two per block (inside, after the addition)
    ("resnet", (3, 8, 8), {"depth": 20, "width_mult": 0.5}, [8] + [8] * 6 + [16] * 6 + [32] * 6),
    # v2: no stem act; a block's first act sees its input channels; one act after the last stage
    ("resnet", (3, 8, 8), {"depth": 20, "width_mult": 0.5, "version": "v2"},
     [8] * 6 + [8, 16] + [16] * 4 + [16, 32] + [32] * 4 + [32]),
]


@pytest.mark.parametrize("name, shape, options, expected", CHANNEL_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CHANNEL_CASES)])
def test_factory_gets_the_channels_of_the_tensor_it_acts_on(name, shape, options, expected):
    log = []
    model = build_model(name, lambda c: Recorder(c, log), shape, 3, **options)
    assert [r.channels for r in log] == expected
    model(torch.randn(2, *shape))
    for recorder in log:
        assert len(recorder.seen) == 1  # every activation is used, once
        assert recorder.seen[0][0] == 2 and recorder.seen[0][1] == recorder.channels


def test_cnn1d_activations_see_sequences_and_cnn_activations_see_images():
    for name, shape, conv_dims in [("cnn1d", (1, 40), 3), ("cnn", (1, 8, 8), 4)]:
        log = []
        build_model(name, lambda c: Recorder(c, log), shape, 3, **SMALL[name])(torch.randn(2, *shape))
        assert [len(r.seen[0]) for r in log] == [conv_dims] * (len(log) - 1) + [2]


def test_cnn1d_halves_the_length_like_the_mnist1d_cnn():
    log = []
    build_model("cnn1d", lambda c: Recorder(c, log), (1, 40), 3, depth=3, width=8)(torch.randn(2, 1, 40))
    assert [r.seen[0] for r in log] == [(2, 8, 20), (2, 8, 10), (2, 8, 5), (2, 256)]


def resnet_parameters_by_hand(n, in_channels=3, classes=10, widths=(16, 32, 64), shortcut="A"):
    """Parameters of the CIFAR ResNet v1 of He et al. 2016 section 4.2, counted layer by layer."""
    def conv(c_in, c_out, k):
        return c_in * c_out * k * k  # no bias: every conv is followed by BatchNorm

    def bn(c):
        return 2 * c  # weight and bias

    total = conv(in_channels, widths[0], 3) + bn(widths[0])
    c_in = widths[0]
    for c in widths:
        for _ in range(n):
            total += conv(c_in, c, 3) + bn(c) + conv(c, c, 3) + bn(c)
            if c != c_in and shortcut == "B":
                total += conv(c_in, c, 1) + bn(c)
            c_in = c
    return total + widths[-1] * classes + classes


def test_resnet20_has_the_published_parameter_count():
    by_hand = resnet_parameters_by_hand(3)
    assert by_hand == 269_722  # the "0.27M" of He et al. 2016, Table 6
    model = build_model("resnet", RELU, (3, 32, 32), 10, depth=20, shortcut="A")
    assert count_parameters(model) == by_hand
    projection = build_model("resnet", RELU, (3, 32, 32), 10, depth=20)  # default: option B
    extra = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)  # two 1x1 convs with BatchNorm
    assert count_parameters(projection) == resnet_parameters_by_hand(3, shortcut="B") == 269_722 + extra
    assert round(count_parameters(projection) / 1e6, 2) == 0.27


@pytest.mark.parametrize("depth, published_millions", [(32, 0.46), (44, 0.66), (56, 0.85)])
def test_deeper_resnets_match_published_sizes(depth, published_millions):
    model = build_model("resnet", RELU, (3, 32, 32), 10, depth=depth, shortcut="A")
    count = count_parameters(model)
    assert count == resnet_parameters_by_hand((depth - 2) // 6)
    assert round(count / 1e6, 2) == published_millions


def test_resnet_width_mult_and_input_channels_change_the_count():
    model = build_model("resnet", RELU, (1, 8, 8), 10, depth=20, width_mult=2.0, shortcut="B")
    assert count_parameters(model) == resnet_parameters_by_hand(3, in_channels=1, widths=(32, 64, 128),
                                                                shortcut="B")


def test_count_parameters_counts_shared_parameters_once_and_can_skip_frozen():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, shared, nn.Linear(3, 2))
    assert count_parameters(model) == 12 + 8
    model[2].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 12 + 2


def test_acon_parameters_are_counted():
    relu = count_parameters(build_model("mlp", RELU, (4,), 2, depth=2, width=5))
    acon = count_parameters(build_model("mlp", ACON_C, (4,), 2, depth=2, width=5))
    assert acon - relu == 2 * 3 * 5  # p1, p2, beta per channel, two layers


@pytest.mark.parametrize("factory", [RELU, lambda c: actbench.activation("mish")], ids=["relu", "mish"])
def test_deep_fc_depth_25_trains(factory):
    torch.manual_seed(0)
    model = build_model("deep_fc", factory, (1, 8, 8), 10, depth=25)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 26
    assert not any(isinstance(m, nn.Identity) for m in model.modules())
    loss = nn.functional.cross_entropy(model(torch.randn(8, 1, 8, 8)), torch.randint(0, 10, (8,)))
    loss.backward()
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert model[0].weight.grad.abs().sum() > 0  # the gradient reaches the stem


def test_one_sgd_step_reduces_the_mlp_loss():
    torch.manual_seed(0)
    model = build_model("mlp", RELU, (1, 8, 8), 10, depth=2, width=32)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05)
    before = nn.functional.cross_entropy(model(x), y)
    before.backward()
    optimiser.step()
    with torch.no_grad():
        after = nn.functional.cross_entropy(model(x), y)
    assert after < before - 1e-3


# --------------------------------------------------------------------------- initialisers


class Probe(nn.Module):
    """Large conv and linear layers (tight statistics), a BatchNorm, ACON and meta-ACON layers."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(32, 64, 3)  # fan_in 288, fan_out 576, 18432 weights
        self.bn = nn.BatchNorm2d(64)
        self.acon = actbench.activation("acon_c", channels=64, seed=1)
        self.linear = nn.Linear(400, 300)  # fan_in 400, fan_out 300, 120000 weights
        self.meta = actbench.activation("meta_acon", channels=300, seed=2)
        with torch.no_grad():
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-1, 1)
            for layer in (self.conv, self.linear):
                layer.bias.uniform_(-1, 1)


FANS = {"conv": (288, 576), "linear": (400, 300)}


def _untouched(probe):
    return {k: v.clone() for k, v in probe.state_dict().items()
            if not k.startswith(("conv.", "linear."))}


@pytest.mark.parametrize("scheme", [s for s in INITIALISERS if s != "default"])
def test_initialisers_draw_from_the_expected_distribution(scheme):
    torch.manual_seed(0)
    probe = Probe()
    kept = _untouched(probe)
    initialise(probe, scheme, std=0.05)
    for layer_name, (fan_in, fan_out) in FANS.items():
        layer = getattr(probe, layer_name)
        w = layer.weight.detach().double().flatten().numpy()
        if scheme == "normal":
            assert stats.kstest(w, "norm", args=(0, 0.05)).pvalue > 1e-3
        elif scheme == "kaiming_normal":
            assert stats.kstest(w, "norm", args=(0, math.sqrt(2 / fan_in))).pvalue > 1e-3
        elif scheme == "xavier_normal":
            assert stats.kstest(w, "norm", args=(0, math.sqrt(2 / (fan_in + fan_out)))).pvalue > 1e-3
        elif scheme in ("kaiming_uniform", "xavier_uniform"):
            bound = math.sqrt(6 / (fan_in if scheme == "kaiming_uniform" else fan_in + fan_out))
            assert stats.kstest(w, "uniform", args=(-bound, 2 * bound)).pvalue > 1e-3
        elif scheme == "orthogonal":
            matrix = layer.weight.detach().double().flatten(1)
            rows = matrix.shape[0]  # fewer rows than columns in both layers: orthonormal rows
            torch.testing.assert_close(matrix @ matrix.T, torch.eye(rows, dtype=torch.float64),
                                       atol=1e-5, rtol=0)
        else:
            raise AssertionError(scheme)
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    for key, value in probe.state_dict().items():  # norm layers and activations keep their values
        if key in kept:
            assert torch.equal(value, kept[key]), key


def test_kaiming_normal_std_is_sqrt_two_over_fan_in():
    torch.manual_seed(0)
    probe = Probe()
    initialise(probe, "kaiming_normal")
    assert probe.linear.weight.std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert probe.conv.weight.std().item() == pytest.approx(math.sqrt(2 / 288), rel=0.04)


def test_default_leaves_pytorch_initialisation():
    probe = Probe()
    before = {k: v.clone() for k, v in probe.state_dict().items()}
    initialise(probe, "default")
    assert all(torch.equal(v, before[k]) for k, v in probe.state_dict().items())


def test_build_model_applies_the_initialiser_to_every_weight_layer():
    torch.manual_seed(0)
    model = build_model("mlp", ACON_C, (64,), 10, depth=2, width=32, init="orthogonal")
    for layer in (m for m in model.modules() if isinstance(m, nn.Linear)):
        w = layer.weight.detach().double()
        small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(small, torch.eye(small.shape[0], dtype=torch.float64), atol=1e-5, rtol=0)
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


class Gated(nn.Module):
    """A user activation with a Linear inside: it belongs to the activation, not to the model."""

    def __init__(self, channels):
        super().__init__()
        self.gate = nn.Linear(channels, channels)
        with torch.no_grad():
            self.gate.weight.fill_(0.125)
            self.gate.bias.fill_(0.5)

    def forward(self, x):
        return x * torch.sigmoid(self.gate(x))


def test_initialiser_leaves_layers_inside_factory_activations_alone():
    model = build_model("mlp", Gated, (6,), 3, depth=2, width=4, init="normal", init_std=0.3)
    gates = [m for m in model.modules() if isinstance(m, Gated)]
    assert len(gates) == 2
    for gate in gates:
        assert torch.all(gate.gate.weight == 0.125) and torch.all(gate.gate.bias == 0.5)
    assert torch.all(model[1].weight.abs() != 0.125)  # the model's own Linear was re-initialised


def test_initialiser_leaves_acon_parameters_in_built_models():
    torch.manual_seed(0)
    reference = build_model("cnn", ACON_C, (1, 8, 8), 3, width=4, hidden=8)
    torch.manual_seed(0)
    initialised = build_model("cnn", ACON_C, (1, 8, 8), 3, width=4, hidden=8, init="xavier_uniform")
    # same seed: the activations were built from the same random numbers and kept them
    for (key, a), (_, b) in zip(reference.state_dict().items(), initialised.state_dict().items()):
        if key.endswith(("p1", "p2", "beta")):
            assert torch.equal(a, b), key


# --------------------------------------------------------------------------- options and errors


def test_options_are_case_insensitive_where_they_are_names():
    model = build_model("ResNet", RELU, (3, 8, 8), 2, depth=20, version="V2", shortcut="a",
                        width_mult=0.25, init="Kaiming_Normal")
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 2)


def test_common_options_have_the_documented_defaults():
    assert COMMON_OPTIONS == {"init": "default", "init_std": 0.02}
    assert MODEL_OPTIONS["resnet"]["shortcut"] == "B"


def test_dropout_and_batchnorm_options_add_layers():
    model = build_model("mlp", RELU, (4,), 2, depth=2, width=8, dropout=0.5, batchnorm=True)
    kinds = [type(m) for m in model]
    assert kinds.count(nn.Dropout) == 2 and kinds.count(nn.BatchNorm1d) == 2
    assert all(m.bias is None for m in model if isinstance(m, nn.Linear) and m.out_features == 8)


ERRORS = [
    ("mpl", (4,), {}, r"unknown model 'mpl'; did you mean mlp"),
    ("resnet", (3, 8, 8), {"depth": 21}, r"resnet depth must be 6n\+2"),
    ("resnet", (3, 8, 8), {"depth": 8}, r"one of 20, 32, 44, 56, 110; got 8"),
    ("cnn", (1, 40), {}, r"cnn takes input of shape \(channels, height, width\); got input shape \(1, 40\)"),
    ("deep_fc", (40,), {}, r"deep_fc takes input of shape"),
    ("resnet", (1, 40), {}, r"resnet takes input of shape"),
    ("cnn1d", (1, 8, 8), {}, r"cnn1d takes input of shape \(channels, length\)"),
    ("cnn", (1, 4, 4), {"conv_layers": 3}, r"needs height and width of at least 8"),
    ("mlp", (4,), {"init": "he_normal"}, r"unknown initialiser 'he_normal'"),
    ("mlp", (4,), {"init": "normal", "init_std": -1.0}, r"init_std must be a positive number"),
    ("mlp", (4,), {"widht": 3}, r"unknown mlp option 'widht'; did you mean width"),
    ("mlp", (4,), {"depth": 0}, r"mlp option depth must be at least 1"),
    ("mlp", (4,), {"depth": 2.5}, r"mlp option depth must be an integer"),
    ("mlp", (4,), {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ("mlp", (4,), {"batchnorm": "yes"}, r"batchnorm must be true or false"),
    ("resnet", (3, 8, 8), {"version": "v3"}, r"unknown resnet version 'v3'"),
    ("resnet", (3, 8, 8), {"width_mult": 0}, r"width_mult must be positive"),
    ("mlp", (0, 4), {}, r"input shape must be a non-empty tuple of positive integers"),
    ("mlp", (), {}, r"input shape must be a non-empty tuple"),
]


@pytest.mark.parametrize("name, shape, options, message", ERRORS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_mistakes_raise_one_line_actbench_errors(name, shape, options, message):
    with pytest.raises(ActbenchError, match=message) as caught:
        build_model(name, RELU, shape, 10, **options)
    assert "\n" not in str(caught.value)


def test_unknown_model_is_an_unknown_name_error():
    with pytest.raises(UnknownNameError):
        build_model("transformer", RELU, (4,), 2)


def test_bad_class_count_and_bad_factory_are_reported():
    with pytest.raises(ActbenchError, match="num_classes must be a positive integer"):
        build_model("mlp", RELU, (4,), 0)
    with pytest.raises(ActbenchError, match=r"factory returned \w+ for channels=256; expected an nn.Module"):
        build_model("mlp", lambda c: torch.relu, (4,), 2)


def test_initialise_refuses_unknown_schemes():
    with pytest.raises(ActbenchError, match="unknown initialiser 'uniform'"):
        initialise(nn.Linear(2, 2), "uniform")

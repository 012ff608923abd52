"""gpt: logits shape, causality, the tied head, parameter counts by hand (ungated and gated MLPs),
rotary positions against a float64 reference, GPT-2 initialisation, a short training run on a
learnable sequence task, zoo activations, and one-line errors for every mistake."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actbench
from actbench.errors import ActbenchError, UnknownNameError
from actbench.train.gpt import Rotary
from actbench.train.models import MODEL_OPTIONS, build_model, count_parameters

from .test_models import Recorder  # an ungated fake activation recording channels and shapes

RELU = lambda c: actbench.activation("relu")  # noqa: E731
ACON_C = lambda c: actbench.activation("acon_c", channels=c)  # noqa: E731

VOCAB, CONTEXT = 11, 12
TINY = {"depth": 2, "width": 16, "heads": 2}


class SiGLU(nn.Module):
    """A test-local gated activation, value * silu(gate) on the halves of the last dim; records the
    channels it was built with and the shapes it sees."""

    gated = True

    def __init__(self, channels, log=None):
        super().__init__()
        self.channels = channels
        self.seen = []
        if log is not None:
            log.append(self)

    def forward(self, x):
        self.seen.append(tuple(x.shape))
        value, gate = x.chunk(2, dim=-1)
        return value * F.silu(gate)


FACTORIES = {"relu": RELU, "acon_c": ACON_C, "gated": SiGLU}


def tokens(n=3, length=CONTEXT, seed=0):
    return torch.randint(0, VOCAB, (n, length), generator=torch.Generator().manual_seed(seed))


def gpt(factory=RELU, **options):
    return build_model("gpt", factory, (CONTEXT,), VOCAB, **{**TINY, **options})


# --------------------------------------------------------------------------- shape and causality


@pytest.mark.parametrize("positions", ["learned", "rope"])
@pytest.mark.parametrize("act", list(FACTORIES))
def test_logits_are_batch_by_length_by_vocabulary(act, positions):
    torch.manual_seed(0)
    model = gpt(FACTORIES[act], positions=positions)
    for length in (CONTEXT, 5, 1):  # shorter sequences than the context work too
        logits = model(tokens(length=length))
        assert logits.shape == (3, length, VOCAB)
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("positions", ["learned", "rope"])
@pytest.mark.parametrize("act", list(FACTORIES))
def test_changing_a_token_changes_no_earlier_logit(act, positions):
    torch.manual_seed(0)
    model = gpt(FACTORIES[act], positions=positions).double().eval()
    x = tokens()
    with torch.no_grad():
        before = model(x)
        for t in (0, 4, CONTEXT - 1):
            changed = x.clone()
            changed[:, t] = (x[:, t] + 1) % VOCAB
            after = model(changed)
            torch.testing.assert_close(after[:, :t], before[:, :t], atol=1e-12, rtol=0)
            assert (after[:, t] - before[:, t]).abs().amax() > 1e-4  # the token itself does count
            if t + 1 < CONTEXT:
                assert (after[:, t + 1:] - before[:, t + 1:]).abs().amax() > 1e-4


def test_output_head_is_the_token_embedding():
    torch.manual_seed(0)
    model = gpt()
    matrices = [p for p in model.parameters() if p.shape == (VOCAB, TINY["width"])]
    assert len(matrices) == 1 and matrices[0] is model.embed.weight is model.head_weight
    finals = []
    model.ln_f.register_forward_hook(lambda module, args, out: finals.append(out))
    logits = model(tokens())
    torch.testing.assert_close(logits, finals[0] @ model.embed.weight.T)
    # rows of tokens absent from the input get gradient only through the head
    x = torch.zeros(2, CONTEXT, dtype=torch.long)
    model.zero_grad()
    model(x).logsumexp(-1).sum().backward()
    assert model.embed.weight.grad[1:].abs().sum(1).min() > 0


# --------------------------------------------------------------------------- parameter counts


def gpt_parameters_by_hand(vocab, context, width, depth, fc_out, hidden, learned=True, act_params=0):
    """Parameters of the gpt architecture, layer by layer (every Linear has a bias)."""
    block = (2 * width  # LayerNorm before attention
             + width * 3 * width + 3 * width  # q, k, v
             + width * width + width  # attention output projection
             + 2 * width  # LayerNorm before the MLP
             + width * fc_out + fc_out  # MLP in (2h for a gated activation)
             + hidden * width + width  # MLP out
             + act_params)
    positions = context * width if learned else 0
    return vocab * width + positions + depth * block + 2 * width  # final LayerNorm; tied head: 0


def test_ungated_parameter_count_by_hand():
    model = build_model("gpt", RELU, (12,), 50, depth=3, width=48, heads=4)
    assert count_parameters(model) == gpt_parameters_by_hand(50, 12, 48, 3, fc_out=192, hidden=192)
    rope = build_model("gpt", RELU, (12,), 50, depth=3, width=48, heads=4, positions="rope")
    assert count_parameters(rope) == gpt_parameters_by_hand(50, 12, 48, 3, 192, 192, learned=False)


# (width, mlp_ratio, h): h = 2/3 * mlp_ratio * width to the nearest multiple of 8, at least 8
GATED_WIDTHS = [
    (48, 4.0, 128),  # 128 exactly
    (40, 4.0, 104),  # 106.67: 104 is nearer than 112
    (128, 4.0, 344),  # 341.33: 344 is nearer than 336
    (16, 4.0, 40),  # 42.67: 40 is nearer than 48
    (36, 2.0, 48),  # 48 exactly
    (4, 1.0, 8),  # 2.67: the minimum, 8
]


@pytest.mark.parametrize("width, ratio, hidden", GATED_WIDTHS)
def test_gated_mlp_hidden_width_and_parameter_count_by_hand(width, ratio, hidden):
    log = []
    model = build_model("gpt", lambda c: SiGLU(c, log), (12,), 50, depth=2, width=width, heads=2,
                        mlp_ratio=ratio)
    for block in model.blocks:
        assert (block.mlp.fc.out_features, block.mlp.proj.in_features) == (2 * hidden, hidden)
    assert count_parameters(model) == gpt_parameters_by_hand(50, 12, width, 2, 2 * hidden, hidden)
    # one probe built first (told the model the activation is gated), then act(h) per block
    assert [m.channels for m in log] == [round(ratio * width), hidden, hidden]
    assert [block.mlp.act for block in model.blocks] == log[1:]


@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_the_two_thirds_rule_keeps_gated_and_ungated_sizes_within_two_percent(width):
    ungated = build_model("gpt", RELU, (64,), 256, depth=2, width=width, heads=4)
    gated = build_model("gpt", SiGLU, (64,), 256, depth=2, width=width, heads=4)
    mlp = [sum(p.numel() for p in m.blocks[0].mlp.parameters()) for m in (ungated, gated)]
    assert mlp[0] == 2 * width * 4 * width + 4 * width + width
    assert abs(mlp[1] / mlp[0] - 1) < 0.02
    assert abs(count_parameters(gated) / count_parameters(ungated) - 1) < 0.02


def test_acon_parameters_are_counted_per_hidden_channel():
    relu = count_parameters(gpt(RELU))
    acon = count_parameters(gpt(ACON_C))
    assert acon - relu == TINY["depth"] * 3 * 4 * TINY["width"]  # p1, p2, beta per hidden channel


def test_activations_see_tokens_as_rows_with_their_channels_on_dim_1():
    log = []
    model = gpt(lambda c: Recorder(c, log))
    model(tokens(n=3, length=5))
    assert [r.channels for r in log] == [4 * TINY["width"]] * TINY["depth"]  # the probe is reused
    assert all(r.seen == [(15, 4 * TINY["width"])] for r in log)
    log = []
    gated = gpt(lambda c: SiGLU(c, log))
    gated(tokens(n=3, length=5))
    assert all(r.seen == [(15, 2 * 40)] for r in log[1:]) and not log[0].seen  # h = 40 at width 16


# --------------------------------------------------------------------------- rotary positions


def rotary_by_hand(x, base=10_000.0):
    """float64 RoPE with complex numbers: channel j + i * channel j + d/2, times exp(i m theta_j)."""
    d = x.shape[-1]
    half = d // 2
    z = torch.complex(x[..., :half], x[..., half:])
    theta = torch.tensor([base ** (-2 * j / d) for j in range(half)], dtype=torch.float64)
    m = torch.arange(x.shape[-2], dtype=torch.float64)[:, None]
    rotated = z * torch.polar(torch.ones_like(m * theta), m * theta)
    return torch.cat((rotated.real, rotated.imag), dim=-1)


def test_rotary_matches_a_float64_reference():
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rotary = Rotary(head_dim=8, context=16)
    torch.testing.assert_close(rotary(x), rotary_by_hand(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(rotary(x[..., :1, :]), x[..., :1, :])  # position 0: no rotation
    assert rotary(x.float()).dtype == torch.float32 and rotary(x.bfloat16()).dtype == torch.bfloat16


def test_rotary_scores_depend_on_the_distance_only():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(2, 16, generator=g, dtype=torch.float64)
    rotary = Rotary(head_dim=16, context=10)  # its angles are float32 (MPS has no float64)
    rq, rk = rotary(q.expand(10, 16)), rotary(k.expand(10, 16))
    scores = rq @ rk.T  # scores[m, n]: q at position m against k at position n
    for shift in (1, 3):
        torch.testing.assert_close(scores[shift:, shift:], scores[:-shift, :-shift], atol=1e-5, rtol=0)
    assert scores.diagonal(0).std() < 1e-5 and scores.diagonal(-2).std() < 1e-5
    assert (scores.diagonal(0)[0] - scores.diagonal(-2)[0]).abs() > 1e-3  # distance does count


@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_runs_under_bfloat16_autocast(positions):
    """Mixed precision (train.amp) runs the model in bfloat16, rotary positions included."""
    model = gpt(ACON_C, positions=positions)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(tokens())
    logits.float().sum().backward()
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits).all()


def test_rope_has_no_position_parameters_or_saved_angles():
    learned, rope = gpt(), gpt(positions="rope")
    assert count_parameters(learned) - count_parameters(rope) == CONTEXT * TINY["width"]
    assert rope.pos_embed is None and not any("pos" in name for name, _ in rope.named_parameters())
    assert not any(key.endswith(("cos", "sin")) for key in rope.state_dict())


# --------------------------------------------------------------------------- initialisation


def test_gpt2_initialisation_scales_the_residual_projections():
    torch.manual_seed(0)
    depth = 4
    model = build_model("gpt", ACON_C, (32,), 500, depth=depth, width=128, heads=4)
    residual = 0.02 / math.sqrt(2 * depth)
    for block in model.blocks:
        for layer, std in ((block.attn.qkv, 0.02), (block.mlp.fc, 0.02), (block.attn.proj, residual),
                           (block.mlp.proj, residual)):
            assert layer.weight.std().item() == pytest.approx(std, rel=0.05)
            assert layer.weight.mean().abs().item() < std / 10
            assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
        assert torch.equal(block.ln1.weight, torch.ones(128))
        assert torch.equal(block.ln2.bias, torch.zeros(128))
    for embedding in (model.embed, model.pos_embed):
        assert embedding.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_a_named_initialiser_replaces_gpt2s_on_linear_layers_only():
    torch.manual_seed(0)
    reference = build_model("gpt", ACON_C, (32,), 500, depth=2, width=128, heads=4)
    torch.manual_seed(0)
    model = build_model("gpt", ACON_C, (32,), 500, depth=2, width=128, heads=4, init="normal",
                        init_std=0.1)
    for block in model.blocks:
        for layer in (block.attn.qkv, block.attn.proj, block.mlp.fc, block.mlp.proj):
            assert layer.weight.std().item() == pytest.approx(0.1, rel=0.05)  # no residual scaling
    kept = ("embed.", "pos_embed.", "p1", "p2", "beta")  # embeddings and activation parameters
    for (key, a), (_, b) in zip(reference.state_dict().items(), model.state_dict().items()):
        if key.startswith(kept) or key.endswith(kept):
            assert torch.equal(a, b), key


# --------------------------------------------------------------------------- training


def previous_token_loss(model, x):
    """Cross-entropy of predicting each token's predecessor (the first position has none)."""
    logits = model(x)
    return F.cross_entropy(logits[:, 1:].reshape(-1, logits.shape[-1]), x[:, :-1].reshape(-1))


@pytest.fixture
def one_thread():
    """Tensors this small gain nothing from threads, and threads that wait for each other on a busy
    machine (other tests alongside) make a one-second run take a minute."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("positions, factory", [("learned", lambda c: actbench.activation("gelu")),
                                                ("rope", SiGLU)], ids=["learned-gelu", "rope-gated"])
def test_learns_to_copy_the_previous_token_in_a_few_hundred_steps(positions, factory):
    torch.manual_seed(0)
    vocab, length = 8, 16
    model = build_model("gpt", factory, (length,), vocab, depth=2, width=32, heads=4,
                        positions=positions)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    first = None
    for _ in range(300):
        loss = previous_token_loss(model, torch.randint(0, vocab, (32, length), generator=g))
        first = loss.item() if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert first == pytest.approx(math.log(vocab), abs=0.3)  # chance at the start
    fresh = torch.randint(0, vocab, (64, length), generator=g)
    with torch.no_grad():
        assert previous_token_loss(model, fresh).item() < 0.05
        predicted = model(fresh)[:, 1:].argmax(-1)
    assert (predicted == fresh[:, :-1]).float().mean() > 0.99


# --------------------------------------------------------------------------- zoo activations


@pytest.mark.parametrize("name", ["relu", "gelu", "silu", "mish", "acon_c", "acon_a", "swish"])
def test_builds_and_trains_with_zoo_activations(name):
    torch.manual_seed(0)
    spec = actbench.activation  # channel-wise ones get the hidden width
    model = gpt(lambda c: spec(name, channels=c) if name.startswith("acon") else spec(name))
    loss = previous_token_loss(model, tokens())
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", ["swiglu", "geglu"])
def test_zoo_gated_activations_get_the_gated_mlp(name):
    try:
        act = actbench.activation(name)
    except ActbenchError:
        pytest.skip(f"{name} is not in the zoo")
    assert getattr(act, "gated", False)
    model = gpt(lambda c: actbench.activation(name))
    assert model.gated and model.blocks[0].mlp.fc.out_features == 2 * 40
    assert model(tokens()).shape == (3, CONTEXT, VOCAB)


def test_meta_acon_is_refused_since_its_batchnorm_mixes_positions():
    with pytest.raises(ActbenchError, match="gpt cannot use activation meta_acon: its BatchNorm") as caught:
        gpt(lambda c: actbench.activation("meta_acon", channels=c))
    assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------- options and errors


def test_defaults_are_small():
    assert MODEL_OPTIONS["gpt"] == {"depth": 2, "width": 128, "heads": 4, "mlp_ratio": 4.0,
                                    "dropout": 0.0, "positions": "learned"}
    model = build_model("gpt", RELU, (64,), 256)
    assert count_parameters(model) == gpt_parameters_by_hand(256, 64, 128, 2, 512, 512)


def test_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    model = gpt(dropout=0.5)
    x = tokens()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


ERRORS = [
    ({"width": 30, "heads": 4}, r"gpt option heads must be a divisor of width \(30\), got 4$"),
    ({"width": 12, "heads": 4, "positions": "rope"},
     r"even head size for rope positions \(width / heads = 3\)"),
    ({"mlp_ratio": 0}, r"gpt option mlp_ratio must be positive, got 0"),
    ({"mlp_ratio": 0.01}, r"gpt option mlp_ratio must be at least 0.03125 at width 16"),
    ({"positions": "absolute"}, r"unknown gpt positions 'absolute'"),
    ({"heads": 0}, r"gpt option heads must be at least 1, got 0"),
    ({"heads": 2.0}, r"gpt option heads must be an integer"),
    ({"n_layer": 2}, r"unknown gpt option 'n_layer'"),
    ({"dropout": 1.0}, r"gpt option dropout must be in \[0, 1\)"),
]


@pytest.mark.parametrize("options, message", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_bad_options_raise_one_line_errors(options, message):
    with pytest.raises(ActbenchError, match=message) as caught:
        gpt(**options)
    assert "\n" not in str(caught.value)


def test_positions_are_case_insensitive_and_unknown_ones_are_name_errors():
    assert gpt(positions="RoPE").rotary is not None
    with pytest.raises(UnknownNameError):
        gpt(positions="sinusoidal")


@pytest.mark.parametrize("x, message", [
    (torch.randn(2, 5), r"gpt takes integer token ids of shape \(N, L\); got torch.float32"),
    (torch.zeros(2, 5, 1, dtype=torch.long), r"got torch.int64 of shape \(2, 5, 1\)"),
    (torch.zeros(2, CONTEXT + 1, dtype=torch.long), rf"at most {CONTEXT} tokens; got {CONTEXT + 1}"),
])
def test_bad_input_raises_one_line_errors(x, message):
    with pytest.raises(ActbenchError, match=message) as caught:
        gpt()(x)
    assert "\n" not in str(caught.value)


def test_input_shape_must_be_a_length():
    with pytest.raises(ActbenchError, match=r"gpt takes input of shape \(length,\) of token ids"):
        build_model("gpt", RELU, (1, 40), VOCAB)


# --------------------------------------------------------------------------- suite validation


def test_suite_reports_gpt_options_that_do_not_fit_together():
    from actbench.train.suite import SuiteError, suite_from_dict

    with pytest.raises(SuiteError) as caught:
        suite_from_dict({"activations": ["relu"], "model": {"name": "gpt", "width": 30, "heads": 4,
                                                             "mlp_ratio": 4}})
    # (the default data set, mnist1d, is not a sequence data set: a problem of its own)
    assert any("model.heads: expected a divisor of width (30) for gpt, got 4" in p
               for p in caught.value.problems)
    with pytest.raises(SuiteError) as caught:
        suite_from_dict({"activations": ["relu"], "model": {"name": "gpt", "heads": 0}})
    assert any("model.heads: expected an integer >= 1, got 0" in p for p in caught.value.problems)

"""`actbench model gpt`: a byte-level decoder fed token ids, gated activations in its 2/3-width
MLP, and gated activations refused up front for every model not built for them."""

import math

import pytest
import torch

from actbench.errors import ActbenchError
from actbench.model.plan import make_model_plan
from actbench.model.source import model_source
from actbench.model.step import StepSetup, prepare
from actbench.train.gpt import mlp_hidden

from .test_cli import TINY, one_error_line, read

CONTEXT, WIDTH, DEPTH, RATIO, VOCAB = 32, 128, 2, 4.0, 256  # gpt's defaults, a short context


def mlp_params(hidden: int, gated: bool) -> int:
    """One block's MLP: Linear(width, h or 2h) and Linear(h, width), with biases."""
    first = 2 * hidden if gated else hidden
    return WIDTH * first + first + hidden * WIDTH + WIDTH


def test_gpt_resolves_to_byte_level_token_ids_and_takes_a_context():
    source = model_source("gpt")
    assert (source.sample_shape, source.num_classes, source.vocab) == ((256,), VOCAB, VOCAB)
    assert source.takes_gated and not model_source("resnet20").takes_gated
    assert model_source("gpt", (CONTEXT,)).sample_shape == (CONTEXT,)
    with pytest.raises(ActbenchError, match="--input-shape 3,32,32 does not fit gpt: it takes "
                                            r"samples of 1 dimension\(s\)"):
        model_source("gpt", (3, 32, 32))


def test_swiglu_gets_the_two_thirds_mlp_and_only_the_modules_in_the_model():
    source = model_source("gpt", (CONTEXT,))
    plain, gated = source.build("relu", None, 0), source.build("swiglu", None, 0)
    hidden = mlp_hidden(WIDTH, RATIO, gated=True)
    assert hidden == 344 and plain.module.hidden == 512  # 8 * round(2/3 * 4 * 128 / 8)
    assert gated.module.blocks[0].mlp.fc.out_features == 2 * hidden
    in_model = [block.mlp.act for block in gated.module.blocks]
    assert [id(m) for m in gated.activations] == [id(m) for m in in_model]  # not gpt's probe
    params = {name: sum(p.numel() for p in built.module.parameters())
              for name, built in (("relu", plain), ("swiglu", gated))}
    assert params["swiglu"] - params["relu"] == DEPTH * (mlp_params(hidden, True)
                                                         - mlp_params(512, False))


@pytest.mark.parametrize("activation", ["gelu", "swiglu"])
def test_a_training_step_is_cross_entropy_over_every_position_of_token_ids(activation):
    source = model_source("gpt", (CONTEXT,))
    built = source.build(activation, None, 0)
    seen = []
    built.module.embed.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    workload = prepare(built, source.sample_shape, source.num_classes,
                       StepSetup("cpu", batch_size=3, mode="train"), seed=0, vocab=source.vocab)
    tokens = seen[-1]
    assert tokens.dtype == torch.int64 and tokens.shape == (3, CONTEXT)
    assert 0 <= int(tokens.min()) and int(tokens.max()) < VOCAB
    losses = [float(workload.step().detach()) for _ in range(2)]
    # GPT-2's small initial weights give near-uniform logits: the loss of random targets is ln V
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[0] == pytest.approx(math.log(VOCAB), abs=0.15)
    assert losses[1] != losses[0]  # the SGD step changed the weights


def test_an_inference_step_returns_logits_for_every_position():
    source = model_source("gpt", (CONTEXT,))
    workload = prepare(source.build("relu", None, 0), source.sample_shape, source.num_classes,
                       StepSetup("cpu", batch_size=2, mode="infer"), vocab=source.vocab)
    assert workload.step().shape == (2, CONTEXT, VOCAB)


def test_model_gpt_writes_a_row_per_activation_with_sensible_numbers(run_cli, tmp_path,
                                                                    fast_warmup):
    out = tmp_path / "gpt.csv"
    result = run_cli("model", "gpt", "--act", "relu,gelu,swiglu", "--batch-size", "2", "--mode",
                     "infer,train", "--input-shape", str(CONTEXT), *TINY, "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = read(out)
    assert sorted((r["activation"], r["mode"]) for r in rows) == sorted(
        (a, m) for a in ("identity", "relu", "gelu", "swiglu") for m in ("infer", "train"))
    for row in rows:
        assert row["status"] in ("ok", "noisy"), row["message"]
        assert (row["input_shape"], row["replaced"]) == (f"2x{CONTEXT}", str(DEPTH))
        assert float(row["median_s"]) > 0
        assert float(row["samples_per_s"]) == pytest.approx(2 / float(row["median_s"]), rel=1e-12)
        assert (row["act_share"] == "") == (row["activation"] == "identity")
    params = {r["activation"]: int(r["params"]) for r in rows}
    assert params["identity"] == params["relu"] == params["gelu"]
    assert params["swiglu"] - params["relu"] == DEPTH * (
        mlp_params(mlp_hidden(WIDTH, RATIO, True), True) - mlp_params(512, False))
    train = {r["activation"]: r for r in rows if r["mode"] == "train"}
    assert train["identity"]["act_saved_bytes"] == "0"
    hidden_bytes = DEPTH * 2 * CONTEXT * 512 * 4  # the (tokens, hidden) float32 tensor, per block
    assert int(train["relu"]["act_saved_bytes"]) == int(train["gelu"]["act_saved_bytes"]) \
        == hidden_bytes
    assert int(train["swiglu"]["act_saved_bytes"]) >= DEPTH * 2 * CONTEXT * 2 * 344 * 4
    assert all(int(r["step_saved_bytes"]) > int(r["act_saved_bytes"]) for r in train.values())
    assert f"gpt · batch 2 ({CONTEXT}) · float32 · cpu" in result.stdout


@pytest.mark.parametrize("model, args, named", [
    ("resnet20", ["--act", "relu,swiglu"], "swiglu is a gated activation"),
    ("mlp", ["--act", "geglu,reglu"], "geglu, reglu are gated activations"),
    ("cnn1d", ["--act", "relu", "--baseline", "glu"], "glu is a gated activation"),
    ("tests.model.nets:token_mlp", ["--input-shape", "5,8", "--act", "bilinear"],
     "bilinear is a gated activation"),
])
def test_a_gated_activation_elsewhere_is_refused_in_one_line_before_any_report(
        run_cli, tmp_path, model, args, named):
    line = one_error_line(run_cli("model", model, *args, *TINY, "--out", str(tmp_path / "r.csv")))
    assert named in line
    assert line.endswith(f"which {model} has no place for: gated activations need a model built "
                         "for them (gpt)")
    assert list(tmp_path.iterdir()) == []


def test_act_all_leaves_the_gated_ones_out_where_they_do_not_fit():
    gated = {"swiglu", "geglu", "geglu_tanh", "reglu", "glu", "bilinear"}

    def names(model, takes_gated):
        plan = make_model_plan(model, ["all"], devices=["cpu"], modes=["infer"],
                               takes_gated=takes_gated)
        return {c.activation.spec.name for c in plan.configs}

    assert gated <= names("gpt", True)
    assert not gated & names("mlp", False) and "gelu" in names("mlp", False)
    with pytest.raises(ActbenchError, match="swiglu is a gated activation"):
        make_model_plan("mlp", ["all,swiglu"], devices=["cpu"])


def test_channels_last_is_refused_for_gpt(run_cli, tmp_path):
    line = one_error_line(run_cli("model", "gpt", "--channels-last", *TINY,
                                  "--out", str(tmp_path / "r.csv")))
    assert "--channels-last lays out images" in line
    assert list(tmp_path.iterdir()) == []

"""prepare() and saved_bytes(): what a step computes, and the bytes autograd keeps, by hand."""

import contextlib
import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from actbench.model.source import BuiltModel, model_source
from actbench.model.step import StepSetup, amp_dtype, prepare, saved_bytes
from actbench.zoo.registry import lookup

from . import nets

B = 6  # batch


def tiny(activation: str, impl: str = "native") -> BuiltModel:
    """Linear(8, 8) -> activation -> Linear(8, 2)."""
    torch.manual_seed(0)
    act = lookup(activation).build(impl=impl, seed=0)
    return BuiltModel(nn.Sequential(nn.Linear(8, 8), act, nn.Linear(8, 2)), [act])


def train(dtype: str = "float32", batch: int = B, **kwargs) -> StepSetup:
    return StepSetup("cpu", dtype=dtype, batch_size=batch, mode="train", **kwargs)


# Bytes by hand, float32, batch B, the input x not requiring grad. The first Linear saves x (for
# its weight's gradient; not its weight, as x needs no gradient). The second saves its input h
# and its weight W2 (2 x 8). relu saves its output, which is h: one storage. silu and mish save
# their input, the first Linear's output y; h is then another storage. identity saves nothing
# and hands y on as h.
X = Y = H = B * 8 * 4
W2 = 2 * 8 * 4
BY_HAND = {  # activation: (act_saved_bytes, saved bytes of the forward up to the logits)
    "relu": (H, X + H + W2),
    "silu": (Y, X + Y + H + W2),
    "mish": (Y, X + Y + H + W2),
    "identity": (0, X + Y + W2),
}
# cross_entropy on the (B, 2) logits: log_softmax keeps its output (B x 2 float32), nll_loss that
# same storage, the int64 labels and its 0-d float32 total weight.
LOSS = B * 2 * 4 + B * 8 + 4


@pytest.mark.parametrize("activation", sorted(BY_HAND))
def test_saved_bytes_of_a_forward_by_hand(activation):
    built = tiny(activation)
    x = torch.randn(B, 8)
    assert saved_bytes(built.activations, lambda: built.module(x).sum(),
                       contextlib.nullcontext) == BY_HAND[activation]


@pytest.mark.parametrize("activation", sorted(BY_HAND))
def test_a_training_workload_reports_the_hand_computed_bytes(activation):
    workload = prepare(tiny(activation), (8,), 2, train())
    act, forward = BY_HAND[activation]
    assert (workload.act_saved_bytes, workload.step_saved_bytes) == (act, forward + LOSS)
    assert workload.params == 8 * 8 + 8 + 2 * 8 + 2


@pytest.mark.parametrize("batch", [1, 5])
def test_saved_bytes_scale_with_the_batch_and_halve_in_bfloat16(batch):
    workload = prepare(tiny("silu"), (8,), 2, train("bfloat16", batch))
    # the model's tensors as in float32 with 2-byte elements; the loss is taken on the logits
    # cast to float32, so its saved tensors are those of float32 (LOSS) at this batch
    assert workload.act_saved_bytes == batch * 8 * 2
    assert workload.step_saved_bytes == 3 * batch * 8 * 2 + 2 * 8 * 2 + (batch * 2 * 4 + batch * 8 + 4)


def test_a_storage_saved_twice_inside_the_activation_counts_once():
    class Square(nn.Module):
        def forward(self, x):
            return x * x  # both operands saved: the same storage

    act = Square()
    model = nn.Sequential(nn.Linear(8, 8), act)
    x = torch.randn(B, 8)
    assert saved_bytes([act], lambda: model(x).sum(), contextlib.nullcontext) == (B * 32, 2 * B * 32)


def test_saved_bytes_leaves_no_hooks_behind_even_when_the_forward_fails():
    built = tiny("relu")

    def forward():
        built.module(torch.randn(B, 8))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        saved_bytes(built.activations, forward, contextlib.nullcontext)
    act = built.activations[0]
    assert not act._forward_hooks and not act._forward_pre_hooks


def test_an_inference_workload_runs_the_forward_without_autograd():
    built = tiny("relu")
    reference = copy.deepcopy(built.module)
    workload = prepare(built, (8,), 2, StepSetup("cpu", batch_size=B, mode="infer"), seed=3)
    assert (workload.act_saved_bytes, workload.step_saved_bytes) == (None, None)
    out = workload.step()
    assert out.is_inference() and out.shape == (B, 2)
    x = torch.randn((B, 8), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, reference(x))
    assert not built.module.training


def test_a_training_step_is_cross_entropy_and_one_sgd_step_with_momentum():
    built = tiny("silu")
    before = copy.deepcopy(built.module)
    workload = prepare(built, (8,), 2, train(), seed=5)
    assert built.module.training
    generator = torch.Generator().manual_seed(5)  # the batch, then the labels, from the seed
    x = torch.randn((B, 8), generator=generator)
    labels = torch.randint(0, 2, (B,), generator=generator)
    expected = F.cross_entropy(before(x), labels)
    expected.backward()
    loss = workload.step()
    torch.testing.assert_close(loss, expected.detach())
    for (name, new), old in zip(built.module.named_parameters(), before.parameters()):
        # the first SGD step with momentum: the buffer is the gradient, lr 1e-3
        torch.testing.assert_close(new.detach(), old.detach() - 1e-3 * old.grad, msg=name)


def test_an_output_that_is_no_logits_trains_on_its_mean_square():
    source = model_source("tests.model.nets:token_mlp", (nets.TOKENS, nets.DIM))
    built = source.build("gelu", None, seed=0)
    before = copy.deepcopy(built.module)
    workload = prepare(built, source.sample_shape, source.num_classes, train(batch=3), seed=1)
    x = torch.randn((3, nets.TOKENS, nets.DIM), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(workload.step(), before(x).square().mean().detach())
    # gelu (native) keeps its input, the first Linear's (3, 5, 16) output
    assert workload.act_saved_bytes == 3 * nets.TOKENS * nets.HIDDEN * 4


def test_logits_whose_width_is_not_the_class_count_train_on_their_mean_square():
    built = tiny("relu")
    before = copy.deepcopy(built.module)
    workload = prepare(built, (8,), 7, train(), seed=2)  # 7 classes, 2 outputs: not logits
    x = torch.randn((B, 8), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(workload.step(), before(x).square().mean().detach())


class Heads(nn.Module):
    def __init__(self, returns):
        super().__init__()
        self.fc, self.returns = nn.Linear(4, 3), returns

    def forward(self, x):
        y = self.fc(x)
        return {"tuple": lambda: (None, [y, y * 0]), "dict": lambda: {"logits": y, "aux": 2 * y},
                "none": lambda: ("no", "tensor")}[self.returns]()


@pytest.mark.parametrize("returns", ["tuple", "dict"])
def test_a_model_with_several_outputs_is_trained_on_its_first_tensor(returns):
    torch.manual_seed(0)
    model = Heads(returns)
    before = copy.deepcopy(model)
    workload = prepare(BuiltModel(model, []), (4,), 3, train(batch=4), seed=0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((4, 4), generator=generator)
    labels = torch.randint(0, 3, (4,), generator=generator)
    torch.testing.assert_close(workload.step(), F.cross_entropy(before.fc(x), labels).detach())
    assert workload.act_saved_bytes == 0


def test_a_model_that_returns_no_tensor_is_an_error():
    with pytest.raises(TypeError, match="the model returned tuple, which holds no tensor"):
        prepare(BuiltModel(Heads("none"), []), (4,), 3, train(batch=4))


def test_channels_last_applies_to_a_4d_model():
    source = model_source("tests.model.nets:conv_net", (3, 6, 6))
    built = source.build("relu", None, seed=0)
    prepare(built, source.sample_shape, None, train(batch=2, channels_last=True))
    assert built.module[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_amp_computes_in_bfloat16_off_cuda_and_keeps_a_float32_model():
    assert amp_dtype("cpu") == torch.bfloat16 and amp_dtype("cuda:0") == torch.float16
    assert amp_dtype("mps") == torch.float16
    built = tiny("relu")
    workload = prepare(built, (8,), 2, train(amp=True))
    assert built.module[0].weight.dtype == torch.float32
    assert workload.act_saved_bytes == B * 8 * 2  # relu's bfloat16 output under autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert built.module(torch.randn(B, 8)).dtype == torch.bfloat16
    assert workload.step().dtype == torch.float32  # the loss is taken in float32

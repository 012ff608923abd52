"""`actbench model timm:resnet18` and `timm:vit_tiny_patch16_224` end to end, where timm is not
installed: a `timm` module provides the two names, each built in plain torch with the layout of
timm's model (scaled down): ResNet basic blocks with in-place ReLUs and 1x1 projection
shortcuts, and a ViT whose blocks run a LayerNorm -> attention -> LayerNorm -> Linear, GELU,
Linear MLP on (N, tokens, dim) with timm's own GELU class."""

from __future__ import annotations

import csv
import importlib.machinery
import sys
import types

import pytest
from torch import nn

from .nets import GELU

PATCH, DIM, TOKENS_SIDE, CLASSES = 8, 16, 4, 10  # 32x32 images -> 16 tokens of 16 dims


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        # the 1x1 shortcut is registered before the block's activations, as in timm
        self.downsample = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                         nn.BatchNorm2d(c_out)) if stride != 1 or c_in != c_out
                           else None)
        self.conv1, self.bn1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))) + shortcut)


class ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1, self.act1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), \
            nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(8, 8, 1), BasicBlock(8, 8, 1))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2), BasicBlock(16, 16, 1))
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x):
        x = self.layer2(self.layer1(self.act1(self.bn1(self.conv1(x)))))
        return self.fc(x.mean((2, 3)))


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(DIM), nn.MultiheadAttention(DIM, 2, batch_first=True)
        self.norm2 = nn.LayerNorm(DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, 4 * DIM), GELU(), nn.Linear(4 * DIM, DIM))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, DIM, PATCH, PATCH)
        self.blocks = nn.Sequential(Block(), Block())
        self.norm, self.head = nn.LayerNorm(DIM), nn.Linear(DIM, CLASSES)

    def forward(self, x):
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, 16, DIM)
        return self.head(self.norm(self.blocks(tokens)).mean(1))


MODELS = {"resnet18": ResNet, "vit_tiny_patch16_224": VisionTransformer}


@pytest.fixture
def timm_like(monkeypatch):
    module = types.ModuleType("timm")
    module.__spec__ = importlib.machinery.ModuleSpec("timm", None)
    module.list_models = lambda pattern="*": [name for name in MODELS if name == pattern]
    module.get_pretrained_cfg = lambda name: types.SimpleNamespace(input_size=(3, 32, 32),
                                                                  num_classes=CLASSES)
    module.create_model = lambda name, pretrained=False: MODELS[name]()
    monkeypatch.setitem(sys.modules, "timm", module)
    return module


@pytest.mark.parametrize("name, activations, slots", [
    ("resnet18", "relu,mish", 9),  # the stem's and two per block
    ("vit_tiny_patch16_224", "gelu,meta_acon", 2),  # one per block's MLP, on (N, tokens, 4 dim)
])
def test_timm_models_run_with_each_activation_in_every_slot(timm_like, fast_warmup, run_cli,
                                                           tmp_path, name, activations, slots):
    out = tmp_path / "m.csv"
    result = run_cli("model", f"timm:{name}", "--act", activations, "--device", "cpu",
                     "--batch-size", "2", "--max-time", "0.02", "--threads", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    asked = {"identity", "relu", *activations.split(",")}
    assert {row["activation"] for row in rows} == asked
    assert len(rows) == 2 * len(asked)  # infer and train
    assert all(row["status"] in ("ok", "noisy") and row["replaced"] == str(slots) for row in rows)
    assert all(row["input_shape"] == "2x3x32x32" and row["model"] == f"timm:{name}" for row in rows)
    trained = [row for row in rows if row["mode"] == "train" and row["activation"] != "identity"]
    assert all(int(row["act_saved_bytes"]) > 0 for row in trained)

import fnmatch
import functools
import importlib.machinery
import importlib.util
import sys
import types

import pytest
import torch

from actbench.micro.stopping import WarmupRule

from . import nets

FAST_WARMUP = WarmupRule(min_time=0.0, min_samples=2, tolerance=10.0, max_time=0.02)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """`--threads 1` sets torch's threads for the whole process: put them back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fast_warmup(monkeypatch):
    """The session's runner with a short warm-up (the model warm-up takes 0.2 s or more per
    configuration; what is under test here is not how long it warms up)."""
    from actbench.model import runner, session

    monkeypatch.setattr(session, "ModelRunner",
                        functools.partial(runner.ModelRunner, warmup=FAST_WARMUP))


@pytest.fixture
def fake_timm(monkeypatch):
    """A `timm` module with two models: `fake_vit` (tokens (6, 8), 5 classes) builds nets.FakeViT."""
    known = ["fake_vit", "fake_resnet"]
    module = types.ModuleType("timm")
    module.__spec__ = importlib.machinery.ModuleSpec("timm", None)
    module.list_models = lambda pattern="*": [m for m in known if fnmatch.fnmatch(m, pattern)]
    module.get_pretrained_cfg = lambda name: types.SimpleNamespace(
        input_size=(nets.VIT_TOKENS, nets.VIT_DIM), num_classes=nets.VIT_CLASSES)
    created = []

    def create_model(name, pretrained=False):
        assert name == "fake_vit" and pretrained is False
        created.append(name)
        return nets.FakeViT()

    module.create_model = create_model
    module.created = created
    monkeypatch.setitem(sys.modules, "timm", module)
    return module


@pytest.fixture
def without(monkeypatch):
    """without("timm", ...): importlib.util.find_spec says those libraries are not installed."""

    def hide(*names):
        real = importlib.util.find_spec

        def find_spec(name, *args, **kwargs):
            return None if name.split(".")[0] in names else real(name, *args, **kwargs)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)

    return hide


@pytest.fixture
def run_cli():
    """Invoke the CLI in-process with a wide, colourless terminal; returns the Result (as
    tests/cli/conftest.py does)."""
    from typer.testing import CliRunner

    from actbench.cli import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), env={"COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"})

    return run

import pytest

from actbench.zoo import fast, registry


@pytest.fixture
def eager_kernels(monkeypatch):
    """Run every fast kernel's formula uncompiled for the test, then restore the compiled ones."""
    monkeypatch.setattr(fast, "compile_pointwise", lambda fn, examples: fn)
    for compiled in fast.kernels():
        monkeypatch.setattr(compiled, "_compiled", {})
    monkeypatch.setattr(fast, "_ACON_BACKWARD", {})


@pytest.fixture
def clean_registry():
    """Registrations made by a test are removed afterwards."""
    before = dict(registry._registry), dict(registry._aliases)
    yield
    registry._registry.clear(), registry._registry.update(before[0])
    registry._aliases.clear(), registry._aliases.update(before[1])

import pytest

from actbench.zoo import fast


@pytest.fixture
def eager_kernels(monkeypatch):
    """Run every fast kernel's formula uncompiled for the test, then restore the compiled ones."""
    monkeypatch.setattr(fast, "compile_pointwise", lambda fn, examples: fn)
    for compiled in fast.kernels():
        monkeypatch.setattr(compiled, "_compiled", {})
    monkeypatch.setattr(fast, "_ACON_BACKWARD", {})

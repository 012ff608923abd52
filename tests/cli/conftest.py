import pytest
from typer.testing import CliRunner

from actbench.cli import app


@pytest.fixture
def run_cli():
    """Invoke the CLI in-process with a wide, colourless terminal; returns the Result."""
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), env={"COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"})

    return run

"""Ray, the optional extra that takes actbench beyond one machine: imported only here and only
when asked for, connected to (or started locally) for the length of one command.

`ray_session(address)`: no address starts a local Ray for this command and stops it after; an
address ('auto', 'HOST:PORT', 'ray://HOST:PORT') joins an existing cluster and leaves it running.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .errors import ActbenchError

INSTALL_HINT = "pip install 'actbench[ray]'"


def require_ray():
    """The ray module, or a usage error that names the install command."""
    try:
        import ray
    except ImportError:
        raise ActbenchError(f"--executor ray needs Ray, which is not installed; install it with: "
                            f"{INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray connected for the `with` block; the module is what it yields."""
    ray = require_ray()
    if ray.is_initialized():  # a caller (a notebook, a test) owns the connection
        yield ray
        return
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address:
        options["address"] = address
    else:
        options.update(num_cpus=num_cpus, include_dashboard=False)
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise ActbenchError(f"could not start or reach {where}: {str(error).splitlines()[0]}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_gpus(ray) -> float:
    """GPUs the connected cluster offers in all."""
    return float(ray.cluster_resources().get("GPU", 0))


def cluster_cpus(ray) -> float:
    return float(ray.cluster_resources().get("CPU", 0))

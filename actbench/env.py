"""What machine and software a measurement ran on; every report records it.

Every probe is best-effort: a piece that cannot be read is "n/a", never an exception, so a report
is written on any machine (no GPU, no NVML, containers without /proc).
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any

NA = "n/a"


def _safe(probe, default: Any = NA) -> Any:
    try:
        value = probe()
    except Exception:  # noqa: BLE001 - an unreadable piece is "n/a" by design
        return default
    return default if value in (None, "") else value


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo on Linux, sysctl on macOS, platform otherwise)."""
    def from_proc() -> str | None:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
        return None

    def from_sysctl() -> str | None:
        import subprocess

        result = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                text=True, timeout=2, check=False)
        return result.stdout.strip() or None

    return _safe(from_proc, None) or _safe(from_sysctl, None) or _safe(platform.processor)


def capture_host() -> str:
    return _safe(socket.gethostname, "unknown-host")


def torch_info() -> dict[str, Any]:
    import torch

    cuda_available = _safe(torch.cuda.is_available, False)
    return {
        "torch": torch.__version__,
        "torch_cuda": _safe(lambda: torch.version.cuda),
        "torch_hip": _safe(lambda: torch.version.hip),
        "cudnn": _safe(lambda: torch.backends.cudnn.version()),
        "cuda_available": bool(cuda_available),
        "mps_available": bool(_safe(lambda: torch.backends.mps.is_available(), False)),
        "torch_threads": _safe(torch.get_num_threads),
        "torch_interop_threads": _safe(torch.get_num_interop_threads),
    }


def cuda_device_info(index: int) -> dict[str, Any]:
    """What torch itself knows about one CUDA device (works without NVML)."""
    import torch

    props = torch.cuda.get_device_properties(index)
    return {
        "name": props.name,
        "memory_total_bytes": int(props.total_memory),
        "sm_count": int(props.multi_processor_count),
        "compute_capability": f"{props.major}.{props.minor}",
        "l2_cache_bytes": _safe(lambda: int(props.L2_cache_size)),
    }


def gpu_info(nvml=None) -> list[dict[str, Any]]:
    """Per GPU: torch's view merged with NVML's (driver, clocks, bus width, power, persistence)."""
    import torch

    count = _safe(torch.cuda.device_count, 0) if _safe(torch.cuda.is_available, False) else 0
    if nvml is None:
        from .nvml import Nvml

        nvml = Nvml()
    nvml_ok = bool(_safe(lambda: nvml.available, False))
    if not count:  # e.g. a CPU-only torch on a GPU machine: NVML's view alone
        return [{"index": i, **info} for i, info in enumerate(_safe(nvml.gpus, []))] if nvml_ok else []
    from .nvml import nvml_index

    gpus: list[dict[str, Any]] = []
    for index in range(count):
        info: dict[str, Any] = {"index": index, **_safe(lambda: cuda_device_info(index), {})}
        matched = _safe(lambda: nvml_index(index, nvml), None) if nvml_ok else None
        if matched is not None:  # matched by UUID: cuda:N is not NVML's N in general
            extra = _safe(lambda: nvml.gpu_info(matched), {}) or {}
            info.update({key: value for key, value in extra.items()
                         if value is not None or key not in info})
        gpus.append(info)
    return gpus


def capture(nvml=None) -> dict[str, Any]:
    """The whole environment as plain data (for JSON sidecars and `actbench env`)."""
    import psutil

    from . import __version__

    memory = _safe(psutil.virtual_memory, None)
    return {
        "actbench": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        **torch_info(),
        "os": _safe(platform.platform),
        "host": _safe(socket.gethostname),
        "cpu": cpu_model(),
        "cpu_arch": _safe(platform.machine),
        "cpu_cores_physical": _safe(lambda: psutil.cpu_count(logical=False)),
        "cpu_cores_logical": _safe(lambda: psutil.cpu_count(logical=True)),
        "cpu_affinity": _safe(lambda: len(os.sched_getaffinity(0))),
        "ram_bytes": memory.total if memory is not None else NA,
        "gpus": gpu_info(nvml),
    }


def key_columns(environment: dict[str, Any]) -> dict[str, Any]:
    """The few environment columns repeated in every report row (the rest is in the sidecar)."""
    gpus = environment.get("gpus") or []
    names = sorted({str(gpu.get("name", NA)) for gpu in gpus})
    return {
        "host": environment.get("host", NA),
        "cpu": environment.get("cpu", NA),
        "gpu": "; ".join(names) if names else NA,
        "torch_version": environment.get("torch", NA),
        "actbench_version": environment.get("actbench", NA),
    }


def flatten(environment: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, value) lines for display, one GPU field per line."""
    lines: list[tuple[str, str]] = []
    for key, value in environment.items():
        if key == "gpus":
            if not value:
                lines.append(("gpus", "none"))
            for gpu in value:
                for gpu_key, gpu_value in gpu.items():
                    if gpu_key != "index":
                        lines.append((f"gpu{gpu['index']}.{gpu_key}", _format(gpu_value)))
        else:
            lines.append((key, _format(value)))
    return lines


def _format(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 2**30:
        return f"{value / 2**30:.1f} GiB"
    return NA if value is None else str(value)

"""Which environments the compared reports come from, and a warning for every difference."""

from __future__ import annotations

import pandas as pd

from ..records.schema import ENV_COLUMNS
from .load import Reports

# Sidecar facts that change timings or results as much as the row columns do.
SIDECAR_KEYS = ("python", "torch_cuda", "cudnn", "torch_threads", "os", "cpu_cores_logical")
LABELS = {"host": "host", "cpu": "CPU", "gpu": "GPU", "torch_version": "torch",
          "actbench_version": "actbench", "python": "Python", "torch_cuda": "CUDA",
          "cudnn": "cuDNN", "torch_threads": "torch threads", "os": "OS",
          "cpu_cores_logical": "logical CPUs"}


def environments(reports: Reports) -> dict[str, dict[str, str]]:
    """Per report file: the environment columns of its rows, then its sidecar's key facts."""
    found: dict[str, dict[str, str]] = {}
    for file in reports.files:
        frame = reports.frame(file.kind)
        rows = frame[frame["file"] == file.label] if "file" in frame else pd.DataFrame()
        facts: dict[str, str] = {}
        for column in ENV_COLUMNS:
            if column in rows and len(rows):
                values = sorted(set(rows[column].astype(str).unique()) - {""})
                if values:
                    facts[column] = " / ".join(values)
        for key in SIDECAR_KEYS:
            value = file.environment.get(key)
            if value not in (None, "", "n/a"):
                facts[key] = str(value)
        found[file.label] = facts
    return found


def difference_warnings(envs: dict[str, dict[str, str]]) -> list[str]:
    """One warning per fact that differs between reports: 'reports differ in CPU: a (x) vs b (y)'.

    Host names alone are not a warning when the hardware and software agree.
    """
    warnings = []
    keys = [k for k in (*ENV_COLUMNS, *SIDECAR_KEYS) if k != "host"]
    for key in keys:
        values: dict[str, list[str]] = {}
        for label, facts in envs.items():
            if key in facts:
                values.setdefault(facts[key], []).append(label)
        if len(values) > 1:
            described = " vs ".join(f"{value} ({', '.join(labels)})" for value, labels in values.items())
            warnings.append(f"reports differ in {LABELS.get(key, key)}: {described}; "
                            "their numbers are compared all the same")
    return warnings

"""Where reports go: default names, sidecar and epoch-file names, and an up-front writability check."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ActbenchError
from .clock import utc_stamp

REPORTS_FOLDER = Path("reports")


def file_name_part(text: str) -> str:
    """`text` made safe inside a file name (host and suite names in default report paths); `+`
    stays, as it joins the devices of a micro report (micro-host-cpu+cuda0-...)."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(text))


def stamped_report_path(kind: str, *parts: str, folder: Path = REPORTS_FOLDER) -> Path:
    """reports/<kind>-<part>-...-<UTC stamp>.csv, each part made safe for a file name."""
    words = [kind, *(file_name_part(part) for part in parts), utc_stamp()]
    return Path(folder) / ("-".join(words) + ".csv")


def sidecar_path(report: Path) -> Path:
    """The JSON sidecar of a report: the same stem, .json."""
    return Path(report).with_suffix(".json")


def epochs_path(runs_path: Path) -> Path:
    """A train report's per-epoch file: <stem>.epochs.csv beside the runs file."""
    runs_path = Path(runs_path)
    return runs_path.with_name(runs_path.stem + ".epochs.csv")


@contextmanager
def folders_for_a_check(folder: Path) -> Iterator[None]:
    """Around an up-front writability check that may create `folder`: the folders it created
    (deepest first) are removed again afterwards, so a command that fails after its checks leaves
    nothing behind; the writer creates them when it writes."""
    folder = Path(folder)
    created = [path for path in (folder, *folder.parents) if not path.exists()]
    try:
        yield
    finally:
        for path in created:
            try:
                path.rmdir()
            except OSError:  # no longer empty (someone else writes there) or already gone
                break


def check_writable_folder(folder: Path) -> None:
    """Fail before any work when files cannot be written into `folder` (a missing one is created
    for the check and removed again)."""
    import tempfile

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ActbenchError(f"--out '{folder}' is a file; expected a folder")
    with folders_for_a_check(folder):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):  # a real write: permission bits say little to root
                pass
        except OSError as error:
            raise ActbenchError(f"cannot write into the folder {folder}: "
                                f"{error.strerror or error}") from None


def check_writable(path: Path) -> None:
    """Fail before any measurement when the report cannot be written; nothing is left behind
    (a missing folder is created for the check and removed again)."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise ActbenchError(f"output path {path} is a directory; expected a file name such as "
                            f"{path / 'report.csv'}")
    if path.suffix.lower() != ".csv":
        raise ActbenchError(f"output path {path} must end in .csv")
    with folders_for_a_check(path.parent):
        _check_creatable(path)


def _check_creatable(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ActbenchError(f"cannot create the folder {path.parent} for {path.name}: "
                            f"{error.strerror or error}") from None
    existed = path.exists()
    try:  # a real open: permission bits say little to root or on special file systems
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise ActbenchError(f"cannot write {path}: {error.strerror or error}") from None
    if not existed:
        path.unlink(missing_ok=True)

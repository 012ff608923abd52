"""Reading reports back: files and globs in, one pandas frame per report kind out.

Every file's kind comes from its `kind` and `schema_version` columns (raw sample files, which have
neither, from their exact header), so `compare reports/*.csv` sorts itself out and like is
compared with like. Problems are ActbenchErrors that name the file and what was expected.
"""

from __future__ import annotations

import codecs
import csv
import functools
import glob
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ActbenchError
from ..records.schema import (ENV_COLUMNS, MICRO_KEY, MICRO_SAMPLE_COLUMNS, MICRO_SAMPLE_LEGACY,
                             SCHEMA_VERSION,
                             TRAIN_EPOCH_RESULT, TRAIN_RUN_KEY, TRAIN_RUN_LAYOUTS,
                             TRAIN_RUN_RESULT)
from .model_rows import MODEL_TEXT_COLUMNS, as_micro_rows

KINDS = ("micro", "train", "train_epoch", "micro_samples")
FILE_KINDS = (*KINDS, "model")  # a model report's rows join the micro frame (model_rows.py)

# Columns kept as text; every other column is converted to numbers (blank -> NaN).
TEXT_COLUMNS = frozenset({
    "kind", "timestamp_utc", *MICRO_KEY, "timer", "status", "message", "flags", "converged",
    "fits_l2", "finite", "throttled", "throttle_reasons", *ENV_COLUMNS,
    "suite", "config_hash", "dataset", "model", "optimizer", "device", "amp", "peak_kind",
    *MODEL_TEXT_COLUMNS,
})
RUN_COLUMNS = frozenset({"kind", "schema_version", "timestamp_utc", "file", *TRAIN_RUN_KEY,
                         *TRAIN_RUN_RESULT, *TRAIN_RUN_LAYOUTS[-1], *TRAIN_EPOCH_RESULT,
                         *ENV_COLUMNS})
NOISE_COLUMN = re.compile(r"noise_[^_]+_(acc|loss)")  # noise_0.5_acc: a result, not a sweep key


@dataclass(frozen=True)
class ReportFile:
    path: Path
    kind: str
    label: str  # short and unique among the files compared: what `--by file` shows
    sidecar: dict | None = None

    @property
    def environment(self) -> dict:
        environment = (self.sidecar or {}).get("environment")
        return environment if isinstance(environment, dict) else {}


@dataclass
class Reports:
    files: list[ReportFile]
    micro: pd.DataFrame = field(default_factory=pd.DataFrame)
    train: pd.DataFrame = field(default_factory=pd.DataFrame)
    epochs: pd.DataFrame = field(default_factory=pd.DataFrame)
    samples: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)  # problems that left data out

    def frame(self, kind: str) -> pd.DataFrame:
        return {"micro": self.micro, "model": self.micro, "train": self.train,
                "train_epoch": self.epochs, "micro_samples": self.samples}[kind]

    def files_of(self, kind: str) -> list[ReportFile]:
        return [f for f in self.files if f.kind == kind]


def expand_paths(patterns: Iterable[str]) -> list[Path]:
    """Files named, globs expanded (for shells that do not), folders meaning their CSV files.

    JSON sidecars given next to their CSV (`reports/*` as the shell expands it) are skipped: they
    are read with their reports.
    """
    paths: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            inside = sorted(p for p in path.glob("*.csv") if p.is_file())
            if not inside:
                raise ActbenchError(f"folder '{path}' holds no .csv reports")
            paths += inside
        elif path.exists():  # an existing name is a file even when it contains [ or *
            paths.append(path)
        elif any(char in pattern for char in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(pattern, recursive=True))]
            if not any(m.is_file() for m in matches):
                raise ActbenchError(f"no report matches '{pattern}'; expected CSV files written by "
                                    "actbench micro or train")
            paths += [m for m in matches if m.is_file()]
        else:
            raise ActbenchError(f"report '{path}' does not exist")
    unique = list(dict.fromkeys(p.resolve() for p in paths))
    csv_stems = {p.with_suffix("") for p in unique if p.suffix.lower() == ".csv"}
    unique = [p for p in unique if not (p.suffix.lower() == ".json" and p.with_suffix("") in csv_stems)]
    if not unique:
        raise ActbenchError("no reports given; expected CSV files written by actbench micro, model or train")
    return unique


def sidecar_for(path: Path) -> Path:
    """The JSON sidecar of a report; epoch and sample files share their runs report's sidecar."""
    name = path.name
    for suffix in (".epochs.csv", ".samples.csv"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path.with_suffix(".json")


def _read_sidecar(path: Path, warnings: list[str]) -> dict | None:
    """The report's sidecar, or None with a warning: sidecars are optional (the rows carry the key
    environment columns), but a reader should know the full environment is missing."""
    side = sidecar_for(path)
    if not side.exists():
        warnings.append(f"'{path}' has no sidecar ({side.name}): its environment shows only the "
                        "columns its rows carry")
        return None
    try:
        content = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else \
            " ".join(str(error).split())[:80]
        warnings.append(f"the sidecar {side} cannot be read ({reason}); it is left out")
        return None
    if not isinstance(content, dict):
        warnings.append(f"the sidecar {side} is not a JSON object; it is left out")
        return None
    return content


# Cells a numeric column may hold for "no value" without the column turning into text.
_BLANKS = ["", "nan", "NaN", "-nan", "NA", "N/A", "n/a", "null", "NULL", "None", "<NA>"]
# Read as text although numeric: _sane_medians quotes the cells it leaves out as they are written.
_RAW_NUMBERS = frozenset({"median_s"})


def _read_csv(path: Path, warnings: list[str]) -> pd.DataFrame:
    """All complete rows: text columns as text, numbers parsed as they are read (numeric() does
    the rest). A last line cut off mid-write (a killed process) is dropped with a warning; any
    other row with the wrong number of fields is an error naming its line."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ActbenchError(f"cannot read report '{path}': {error.strerror}") from None
    data = data.removeprefix(codecs.BOM_UTF8)
    if not data.strip():
        raise ActbenchError(f"report '{path}' is empty; expected a CSV written by actbench micro, "
                            "model or train")
    if not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        if cut and data[cut:].strip():
            warnings.append(f"'{path}' ends in a truncated row (a write was interrupted); it is "
                            "left out")
        data = data[:cut] if cut else data + b"\n"
    try:
        header = next(csv.reader([data[:data.index(b"\n")].decode("utf-8")]), [])
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ActbenchError(f"report '{path}' names the column(s) {', '.join(repeated)} more than "
                            "once; expected a CSV written by actbench micro, model or train")
    if not header:
        return pd.DataFrame()
    _check_field_counts(path, data, len(header))
    return _parse(path, data, header)


def _not_utf8(path: Path) -> ActbenchError:
    return ActbenchError(f"cannot read report '{path}': not UTF-8 text; expected a CSV written by "
                         "actbench micro or train")


def _check_field_counts(path: Path, data: bytes, width: int) -> None:
    """Every record after the header must have `width` fields. Lines are counted as bytes (commas
    plus one); the few lines with quotes are parsed as CSV, and a file where a quoted field spans
    lines is read with the csv module throughout."""
    number, quoted = 1, []
    for line in io.BytesIO(data):
        if not line.rstrip(b"\r\n"):
            continue  # blank lines are no records
        if b'"' in line:
            if line.count(b'"') % 2:
                return _check_records(path, data, width)
            quoted.append((number, line))
        elif number > 1 and line.count(b",") + 1 != width:
            _damaged(path, number, line.count(b",") + 1, width)
        number += 1
    for number, line in quoted:
        fields = len(next(csv.reader([line.decode("utf-8", "replace")])))
        if number > 1 and fields != width:
            _damaged(path, number, fields, width)
    return None


def _check_records(path: Path, data: bytes, width: int) -> None:
    """_check_field_counts for files whose quoted fields span lines: the csv module's records."""
    try:
        records = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        body = (record for index, record in enumerate(records) if index and record)
        for number, record in enumerate(body, start=2):
            if len(record) != width:
                _damaged(path, number, len(record), width)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except csv.Error as error:
        raise ActbenchError(f"cannot read report '{path}': {error}") from None


def _damaged(path: Path, number: int, fields: int, width: int):
    raise ActbenchError(f"report '{path}' line {number} has {fields} fields, the header {width}; "
                        "the file is damaged")


def _parse(path: Path, data: bytes, header: list[str]) -> pd.DataFrame:
    """The rows of a checked file: text columns as text, numbers read as numbers where every cell
    of the column is one or blank (numeric() converts the rest)."""
    text = [c for c in header if _is_text(c, header) or c in _RAW_NUMBERS]
    try:
        frame = pd.read_csv(io.BytesIO(data), header=0, names=header, encoding="utf-8",
                            dtype=dict.fromkeys(text, str), keep_default_na=False,
                            na_values={c: _BLANKS for c in header if c not in text},
                            skip_blank_lines=True)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except (pd.errors.ParserError, ValueError) as error:
        reason = " ".join(str(error).split())
        raise ActbenchError(f"cannot read report '{path}': {reason}") from None
    return frame


def _is_text(column: str, columns) -> bool:
    """Whether a column holds text (names, flags, environment, sweep values), not numbers."""
    return column in TEXT_COLUMNS or column == "file" or column in _sweep_names(tuple(columns))


def detect_kind(path: Path, frame: pd.DataFrame) -> str:
    """micro, train, train_epoch or micro_samples; anything else is refused with the reason."""
    columns = list(frame.columns)
    if columns in (list(MICRO_SAMPLE_COLUMNS), list(MICRO_SAMPLE_LEGACY)):
        return "micro_samples"
    if "kind" not in columns or "schema_version" not in columns:
        raise ActbenchError(f"'{path}' is not an actbench report (no kind / schema_version columns); "
                            "expected a CSV written by actbench micro, model or train")
    if frame.empty:
        raise ActbenchError(f"report '{path}' has a header but no rows; nothing finished there")
    kinds = sorted(set(frame["kind"].astype(str).unique()) - {""})
    if len(kinds) != 1 or kinds[0] not in FILE_KINDS:
        found = ", ".join(kinds) or "none"
        raise ActbenchError(f"'{path}' has report kind {found}; expected one of micro, model, "
                            "train, train_epoch")
    versions = pd.to_numeric(frame["schema_version"], errors="coerce")
    if versions.isna().any():
        raise ActbenchError(f"'{path}' has a schema_version that is not a number")
    if versions.max() > SCHEMA_VERSION:
        raise ActbenchError(f"'{path}' has schema version {int(versions.max())}, newer than this "
                            f"actbench reads ({SCHEMA_VERSION}); upgrade actbench")
    return kinds[0]


def numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers where the schema has numbers (blank cells, and cells that are no number, become
    NaN); text columns stay text. Columns already read as numbers are kept as they are."""
    converted = {}
    for column in frame.columns:
        if _is_text(column, frame.columns):
            continue
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):  # every cell true / false: no number among them
            converted[column] = pd.Series(np.nan, index=frame.index)
        elif not pd.api.types.is_numeric_dtype(values):  # true / false among numbers: no number
            converted[column] = pd.to_numeric(values.astype(str), errors="coerce")
    return frame.assign(**converted) if converted else frame


def sweep_columns(frame: pd.DataFrame) -> list[str]:
    """The sweep keys of a train or epoch frame: the dotted columns (model.depth, optim.lr) that
    are neither report columns nor noise evaluations (noise_0.5_acc has a dot too)."""
    return list(_sweep_names(tuple(frame.columns)))


@functools.lru_cache(maxsize=64)
def _sweep_names(columns: tuple) -> tuple[str, ...]:
    return tuple(c for c in columns
                 if "." in c and c not in RUN_COLUMNS and not NOISE_COLUMN.fullmatch(c))


def _labels(paths: Sequence[Path]) -> list[str]:
    """File stems, made unique with as many parent folders as needed where stems clash."""
    stems = [p.name[:-4] if p.name.endswith(".csv") else p.name for p in paths]
    labels = list(stems)
    for depth in range(1, max(len(p.parts) for p in paths)):
        clashes = pd.Series(labels).duplicated(keep=False)
        if not clashes.any():
            break
        labels = ["/".join([*p.parts[-1 - depth:-1], stem]) if clash else label
                  for p, stem, label, clash in zip(paths, stems, labels, clashes)]
    return labels


MEASURED = ("ok", "noisy")


def _sane_medians(frame: pd.DataFrame, label: str, warnings: list[str]) -> pd.DataFrame:
    """A measured row's median must be a positive finite number of seconds, and its interval must
    hold it: rows without such a median are left out, inverted intervals dropped, each with a
    warning (a hand-edited or foreign report, not something actbench writes)."""
    if "median_s" not in frame or "status" not in frame:
        return frame
    measured = frame["status"].isin(MEASURED)
    median = pd.to_numeric(frame["median_s"], errors="coerce")
    bad = measured & ~(np.isfinite(median) & (median > 0))
    if bad.any():
        shown = ", ".join(repr(v) for v in list(dict.fromkeys(frame.loc[bad, "median_s"]))[:3])
        warnings.append(f"'{label}': {int(bad.sum())} measured row(s) have a median_s that is not a "
                        f"positive number of seconds ({shown}); they are left out")
        frame = frame[~bad]
    if {"ci_low_s", "ci_high_s"} <= set(frame.columns):
        median = pd.to_numeric(frame["median_s"], errors="coerce")
        low = pd.to_numeric(frame["ci_low_s"], errors="coerce")
        high = pd.to_numeric(frame["ci_high_s"], errors="coerce")
        inverted = low.notna() & high.notna() & ~((low <= median) & (median <= high))
        if inverted.any():
            warnings.append(f"'{label}': {int(inverted.sum())} row(s) have an interval that does not "
                            "hold their median (ci_low_s <= median_s <= ci_high_s); those intervals "
                            "are left out")
            frame = frame.copy()
            frame.loc[inverted, ["ci_low_s", "ci_high_s"]] = np.nan
    return frame


def _machine_labels(frame: pd.DataFrame, label: str):
    """One micro report measured on several machines (`micro --executor ray`) is one file per
    machine for comparing: 'label [host GPU]'; a report of one machine keeps its label."""
    if not {"host", "gpu"} <= set(frame.columns) or frame.empty:
        return label
    machines = frame["host"].astype(str) + " " + frame["gpu"].astype(str)
    if machines.nunique() < 2:
        return label
    return label + " [" + machines + "]"


def load_reports(patterns: Iterable[str]) -> Reports:
    """Every report named, grouped by kind, with a `file` column holding each file's label."""
    paths = expand_paths(patterns)
    frames: dict[str, list[pd.DataFrame]] = {kind: [] for kind in KINDS}
    files: list[ReportFile] = []
    warnings: list[str] = []
    for path, label in zip(paths, _labels(paths)):
        frame = _read_csv(path, warnings)
        kind = detect_kind(path, frame)
        if kind == "model":  # compared as micro rows are (compare/model_rows.py)
            frame = as_micro_rows(frame)
        if kind in ("micro", "model"):
            frame = _sane_medians(frame, label, warnings)
        frame.insert(0, "file", _machine_labels(frame, label) if kind == "micro" else label)
        frames["micro" if kind == "model" else kind].append(frame)
        files.append(ReportFile(path, kind, label, _read_sidecar(path, warnings)))
    merged = {kind: numeric(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame()
              for kind, parts in frames.items()}
    merged["micro_samples"] = _attach_samples(files, merged["micro"], merged["micro_samples"],
                                              warnings)
    return Reports(files, merged["micro"], merged["train"], merged["train_epoch"],
                   merged["micro_samples"], warnings)


def _attach_samples(files: list[ReportFile], micro: pd.DataFrame, samples: pd.DataFrame,
                    warnings: list[str]) -> pd.DataFrame:
    """Give each sample file the micro report it belongs to: the one of the same stem
    (x.samples.csv -> x.csv), else the only micro report. A configuration's samples are kept only
    where their median is the row's median_s (the row was computed from them); the rest are
    left out with a warning, so intervals never come from another run's samples."""
    if samples.empty:
        return samples
    micro_files = [f for f in files if f.kind == "micro"]
    by_stem = {f.path.with_suffix(""): f.label for f in micro_files}
    kept = []
    for f in files:
        if f.kind != "micro_samples":
            continue
        stem = f.path.with_name(f.path.name.removesuffix(".csv").removesuffix(".samples"))
        owner = by_stem.get(stem) or (micro_files[0].label if len(micro_files) == 1 else None)
        own = samples[samples["file"] == f.label]
        if owner is None:
            warnings.append(f"samples '{f.path}' belong to no micro report given (expected "
                            f"{stem.name}.csv); they are not used")
            continue
        owner_rows = micro[micro["file"] == owner]
        matching, mismatched = _matching_samples(_with_threads(own, owner_rows), owner_rows)
        if mismatched:
            warnings.append(f"samples '{f.path}': {mismatched} configuration(s) do not match the "
                            f"medians in '{owner}'; their samples are not used")
        if len(matching):
            kept.append(matching.assign(file=owner))
    return pd.concat(kept, ignore_index=True) if kept else samples.iloc[0:0]


def _with_threads(own: pd.DataFrame, micro: pd.DataFrame) -> pd.DataFrame:
    """Samples written before threads joined the key take the thread count of their row."""
    if "threads" in own and own["threads"].notna().all():
        return own
    keys = list(MICRO_KEY[:-1])
    threads = micro.drop_duplicates(keys).set_index(keys)["threads"]
    at = threads.index.get_indexer(pd.MultiIndex.from_frame(own[keys].astype(str)))
    values = np.where(at >= 0, threads.to_numpy(dtype=object)[np.maximum(at, 0)], "")
    return own.assign(threads=values)


def _matching_samples(own: pd.DataFrame, micro: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The samples of the configurations whose median is their micro row's median_s (grouped by
    configuration, in file order), and how many configurations do not match."""
    keys = list(MICRO_KEY)
    group = own.groupby(keys, sort=False).ngroup().to_numpy(dtype=float)
    medians = own.groupby(keys, sort=False)["seconds_per_call"].median()
    rows = micro.drop_duplicates(keys).set_index(keys)["median_s"]
    at = rows.index.get_indexer(medians.index)
    expected = np.full(len(at), np.nan)
    expected[at >= 0] = rows.to_numpy(dtype=float, na_value=np.nan)[at[at >= 0]]
    matches = np.isclose(medians.to_numpy(dtype=float), expected, rtol=1e-6, atol=0)
    keep = np.isfinite(group)
    keep[keep] = matches[group[keep].astype(np.int64)]
    order = np.argsort(np.where(keep, group, -1), kind="stable")[-int(keep.sum()):] \
        if keep.any() else np.array([], dtype=np.int64)
    return own.iloc[order], int((~matches).sum())


def parse_where(conditions: Iterable[str]) -> list[tuple[str, bool, list[str]]]:
    """`KEY=VALUE[,VALUE...]` or `KEY!=VALUE`: (column, negated, accepted values)."""
    parsed = []
    for text in conditions:
        negated = "!=" in text
        key, sep, values = text.partition("!=" if negated else "=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ActbenchError(f"--where '{text}' is malformed; expected KEY=VALUE, KEY=V1,V2 or "
                                "KEY!=VALUE (e.g. dtype=float32)")
        parsed.append((key, negated, [v.strip() for v in values.split(",")]))
    return parsed


def _matches(column: pd.Series, values: list[str]) -> pd.Series:
    """Text equality, or numeric equality where both sides are numbers (1048576 == 1.048576e6)."""
    text = column.astype(str)
    hit = text.isin(values)
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    if len(numbers) and pd.api.types.is_numeric_dtype(column):
        hit |= column.isin(list(numbers))
    return hit


def apply_where(reports: Reports, conditions: Iterable[str]) -> Reports:
    """Keep the rows that meet every condition; a key that no report has is an error."""
    parsed = parse_where(conditions)
    frames = {kind: reports.frame(kind) for kind in KINDS}
    for key, negated, values in parsed:
        holders = [kind for kind, frame in frames.items() if key in frame.columns]
        if not holders:
            known = sorted({c for frame in frames.values() for c in frame.columns})
            raise ActbenchError(f"--where '{key}': no report has that column; known columns: "
                                f"{', '.join(known)}")
        for kind in holders:
            frame = frames[kind]
            hit = _matches(frame[key], values)
            frames[kind] = frame[~hit if negated else hit].reset_index(drop=True)
    if all(frames[kind].empty for kind in ("micro", "train", "train_epoch")):
        raise ActbenchError(f"no rows left after --where {' '.join(conditions)}")
    left = {label for frame in frames.values() if "file" in frame for label in set(frame["file"])}
    return Reports([f for f in reports.files if f.label in left], frames["micro"], frames["train"],
                   frames["train_epoch"], frames["micro_samples"], reports.warnings)

"""Any file as byte-level language-model data: the file's bytes are the tokens (vocabulary 256).

The file is split where it stands (the last val_fraction is the validation split, so no text of it
is seen in training), each split is cut into windows of seq_len tokens, and a window's targets are
the same tokens shifted by one. The tokens are cached as .npz next to the other data caches, under
a name derived from the file's path, together with the file's size, modification time and SHA-256:
a cache that does not match the file now, or whose own digest is wrong, is rebuilt, never trusted,
and it is read without unpickling anything (allow_pickle=False).
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..errors import ActbenchError
from .npz_cache import write_npz
from .sequences import MAX_SEQ_LEN

VOCAB_SIZE = 256
# `data:` options of the text data set (besides train_subset) and their defaults
TEXT_OPTIONS: dict[str, object] = {"path": None, "seq_len": 256, "val_fraction": 0.1}
SOURCES = ("tiny-shakespeare: https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
           "tinyshakespeare/input.txt; enwik8: http://mattmahoney.net/dc/enwik8.zip (unzipped); "
           "WikiText-103 raw: wiki.train.raw of wikitext-103-raw-v1.zip (Salesforce/wikitext)")

Problem = tuple[str, str]  # (key path, what was expected)
Splits = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def option_problem(options: Mapping[str, object]) -> Problem | None:
    """The first problem of the text options (None: they fit); the file itself: check_file."""
    path, seq_len, fraction = options["path"], options["seq_len"], options["val_fraction"]
    if path is None:
        return ("data.path", f"required: the file to read, e.g. {SOURCES}")
    if not isinstance(path, str) or not path.strip():
        return ("data.path", f"expected a file path, got {json.dumps(path, default=str)}")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or not 1 <= seq_len <= MAX_SEQ_LEN:
        return ("data.seq_len", f"expected an integer >= 1 and <= {MAX_SEQ_LEN}, got "
                                f"{json.dumps(seq_len, default=str)}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        return ("data.val_fraction", f"expected a number > 0 and < 1, got "
                                     f"{json.dumps(fraction, default=str)}")
    return None


def split_sizes(total: int, val_fraction: float) -> tuple[int, int]:
    """(training, validation) bytes: the validation split is the last val_fraction, rounded."""
    validation = round(total * val_fraction)
    return total - validation, validation


def check_file(options: Mapping[str, object]) -> None:
    """Raise ActbenchError when the options are wrong, the file is missing, or too small for one
    window in each split. Cheap (a stat), so suite validation calls it before the first run."""
    problem = option_problem(options)
    if problem:
        raise ActbenchError(f"{problem[0]}: {problem[1]}")
    path = Path(str(options["path"])).expanduser()
    try:
        info = path.stat()
    except FileNotFoundError:
        where = "" if path.is_absolute() else f" (relative to the current directory, {Path.cwd()})"
        raise ActbenchError(f"data.path {path} does not exist{where}; put the file there or point "
                            f"data.path at it (--set data.path=FILE); text reads any file of "
                            f"bytes, e.g. {SOURCES}") from None
    except OSError as error:
        raise ActbenchError(f"data.path: cannot read {path}: {error.strerror or error}") from error
    if not path.is_file():
        raise ActbenchError(f"data.path {path} is not a file; expected a file of text (or any bytes)")
    _check_size(path, info.st_size, options["seq_len"], options["val_fraction"])


def _check_size(path: Path, total: int, seq_len: int, val_fraction: float) -> None:
    train, validation = split_sizes(total, val_fraction)
    if min(train, validation) < seq_len + 1:
        raise ActbenchError(
            f"data.path {path} has {total} bytes, too few for one window of seq_len {seq_len} in "
            f"each split (a window needs seq_len + 1 = {seq_len + 1} bytes, its targets being shifted "
            f"by one; val_fraction {val_fraction:g} leaves {train} for training and {validation} "
            "for validation); use a larger file, a smaller data.seq_len or another val_fraction")


def load_text(options: Mapping[str, object], cache_dir: Path) -> Splits:
    """(train_x, train_y, test_x, test_y): int64 windows (N, seq_len) and their shifted targets.

    Each split's inputs and targets are two views of one buffer (a token costs 8 bytes, not 16):
    they must not be changed in place.
    """
    check_file(options)
    path = Path(str(options["path"])).expanduser()
    tokens = read_tokens(path, cache_dir)
    seq_len = options["seq_len"]
    _check_size(path, len(tokens), seq_len, options["val_fraction"])  # the file may have changed
    train, _ = split_sizes(len(tokens), options["val_fraction"])
    return (*_windows(tokens[:train], seq_len), *_windows(tokens[train:], seq_len))


def _windows(tokens: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Consecutive, non-overlapping windows; the bytes after the last whole window are unused."""
    count = (len(tokens) - 1) // seq_len
    flat = torch.from_numpy(tokens[:count * seq_len + 1].astype(np.int64))
    return flat[:-1].view(count, seq_len), flat[1:].view(count, seq_len)


# --------------------------------------------------------------------------- the token cache


def cache_path(path: Path, cache_dir: Path) -> Path:
    """One cache file per source file (by its resolved path); a changed file overwrites it."""
    resolved = str(path.resolve())
    key = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", path.name)[:40]
    return cache_dir / f"text-{stem}-{key}.npz"


def read_tokens(path: Path, cache_dir: Path) -> np.ndarray:
    """The file's bytes as uint8 tokens, from the cache when it matches the file, else read and cached."""
    try:
        info = path.stat()
    except OSError as error:
        raise ActbenchError(f"data.path: cannot read {path}: {error.strerror or error}") from error
    stamp = np.array([info.st_size, info.st_mtime_ns], dtype=np.int64)
    cache = cache_path(path, cache_dir)
    tokens = _read_cache(cache, stamp)
    if tokens is not None:
        return tokens
    try:
        tokens = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    except OSError as error:
        raise ActbenchError(f"data.path: cannot read {path}: {error.strerror or error}") from error
    if len(tokens) == info.st_size:  # not changing while it was read
        write_npz(cache, {"tokens": tokens, "source": stamp, "digest": _digest(tokens)})
    return tokens


def _digest(tokens: np.ndarray) -> np.ndarray:
    return np.frombuffer(hashlib.sha256(np.ascontiguousarray(tokens)).digest(), dtype=np.uint8)


def _read_cache(cache: Path, stamp: np.ndarray) -> np.ndarray | None:
    """The cached tokens if the cache is whole and made from the file as it is now, else None."""
    try:
        with np.load(cache, allow_pickle=False) as stored:
            tokens, source, digest = stored["tokens"], stored["source"], stored["digest"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None  # absent or damaged: rebuilt
    if (tokens.dtype != np.uint8 or tokens.ndim != 1 or source.shape != stamp.shape
            or not np.array_equal(source, stamp) or len(tokens) != stamp[0]
            or digest.dtype != np.uint8 or not np.array_equal(digest, _digest(tokens))):
        return None
    return tokens

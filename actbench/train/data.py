"""Data sets read from their own file formats (no torchvision), as normalised in-memory tensors.

Interface (the suite validator and the run executor rely on it):

- ``DATASET_OPTIONS[name]``: the `data:` keys each data set accepts, with their defaults.
- ``input_shape(name, options)``, ``INPUT_SHAPES``, ``AUGMENTATIONS``: what a data set gives, for
  the checks that a model and augmentation fit it.
- ``check_available(name, root, download, **options)``: raise ActbenchError saying where to put the
  files when a data set needs files that are not there (called by suite validation before anything
  runs); ``option_problem(name, options)``: options of a sequence data set that do not fit together.
- ``load_dataset(name, *, root, download, seed, **options) -> DataSplits``.
- ``batches(x, y, batch_size, *, shuffle, generator, augment, drop_last)``: an iterator of (x, y).

Where files live: ``root`` when given, else ``default_root(name)`` (``$ACTBENCH_DATA/<name>``, else
``$XDG_CACHE_HOME/actbench/data/<name>``, else ``~/.cache/actbench/data/<name>``).

- cifar10 / cifar100: the official "python version" pickles, either extracted (root itself or
  root/cifar-10-batches-py, root/cifar-100-python) or as the .tar.gz archive in root, read in place
  with a restricted unpickler that admits numpy arrays and nothing else.
- mnist / fashion_mnist: the four IDX files, gzipped or not, in root (or torchvision's
  root/MNIST/raw, root/FashionMNIST/raw).
- mnist1d: generated with the ``mnist1d`` package's ``make_dataset`` (never its downloading
  ``get_dataset``) and cached as .npz under root; works offline.
- synthetic: seeded Gaussian classes for tests and smoke runs; needs nothing.
- mad_*: the synthetic token tasks of the MAD benchmark, generated (sequences.py); need nothing.
- text: any file's bytes as tokens for language models (text.py), the file named by `path`; the
  token cache lives under root.

Sequence data sets (SEQUENCE_DATASETS) give int64 token ids (N, L) and int64 targets (N, L) with
IGNORE_INDEX where a position is not scored; DataSplits.task says which kind a data set is.

``seed`` decides what is random in a data set: the generated data of mnist1d, synthetic and mad_*,
and which samples ``train_subset`` keeps. ``train_subset: N`` keeps N training samples drawn without
replacement by a permutation seeded with ``seed`` (then put back in file order): a random sample of
the training set, the same one for every run with the same seed. Normalisation never depends on
the subset.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.client
import math
import os
import pickle
import random
import struct
import tarfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from ..errors import ActbenchError, UnknownNameError
from . import sequences
from . import text as text_data
from .npz_cache import write_npz

# data-set name -> accepted `data:` options (besides name/root/download) and their defaults
DATASET_OPTIONS: dict[str, dict[str, object]] = {
    "cifar10": {"train_subset": None},
    "cifar100": {"train_subset": None},
    "mnist": {"train_subset": None},
    "fashion_mnist": {"train_subset": None},
    "mnist1d": {"train_subset": None, "num_samples": 5000},
    "synthetic": {"train_subset": None, "shape": [1, 8, 8], "classes": 10, "train_size": 512,
                  "test_size": 256},
    **{name: {"train_subset": None, **options} for name, options in sequences.MAD_OPTIONS.items()},
    "text": {"train_subset": None, **text_data.TEXT_OPTIONS},
}
# data sets of token sequences: a target per position (DataSplits.task "sequence")
SEQUENCE_DATASETS = frozenset((*sequences.MAD_OPTIONS, "text"))
IGNORE_INDEX = sequences.IGNORE_INDEX  # a target that is not scored (PyTorch's ignore_index)

# data set -> the shape of one input sample (synthetic: its `shape` option; see input_shape)
INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28), "mnist1d": (1, 40)}
# data set -> its standard training augmentation (`train.augment: true`; see batches)
AUGMENTATIONS: dict[str, str] = {"cifar10": "cifar", "cifar100": "cifar"}

DATA_ENV = "ACTBENCH_DATA"
CIFAR_PADDING = 4  # pixels of zero padding around the image before the random crop
DOWNLOAD_TIMEOUT_S = 60
SYNTHETIC_SEPARATION = 4.0  # distance between two class means, in noise standard deviations / sqrt(2)


@dataclass
class DataSplits:
    """A data set in memory and what a model and the loss need to know about it.

    task "classify": float32 normalised inputs (N, *input_shape), one int64 label per sample.
    task "sequence": int64 token ids (N, L) and int64 targets (N, L), one per position, IGNORE_INDEX
    where a position is not scored; num_classes is the vocabulary size, input_shape (L,). Tensors
    may share memory (text: inputs and targets are views of one buffer): never change them in place.
    """

    train_x: torch.Tensor  # (N, *input_shape)
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]  # per sample: (C, H, W) for images, (1, 40) for mnist1d, (L,) tokens
    name: str
    augment_kind: str | None  # "cifar" for cifar10/100 (crop + flip), None otherwise
    task: str = "classify"  # "classify" or "sequence" (see above)
    tokens_are_bytes: bool = False  # a token is one byte of a file: loss / ln 2 is bits per byte

    def to(self, device: torch.device | str) -> DataSplits:
        """The same splits with every tensor on `device` (the whole set fits there for these sizes)."""
        return replace(self, train_x=self.train_x.to(device), train_y=self.train_y.to(device),
                       test_x=self.test_x.to(device), test_y=self.test_y.to(device))


# --------------------------------------------------------------------------- file layouts


@dataclass(frozen=True)
class _CifarFormat:
    title: str
    folder: str
    archive: str
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


_CIFAR = {
    "cifar10": _CifarFormat(
        title="CIFAR-10", folder="cifar-10-batches-py", archive="cifar-10-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)), test_files=("test_batch",),
        label_key="labels", num_classes=10,
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
    "cifar100": _CifarFormat(
        title="CIFAR-100", folder="cifar-100-python", archive="cifar-100-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        train_files=("train",), test_files=("test",), label_key="fine_labels", num_classes=100,
        mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)),
}

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class _IdxFormat:
    title: str
    torchvision_folder: str  # torchvision keeps the same files in root/<this>/raw
    mirrors: tuple[str, ...]  # base URLs tried in order; the files are the .gz ones
    md5: dict[str, str]  # .gz file name -> MD5
    mean: float
    std: float


def _idx_format(title: str, torchvision_folder: str, mirrors: tuple[str, ...],
                md5: tuple[str, str, str, str], mean: float, std: float) -> _IdxFormat:
    """An IDX data set's facts; `md5` lists the four .gz files' digests in _IDX_FILES order."""
    return _IdxFormat(title, torchvision_folder, mirrors,
                      {f"{file}.gz": digest for file, digest in zip(_IDX_FILES, md5, strict=True)},
                      mean, std)


_IDX = {
    "mnist": _idx_format(
        "MNIST", "MNIST",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/"),
        ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
         "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
        mean=0.1307, std=0.3081),
    "fashion_mnist": _idx_format(
        "Fashion-MNIST", "FashionMNIST",
        ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
         "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
         "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
        mean=0.2860, std=0.3530),
}


# --------------------------------------------------------------------------- public entry points


def input_shape(name: str, options: Mapping[str, object]) -> tuple[object, ...] | None:
    """The shape of one input sample of data set `name` with these `data:` options, without loading
    it (None where not known: an unknown name, a synthetic `shape` that is not a list, a sequence
    length that is not an integer)."""
    if name == "synthetic":
        shape = options.get("shape")
        return tuple(shape) if isinstance(shape, (list, tuple)) else None
    if name in SEQUENCE_DATASETS:
        seq_len = options.get("seq_len", DATASET_OPTIONS[name]["seq_len"])
        length = seq_len if name == "text" else sequences.input_length(name, seq_len)
        return (length,) if isinstance(length, int) and not isinstance(length, bool) else None
    return INPUT_SHAPES.get(name)


def option_problem(name: str, options: Mapping[str, object]) -> tuple[str, str] | None:
    """(key path, what was expected) for options of a sequence data set that do not fit together,
    e.g. copy_tokens too many for seq_len; None when they fit or the data set has no such rules."""
    if name in sequences.MAD_OPTIONS:
        return sequences.option_problem(name, options)
    if name == "text":
        return text_data.option_problem(options)
    return None


def default_root(name: str) -> Path:
    """Where a data set's files are looked for (and downloaded to) when the suite gives no root."""
    name = _canonical_name(name)
    base = os.environ.get(DATA_ENV)
    if base:
        return Path(base).expanduser() / name
    cache = os.environ.get("XDG_CACHE_HOME")
    cache_dir = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return cache_dir / "actbench" / "data" / name


def check_available(name: str, root: str | Path | None, download: bool = False,
                    **options: object) -> None:
    """Raise ActbenchError, naming the expected files and where, when a data set cannot be loaded.

    Cheap (existence checks only), so suite validation can call it before the first run. `options`
    are the data set's `data:` keys; text needs them (its file is `path`, its size must fit seq_len).
    """
    name = _canonical_name(name)
    if name == "text":
        text_data.check_file(_resolve_options(name, options))
        return
    if name == "synthetic" or name in sequences.MAD_OPTIONS:
        return
    if name == "mnist1d":
        _require_mnist1d_package()
        return
    root_dir = _root_dir(name, root)
    if name in _CIFAR:
        fmt = _CIFAR[name]
        if _cifar_source(fmt, root_dir) is None and not download:
            raise ActbenchError(_cifar_missing_message(name, fmt, root_dir))
        return
    missing = _idx_missing(name, root_dir)
    if missing and not download:
        raise ActbenchError(_idx_missing_message(name, root_dir, missing))


def load_dataset(name: str, *, root: str | Path | None = None, download: bool = False, seed: int = 0,
                 **options: object) -> DataSplits:
    """Load (or generate) a data set as DataSplits; `options` are its `data:` keys.

    Unknown options and wrong values raise ActbenchError before any file is read.
    """
    name = _canonical_name(name)
    settings = _resolve_options(name, options)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ActbenchError(f"the data seed must be an integer, got {seed!r}")
    train_subset = settings.pop("train_subset")
    if train_subset is not None:
        train_subset = _positive_int(train_subset, "data.train_subset")

    if name in _CIFAR:
        splits = _load_cifar(name, _root_dir(name, root), download)
    elif name in _IDX:
        splits = _load_idx_dataset(name, _root_dir(name, root), download)
    elif name == "mnist1d":
        splits = _load_mnist1d(_root_dir(name, root), seed,
                               _positive_int(settings["num_samples"], "data.num_samples"))
    elif name in SEQUENCE_DATASETS:
        splits = _load_sequences(name, _root_dir(name, root), seed, settings)
    else:
        splits = _make_synthetic(seed, **settings)

    if train_subset is not None:
        splits = _subset(splits, train_subset, seed)
    return splits


def augment_cifar(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Random crop after 4-pixel padding, then random horizontal flip, for a batch (N, C, H, W).

    The padding is zero in the normalised image, i.e. the data set's mean colour, not black. Random
    numbers are drawn on the generator's device (crop offsets, then flips) and moved to x's device,
    so a seed gives the same augmentation on CPU and CUDA; the crop is one gather, no Python loop.
    """
    if x.ndim != 4:
        raise ValueError(f"augment_cifar expects a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    n, channels, height, width = x.shape
    pad = CIFAR_PADDING
    draw_device = generator.device if generator is not None else torch.device("cpu")
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=draw_device).to(x.device)
    flips = torch.randint(0, 2, (n,), generator=generator, device=draw_device).to(x.device).bool()

    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = offsets[0, :, None] + torch.arange(height, device=x.device)  # (N, H)
    columns = torch.arange(width, device=x.device).expand(n, width)
    columns = torch.where(flips[:, None], width - 1 - columns, columns) + offsets[1, :, None]  # (N, W)
    sample = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(channels, device=x.device)[None, :, None, None]
    return padded[sample, channel, rows[:, None, :, None], columns[:, None, None, :]]


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool,
            generator: torch.Generator | None = None, augment: str | None = None,
            drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of (x, y) batches by index permutation over in-memory tensors.

    No DataLoader: the data are already tensors (possibly on the GPU), so indexing is the fastest
    path and the only randomness is `generator` (torch's global RNG when None): the permutation is
    drawn first, then each batch's augmentation, so the same seed gives the same epoch.
    Arguments are checked at the call, not at the first batch.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ActbenchError(f"batch size must be a positive integer, got {batch_size!r}")
    if augment not in (None, "cifar"):
        raise ActbenchError(f"unknown augmentation '{augment}'; known: cifar (or none)")
    if len(x) != len(y):
        raise ValueError(f"inputs and labels differ in length: {len(x)} vs {len(y)}")
    return _iterate_batches(x, y, batch_size, shuffle, generator, augment, drop_last)


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a numpy array, header checked: magic, dimensions, length."""
    path = Path(path)
    raw = _read_bytes(path)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise ActbenchError(f"{path} is a damaged gzip file ({error}); download it again") from error
    idx_types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in idx_types:
        raise ActbenchError(f"{path} is not an IDX file: bad magic number 0x{raw[:4].hex()} "
                            "(expected 0x0000, a type byte such as 0x08 and the number of dimensions)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ActbenchError(f"{path} is truncated: its IDX header needs {header} bytes, the file has "
                            f"{len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(idx_types[raw[2]])
    count = math.prod(dims)
    expected = header + count * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise ActbenchError(f"{path} is {state}: dimensions {list(dims)} need {expected} bytes, the "
                            f"file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)


# --------------------------------------------------------------------------- options and helpers


def _canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    if key not in DATASET_OPTIONS:
        raise UnknownNameError("data set", str(name), DATASET_OPTIONS)
    return key


def _resolve_options(name: str, options: dict[str, object]) -> dict[str, object]:
    accepted = DATASET_OPTIONS[name]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listing = ", ".join(f"{key} (default {value})" for key, value in accepted.items())
        raise ActbenchError(f"data set {name} has no option '{unknown[0]}'; accepted: {listing}")
    return {key: (default if options.get(key) is None else options[key])
            for key, default in accepted.items()}


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ActbenchError(f"{what} must be a positive integer, got {value!r}")
    return value


def _root_dir(name: str, root: str | Path | None) -> Path:
    return default_root(name) if root is None else Path(root).expanduser()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ActbenchError(f"cannot read {path}: {error.strerror or error}") from error


def _derived_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose, so the streams of one data seed never overlap."""
    digest = hashlib.sha256(f"actbench-data:{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _subset(splits: DataSplits, size: int, seed: int) -> DataSplits:
    available = len(splits.train_y)
    if size > available:
        raise ActbenchError(f"data.train_subset is {size} but {splits.name} has only {available} "
                            "training samples")
    generator = torch.Generator().manual_seed(_derived_seed(seed, "train_subset"))
    keep = torch.randperm(available, generator=generator)[:size].sort().values
    return replace(splits, train_x=splits.train_x[keep].contiguous(), train_y=splits.train_y[keep])


def _iterate_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool,
                     generator: torch.Generator | None, augment: str | None,
                     drop_last: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    count = len(x)
    order = None
    if shuffle:
        draw_device = generator.device if generator is not None else torch.device("cpu")
        order = torch.randperm(count, generator=generator, device=draw_device).to(x.device)
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        if drop_last and stop - start < batch_size:
            return
        if order is None:
            batch_x, batch_y = x[start:stop], y[start:stop]
        else:
            index = order[start:stop]
            batch_x, batch_y = x[index], y[index.to(y.device)]
        if augment == "cifar":
            batch_x = augment_cifar(batch_x, generator)
        yield batch_x, batch_y


# --------------------------------------------------------------------------- CIFAR


class _CifarUnpickler(pickle.Unpickler):
    """Admits the few globals a CIFAR batch needs (numpy arrays); refuses every other one.

    A pickle can name any importable callable and call it while loading, so the whitelist is the
    safety: `_codecs.encode` is how protocol-2 pickles written by Python 3 store bytes.
    """

    source = "pickle"

    def find_class(self, module: str, name: str) -> object:
        allowed = _cifar_pickle_globals()
        if (module, name) not in allowed:
            raise ActbenchError(f"refused to load {self.source}: it asks for the Python object "
                                f"{module}.{name}, and a CIFAR file may only contain numpy arrays, "
                                "lists, numbers and strings")
        return allowed[(module, name)]


@functools.cache
def _cifar_pickle_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 1.26 has no numpy._core
        from numpy.core.multiarray import _reconstruct
    import _codecs

    return {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): _codecs.encode}


def _unpickle_cifar(stream: BinaryIO, source: str) -> dict[str, object]:
    unpickler = _CifarUnpickler(stream, encoding="bytes")
    unpickler.source = source
    try:
        content = unpickler.load()
    except ActbenchError:
        raise
    except Exception as error:  # a damaged pickle can fail in many ways; all mean the same here
        raise ActbenchError(f"{source} is not a readable CIFAR batch ({type(error).__name__}: "
                            f"{error}); download it again") from error
    if not isinstance(content, dict):
        raise ActbenchError(f"{source} is not a CIFAR batch: expected a dict, found "
                            f"{type(content).__name__}")
    return {key.decode("latin1") if isinstance(key, bytes) else str(key): value
            for key, value in content.items()}


def _cifar_batch(content: dict[str, object], label_key: str, source: str,
                 num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    data, labels = content.get("data"), content.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        raise ActbenchError(f"{source} is not a CIFAR batch: 'data' must be a uint8 array of shape "
                            "(N, 3072)")
    if labels is None or len(labels) != len(data):
        raise ActbenchError(f"{source} is not a CIFAR batch: '{label_key}' must hold one label per "
                            f"image ({len(data)})")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ActbenchError(f"{source} has labels outside 0..{num_classes - 1}")
    return data, labels


def _cifar_source(fmt: _CifarFormat, root: Path) -> Path | None:
    """The extracted folder (root itself or root/<folder>) or the archive, whichever is there."""
    needed = fmt.train_files + fmt.test_files
    for folder in (root / fmt.folder, root):
        if all((folder / file).is_file() for file in needed):
            return folder
    archive = root / fmt.archive
    return archive if archive.is_file() else None


def _cifar_missing_message(name: str, fmt: _CifarFormat, root: Path) -> str:
    files = ", ".join(_compact(fmt.train_files + fmt.test_files))
    return (f"{name} needs the {fmt.title} python version in {root}: the archive "
            f"{root / fmt.archive} or its extracted folder {root / fmt.folder}/ ({files}); "
            f"download it from {fmt.url} or set data.download: true")


def _compact(files: Sequence[str]) -> list[str]:
    numbered = [f for f in files if f.startswith("data_batch_")]
    if len(numbered) > 1:
        return [f"data_batch_1..{len(numbered)}", *(f for f in files if f not in numbered)]
    return list(files)


def _read_cifar_files(fmt: _CifarFormat, source: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """file name -> (data, labels) for every training and test file, from the folder or the archive.

    The archive is read in one streaming pass: a .tar.gz cannot seek, so looking members up by name
    would decompress it again for each one.
    """
    wanted = fmt.train_files + fmt.test_files
    batches_read: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if source.is_dir():
        for file in wanted:
            path = source / file
            with open(path, "rb") as stream:
                batches_read[file] = _cifar_batch(_unpickle_cifar(stream, str(path)), fmt.label_key,
                                                  str(path), fmt.num_classes)
        return batches_read
    members = {f"{fmt.folder}/{file}": file for file in wanted}
    try:
        with tarfile.open(source, "r|gz") as archive:
            for member in archive:
                file = members.get(member.name.removeprefix("./"))
                if file is None or not member.isfile():
                    continue
                where = f"{source}:{member.name}"
                batches_read[file] = _cifar_batch(_unpickle_cifar(archive.extractfile(member), where),
                                                  fmt.label_key, where, fmt.num_classes)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise ActbenchError(f"{source} is not a readable .tar.gz archive ({error}); delete it and "
                            "download it again") from error
    missing = [f"{fmt.folder}/{file}" for file in wanted if file not in batches_read]
    if missing:
        raise ActbenchError(f"{source} has no member {', '.join(missing)}; is it the {fmt.title} "
                            f"python version ({fmt.url})?")
    return batches_read


def _joined(parts: dict[str, tuple[np.ndarray, np.ndarray]],
            files: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate([parts[file][0] for file in files]),
            np.concatenate([parts[file][1] for file in files]))


def _cifar_tensor(data: np.ndarray, fmt: _CifarFormat) -> torch.Tensor:
    """Rows of 3072 bytes (1024 red, 1024 green, 1024 blue, each row-major) -> normalised (N, 3, 32, 32)."""
    images = torch.from_numpy(data).reshape(-1, 3, 32, 32).to(torch.float32).div_(255.0)
    mean = torch.tensor(fmt.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(fmt.std, dtype=torch.float32).view(1, 3, 1, 1)
    return images.sub_(mean).div_(std)


def _load_cifar(name: str, root: Path, download: bool) -> DataSplits:
    fmt = _CIFAR[name]
    source = _cifar_source(fmt, root)
    if source is None:
        if not download:
            raise ActbenchError(_cifar_missing_message(name, fmt, root))
        _download((fmt.url,), root / fmt.archive, fmt.md5,
                  f"put {fmt.archive} (from {fmt.url}) or its extracted folder {fmt.folder}/ in {root}")
        source = root / fmt.archive
    parts = _read_cifar_files(fmt, source)
    train_data, train_labels = _joined(parts, fmt.train_files)
    test_data, test_labels = _joined(parts, fmt.test_files)
    return DataSplits(train_x=_cifar_tensor(train_data, fmt), train_y=torch.from_numpy(train_labels),
                      test_x=_cifar_tensor(test_data, fmt), test_y=torch.from_numpy(test_labels),
                      num_classes=fmt.num_classes, input_shape=INPUT_SHAPES[name], name=name,
                      augment_kind=AUGMENTATIONS[name])


# --------------------------------------------------------------------------- MNIST and Fashion-MNIST


def _idx_folders(name: str, root: Path) -> tuple[Path, Path]:
    return root, root / _IDX[name].torchvision_folder / "raw"


def _find_idx_file(name: str, root: Path, file: str) -> Path | None:
    for folder in _idx_folders(name, root):
        for candidate in (folder / file, folder / f"{file}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _idx_missing(name: str, root: Path) -> list[str]:
    return [file for file in _IDX_FILES if _find_idx_file(name, root, file) is None]


def _idx_missing_message(name: str, root: Path, missing: Sequence[str]) -> str:
    fmt = _IDX[name]
    return (f"{name} needs the {fmt.title} IDX files {', '.join(f'{f}[.gz]' for f in missing)} in "
            f"{root}; download them from {fmt.mirrors[0]} or set data.download: true")


def _load_idx_dataset(name: str, root: Path, download: bool) -> DataSplits:
    fmt = _IDX[name]
    missing = _idx_missing(name, root)
    if missing and not download:
        raise ActbenchError(_idx_missing_message(name, root, missing))
    for file in missing:
        archive = f"{file}.gz"
        _download(tuple(base + archive for base in fmt.mirrors), root / archive, fmt.md5[archive],
                  f"put {archive} (from {fmt.mirrors[0]}{archive}) in {root}")

    def split(images_file: str, labels_file: str) -> tuple[torch.Tensor, torch.Tensor]:
        images_path = _find_idx_file(name, root, images_file)
        labels_path = _find_idx_file(name, root, labels_file)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ActbenchError(f"{images_path} must hold uint8 images (N, H, W), found "
                                f"{images.dtype} {list(images.shape)}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ActbenchError(f"{labels_path} must hold one label per image in {images_path} "
                                f"({len(images)}), found shape {list(labels.shape)}")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ActbenchError(f"{labels_path} has labels outside 0..9")
        x = torch.from_numpy(images.astype(np.float32)).div_(255.0).sub_(fmt.mean).div_(fmt.std)
        return x.unsqueeze(1), torch.from_numpy(labels.astype(np.int64))

    train_x, train_y = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    test_x, test_y = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise ActbenchError(f"{name}: training images are {list(train_x.shape[2:])} but test images "
                            f"are {list(test_x.shape[2:])}")
    return DataSplits(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, num_classes=10,
                      input_shape=tuple(train_x.shape[1:]), name=name, augment_kind=None)


# --------------------------------------------------------------------------- downloads


def _download(urls: Sequence[str], destination: Path, md5: str, by_hand: str) -> None:
    """Fetch the first URL that answers into `destination`, with a progress bar on stderr.

    The file is written as `<name>.part` and renamed only after its MD5 matches, so an interrupted
    or corrupted download never looks like a finished one.
    """
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or error
        raise ActbenchError(f"cannot create {destination.parent} to download into ({reason}); "
                            f"{by_hand}") from error
    partial = destination.with_name(destination.name + ".part")
    console = Console(stderr=True)
    failures = []
    for url in urls:
        digest = hashlib.md5(usedforsecurity=False)  # the official checksums are MD5 (integrity only)
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, \
                    open(partial, "wb") as out, \
                    Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                             TransferSpeedColumn(), TimeRemainingColumn(), console=console,
                             transient=True, disable=not console.is_terminal) as progress:
                length = response.headers.get("Content-Length") if response.headers else None
                task = progress.add_task(f"downloading {destination.name}",
                                         total=int(length) if length and length.isdigit() else None)
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.advance(task, len(chunk))
        except (OSError, http.client.HTTPException) as error:
            partial.unlink(missing_ok=True)
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            failures.append((url, " ".join(str(reason).split())))
            continue
        if digest.hexdigest() != md5:
            partial.unlink(missing_ok=True)
            raise ActbenchError(f"the download from {url} has MD5 {digest.hexdigest()}, expected {md5} "
                                f"(deleted it); try again, or {by_hand}")
        os.replace(partial, destination)
        return
    # the reason first: a message cut to a line (a run's line, a CSV cell) still says what went wrong
    reasons = "; ".join(dict.fromkeys(reason for _, reason in failures))
    raise ActbenchError(f"could not download {destination.name}: {reasons} (tried "
                        f"{', '.join(url for url, _ in failures)}); {by_hand}")


# --------------------------------------------------------------------------- MNIST-1D


def _require_mnist1d_package() -> None:
    import importlib.util

    if importlib.util.find_spec("mnist1d") is None:
        raise ActbenchError("data set mnist1d needs the mnist1d package: pip install mnist1d")


@contextlib.contextmanager
def _preserved_global_rng() -> Iterator[None]:
    """Put Python's and numpy's global RNG state back afterwards (make_dataset reseeds both)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _generate_mnist1d(num_samples: int, seed: int) -> dict[str, np.ndarray]:
    _require_mnist1d_package()
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    with _preserved_global_rng():
        generated = make_dataset(args)
    return {key: np.asarray(generated[key]) for key in ("x", "y", "x_test", "y_test")}


def _mnist1d_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mnist1d")
    except PackageNotFoundError:
        return "unknown"


def _load_mnist1d(cache_dir: Path, seed: int, num_samples: int) -> DataSplits:
    """Generate MNIST-1D (or read the cached arrays) and standardise with the training set's statistics."""
    if not 0 <= seed < 2**32:
        raise ActbenchError(f"mnist1d needs a seed in 0 .. 2**32 - 1 (numpy's limit), got {seed}")
    if num_samples < 10:
        raise ActbenchError(f"data.num_samples must be at least 10 for mnist1d (one per class), "
                            f"got {num_samples}")
    cache = cache_dir / f"mnist1d-n{num_samples}-seed{seed}-v{_mnist1d_version()}.npz"
    arrays = None
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as stored:
                arrays = {key: stored[key] for key in ("x", "y", "x_test", "y_test")}
        except (OSError, ValueError, KeyError, EOFError):
            arrays = None  # damaged cache: generate again and overwrite it
    if arrays is None:
        arrays = _generate_mnist1d(num_samples, seed)
        write_npz(cache, arrays)
    if len(arrays["y"]) == 0 or len(arrays["y_test"]) == 0:
        raise ActbenchError(f"data.num_samples {num_samples} is too small for mnist1d's train/test split")

    train, test = arrays["x"].astype(np.float64), arrays["x_test"].astype(np.float64)
    mean, std = train.mean(), train.std()  # one scalar each (a single channel), population std

    def standardised(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((x - mean) / std).astype(np.float32)).unsqueeze(1)

    return DataSplits(train_x=standardised(train),
                      train_y=torch.from_numpy(arrays["y"].astype(np.int64)),
                      test_x=standardised(test),
                      test_y=torch.from_numpy(arrays["y_test"].astype(np.int64)),
                      num_classes=10, input_shape=(1, train.shape[1]), name="mnist1d",
                      augment_kind=None)


# --------------------------------------------------------------------------- token sequences


def _load_sequences(name: str, root: Path, seed: int, settings: dict[str, object]) -> DataSplits:
    """A MAD task generated from `seed` (a stream per split) or a text file's byte windows."""
    problem = option_problem(name, settings)
    if problem:
        raise ActbenchError(f"{problem[0]}: {problem[1]}")
    if name == "text":
        tensors, vocab = text_data.load_text(settings, root), text_data.VOCAB_SIZE
    else:
        tensors = sequences.generate(name, settings, lambda purpose: _derived_seed(seed, purpose))
        vocab = settings["vocab_size"]
    train_x, train_y, test_x, test_y = tensors
    return DataSplits(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                      num_classes=vocab, input_shape=(train_x.shape[1],), name=name,
                      augment_kind=None, task="sequence", tokens_are_bytes=name == "text")


# --------------------------------------------------------------------------- synthetic


def _make_synthetic(seed: int, shape: object, classes: object, train_size: object,
                    test_size: object) -> DataSplits:
    """Gaussian classes: a random mean per class plus unit noise, learnable by any small model.

    The means are scaled so two classes are SYNTHETIC_SEPARATION * sqrt(2) noise deviations apart
    whatever the shape (hard enough not to be solved at once, easy enough to beat chance within an
    epoch). Means, training and test sets come from separate streams of `seed`, so changing a
    size does not change the other split.
    """
    if not isinstance(shape, (list, tuple)) or not shape:
        raise ActbenchError(f"data.shape must be a list of positive integers, got {shape!r}")
    sample_shape = tuple(_positive_int(size, "every entry of data.shape") for size in shape)
    classes = _positive_int(classes, "data.classes")
    if classes < 2:
        raise ActbenchError("data.classes must be at least 2")
    train_size = _positive_int(train_size, "data.train_size")
    test_size = _positive_int(test_size, "data.test_size")

    features = math.prod(sample_shape)
    means_generator = torch.Generator().manual_seed(_derived_seed(seed, "synthetic-means"))
    means = torch.randn((classes, *sample_shape), generator=means_generator)
    means *= SYNTHETIC_SEPARATION / math.sqrt(features)

    def split(size: int, purpose: str) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(_derived_seed(seed, purpose))
        labels = (torch.arange(size) % classes)[torch.randperm(size, generator=generator)]
        noise = torch.randn((size, *sample_shape), generator=generator)
        return means[labels] + noise, labels

    train_x, train_y = split(train_size, "synthetic-train")
    test_x, test_y = split(test_size, "synthetic-test")
    return DataSplits(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                      num_classes=classes, input_shape=sample_shape, name="synthetic",
                      augment_kind=None)

"""Data sets: files written here in the official formats, checked against hand-computed values."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import random
import struct
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from actbench.errors import ActbenchError, UnknownNameError
from actbench.train import data
from actbench.train.data import (DataSplits, augment_cifar, batches, check_available, default_root,
                                 load_dataset, read_idx)

# --------------------------------------------------------------------------- writing the formats


class Py2Pickler(pickle._Pickler):
    """Writes pickles as Python 2's cPickle did (how the official CIFAR files were made): protocol 2,
    every str and bytes as a BINSTRING, numpy's array reconstructor under numpy.core.multiarray."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_string(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_py2_string
    dispatch[str] = save_py2_string


def py2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def cifar_images(count: int, offset: int) -> np.ndarray:
    """Rows of 3072 bytes (R plane, G plane, B plane, each row-major) with a known pattern."""
    rows = (np.arange(count * 3072, dtype=np.int64).reshape(count, 3072) * 7 + offset) % 256
    return rows.astype(np.uint8)


def cifar10_batches() -> dict[str, dict]:
    files = {}
    for i in range(1, 6):
        files[f"data_batch_{i}"] = {b"batch_label": b"training batch %d of 5" % i,
                                    b"labels": [(2 * i) % 10, (2 * i + 1) % 10],
                                    b"data": cifar_images(2, offset=i),
                                    b"filenames": [b"a.png", b"b.png"]}
    files["test_batch"] = {b"batch_label": b"testing batch 1 of 1", b"labels": [9, 0],
                           b"data": cifar_images(2, offset=100), b"filenames": [b"c.png", b"d.png"]}
    files["batches.meta"] = {b"label_names": [b"airplane"] * 10, b"num_cases_per_batch": 2,
                             b"num_vis": 3072}
    return files


def cifar100_batches() -> dict[str, dict]:
    return {"train": {b"fine_labels": [99, 0, 42], b"coarse_labels": [19, 0, 5],
                      b"data": cifar_images(3, offset=1), b"filenames": [b"x"] * 3,
                      b"batch_label": b"training batch 1 of 1"},
            "test": {b"fine_labels": [7, 8], b"coarse_labels": [1, 2], b"data": cifar_images(2, 50),
                     b"filenames": [b"y"] * 2, b"batch_label": b"testing batch 1 of 1"},
            "meta": {b"fine_label_names": [b"apple"] * 100, b"coarse_label_names": [b"fish"] * 20}}


FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
ARCHIVES = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}


def cifar_archive_bytes(name: str, payloads: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for file, payload in payloads.items():
            info = tarfile.TarInfo(f"{FOLDERS[name]}/{file}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def write_cifar(root: Path, name: str, layout: str, overrides: dict[str, bytes] | None = None) -> None:
    """layout: 'folder' (root/<official folder>), 'root' (files in root) or 'archive' (.tar.gz)."""
    files = cifar10_batches() if name == "cifar10" else cifar100_batches()
    payloads = {file: py2_pickle(content) for file, content in files.items()}
    payloads.update(overrides or {})
    root.mkdir(parents=True, exist_ok=True)
    if layout == "archive":
        (root / ARCHIVES[name]).write_bytes(cifar_archive_bytes(name, payloads))
        return
    folder = root / FOLDERS[name] if layout == "folder" else root
    folder.mkdir(exist_ok=True)
    for file, payload in payloads.items():
        (folder / file).write_bytes(payload)


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def mnist_arrays(train: int = 3, test: int = 2):
    images = np.zeros((train, 28, 28), dtype=np.uint8)
    images[1, 5, 7] = 200
    images[2, 27, 0] = 255
    test_images = np.full((test, 28, 28), 51, dtype=np.uint8)
    return images, np.array([3, 1, 4][:train], np.uint8), test_images, np.array([1, 5][:test], np.uint8)


def write_idx(folder: Path, gz: bool, arrays=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = mnist_arrays() if arrays is None else arrays
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
    for name, array in zip(names, arrays):
        raw = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)


# --------------------------------------------------------------------------- CIFAR


@pytest.mark.parametrize("layout", ["folder", "root", "archive"])
def test_cifar10_shapes_labels_and_hand_normalised_pixels(tmp_path, layout):
    write_cifar(tmp_path, "cifar10", layout)
    splits = load_dataset("cifar10", root=tmp_path)
    assert isinstance(splits, DataSplits)
    assert splits.train_x.shape == (10, 3, 32, 32) and splits.test_x.shape == (2, 3, 32, 32)
    assert splits.train_x.dtype == torch.float32 and splits.train_y.dtype == torch.int64
    assert splits.train_y.tolist() == [2, 3, 4, 5, 6, 7, 8, 9, 0, 1]  # batch 1..5 in order
    assert splits.test_y.tolist() == [9, 0]
    assert (splits.num_classes, splits.input_shape, splits.name, splits.augment_kind) == \
        (10, (3, 32, 32), "cifar10", "cifar")
    # data_batch_1 image 0, green plane (channel 1), row 2, column 5: byte (index*7 + 1) % 256
    byte = ((1024 + 2 * 32 + 5) * 7 + 1) % 256
    assert splits.train_x[0, 1, 2, 5].item() == pytest.approx((byte / 255 - 0.4822) / 0.2435, abs=1e-5)
    # test_batch image 1, blue plane, row 31, column 0
    byte = ((3072 + 2048 + 31 * 32) * 7 + 100) % 256
    assert splits.test_x[1, 2, 31, 0].item() == pytest.approx((byte / 255 - 0.4465) / 0.2616, abs=1e-5)


def test_cifar10_all_pixels_match_a_float64_reference(tmp_path):
    write_cifar(tmp_path, "cifar10", "folder")
    splits = load_dataset("cifar10", root=tmp_path)
    raw = np.concatenate([cifar_images(2, offset=i) for i in range(1, 6)]).astype(np.float64)
    raw = raw.reshape(10, 3, 32, 32) / 255
    mean = np.array([0.4914, 0.4822, 0.4465]).reshape(1, 3, 1, 1)
    std = np.array([0.2470, 0.2435, 0.2616]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(splits.train_x.numpy(), (raw - mean) / std, atol=1e-5)


@pytest.mark.parametrize("layout", ["folder", "archive"])
def test_cifar100_uses_fine_labels_and_its_own_statistics(tmp_path, layout):
    write_cifar(tmp_path, "cifar100", layout)
    splits = load_dataset("cifar100", root=tmp_path)
    assert splits.train_x.shape == (3, 3, 32, 32) and splits.test_x.shape == (2, 3, 32, 32)
    assert splits.train_y.tolist() == [99, 0, 42] and splits.test_y.tolist() == [7, 8]
    assert splits.num_classes == 100 and splits.augment_kind == "cifar"
    byte = ((2 * 3072 + 0 * 1024 + 10) * 7 + 1) % 256  # train image 2, red plane, row 0, column 10
    assert splits.train_x[2, 0, 0, 10].item() == pytest.approx((byte / 255 - 0.5071) / 0.2673, abs=1e-5)


def test_cifar_python3_pickles_are_read_too(tmp_path):
    files = cifar10_batches()
    # the two ways numpy's array reconstructor is named: old files and numpy >= 2
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in py2_pickle(files["test_batch"])
    assert b"numpy._core.multiarray" in pickle.dumps(files["test_batch"], protocol=4)
    overrides = {file: pickle.dumps(content, protocol=4) for file, content in files.items()}
    write_cifar(tmp_path, "cifar10", "folder", overrides)
    reference = tmp_path / "py2"
    write_cifar(reference, "cifar10", "folder")
    assert torch.equal(load_dataset("cifar10", root=tmp_path).train_x,
                       load_dataset("cifar10", root=reference).train_x)


class RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class OpensFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_restricted_unpickler_refuses_os_system_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    evil = pickle.dumps(RunsCommand(f"touch '{marker}'"), protocol=2)
    write_cifar(tmp_path, "cifar10", "folder", {"data_batch_1": evil})
    with pytest.raises(ActbenchError, match=rf"{os.system.__module__}\.system"):
        load_dataset("cifar10", root=tmp_path)
    assert not marker.exists()


def test_restricted_unpickler_refuses_a_live_payload_in_an_archive(tmp_path):
    marker = tmp_path / "created-by-pickle"
    evil = pickle.dumps(OpensFile(str(marker)))
    pickle.loads(evil).close()  # the payload is live: a plain unpickler creates the file
    assert marker.exists()
    marker.unlink()
    write_cifar(tmp_path, "cifar10", "archive", {"test_batch": evil})
    with pytest.raises(ActbenchError, match=r"io\.open"):
        load_dataset("cifar10", root=tmp_path)
    assert not marker.exists()


def test_damaged_cifar_files_are_reported(tmp_path):
    good = py2_pickle(cifar10_batches()["data_batch_1"])
    write_cifar(tmp_path / "cut", "cifar10", "folder", {"data_batch_3": good[: len(good) // 2]})
    with pytest.raises(ActbenchError, match="data_batch_3"):
        load_dataset("cifar10", root=tmp_path / "cut")
    wrong = py2_pickle({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    write_cifar(tmp_path / "shape", "cifar10", "folder", {"test_batch": wrong})
    with pytest.raises(ActbenchError, match=r"\(N, 3072\)"):
        load_dataset("cifar10", root=tmp_path / "shape")
    payloads = {file: py2_pickle(content) for file, content in cifar10_batches().items()}
    del payloads["data_batch_4"]
    (tmp_path / "member").mkdir()
    (tmp_path / "member" / "cifar-10-python.tar.gz").write_bytes(cifar_archive_bytes("cifar10", payloads))
    with pytest.raises(ActbenchError, match="no member cifar-10-batches-py/data_batch_4"):
        load_dataset("cifar10", root=tmp_path / "member")
    (tmp_path / "tar").mkdir()
    (tmp_path / "tar" / "cifar-10-python.tar.gz").write_bytes(b"not a tar file")
    with pytest.raises(ActbenchError, match="tar.gz"):
        load_dataset("cifar10", root=tmp_path / "tar")


# --------------------------------------------------------------------------- MNIST / Fashion-MNIST


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(("name", "mean", "std"), [("mnist", 0.1307, 0.3081),
                                                     ("fashion_mnist", 0.2860, 0.3530)])
def test_idx_data_sets_with_hand_computed_pixels(tmp_path, gz, name, mean, std):
    write_idx(tmp_path, gz)
    splits = load_dataset(name, root=tmp_path)
    assert splits.train_x.shape == (3, 1, 28, 28) and splits.test_x.shape == (2, 1, 28, 28)
    assert splits.input_shape == (1, 28, 28) and splits.num_classes == 10
    assert splits.augment_kind is None and splits.train_x.dtype == torch.float32
    assert splits.train_y.tolist() == [3, 1, 4] and splits.test_y.tolist() == [1, 5]
    assert splits.train_y.dtype == torch.int64
    assert splits.train_x[1, 0, 5, 7].item() == pytest.approx((200 / 255 - mean) / std, abs=1e-6)
    assert splits.train_x[2, 0, 27, 0].item() == pytest.approx((1 - mean) / std, abs=1e-6)
    assert splits.train_x[0, 0, 5, 7].item() == pytest.approx(-mean / std, abs=1e-6)
    assert torch.allclose(splits.test_x, torch.tensor((51 / 255 - mean) / std))


def test_idx_files_in_torchvision_layout(tmp_path):
    write_idx(tmp_path / "FashionMNIST" / "raw", gz=True)
    assert load_dataset("fashion_mnist", root=tmp_path).train_y.tolist() == [3, 1, 4]


def test_read_idx_header(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 3) + bytes([7, 8, 9]))
    array = read_idx(path)
    assert array.dtype == np.uint8 and array.tolist() == [7, 8, 9]
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + struct.pack(">2I", 1, 2) + struct.pack(">2i", -5, 70000))
    assert read_idx(path).tolist() == [[-5, 70000]]


@pytest.mark.parametrize(("raw", "message"), [
    (bytes([0x08, 0x03, 0, 0]) + b"\x00" * 12, "magic"),  # header bytes in the wrong order
    (bytes([0, 0, 0x42, 1]) + struct.pack(">I", 1) + b"\x00", "magic"),  # unknown type byte
    (b"\x00\x00", "magic"),
    (bytes([0, 0, 0x08, 3]) + struct.pack(">I", 2), "truncated"),  # header cut short
    (bytes([0, 0, 0x08, 1]) + struct.pack(">I", 5) + b"\x01\x02", "truncated"),
    (bytes([0, 0, 0x08, 1]) + struct.pack(">I", 1) + b"\x01\x02", "longer"),
])
def test_read_idx_refuses_bad_files(tmp_path, raw, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(raw)
    with pytest.raises(ActbenchError, match=message):
        read_idx(path)
    gz = tmp_path / "bad-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(raw))
    with pytest.raises(ActbenchError, match=message):
        read_idx(gz)


def test_bad_idx_magic_in_a_data_set_names_the_file(tmp_path):
    write_idx(tmp_path, gz=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x1f\x00\x08\x03" + b"\x00" * 20)
    with pytest.raises(ActbenchError, match=r"t10k-images-idx3-ubyte.*magic"):
        load_dataset("mnist", root=tmp_path)


def test_idx_label_count_must_match_images(tmp_path):
    images, labels, test_images, test_labels = mnist_arrays()
    write_idx(tmp_path, gz=True, arrays=(images, labels[:2], test_images, test_labels))
    with pytest.raises(ActbenchError, match="one label per image"):
        load_dataset("mnist", root=tmp_path)


def test_damaged_gzip_is_reported(tmp_path):
    write_idx(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ActbenchError, match="gzip"):
        load_dataset("mnist", root=tmp_path)


# --------------------------------------------------------------------------- availability, roots


def test_check_available_names_the_expected_cifar_paths(tmp_path):
    with pytest.raises(ActbenchError) as error:
        check_available("cifar10", tmp_path)
    message = str(error.value)
    assert str(tmp_path / "cifar-10-python.tar.gz") in message
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "data.download: true" in message
    with pytest.raises(ActbenchError, match="cifar-100-python"):
        check_available("cifar100", tmp_path)
    check_available("cifar10", tmp_path, download=True)  # will be fetched: nothing to complain about
    write_cifar(tmp_path, "cifar100", "archive")
    check_available("cifar100", tmp_path)


def test_check_available_lists_missing_idx_files(tmp_path):
    write_idx(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    check_available("fashion_mnist", tmp_path, download=True)
    with pytest.raises(ActbenchError) as error:
        check_available("mnist", tmp_path)
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte" in message and str(tmp_path) in message
    assert "train-images" not in message


def test_generated_data_sets_need_no_files(tmp_path):
    check_available("mnist1d", tmp_path / "nowhere")
    check_available("synthetic", None)


def test_unknown_data_set_suggests_a_name():
    with pytest.raises(UnknownNameError, match="cifar10"):
        check_available("cifar", None)
    with pytest.raises(UnknownNameError):
        load_dataset("imagenet")


def test_default_root_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("ACTBENCH_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root("mnist") == tmp_path / "home" / ".cache" / "actbench" / "data" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_root("Fashion-MNIST") == tmp_path / "xdg" / "actbench" / "data" / "fashion_mnist"
    monkeypatch.setenv("ACTBENCH_DATA", str(tmp_path / "data"))
    assert default_root("cifar10") == tmp_path / "data" / "cifar10"
    write_idx(tmp_path / "data" / "mnist", gz=True)
    assert load_dataset("mnist").train_y.tolist() == [3, 1, 4]  # no root: the default one


# --------------------------------------------------------------------------- downloads


class FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def serve(monkeypatch, answers: dict[str, bytes | Exception]) -> list[str]:
    """Replace urlopen: each URL gets its payload or raises its exception; returns the URLs asked for."""
    asked = []

    def fake_urlopen(url, timeout=None):
        asked.append(url)
        answer = answers.get(url, urllib.error.URLError("no route to host"))
        if isinstance(answer, Exception):
            raise answer
        return FakeResponse(answer)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return asked


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def test_download_checks_md5_and_deletes_a_bad_file(tmp_path, monkeypatch):
    asked = serve(monkeypatch, {CIFAR10_URL: b"<html>captive portal</html>"})
    with pytest.raises(ActbenchError, match="MD5") as error:
        load_dataset("cifar10", root=tmp_path, download=True)
    assert "c58f30108f718f92721af3b95e74349a" in str(error.value)
    assert asked == [CIFAR10_URL]
    assert list(tmp_path.iterdir()) == []  # neither the archive nor a .part file is left


def test_download_saves_the_archive_and_loads_it(tmp_path, monkeypatch):
    payloads = {file: py2_pickle(content) for file, content in cifar10_batches().items()}
    archive = cifar_archive_bytes("cifar10", payloads)
    fmt = data._CIFAR["cifar10"]
    monkeypatch.setitem(data._CIFAR, "cifar10",
                        dataclasses.replace(fmt, md5=hashlib.md5(archive).hexdigest()))
    asked = serve(monkeypatch, {CIFAR10_URL: archive})
    splits = load_dataset("cifar10", root=tmp_path / "new", download=True)
    assert splits.train_y.tolist() == [2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert (tmp_path / "new" / "cifar-10-python.tar.gz").read_bytes() == archive
    load_dataset("cifar10", root=tmp_path / "new", download=True)
    assert asked == [CIFAR10_URL]  # the second load found the archive


def test_download_without_network_says_where_to_put_the_files(tmp_path, monkeypatch):
    serve(monkeypatch, {})
    with pytest.raises(ActbenchError) as error:
        load_dataset("cifar100", root=tmp_path, download=True)
    message = str(error.value)
    # the reason comes first, so a message cut short (a narrow terminal, a table cell) keeps it
    assert message.startswith("could not download cifar-100-python.tar.gz: no route to host (tried ")
    assert "cifar-100-python.tar.gz" in message and str(tmp_path) in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in message
    assert not any(tmp_path.iterdir())


def test_idx_download_falls_back_to_the_next_mirror(tmp_path, monkeypatch):
    fmt = data._IDX["mnist"]
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
    files = {f"{name}.gz": gzip.compress(idx_bytes(array)) for name, array in zip(names, mnist_arrays())}
    monkeypatch.setitem(data._IDX, "mnist", dataclasses.replace(
        fmt, md5={file: hashlib.md5(payload).hexdigest() for file, payload in files.items()}))
    second = fmt.mirrors[1]
    asked = serve(monkeypatch, {second + file: payload for file, payload in files.items()})
    splits = load_dataset("mnist", root=tmp_path, download=True)
    assert splits.train_y.tolist() == [3, 1, 4]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(files)
    assert asked.count(fmt.mirrors[0] + "train-images-idx3-ubyte.gz") == 1
    assert len(asked) == 8  # each file: the first mirror failed, the second answered


# --------------------------------------------------------------------------- MNIST-1D


MNIST1D_SAMPLES = 100


def mnist1d_reference(seed: int) -> dict:
    """The package's own generator, called directly (the independent reference)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = MNIST1D_SAMPLES, seed
    return make_dataset(args)


def test_mnist1d_matches_the_package_and_is_standardised(tmp_path):
    state = np.random.get_state(), random.getstate()
    reference = mnist1d_reference(seed=5)
    np.random.set_state(state[0])
    random.setstate(state[1])
    splits = load_dataset("mnist1d", root=tmp_path, seed=5, num_samples=MNIST1D_SAMPLES)
    assert splits.train_x.shape == (80, 1, 40) and splits.test_x.shape == (20, 1, 40)
    assert splits.input_shape == (1, 40) and splits.num_classes == 10 and splits.augment_kind is None
    assert splits.train_x.dtype == torch.float32 and splits.train_y.dtype == torch.int64
    x = reference["x"]
    expected_train = (x - x.mean()) / x.std()
    expected_test = (reference["x_test"] - x.mean()) / x.std()
    np.testing.assert_allclose(splits.train_x[:, 0].numpy(), expected_train, atol=1e-5)
    np.testing.assert_allclose(splits.test_x[:, 0].numpy(), expected_test, atol=1e-5)
    assert splits.train_y.tolist() == reference["y"].tolist()
    assert splits.test_y.tolist() == reference["y_test"].tolist()
    assert splits.train_x.mean().item() == pytest.approx(0, abs=1e-5)
    assert splits.train_x.std(unbiased=False).item() == pytest.approx(1, abs=1e-5)


def test_mnist1d_is_deterministic_and_seeded(tmp_path):
    first = load_dataset("mnist1d", root=tmp_path / "a", seed=1, num_samples=MNIST1D_SAMPLES)
    again = load_dataset("mnist1d", root=tmp_path / "b", seed=1, num_samples=MNIST1D_SAMPLES)
    other = load_dataset("mnist1d", root=tmp_path / "a", seed=2, num_samples=MNIST1D_SAMPLES)
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)
    assert not torch.equal(first.train_x, other.train_x)


def test_mnist1d_leaves_global_random_state_alone(tmp_path):
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    load_dataset("mnist1d", root=tmp_path, seed=9, num_samples=MNIST1D_SAMPLES)  # generates: no cache
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected


def test_mnist1d_second_load_reads_the_cache(tmp_path, monkeypatch):
    import mnist1d.data

    first = load_dataset("mnist1d", root=tmp_path, seed=3, num_samples=MNIST1D_SAMPLES)
    cached = list(tmp_path.glob("*.npz"))
    assert len(cached) == 1

    def must_not_run(*args, **kwargs):
        raise AssertionError("make_dataset called although the arrays are cached")

    monkeypatch.setattr(mnist1d.data, "make_dataset", must_not_run)
    second = load_dataset("mnist1d", root=tmp_path, seed=3, num_samples=MNIST1D_SAMPLES)
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)
    with np.load(cached[0], allow_pickle=False) as stored:
        assert sorted(stored.files) == ["x", "x_test", "y", "y_test"]
    with pytest.raises(AssertionError, match="cached"):  # another seed is another cache entry
        load_dataset("mnist1d", root=tmp_path, seed=4, num_samples=MNIST1D_SAMPLES)


def test_mnist1d_damaged_cache_is_regenerated(tmp_path):
    first = load_dataset("mnist1d", root=tmp_path, seed=3, num_samples=MNIST1D_SAMPLES)
    (cached,) = tmp_path.glob("*.npz")
    cached.write_bytes(b"garbage")
    again = load_dataset("mnist1d", root=tmp_path, seed=3, num_samples=MNIST1D_SAMPLES)
    assert torch.equal(first.train_x, again.train_x)


def test_mnist1d_option_checks(tmp_path):
    with pytest.raises(ActbenchError, match="seed"):
        load_dataset("mnist1d", root=tmp_path, seed=-1, num_samples=MNIST1D_SAMPLES)
    with pytest.raises(ActbenchError, match="num_samples"):
        load_dataset("mnist1d", root=tmp_path, num_samples=0)


# --------------------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_and_shaped():
    first = load_dataset("synthetic", seed=4, shape=[3, 4, 5], classes=3, train_size=30, test_size=9)
    again = load_dataset("synthetic", seed=4, shape=[3, 4, 5], classes=3, train_size=30, test_size=9)
    other = load_dataset("synthetic", seed=5, shape=[3, 4, 5], classes=3, train_size=30, test_size=9)
    assert first.train_x.shape == (30, 3, 4, 5) and first.test_x.shape == (9, 3, 4, 5)
    assert first.input_shape == (3, 4, 5) and first.num_classes == 3
    assert first.train_x.dtype == torch.float32 and first.train_y.dtype == torch.int64
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)
    assert not torch.equal(first.train_x, other.train_x)
    assert torch.bincount(first.train_y).tolist() == [10, 10, 10]  # balanced classes
    bigger = load_dataset("synthetic", seed=4, shape=[3, 4, 5], classes=3, train_size=60, test_size=9)
    assert torch.equal(bigger.test_x, first.test_x)  # the test set does not depend on train_size


def test_synthetic_classes_have_distinct_means():
    splits = load_dataset("synthetic", seed=0, train_size=2000)  # defaults: shape (1, 8, 8), 10 classes
    x = splits.train_x.flatten(1).double()
    means = torch.stack([x[splits.train_y == k].mean(0) for k in range(10)])
    within = torch.stack([x[splits.train_y == k].std(0) for k in range(10)]).mean()
    assert within.item() == pytest.approx(1.0, abs=0.05)  # unit noise around each class mean
    distances = torch.cdist(means, means)[~torch.eye(10, dtype=torch.bool)]
    # a class mean from 200 samples is off by about sqrt(64 / 200) = 0.57; real gaps are far larger
    assert distances.min().item() > 2.5


def test_synthetic_is_learnable_by_a_tiny_model():
    splits = load_dataset("synthetic", seed=0)
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 10)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):  # two epochs of mini-batches
        for x, y in batches(splits.train_x, splits.train_y, 32, shuffle=True, generator=generator):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x.flatten(1)), y).backward()
            optimiser.step()
    accuracy = (model(splits.test_x.flatten(1)).argmax(1) == splits.test_y).float().mean().item()
    assert accuracy > 0.5  # chance is 0.1


@pytest.mark.parametrize(("options", "message"), [
    ({"shape": "8x8"}, "shape"),
    ({"shape": [1, 0]}, "shape"),
    ({"classes": 1}, "classes"),
    ({"train_size": 2.5}, "train_size"),
    ({"colour": True}, "no option 'colour'.*train_subset"),
    ({"train_subset": 0}, "train_subset"),
])
def test_synthetic_option_errors(options, message):
    with pytest.raises(ActbenchError, match=message):
        load_dataset("synthetic", **options)


# --------------------------------------------------------------------------- train_subset


def test_train_subset_is_a_seeded_sample_of_the_training_set():
    full = load_dataset("synthetic", seed=0)
    subset = load_dataset("synthetic", seed=0, train_subset=100)
    again = load_dataset("synthetic", seed=0, train_subset=100)
    assert subset.train_x.shape == (100, 1, 8, 8) and subset.train_y.shape == (100,)
    assert torch.equal(subset.test_x, full.test_x)  # the test set is untouched
    assert torch.equal(subset.train_x, again.train_x)
    # every kept sample is a training sample with its own label, each at most once, in file order
    rows = [int(torch.nonzero((full.train_x == x).flatten(1).all(1))[0]) for x in subset.train_x]
    assert rows == sorted(set(rows))
    assert torch.equal(full.train_y[rows], subset.train_y)
    assert rows != list(range(100))  # a sample, not the first 100
    with pytest.raises(ActbenchError, match="only 512"):
        load_dataset("synthetic", train_subset=513)


def test_train_subset_applies_to_files_too(tmp_path):
    write_cifar(tmp_path, "cifar10", "folder")
    full = load_dataset("cifar10", root=tmp_path)
    subset = load_dataset("cifar10", root=tmp_path, train_subset=4, seed=2)
    assert subset.train_x.shape == (4, 3, 32, 32)
    assert all(any(torch.equal(x, row) for row in full.train_x) for x in subset.train_x)
    other = load_dataset("cifar10", root=tmp_path, train_subset=4, seed=3)
    assert not torch.equal(other.train_y, subset.train_y)  # the seed picks the sample


# --------------------------------------------------------------------------- augmentation


def find_crop(image: torch.Tensor, output: torch.Tensor) -> set[tuple[int, int, bool]]:
    """Every (row offset, column offset, flipped) for which output is that crop of the padded image."""
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    height, width = image.shape[1:]
    found = set()
    for dy in range(9):
        for dx in range(9):
            crop = padded[:, dy:dy + height, dx:dx + width]
            for flipped in (False, True):
                if torch.equal(output, crop.flip(-1) if flipped else crop):
                    found.add((dy, dx, flipped))
    return found


def test_augment_cifar_is_a_shifted_possibly_flipped_copy():
    x = torch.rand(48, 3, 32, 32, generator=torch.Generator().manual_seed(1)) + 0.5  # no zeros
    out = augment_cifar(x, torch.Generator().manual_seed(7))
    assert out.shape == x.shape and out.dtype == x.dtype
    choices = []
    for image, result in zip(x, out):
        found = find_crop(image, result)
        assert len(found) == 1  # exactly one crop window explains it
        choices.append(found.pop())
    assert {flipped for _, _, flipped in choices} == {False, True}
    assert len({(dy, dx) for dy, dx, _ in choices}) > 10
    assert any(dy in (0, 8) or dx in (0, 8) for dy, dx, _ in choices)  # the padding shows up as zeros
    assert (out == 0).any()


def test_augment_cifar_repeats_for_a_seed():
    x = torch.randn(16, 3, 32, 32)
    first = augment_cifar(x, torch.Generator().manual_seed(3))
    assert torch.equal(first, augment_cifar(x, torch.Generator().manual_seed(3)))
    assert not torch.equal(first, augment_cifar(x, torch.Generator().manual_seed(4)))
    assert not torch.equal(x, first)


# --------------------------------------------------------------------------- batches


def test_batches_cover_every_sample_once_per_epoch():
    x = torch.arange(103, dtype=torch.float32).unsqueeze(1) * 10
    y = torch.arange(103)
    generator = torch.Generator().manual_seed(0)
    epochs = []
    for _ in range(2):
        parts = list(batches(x, y, 10, shuffle=True, generator=generator))
        assert [len(batch_y) for _, batch_y in parts] == [10] * 10 + [3]
        assert all(torch.equal(batch_x[:, 0], batch_y * 10.0) for batch_x, batch_y in parts)  # pairs kept
        seen = torch.cat([batch_y for _, batch_y in parts])
        assert sorted(seen.tolist()) == list(range(103))
        assert seen.tolist() != list(range(103))
        epochs.append(seen)
    assert not torch.equal(epochs[0], epochs[1])  # a new permutation each epoch


def test_batches_repeat_for_a_seed_with_augmentation():
    x = torch.randn(20, 3, 32, 32)
    y = torch.arange(20)

    def epoch(seed):
        return list(batches(x, y, 6, shuffle=True, generator=torch.Generator().manual_seed(seed),
                            augment="cifar"))

    first, again, other = epoch(1), epoch(1), epoch(2)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(first, other))
    for batch_x, batch_y in first:  # each augmented image is still its own sample's crop
        assert all(find_crop(x[label], image) for label, image in zip(batch_y, batch_x))


def test_batches_in_order_and_drop_last():
    x, y = torch.arange(8.0), torch.arange(8)
    assert [b.tolist() for _, b in batches(x, y, 3, shuffle=False)] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert [b.tolist() for _, b in batches(x, y, 3, shuffle=False, drop_last=True)] == \
        [[0, 1, 2], [3, 4, 5]]
    dropped = list(batches(x, y, 3, shuffle=True, generator=torch.Generator().manual_seed(0),
                           drop_last=True))
    assert [len(b) for _, b in dropped] == [3, 3]


def test_batches_check_arguments_at_the_call():
    x, y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ActbenchError, match="batch size"):
        batches(x, y, 0, shuffle=False)
    with pytest.raises(ActbenchError, match="augmentation"):
        batches(x, y, 2, shuffle=False, augment="mixup")
    with pytest.raises(ValueError):
        batches(x, y[:3], 2, shuffle=False)


def test_splits_move_to_a_device():
    splits = load_dataset("synthetic", train_size=20, test_size=10)
    moved = splits.to("cpu")
    assert torch.equal(moved.train_x, splits.train_x) and moved.input_shape == splits.input_shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_augmentation_and_batches_on_cuda_match_cpu():
    x = torch.randn(40, 3, 32, 32)
    y = torch.arange(40)

    def epoch(device):
        generator = torch.Generator().manual_seed(5)  # a CPU generator drives both
        return [(bx.cpu(), by.cpu()) for bx, by in batches(x.to(device), y.to(device), 16, shuffle=True,
                                                           generator=generator, augment="cifar")]

    for (cpu_x, cpu_y), (cuda_x, cuda_y) in zip(epoch("cpu"), epoch("cuda")):
        assert torch.equal(cpu_y, cuda_y) and torch.equal(cpu_x, cuda_x)


def test_a_run_whose_download_fails_keeps_the_whole_message_in_its_row_and_on_screen(
        tmp_path, monkeypatch):
    from actbench.progress import ItemFinished
    from actbench.train.executor import Execution, execute, prepare
    from actbench.train.suite import suite_from_dict

    from .test_execution import TINY, read

    serve(monkeypatch, {})
    suite = {**TINY, "activations": ["relu"], "seeds": [0],
             "data": {"name": "cifar10", "root": str(tmp_path / "data"), "download": True}}
    suite_run = prepare(suite_from_dict(suite), tmp_path / "r.csv")
    lines: list[str] = []
    execute(suite_run, lambda event: lines.append(event.line)
            if isinstance(event, ItemFinished) else None, Execution(executor="inline", threads=1))
    [row] = read(suite_run.out)
    with pytest.raises(ActbenchError) as expected:  # the message a direct load gives
        load_dataset("cifar10", root=tmp_path / "data", download=True)
    message = str(expected.value)
    assert len(message) > 300  # longer than the cut this replaced
    assert row["status"] == "failed" and message in row["message"]
    assert row["message"].endswith(f"(on host {os.uname().nodename})")
    [shown] = lines
    assert message in shown

"""Sequence data sets: the MAD tasks checked against their definitions, text files against windows
written out by hand, and the option and file errors."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from actbench.errors import ActbenchError
from actbench.train import data
from actbench.train.data import DataSplits, check_available, input_shape, load_dataset
from actbench.train.suite import load_suite, suite_from_dict
from actbench.train.validation import SuiteError

MAD = ["mad_recall", "mad_noisy_recall", "mad_fuzzy_recall", "mad_selective_copy", "mad_memorization"]
SMALL = {"train_size": 64, "test_size": 32}
IGNORE = -100


def mad(name: str, seed: int = 0, **options) -> DataSplits:
    return load_dataset(name, seed=seed, **{**SMALL, **options})


def full_sequences(x: torch.Tensor, y: torch.Tensor) -> list[list[int]]:
    """A next-token task's whole sequences: the inputs and the last target (always scored)."""
    assert (y[:, -1] != IGNORE).all()
    return [row + [last] for row, last in zip(x.tolist(), y[:, -1].tolist())]


def one_line_error(call) -> str:
    with pytest.raises(ActbenchError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- determinism, contract


@pytest.mark.parametrize("name", MAD)
def test_same_seed_same_data_other_seed_other_data(name):
    first, again, other = mad(name, seed=3), mad(name, seed=3), mad(name, seed=4)
    for field in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(first, field), getattr(again, field))
    assert not torch.equal(first.train_x, other.train_x)
    assert not torch.equal(first.test_x, other.test_x)
    assert not torch.equal(first.train_x[:32], first.test_x)  # the splits are separate streams


@pytest.mark.parametrize("name", MAD)
def test_generation_leaves_every_global_random_state_alone(name):
    def draw():
        random.seed(11)
        np.random.seed(11)
        torch.manual_seed(11)

    draw()
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    draw()
    mad(name)
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected


@pytest.mark.parametrize(("name", "vocab", "length"), [
    ("mad_recall", 16, 127), ("mad_noisy_recall", 32, 127), ("mad_fuzzy_recall", 16, 127),
    ("mad_selective_copy", 16, 256), ("mad_memorization", 256, 32)])
def test_mad_splits_follow_the_sequence_contract(name, vocab, length):
    splits = mad(name)
    assert splits.task == "sequence" and splits.tokens_are_bytes is False
    assert splits.num_classes == vocab and splits.input_shape == (length,)
    assert input_shape(name, {}) == (length,)
    assert splits.train_x.shape == splits.train_y.shape == (64, length)
    assert splits.test_x.shape == splits.test_y.shape == (32, length)
    for tensor in (splits.train_x, splits.train_y, splits.test_x, splits.test_y):
        assert tensor.dtype == torch.int64
    for x in (splits.train_x, splits.test_x):
        assert x.min() >= 0 and x.max() < vocab
    for y in (splits.train_y, splits.test_y):
        scored = y[y != IGNORE]
        assert scored.numel() > 0 and scored.min() >= 0 and scored.max() < vocab
    moved = splits.to("cpu")
    assert moved.task == "sequence" and torch.equal(moved.test_y, splits.test_y)


def test_classification_data_sets_keep_their_defaults():
    splits = load_dataset("synthetic", train_size=8, test_size=4)
    assert splits.task == "classify" and splits.tokens_are_bytes is False


def test_input_shape_follows_seq_len_without_loading():
    assert input_shape("mad_recall", {"seq_len": 64}) == (63,)  # next-token: the last token is no input
    assert input_shape("mad_fuzzy_recall", {"seq_len": 64}) == (63,)
    assert input_shape("mad_selective_copy", {"seq_len": 64}) == (64,)
    assert input_shape("mad_memorization", {"seq_len": 8}) == (8,)
    assert input_shape("text", {"seq_len": 100}) == (100,)
    assert input_shape("text", {}) == (256,)
    assert input_shape("mad_recall", {"seq_len": "long"}) is None


def test_generated_sequences_need_no_files():
    for name in MAD:
        check_available(name, None)


def test_train_subset_keeps_rows_of_inputs_and_targets_together():
    full = mad("mad_recall", seed=2)
    kept = mad("mad_recall", seed=2, train_subset=10)
    assert kept.train_x.shape == (10, 127)
    rows = [full.train_x.tolist().index(row) for row in kept.train_x.tolist()]
    assert rows == sorted(rows)
    assert torch.equal(kept.train_y, full.train_y[rows])
    assert torch.equal(kept.test_x, full.test_x)


# --------------------------------------------------------------------------- in-context recall


def check_recall_answers(sequence: list[int], targets: list[int], is_noise) -> None:
    """Pairs (key, value) at even/odd places; a value is the answer exactly where its key was in an
    earlier (non-noise) pair, and then it is that pair's value."""
    earlier: dict[int, int] = {}
    for i in range(0, len(sequence), 2):
        key, value = sequence[i], sequence[i + 1]
        answer = targets[i]  # the target at input position i is the token at position i + 1
        if is_noise(key, value):
            assert answer == IGNORE
            continue
        if key in earlier:
            assert earlier[key] == value and answer == value
        else:
            assert answer == IGNORE
        earlier[key] = value
        if i + 2 < len(sequence):
            assert targets[i + 1] == IGNORE  # keys are never answers


def test_recall_answers_are_the_values_of_keys_seen_before():
    splits = mad("mad_recall", seed=1)
    for sequence, targets in zip(full_sequences(splits.test_x, splits.test_y), splits.test_y.tolist()):
        assert len(sequence) == 128
        assert all(token < 8 for token in sequence[0::2]) and all(8 <= t < 16 for t in sequence[1::2])
        check_recall_answers(sequence, targets, lambda key, value: False)
        assert sequence[-2] in sequence[:-2:2]  # the query's key was seen


def test_recall_trains_on_every_next_token_or_only_the_answers():
    every = mad("mad_recall", seed=1)
    assert (every.train_y != IGNORE).all()
    assert torch.equal(every.train_y[:, :-1], every.train_x[:, 1:])
    answers = mad("mad_recall", seed=1, train_targets="answers")
    assert torch.equal(answers.train_x, every.train_x)
    for sequence, targets in zip(full_sequences(answers.train_x, answers.train_y),
                                 answers.train_y.tolist()):
        check_recall_answers(sequence, targets, lambda key, value: False)


def test_noisy_recall_noise_tokens_fraction_and_answers():
    splits = load_dataset("mad_noisy_recall", seed=5, train_size=8, test_size=512)
    noise_pairs = body_pairs = 0
    for sequence, targets in zip(full_sequences(splits.test_x, splits.test_y), splits.test_y.tolist()):
        pairs = [(sequence[i], sequence[i + 1]) for i in range(0, 128, 2)]
        for key, value in pairs:  # either two noise tokens or a key and a value
            assert (key >= 16 and value >= 16) or (key < 8 and 8 <= value < 16)
        noise = [key >= 16 for key, _ in pairs[:-1]]
        assert not all(noise) and pairs[-1][0] < 8
        noise_pairs += sum(noise)
        body_pairs += len(noise)
        check_recall_answers(sequence, targets, lambda key, value: key >= 16)
    # 63 pairs before the query, one of them kept clean: 0.2 * 62 / 63 noise; sd about 0.0022
    assert noise_pairs / body_pairs == pytest.approx(0.2 * 62 / 63, abs=0.012)
    clean = load_dataset("mad_noisy_recall", seed=5, train_size=8, test_size=8, noise_fraction=0.0)
    assert clean.test_x.max() < 16


def fuzzy_pairs(sequence: list[int]) -> tuple[int, list[tuple[tuple, tuple, int]]]:
    """(padding, [(key, value, index of the value's first token)]): maximal runs of key tokens
    (0 .. 6) and value tokens (7 .. 14) after the pad tokens (15)."""
    padding = 0
    while sequence[padding] == 15:
        padding += 1
    runs, start = [], padding
    for i in range(padding + 1, len(sequence) + 1):
        if i == len(sequence) or (sequence[i] < 7) != (sequence[i - 1] < 7):
            runs.append((tuple(sequence[start:i]), start))
            start = i
    assert all(run[0] < 7 for run, _ in runs[0::2]) and all(7 <= run[0] < 15 for run, _ in runs[1::2])
    return padding, [(key, value, at) for (key, _), (value, at) in zip(runs[0::2], runs[1::2])]


@pytest.mark.parametrize("split", ["train", "test"])
def test_fuzzy_recall_keys_values_probe_and_answers(split):
    splits = load_dataset("mad_fuzzy_recall", seed=7, train_size=200, test_size=200,
                          train_targets="answers")
    x, y = getattr(splits, f"{split}_x"), getattr(splits, f"{split}_y")
    key_sizes = set()
    for sequence, targets in zip(full_sequences(x, y), y.tolist()):
        padding, pairs = fuzzy_pairs(sequence)
        assert len(sequence) == 128 and padding < 6  # another pair (at most 6 tokens) would not fit
        assert all(targets[i] == IGNORE for i in range(padding))
        earlier: dict[tuple, tuple] = {}
        expected = [IGNORE] * len(targets)
        for key, value, at in pairs:
            assert 1 <= len(key) <= 3 and len(set(key)) == len(key)
            assert 1 <= len(value) <= 3 and len(set(value)) == len(value)
            key_sizes.add(len(key))
            if key in earlier:  # the value's tokens are the targets of the positions before them
                assert earlier[key] == value
                expected[at - 1:at - 1 + len(value)] = value
            earlier[key] = value
        assert targets == expected
        assert pairs[-1][:2] in [pair[:2] for pair in pairs[:-1]]  # the probe came before
    assert key_sizes == ({3} if split == "test" else {1, 2, 3})


# --------------------------------------------------------------------------- copying, memorisation


def test_selective_copy_targets_are_the_data_tokens_in_order():
    splits = load_dataset("mad_selective_copy", seed=3, train_size=8, test_size=300)
    first_places = []
    for sequence, targets in zip(splits.test_x.tolist(), splits.test_y.tolist()):
        region, signal = sequence[:239], sequence[239]  # 256 - 16 copied - 1 signal
        assert signal == 15 and sequence[240:] == [14] * 16
        data_tokens = [token for token in region if token != 14]
        assert len(data_tokens) == 16 and all(token < 14 for token in data_tokens)
        assert targets[:240] == [IGNORE] * 240 and targets[240:] == data_tokens
        first_places.append(next(i for i, token in enumerate(region) if token != 14))
    # the data tokens stand anywhere among the blanks: the first of 16 among 239 places averages
    # (239 - 16) / 17 = 13.1 places in
    assert 8 < np.mean(first_places) < 19 and min(first_places) == 0
    assert torch.equal(splits.train_y[:, 240:], splits.train_x[:, :239][splits.train_x[:, :239] != 14]
                       .view(8, 16))


def memorized_facts(x: torch.Tensor, y: torch.Tensor, facts: dict[int, int]) -> dict[int, int]:
    """key -> value read from (key, insert token) pairs, checking that a key always has one value."""
    for sequence, targets in zip(x.tolist(), y.tolist()):
        assert sequence[1::2] == [255] * 16 and all(key < 127 for key in sequence[0::2])
        assert targets[0::2] == [IGNORE] * 16
        for key, value in zip(sequence[0::2], targets[1::2]):
            assert 127 <= value < 255
            assert facts.setdefault(key, value) == value  # the same fact everywhere
    return facts


def test_memorization_is_one_fixed_map_shared_by_both_splits():
    splits = load_dataset("mad_memorization", seed=9)  # MAD's 256 training sequences of 16 pairs
    trained = memorized_facts(splits.train_x, splits.train_y, {})
    assert len(trained) == 127  # 4096 draws of 127 keys: every fact is shown in training
    both = memorized_facts(splits.test_x, splits.test_y, dict(trained))
    assert both == trained
    assert len(set(trained.values())) == 127  # distinct keys, distinct values


def test_memorization_facts_depend_on_the_seed():
    first, other = (load_dataset("mad_memorization", seed=seed) for seed in (1, 2))
    first_facts = memorized_facts(first.train_x, first.train_y, {})
    other_facts = memorized_facts(other.train_x, other.train_y, {})
    assert first_facts.keys() == other_facts.keys() and first_facts != other_facts


# --------------------------------------------------------------------------- option errors


@pytest.mark.parametrize(("name", "options", "message"), [
    ("mad_selective_copy", {"seq_len": 20, "copy_tokens": 10},
     "data.copy_tokens: expected an integer >= 1 and <= 9 (seq_len 20 must exceed 2 * copy_tokens + 1"),
    ("mad_recall", {"seq_len": 7}, "data.seq_len: expected an even integer >= 4"),
    ("mad_fuzzy_recall", {"key_tokens": 8}, "data.key_tokens: expected an integer >= 1 and <= 7"),
    ("mad_fuzzy_recall", {"seq_len": 10}, "data.seq_len: expected at least 2 * (key_tokens + "
                                          "value_tokens) = 12"),
    ("mad_noisy_recall", {"noise_vocab_size": 31}, "data.noise_vocab_size: expected an integer >= 1 "
                                                   "and <= 30"),
    ("mad_noisy_recall", {"noise_fraction": 1.0}, "data.noise_fraction: expected a number >= 0 and < 1"),
    ("mad_recall", {"train_targets": "some"}, "data.train_targets: expected one of all, answers"),
    ("mad_memorization", {"seq_len": 31}, "data.seq_len: expected an even integer"),
    ("mad_recall", {"vocab_size": True}, "data.vocab_size: expected an integer >= 2"),
    ("mad_recall", {"train_size": 10**6}, "data.train_size: expected (train_size + test_size) * seq_len"),
    ("mad_recall", {"copy_tokens": 3}, "data set mad_recall has no option 'copy_tokens'"),
])
def test_bad_mad_options_are_one_line_naming_the_key(name, options, message):
    assert message in one_line_error(lambda: load_dataset(name, **{**SMALL, **options}))


def suite_problems(data_section: dict) -> list[str]:
    with pytest.raises(SuiteError) as caught:
        suite_from_dict({"activations": ["relu"], "model": {"name": "gpt"}, "data": data_section})
    return caught.value.problems


def test_suite_validation_reports_sequence_options_with_their_key():
    assert suite_problems({"name": "mad_selective_copy", "seq_len": 20, "copy_tokens": 10}) == [
        "suite: data.copy_tokens: expected an integer >= 1 and <= 9 (seq_len 20 must exceed 2 * "
        "copy_tokens + 1: the tokens, at least one blank, the copy signal, the answers), got 10"]
    assert suite_problems({"name": "mad_noisy_recall", "noise_fraction": 1}) == [
        "suite: data.noise_fraction: expected a number >= 0 and < 1, got 1"]
    assert suite_problems({"name": "mad_recall", "train_targets": "every"}) == [
        "suite: data.train_targets: unknown train_targets setting 'every'; expected one of all, answers"]
    (problem,) = suite_problems({"name": "mad_recall", "copy_tokens": 4})
    assert problem.startswith("suite: data.copy_tokens: not an option of data set 'mad_recall' (only "
                              "of mad_selective_copy)")
    assert suite_problems({"name": "text"})[0].startswith("suite: data.path: required: the file to read")


def test_suite_accepts_mad_and_text_data(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"x" * 1000)
    for section in ({"name": "mad_fuzzy_recall", "seq_len": 64},
                    {"name": "text", "path": str(corpus), "seq_len": 32, "root": str(tmp_path)}):
        suite = suite_from_dict({"activations": ["relu"], "model": {"name": "gpt"}, "data": section})
        assert suite.config.data.name == section["name"]


# --------------------------------------------------------------------------- text files


ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123"  # 30 bytes


def write_file(tmp_path: Path, content: bytes, name: str = "corpus.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def load_text(path: Path, cache: Path, **options) -> DataSplits:
    return load_dataset("text", root=cache, path=str(path), **options)


def as_bytes(tensor: torch.Tensor) -> list[bytes]:
    return [bytes(row) for row in tensor.tolist()]


def test_text_windows_targets_and_split_by_hand(tmp_path):
    path = write_file(tmp_path, ALPHABET)
    splits = load_text(path, tmp_path / "cache", seq_len=5, val_fraction=0.2)
    # 30 bytes, the last 6 for validation; 24 training bytes give (24 - 1) // 5 = 4 windows
    assert as_bytes(splits.train_x) == [b"abcde", b"fghij", b"klmno", b"pqrst"]
    assert as_bytes(splits.train_y) == [b"bcdef", b"ghijk", b"lmnop", b"qrstu"]
    assert as_bytes(splits.test_x) == [b"yz012"]  # the validation split starts at byte 24
    assert as_bytes(splits.test_y) == [b"z0123"]
    assert splits.train_x.dtype == splits.train_y.dtype == torch.int64
    assert splits.num_classes == 256 and splits.input_shape == (5,) and splits.name == "text"
    assert splits.task == "sequence" and splits.tokens_are_bytes is True
    assert (splits.train_y != IGNORE).all() and (splits.test_y != IGNORE).all()


def test_text_tokens_are_bytes_of_any_file(tmp_path):
    path = write_file(tmp_path, "é€".encode() + b"\x00\xff" + b"z" * 8)  # 2 + 3 + 2 + 8 = 15 bytes
    splits = load_text(path, tmp_path / "cache", seq_len=3, val_fraction=0.4)  # 9 train, 6 validation
    assert splits.train_x.tolist() == [[0xC3, 0xA9, 0xE2], [0x82, 0xAC, 0x00]]
    assert splits.train_y.tolist() == [[0xA9, 0xE2, 0x82], [0xAC, 0x00, 0xFF]]
    assert splits.test_x.tolist() == [[ord("z")] * 3] and splits.test_y.tolist() == [[ord("z")] * 3]


def test_text_train_subset_keeps_whole_windows(tmp_path):
    path = write_file(tmp_path, ALPHABET)
    splits = load_text(path, tmp_path / "cache", seq_len=5, val_fraction=0.2, train_subset=2)
    targets = {b"abcde": b"bcdef", b"fghij": b"ghijk", b"klmno": b"lmnop", b"pqrst": b"qrstu"}
    windows = list(targets)
    kept = as_bytes(splits.train_x)
    assert len(kept) == 2 and all(window in windows for window in kept)
    assert [windows.index(window) for window in kept] == sorted(windows.index(w) for w in kept)
    assert as_bytes(splits.train_y) == [targets[window] for window in kept]


def test_text_cache_is_reused(tmp_path, monkeypatch):
    path, cache = write_file(tmp_path, ALPHABET), tmp_path / "cache"
    first = load_text(path, cache, seq_len=5, val_fraction=0.2)
    (cached,) = cache.glob("text-corpus.txt-*.npz")
    with np.load(cached, allow_pickle=False) as stored:
        assert sorted(stored.files) == ["digest", "source", "tokens"]
        assert bytes(stored["tokens"]) == ALPHABET

    def must_not_read(self):
        raise AssertionError(f"{self} read although its tokens are cached")

    monkeypatch.setattr(Path, "read_bytes", must_not_read)
    second = load_text(path, cache, seq_len=5, val_fraction=0.2)
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)


def test_text_cache_follows_the_file_when_it_changes(tmp_path):
    path, cache = write_file(tmp_path, ALPHABET), tmp_path / "cache"
    load_text(path, cache, seq_len=5, val_fraction=0.2)
    stat = path.stat()
    path.write_bytes(ALPHABET.upper())  # same size: only the modification time tells
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert as_bytes(load_text(path, cache, seq_len=5, val_fraction=0.2).train_x)[0] == b"ABCDE"
    path.write_bytes(b"0123456789" * 3 + b"!")  # another size
    assert as_bytes(load_text(path, cache, seq_len=5, val_fraction=0.2).test_x) == [b"56789"]
    assert len(list(cache.glob("*.npz"))) == 1  # one cache per file, overwritten


class Recorder:
    """Unpickling this would append to CALLS: a cache must never be unpickled."""

    CALLS: list[str] = []

    def __reduce__(self):
        return (Recorder.CALLS.append, ("unpickled",))


def damage_garbage(cached: Path) -> None:
    cached.write_bytes(b"not a zip file at all")


def damage_truncated(cached: Path) -> None:
    cached.write_bytes(cached.read_bytes()[:100])


def damage_tokens(cached: Path) -> None:
    with np.load(cached, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["tokens"] = arrays["tokens"].copy()
    arrays["tokens"][0] = ord("Z")  # size and time still match; the digest does not
    np.savez(cached, **arrays)


def damage_pickled(cached: Path) -> None:
    with np.load(cached, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["tokens"] = np.array([Recorder()], dtype=object)
    np.savez(cached, **arrays)


@pytest.mark.parametrize("damage", [damage_garbage, damage_truncated, damage_tokens, damage_pickled])
def test_a_damaged_cache_is_rebuilt_not_trusted(tmp_path, damage):
    path, cache = write_file(tmp_path, ALPHABET), tmp_path / "cache"
    load_text(path, cache, seq_len=5, val_fraction=0.2)
    (cached,) = cache.glob("*.npz")
    damage(cached)
    splits = load_text(path, cache, seq_len=5, val_fraction=0.2)
    assert as_bytes(splits.train_x)[0] == b"abcde" and Recorder.CALLS == []
    with np.load(cached, allow_pickle=False) as stored:  # written again, whole
        assert bytes(stored["tokens"]) == ALPHABET


def test_missing_text_file_names_the_path_and_where_files_come_from(tmp_path):
    missing = tmp_path / "input.txt"
    for call in (lambda: check_available("text", None, path=str(missing)),
                 lambda: load_text(missing, tmp_path / "cache")):
        message = one_line_error(call)
        assert message.startswith(f"data.path {missing} does not exist")
        assert "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/" \
               "input.txt" in message
        assert "http://mattmahoney.net/dc/enwik8.zip" in message and "WikiText-103" in message
    assert one_line_error(lambda: check_available("text", None)).startswith("data.path: required")
    assert "is not a file" in one_line_error(lambda: check_available("text", None, path=str(tmp_path)))


def test_too_small_a_text_file_is_refused(tmp_path):
    path = write_file(tmp_path, b"x" * 12)
    load_text(path, tmp_path / "cache", seq_len=5, val_fraction=0.5)  # 6 + 6 bytes: one window each
    message = one_line_error(lambda: load_text(path, tmp_path / "cache", seq_len=6, val_fraction=0.5))
    assert message.startswith(f"data.path {path} has 12 bytes, too few for one window of seq_len 6")
    assert "leaves 6 for training and 6 for validation" in message
    assert "too few" in one_line_error(lambda: check_available("text", None, path=str(path),
                                                               seq_len=6, val_fraction=0.5))


@pytest.mark.parametrize(("options", "message"), [
    ({"seq_len": 0}, "data.seq_len: expected an integer >= 1 and <= 65536, got 0"),
    ({"val_fraction": 1.0}, "data.val_fraction: expected a number > 0 and < 1, got 1.0"),
    ({"val_fraction": 0}, "data.val_fraction: expected a number > 0 and < 1, got 0"),
    ({"shape": [1]}, "data set text has no option 'shape'"),
])
def test_bad_text_options(tmp_path, options, message):
    path = write_file(tmp_path, ALPHABET)
    assert message in one_line_error(lambda: load_text(path, tmp_path / "cache", **options))


def test_suite_reports_a_missing_or_small_text_file_before_running(tmp_path):
    suite = tmp_path / "lm.yaml"
    missing = tmp_path / "absent.txt"
    suite.write_text(f"activations: [relu]\nmodel: {{name: gpt}}\ndata: {{name: text, path: '{missing}'}}\n")
    with pytest.raises(SuiteError) as caught:
        load_suite(suite)
    (problem,) = caught.value.problems
    assert problem.startswith(f"lm.yaml: data: data.path {missing} does not exist")
    small = write_file(tmp_path, b"tiny")
    suite.write_text(f"activations: [relu]\nmodel: {{name: gpt}}\ndata: {{name: text, path: '{small}', seq_len: 8}}\n")
    with pytest.raises(SuiteError, match="has 4 bytes, too few for one window of seq_len 8"):
        load_suite(suite)


def test_unscored_targets_are_pytorchs_ignore_index():
    assert data.IGNORE_INDEX == IGNORE == torch.nn.CrossEntropyLoss().ignore_index
    assert data.SEQUENCE_DATASETS == {*MAD, "text"}

"""The synthetic token tasks of the MAD benchmark (Poli et al. 2024, "Mechanistic Design and
Scaling of Hybrid Architectures", github.com/athms/mad-lab), generated procedurally.

They test what a sequence model can recall, copy and memorise, with nothing to download: in-context
recall (plain, noisy and fuzzy), selective copying and memorisation. MAD's compression task is left
out: its target is the whole input rebuilt from one position by a decoder network, which is not a
per-position next-token or labelling target (docs/suites.md).

Each task gives int64 token ids (N, L) and int64 targets (N, L) that hold IGNORE_INDEX at positions
that are not scored. Every split is drawn from its own generator, seeded by the caller (data.py
derives one seed per purpose from the data seed), so nothing depends on or touches torch's, numpy's
or Python's global random state. Where MAD's code and its description differ, or its code can fail
(a probe that never appears), the description is followed; docs/suites.md lists each difference.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

IGNORE_INDEX = -100  # PyTorch's cross-entropy ignore_index: a target that is not scored
MAX_VOCAB = 1 << 16
MAX_SEQ_LEN = 1 << 16
MAX_TOKENS = 100_000_000  # (train_size + test_size) * seq_len: about 1.6 GB of int64 inputs and targets

_SIZES = {"train_size": 2048, "test_size": 256}
_RECALL = {"vocab_size": 16, "seq_len": 128, **_SIZES, "train_targets": "all"}
# data-set name -> its `data:` options (besides train_subset) and defaults: MAD's vocabularies,
# lengths and knobs, with fewer training examples (MAD: 12800) so a tiny model trains in minutes
MAD_OPTIONS: dict[str, dict[str, object]] = {
    "mad_recall": dict(_RECALL),
    "mad_noisy_recall": {**_RECALL, "vocab_size": 32, "noise_vocab_size": 16, "noise_fraction": 0.2},
    "mad_fuzzy_recall": {**_RECALL, "key_tokens": 3, "value_tokens": 3},
    "mad_selective_copy": {"vocab_size": 16, "seq_len": 256, **_SIZES, "copy_tokens": 16},
    "mad_memorization": {"vocab_size": 256, "seq_len": 32, "train_size": 256, "test_size": 256},
}
RECALL_TASKS = ("mad_recall", "mad_noisy_recall", "mad_fuzzy_recall")
TRAIN_TARGETS = ("all", "answers")

Problem = tuple[str, str]  # (key path, what was expected)
Splits = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def input_length(name: str, seq_len: object) -> int | None:
    """The model's input length: recall tasks are next-token tasks (the sequence without its last
    token, as MAD does), copying and memorisation label every position of the sequence."""
    if isinstance(seq_len, bool) or not isinstance(seq_len, int):
        return None
    return seq_len - 1 if name in RECALL_TASKS else seq_len


def generate(name: str, options: Mapping[str, object], seed_for: Callable[[str], int]) -> Splits:
    """(train_x, train_y, test_x, test_y) of task `name`; `options` already passed option_problem.

    seed_for(purpose) gives the seed of one stream: "<name>-train", "<name>-test" and, for
    memorisation, "<name>-map" (the fixed key-value facts that both splits share).
    """
    def split(purpose: str, size: int, testing: bool) -> tuple[torch.Tensor, torch.Tensor]:
        seed = seed_for(f"{name}-{purpose}")
        if name == "mad_fuzzy_recall":
            return _fuzzy_recall(size, options, random.Random(seed), testing)
        generator = torch.Generator().manual_seed(seed)
        if name == "mad_selective_copy":
            return _selective_copy(size, options, generator)
        if name == "mad_memorization":
            facts = _memorization_facts(options["vocab_size"],
                                        torch.Generator().manual_seed(seed_for(f"{name}-map")))
            return _memorization(size, options, facts, generator)
        return _recall(size, options, generator)

    (train_tokens, train_answers) = split("train", options["train_size"], False)
    (test_tokens, test_answers) = split("test", options["test_size"], True)
    if name not in RECALL_TASKS:
        return train_tokens, train_answers, test_tokens, test_answers
    # next-token tasks: the input is the sequence without its last token, a target the next token
    train_y = train_tokens if options["train_targets"] == "all" else train_answers
    return (train_tokens[:, :-1].contiguous(), train_y[:, 1:].contiguous(),
            test_tokens[:, :-1].contiguous(), test_answers[:, 1:].contiguous())


# --------------------------------------------------------------------------- options


def option_problem(name: str, options: Mapping[str, object]) -> Problem | None:
    """The first problem of task `name`'s options, alone or together (None: they fit)."""
    for key, low, high in (("vocab_size", 2, MAX_VOCAB), ("seq_len", 2, MAX_SEQ_LEN),
                           ("train_size", 1, MAX_TOKENS), ("test_size", 1, MAX_TOKENS)):
        problem = _integer_problem(options, key, low, high)
        if problem:
            return problem
    tokens = (options["train_size"] + options["test_size"]) * options["seq_len"]
    if tokens > MAX_TOKENS:
        return ("data.train_size", f"expected (train_size + test_size) * seq_len <= {MAX_TOKENS} "
                                   f"tokens, got {tokens}")
    if name in RECALL_TASKS and options["train_targets"] not in TRAIN_TARGETS:
        return ("data.train_targets", f"expected one of {', '.join(TRAIN_TARGETS)}, got "
                                      f"{_shown(options['train_targets'])}")
    check = {"mad_recall": _recall_problem, "mad_noisy_recall": _recall_problem,
             "mad_fuzzy_recall": _fuzzy_problem, "mad_selective_copy": _copy_problem,
             "mad_memorization": _memorization_problem}[name]
    return check(options)


def _shown(value: object) -> str:
    return json.dumps(value, default=str)


def _integer_problem(options: Mapping[str, object], key: str, low: int, high: int,
                     why: str = "") -> Problem | None:
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return (f"data.{key}", f"expected an integer >= {low} and <= {high}{why}, got {_shown(value)}")
    return None


def _recall_problem(options: Mapping[str, object]) -> Problem | None:
    vocab, seq_len = options["vocab_size"], options["seq_len"]
    noisy = "noise_vocab_size" in options
    if seq_len < 4 or seq_len % 2:
        return ("data.seq_len", f"expected an even integer >= 4 (key-value pairs, the last one the "
                                f"query), got {seq_len}")
    if not noisy:  # vocab_size >= 2: a key and a value token
        return None
    if vocab < 3:
        return ("data.vocab_size", f"expected at least 3 (a key, a value and a noise token), got "
                                   f"{vocab}")
    problem = _integer_problem(options, "noise_vocab_size", 1, vocab - 2,
                               f" (vocab_size {vocab} less 2 tokens for keys and values)")
    fraction = options["noise_fraction"]
    if not problem and (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
                        or not 0 <= fraction < 1):
        problem = ("data.noise_fraction", f"expected a number >= 0 and < 1, got {_shown(fraction)}")
    return problem


def _fuzzy_problem(options: Mapping[str, object]) -> Problem | None:
    if options["vocab_size"] < 3:
        return ("data.vocab_size", f"expected at least 3 (a key, a value and the pad token), got "
                                   f"{options['vocab_size']}")
    layout = _FuzzyLayout.of(options)
    for key, available, what in (("key_tokens", len(layout.keys), "key"),
                                 ("value_tokens", len(layout.values), "value")):
        problem = _integer_problem(options, key, 1, available,
                                   f" (the {what} tokens of vocab_size {options['vocab_size']}; "
                                   "a key or value repeats no token)")
        if problem:
            return problem
    longest = options["key_tokens"] + options["value_tokens"]
    if options["seq_len"] < 2 * longest:
        return ("data.seq_len", f"expected at least 2 * (key_tokens + value_tokens) = {2 * longest} "
                                f"(the queried pair appears twice), got {options['seq_len']}")
    return None


def _copy_problem(options: Mapping[str, object]) -> Problem | None:
    vocab, seq_len = options["vocab_size"], options["seq_len"]
    if vocab < 3:
        return ("data.vocab_size", f"expected at least 3 (blank, copy signal and one data token), "
                                   f"got {vocab}")
    if seq_len < 4:
        return ("data.seq_len", f"expected at least 4 (a token, a blank, the copy signal, the "
                                f"answer), got {seq_len}")
    return _integer_problem(options, "copy_tokens", 1, (seq_len - 2) // 2,
                            f" (seq_len {seq_len} must exceed 2 * copy_tokens + 1: the tokens, at "
                            "least one blank, the copy signal, the answers)")


def _memorization_problem(options: Mapping[str, object]) -> Problem | None:
    if options["vocab_size"] < 3:
        return ("data.vocab_size", f"expected at least 3 (a key, a value and the insert token), got "
                                   f"{options['vocab_size']}")
    if options["seq_len"] % 2:
        return ("data.seq_len", f"expected an even integer (key, insert-token pairs), got "
                                f"{options['seq_len']}")
    return None


# --------------------------------------------------------------------------- in-context recall


def _recall(count: int, options: Mapping[str, object],
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """In-context recall, MAD's multi-query form: seq_len / 2 key-value pairs, each sequence with its
    own random key -> value map; a value is scored where its key came earlier in the sequence, and
    the last pair always asks for a key seen before. With noise, each pair but the last (and one
    other) is replaced, with probability noise_fraction, by two tokens of the noise vocabulary.

    Tokens: keys 0 .. c/2 - 1, values c/2 .. c - 1, noise c .. vocab_size - 1, where c is
    vocab_size - noise_vocab_size. Returns the full sequences and their answers (IGNORE_INDEX
    elsewhere), position by position; the caller shifts them into next-token form.
    """
    vocab, pairs = options["vocab_size"], options["seq_len"] // 2
    content = vocab - options.get("noise_vocab_size", 0)
    key_count = content // 2
    rows = torch.arange(count)
    keys = torch.randint(0, key_count, (count, pairs), generator=generator)
    table = torch.randint(key_count, content, (count, key_count), generator=generator)
    noise = torch.rand((count, pairs), generator=generator) < options.get("noise_fraction", 0.0)
    noise[rows, torch.randint(0, pairs - 1, (count,), generator=generator)] = False  # one real pair
    noise[:, -1] = False  # the query
    noise_tokens = torch.randint(content, vocab, (count, pairs, 2), generator=generator) \
        if content < vocab else None

    seen = torch.zeros((count, key_count), dtype=torch.bool)
    scored = torch.zeros((count, pairs), dtype=torch.bool)
    for i in range(pairs - 1):
        key, real = keys[:, i], ~noise[:, i]
        scored[:, i] = seen[rows, key] & real
        seen[rows, key] |= real
    # the query: one of the keys seen, each distinct key equally likely
    keys[:, -1] = torch.rand((count, key_count), generator=generator).masked_fill(~seen, -1).argmax(1)
    scored[:, -1] = True
    values = table.gather(1, keys)

    tokens = torch.stack([keys, values], dim=2)
    if noise_tokens is not None:
        tokens = torch.where(noise[..., None], noise_tokens, tokens)
    answers = torch.full((count, pairs, 2), IGNORE_INDEX, dtype=torch.int64)
    answers[:, :, 1] = torch.where(scored, values, IGNORE_INDEX)
    return tokens.reshape(count, 2 * pairs), answers.reshape(count, 2 * pairs)


@dataclass(frozen=True)
class _FuzzyLayout:
    keys: range  # key tokens
    values: range  # value tokens
    pad: int  # fills the start of a sequence that the pairs leave short

    @classmethod
    def of(cls, options: Mapping[str, object]) -> _FuzzyLayout:
        content = options["vocab_size"] - 1
        return cls(range(content // 2), range(content // 2, content), content)


def _fuzzy_recall(count: int, options: Mapping[str, object], rng: random.Random,
                  testing: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Fuzzy in-context recall: keys and values are runs of 1 .. key_tokens (1 .. value_tokens)
    distinct tokens, so the model must find where each begins and ends; the test split asks with
    keys of exactly key_tokens tokens. One pair (the probe) is placed at a random place among the
    others and repeated at the end; every value whose key came before is scored. Left-padded to
    seq_len with the pad token (vocab_size - 1)."""
    layout = _FuzzyLayout.of(options)
    tokens, answers = [], []
    for _ in range(count):
        sequence, scored = _fuzzy_sequence(options, layout, rng, testing)
        tokens.append(sequence)
        answers.append(scored)
    return torch.tensor(tokens, dtype=torch.int64), torch.tensor(answers, dtype=torch.int64)


def _fuzzy_sequence(options: Mapping[str, object], layout: _FuzzyLayout, rng: random.Random,
                    testing: bool) -> tuple[list[int], list[int]]:
    longest_key, longest_value = options["key_tokens"], options["value_tokens"]

    def new_key() -> tuple[int, ...]:
        size = longest_key if testing else rng.randint(1, longest_key)
        return tuple(rng.sample(layout.keys, size))

    def new_value() -> tuple[int, ...]:
        return tuple(rng.sample(layout.values, rng.randint(1, longest_value)))

    probe = (new_key(), new_value())
    mapping = dict([probe])
    room = options["seq_len"] - 2 * (len(probe[0]) + len(probe[1]))
    pairs, used = [], 0
    while used + longest_key + longest_value <= room:  # a pair of any size still fits
        key = new_key()
        if key not in mapping:
            mapping[key] = new_value()
        pairs.append((key, mapping[key]))
        used += len(key) + len(mapping[key])
    pairs.insert(rng.randint(0, len(pairs)), probe)
    pairs.append(probe)

    padding = options["seq_len"] - used - 2 * (len(probe[0]) + len(probe[1]))
    sequence, scored, seen = [layout.pad] * padding, [IGNORE_INDEX] * padding, set()
    for key, value in pairs:
        sequence += [*key, *value]
        scored += [IGNORE_INDEX] * len(key) + (list(value) if key in seen else
                                               [IGNORE_INDEX] * len(value))
        seen.add(key)
    return sequence, scored


# --------------------------------------------------------------------------- copying, memorisation


def _selective_copy(count: int, options: Mapping[str, object],
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Selective copying: copy_tokens data tokens (0 .. vocab_size - 3) scattered in order among
    blanks (vocab_size - 2), then the copy signal (vocab_size - 1) and copy_tokens blanks, at which
    the data tokens are the targets, in order. Positions are labelled, not shifted."""
    vocab, seq_len, copied = options["vocab_size"], options["seq_len"], options["copy_tokens"]
    region = seq_len - copied - 1  # where the data tokens hide among blanks
    data = torch.randint(0, vocab - 2, (count, copied), generator=generator)
    places = torch.rand((count, region), generator=generator).argsort(dim=1)[:, :copied]
    tokens = torch.full((count, seq_len), vocab - 2, dtype=torch.int64)
    tokens[:, :region] = tokens[:, :region].scatter(1, places.sort(dim=1).values, data)
    tokens[:, region] = vocab - 1
    answers = torch.full((count, seq_len), IGNORE_INDEX, dtype=torch.int64)
    answers[:, region + 1:] = data
    return tokens, answers


def _memorization_facts(vocab: int, generator: torch.Generator) -> torch.Tensor:
    """The fixed facts: key k (0 .. (vocab_size - 1) // 2 - 1) -> a distinct value token."""
    key_count = (vocab - 1) // 2
    return torch.randperm(vocab - 1 - key_count, generator=generator)[:key_count] + key_count


def _memorization(count: int, options: Mapping[str, object], facts: torch.Tensor,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Memorisation: seq_len / 2 pairs (key, insert token vocab_size - 1); at each insert token the
    target is the key's value under facts fixed for the whole data set, so they can only be learnt
    by heart. Both splits ask the same facts (as in MAD): the test split checks what was stored."""
    pairs = options["seq_len"] // 2
    keys = torch.randint(0, len(facts), (count, pairs), generator=generator)
    tokens = torch.stack([keys, torch.full_like(keys, options["vocab_size"] - 1)], dim=2)
    answers = torch.stack([torch.full_like(keys, IGNORE_INDEX), facts[keys]], dim=2)
    return tokens.reshape(count, 2 * pairs), answers.reshape(count, 2 * pairs)

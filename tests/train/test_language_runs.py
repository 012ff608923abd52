"""Language runs: loss and accuracy per scored position (checked against sums done by hand),
perplexity and bits per byte, short real gpt runs writing the new columns, the suite rules that
pair gpt with sequence data, the end-of-run table, and reports written before the new columns."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn
from typer.testing import CliRunner

from actbench.cli import app
from actbench.errors import ActbenchError
from actbench.records.schema import TRAIN_RUN_LANGUAGE, train_columns
from actbench.records.writer import read_header, read_rows
from actbench.report.train_tables import summary_table
from actbench.train import language, loop
from actbench.train.data import DataSplits
from actbench.train.executor import Execution, execute, prepare, run_line
from actbench.train.suite import SuiteError, suite_from_dict
from actbench.train.summary import summarise

LN = math.log
# Two sequences of three positions over a vocabulary of three, logits log(weights) so that every
# softmax probability is weight / sum(weights); -100 marks a position that is not scored.
WEIGHTS = [[[1, 2, 1], [3, 1, 1], [1, 1, 8]],   # targets 1 (p 2/4), 2 (p 1/5), unscored
           [[5, 1, 1], [1, 7, 1], [1, 1, 2]]]   # unscored, unscored, target 2 (p 2/4)
TARGETS = [[1, 2, -100], [-100, -100, 2]]
# by hand: -log p of each scored position, and whether its largest weight is the target
SCORED_LOSSES = [LN(4) - LN(2), LN(5) - LN(1), LN(4) - LN(2)]
SCORED_HITS = [True, False, True]
TOKEN_LOSS = sum(SCORED_LOSSES) / 3  # per scored token
TOKEN_ACC = 2 / 3
PER_SEQUENCE_LOSS = ((SCORED_LOSSES[0] + SCORED_LOSSES[1]) / 2 + SCORED_LOSSES[2]) / 2


@pytest.fixture(autouse=True)
def torch_threads():
    """Runs executed inline set this process's torch threads: later tests get theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def hand_logits() -> torch.Tensor:
    return torch.tensor(WEIGHTS, dtype=torch.float64).log()


class FixedLogits(nn.Module):
    """Returns the logits of the sequence whose index is its first token (whatever the batch
    order); one parameter that gets no gradient, so that training leaves the outputs alone."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits.float()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits[tokens[:, 0]] + 0 * self.unused


def hand_splits(copies: int = 1) -> DataSplits:
    ids = torch.tensor([[0, 0, 0], [1, 1, 1]] * copies)
    targets = torch.tensor(TARGETS * copies)
    return DataSplits(train_x=ids, train_y=targets, test_x=ids, test_y=targets, num_classes=3,
                      input_shape=(3,), name="mad_selective_copy", augment_kind=None,
                      task="sequence")


def sequence_run(**train):
    suite = suite_from_dict({"activations": ["relu"], "model": {"name": "gpt"},
                             "data": {"name": "mad_selective_copy", "seq_len": 24, "copy_tokens": 4},
                             "train": {"device": "cpu", **train}})
    return suite.runs()[0]


def trainer(splits: DataSplits, **train) -> loop.Trainer:
    model = FixedLogits(hand_logits())
    return loop.Trainer(sequence_run(**train), splits, torch.device("cpu"), model, [])


# --------------------------------------------------------------------------- by hand


def test_the_hand_case_is_what_it_claims():
    probabilities = hand_logits().softmax(-1)
    assert probabilities[0, 0, 1].item() == pytest.approx(0.5)
    assert probabilities[0, 1, 2].item() == pytest.approx(0.2)
    assert TOKEN_LOSS != pytest.approx(PER_SEQUENCE_LOSS)  # the test can tell the two apart


def test_evaluation_averages_per_scored_token_not_per_sequence():
    model = FixedLogits(hand_logits())
    x, y = hand_splits().test_x, hand_splits().test_y
    for batch_size in (1, 2):
        acc, loss = loop.evaluate(model, x, y, batch_size, torch.device("cpu"), False, sequence=True)
        assert loss == pytest.approx(TOKEN_LOSS, rel=1e-6)
        assert acc == pytest.approx(TOKEN_ACC)


def test_the_training_loss_and_counts_are_per_scored_position():
    logits, targets = hand_logits().float(), torch.tensor(TARGETS)
    plain = trainer(hand_splits())
    assert plain.loss(logits, targets).item() == pytest.approx(TOKEN_LOSS, rel=1e-6)
    hits, count = plain.batch_counts(logits, targets)
    assert (hits.item(), count.item()) == (sum(SCORED_HITS), 3)
    # label smoothing eps: (1 - eps) * -log p(target) + eps * mean over the vocabulary of -log p
    eps = 0.1
    smoothed = trainer(hand_splits(), label_smoothing=eps)
    weights = [WEIGHTS[0][0], WEIGHTS[0][1], WEIGHTS[1][2]]
    uniform = [sum(LN(sum(w)) - LN(v) for v in w) / 3 for w in weights]
    expected = sum((1 - eps) * nll + eps * u for nll, u in zip(SCORED_LOSSES, uniform)) / 3
    assert smoothed.loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_a_batch_without_scored_positions_has_loss_zero_not_nan():
    unscored = torch.full((2, 3), language.IGNORE_INDEX)
    loss = trainer(hand_splits()).loss(hand_logits().float(), unscored)
    assert loss.item() == 0.0


def test_an_epoch_averages_over_scored_positions_of_every_batch():
    """Batches of two sequences holding 3 scored positions each: the epoch's train loss is the
    per-token mean (the outputs never change: the model's one parameter gets no gradient)."""
    run = trainer(hand_splits(copies=2), batch_size=2, eval_batch_size=1)
    record = run.train_epoch(1, lambda *args: None)
    assert record.train_loss == pytest.approx(TOKEN_LOSS, rel=1e-6)
    assert record.train_acc == pytest.approx(TOKEN_ACC)
    assert record.test_loss == pytest.approx(TOKEN_LOSS, rel=1e-6)
    assert record.test_acc == pytest.approx(TOKEN_ACC)


def test_noise_on_token_ids_is_refused_even_outside_a_suite():
    model = FixedLogits(hand_logits())
    splits = hand_splits()
    with pytest.raises(ActbenchError, match="eval.noise: expected \\[\\] for sequence data"):
        loop.evaluate(model, splits.test_x, splits.test_y, 2, torch.device("cpu"), False,
                      noise=0.5, sequence=True)


def test_perplexity_and_bits_per_byte():
    assert language.perplexity(LN(7)) == pytest.approx(7.0)
    assert language.perplexity(0.0) == 1.0
    assert language.perplexity(1000.0) == math.inf  # exp overflows a float
    assert math.isnan(language.perplexity(math.nan))
    assert language.bits_per_byte(3 * LN(2)) == pytest.approx(3.0)
    assert language.bits_per_byte(LN(256)) == pytest.approx(8.0)  # uniform over bytes


# --------------------------------------------------------------------------- short real runs


def gpt_parameters(vocab: int, context: int, width: int, depth: int, hidden: int,
                   gated: bool) -> int:
    """GPT-2's parameter count by its parts: tied embedding (the head), learned positions, per
    block two LayerNorms, qkv and projection, the MLP's two layers; the final LayerNorm."""
    first = 2 * hidden if gated else hidden
    block = 2 * 2 * width + (width * 3 * width + 3 * width) + (width * width + width) \
        + (width * first + first) + (hidden * width + width)
    return vocab * width + context * width + depth * block + 2 * width


def run_suite(tmp_path: Path, document: dict, name: str = "r"):
    suite_run = prepare(suite_from_dict(document), tmp_path / f"{name}.csv")
    execute(suite_run, execution=Execution(executor="inline", threads=1))
    return suite_run, read_rows(tmp_path / f"{name}.csv"), read_rows(tmp_path / f"{name}.epochs.csv")


TINY_GPT = {"name": "gpt", "depth": 1, "width": 16, "heads": 2}


def test_a_short_gpt_run_on_selective_copying_writes_the_language_columns(tmp_path):
    suite_run, rows, epochs = run_suite(tmp_path, {
        "name": "copy", "activations": ["relu", "swiglu"], "seeds": [0],
        "data": {"name": "mad_selective_copy", "seq_len": 24, "copy_tokens": 4,
                 "train_size": 64, "test_size": 32},
        "model": TINY_GPT, "optim": {"name": "adamw", "lr": 0.003},
        "train": {"epochs": 2, "batch_size": 16, "device": "cpu"}})
    assert set(TRAIN_RUN_LANGUAGE) <= set(read_header(suite_run.out))
    assert [row["status"] for row in rows] == ["ok", "ok"]
    for row in rows:
        loss = float(row["final_test_loss"])
        assert float(row["final_test_perplexity"]) == pytest.approx(math.exp(loss), rel=1e-12)
        assert row["final_test_bits_per_byte"] == ""  # tokens of a MAD task are no bytes
        assert 0 <= float(row["final_test_acc"]) <= 1
        last = [e for e in epochs if e["config_hash"] == row["config_hash"]][-1]
        assert float(last["test_loss"]) == loss
    # gated MLPs: 2/3 of 4 x 16 = 42.7 hidden units, to the multiple of 8 nearest: 40
    params = {row["activation"]: int(row["params"]) for row in rows}
    assert params == {"relu": gpt_parameters(16, 24, 16, 1, 64, gated=False),
                      "swiglu": gpt_parameters(16, 24, 16, 1, 40, gated=True)}
    run, result = suite_run.results[0]
    line = run_line(run, 2, result)
    assert ", perplexity " in line and "bits/byte" not in line


def test_a_byte_level_text_run_reports_bits_per_byte(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"the cat sat on the mat. " * 60)
    _, (row,), _ = run_suite(tmp_path, {
        "name": "bytes", "activations": ["gelu"], "seeds": [0],
        "data": {"name": "text", "path": str(corpus), "seq_len": 16, "root": str(tmp_path / "cache")},
        "model": TINY_GPT, "train": {"epochs": 1, "batch_size": 16, "device": "cpu"}})
    assert row["status"] == "ok", row["message"]
    loss = float(row["final_test_loss"])
    assert float(row["final_test_bits_per_byte"]) == pytest.approx(loss / math.log(2), rel=1e-12)
    assert float(row["final_test_perplexity"]) == pytest.approx(math.exp(loss), rel=1e-12)
    assert int(row["params"]) == gpt_parameters(256, 16, 16, 1, 64, gated=False)


def test_a_classification_run_leaves_the_language_columns_empty(tmp_path):
    _, (row,), _ = run_suite(tmp_path, {
        "name": "cls", "activations": ["relu"], "seeds": [0],
        "data": {"name": "synthetic", "shape": [1, 4, 4], "classes": 3, "train_size": 32,
                 "test_size": 16},
        "model": {"name": "mlp", "depth": 1, "width": 8},
        "train": {"epochs": 1, "batch_size": 16, "device": "cpu"}})
    assert row["status"] == "ok" and row["final_test_loss"] != ""
    assert row["final_test_perplexity"] == row["final_test_bits_per_byte"] == ""


# --------------------------------------------------------------------------- suite rules


def problems(document: dict) -> list[str]:
    with pytest.raises(SuiteError) as caught:
        suite_from_dict({"activations": ["relu"], **document})
    return caught.value.problems


def test_gpt_and_sequence_data_go_together_one_line_naming_the_key():
    assert problems({"model": {"name": "gpt"}}) == [
        "suite: data.name: expected a sequence data set for model gpt (one of mad_fuzzy_recall, "
        "mad_memorization, mad_noisy_recall, mad_recall, mad_selective_copy, text), got mnist1d"]
    assert problems({"data": {"name": "mad_recall"}}) == [
        "suite: model.name: expected gpt for sequence data set mad_recall (token ids, a target per "
        "position), got mlp"]
    # one mistake, one problem: not also one about cnn1d's input dimensions
    assert problems({"data": {"name": "mad_recall"}, "model": {"name": "cnn1d"}}) == [
        "suite: model.name: expected gpt for sequence data set mad_recall (token ids, a target per "
        "position), got cnn1d"]
    # a swept model is named by its place in the sweep
    assert problems({"data": {"name": "mad_recall"}, "sweep": {"model.name": ["gpt", "mlp"]}}) == [
        "suite: sweep.model.name[1]: expected gpt for sequence data set mad_recall (token ids, a "
        "target per position), got mlp"]


def test_mixup_and_input_noise_are_refused_for_token_ids():
    found = problems({"model": {"name": "gpt"}, "data": {"name": "mad_recall"},
                      "train": {"mixup": 0.2}, "eval": {"noise": [0.5]}})
    assert found == [
        "suite: train.mixup: expected 0 for sequence data: mixup blends inputs, and token ids "
        "cannot be blended",
        "suite: eval.noise: expected [] for sequence data: Gaussian noise on token ids has no "
        "meaning (the test split is evaluated as it is)"]


def test_the_cli_says_a_rule_in_one_line_and_exits_2(tmp_path):
    suite = tmp_path / "lm.yaml"
    suite.write_text("activations: [relu]\ndata: {name: mad_recall}\n")
    result = CliRunner().invoke(app, ["train", str(suite), "--dry-run"],
                                env={"COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 2
    assert result.output.strip() == ("error: lm.yaml: model.name: expected gpt for sequence data "
                                     "set mad_recall (token ids, a target per position), got mlp")


# --------------------------------------------------------------------------- shipped suites

SUITES = Path(__file__).resolve().parents[2] / "suites"
SIX = ["gelu", "swiglu", "geglu", "relu2", "mish", "relu"]


def test_tinylm_sweeps_three_mad_tasks_with_gpt():
    from actbench.train.suite import load_suite

    suite = load_suite(SUITES / "tinylm.yaml", seeds="0")
    assert suite.sweep == {"data.name": ["mad_recall", "mad_selective_copy", "mad_memorization"]}
    assert [a.name for a in suite.activations] == SIX and suite.baseline == "gelu"
    runs = suite.runs()
    assert len(runs) == 18 and {run.config.model.name for run in runs} == {"gpt"}


def test_the_shakespeare_dry_run_says_where_the_file_goes_and_where_it_comes_from(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", str(SUITES / "shakespeare.yaml"), "--dry-run"],
                                env={"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    assert "18 of 18 runs to do" in result.output
    assert (f"note: shakespeare.yaml: data: data.path tinyshakespeare.txt does not exist "
            f"(relative to the current directory, {tmp_path}); put the file there or point "
            "data.path at it (--set data.path=FILE)") in result.output
    assert "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/" \
           "input.txt" in result.output


# --------------------------------------------------------------------------- the summary table


def render(table) -> str:
    console = Console(width=240, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def summary_row(activation: str, seed: int, loss: float, bits: bool) -> dict[str, str]:
    return {"activation": activation, "seed": str(seed), "status": "ok", "final_test_acc": "0.5",
            "mean_epoch_s": "1.0", "peak_bytes": "", "peak_kind": "", "final_test_loss": str(loss),
            "final_test_perplexity": str(math.exp(loss)),
            "final_test_bits_per_byte": str(loss / math.log(2)) if bits else ""}


def test_the_end_of_run_table_shows_loss_and_perplexity_for_language_runs_only():
    rows = [summary_row("gelu", 0, LN(4), bits=True), summary_row("gelu", 1, LN(16), bits=True)]
    (gelu,) = summarise(rows, [], None)
    assert gelu.mean_loss == pytest.approx((LN(4) + LN(16)) / 2)
    assert gelu.mean_perplexity == pytest.approx(10.0)  # the mean of 4 and 16
    assert gelu.mean_bits_per_byte == pytest.approx(3.0)  # the mean of 2 and 4 bits
    text = render(summary_table([gelu], [], None))
    assert "test loss" in text and "perplexity" in text and "bits/byte" in text
    assert "10" in text.split("perplexity", 1)[1] and "lower is better" in text
    mad = summarise([summary_row("gelu", 0, LN(4), bits=False)], [], None)
    assert "bits/byte" not in render(summary_table(mad, [], None))
    classify = [{**summary_row("relu", 0, 0.3, bits=False), "final_test_perplexity": ""}]
    text = render(summary_table(summarise(classify, [], None), [], None))
    assert "perplexity" not in text and "test loss" not in text
    legacy = [{k: v for k, v in classify[0].items() if not k.startswith("final_test_")}
              | {"final_test_acc": "0.5"}]
    assert "perplexity" not in render(summary_table(summarise(legacy, [], None), [], None))


# --------------------------------------------------------------------------- older reports


def test_a_report_without_the_language_columns_resumes_in_its_own_layout(tmp_path):
    """A runs file written before the language columns (TRAIN_RUN_ADDED, no more) keeps that
    header when resumed; the run it lacks is run again and written in that layout."""
    document = {"name": "old", "activations": ["relu", "mish"], "seeds": [0],
                "data": {"name": "synthetic", "shape": [1, 4, 4], "classes": 3, "train_size": 32,
                         "test_size": 16},
                "model": {"name": "mlp", "depth": 1, "width": 8},
                "train": {"epochs": 1, "batch_size": 16, "device": "cpu"}}
    suite_run, rows, _ = run_suite(tmp_path, document, "old")
    older = train_columns([], [], layout=1)
    assert not set(TRAIN_RUN_LANGUAGE) & set(older)
    with open(suite_run.out, "w", newline="", encoding="utf-8") as handle:  # as written back then
        writer = csv.DictWriter(handle, older, extrasaction="ignore")
        writer.writeheader()
        writer.writerow(rows[0])  # the second run was lost
    again = prepare(suite_from_dict(document), suite_run.out, resume=True)
    assert again.run_columns == older and len(again.pending) == 1
    execute(again, execution=Execution(executor="inline", threads=1))
    assert read_header(suite_run.out) == list(older)
    resumed = read_rows(suite_run.out)
    assert [r["config_hash"] for r in resumed] == [r["config_hash"] for r in rows]
    assert resumed[1]["status"] == "ok"

"""The train summary says what its numbers are: significance for the best, comparable peaks only."""

import math

from rich.console import Console

from actbench.report.train_tables import summary_table
from actbench.train.summary import peak_memory_meaning, significantly_best, summarise


def row(activation, acc, seed, peak_kind="process_peak_rss", status="ok", depth="2"):
    return {"activation": activation, "final_test_acc": str(acc), "mean_epoch_s": "0.5",
            "peak_bytes": str(2**20 * (100 + seed)), "peak_kind": peak_kind, "status": status,
            "seed": str(seed), "model.depth": depth}


def render(table) -> str:
    console = Console(width=240, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def test_a_clearly_better_mean_is_marked_best_and_one_within_noise_is_not():
    clear = [row("mish", a, s) for s, a in enumerate([0.90, 0.91, 0.905])] + \
            [row("relu", a, s) for s, a in enumerate([0.80, 0.81, 0.805])]
    assert significantly_best(summarise(clear, [], "relu")) == {((), "mish")}
    noisy = [row("mish", a, s) for s, a in enumerate([0.90, 0.80, 0.85])] + \
            [row("relu", a, s) for s, a in enumerate([0.86, 0.84, 0.85])]
    assert significantly_best(summarise(noisy, [], "relu")) == set()
    one_seed = [row("mish", 0.9, 0), row("relu", 0.1, 0)]
    assert significantly_best(summarise(one_seed, [], "relu")) == set()  # no spread, no test


def test_points_are_judged_apart():
    rows = [row("mish", a, s, depth="2") for s, a in enumerate([0.90, 0.91, 0.905])] + \
           [row("relu", a, s, depth="2") for s, a in enumerate([0.80, 0.81, 0.805])] + \
           [row("mish", a, s, depth="4") for s, a in enumerate([0.80, 0.90, 0.85])] + \
           [row("relu", a, s, depth="4") for s, a in enumerate([0.86, 0.84, 0.85])]
    assert significantly_best(summarise(rows, ["model.depth"], None)) == {((("model.depth", "2"),), "mish")}


def test_peaks_are_shown_only_when_measured_alike_in_processes_of_their_own():
    own = summarise([row("mish", 0.9, 0), row("relu", 0.8, 0)], [], None)
    shown, sentence = peak_memory_meaning(own)
    assert shown and "own process" in sentence
    assert "100.0 MiB" in render(summary_table(own, [], None))
    shared = summarise([row("mish", 0.9, 0, "shared_process_peak_rss"), row("relu", 0.8, 0)], [], None)
    shown, sentence = peak_memory_meaning(shared)
    assert not shown and "--executor inline" in sentence
    text = render(summary_table(shared, [], None))
    assert "MiB" not in text and "not shown" in text
    mixed = summarise([row("mish", 0.9, 0, "cuda_max_allocated"), row("relu", 0.8, 0)], [], None)
    assert peak_memory_meaning(mixed) == (False, "peak memory: not shown, the runs measured it in "
                                                 "different ways (cuda_max_allocated, process_peak_rss)")
    assert not peak_memory_meaning(summarise([row("relu", 0.8, 0, "")], [], None))[0]


def test_the_caption_says_what_each_number_is():
    summaries = summarise([row("mish", 0.9, 0), row("relu", 0.8, 0), row("relu", 0.1, 1, status="failed")],
                          [], "relu")
    text = render(summary_table(summaries, [], "relu"))
    assert "over the seeds that finished ok" in text and "warm-up measured apart" in text
    assert "Welch" in text and "1/2" in text and "1 failed" in text
    relu = next(s for s in summaries if s.activation == "relu")
    assert relu.accuracies == (0.8,) and math.isnan(relu.std_acc)

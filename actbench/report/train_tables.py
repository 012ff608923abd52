"""Training results as Rich tables: the run list of a dry run, and the per-activation summary."""

from __future__ import annotations

import math

from rich.table import Table

from .micro_tables import format_bytes


def run_list_table(runs, sweep_keys: list[str], done: set[str]) -> Table:
    table = Table(title=f"{len(runs)} runs", title_justify="left")
    for header in ("#", "activation", "seed", *sweep_keys, "hash", "state"):
        table.add_column(header)
    for run in runs:
        table.add_row(str(run.index), run.activation.label, str(run.seed),
                      *(str(run.sweep.get(key)) for key in sweep_keys), run.config_hash,
                      "done" if run.config_hash in done else "to run")
    return table


def _percent(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _number(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4g}"


def _language_columns(summaries) -> list[tuple[str, object]]:
    """(header, summary -> cell) of the columns runs on sequence data add: test loss and
    perplexity, and bits per byte where some ran on byte-level text; none without such runs."""
    if not any(s.language for s in summaries):
        return []
    columns = [("test loss", lambda s: _number(s.mean_loss) if s.language else ""),
               ("perplexity", lambda s: _number(s.mean_perplexity))]
    if any(not math.isnan(s.mean_bits_per_byte) for s in summaries):
        columns.append(("bits/byte", lambda s: _number(s.mean_bits_per_byte)))
    return columns


def _caption(language: list, peak_sentence: str) -> str:
    """What each number is; the language sentence only where such runs are shown."""
    accuracy = ("final test accuracy (token accuracy over the scored positions for sequence data) "
                "over the seeds that finished ok" if language else
                "final test accuracy over the seeds that finished ok")
    words = [f"mean ± std: {accuracy}"]
    if language:
        words.append("test loss: cross-entropy in nats per scored position, perplexity exp(loss)"
                     + (", bits/byte loss / ln 2" if "bits/byte" in dict(language) else "")
                     + ", means over seeds (lower is better)")
    words += ["epoch time: mean over epochs after a warm-up measured apart (warmup_s in the report)",
              peak_sentence, "green: best at its point by Welch's t-test (p < 0.05)"]
    return "; ".join(words)


def summary_table(summaries, sweep_keys: list[str], baseline: str | None) -> Table:
    """The summary with a caption that says what each number is; the best mean is highlighted
    only where it is significantly best, peaks only shown where they are comparable, loss and
    perplexity (bits per byte for text) only where runs on sequence data are shown."""
    from ..train.summary import peak_memory_meaning, significantly_best

    show_peaks, peak_sentence = peak_memory_meaning(summaries)
    language = _language_columns(summaries)
    title = ("final test accuracy (%) and loss per activation" if language
             else "final test accuracy (%) per activation")
    table = Table(title=title, title_justify="left", caption_justify="left",
                  caption=_caption(language, peak_sentence))
    for header in (*sweep_keys, "activation", "seeds", "mean ± std", f"vs {baseline}" if baseline
                   else "diff", *(header for header, _ in language), "epoch time", "peak memory",
                   "not ok"):
        table.add_column(header, justify="right" if header not in ("activation",) else "left")
    best = significantly_best(summaries)
    for s in sorted(summaries, key=lambda s: (s.point, -(s.mean_acc if not math.isnan(s.mean_acc)
                                                         else -1))):
        mean = _percent(s.mean_acc)
        spread = "" if math.isnan(s.std_acc) else f" ± {100 * s.std_acc:.2f}"
        text = f"{mean}{spread}"
        if (s.point, s.activation) in best:
            text = f"[bold green]{text}[/]"
        diff = "" if s.diff_to_baseline is None or math.isnan(s.diff_to_baseline) \
            else f"{100 * s.diff_to_baseline:+.2f}"
        epoch = "" if math.isnan(s.mean_epoch_s) else f"{s.mean_epoch_s:.2f} s"
        peak = "" if math.isnan(s.peak_bytes) or not show_peaks else format_bytes(s.peak_bytes)
        bad = ", ".join(f"{n} {word}" for n, word in ((s.failed, "failed"), (s.diverged, "diverged"))
                        if n)
        table.add_row(*(value for _, value in s.point), s.activation, f"{s.seeds_ok}/{s.runs}",
                      text, diff, *(cell(s) for _, cell in language), epoch, peak,
                      f"[red]{bad}[/]" if bad else "")
    return table

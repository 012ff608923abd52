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


def summary_table(summaries, sweep_keys: list[str], baseline: str | None) -> Table:
    """The summary with a caption that says what each number is; the best mean is highlighted
    only where it is significantly best, peaks only shown where they are comparable."""
    from ..train.summary import peak_memory_meaning, significantly_best

    show_peaks, peak_sentence = peak_memory_meaning(summaries)
    table = Table(title="final test accuracy (%) per activation", title_justify="left",
                  caption_justify="left", caption=(
                      "mean ± std: final test accuracy over the seeds that finished ok; epoch time: "
                      "mean over epochs after a warm-up measured apart (warmup_s in the report); "
                      f"{peak_sentence}; green: best at its point by Welch's t-test (p < 0.05)"))
    for header in (*sweep_keys, "activation", "seeds", "mean ± std", f"vs {baseline}" if baseline
                   else "diff", "epoch time", "peak memory", "not ok"):
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
                      text, diff, epoch, peak, f"[red]{bad}[/]" if bad else "")
    return table

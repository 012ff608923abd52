"""`actbench model`: what an activation costs inside a whole network."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app, console as _console
from .measuring import exit_if_nothing_measured, measure, warn_if_busy


@app.command()
def model(
    model_name: str = typer.Argument(..., metavar="MODEL", help="resnet20 (or resnet32 ... "
                                     "resnet110, preact_resnet20, cnn, deep_fc, mlp, cnn1d, gpt: "
                                     "byte-level, the only one that takes gated activations), "
                                     "timm:NAME, torchvision:NAME or pkg.mod:factory."),
    act: list[str] = typer.Option(None, "--act", "-a", help="Activations (comma lists; default "
                                  "relu,silu,mish). identity and the baseline are always added."),
    impl: str = typer.Option(None, help="Implementation(s): a name, a comma list or 'all' "
                             "(default: each activation's default)."),
    device: list[str] = typer.Option(None, help="auto (default), cpu, cuda, cuda:N or mps."),
    dtype: list[str] = typer.Option(None, help="float32 (default), bfloat16, float16: the "
                                    "model's dtype; comma lists."),
    amp: bool = typer.Option(False, "--amp", help="A float32 model under autocast (float16 on "
                             "CUDA, bfloat16 elsewhere)."),
    batch_size: list[str] = typer.Option(None, "--batch-size", "-b", help="Batch sizes, comma "
                                         "lists (default 32)."),
    mode: list[str] = typer.Option(None, help="infer, train (default: both). train is a whole "
                                   "step: forward, backward and an SGD step."),
    channels_last: bool = typer.Option(False, "--channels-last", help="Model and 4-D input in "
                                       "channels-last memory format."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    input_shape: str = typer.Option(None, help="One sample's shape without the batch "
                                    "(3,224,224; gpt: the context length, 256); default: the "
                                    "model's own."),
    threads: int = typer.Option(None, min=1, help="CPU threads (torch.set_num_threads); recorded."),
    min_time: float = typer.Option(0.0, min=0.0, help="Least sampling time per configuration (s)."),
    max_time: float = typer.Option(2.0, min=0.001, help="Most sampling time per configuration (s); "
                                   "a result stopped by it is flagged noisy."),
    target_rsd: float = typer.Option(0.02, min=0.0001, max=1.0, help="Stop when the 95 % CI of the "
                                     "median is within this fraction of it."),
    baseline: str = typer.Option("relu", help="Activation the tables divide by."),
    seed: int = typer.Option(0, help="Seed of the weights, the batch and the labels."),
    out: Path = typer.Option(None, "--out", "-o", help="CSV report (default reports/model-<host>-"
                             "<model>-<device>-<UTC time>.csv). An existing report is resumed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the report's path."),
) -> None:
    """Step time, throughput and memory of a whole model with each activation swapped in.

    Examples: `actbench model resnet20 --act relu,silu,mish,meta_acon --device cpu
    --batch-size 32,128`, `actbench model timm:resnet18 --act relu,mish --device cuda --amp`,
    `actbench model gpt --act gelu,swiglu --input-shape 128`.
    The method is described in docs/methodology.md, the columns in docs/report-format.md.
    """
    from ..model.session import ModelOptions, execute, open_run

    run = open_run(ModelOptions(
        model=model_name, activations=act, impl=impl, devices=device, dtypes=dtype, amp=amp,
        batch_sizes=batch_size, modes=mode, channels_last=channels_last, compile=compile_,
        input_shape=input_shape, baseline=baseline, target_rsd=target_rsd, min_time=min_time,
        max_time=max_time, threads=threads, seed=seed, out=out))
    console, err_console = _console(), _console(stderr=True)
    measure(run, lambda on_progress: execute(run, on_progress), err_console, quiet, run.skipped)
    if quiet:
        typer.echo(str(run.out))
    else:
        from ..records.writer import read_rows
        from ..report.model_tables import model_tables

        for table in model_tables(read_rows(run.out), run.plan.baseline_label,
                                  [c.activation.label for c in run.plan.configs]):
            console.print(table)
        console.print(f"report: {run.out}")
        warn_if_busy(err_console, run.rows)
        _warn_if_nothing_replaced(err_console, run.rows, run.source.text)
    exit_if_nothing_measured(err_console, run.rows, run.out)


def _warn_if_nothing_replaced(err_console, rows, model_text: str) -> None:
    untouched = [r for r in rows if "nothing_replaced" in str(r.get("flags") or "").split(";")]
    if untouched:
        err_console.print(f"warning: {len(untouched)} configuration(s) put their activation "
                          f"nowhere: {model_text} has no activation module that actbench "
                          "recognises (the left_alone column says what it found); they time "
                          "the model as it is", highlight=False, markup=False, soft_wrap=True)

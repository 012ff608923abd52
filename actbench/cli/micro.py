"""`actbench micro` and `actbench env`: what an activation call costs, and on what machine."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ActbenchError
from . import EXIT_FAILED, app, console as _console
from .measuring import exit_if_nothing_measured, measure, warn_if_busy


@app.command()
def micro(
    act: list[str] = typer.Option(None, "--act", "-a", help="Activations: names, import paths, "
                                  "expressions; repeatable, comma lists, 'all'. Default: the Mish "
                                  "and ACON papers' set plus the common ones."),
    impl: str = typer.Option(None, help="Implementation(s): a name, a comma list or 'all' "
                             "(default: each activation's default)."),
    device: list[str] = typer.Option(None, help="auto (default), cpu, cuda, cuda:N or mps."),
    dtype: list[str] = typer.Option(None, help="float32 (default), float16, bfloat16, float64; "
                                    "comma lists."),
    size: list[str] = typer.Option(None, help="Flat sizes in elements (1048576, 2^20, 1M); comma "
                                   "lists. Default: 2^16, 2^20, 2^24 and 16x10x256x256. Sizes are "
                                   "the input's: a gated activation (swiglu, ...) writes half."),
    shape: list[str] = typer.Option(None, help="Tensor shapes such as 16x10x256x256; repeatable."),
    pass_: list[str] = typer.Option(None, "--pass", help="fwd, bwd, fwdbwd (default: all three)."),
    threads: list[str] = typer.Option(None, help="CPU threads (torch.set_num_threads): a count, "
                                      "or a comma list to sweep, e.g. 1,2,all (all: the CPUs this "
                                      "process may use). Default: torch's own; recorded."),
    min_time: float = typer.Option(0.0, min=0.0, help="Least sampling time per configuration (s)."),
    max_time: float = typer.Option(0.5, min=0.001, help="Most sampling time per configuration (s); "
                                   "a result stopped by it is flagged noisy."),
    target_rsd: float = typer.Option(0.02, min=0.0001, max=1.0, help="Stop when the 95 % CI of the "
                                     "median is within this fraction of it."),
    cold: bool = typer.Option(None, "--cold/--hot", help="Flush caches before every timed call "
                              "(default on CUDA) or time back-to-back calls (default elsewhere)."),
    baseline: str = typer.Option("relu", help="Activation the tables divide by."),
    energy: bool = typer.Option(True, "--energy/--no-energy", help="CUDA: energy per call from "
                                "NVML over a >= 1 s window per configuration."),
    out: Path = typer.Option(None, "--out", "-o", help="CSV report (default "
                             "reports/micro-<host>-<device>-<UTC time>.csv). An existing report is "
                             "resumed: configurations it holds are skipped."),
    samples: Path = typer.Option(None, help="Also write every raw sample to this CSV."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the report's path."),
    executor: str = typer.Option("local", help="local: measure here (default); ray: the same plan "
                                 "on every GPU of a Ray cluster (or every node, for the CPU), into "
                                 "one report (pip install 'actbench[ray]')."),
    address: str = typer.Option(None, help="Ray cluster to use with --executor ray (auto, "
                                "HOST:PORT, ray://HOST:PORT); default: a local Ray."),
) -> None:
    """Forward / backward latency, bandwidth against the copy roofline, memory, accuracy.

    Examples: `actbench micro`, `actbench micro --act mish --impl all --size 1048576`,
    `actbench micro --act mish,silu --device cuda --dtype float16,bfloat16`.
    The method is described in docs/methodology.md, the columns in docs/report-format.md.
    """
    from ..micro.session import MicroOptions, execute, open_run

    options = MicroOptions(
        activations=act, impl=impl, devices=device, dtypes=dtype, sizes=size, shapes=shape,
        passes=pass_, baseline=baseline, target_rsd=target_rsd, min_time=min_time,
        max_time=max_time, cold=cold, threads=threads, energy=energy, out=out, samples=samples)
    choice = executor.strip().lower()
    if choice not in ("local", "ray"):
        raise ActbenchError(f"unknown executor '{executor}'; expected local or ray")
    if address and choice != "ray":
        raise ActbenchError("--address names a Ray cluster; it needs --executor ray")
    if choice == "ray":
        _micro_on_ray(options, address, quiet)
        return
    run = open_run(options)
    console = _console()
    err_console = _console(stderr=True)
    measure(run, lambda on_progress: execute(run, on_progress), err_console, quiet, run.skipped)
    if quiet:
        typer.echo(str(run.out))
    else:
        from ..records.writer import read_rows

        _print_tables(console, read_rows(run.out), run.plan.baseline_label,
                      [config.activation.label for config in run.plan.configs])
        console.print(f"report: {run.out}")
    if not quiet:
        warn_if_busy(err_console, run.rows)
    exit_if_nothing_measured(err_console, run.rows, run.out)


def _print_tables(console, rows, baseline, activation_order=()) -> None:
    """A table per (device, dtype, size, pass), then one line per activation against the baseline."""
    from ..report.micro_tables import micro_tables, summary_lines

    for table in micro_tables(rows, baseline, activation_order):
        console.print(table)
    for line in summary_lines(rows, baseline, activation_order):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _micro_on_ray(options, address: str | None, quiet: bool) -> None:
    """The plan on every GPU (or node) of a Ray cluster; tables per machine."""
    from ..cluster import require_ray
    from ..micro import on_ray
    from ..records.writer import read_rows

    require_ray()
    run = on_ray.prepare(options)
    console, err_console = _console(), _console(stderr=True)
    measure(run, lambda on_progress: on_ray.execute(run, options, address, on_progress),
            err_console, quiet)
    if quiet:
        typer.echo(str(run.out))
    else:
        rows = read_rows(run.out)
        for machine in dict.fromkeys((r.get("host"), r.get("gpu")) for r in rows):
            console.print(f"{machine[0]} ({machine[1]})")
            _print_tables(console, [r for r in rows if (r.get("host"), r.get("gpu")) == machine],
                          options.baseline)
        console.print(f"report: {run.out}")
    if not quiet:
        warn_if_busy(err_console, run.rows)
    if run.failures:
        raise typer.Exit(EXIT_FAILED)


@app.command("env")
def environment(
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The machine and software as every report records them (versions, CPU, RAM, GPUs)."""
    import json

    from .. import env

    captured = env.capture()
    if json_output:  # no Rich: torch's import is this command's floor, the rest should add nothing
        typer.echo(json.dumps(captured, indent=2, default=str))
        return
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key, value in env.flatten(captured):
        table.add_row(key, value)
    _console().print(table)

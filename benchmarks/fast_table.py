"""Markdown tables of an `actbench micro` report, with ratios to native SiLU and to ReLU.

`actbench micro` divides by one baseline; the fast-implementation targets are stated against two
(native SiLU and ReLU), so this script reads the report back and prints, per device, dtype and
size: fwd and fwd + bwd medians, both ratios for both passes, the copy roofline fraction of
fwd + bwd, the bytes saved for backward (x input) and the largest relative error of the values.
Run: python benchmarks/fast_table.py REPORT.csv
"""

from __future__ import annotations

import argparse

import pandas as pd

from actbench.records.writer import read_rows

PASSES = ("fwd", "fwdbwd")


def _microseconds(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}" if seconds == seconds else "-"


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if value == value and base == base else "-"


def tables(report: str) -> str:
    rows = pd.DataFrame(read_rows(report))
    rows = rows[rows["status"].isin(["ok", "noisy"])].copy()
    rows["median_s"] = rows["median_s"].astype(float)
    out = []
    for (device, dtype, numel), group in rows.groupby(["device", "dtype", "numel"], sort=False):
        wide = group.pivot_table(index=["activation", "impl"], columns="pass", values="median_s",
                                 aggfunc="first", sort=False)
        info = group[group["pass"] == "fwdbwd"].set_index(["activation", "impl"])

        def base(name: str, pass_: str) -> float:
            return wide[pass_].get((name, "native"), float("nan")) if pass_ in wide else float("nan")

        out.append(f"\n{device} · {dtype} · {int(numel):,} elements\n")
        out.append("| activation | impl | fwd µs | fwd+bwd µs | fwd / SiLU | fwd+bwd / SiLU | "
                   "fwd / ReLU | fwd+bwd / ReLU | roofline (fwd+bwd) | saved (x input) | max rel err |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for (name, impl), times in wide.iterrows():
            fwd, both = (times.get(p, float("nan")) for p in PASSES)
            extra = info.loc[(name, impl)] if (name, impl) in info.index else None
            roofline = f"{float(extra['roofline_frac']) * 100:.0f} %" if extra is not None and extra["roofline_frac"] else "-"
            saved = f"{float(extra['saved_x_input']):.2f}" if extra is not None and extra["saved_x_input"] else "-"
            error = f"{float(extra['max_rel_err']):.1e}" if extra is not None and extra["max_rel_err"] else "-"
            out.append(f"| {name} | {impl} | {_microseconds(fwd)} | {_microseconds(both)} | "
                       f"{_ratio(fwd, base('silu', 'fwd'))} | {_ratio(both, base('silu', 'fwdbwd'))} | "
                       f"{_ratio(fwd, base('relu', 'fwd'))} | {_ratio(both, base('relu', 'fwdbwd'))} | "
                       f"{roofline} | {saved} | {error} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="CSV report written by actbench micro")
    print(tables(parser.parse_args().report))


if __name__ == "__main__":
    main()

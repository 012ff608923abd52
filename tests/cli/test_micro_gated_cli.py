"""`actbench micro` with a gated activation end to end: rows, the caption on the input's width."""

import csv

TINY = ["--size", "256", "--max-time", "0.05", "--device", "cpu"]


def test_micro_measures_a_gated_activation_on_the_same_input(run_cli, tmp_path):
    out = tmp_path / "r.csv"
    result = run_cli("micro", "--act", "swiglu,relu", "--impl", "memeff,native", "--pass", "fwd",
                     *TINY, "--out", str(out))
    assert result.exit_code == 0, result.output
    with open(out, newline="") as handle:
        rows = {r["activation"]: r for r in csv.DictReader(handle)}
    assert rows["swiglu"]["shape"] == rows["relu"]["shape"] == "256"
    assert float(rows["swiglu"]["min_bytes"]) == (256 + 128) * 4
    assert float(rows["swiglu"]["saved_x_input"]) == 1.0 and rows["swiglu"]["finite"] == "true"
    assert "gated (GLU family): size and shape are the input's" in " ".join(result.output.split())
    titles = [line.strip() for line in result.output.splitlines() if line.startswith("fwd · ")]
    assert titles == [f"fwd · 256 · input size (gated: 2h in, h out) · float32 · cpu · "
                      f"{rows['relu']['threads']} thread{'' if rows['relu']['threads'] == '1' else 's'}"]

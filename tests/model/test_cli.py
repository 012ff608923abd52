"""`actbench model` end to end on the CPU: the report, the tables, resume, failures as rows, the
optional extras missing, and a (fake) timm model."""

import csv

import pytest

from actbench.records.schema import MODEL_COLUMNS, MODEL_KEY

from . import nets

TINY = ["--device", "cpu", "--max-time", "0.05", "--threads", "1"]


def read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_model_writes_a_row_per_configuration_prints_a_table_per_batch_and_resumes(
        run_cli, tmp_path, fast_warmup):
    out = tmp_path / "mlp.csv"
    command = ["model", "mlp", "--act", "silu", "--batch-size", "2,4", "--mode", "infer,train",
               *TINY, "--out", str(out)]
    result = run_cli(*command)
    assert result.exit_code == 0, result.output
    with open(out, newline="") as handle:
        assert next(csv.reader(handle)) == list(MODEL_COLUMNS)
    rows = read(out)
    assert len(rows) == 2 * 2 * 3
    assert {tuple(r[c] for c in MODEL_KEY) for r in rows} == {
        ("mlp", act, "native", "cpu", "float32", "false", batch, mode, "false", "false",
         f"{batch}x40") for act in ("identity", "relu", "silu") for batch in ("2", "4") for mode in ("infer", "train")}
    for row in rows:
        assert row["status"] in ("ok", "noisy") and row["replaced"] == "3"
        assert float(row["samples_per_s"]) == pytest.approx(
            int(row["batch_size"]) / float(row["median_s"]), rel=1e-12)
        assert (row["act_share"] == "") == (row["activation"] == "identity")
    for batch in ("2", "4"):
        assert result.stdout.count(f"mlp · batch {batch} (40) · float32 · cpu") == 1
    relu_lines = [line for line in result.stdout.splitlines() if "│ relu " in line]
    assert len(relu_lines) == 4 and all("1.00x" in line for line in relu_lines)
    assert f"report: {out}" in result.stdout.replace("\n", "")

    again = run_cli(*command)
    assert again.exit_code == 0, again.output
    assert f"resuming {out}: 12 configuration(s) already measured" in again.stderr.replace("\n", "")
    assert read(out) == rows
    assert again.stdout.count("mlp · batch") == 2  # the tables of what the report holds


def test_quiet_prints_only_the_report_path(run_cli, tmp_path, fast_warmup):
    out = tmp_path / "q.csv"
    result = run_cli("model", "cnn1d", "--act", "relu", "--batch-size", "2", "--mode", "infer",
                     *TINY, "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert [r["activation"] for r in read(out)] == ["identity", "relu"]


@pytest.mark.parametrize("library", ["timm", "torchvision"])
def test_a_missing_extra_is_one_line_with_the_install_command(run_cli, tmp_path, without, library):
    without("timm", "torchvision")
    line = one_error_line(run_cli("model", f"{library}:resnet18", *TINY,
                                  "--out", str(tmp_path / "r.csv")))
    assert line == (f"error: {library}:resnet18 needs {library}, which is not installed: "
                    f"pip install 'actbench[{library}]'")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["transformer"], "unknown model 'transformer'; known: cnn, cnn1d, deep_fc, gpt, mlp"),
    (["tests.model.nets:token_mlp"], "needs --input-shape"),
    (["tests.model.nets:token_mlp", "--input-shape", "5,0"], "--input-shape '5,0' is not a shape"),
    (["tests.model.nets:__dict__", "--input-shape", "5"], "dunder"),
    (["tests.model.nets:NOT_CALLABLE", "--input-shape", "5"], "names a int"),
    (["mlp", "--amp", "--dtype", "float16"], "--amp runs a float32 model"),
    (["mlp", "--batch-size", "0"], "--batch-size 0 is out of range"),
    (["mlp", "--mode", "eval"], "unknown mode 'eval'"),
])
def test_mistakes_are_one_line_and_exit_2(run_cli, tmp_path, args, message):
    line = one_error_line(run_cli("model", *args, *TINY, "--out", str(tmp_path / "r.csv")))
    assert message in line
    assert list(tmp_path.iterdir()) == []


def test_a_timm_model_runs_end_to_end_and_says_what_was_replaced(run_cli, tmp_path, fake_timm,
                                                                 fast_warmup):
    out = tmp_path / "vit.csv"
    result = run_cli("model", "timm:fake_vit", "--act", "gelu,meta_acon", "--batch-size", "2",
                     "--mode", "infer,train", *TINY, "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = read(out)
    assert sorted((r["activation"], r["mode"]) for r in rows) == sorted(
        (a, m) for a in ("identity", "relu", "gelu", "meta_acon") for m in ("infer", "train"))
    for row in rows:
        assert row["status"] in ("ok", "noisy"), row["message"]
        assert (row["model"], row["input_shape"], row["replaced"]) == (
            "timm:fake_vit", f"2x{nets.VIT_TOKENS}x{nets.VIT_DIM}", "2")  # torch's GELU, timm's GELU
        assert row["left_alone"].startswith("gate (torch.nn.modules.activation.Sigmoid: a gate")
    params = {r["activation"]: int(r["params"]) for r in rows}
    base = (8 * 16 + 16) + (16 * 8 + 8) + (8 * nets.VIT_CLASSES + nets.VIT_CLASSES)
    assert params["identity"] == params["relu"] == params["gelu"] == base
    assert params["meta_acon"] > base  # meta-ACON's switching networks are parameters
    assert "timm:fake_vit · batch 2 (6x8) · float32 · cpu" in result.stdout
    assert len(fake_timm.created) == 8  # a fresh model per configuration


def test_a_failing_configuration_is_a_row_and_the_others_are_measured(run_cli, tmp_path, fast_warmup):
    out = tmp_path / "picky.csv"
    result = run_cli("model", "tests.model.nets:picky", "--input-shape", "6", "--act", "mish,silu",
                     "--batch-size", "2", "--mode", "train", *TINY, "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = {r["activation"]: r for r in read(out)}
    assert (rows["mish"]["status"], rows["mish"]["message"]) == ("error", "RuntimeError: picky refuses mish")
    assert all(rows[a]["status"] in ("ok", "noisy") for a in ("identity", "relu", "silu"))
    assert "error: RuntimeError: picky refuses mish" in result.stdout


def test_nothing_measured_exits_1(run_cli, tmp_path, fast_warmup):
    out = tmp_path / "none.csv"
    result = run_cli("model", "tests.model.nets:not_a_module", "--input-shape", "4", "--act", "relu",
                     "--batch-size", "2", "--mode", "infer", *TINY, "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "no configuration was measured (error x2)" in result.stderr.replace("\n", " ")
    rows = read(out)
    assert [r["status"] for r in rows] == ["error", "error"]
    assert all(r["message"] == "ActbenchError: tests.model.nets:not_a_module gave str; expected an "
               "nn.Module" for r in rows)


def test_rows_in_another_layout_get_a_table_and_a_panel_of_their_own(tmp_path):
    """channels-last rows next to standard ones: each table's ratios are to its own relu."""
    import pandas as pd

    from actbench.report.compare_plots import _panel_titles, model_rows
    from actbench.report.model_tables import model_tables

    rows = []
    for layout, scale in (("false", 1.0), ("true", 0.5)):
        for activation, median in (("identity", 0.8), ("relu", 1.0), ("mish", 1.5)):
            rows.append({"kind": "model", "model": "cnn", "activation": activation,
                         "impl": "native", "device": "cpu", "dtype": "float32", "amp": "false",
                         "batch_size": "8", "mode": "train", "channels_last": layout,
                         "compile": "false", "input_shape": "8x3x32x32", "status": "ok",
                         "samples": "10", "median_s": str(median * scale),
                         "ci_low_s": str(median * scale * 0.99),
                         "ci_high_s": str(median * scale * 1.01), "ci_rel_halfwidth": "0.01",
                         "samples_per_s": str(8 / (median * scale)), "flags": ""})
    tables = model_tables(rows, "relu")
    assert [t.title for t in tables] == ["cnn · batch 8 (3x32x32) · float32 · cpu",
                                         "cnn · batch 8 (3x32x32) · float32 · cpu · channels-last"]
    for table in tables:
        ratios = [cell for cell in table.columns[5]._cells]
        assert ratios[1].startswith("1.00x") and ratios[2].startswith("1.50x")
    panels = set(_panel_titles(model_rows(pd.DataFrame(rows))))
    assert panels == {"cnn · training step", "cnn · training step · channels-last"}


def test_a_model_without_activation_modules_is_flagged_and_warned_about(run_cli, tmp_path,
                                                                       fast_warmup):
    out = tmp_path / "none.csv"
    result = run_cli("model", "tests.model.nets:no_activation", "--input-shape", "4", "--act",
                     "mish", *TINY, "--mode", "infer", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = read(out)
    flagged = {r["activation"] for r in rows if "nothing_replaced" in r["flags"]}
    assert flagged == {"relu", "mish"} and all(r["replaced"] == "0" for r in rows)
    assert "2 configuration(s) put their activation nowhere" in result.output

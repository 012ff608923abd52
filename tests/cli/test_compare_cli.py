"""`actbench compare` and `actbench report` through the CLI: outputs, gates, errors, end to end."""

import csv
import io
import json

import pytest

from tests.cli.test_train_cli import write_suite
from tests.compare.factories import micro_row, train_row, write_epochs, write_micro, write_train


@pytest.fixture
def micro_report(tmp_path):
    return write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3),
                                            micro_row("relu", 2e-3, pass_="fwdbwd"),
                                            micro_row("mish", 9e-3, pass_="fwdbwd")])


@pytest.fixture
def train_report(tmp_path):
    rows = [train_row(act, seed, acc) for act, accs in
            (("relu", (0.80, 0.82, 0.81)), ("mish", (0.815, 0.825, 0.80)), ("silu", (0.90, 0.91, 0.92)))
            for seed, acc in enumerate(accs)]
    return write_train(tmp_path / "t.csv", rows)


def test_micro_table_shows_ratios(run_cli, micro_report):
    result = run_cli("compare", str(micro_report))
    assert result.exit_code == 0, result.output
    assert "vs relu" in result.output and "3.00x" in result.output and "4.50x" in result.output


def test_train_table_marks_significance_and_too_few_seeds(run_cli, train_report):
    result = run_cli("compare", str(train_report))
    assert result.exit_code == 0, result.output
    assert "too few seeds" in result.output  # mish vs relu: 3 vs 3, a tiny effect
    assert "paired t" in result.output
    assert "3 vs 3 runs cannot reach p < 0.05 with a rank test" in result.output


def test_markdown_csv_and_json(run_cli, micro_report, train_report, tmp_path):
    markdown = run_cli("compare", str(micro_report), str(train_report), "--format", "markdown")
    assert markdown.exit_code == 0
    assert "| activation |" in markdown.output and "**" in markdown.output
    rows = list(csv.DictReader(io.StringIO(run_cli("compare", str(micro_report), str(train_report),
                                                   "--format", "csv").stdout)))
    assert {row["section"] for row in rows} == {"micro", "train"}
    out = tmp_path / "out.json"
    result = run_cli("compare", str(micro_report), "-o", str(out))  # format from the suffix
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    mish = [r for r in document["micro"]["rows"] if r["activation"] == "mish" and r["pass"] == "fwd"]
    assert mish[0]["ratio"] == pytest.approx(3.0)


def test_gates_give_exit_codes(run_cli, micro_report, train_report):
    ok = run_cli("compare", str(micro_report), "--fail-if", "mish.fwd <= 3.5 * relu.fwd", "-q")
    assert ok.exit_code == 0, ok.output
    bad = run_cli("compare", str(micro_report), "--fail-if", "mish.fwd <= 1.5 * relu.fwd", "-q")
    assert bad.exit_code == 1
    assert "gate FAILED: mish.fwd <= 1.5 * relu.fwd" in bad.output
    train_gate = run_cli("compare", str(train_report), "--fail-if", "silu.mean >= relu.mean + 0.05",
                         "-q")
    assert train_gate.exit_code == 0, train_gate.output


def test_before_after_by_file_with_a_slowdown_gate(run_cli, tmp_path):
    before = write_micro(tmp_path / "before.csv", [micro_row("mish", 3e-3)])
    after = write_micro(tmp_path / "after.csv", [micro_row("mish", 3.3e-3, host="other",
                                                           torch_version="2.11.0")])
    result = run_cli("compare", str(before), str(after), "--by", "file", "--fail-if",
                     "max_slowdown <= 5%")
    assert result.exit_code == 1
    assert "1.10x slower" in result.output
    assert "reports differ in torch: 2.13.0+cpu (before) vs 2.11.0 (after)" in result.output
    assert run_cli("compare", str(before), str(after), "--by", "file", "--fail-if",
                   "max_slowdown <= 15%", "-q").exit_code == 0


def test_a_failed_gate_names_each_configuration_and_noise_aware_forms(run_cli, tmp_path):
    size = 2 ** 20
    before = write_micro(tmp_path / "before.csv", [micro_row(a, 1e-3, numel=size)
                                                   for a in ("relu", "mish", "silu")])
    after = write_micro(tmp_path / "after.csv", [
        micro_row("relu", 1.0e-3, numel=size), micro_row("silu", 1.08e-3, numel=size),
        micro_row("mish", 1.06e-3, numel=size, ci=0.25, status="noisy", flags="noisy")])
    point = run_cli("compare", str(before), str(after), "--by", "file", "-q",
                    "--fail-if", "max_slowdown <= 5%")
    assert point.exit_code == 1, point.output
    assert ("gate FAILED: max_slowdown <= 5% (2 of 3 checked)\n"
            "  silu/native fwd 2^20 float32 cpu in after: 1.08x [1.06, 1.10]\n"
            "  mish/native fwd 2^20 float32 cpu in after: 1.06x [0.82, 1.37] (noisy)\n") in point.output
    confident = run_cli("compare", str(before), str(after), "--by", "file", "-q",
                        "--fail-if", "ci_low(max_slowdown) <= 5%")
    assert confident.exit_code == 1
    assert "(1 of 3 checked)" in confident.output and "mish/" not in confident.output
    tolerant = run_cli("compare", str(before), str(after), "--by", "file", "-q",
                       "--fail-if", "ci_low(max_slowdown) <= 7%", "--fail-if",
                       "ci_high(max_slowdown) <= 40%")
    assert tolerant.exit_code == 0, tolerant.output
    assert "gate passed: ci_low(max_slowdown) <= 7% (3 checked)" in tolerant.output
    strict = run_cli("compare", str(before), str(after), "--by", "file", "-q",
                     "--fail-if", "ci_high(max_slowdown) <= 10%")
    assert strict.exit_code == 1 and "(1 of 3 checked)" in strict.output
    assert "mish/native fwd 2^20 float32 cpu in after: 1.06x [0.82, 1.37] (noisy)" in strict.output


@pytest.mark.parametrize("args, message", [
    (["{dir}/missing.csv"], "does not exist"),
    (["{dir}/empty.csv"], "is empty"),
    (["{dir}/alien.csv"], "not an actbench report"),
    (["{dir}/m.csv", "--baseline", "gelu"], "baseline"),
    (["{dir}/m.csv", "--metric", "speed"], "metric 'speed'"),
    (["{dir}/m.csv", "--fail-if", "mish.fwd <"], "--fail-if 'mish.fwd <': not a comparison"),
    (["{dir}/m.csv", "--fail-if", "ci_low(mish.fwd.gbps) < 1"], "mish.fwd.gbps has no interval"),
    (["{dir}/m.csv", "--format", "html"], "--format 'html'"),
    (["{dir}/m.csv", "--alpha", "2"], "--alpha"),
    (["{dir}/m.csv", "--where", "colour=red"], "--where 'colour'"),
    (["{dir}/m.csv", "--plot", "{dir}/fig.txt"], "must end in one of"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, micro_report, tmp_path, args, message):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "alien.csv").write_text("a,b\n1,2\n")
    result = run_cli("compare", *[a.format(dir=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output


def test_plots_and_html_report(run_cli, micro_report, train_report, tmp_path):
    epochs = write_epochs(tmp_path / "t.epochs.csv", {(a, s): [0.5, 0.7, 0.8] for a in
                                                       ("relu", "mish", "silu") for s in range(3)})
    figure = tmp_path / "fig.png"
    result = run_cli("compare", str(micro_report), str(train_report), str(epochs), "--plot",
                     str(figure), "-q")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in tmp_path.glob("fig*.png"))
    assert written == ["fig-curves.png", "fig-micro.png", "fig-train.png"]
    assert all((tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in written)
    html_dir = tmp_path / "html"
    result = run_cli("report", str(micro_report), str(train_report), str(epochs), "-o", str(html_dir))
    assert result.exit_code == 0, result.output
    page = (html_dir / "index.html").read_text()
    assert "final_test_acc per activation" in page and "vs relu" in page
    assert "data:image/png;base64," in page and "http://" not in page and "https://" not in page


@pytest.mark.slow
def test_end_to_end_micro_and_train_reports_compared(run_cli, tmp_path):
    micro = tmp_path / "micro.csv"
    result = run_cli("micro", "--act", "mish", "--size", "4096", "--pass", "fwd", "--max-time",
                     "0.05", "--out", str(micro), "--samples", str(tmp_path / "micro.samples.csv"),
                     "--quiet")
    assert result.exit_code == 0, result.output
    suite = write_suite(tmp_path, seeds=[0, 1, 2])  # relu, mish; noise 0.5
    train = tmp_path / "train.csv"
    assert run_cli("train", str(suite), "--out", str(train), "--quiet").exit_code == 0
    result = run_cli("compare", str(tmp_path / "*.csv"), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output[result.output.index("{"):])
    mish = [r for r in document["micro"]["rows"] if r["activation"] == "mish"][0]
    assert mish["ratio"] > 0 and mish["uncertainty"] == "bootstrap"
    activations = {r["activation"]: r for r in document["train"]["rows"]}
    assert activations["relu"]["n"] == 3 and activations["mish"]["test"] == "paired t"
    levels = {r["input noise σ"] for r in document["noise"]["rows"]}
    assert levels == {0.0, 0.5}  # clean accuracy, then the evaluated noise level


def test_review_cases_give_clear_results(run_cli, tmp_path):
    """Dollar signs in labels, -o into new folders, report pages without figures, table files."""
    odd = write_micro(tmp_path / "a$\\frac$.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3)])
    other = write_micro(tmp_path / "b.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3)])
    result = run_cli("compare", str(odd), str(other), "--by", "file", "--plot",
                     str(tmp_path / "p.png"), "-q")
    assert result.exit_code == 0, result.output
    table = tmp_path / "new" / "out.txt"
    assert run_cli("compare", str(odd), "-o", str(table)).exit_code == 0
    assert "vs relu" in table.read_text()
    result = run_cli("compare", str(odd), "-o", str(tmp_path))
    assert result.exit_code == 2 and "is a folder" in result.output
    failed = write_train(tmp_path / "failed.csv", [train_row("relu", s, 0.5, status="failed")
                                                   for s in range(2)])
    result = run_cli("report", str(failed), "-o", str(tmp_path / "html"))
    assert result.exit_code == 0, result.output
    assert "no figures" in (tmp_path / "html" / "index.html").read_text()


def test_train_by_impl_keeps_points_and_colours(run_cli, tmp_path):
    rows = [train_row(act, seed, 0.8 + 0.01 * seed, impl=impl, config_hash=f"{act}{impl}{seed}")
            for act, impl in (("relu", "native"), ("mish", "native"), ("mish", "fast"))
            for seed in range(3)]
    report = write_train(tmp_path / "t.csv", rows)
    result = run_cli("compare", str(report), "--by", "impl", "--format", "json",
                     "--plot", str(tmp_path / "f.png"))
    assert result.exit_code == 0, result.output
    document = json.loads(result.output[result.output.index("{"):result.output.rindex("}") + 1])
    labels = {r["activation"] for r in document["train"]["rows"]}
    assert labels == {"relu[native]", "mish[native]", "mish[fast]"}


def test_baseline_by_alias_for_train_reports(run_cli, train_report):
    result = run_cli("compare", str(train_report), "--baseline", "swish1", "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {row["baseline"] for row in rows} == {"silu"}


def test_report_to_a_folder_it_cannot_write_is_one_line_and_exit_2(run_cli, micro_report, tmp_path,
                                                                   monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("report", str(micro_report), "-o", str(blocker / "html"))
    assert result.exit_code == 2, result.output
    assert "cannot write into the folder" in result.output and "Traceback" not in result.output

    import tempfile

    def refuse(*args, **kwargs):  # as a folder without write permission answers (root ignores bits)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    result = run_cli("report", str(micro_report), "-o", str(tmp_path / "locked"))
    assert result.exit_code == 2, result.output
    assert "cannot write into the folder" in result.output and "Permission denied" in result.output
    assert not (tmp_path / "locked" / "index.html").exists()


def test_a_missing_or_unreadable_sidecar_is_said_once_per_file(run_cli, micro_report, tmp_path):
    result = run_cli("compare", str(micro_report), "-f", "csv")
    assert result.exit_code == 0
    assert "has no sidecar (m.json)" in result.stderr
    micro_report.with_suffix(".json").write_text("[" * 200_000)
    result = run_cli("compare", str(micro_report), "-f", "csv")
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert "cannot be read (nested too deeply); it is left out" in result.stderr
    micro_report.with_suffix(".json").write_text("[1, 2]")
    assert "is not a JSON object" in run_cli("compare", str(micro_report), "-f", "csv").stderr

"""Bad inputs through the CLI: every one is refused in one line with exit code 2, without a
traceback, before any measurement or training, and leaves every file as it was.

The corpus is tests/cli/bad_inputs/: suites/*.yaml say what they expect in `# expect:` lines;
reports/*.csv and sidecars/*.json cannot hold comments, so their expectations are the tables
below. The big inputs (alias bomb, deep nesting, an oversized field) are made at run time, and
bad option values are the OPTION_CASES table.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.compare.factories import micro_row, train_row, write_micro, write_train

CORPUS = Path(__file__).parent / "bad_inputs"
SUITES = sorted((CORPUS / "suites").glob("*.yaml"))

# reports/*.csv refused by compare and report: what the one error line says
REFUSED_REPORTS = {
    "empty.csv": "is empty; expected a CSV written by actbench micro, model or train",
    "blank_lines.csv": "is empty; expected a CSV written by actbench micro, model or train",
    "header_only.csv": "has a header but no rows",
    "duplicated_columns.csv": "names the column(s) kind more than once",
    "foreign_csv.csv": "is not an actbench report (no kind / schema_version columns)",
    "binary.csv": "not UTF-8 text",
    "latin1.csv": "not UTF-8 text",
    "ragged_row.csv": "line 4 has 3 fields, the header",
    "open_quote.csv": "line 4 has 2 fields, the header",
    "kind_unknown.csv": "has report kind mystery; expected one of micro, model, train, train_epoch",
    "kinds_mixed.csv": "has report kind micro, train; expected one of",
    "schema_newer.csv": "has schema version 2, newer than this actbench reads",
    "schema_text.csv": "has a schema_version that is not a number",
    # every measured row without a positive finite median is left out, so nothing is left
    # every row left out: the refusal says why, with the warning that would have been printed
    **{f"median_{kind}.csv": f"rows to compare ('median_{kind}': 2 measured row(s) have a "
       "median_s that is not a positive number of seconds"
       for kind in ("text", "nan", "inf", "negative", "zero", "blank")},
}

# reports/*.csv that compare reads with warnings (exit 0): the warning lines of `compare -q`
WARNED_REPORTS = {
    "median_one_nan.csv": ["warning: 'median_one_nan': 1 measured row(s) have a median_s that is "
                           "not a positive number of seconds ('nan'); they are left out",
                           "warning: '{path}' has no sidecar (median_one_nan.json)"],
}

# sidecars/*.json next to a valid report: compare warns once and goes on without it (exit 0)
SIDECARS = {
    "corrupt.json": "cannot be read (Expecting value: line 1 column 27 (char 26)); it is left out",
    "empty.json": "cannot be read (Expecting value: line 1 column 1 (char 0)); it is left out",
    "not_object.json": "is not a JSON object; it is left out",
    "not_utf8.json": "cannot be read ('utf-8' codec can't decode byte 0xe9",
    "huge_int.json": "cannot be read (Exceeds the limit (4300 digits) for integer string conversion",
}

SUITE = "activations: [relu]\ndata: {name: synthetic}\n"

# (id, argv with {tmp} for the scratch folder, text of the one error line). The scratch folder
# holds existing.csv (+ .json, a micro report), train.csv (a train report), existing.md,
# suite.yaml (valid), html/index.html and an empty folder emptydir.
OPTION_CASES = [
    # micro
    ("micro-size-text", ["micro", "--size", "abc"], "size 'abc' is not a number of elements"),
    ("micro-size-2^64", ["micro", "--size", "2^64"], "larger than any tensor torch can index"),
    ("micro-size-negative", ["micro", "--size", "-1"], "size -1 must be a positive number"),
    ("micro-size-zero", ["micro", "--size", "0"], "size 0 must be a positive number"),
    ("micro-size-float", ["micro", "--size", "1e30"], "size '1e30' is not a number of elements"),
    ("micro-size-empty", ["micro", "--size", ""], "--size was given but names nothing"),
    ("micro-shape-zero", ["micro", "--shape", "0x3"], "shape '0x3' is malformed"),
    ("micro-shape-text", ["micro", "--shape", "axb"], "shape 'axb' is malformed"),
    ("micro-act-empty", ["micro", "--act", ""], "--act was given but names no activation"),
    ("micro-act-unknown", ["micro", "--act", "nosuch"], "unknown activation 'nosuch'"),
    ("micro-act-getpid", ["micro", "--act", "os:getpid"], "'os:getpid' takes no tensor"),
    ("micro-act-exit", ["micro", "--act", "builtins:exit"], "'builtins:exit' takes no tensor"),
    ("micro-act-dunder", ["micro", "--act", "os:__dict__"], "may not name dunder attributes"),
    ("micro-act-class", ["micro", "--act", "collections:OrderedDict"], "is a class but not an nn.Module"),
    ("micro-act-syntax", ["micro", "--act", "x +* 2"], "cannot parse expression 'x +* 2'"),
    ("micro-act-eval", ["micro", "--act", "__import__('os')"], "name '__import__' is not allowed"),
    ("micro-impl-relu-memeff", ["micro", "--act", "relu", "--impl", "memeff"],
     "relu has no 'memeff' implementation; it has native, formula, compiled"),
    ("micro-impl-unknown", ["micro", "--impl", "nosuch"], "unknown implementation 'nosuch'"),
    ("micro-dtype", ["micro", "--dtype", "float7"], "unknown dtype 'float7'"),
    ("micro-dtype-empty", ["micro", "--dtype", ""], "--dtype was given but names nothing"),
    ("micro-device", ["micro", "--device", "gpu"], "unknown device 'gpu'"),
    ("micro-device-empty", ["micro", "--device", ""], "--device was given but names nothing"),
    ("micro-pass", ["micro", "--pass", "sideways"], "unknown pass 'sideways'"),
    ("micro-pass-empty", ["micro", "--pass", ","], "--pass was given but names nothing"),
    ("micro-threads-zero", ["micro", "--threads", "0"], "--threads '0' is not a thread count"),
    ("micro-threads-text", ["micro", "--threads", "many"], "--threads 'many' is not a thread count"),
    ("micro-threads-empty", ["micro", "--threads", ""], "--threads was given but names no thread count"),
    ("micro-max-time-zero", ["micro", "--max-time", "0"], "Invalid value for '--max-time'"),
    ("micro-max-time-inf", ["micro", "--max-time", "inf"], "--max-time inf is not a finite number"),
    ("micro-min-time-inf", ["micro", "--min-time", "inf"], "--min-time inf is not a finite number"),
    ("micro-min-time-negative", ["micro", "--min-time", "-1"], "Invalid value for '--min-time'"),
    ("micro-target-rsd-nan", ["micro", "--target-rsd", "nan"], "Invalid value for '--target-rsd'"),
    ("micro-executor", ["micro", "--executor", "nosuch"], "unknown executor 'nosuch'"),
    ("micro-address-without-ray", ["micro", "--address", "localhost:6379"],
     "--address names a Ray cluster; it needs --executor ray"),
    ("micro-baseline", ["micro", "--baseline", "nosuch"], "unknown activation 'nosuch'"),
    ("micro-out-suffix", ["micro", "--out", "{tmp}/m.txt"], "must end in .csv"),
    ("micro-out-folder", ["micro", "--out", "{tmp}"], "is a directory"),
    ("micro-out-existing-bad-act", ["micro", "--act", "nosuch", "--out", "{tmp}/existing.csv"],
     "unknown activation 'nosuch'"),
    ("micro-out-train-report", ["micro", "--act", "relu", "--size", "64", "--pass", "fwd", "--out",
                                "{tmp}/train.csv"], "has different columns than this report"),
    ("micro-samples-same-as-out", ["micro", "--size", "64", "--out", "{tmp}/new/m.csv", "--samples",
                                   "{tmp}/new/m.csv"], "--samples and --out are the same file"),
    ("micro-unknown-option", ["micro", "--bogus"], "No such option: --bogus"),
    # train
    ("train-missing-suite", ["train", "{tmp}/missing.yaml"], "suite file '{tmp}/missing.yaml' not found"),
    ("train-folder-suite", ["train", "{tmp}/emptydir"], "is a directory; expected a YAML suite file"),
    ("train-workers-negative", ["train", "{tmp}/suite.yaml", "--workers", "-1"],
     "--workers must be 'auto' or a whole number >= 1, got '-1'"),
    ("train-workers-zero", ["train", "{tmp}/suite.yaml", "--workers", "0"], "got '0'"),
    ("train-workers-text", ["train", "{tmp}/suite.yaml", "--workers", "many"], "got 'many'"),
    ("train-executor", ["train", "{tmp}/suite.yaml", "--executor", "nosuch"],
     "unknown executor 'nosuch'; expected one of local, inline, ray"),
    ("train-retries-negative", ["train", "{tmp}/suite.yaml", "--retries", "-1"],
     "Invalid value for '--retries'"),
    ("train-threads-zero", ["train", "{tmp}/suite.yaml", "--threads", "0"], "Invalid value for '--threads'"),
    ("train-gpus-per-run", ["train", "{tmp}/suite.yaml", "--gpus-per-run", "2"],
     "Invalid value for '--gpus-per-run'"),
    ("train-seeds-text", ["train", "{tmp}/suite.yaml", "--seeds", "abc"], "--seeds: seeds[0]: expected an integer"),
    ("train-seeds-negative", ["train", "{tmp}/suite.yaml", "--seeds", "-1"], "expected an integer >= 0, got -1"),
    ("train-seeds-huge", ["train", "{tmp}/suite.yaml", "--seeds", "9" * 30], "expected a seed below 2**63"),
    ("train-seeds-empty", ["train", "{tmp}/suite.yaml", "--seeds", ""], "seeds: expected a non-empty list"),
    ("train-set-malformed", ["train", "{tmp}/suite.yaml", "--set", "foo"], "--set foo: expected KEY=VALUE"),
    ("train-set-epochs-1e30", ["train", "{tmp}/suite.yaml", "--set", "train.epochs=1e30"],
     "train.epochs: expected an integer >= 1 and <= 100000"),
    ("train-set-yaml", ["train", "{tmp}/suite.yaml", "--set", "train.epochs=["], "the value is not valid YAML"),
    ("train-set-unknown-key", ["train", "{tmp}/suite.yaml", "--set", "nosuch.key=1"], "nosuch: unknown key"),
    ("train-act-unknown", ["train", "{tmp}/suite.yaml", "--act", "nosuch"], "unknown activation 'nosuch'"),
    ("train-act-empty", ["train", "{tmp}/suite.yaml", "--act", ""], "activations: expected a non-empty list"),
    ("train-act-getpid", ["train", "{tmp}/suite.yaml", "--act", "os:getpid"], "'os:getpid' takes no tensor"),
    ("train-act-exit", ["train", "{tmp}/suite.yaml", "--act", "builtins:exit"], "'builtins:exit' takes no tensor"),
    ("train-act-dunder", ["train", "{tmp}/suite.yaml", "--act", "os:__dict__"], "may not name dunder attributes"),
    ("train-device", ["train", "{tmp}/suite.yaml", "--device", "gpu"], "train.device: expected auto, cpu"),
    ("train-out-suffix", ["train", "{tmp}/suite.yaml", "--out", "{tmp}/t.txt"], "must end in .csv"),
    ("train-out-micro-report", ["train", "{tmp}/suite.yaml", "--out", "{tmp}/existing.csv"],
     "was written by a different suite or version"),
    ("train-resume-missing", ["train", "{tmp}/suite.yaml", "--resume", "{tmp}/missing.csv"],
     "cannot resume {tmp}/missing.csv: no such report"),
    ("train-resume-and-out", ["train", "{tmp}/suite.yaml", "--resume", "{tmp}/a.csv", "--out", "{tmp}/b.csv"],
     "--resume and --out name different files"),
    ("train-address-without-ray", ["train", "{tmp}/suite.yaml", "--address", "localhost:6379"],
     "it needs --executor ray"),
    # compare
    ("compare-missing", ["compare", "{tmp}/nothing.csv"], "report '{tmp}/nothing.csv' does not exist"),
    ("compare-glob-nothing", ["compare", "{tmp}/*.nothing"], "no report matches"),
    ("compare-empty-folder", ["compare", "{tmp}/emptydir"], "holds no .csv reports"),
    ("compare-metric", ["compare", "{tmp}/existing.csv", "--metric", "nosuch"],
     "metric 'nosuch' is in none of the reports"),
    ("compare-train-metric", ["compare", "{tmp}/train.csv", "--metric", "median_s"],
     "metric 'median_s' is in none of the reports"),
    ("compare-baseline", ["compare", "{tmp}/existing.csv", "--baseline", "nosuch"], "unknown baseline"),
    ("compare-train-baseline", ["compare", "{tmp}/train.csv", "--baseline", "gelu"],
     "baseline 'gelu' is not in the train reports"),
    ("compare-by", ["compare", "{tmp}/existing.csv", "--by", "nosuch"], "--by 'nosuch' is not a column"),
    ("compare-where-malformed", ["compare", "{tmp}/existing.csv", "--where", "x"], "--where 'x' is malformed"),
    ("compare-where-unknown", ["compare", "{tmp}/existing.csv", "--where", "colour=red"],
     "--where 'colour': no report has that column"),
    ("compare-where-nothing-left", ["compare", "{tmp}/existing.csv", "--where", "activation=nosuch"],
     "no rows left after --where"),
    ("compare-fail-if-import", ["compare", "{tmp}/existing.csv", "--fail-if", '__import__("os")'],
     "not a comparison"),
    ("compare-fail-if-call", ["compare", "{tmp}/existing.csv", "--fail-if",
                              '__import__("os").system("true") < 1'], "--fail-if '__import__"),
    ("compare-fail-if-empty", ["compare", "{tmp}/existing.csv", "--fail-if", ""], "--fail-if '': not a comparison"),
    ("compare-fail-if-deep", ["compare", "{tmp}/existing.csv", "--fail-if", "(" * 5000 + "1" + ")" * 5000 + " < 2"],
     "--fail-if '((("),
    ("compare-fail-if-unknown", ["compare", "{tmp}/existing.csv", "--fail-if", "nosuch.fwd < 1"],
     "no configuration has all of nosuch.fwd"),
    ("compare-format", ["compare", "{tmp}/existing.csv", "--format", "xml"], "--format 'xml' is unknown"),
    ("compare-alpha-nan", ["compare", "{tmp}/existing.csv", "--alpha", "nan"], "--alpha nan is out of range"),
    ("compare-alpha-zero", ["compare", "{tmp}/existing.csv", "--alpha", "0"], "--alpha 0.0 is out of range"),
    ("compare-alpha-two", ["compare", "{tmp}/existing.csv", "--alpha", "2"], "--alpha 2.0 is out of range"),
    ("compare-plot-suffix", ["compare", "{tmp}/existing.csv", "--plot", "{tmp}/fig.txt"],
     "must end in one of .png, .pdf, .svg"),
    ("compare-plot-new-folder-bad-baseline", ["compare", "{tmp}/existing.csv", "--plot",
                                              "{tmp}/new/fig.png", "--baseline", "nosuch"],
     "unknown baseline"),
    ("compare-out-existing-bad-metric", ["compare", "{tmp}/existing.csv", "-o", "{tmp}/existing.md",
                                         "--metric", "nosuch"], "metric 'nosuch'"),
    ("compare-out-new-folder-bad-metric", ["compare", "{tmp}/existing.csv", "-o", "{tmp}/new/out.md",
                                           "--metric", "nosuch"], "metric 'nosuch'"),
    ("compare-out-folder", ["compare", "{tmp}/existing.csv", "-o", "{tmp}"], "is a folder"),
    ("compare-out-is-the-report", ["compare", "{tmp}/existing.csv", "-o", "{tmp}/existing.csv"],
     "is one of the reports being compared"),
    ("compare-out-is-the-sidecar", ["compare", "{tmp}/existing.csv", "-o", "{tmp}/existing.json"],
     "is one of the reports being compared"),
    ("compare-plot-is-the-epochs-file", ["compare", "{tmp}/existing.csv", "--plot",
                                         "{tmp}/existing.epochs.csv"], "is one of the reports being compared"),
    ("compare-unknown-option", ["compare", "{tmp}/existing.csv", "--bogus"], "No such option: --bogus"),
    # report
    ("report-without-out", ["report", "{tmp}/existing.csv"], "Missing option '--out' / '-o'"),
    ("report-out-is-a-file", ["report", "{tmp}/existing.csv", "-o", "{tmp}/existing.md"],
     "is a file; expected a folder for index.html"),
    ("report-missing-report-new-folder", ["report", "{tmp}/nothing.csv", "-o", "{tmp}/newhtml"],
     "does not exist"),
    ("report-metric-new-folder", ["report", "{tmp}/existing.csv", "-o", "{tmp}/newhtml", "--metric",
                                  "nosuch"], "metric 'nosuch'"),
    ("report-metric-existing-page", ["report", "{tmp}/existing.csv", "-o", "{tmp}/html", "--metric",
                                     "nosuch"], "metric 'nosuch'"),
    ("report-alpha", ["report", "{tmp}/existing.csv", "-o", "{tmp}/html", "--alpha", "5"],
     "--alpha 5.0 is out of range"),
    # list, show, plot
    ("list-family", ["list", "--family", "nosuch"], "unknown family 'nosuch'"),
    ("list-family-empty", ["list", "--family", ""], "unknown family ''"),
    ("list-extra-argument", ["list", "mish"], "Got unexpected extra argument(s) (mish)"),
    ("show-syntax", ["show", "x +* 2"], "cannot parse expression 'x +* 2': invalid syntax"),
    ("show-empty", ["show", ""], "an activation must be a non-empty name"),
    ("show-unknown", ["show", "nosuch"], "unknown activation 'nosuch'"),
    ("show-getpid", ["show", "os:getpid"], "'os:getpid' takes no tensor"),
    ("show-exit", ["show", "builtins:exit"], "'builtins:exit' takes no tensor"),
    ("show-sys-exit", ["show", "sys:exit"], "'sys:exit' takes no tensor"),
    ("show-dunder", ["show", "os:__dict__"], "may not name dunder attributes"),
    ("show-not-callable", ["show", "math:pi"], "'math:pi' is not callable"),
    ("show-function-failing-on-tensors", ["show", "math:sin"],
     "activation 'math:sin' failed on a float64 tensor: ValueError"),
    ("show-class-needing-arguments", ["show", "torch.nn:Linear"],
     "activation 'torch.nn:Linear' failed on a float64 tensor: TypeError"),
    ("show-not-finite", ["show", "log(x)"], "log(x) gives non-finite values on [-20, 20]"),
    ("show-impl-unknown", ["show", "mish", "--impl", "nosuch"], "unknown implementation of mish 'nosuch'"),
    ("show-impl-relu-memeff", ["show", "relu", "--impl", "memeff"], "unknown implementation of relu 'memeff'"),
    ("show-power-of-x", ["show", "x ** x"], "exponent 'x' must be a constant number"),
    ("show-expression-too-long", ["show", "x" + " + x" * 2000], "expression is 8001 characters long"),
    ("show-constant-overflow", ["show", "1e309 * x"], "is not a finite real number"),
    ("plot-suffix", ["plot", "mish", "-o", "{tmp}/a.txt"], "must end in one of .png, .pdf, .svg"),
    ("plot-range-reversed", ["plot", "mish", "-o", "{tmp}/a.png", "--xmin", "5", "--xmax", "-5"],
     "the x range must satisfy xmin < xmax with finite ends"),
    ("plot-range-nan", ["plot", "mish", "-o", "{tmp}/a.png", "--xmin", "nan"], "got xmin=nan"),
    ("plot-range-inf", ["plot", "mish", "-o", "{tmp}/a.png", "--xmax", "inf"], "xmax=inf"),
    ("plot-unknown-new-folder", ["plot", "nosuch", "-o", "{tmp}/new/a.png"], "unknown activation 'nosuch'"),
    ("plot-failing-new-folder", ["plot", "math:sin", "-o", "{tmp}/new/a.png"],
     "activation 'math:sin' failed on a float64 tensor"),
    ("plot-unknown-default-output", ["plot", "nosuch"], "unknown activation 'nosuch'"),
    ("plot-out-without-value", ["plot", "mish", "-o"], "Option '-o' requires an argument"),
    ("plot-impl", ["plot", "mish", "-o", "{tmp}/a.png", "--impl", "nosuch"], "unknown implementation of mish"),
    # the command itself
    ("unknown-command", ["nosuchcommand"], "No such command 'nosuchcommand'"),
    ("unknown-root-option", ["--bogus"], "No such option: --bogus"),
]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def nothing_runs(monkeypatch, tmp_path):
    """Every case must fail in validation: measuring or training is a failure here. Default
    report paths (reports/...) land in the scratch folder, where they would be seen."""
    def refuse(*args, **kwargs):
        raise AssertionError("a bad input reached measurement or training")

    import actbench.micro.on_ray
    import actbench.micro.session
    import actbench.train.executor

    for module in (actbench.micro.session, actbench.micro.on_ray, actbench.train.executor):
        monkeypatch.setattr(module, "execute", refuse)
    monkeypatch.delenv("ACTBENCH_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def scratch(tmp_path):
    """The folder the option cases point into, with the files they must leave alone."""
    write_micro(tmp_path / "existing.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3)])
    (tmp_path / "existing.json").write_text('{"environment": {"host": "box"}}\n')
    write_train(tmp_path / "train.csv", [train_row(act, seed, 0.8 + 0.01 * seed)
                                         for act in ("relu", "mish") for seed in range(3)])
    (tmp_path / "existing.md").write_text("an earlier comparison\n")
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "index.html").write_text("<p>an earlier page</p>\n")
    (tmp_path / "emptydir").mkdir()
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for folders)."""
    return {str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes()
            for path in sorted(folder.rglob("*"))}


def assert_refused(result, *expected: str) -> str:
    """Exit code 2, no traceback, one non-empty line of output: `error: ...` holding each text."""
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def case_id(case) -> str:
    """An option case's name, whether a plain tuple or a pytest.param."""
    return case.values[0] if hasattr(case, "marks") else case[0]


def expectations(path: Path) -> list[str]:
    return [line.split("# expect:", 1)[1].strip() for line in path.read_text(errors="replace").splitlines()
            if line.startswith("# expect:")]


# --------------------------------------------------------------------------- the corpus itself


def test_every_corpus_file_says_what_it_expects():
    assert len(SUITES) >= 15 and all(expectations(path) for path in SUITES)
    reports = {path.name for path in (CORPUS / "reports").iterdir()}
    assert reports == set(REFUSED_REPORTS) | set(WARNED_REPORTS)
    assert {path.name for path in (CORPUS / "sidecars").iterdir()} == set(SIDECARS)
    assert len({case_id(case) for case in OPTION_CASES}) == len(OPTION_CASES)


# --------------------------------------------------------------------------- suites


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_a_bad_suite_is_one_line_and_leaves_no_report(run_cli, tmp_path, path):
    before = path.read_bytes()
    result = run_cli("train", str(path), "--out", str(tmp_path / "out" / "t.csv"))
    assert_refused(result, *expectations(path))
    assert path.read_bytes() == before
    assert snapshot(tmp_path) == {}


def _alias_bomb(path: Path) -> None:
    """A few hundred bytes that expand to over a billion values once the aliases are followed."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path.write_text("\n".join(lines) + "\nactivations: [relu]\n")


GENERATED_SUITES = {
    "alias_bomb": (_alias_bomb, "once its YAML aliases are followed; at most 100000"),
    "nested_list_10000": (lambda p: p.write_text("activations: " + "[" * 10_000 + "]" * 10_000 + "\n"),
                          "nested too deeply to read"),
    "nested_mapping_10000": (lambda p: p.write_text("activations: " + "{a: " * 10_000 + "1"
                                                    + "}" * 10_000 + "\n"), "nested too deeply to read"),
    "directory": (lambda p: p.mkdir(), "is a directory; expected a YAML suite file"),
}


@pytest.mark.parametrize("name", GENERATED_SUITES)
def test_a_big_or_odd_suite_is_one_line(run_cli, tmp_path, name):
    make, expected = GENERATED_SUITES[name]
    path = tmp_path / "inputs" / f"{name}.yaml"
    path.parent.mkdir()
    make(path)
    before = snapshot(tmp_path)
    assert_refused(run_cli("train", str(path), "--out", str(tmp_path / "out" / "t.csv")), expected)
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- reports


REPORT_COMMANDS = {
    "compare": ["compare", "{report}"],
    "compare-to-file": ["compare", "{report}", "-o", "{tmp}/existing.md"],
    "report": ["report", "{report}", "-o", "{tmp}/html"],
    "report-new-folder": ["report", "{report}", "-o", "{tmp}/newhtml"],
}


@pytest.mark.parametrize("command", REPORT_COMMANDS)
@pytest.mark.parametrize("name", REFUSED_REPORTS)
def test_a_bad_report_is_one_line_and_damages_nothing(run_cli, scratch, name, command):
    report = CORPUS / "reports" / name
    before, files = report.read_bytes(), snapshot(scratch)
    args = [a.format(report=report, tmp=scratch) for a in REPORT_COMMANDS[command]]
    assert_refused(run_cli(*args), REFUSED_REPORTS[name])
    assert report.read_bytes() == before
    assert snapshot(scratch) == files


def test_a_report_field_past_the_csv_limit_is_one_line(run_cli, tmp_path):
    report = tmp_path / "big.csv"
    report.write_text("kind,schema_version\nmicro," + "1" * 200_000 + "\n")
    assert_refused(run_cli("compare", str(report)), f"'{report}'")


@pytest.mark.parametrize("name", WARNED_REPORTS)
def test_a_report_with_some_bad_rows_is_compared_with_warnings(run_cli, tmp_path, name):
    report = tmp_path / name
    shutil.copy(CORPUS / "reports" / name, report)
    before = snapshot(tmp_path)
    result = run_cli("compare", str(report), "-q")
    assert result.exit_code == 0 and result.exception is None, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    expected = [line.format(path=report) for line in WARNED_REPORTS[name]]
    assert len(lines) == len(expected), result.output
    assert all(line.startswith(text) for line, text in zip(lines, expected)), result.output
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- sidecars


def _deep_sidecar(path: Path) -> None:
    path.write_text("[" * 200_000)


@pytest.mark.parametrize("name", [*SIDECARS, "nested_200000", "directory"])
def test_a_bad_sidecar_is_one_warning_and_the_report_is_compared(run_cli, tmp_path, name):
    report = write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3)])
    sidecar = tmp_path / "m.json"
    if name == "nested_200000":
        _deep_sidecar(sidecar)
        expected = "cannot be read (nested too deeply); it is left out"
    elif name == "directory":
        sidecar.mkdir()
        expected = "cannot be read ([Errno 21] Is a directory"
    else:
        shutil.copy(CORPUS / "sidecars" / name, sidecar)
        expected = SIDECARS[name]
    before = snapshot(tmp_path)
    result = run_cli("compare", str(report), "-q")
    assert "Traceback" not in result.output
    assert result.exit_code == 0 and result.exception is None, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"warning: the sidecar {sidecar} "), result.output
    assert expected in lines[0], lines[0]
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- option values


@pytest.mark.parametrize("case, argv, expected", OPTION_CASES, ids=[case_id(c) for c in OPTION_CASES])
def test_a_bad_option_value_is_one_line_and_damages_nothing(run_cli, scratch, case, argv, expected):
    before = snapshot(scratch)
    result = run_cli(*[a.format(tmp=scratch) for a in argv])
    assert_refused(result, expected.format(tmp=scratch))
    assert snapshot(scratch) == before

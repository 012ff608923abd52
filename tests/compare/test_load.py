import math

import pytest

from actbench.compare.load import apply_where, load_reports, parse_where, sweep_columns
from actbench.errors import ActbenchError

from .factories import micro_row, train_row, write_epochs, write_micro, write_samples, write_train


def test_kinds_are_told_apart_and_numbers_converted(tmp_path):
    write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3)])
    write_samples(tmp_path / "m.samples.csv", {("relu", "native", "cpu", "float32", "1024", "fwd"):
                                               [0.9e-3, 1e-3, 1.1e-3]})
    write_train(tmp_path / "t.csv", [train_row("relu", 0, 0.5)])
    write_epochs(tmp_path / "t.epochs.csv", {("relu", 0): [0.3, 0.5]})
    reports = load_reports([str(tmp_path / "*.csv")])
    assert {f.label: f.kind for f in reports.files} == {
        "m": "micro", "m.samples": "micro_samples", "t": "train", "t.epochs": "train_epoch"}
    assert reports.micro["median_s"].tolist() == [1e-3, 3e-3]
    assert reports.micro["shape"].tolist() == ["1024", "1024"]  # shapes stay text
    assert math.isnan(reports.micro["peak_bytes"].iloc[0])  # blank cells become NaN
    assert reports.train["final_test_acc"].tolist() == [0.5]
    assert reports.epochs["test_acc"].tolist() == [0.3, 0.5]
    assert set(reports.samples["file"]) == {"m"}  # samples belong to the micro file of their stem


def test_folder_means_its_csv_files_and_duplicates_are_merged(tmp_path):
    path = write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3)])
    reports = load_reports([str(tmp_path), str(path)])
    assert len(reports.files) == 1 and len(reports.micro) == 1


def test_same_stem_in_two_folders_gets_unique_labels(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_micro(tmp_path / name / "m.csv", [micro_row("relu", 1e-3)])
    reports = load_reports([str(tmp_path / "a" / "m.csv"), str(tmp_path / "b" / "m.csv")])
    assert [f.label for f in reports.files] == ["a/m", "b/m"]


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("a,b\n1,2\n", "not an actbench report"),
    ("kind,schema_version\nfoo,1\n", "report kind foo"),
    ("kind,schema_version\nmicro,9\n", "newer than this actbench reads"),
    ("kind,schema_version\n", "no rows"),
])
def test_bad_files_are_refused_with_the_reason(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ActbenchError, match=message):
        load_reports([str(path)])


def test_binary_file_is_unreadable(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\xff\xfe\x00\x01" * 100)
    with pytest.raises(ActbenchError, match="bad.csv"):
        load_reports([str(path)])


def test_missing_file_and_empty_glob(tmp_path):
    with pytest.raises(ActbenchError, match="does not exist"):
        load_reports([str(tmp_path / "nope.csv")])
    with pytest.raises(ActbenchError, match="no report matches"):
        load_reports([str(tmp_path / "*.csv")])


def test_where_filters_text_and_numbers_and_refuses_unknown_keys(tmp_path):
    write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3, dtype="float32"),
                                     micro_row("relu", 2e-3, dtype="bfloat16"),
                                     micro_row("relu", 3e-3, numel=2048)])
    reports = load_reports([str(tmp_path / "m.csv")])
    assert apply_where(reports, ["dtype=bfloat16"]).micro["median_s"].tolist() == [2e-3]
    assert apply_where(reports, ["numel=2.048e3"]).micro["median_s"].tolist() == [3e-3]
    assert apply_where(reports, ["dtype!=bfloat16", "numel=1024"]).micro["median_s"].tolist() == [1e-3]
    with pytest.raises(ActbenchError, match="no report has that column"):
        apply_where(reports, ["colour=red"])
    with pytest.raises(ActbenchError, match="no rows left"):
        apply_where(reports, ["dtype=float16"])
    with pytest.raises(ActbenchError, match="malformed"):
        parse_where(["dtype"])


def test_sweep_columns_are_the_dotted_ones(tmp_path):
    write_train(tmp_path / "t.csv", [train_row("relu", 0, 0.5, sweep={"model.depth": 4})],
                ["model.depth"])
    reports = load_reports([str(tmp_path / "t.csv")])
    assert sweep_columns(reports.train) == ["model.depth"]
    assert reports.train["model.depth"].tolist() == ["4"]  # sweep values stay as written


def test_samples_must_match_their_rows_medians(tmp_path):
    write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3)])
    write_samples(tmp_path / "other.samples.csv", {  # another run's samples, attached by default
        ("relu", "native", "cpu", "float32", "1024", "fwd"): [0.9e-3, 1e-3, 1.1e-3],
        ("mish", "native", "cpu", "float32", "1024", "fwd"): [5e-3, 5e-3, 5e-3]})
    reports = load_reports([str(tmp_path / "m.csv"), str(tmp_path / "other.samples.csv")])
    assert set(reports.samples["activation"]) == {"relu"}
    assert any("1 configuration(s) do not match" in w for w in reports.warnings)


def test_orphan_samples_are_reported(tmp_path):
    for name in ("a", "b"):
        write_micro(tmp_path / f"{name}.csv", [micro_row("relu", 1e-3)])
    write_samples(tmp_path / "c.samples.csv", {("relu", "native", "cpu", "float32", "1024", "fwd"):
                                               [1e-3]})
    reports = load_reports([str(tmp_path / "*.csv")])
    assert reports.samples.empty and any("belong to no micro report" in w for w in reports.warnings)


def test_a_truncated_last_row_is_dropped_with_a_warning(tmp_path):
    path = write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-5)])
    text = path.read_text()
    path.write_text(text[: text.rindex("3e-05") + 1])  # killed while writing: "3e-05" became "3"
    reports = load_reports([str(path)])
    assert reports.micro["activation"].tolist() == ["relu"]
    assert any("truncated row" in w for w in reports.warnings)


def test_a_damaged_row_in_the_middle_is_an_error(tmp_path):
    path = write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3), micro_row("mish", 3e-3)])
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[1][:40] + "\n" + lines[2])
    with pytest.raises(ActbenchError, match="line 2 has .* fields"):
        load_reports([str(path)])


def test_labels_take_as_many_folders_as_needed(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "run").mkdir(parents=True)
        write_micro(tmp_path / name / "run" / "x.csv", [micro_row("relu", 1e-3)])
    reports = load_reports([str(tmp_path / "*" / "run" / "x.csv")])
    assert [f.label for f in reports.files] == ["a/run/x", "b/run/x"]


def test_names_with_glob_characters_and_sidecars_next_to_reports(tmp_path):
    path = write_micro(tmp_path / "res[1].csv", [micro_row("relu", 1e-3)])
    (tmp_path / "res[1].json").write_text('{"environment": ["not a dict"]}')
    reports = load_reports([str(path), str(tmp_path / "res[1].json")])
    assert [f.label for f in reports.files] == ["res[1]"]
    assert reports.files[0].environment == {}  # a malformed sidecar is ignored, not a crash


def test_a_report_measured_on_several_machines_compares_machine_against_machine(tmp_path):
    """`micro --executor ray` writes one report for every GPU of a cluster: its machines are
    files of their own, so the same configuration on two GPUs is not averaged into one."""
    from actbench.compare.run import compare_reports

    rows = [micro_row("relu", 1e-3, host="a", gpu="H100"), micro_row("mish", 3e-3, host="a", gpu="H100"),
            micro_row("relu", 2e-3, host="b", gpu="A100"), micro_row("mish", 4e-3, host="b", gpu="A100")]
    write_micro(tmp_path / "cluster.csv", rows)
    reports = load_reports([str(tmp_path / "cluster.csv")])
    assert sorted(set(reports.micro["file"])) == ["cluster [a H100]", "cluster [b A100]"]
    comparison = compare_reports([str(tmp_path / "cluster.csv")], by="file",
                                 baseline="cluster [a H100]")
    ratios = comparison.micro.table.set_index(["activation", "file"])["ratio"]
    assert ratios[("relu", "cluster [b A100]")] == pytest.approx(2.0)
    assert ratios[("mish", "cluster [b A100]")] == pytest.approx(4 / 3)
    one_machine = load_reports([str(write_micro(tmp_path / "one.csv", rows[:2]))])
    assert set(one_machine.micro["file"]) == {"one"}


def test_a_report_with_a_repeated_column_is_refused_in_one_line(tmp_path):
    path = write_micro(tmp_path / "m.csv", [micro_row("relu", 1e-3)])
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace("median_s,mean_s", "median_s,median_s")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ActbenchError, match=r"names the column\(s\) median_s more than once"):
        load_reports([str(path)])


def test_medians_that_are_not_positive_numbers_are_left_out_with_a_warning(tmp_path):
    rows = [micro_row("relu", 1e-3), micro_row("mish", 3e-3), micro_row("silu", 2e-3),
            micro_row("gelu", 2e-3), micro_row("elu", 2e-3), micro_row("selu", 2e-3, ci=0.1)]
    rows[2]["median_s"], rows[3]["median_s"], rows[4]["median_s"] = "nan", "-1e-3", "fast"
    rows[5]["ci_low_s"], rows[5]["ci_high_s"] = 3e-3, 1e-3  # inverted
    write_micro(tmp_path / "m.csv", rows)
    reports = load_reports([str(tmp_path / "m.csv")])
    assert sorted(reports.micro["activation"]) == ["mish", "relu", "selu"]
    assert any("3 measured row(s) have a median_s that is not a positive number" in w
               and "'nan'" in w and "'-1e-3'" in w for w in reports.warnings)
    assert any("1 row(s) have an interval that does not hold their median" in w
               for w in reports.warnings)
    selu = reports.micro[reports.micro["activation"] == "selu"].iloc[0]
    assert math.isnan(selu["ci_low_s"]) and selu["median_s"] == 2e-3

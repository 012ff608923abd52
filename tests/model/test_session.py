"""A model session from options: --input-shape, checks before anything runs, rows, progress and
resume, on the CPU with tiny models."""

import csv
import json
import math

import pytest

from actbench.errors import ActbenchError
from actbench.model.session import ModelOptions, default_report_path, execute, open_run, parse_input_shape
from actbench.progress import ItemFinished, ItemStarted, PlanStarted
from actbench.records.schema import MODEL_COLUMNS, MODEL_KEY

from . import nets

TINY = dict(devices=["cpu"], batch_sizes=["4"], modes=["infer,train"], max_time=0.05, threads=1)


def read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ---- --input-shape


@pytest.mark.parametrize("text, shape", [
    ("3,224,224", (3, 224, 224)), ("3x224x224", (3, 224, 224)), ("40", (40,)),
    (" 3, 8 ", (3, 8)), ("1x40", (1, 40)), ("3X224X224", (3, 224, 224)),
])
def test_input_shapes_are_parsed(text, shape):
    assert parse_input_shape(text) == shape


def test_no_input_shape_is_none():
    assert parse_input_shape(None) is None


@pytest.mark.parametrize("text", ["", ",", "3,0,224", "-3,224", "3.5,2", "a,b", "3;224",
                                  "16384,16384,2", "x"])
def test_bad_input_shapes_are_refused_in_one_line(text):
    with pytest.raises(ActbenchError) as caught:
        parse_input_shape(text)
    message = str(caught.value)
    assert message.startswith(f"--input-shape '{text}' is not a shape") and "\n" not in message


@pytest.mark.parametrize("text", ["3,,224", "3xx224"])
def test_an_input_shape_with_an_empty_dimension_is_refused(text):
    with pytest.raises(ActbenchError, match="is not a shape"):
        parse_input_shape(text)


# ---- checked before anything runs


@pytest.mark.parametrize("options, message", [
    (dict(model="mlp", input_shape="3,0"), "--input-shape '3,0' is not a shape"),
    (dict(model="tests.model.nets:token_mlp"), "needs --input-shape"),
    (dict(model="nope"), "unknown model 'nope'"),
    (dict(model="mlp", amp=True, dtypes=["bfloat16"]), "--amp"),
    (dict(model="mlp", batch_sizes=["0"]), "--batch-size 0 is out of range"),
    (dict(model="mlp", modes=["backward"]), "unknown mode 'backward'"),
    (dict(model="mlp", max_time=math.inf), "--max-time inf is not a finite number"),
    (dict(model="mlp", min_time=math.nan), "--min-time nan is not a finite number"),
])
def test_mistakes_are_refused_before_anything_is_written(tmp_path, options, message):
    with pytest.raises(ActbenchError, match=message):
        open_run(ModelOptions(**{"devices": ["cpu"], "out": tmp_path / "r.csv", **options}))
    assert list(tmp_path.iterdir()) == []


def test_a_report_must_be_a_csv_of_model_columns(tmp_path):
    with pytest.raises(ActbenchError, match="must end in .csv"):
        open_run(ModelOptions("mlp", devices=["cpu"], out=tmp_path / "r.txt"))
    other = tmp_path / "micro.csv"
    other.write_text("kind,activation\nmicro,relu\n")
    with pytest.raises(ActbenchError, match="different columns"):
        open_run(ModelOptions("mlp", devices=["cpu"], out=other))


def test_max_time_is_at_least_min_time(tmp_path):
    run = open_run(ModelOptions("mlp", devices=["cpu"], out=tmp_path / "r.csv", min_time=0.3,
                                max_time=0.1))
    assert (run.stopping.min_time, run.stopping.max_time) == (0.3, 0.3)
    assert run.skipped == 0 and len(run.pending) == len(run.plan.configs)


def test_the_default_report_is_named_after_the_model_and_device(tmp_path):
    run = open_run(ModelOptions("tests.model.nets:token_mlp", devices=["cpu"], input_shape="5,8",
                                out=tmp_path / "r.csv"))
    path = default_report_path(run.source, run.plan, folder=tmp_path)
    assert path.parent == tmp_path and path.suffix == ".csv"
    assert path.name.startswith("model-") and "-tests_model_nets_token_mlp-cpu-" in path.name


# ---- measuring


def test_a_run_writes_one_row_per_configuration_and_resumes(tmp_path, fast_warmup):
    out = tmp_path / "r.csv"
    events = []
    run = open_run(ModelOptions("mlp", ["silu"], out=out, **TINY))
    execute(run, events.append)
    with open(out, newline="") as handle:
        assert next(csv.reader(handle)) == list(MODEL_COLUMNS)
    rows = read(out)
    assert len(rows) == len(run.rows) == 6
    assert [(r["activation"], r["mode"]) for r in rows] == [
        (a, m) for m in ("infer", "train") for a in ("identity", "relu", "silu")]
    for row in rows:
        assert [row[c] for c in MODEL_KEY[2:]] == ["native", "cpu", "float32", "false", "4",
                                                    row["mode"], "false", "false", "4x40"]
        assert row["model"] == "mlp" and row["kind"] == "model" and row["schema_version"] == "1"
        assert row["status"] in ("ok", "noisy") and row["message"] == ""
        assert (row["input_shape"], row["threads"], row["replaced"]) == ("4x40", "1", "3")
        # Flatten, Linear(40, 256), 2 x Linear(256, 256), Linear(256, 10), with biases
        assert int(row["params"]) == 40 * 256 + 256 + 2 * (256 * 256 + 256) + 256 * 10 + 10
        assert float(row["samples_per_s"]) == pytest.approx(4 / float(row["median_s"]), rel=1e-12)
        assert float(row["min_s"]) <= float(row["median_s"])
        assert (row["act_share"] == "") == (row["activation"] == "identity")
        if row["activation"] != "identity":
            assert float(row["act_share"]) < 1
        if row["mode"] == "infer":
            assert row["act_saved_bytes"] == row["step_saved_bytes"] == ""
    train = {r["activation"]: r for r in rows if r["mode"] == "train"}
    hidden = 3 * 4 * 256 * 4  # three (4, 256) float32 activations
    # x (4 x 40); the weights of the last three Linears (the first one's input needs no gradient);
    # cross_entropy: float32 log-probs, int64 labels, a 0-d total weight
    common = 4 * 40 * 4 + (2 * 256 * 256 + 256 * 10) * 4 + (4 * 10 * 4 + 4 * 8 + 4)
    assert {a: (int(r["act_saved_bytes"]), int(r["step_saved_bytes"])) for a, r in train.items()} == {
        "identity": (0, common + hidden),       # the Linear outputs, passed on unchanged
        "relu": (hidden, common + hidden),      # relu's outputs are the next Linears' inputs
        "silu": (hidden, common + 2 * hidden),  # silu keeps its input, the next Linear its output
    }
    assert events[0] == PlanStarted(total=6, unit="configurations")
    started = [e.label for e in events if isinstance(e, ItemStarted)]
    finished = [e.label for e in events if isinstance(e, ItemFinished)]
    assert started == [f"{a}/native {m} batch 4" for m in ("infer", "train")
                       for a in ("identity", "relu", "silu")]
    assert sorted(finished) == sorted(started)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert (sidecar["kind"], sidecar["model"], sidecar["library"], sidecar["sample_shape"]) == (
        "model", "mlp", "actbench", [40])
    assert len(sidecar["configurations"]) == 6 and sidecar["settings"]["threads"] == 1

    # the same command again: everything is in the report, nothing is measured
    events.clear()
    again = open_run(ModelOptions("mlp", ["silu"], out=out, **TINY))
    assert again.skipped == 6 and again.pending == [] and again.to_measure() == []
    execute(again, events.append)
    assert again.rows == [] and events == [PlanStarted(total=0, unit="configurations")]
    assert read(out) == rows

    # one activation more: only it is written, next to a fresh identity measurement
    events.clear()
    more = open_run(ModelOptions("mlp", ["silu,mish"], out=out, **TINY))
    assert more.skipped == 6 and [c.activation.label for c in more.pending] == ["mish", "mish"]
    assert [c.activation.label for c in more.to_measure()] == ["identity", "mish"] * 2
    execute(more, events.append)
    assert [(r["activation"], r["mode"]) for r in more.rows] == [("mish", "infer"), ("mish", "train")]
    assert all(r["act_share"] != "" for r in more.rows)
    assert [e.label for e in events if isinstance(e, ItemStarted)] == [
        "mish/native infer batch 4", "mish/native train batch 4"]
    final = read(out)
    assert len(final) == 8 and final[:6] == rows
    assert len({tuple(r[c] for c in MODEL_KEY) for r in final}) == 8
    assert len(json.loads(out.with_suffix(".json").read_text())["earlier_invocations"]) == 2


def test_an_import_path_model_runs_on_tokens(tmp_path, fast_warmup):
    run = open_run(ModelOptions("tests.model.nets:token_mlp", ["gelu"], input_shape="5x8",
                                out=tmp_path / "r.csv", **{**TINY, "batch_sizes": ["2"],
                                                           "modes": ["train"]}))
    execute(run)
    rows = {r["activation"]: r for r in read(run.out)}
    assert set(rows) == {"identity", "relu", "gelu"}
    assert all(r["status"] in ("ok", "noisy") and r["replaced"] == "1" for r in rows.values())
    assert rows["gelu"]["input_shape"] == "2x5x8" and rows["gelu"]["left_alone"] == ""
    # relu keeps its output, gelu its input: both (2, 5, 16) float32
    assert rows["relu"]["act_saved_bytes"] == rows["gelu"]["act_saved_bytes"] == str(
        2 * nets.TOKENS * nets.HIDDEN * 4)
    assert rows["identity"]["act_saved_bytes"] == "0"


def test_an_activation_that_raises_is_an_error_row_and_the_others_are_measured(tmp_path, fast_warmup):
    run = open_run(ModelOptions("cnn1d", ["tests.model.nets:exploding", "silu"],
                                out=tmp_path / "r.csv", **{**TINY, "modes": ["infer"]}))
    execute(run)
    rows = {r["activation"]: r for r in read(run.out)}
    assert set(rows) == {"identity", "relu", "tests.model.nets:exploding", "silu"}
    bad = rows["tests.model.nets:exploding"]
    assert bad["status"] == "error" and "ValueError: exploding activation" in bad["message"]
    assert bad["median_s"] == "" and bad["input_shape"] == "4x1x40"
    for name in ("identity", "relu", "silu"):
        assert rows[name]["status"] in ("ok", "noisy") and rows[name]["replaced"] == "4"
    assert rows["silu"]["act_share"] != ""


def test_identity_as_the_baseline_gives_one_identity_row(tmp_path, fast_warmup):
    run = open_run(ModelOptions("mlp", ["relu"], baseline="identity", out=tmp_path / "r.csv",
                                **{**TINY, "modes": ["infer"], "batch_sizes": ["2"]}))
    execute(run)
    assert [r["activation"] for r in read(run.out)] == ["identity", "relu"]

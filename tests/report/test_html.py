"""The HTML report: one self-contained page, parsed back with the standard library's parser."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from actbench.compare.micro import compare_micro
from actbench.compare.train import compare_train
from actbench.errors import ActbenchError
from actbench.report.html import (NOT_RECORDED, HtmlSection, flatten, human_value,
                                  significant_sections, split_environments, write_html_report)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = '<script>alert("x")</script>'


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of each th / td / li / title in order."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.cells: dict[str, list[str]] = {"th": [], "td": [], "li": [], "title": [], "code": [],
                                             "summary": [], "h2": []}
        self.td_classes: list[tuple[str, str]] = []
        self._open: list[tuple[str, dict]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag in self.cells:
            self._open.append((tag, attrs))
            self.cells[tag].append("")

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            opened, attrs = self._open.pop()
            if opened == "td":
                self.td_classes.append((self.cells["td"][-1], attrs.get("class", "")))

    def handle_data(self, data):
        if self._open:
            self.cells[self._open[-1][0]][-1] += data

    def attributes(self) -> list[str]:
        return [value or "" for _, attrs in self.tags for value in attrs.values()]


@pytest.fixture
def figure(tmp_path) -> Path:
    path = tmp_path / "figs" / "cmp-micro.png"
    path.parent.mkdir()
    matplotlib.image.imsave(path, np.linspace(0, 1, 24 * 32).reshape(24, 32), dpi=10)
    return path


def results_table() -> pd.DataFrame:
    return pd.DataFrame({"activation": ["mish", "relu", HOSTILE],
                         "median": ["12.1 µs", "9.8 µs", "—"],
                         "vs relu": ["1.23x ± 0.02", "1.00x", ""],
                         "a<b>": ["x & y", "2", None]})


def write(tmp_path, figure, **changes) -> Path:
    options = dict(
        title="Activation comparison <v2>",
        sections=[HtmlSection("micro: fwd · float32 · cpu", results_table(),
                              notes=["ratios are medians over the baseline's", HOSTILE],
                              highlight={(1, "median")}),
                  HtmlSection("train: final test accuracy (%)",
                              pd.DataFrame({"activation": ["mish"], "mean ± std": ["91.02 ± 0.25"]}))],
        figures=[figure],
        environments=[("micro-a", {"host": "box", "torch": "2.11.0",
                                   "gpus": [{"name": "NVIDIA H200", "memory": 150e9}],
                                   "cpu": {"model": "EPYC <9654>", "cores": 96}}),
                      ("train-b", {"host": "laptop", "python": "3.12.1"})],
        warnings=["reports come from different GPUs: NVIDIA H200 (micro-a), none (train-b)"],
        command="actbench report reports/*.csv -o out",
    )
    options.update(changes)
    return write_html_report(tmp_path / "site" / "deep", **options)


def test_page_holds_tables_notes_warnings_and_command(tmp_path, figure):
    path = write(tmp_path, figure)
    assert path == tmp_path / "site" / "deep" / "index.html"
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert page.cells["title"] == ["Activation comparison <v2>"]
    for header in ("activation", "median", "vs relu", "a<b>", "mean ± std"):
        assert header in page.cells["th"]
    for cell in ("mish", "12.1 µs", "1.23x ± 0.02", "x & y", "91.02 ± 0.25", HOSTILE):
        assert cell in page.cells["td"]
    assert page.cells["h2"][:3] == ["Warnings", "micro: fwd · float32 · cpu",
                                    "train: final test accuracy (%)"]
    assert "ratios are medians over the baseline's" in page.cells["li"]
    assert any("different GPUs" in item for item in page.cells["li"])
    assert page.cells["code"] == ["actbench report reports/*.csv -o out"]
    assert '<meta charset="utf-8">' in text


def test_highlighted_cell_is_marked(tmp_path, figure):
    page = Page(write(tmp_path, figure).read_text(encoding="utf-8"))
    best = [cell for cell, classes in page.td_classes if "best" in classes.split()]
    assert best == ["9.8 µs"]


def test_user_text_is_escaped(tmp_path, figure):
    text = write(tmp_path, figure).read_text(encoding="utf-8")
    page = Page(text)
    assert "script" not in [tag for tag, _ in page.tags]
    assert "<script" not in text.lower()
    assert "&lt;script&gt;" in text
    assert HOSTILE in page.cells["li"]  # the note, shown as text


def test_figures_are_embedded_pngs(tmp_path, figure):
    page = Page(write(tmp_path, figure).read_text(encoding="utf-8"))
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) == 1
    prefix = "data:image/png;base64,"
    assert images[0]["src"].startswith(prefix)
    data = base64.b64decode(images[0]["src"][len(prefix):], validate=True)
    assert data.startswith(PNG_SIGNATURE) and data == figure.read_bytes()
    assert images[0]["alt"] == "cmp-micro.png"


def test_nothing_is_fetched_from_the_network(tmp_path, figure):
    text = write(tmp_path, figure).read_text(encoding="utf-8")
    page = Page(text)
    remote = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
    assert not [value for value in page.attributes() if remote.match(value)]
    assert not [tag for tag, _ in page.tags if tag in ("script", "link", "iframe", "object")]
    style = text[text.index("<style>"):text.index("</style>")]
    assert "url(" not in style and "@import" not in style


def test_environments_are_flattened_tables(tmp_path, figure):
    """Two reports that share nothing: no shared table, each report's keys under its label."""
    page = Page(write(tmp_path, figure).read_text(encoding="utf-8"))
    assert page.cells["summary"] == ["micro-a", "train-b"]
    cells = page.cells["td"]
    for key, value in (("host", "box"), ("gpus.0.name", "NVIDIA H200"),
                       ("cpu.model", "EPYC <9654>"), ("cpu.cores", "96"),
                       ("gpus.0.memory", "150000000000.0")):
        assert cells[cells.index(key) + 1] == value
    assert "Nothing: every key differs between the reports." in \
        write(tmp_path, figure).read_text(encoding="utf-8")


def test_flatten():
    nested = {"a": {"b": 1, "c": {"d": None}}, "gpus": [{"name": "x"}, {"name": "y"}],
              "threads": [0, 1], "ok": True}
    assert flatten(nested) == {"a.b": "1", "a.c.d": "", "gpus.0.name": "x", "gpus.1.name": "y",
                               "threads": "0, 1", "ok": "True"}


def test_svg_figures_and_no_figures(tmp_path, figure):
    svg = tmp_path / "f.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>')
    page = Page(write(tmp_path, figure, figures=[svg], warnings=[]).read_text(encoding="utf-8"))
    (image,) = [attrs for tag, attrs in page.tags if tag == "img"]
    assert image["src"].startswith("data:image/svg+xml;base64,")
    assert "Warnings" not in page.cells["h2"]
    page = Page(write(tmp_path, figure, figures=[]).read_text(encoding="utf-8"))
    assert "Figures" not in page.cells["h2"]


def test_out_dir_that_is_a_file_is_refused(tmp_path, figure):
    blocker = tmp_path / "report.html"
    blocker.write_text("")
    with pytest.raises(ActbenchError, match="is a file; expected a folder"):
        write_html_report(blocker, title="t", sections=[], figures=[], environments=[],
                          warnings=[], command="c")


@pytest.mark.parametrize("name, content, message", [
    ("missing.png", None, "cannot read figure"),
    ("figure.pdf", b"%PDF-1.4", "cannot be embedded; expected a .png or .svg"),
    ("fake.png", b"GIF89a", "is not a PNG file"),
])
def test_bad_figures_are_refused_before_writing(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ActbenchError, match=message):
        write_html_report(tmp_path / "out", title="t", sections=[], figures=[path],
                          environments=[], warnings=[], command="c")
    assert not (tmp_path / "out").exists()


# -- environments: shared once, differences per report --------------------------------------------

def environment(host: str, **changes) -> dict:
    facts = {"host": host, "python": "3.12.1", "torch": "2.11.0", "ram_bytes": 33607798784,
             "gpus": [{"name": "NVIDIA H200", "memory_total_bytes": 150_000_000_000,
                       "max_sm_clock_mhz": 1980, "l2_cache_bytes": 62914560}]}
    facts.update(changes)
    return facts


def environment_tables(tmp_path, figure, environments) -> tuple[Page, str]:
    text = write(tmp_path, figure, environments=environments).read_text(encoding="utf-8")
    section = text[text.index('<section id="environments">'):]
    return Page(section), section


def test_shared_environment_is_shown_once_and_differences_per_report(tmp_path, figure):
    labels = [f"run-{i}" for i in range(7)]
    envs = [(label, environment(f"node{i}")) for i, label in enumerate(labels)]
    envs[3] = ("run-3", environment("node3", torch="2.12.0"))
    page, section = environment_tables(tmp_path, figure, envs)
    cells = page.cells["td"]
    for key in ("python", "ram_bytes", "gpus.0.name", "gpus.0.memory_total_bytes"):
        assert cells.count(key) == 1  # once, in the shared table
    assert cells.count("host") == 7  # it differs: once per report
    assert cells.count("torch") == 7  # one report differs: every report shows its value
    assert section.count('class="dataframe environment"') == 8  # shared + one per report
    assert page.cells["summary"] == labels
    tables = section.split("<details")
    assert "node3" in tables[4] and "2.12.0" in tables[4] and "2.11.0" not in tables[4]
    assert "python" not in tables[1] and "ram_bytes" not in tables[1]


def test_environment_values_in_human_units(tmp_path, figure):
    page, _ = environment_tables(tmp_path, figure, [("a", environment("x")),
                                                    ("b", environment("y"))])
    cells = page.cells["td"]
    for key, value in (("ram_bytes", "31.3 GiB"), ("gpus.0.memory_total_bytes", "139.7 GiB"),
                       ("gpus.0.l2_cache_bytes", "60.0 MiB"), ("gpus.0.max_sm_clock_mhz",
                                                               "1.98 GHz")):
        assert cells[cells.index(key) + 1] == value
    assert "33607798784" not in cells


@pytest.mark.parametrize("key, text, shown", [
    ("ram_bytes", "33607798784", "31.3 GiB"), ("gpus.0.l2_cache_bytes", "512", "512 B"),
    ("cpu_hz", "3400000000", "3.4 GHz"), ("mem_clock_mhz", "1593", "1.593 GHz"),
    ("clock_khz", "800", "800 kHz"), ("ram_bytes", "n/a", "n/a"), ("ram_bytes", "", ""),
    ("python", "3.12", "3.12"), ("cpu_cores_logical", "96", "96"), ("torch_threads", "8", "8"),
])
def test_human_value(key, text, shown):
    assert human_value(key, text) == shown


def test_split_environments_marks_missing_keys():
    shared, differing = split_environments([("a", {"os": "linux", "cudnn": 9}),
                                            ("b", {"os": "linux"})])
    assert shared == {"os": "linux"}
    assert differing == [("a", {"cudnn": "9"}), ("b", {"cudnn": NOT_RECORDED})]


def test_one_report_shows_its_whole_environment(tmp_path, figure):
    page, section = environment_tables(tmp_path, figure, [("only", environment("x"))])
    assert page.cells["summary"] == ["only"]
    assert section.count('class="dataframe environment"') == 1
    assert "host" in page.cells["td"] and "ram_bytes" in page.cells["td"]
    assert "Shared by all" not in section


def test_identical_environments_say_so(tmp_path, figure):
    page, section = environment_tables(tmp_path, figure, [("a", environment("x")),
                                                          ("b", environment("x"))])
    assert section.count('class="dataframe environment"') == 1
    assert page.cells["summary"] == []
    assert "None: the reports share one environment." in section


# -- the best cell is highlighted only where it is significant ------------------------------------

def micro_rows(cases: dict) -> pd.DataFrame:
    """Micro rows as the loader gives them: per size, activation -> (median, CI low, CI high)."""
    rows = []
    for numel, values in cases.items():
        for activation, (median, low, high) in values.items():
            rows.append({"file": "a", "kind": "micro", "activation": activation, "impl": "native",
                         "device": "cpu", "dtype": "float32", "shape": str(numel), "pass": "fwd",
                         "numel": float(numel), "status": "ok", "flags": "", "samples": 50.0,
                         "median_s": median * 1e-6, "ci_low_s": low * 1e-6,
                         "ci_high_s": high * 1e-6, "gbps": 1.0, "roofline_frac": 0.5,
                         "saved_x_input": 1.0})
    return pd.DataFrame(rows)


def micro_comparison(cases: dict, metric: str = "median_s"):
    micro = compare_micro(micro_rows(cases), metric=metric, by="activation", baseline="relu")
    return SimpleNamespace(micro=micro, train=None, noise=None)


def best_cells(section) -> list[tuple[str, str]]:
    return sorted((section.table.iloc[row]["activation"], section.table.iloc[row].get("shape", ""))
                  for row, _ in section.highlight)


def test_micro_best_highlighted_only_when_clear_of_the_runner_up(tmp_path, figure):
    comparison = micro_comparison({
        1024: {"relu": (1.0, 0.98, 1.02), "silu": (2.0, 1.9, 2.1)},  # baseline best, tested
        4096: {"relu": (1.0, 0.9, 1.1), "silu": (1.05, 0.95, 1.15)},  # within noise
        16384: {"relu": (1.0, 0.98, 1.02), "silu": (0.8, 0.78, 0.82),
                "mish": (0.5, 0.49, 0.51)},  # mish clear of silu, neither the baseline
        65536: {"relu": (1.0, 0.9, 1.1), "silu": (0.8, 0.75, 0.92),
                "mish": (0.78, 0.7, 0.85)}})  # mish best, overlapping silu
    (section,) = significant_sections(comparison)
    assert best_cells(section) == [("mish", "16384"), ("relu", "1024")]
    assert any(note.startswith("no significant best in 2 of 4 groups") for note in section.notes)
    assert any(note.startswith("highlighted: the best") for note in section.notes)
    page = Page(write(tmp_path, figure, sections=[section]).read_text(encoding="utf-8"))
    assert [cell for cell, classes in page.td_classes if "best" in classes.split()] == \
        ["1.0 µs", "0.5 µs"]
    assert any(item.startswith("no significant best") for item in page.cells["li"])


def test_micro_ratio_interval_decides_against_the_baseline():
    """The runner-up is the baseline: its ratio interval from compare decides, not the medians'
    intervals (which overlap here while the combined ratio interval excludes 1)."""
    comparison = micro_comparison({1024: {"relu": (1.0, 0.97, 1.03), "silu": (0.95, 0.93, 0.975)}})
    silu = comparison.micro.table.set_index("activation").loc["silu"]
    assert silu["ratio_high"] < 1 and silu["value_high"] > 0.97e-6  # intervals overlap, ratio clear
    (section,) = significant_sections(comparison)
    assert best_cells(section) == [("silu", "")]


def test_micro_metric_without_intervals_has_no_highlight():
    (section,) = significant_sections(micro_comparison(
        {1024: {"relu": (1.0, 0.98, 1.02), "silu": (2.0, 1.9, 2.1), "mish": (3.0, 2.9, 3.1)}},
        metric="gbps"))
    assert section.highlight == set()
    assert any(note.startswith("no significant best:") for note in section.notes)


def train_runs(means: dict, spread: float, seeds=range(5), depths=("8",)) -> pd.DataFrame:
    rows = []
    for depth in depths:
        for activation, mean in means.items():
            for seed in seeds:
                rows.append({"file": "t", "kind": "train", "suite": "s", "activation": activation,
                             "impl": "native", "seed": float(seed), "model.depth": depth,
                             "status": "ok", "config_hash": f"{depth}-{seed}-{activation}",
                             "final_test_acc": mean + spread * (seed - 2)
                             * (1 + 0.1 * len(activation))})
    return pd.DataFrame(rows)


def train_section(frame: pd.DataFrame):
    train = compare_train(frame, metric="final_test_acc", baseline="relu")
    (section,) = significant_sections(SimpleNamespace(micro=None, train=train, noise=None))
    best = sorted(section.table.iloc[row]["activation"] for row, _ in section.highlight)
    return section, best


def test_train_best_highlighted_when_clear_of_the_runner_up():
    section, best = train_section(train_runs({"relu": 0.85, "silu": 0.90, "mish": 0.95}, 0.001))
    assert best == ["mish"]
    assert not any(note.startswith("no significant best") for note in section.notes)


def test_train_best_within_noise_is_not_highlighted(tmp_path, figure):
    section, best = train_section(train_runs({"relu": 0.85, "silu": 0.900, "mish": 0.901}, 0.01))
    assert best == []
    assert any(note.startswith("no significant best:") for note in section.notes)
    page = Page(write(tmp_path, figure, sections=[section]).read_text(encoding="utf-8"))
    assert not [cell for cell, classes in page.td_classes if "best" in classes.split()]


def test_train_best_against_the_baseline_uses_its_holm_test():
    """mish against the runner-up relu: the paired test compare ran (significant here, each seed
    better by the same amount) decides although the two means' intervals overlap."""
    frame = train_runs({"relu": 0.85, "mish": 0.851}, 0.01)
    frame.loc[frame["activation"] == "mish", "final_test_acc"] = \
        frame.loc[frame["activation"] == "relu", "final_test_acc"].to_numpy() + 0.002
    table = compare_train(frame, metric="final_test_acc", baseline="relu").table \
        .set_index("activation")
    assert table.loc["mish", "ci_low"] < table.loc["relu", "ci_high"]  # the intervals overlap
    assert table.loc["mish", "p_holm"] < 0.05
    section, best = train_section(frame)
    assert best == ["mish"]


def test_train_groups_are_judged_each_on_its_own():
    frame = pd.concat([train_runs({"relu": 0.85, "silu": 0.90, "mish": 0.95}, 0.001, depths=("8",)),
                       train_runs({"relu": 0.85, "silu": 0.900, "mish": 0.901}, 0.01,
                                  depths=("32",))], ignore_index=True)
    train = compare_train(frame, metric="final_test_acc", baseline="relu")
    (section,) = significant_sections(SimpleNamespace(micro=None, train=train, noise=None))
    best = [(section.table.iloc[row]["model.depth"], section.table.iloc[row]["activation"])
            for row, _ in section.highlight]
    assert best == [("8", "mish")]
    assert any(note.startswith("no significant best in 1 of 2 groups") for note in section.notes)

"""The HTML report: one self-contained page, parsed back with the standard library's parser."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from actbench.errors import ActbenchError
from actbench.report.html import HtmlSection, flatten, write_html_report

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
    page = Page(write(tmp_path, figure).read_text(encoding="utf-8"))
    assert page.cells["summary"] == ["micro-a", "train-b"]
    cells = page.cells["td"]
    for key, value in (("host", "box"), ("gpus.0.name", "NVIDIA H200"),
                       ("cpu.model", "EPYC <9654>"), ("cpu.cores", "96"), ("python", "3.12.1")):
        assert cells[cells.index(key) + 1] == value


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

"""The class report (autograder/classreport.py, `deepgrade report`).

A synthetic class of 30 (tests/synthetic_class.py): correct students, a planted common bug
(db averaged over the batch), tanh's sign flipped, stubs, crashes, two whose grading failed, a
test that strong students fail (planted as under-specified), a GPU test deferred for everyone,
and one copied pair in the source. The last test renders the page in headless Chromium.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from autograder.classreport import build_report, item_analysis, load_class, normalize
from autograder.cli import main
from autograder.reports import write_json
from autograder.similarity import VERDICT_NOTE, screen_folder
from synthetic_class import GPU_TEST, WRONG_TEST, make_class


class _Tables(HTMLParser):
    """The text of each row of each table with an id: {id: [[cell text, ...], ...]}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id")
            if self._table:
                self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


@pytest.fixture(scope="module")
def hw1(course):
    return course.assignment("hw1")


@pytest.fixture(scope="module")
def klass(tmp_path_factory, hw1):
    return make_class(tmp_path_factory.mktemp("class"), hw1, 30)


@pytest.fixture(scope="module")
def page(klass, course, hw1):
    sim = screen_folder(klass.submissions, hw1)
    return build_report(course, klass.graded, similarity=sim)


def test_planted_findings_head_their_sections(page, klass):
    t = tables(page)
    # The planted bug: 6 students, its numbers (1/3, 1/4, ...) grouped as one diagnosis.
    assert t["diagnosis-table"][1][0] == str(len(klass.bug_students))
    assert "db is exactly 1/N of the expected values" in t["diagnosis-table"][1][1]
    assert "opposite sign" in t["diagnosis-table"][2][1]
    # The under-specified test is flagged first; no other test is flagged.
    first = t["item-table"][1]
    assert WRONG_TEST in first[0] and first[-1] == "strong students fail it more"
    assert sum(row[-1] != "" for row in t["item-table"][1:]) == 1
    # The copied pair heads the similarity screen, and is the only one flagged.
    assert t["similar-pairs"][1][3:5] == list(klass.copied) and t["similar-pairs"][1][5] == "flagged"
    assert sum(row[-1] == "flagged" for row in t["similar-pairs"][1:]) == 1
    assert VERDICT_NOTE in page


def test_infrastructure_and_deferred_are_apart(page, klass):
    t = tables(page)
    infra = [n for n, k in klass.kinds.items() if k == "infra"]
    assert [row[0] for row in t["infra-table"][1:]] == infra
    assert "28 of 30 students graded; grading failed for 2" in page
    assert t["deferred-table"][1] == ["fc_net", "28"]
    assert not any(GPU_TEST in row[0] for row in t["item-table"])  # deferred is not a failure
    students = {row[0]: row for row in t["student-table"][1:]}
    assert students[infra[0]][-1] == "failed" and students[infra[0]][1] == ""


def test_page_is_self_contained(page):
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "<link" not in page and "@import" not in page and "<script src" not in page
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 2
    # Every student has a section, linked from the table.
    for anchor in re.findall(r'<a href="#(s\d+)">', page):
        assert f'id="{anchor}"' in page


def test_student_controlled_text_is_escaped(tmp_path, course, hw1, klass):
    graded = tmp_path / "graded"
    shutil.copytree(klass.graded, graded)
    hostile = '<img src=x onerror=alert(1)>'
    (graded / hostile).mkdir()
    results = json.loads((graded / "student0003" / "results.json").read_text())
    results["tests"][0].update(status="failed", score=0, output="AssertionError: </pre><script>alert(2)</script>")
    results["output"] += "\n<script>alert(3)</script>"
    write_json(graded / hostile / "results.json", results)
    html = build_report(course, graded)
    assert "alert" in html  # the text is there, escaped
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_item_analysis_numbers(klass):
    items = {i.name.split(": ", 1)[1].replace(" (hidden)", ""): i for i in item_analysis(load_class(klass.graded))}
    wrong = items[WRONG_TEST]
    assert wrong.r is not None and wrong.r < -0.5 and wrong.flagged
    backward = items["test_affine_backward"]
    assert backward.r is not None and backward.r > 0 and not backward.flagged  # failed by weak students


def test_normalize_groups_numbers_and_addresses():
    a = normalize("ValueError: shapes (3,4) and (5,) at 0x7f3a2b; error 1.5e-03")
    b = normalize("ValueError: shapes (2,7) and (9,) at 0x55aa10; error 2e-01")
    assert a == b == "ValueError: shapes (N,N) and (N,) at 0x…; error N"


def test_report_command(tmp_path, klass, root):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(klass.graded), "-o", str(out), "-s", str(klass.submissions),
                                       "--config", str(root / "grading.yml")])
    assert result.exit_code == 0, result.output
    assert "class report written" in result.output and 'id="similarity"' in out.read_text(encoding="utf-8")
    bad = CliRunner().invoke(main, ["report", str(tmp_path / "nope"), "--config", str(root / "grading.yml")])
    assert bad.exit_code == 2 and "grade-batch" in bad.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(tmp_path, url: str, *flags: str) -> subprocess.CompletedProcess:
    # --host-resolver-rules: no name resolves, so a page that needed the network would show it.
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
           "--host-resolver-rules=MAP * ~NOTFOUND", *flags, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def _console(proc: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (Debian package `chromium`): the page is not "
                    "rendered in a browser here")
def test_report_renders_in_headless_chromium(tmp_path, page, klass):
    import matplotlib.image

    # The console check can fail: a page with an error is caught.
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><script>undefinedFunction()</script>", encoding="utf-8")
    assert any("undefinedFunction" in ln for ln in _console(_chromium(tmp_path, bad.as_uri(), "--dump-dom")))

    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    shot = tmp_path / "report.png"
    proc = _chromium(tmp_path, report.as_uri(), "--window-size=1280,1000", f"--screenshot={shot}")
    assert shot.is_file(), proc.stderr[-2000:]
    assert _console(proc) == []
    pixels = (matplotlib.image.imread(shot)[..., :3] * 255).round()
    blue = (abs(pixels - [76, 114, 176]).max(axis=-1) <= 12).sum()  # the totals histogram's bars
    assert blue > 2000, "the histogram of totals is not visible at the top of the page"

    dom = _chromium(tmp_path, report.as_uri(), "--dump-dom")
    assert _console(dom) == []
    t = tables(dom.stdout)
    assert "db is exactly 1/N" in t["diagnosis-table"][1][1]
    assert t["similar-pairs"][1][3:5] == list(klass.copied)
    assert len(t["student-table"]) == 31

    # The inline script sorts: a click on "total" puts the highest first.
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.replace("</body>", '<script>document.querySelector("#student-table th:nth-child(2)")'
                                    '.click();</script></body>'), encoding="utf-8")
    dom = _chromium(tmp_path, clicked.as_uri(), "--dump-dom")
    assert _console(dom) == []
    totals = [float(row[1]) for row in tables(dom.stdout)["student-table"][1:] if row[1]]
    assert totals == sorted(totals, reverse=True) and totals != [float(row[1]) for row in t["student-table"][1:]
                                                                 if row[1]]

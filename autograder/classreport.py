"""The class report: one self-contained HTML page an instructor reads after `grade-batch`.

`deepgrade report GRADED_DIR -o report.html` reads OUT/<student>/results.json (and error.json
where grading failed) and writes one HTML file that opens offline: no script, font or image is
fetched (the plots are PNGs inside the page, the only script is a few inline lines that sort
the student table). It shows, in this order:

- the score distribution: the totals, and each part as a fraction of its points;
- the diagnoses: how many students' failures carry each bug signature that
  autograder.diagnosis recognised (the failure messages' `hint:` lines);
- the common error messages, grouped once numbers and addresses are taken out;
- item analysis per test: the fraction of students who failed it and its discrimination (the
  point-biserial correlation of passing it with the rest-score, the total less that test's
  own points); a test that strong students fail more often than weak ones is flagged;
- the similarity screen, when the submissions are given (autograder.similarity);
- what is not the students' doing, apart: students whose grading failed (a rerun retries them)
  and tests deferred to a GPU runner;
- a table of every student, sortable, linking to their feedback further down the page.

Everything that comes from a submission (student names, messages, file names, code) is
escaped by the template engine (Jinja2 with autoescape on).
"""
from __future__ import annotations

import base64
import io
import json
import math
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograder.batch import ERROR, RESULTS, read_results
from autograder.config import AssignmentConfig, CourseConfig
from autograder.reports import headline

TEMPLATES = "templates"
FEEDBACK_CHARS = 1500  # of one failed test's output in a student's section: 1,000 students fit in a few MB
TOP_GROUPS = 25  # error groups and diagnoses shown
NEGATIVE_DISCRIMINATION = -0.2  # at or below this, a test is flagged (strong students fail it more)
MIN_FAILURES_TO_FLAG = 3


class ReportError(Exception):
    """The report cannot be made: no graded folder, no results in it, an unknown assignment."""


@dataclass
class StudentEntry:
    """One student of GRADED_DIR. state: graded | failed (grading failed: error.json) |
    missing (neither file). anchor: the id of their section in the page."""

    name: str
    anchor: str
    state: str
    results: dict[str, Any] | None = None
    error: str = ""

    @property
    def total(self) -> float | None:
        return float(self.results["score"]) if self.results else None

    def part_score(self, part: str) -> float | None:
        if not self.results:
            return None
        parts = (self.results.get("extra_data") or {}).get("parts") or {}
        return float((parts.get(part) or {}).get("score", 0.0))

    @property
    def tests(self) -> list[dict[str, Any]]:
        return [t for t in (self.results or {}).get("tests", []) if isinstance(t, dict)]


def test_status(test: dict[str, Any]) -> str:
    """passed | failed | deferred, as results.json records it."""
    return (test.get("extra_data") or {}).get("deepgrade_status") or test.get("status", "failed")


@dataclass
class Item:
    """Item analysis of one test. fail_rate over the students for whom it was graded; r: the
    point-biserial correlation of passing with the rest-score (None when everyone passed or
    everyone failed); flagged: strong students fail it more than weak ones."""

    name: str
    part: str
    graded: int
    failed: int
    r: float | None
    flagged: bool = False

    @property
    def fail_rate(self) -> float:
        return self.failed / self.graded if self.graded else 0.0


@dataclass
class Group:
    """Students whose failures share one normalized message or diagnosis."""

    key: str
    students: set[str] = field(default_factory=set)
    tests: Counter = field(default_factory=Counter)
    example: str = ""


def load_class(graded_dir: Path) -> list[StudentEntry]:
    """Every student folder of GRADED_DIR, sorted by name, with their results or error.
    Raises ReportError when GRADED_DIR is not a folder or holds no student."""
    graded_dir = Path(graded_dir)
    if not graded_dir.is_dir():
        raise ReportError(f"{graded_dir}: expected the -o folder of `deepgrade grade-batch`")
    entries = []
    for folder in sorted(p for p in graded_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        results = read_results(folder / RESULTS)
        anchor = f"s{len(entries)}"
        if results is not None:
            entries.append(StudentEntry(folder.name, anchor, "graded", results))
            continue
        error = ""
        try:
            error = str(json.loads((folder / ERROR).read_text(encoding="utf-8")).get("error", ""))
        except (OSError, ValueError, AttributeError):
            pass
        if error or (folder / ERROR).exists():
            entries.append(StudentEntry(folder.name, anchor, "failed", error=error or "error.json unreadable"))
        else:
            entries.append(StudentEntry(folder.name, anchor, "missing"))
    if not entries:
        raise ReportError(f"{graded_dir}: no student folders (expected OUT/<student>/results.json)")
    return entries


def assignment_of(entries: list[StudentEntry], course: CourseConfig, name: str | None) -> AssignmentConfig:
    """The assignment named, or the one the results say they are of."""
    if name is None:
        seen = {(e.results.get("extra_data") or {}).get("assignment") for e in entries if e.results}
        seen.discard(None)
        if len(seen) != 1:
            raise ReportError(f"the results name {len(seen)} assignments ({', '.join(sorted(map(str, seen)))}): "
                              "say which with -a")
        name = seen.pop()
    return course.assignment(name)


def item_analysis(entries: list[StudentEntry]) -> list[Item]:
    """One Item per test (by its name in results.json), deferred tests left out, in the order
    first seen. Discrimination: the correlation of passing (0/1) with the rest-score, over the
    students who attempted the test's part (passed another of its tests), when there are 3."""
    graded = [e for e in entries if e.state == "graded"]
    names: dict[str, str] = {}
    for e in graded:
        for t in e.tests:
            if test_status(t) != "deferred":
                names.setdefault(str(t.get("name", "")), str((t.get("extra_data") or {}).get("part", "")))
    index = {n: j for j, n in enumerate(names)}
    passed = np.full((len(graded), len(names)), np.nan)
    own = np.zeros((len(graded), len(names)))
    totals = np.array([e.total for e in graded], dtype=float)
    for i, e in enumerate(graded):
        for t in e.tests:
            j = index.get(str(t.get("name", "")))
            if j is None or test_status(t) == "deferred":
                continue
            passed[i, j] = 1.0 if test_status(t) == "passed" else 0.0
            own[i, j] = float(t.get("score", 0.0) or 0.0)
    parts = np.array(list(names.values()))
    items = []
    for name, j in index.items():
        seen = ~np.isnan(passed[:, j])
        # Among the students who attempted the part (passed another of its tests): a stub or a
        # crash fails everything, which would hide a test that only strong students fail.
        others = (parts == names[name]) & (np.arange(len(names)) != j)
        attempted = seen & (np.nansum(passed[:, others], axis=1) > 0)
        if attempted.sum() >= 3:
            seen = attempted
        p, rest = passed[seen, j], (totals - own[:, j])[seen]
        r = None
        if len(p) >= 3 and p.std() > 0 and rest.std() > 0:
            r = float(np.corrcoef(p, rest)[0, 1])
        failed = int((p == 0).sum())
        item = Item(name, names[name], int(seen.sum()), failed, r)
        item.flagged = r is not None and r <= NEGATIVE_DISCRIMINATION and failed >= MIN_FAILURES_TO_FLAG
        items.append(item)
    return items


_HEX = re.compile(r"0x[0-9a-fA-F]+")
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


_FRACTION = re.compile(r"(?<![\w.])1/\d+\b")


def normalize(text: str) -> str:
    """A message with its particulars taken out, so that alike ones group: addresses become
    0x…, numbers (sizes, errors, indices) become N, and a fraction 1/4 becomes 1/N."""
    text = _FRACTION.sub("\x00", _HEX.sub("\x01", text))  # placeholders: no digits for _NUMBER
    return _NUMBER.sub("N", text).replace("\x00", "1/N").replace("\x01", "0x…").strip()


def _hints(output: str) -> list[str]:
    return [ln.strip()[len("hint:"):].strip() for ln in output.splitlines() if ln.strip().startswith("hint:")]


def failure_groups(entries: list[StudentEntry]) -> tuple[list[Group], list[Group]]:
    """(diagnoses, error groups), each sorted by the number of students, most first. A
    diagnosis groups the hint lines of autograder.diagnosis; an error group, the one-line
    reasons of failed tests (reports.headline)."""
    diag: dict[str, Group] = {}
    errors: dict[str, Group] = {}
    for e in entries:
        for t in e.tests:
            if test_status(t) != "failed":
                continue
            output = str(t.get("output", ""))
            name = str(t.get("name", ""))
            for hint in _hints(output):
                g = diag.setdefault(normalize(hint), Group(normalize(hint), example=hint))
                g.students.add(e.name)
                g.tests[name] += 1
            line = headline(output) if output.strip() else "failed (no message)"
            key = normalize(line)
            g = errors.setdefault(key, Group(key, example=line))
            g.students.add(e.name)
            g.tests[name] += 1

    def order(groups: dict[str, Group]) -> list[Group]:
        return sorted(groups.values(), key=lambda g: (-len(g.students), -sum(g.tests.values()), g.key))

    return order(diag), order(errors)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def plots(assignment: AssignmentConfig, entries: list[StudentEntry]) -> dict[str, str]:
    """The distribution plots as data: URIs (PNG): 'totals' and 'parts' (a grid, each part's
    scores as a fraction of its points)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    graded = [e for e in entries if e.state == "graded"]
    max_score = sum(p.points for p in assignment.parts.values())
    out = {}
    fig = Figure(figsize=(7, 3.2), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.hist([e.total for e in graded], bins=np.linspace(0, max_score, 21), color="#4c72b0", edgecolor="white")
    ax.set_xlabel(f"total (out of {max_score:g})")
    ax.set_ylabel("students")
    ax.set_xlim(0, max_score)
    fig.tight_layout()
    out["totals"] = _png(fig)
    names = list(assignment.parts)
    cols = min(4, len(names)) or 1
    rows = math.ceil(len(names) / cols) or 1
    fig = Figure(figsize=(2.4 * cols, 1.9 * rows), dpi=80)
    FigureCanvasAgg(fig)
    for k, part in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        points = assignment.parts[part].points or 1
        ax.hist([e.part_score(part) / points for e in graded], bins=np.linspace(0, 1, 11),
                color="#55a868", edgecolor="white")
        ax.set_title(f"{part} ({assignment.parts[part].points:g})", fontsize=9)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    out["parts"] = _png(fig)
    return out


def _clip(text: str, limit: int = FEEDBACK_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n... [{len(text) - limit} characters more in results.json]"


def student_context(e: StudentEntry) -> dict[str, Any]:
    """What a student's section shows: their summary, failed tests (one line and the output,
    clipped), passed and deferred counts."""
    failed, deferred, passed = [], [], 0
    for t in e.tests:
        status = test_status(t)
        if status == "passed":
            passed += 1
        elif status == "deferred":
            deferred.append(str(t.get("name", "")))
        else:
            output = str(t.get("output", ""))
            failed.append({"name": str(t.get("name", "")), "line": headline(output) if output.strip() else "failed",
                           "output": _clip(output)})
    return {"entry": e, "failed": failed, "deferred": deferred, "passed": passed,
            "summary": str((e.results or {}).get("output", ""))}


def render(template: str, **context: Any) -> str:
    """Render one of autograder/templates with autoescape on for every value."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("autograder", TEMPLATES), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["score"] = lambda x: "" if x is None else f"{x:.2f}".rstrip("0").rstrip(".")
    env.filters["pct"] = lambda x: f"{100 * x:.0f}%"
    return env.get_template(template).render(**context)


def build_report(course: CourseConfig, graded_dir: Path, assignment: str | None = None,
                 similarity: Any = None) -> str:
    """The class report of GRADED_DIR as HTML text. similarity: a similarity.SimilarityReport
    to include, or None."""
    entries = load_class(graded_dir)
    a = assignment_of(entries, course, assignment)
    graded = [e for e in entries if e.state == "graded"]
    totals = [e.total for e in graded]
    max_score = sum(p.points for p in a.parts.values())
    items = item_analysis(entries)
    diagnoses, errors = failure_groups(entries)
    deferred: dict[str, set[str]] = defaultdict(set)
    for e in graded:
        for t in e.tests:
            if test_status(t) == "deferred":
                deferred[str((t.get("extra_data") or {}).get("part", ""))].add(e.name)
    stats = None
    if totals:
        stats = {"mean": statistics.mean(totals), "median": statistics.median(totals),
                 "min": min(totals), "max": max(totals),
                 "full": sum(t >= max_score - 1e-6 for t in totals), "zero": sum(t <= 1e-6 for t in totals)}
    part_means = {p: statistics.mean(e.part_score(p) for e in graded) if graded else None for p in a.parts}
    sim = None
    if similarity is not None:
        from autograder.similarity import similarity_context

        sim = similarity_context(similarity)
    return render(
        "class_report.html.j2",
        a=a, max_score=max_score, entries=entries, graded=graded, stats=stats, part_means=part_means,
        plots=plots(a, entries) if graded else None,
        items=sorted(items, key=lambda i: (not i.flagged, -i.fail_rate, i.name)),
        flagged=[i for i in items if i.flagged], negative=NEGATIVE_DISCRIMINATION,
        diagnoses=diagnoses[:TOP_GROUPS], errors=errors[:TOP_GROUPS],
        failed=[e for e in entries if e.state == "failed"], missing=[e for e in entries if e.state == "missing"],
        deferred={p: sorted(names) for p, names in sorted(deferred.items())},
        students=[student_context(e) for e in entries], sim=sim,
    )


def write_report(path: Path, html: str) -> None:
    """Write the page atomically."""
    from autograder.formats import write_text_atomic

    write_text_atomic(Path(path), html)

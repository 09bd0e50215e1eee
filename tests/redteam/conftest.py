"""Fixtures of the red-team suite: a copy of the course with short limits, and graders.

Each hostile submission is the hw1 reference copied at test time with one hostile change, so
the suite does not depend on the details of hw1. Most changes break one function, the
"victim" (tanh_forward), and add an attack; such a submission must score exactly what the
reference with only that function broken scores (the baseline). A successful attack would
score more; a grader that falls over would score less or crash.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from autograder.config import load_config
from autograder.grade import grade

SCHEMA = json.loads((Path(__file__).parent.parent / "gradescope_results.schema.json").read_text())
# The part the victim belongs to: grading only it keeps the suite fast, and every attack
# below would show there (the other parts run unchanged reference code).
PART = "activations"
BROKEN_VICTIM = "\n\ndef tanh_forward(x):\n    raise NotImplementedError('broken on purpose')\n"


def course_copy(base: Path, root: Path, hw: str, timeouts: dict, limits: dict | None = None):
    """A copy of the course in `base` holding only assignment `hw`, with these timeouts (and
    limits), so that hostile cases end quickly."""
    shutil.copytree(root / "solutions" / hw, base / "solutions" / hw,
                    ignore=shutil.ignore_patterns("__pycache__"))
    data = yaml.safe_load((root / "grading.yml").read_text())
    block = data["assignments"][hw]
    block["timeouts"] = dict(timeouts)
    if limits is not None:
        block["limits"] = dict(limits)
    data["assignments"] = {hw: block}
    (base / "grading.yml").write_text(yaml.safe_dump(data))
    return load_config(base / "grading.yml")


@pytest.fixture(scope="session")
def rt_course(tmp_path_factory, root):
    """A copy of the course (hw1 only) whose limits are small, so hostile cases end quickly."""
    return course_copy(tmp_path_factory.mktemp("redteam-course"), root, "hw1",
                       {"call": 1.5, "test": 20, "total": 600, "startup": 3},
                       {"cpu_seconds": 120, "memory_mb": 2048, "file_size_mb": 16, "processes": 32,
                        "open_files": 128, "output_kb": 16})


class Graded:
    def __init__(self, result, data: dict, out: Path) -> None:
        self.result, self.data, self.out = result, data, out
        self.score = result.scorecard.score

    def failed(self) -> dict[str, str]:
        return {t.outcome.name: t.outcome.message for t in self.result.scorecard.tests if not t.passed}


def make_submission(course, dest: Path, append: dict[str, str] | None = None,
                    extra: dict[str, str] | None = None, hw: str = "hw1") -> Path:
    """The reference's graded files of `hw` with code appended to some of them, plus extra files."""
    dest.mkdir(parents=True)
    src = course.assignment(hw).solution_dir
    for name in course.assignment(hw).files:
        shutil.copyfile(src / name, dest / name)
    for name, code in (append or {}).items():
        with open(dest / name, "a", encoding="utf-8") as fh:
            fh.write("\n\n" + code + "\n")
    for name, text in (extra or {}).items():
        (dest / name).write_text(text)
    return dest


def grade_submission(course, tmp_path: Path, append=None, extra=None, select: str | None = PART,
                     isolation: str | None = None, hw: str = "hw1") -> Graded:
    sub = make_submission(course, tmp_path / "submission", append, extra, hw=hw)
    out = tmp_path / "out" / "results.json"
    saved = os.environ.get("DEEPGRADE_ISOLATION")
    if isolation is not None:
        os.environ["DEEPGRADE_ISOLATION"] = isolation  # the runner's switch; default: worker
    try:
        result = grade(course, course.assignment(hw), sub, out, select=select)
    finally:
        if saved is None:
            os.environ.pop("DEEPGRADE_ISOLATION", None)
        else:
            os.environ["DEEPGRADE_ISOLATION"] = saved
    data = json.loads(out.read_text())
    jsonschema.validate(data, SCHEMA)  # results.json is always valid
    assert data["score"] == pytest.approx(round(result.scorecard.score, 4))
    return Graded(result, data, out)


@pytest.fixture(scope="session")
def baseline(rt_course, tmp_path_factory) -> Graded:
    """The reference with only the victim broken: what every victim case must score."""
    g = grade_submission(rt_course, tmp_path_factory.mktemp("baseline"), {"layers.py": BROKEN_VICTIM})
    part = rt_course.assignment("hw1").parts[PART].points
    assert 0 < g.score < part, "the victim must cost some, not all, of its part"
    return g


@pytest.fixture(scope="session")
def full_part(rt_course) -> float:
    return rt_course.assignment("hw1").parts[PART].points

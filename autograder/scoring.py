"""Scores from test outcomes: each part's points are shared equally by the tests it holds.

A test earns its share only when it passed. A GPU test that was skipped on a CPU runner is
"deferred": it scores 0 here, tagged so that `deepgrade merge` can fill it in from a GPU run
(and a GPU-only run, `--runner gpu`, defers the CPU tests the same way). Any other skip scores
0 with its reason: a test without a verdict never earns credit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from autograder.config import AssignmentConfig
from autograder.runner import TestOutcome


@dataclass
class ScoredTest:
    outcome: TestOutcome
    part: str
    max_score: float
    score: float
    status: str  # passed | failed | deferred

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class PartScore:
    name: str
    title: str
    points: float
    runner: str
    tests: list[ScoredTest] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)


@dataclass
class Scorecard:
    assignment: AssignmentConfig
    parts: list[PartScore]
    ungraded: list[TestOutcome]

    @property
    def score(self) -> float:
        return sum(p.score for p in self.parts)

    @property
    def max_score(self) -> float:
        return sum(p.points for p in self.parts)

    @property
    def tests(self) -> list[ScoredTest]:
        return [t for p in self.parts for t in p.tests]


def score(assignment: AssignmentConfig, outcomes: list[TestOutcome], runner: str = "all") -> Scorecard:
    """Score outcomes against grading.yml's parts. runner: the runner the tests ran on (cpu,
    gpu or all). A part none of whose tests ran (for example, every test deselected) still
    appears, with its points and no score."""
    by_part: dict[str, list[TestOutcome]] = {name: [] for name in assignment.parts}
    ungraded = []
    for o in outcomes:
        if o.part in by_part:
            by_part[o.part].append(o)
        else:
            ungraded.append(o)
    parts = []
    for name, part in assignment.parts.items():
        ps = PartScore(name, part.title or name, part.points, assignment.part_runner(name))
        tests = by_part[name]
        share = part.points / len(tests) if tests else 0.0
        for o in tests:
            if o.status == "passed":
                status, earned = "passed", share
            elif o.status == "skipped" and (o.gpu or runner == "gpu"):
                status, earned = "deferred", 0.0
            else:
                status, earned = "failed", 0.0
            ps.tests.append(ScoredTest(o, name, share, earned, status))
        parts.append(ps)
    return Scorecard(assignment, parts, ungraded)

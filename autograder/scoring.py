"""Scores from test outcomes: each part's points are shared equally by the tests it holds.

Shares are rounded to SCORE_DECIMALS places by the largest-remainder method, so that the
shares of a part add up to exactly its points (15 points over 7 tests: four tests of 2.1429 and
three of 2.1428, not seven of 2.1429 = 15.0003). Every platform deepgrade exports to (otter's
cases, nbgrader's cells) scores with these same shares.

A test earns its share only when it passed. A GPU test that was skipped on a CPU runner is
"deferred": it scores 0 here, tagged so that `deepgrade merge` can fill it in from a GPU run
(and a GPU-only run, `--runner gpu`, defers the CPU tests the same way). Any other skip scores
0 with its reason: a test without a verdict never earns credit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from autograder.config import AssignmentConfig
from autograder.runner import TestOutcome


SCORE_DECIMALS = 4  # results.json shows scores to 4 places: the shares are exact at that precision


def shares(points: float, n: int, decimals: int = SCORE_DECIMALS) -> list[float]:
    """n equal shares of `points`, rounded to `decimals` places so that they sum to exactly
    `points` (largest remainder: the units left over by rounding down go to the first tests,
    in collection order). Returns a list of n floats ([] when n is 0)."""
    if n <= 0:
        return []
    unit = Decimal(1).scaleb(-decimals)
    total = int((Decimal(str(points)) / unit).to_integral_value())
    base, extra = divmod(total, n)
    # Every remainder is the same (equal shares): ties go to the earlier tests.
    return [float((base + (i < extra)) * unit) for i in range(n)]


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
        # The shares are exact to SCORE_DECIMALS places: so is their sum, once float noise is gone.
        return round(math.fsum(t.score for t in self.tests), SCORE_DECIMALS)


@dataclass
class Scorecard:
    assignment: AssignmentConfig
    parts: list[PartScore]
    ungraded: list[TestOutcome]

    @property
    def score(self) -> float:
        return round(math.fsum(p.score for p in self.parts), SCORE_DECIMALS)

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
        for o, share in zip(tests, shares(part.points, len(tests))):
            if o.status == "passed":
                status, earned = "passed", share
            elif o.status == "skipped" and (o.gpu or runner == "gpu"):
                status, earned = "deferred", 0.0
            else:
                status, earned = "failed", 0.0
            ps.tests.append(ScoredTest(o, name, share, earned, status))
        parts.append(ps)
    return Scorecard(assignment, parts, ungraded)

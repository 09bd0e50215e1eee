"""Scores add up: each part's tests share its points to 4 decimals, summing to exactly the
part's points; results.json's top-level output names a module that could not be imported."""
from decimal import Decimal

import pytest

from autograder.config import load_config
from autograder.grade import grade
from autograder.reports import gradescope_results
from autograder import runner
from autograder.scoring import score, shares


@pytest.mark.parametrize("points", [1, 5, 7.5, 10, 15, 20, 33.3, 100])
def test_shares_sum_to_exactly_the_points(points):
    for n in range(1, 120):
        got = shares(points, n)
        assert len(got) == n
        assert sum(Decimal(str(s)) for s in got) == Decimal(str(points)), (points, n)
        assert max(got) - min(got) <= 1e-4 + 1e-12  # equal shares, up to the last place


@pytest.fixture
def toy(tmp_path):
    """A course with one module and a part of 15 points over 7 tests, one of them failing."""
    sol = tmp_path / "solutions" / "hwx"
    sol.mkdir(parents=True)
    (sol / "toy.py").write_text("def f(x):\n    return 2 * x\n")
    (sol / "test_toy.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.parametrize('x', range(7))\n"
        "def test_f(student, x):\n    assert student.f(x) == 2 * x\n"
    )
    (tmp_path / "grading.yml").write_text(
        "assignments:\n  hwx:\n    title: Toy\n    files: [toy.py]\n"
        "    parts:\n      f: {points: 15, tests: [test_*]}\n"
    )
    return load_config(tmp_path / "grading.yml")


def _outcomes(statuses):
    return [runner.TestOutcome(nodeid=f"test_toy.py::test_f[{i}]", name=f"test_f[{i}]", file="test_toy.py",
                        hidden=False, part="f", gpu=False, status=s) for i, s in enumerate(statuses)]


def test_per_test_scores_in_results_sum_to_the_part(toy):
    # 15 points over 7 tests: 15/7 rounded to 4 places is 2.1429, and 7 of those are 15.0003.
    a = toy.assignment("hwx")
    results = gradescope_results(score(a, _outcomes(["passed"] * 7)), 0.1)
    assert sum(Decimal(str(t["max_score"])) for t in results["tests"]) == 15
    assert sum(Decimal(str(t["score"])) for t in results["tests"]) == 15
    assert results["score"] == 15 and results["extra_data"]["parts"]["f"]["score"] == 15
    partial = gradescope_results(score(a, _outcomes(["passed"] * 6 + ["failed"])), 0.1)
    assert partial["score"] == pytest.approx(15 - 2.1428, abs=1e-9)


def test_results_output_names_a_syntax_error_and_its_line(toy, tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "toy.py").write_text("def f(x):\n    return 2 * x\n\ndef g(:\n    pass\n")
    result = grade(toy, toy.assignment("hwx"), sub, tmp_path / "results.json")
    output = result.results["output"].splitlines()
    expected = "toy.py could not be imported: SyntaxError at line 4: invalid syntax (every test that needs it scores 0)"
    assert expected in output


def test_results_output_names_a_missing_file(toy, tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "other.py").write_text("x = 1\n")
    result = grade(toy, toy.assignment("hwx"), sub, tmp_path / "results.json")
    assert "missing file: toy.py (every test that needs it scores 0)" in result.results["output"].splitlines()

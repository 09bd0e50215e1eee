"""The course as shipped is sound: `deepgrade verify` passes for every assignment.

verify proves that every visible and hidden test passes on the reference, that every graded test
fails on the stub, that every test belongs to a part, and that nothing of the solution leaks.
"""
import pytest

from autograder.verify import verify

ASSIGNMENTS = ["hw1", "hw2", "hw3", "hw4", "hw5", "hw6"]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_verify(course, name):
    if name not in course.assignments:
        pytest.fail(f"{name} is missing from grading.yml")
    report = verify(course.assignment(name))
    assert report.passed, "\n".join(report.problems)
    # GPU tests are the only ones a CPU machine may leave unverified.
    assert all("needs CUDA" in line for line in report.unverified)

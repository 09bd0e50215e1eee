"""Fair verdicts on a toy layer: a backward judged on its own, a changed input costing only the
rule's own test, and messages that name the defect. Each case is graded twice, in process and
in the sandboxed worker, and must come out the same."""
import json

import numpy as np
import pytest

from autograder.config import load_config
from autograder.diagnosis import diagnose
from autograder.grade import grade
from autograder.loader import InputChangedError, InputChangedWarning
from autograder.verdicts import (BackwardNotJudged, assert_inputs_unchanged, check_inputs_rule,
                                 forward_problem, judge_backward)

# A toy "scale" layer: out = 3x + b; its backward returns (dx, db).
REFERENCE = '''
import numpy as np


def scale_forward(x, b):
    out = 3.0 * x + b
    return out, (x, b)


def scale_backward(dout, cache):
    x, b = cache
    dx = 3.0 * dout
    db = dout.sum(axis=0)
    return dx, db
'''

TESTS = '''
import numpy as np

from autograder.gradcheck import assert_close
from autograder.verdicts import check_inputs_rule, judge_backward


def _inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((4, 3))


def test_forward_values(student, reference):
    x, b, _ = _inputs()
    assert_close(student.scale_forward(x, b)[0], reference.scale_forward(x, b)[0], name="out")


def test_backward_values(student, reference):
    x, b, dout = _inputs()
    judge_backward(student.scale_forward, student.scale_backward, {"x": x, "b": b}, dout, ["x", "b"],
                   reference=(reference.scale_forward, reference.scale_backward))


def test_conventions_backward_leaves_dout(student):
    x, b, dout = _inputs()
    _, cache = student.scale_forward(x, b)
    check_inputs_rule(student.scale_backward, (dout, cache), (2.0 * dout + 1.0, cache))
'''

CONFIG = """
assignments:
  toy:
    title: Toy layer
    files: [layer.py]
    parts:
      forward: {points: 4, tests: [test_forward_*]}
      backward: {points: 4, tests: [test_backward_*]}
      conventions: {points: 2, tests: [test_conventions_*]}
"""


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("verdicts")
    sol = root / "solutions" / "toy"
    sol.mkdir(parents=True)
    (sol / "layer.py").write_text(REFERENCE)
    (sol / "test_layer.py").write_text(TESTS)
    (root / "grading.yml").write_text(CONFIG)
    course = load_config(root / "grading.yml")
    return course, course.assignment("toy")


def edited(tmp_path, **replacements):
    """The reference layer with some lines replaced: a submission folder."""
    source = REFERENCE
    for old, new in replacements.values():
        assert source.count(old) == 1
        source = source.replace(old, new)
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "layer.py").write_text(source)
    return folder


def graded(toy, folder, tmp_path, monkeypatch):
    """{part: score} and {test name: output}, the same in process and in the worker."""
    course, a = toy
    runs = []
    for isolation in ("inprocess", "worker"):
        monkeypatch.setenv("DEEPGRADE_ISOLATION", isolation)
        out = tmp_path / isolation / "results.json"
        result = grade(course, a, folder, out)
        data = json.loads(out.read_text())
        runs.append(({p.name: round(p.score, 6) for p in result.scorecard.parts},
                     {t["name"].split(": ", 1)[1]: t["output"] for t in data["tests"]}))
    assert runs[0][0] == runs[1][0], "the worker and the in-process grade differ"
    return runs[1]


def test_reference_gets_full_marks(toy, tmp_path, monkeypatch):
    scores, _ = graded(toy, toy[1].solution_dir, tmp_path, monkeypatch)
    assert scores == {"forward": 4, "backward": 4, "conventions": 2}


def test_a_wrong_forward_costs_the_forward_only(toy, tmp_path, monkeypatch):
    folder = edited(tmp_path, fwd=("out = 3.0 * x + b", "out = 3.0 * x + 2.0 * b"))
    scores, outputs = graded(toy, folder, tmp_path, monkeypatch)
    assert scores == {"forward": 0, "backward": 4, "conventions": 2}
    assert "out (shape (4, 3)) is wrong" in outputs["test_forward_values"]


def test_a_wrong_backward_names_the_gradient_and_the_forward(toy, tmp_path, monkeypatch):
    folder = edited(tmp_path, fwd=("out = 3.0 * x + b", "out = 3.0 * x + 2.0 * b"),
                    bwd=("db = dout.sum(axis=0)", "db = dout.mean(axis=0)"))
    scores, outputs = graded(toy, folder, tmp_path, monkeypatch)
    assert scores == {"forward": 0, "backward": 0, "conventions": 2}
    message = outputs["test_backward_values"]
    assert "scale_backward db (shape (3,)) is wrong" in message
    assert "exactly 1/4 of the expected values" in message
    assert "note: scale_forward out (shape (4, 3)) is wrong" in message
    assert "your scale_backward also disagrees with the numerical gradient of your own scale_forward: db" in message


def test_a_changed_input_costs_the_rule_only_and_warns_elsewhere(toy, tmp_path, monkeypatch):
    folder = edited(tmp_path, bwd=("    dx = 3.0 * dout\n    db = dout.sum(axis=0)\n",
                                   "    db = dout.sum(axis=0)\n    dout *= 3.0\n    dx = dout\n"))
    scores, outputs = graded(toy, folder, tmp_path, monkeypatch)
    assert scores == {"forward": 4, "backward": 4, "conventions": 0}
    assert "scale_backward() changed the array it was given as argument 1" in outputs["test_conventions_backward_leaves_dout"]
    assert outputs["test_backward_values"].startswith(
        "warning: scale_backward() changed the array it was given as argument 1 (shape (4, 3)) in place")
    assert outputs["test_forward_values"] == ""


@pytest.mark.parametrize("body, words", [
    ("return np.zeros_like(dout), np.zeros(dout.shape[1])", "the same result for two different inputs"),
    ("return dout, dout", "handed back an input unchanged"),
])
def test_the_rule_gives_nothing_to_code_that_ignores_its_inputs(toy, tmp_path, monkeypatch, body, words):
    folder = edited(tmp_path, bwd=("    dx = 3.0 * dout\n    db = dout.sum(axis=0)\n    return dx, db",
                                   "    " + body))
    scores, outputs = graded(toy, folder, tmp_path, monkeypatch)
    assert scores == {"forward": 4, "backward": 0, "conventions": 0}
    assert words in outputs["test_conventions_backward_leaves_dout"]


def test_a_crashing_forward_is_named_in_the_backward_test(toy, tmp_path, monkeypatch):
    folder = edited(tmp_path, fwd=("out = 3.0 * x + b", "raise ValueError('not yet')"))
    scores, outputs = graded(toy, folder, tmp_path, monkeypatch)
    assert scores == {"forward": 0, "backward": 0, "conventions": 0}
    assert "scale_backward could not be judged: scale_forward raised" in outputs["test_backward_values"]


# --- the helpers in process ----------------------------------------------------------------------

def _fns(ns):
    return ns["scale_forward"], ns["scale_backward"]


@pytest.fixture
def reference_ns():
    ns: dict = {}
    exec(REFERENCE, ns)
    return ns


def test_judge_backward_with_expected_gradients(reference_ns):
    fwd, bwd = _fns(reference_ns)
    x, b, dout = np.ones((2, 3)), np.zeros(3), np.full((2, 3), 2.0)
    got = judge_backward(fwd, bwd, {"x": x, "b": b}, dout, ["x", "b"],
                         expected={"x": 3.0 * dout, "b": dout.sum(axis=0)})
    assert set(got) == {"x", "b"}
    with pytest.raises(AssertionError, match=r"scale_backward dx for a test \(shape \(2, 3\)\) is wrong"):
        judge_backward(fwd, bwd, {"x": x, "b": b}, dout, ["x", "b"], what="for a test",
                       expected={"x": dout, "b": dout.sum(axis=0)})


def test_judge_backward_needs_a_cache():
    def forward(x):
        return 2 * x

    with pytest.raises(BackwardNotJudged, match=r"forward must return \(out, cache\); it returned ndarray"):
        judge_backward(forward, lambda d, c: d, {"x": np.ones(2)}, np.ones(2), ["x"], expected={"x": np.ones(2)})


def test_assert_inputs_unchanged_and_the_warning():
    from autograder.loader import _guarded

    def writes(x):
        x += 1
        return x

    guarded = _guarded(writes)
    x = np.zeros(3)
    with pytest.warns(InputChangedWarning, match="writes"):
        assert np.array_equal(guarded(x), np.ones(3))
    assert np.array_equal(x, np.zeros(3)), "student code works on a copy"
    with pytest.raises(InputChangedError, match="argument 1 .shape .3,.. in place"):
        assert_inputs_unchanged(guarded, x)
    with pytest.raises(InputChangedError):
        check_inputs_rule(guarded, (x,), (x + 5,))


def test_the_rule_judges_only_a_forward_s_outputs(reference_ns):
    fwd, _ = _fns(reference_ns)

    def zeros_forward(x, b):  # computes nothing, but its cache holds (and so differs with) x
        return np.zeros_like(x), (x, b)

    x, b = np.ones((2, 3)), np.zeros(3)
    check_inputs_rule(zeros_forward, (x, b), (x + 1, b))  # the cache makes the results differ
    with pytest.raises(AssertionError, match="the same result for two different inputs"):
        check_inputs_rule(zeros_forward, (x, b), (x + 1, b), outputs=1)
    check_inputs_rule(fwd, (x, b), (x + 1, b), outputs=1)


def test_forward_problem():
    assert forward_problem(np.ones(3), np.ones(3), "out") is None
    assert "expected shape (3,), got shape (2,)" in forward_problem(np.ones(2), np.ones(3), "out")


@pytest.mark.parametrize("actual, expected", [
    (np.array([[3.9]]), np.array([[1.0]])),                  # one number: any factor fits
    (np.array([2.0, -7.0]), np.array([1.0, -3.5])),           # two numbers: no whole ratio claim
    (np.array([[0.0]]), np.array([[5.0]])),                  # one zero
])
def test_no_hint_from_a_handful_of_numbers(actual, expected):
    assert diagnose(actual, expected) is None


def test_hints_still_made_with_enough_evidence():
    e = np.random.default_rng(0).standard_normal((4, 3))
    assert "constant factor of about 3.9" in diagnose(3.9 * e, e)
    assert "exactly 4 times" in diagnose(4 * e, e)

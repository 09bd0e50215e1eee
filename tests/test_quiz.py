"""Concept checks (autograder/quiz.py): quiz.yml validation, grading every question right and
wrong, the local check, and proof that the release gives no answer away."""
from __future__ import annotations

import itertools
import json
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from autograder import quiz
from autograder.config import load_config
from autograder.grade import grade
from autograder.release import ReleaseError, build_release, quiz_release
from autograder.verify import LeakCheck

HWS = ["hw1", "hw2", "hw3", "hw4", "hw5"]


@pytest.fixture(scope="module")
def course(root):
    return load_config(root / "grading.yml", check_tree=False)


def _quiz(course, hw) -> quiz.Quiz:
    return quiz.load_quiz(course.assignment(hw).solution_dir / quiz.QUIZ_NAME)


@pytest.fixture(scope="module")
def releases(course):
    """The committed release of each assignment (tests/test_release.py proves it in sync), with
    its quiz files as `deepgrade release` makes them now."""
    out = {}
    for hw in HWS:
        a = course.assignment(hw)
        files = {p.relative_to(a.release_dir).as_posix(): p.read_bytes()
                 for p in sorted(a.release_dir.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}
        out[hw] = {**files, **quiz_release(a)}
    return out


def _wrong_answers(q: quiz.Question) -> list:
    """Answers that must score 0: every other set of options; numbers just outside the
    tolerance, off by a factor and of the wrong sign; texts in another order."""
    if q.kind == "choice":
        right = set(q.accepted[0].split(","))
        sets = [set(c) for r in range(1, len(q.options) + 1) for c in itertools.combinations(q.options, r)]
        if not q.multiple:
            sets = [s for s in sets if len(s) == 1]
        return [sorted(s) if q.multiple else next(iter(s)) for s in sets if s != right]
    if q.kind == "numeric":
        a = Decimal(repr(float(q.answer)))
        tol = Decimal(repr(q.tolerance.abs)) if q.tolerance.abs is not None else Decimal(repr(q.tolerance.rel)) * abs(a)
        step = Decimal(1).scaleb(-q.precision.decimals) if q.precision.decimals is not None else \
            Decimal(1).scaleb(a.adjusted() - q.precision.significant + 1)
        outside = [a + tol + step, a - tol - step]
        return [str(v) for v in outside] + [str(a * 2), str(a / 10), str(-a) if a else "1"]
    accepted = q.accepted[0].strip("()").split(",")
    return ["(" + ", ".join(reversed(accepted)) + ")", "(" + ", ".join(accepted[:-1]) + ")"]


@pytest.mark.parametrize("hw", HWS)
def test_reference_answers_get_full_marks_and_blanks_zero(course, hw):
    q = _quiz(course, hw)
    a = course.assignment(hw)
    assert len(q.questions) >= 6
    quiz.check_parts(q, a, "quiz.yml")
    answers = quiz.read_answers(a.solution_dir / quiz.ANSWERS_NAME)
    assert set(answers) == {x.id for x in q.questions}
    for question in q.questions:
        assert quiz.grade_answer(question, answers) == (True, ""), question.id
        for blank in ({}, {question.id: None}, {question.id: ""}, {question.id: []}):
            right, message = quiz.grade_answer(question, blank)
            assert not right and "not answered" in message


@pytest.mark.parametrize("hw", HWS)
def test_every_wrong_answer_scores_zero_without_giving_the_answer(course, hw):
    for q in _quiz(course, hw).questions:
        wrong = _wrong_answers(q)
        assert wrong, q.id
        for answer in wrong:
            right, message = quiz.grade_answer(q, {q.id: answer})
            assert not right, (q.id, answer)
            assert message.startswith(q.id)
            if q.kind != "choice":  # the feedback never spells the accepted answer
                assert not re.search(rf"(?<![\d.-]){re.escape(q.accepted[0])}(?![\d])",
                                     quiz.normalize_text(message)), (q.id, message)


def test_wrong_option_gets_its_explanation_and_a_missing_one_is_named(course):
    q = _quiz(course, "hw1").question("overfit")
    right, message = quiz.grade_answer(q, {"overfit": ["a", "b", "c"]})
    assert not right
    assert q.options["b"].feedback in message and "missing" in message
    assert q.options["d"].text not in message  # the missing right option is not named


@pytest.mark.parametrize("raw, accepted", [
    ("0.0003456", True), (0.00034564, True), ("3.456e-4", True), ("3.4560E-4", True),
    (0.0003457, True), ("0.0003460", False), ("0.00035", False), ("one", False), (True, False), ("nan", False), ("1e999", False),
])
def test_numbers_are_parsed_rounded_then_compared(course, raw, accepted):
    q = _quiz(course, "hw3").question("adam_second_step")
    assert quiz.grade_answer(q, {q.id: raw})[0] is accepted


@pytest.mark.parametrize("raw", ["(32, 192, 1, 1)", "[32,192,1,1]", " ( 32 , 192 , 1 , 1 , ) ", [32, 192, 1, 1]])
def test_short_answers_are_normalized(course, raw):
    q = _quiz(course, "hw2").question("one_by_one_dw")
    assert quiz.grade_answer(q, {q.id: raw}) == (True, "")


# --- answers.yml, from the student --------------------------------------------------------------

def test_broken_answers_yml_names_the_file_and_line(tmp_path):
    path = tmp_path / "answers.yml"
    path.write_text("q1: a\nq2: [b, c\nq3: 4\n")
    with pytest.raises(quiz.AnswersError, match=r"answers\.yml: line \d+, column \d+: not valid YAML"):
        quiz.read_answers(path)


@pytest.mark.parametrize("text, message", [
    ("- a\n- b\n", "expected 'id: answer' lines"),
    ("x" * (quiz.MAX_ANSWERS_BYTES + 1), "over the"),
    (b"\xff\xfe", "not UTF-8"),
    ("a: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
])
def test_answers_yml_is_read_as_data_within_limits(tmp_path, text, message):
    path = tmp_path / "answers.yml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(quiz.AnswersError, match=message):
        quiz.read_answers(path)


def test_missing_answers_yml_is_reported(tmp_path):
    with pytest.raises(quiz.AnswersError, match="was not submitted"):
        quiz.read_answers(tmp_path / "answers.yml")


# --- quiz.yml, from the instructor --------------------------------------------------------------

def _write_quiz(tmp_path, question: dict) -> Path:
    path = tmp_path / "quiz.yml"
    path.write_text(yaml.safe_dump({"questions": [question]}))
    return path


_CHOICE = {"id": "q1", "kind": "choice", "part": "quiz", "points": 2, "prompt": "?",
           "options": {"a": {"text": "x"}, "b": {"text": "y"}}, "answer": "a"}
_NUMERIC = {"id": "q2", "kind": "numeric", "part": "quiz", "points": 2, "prompt": "?", "answer": 0.123456,
            "precision": {"significant": 3}, "tolerance": {"rel": 0.01}, "hint": "h"}


@pytest.mark.parametrize("change, message", [
    ({"answer": "c"}, "answer must be option letters"),
    ({"answer": ["a", "b"]}, "multiple: true"),
    ({"kind": "quiz"}, "questions.0 \\(id q1\\).kind"),
    ({"options": {"a": {"text": "x"}, "c": {"text": "y"}}}, "options a, b"),
    ({"colour": "red"}, "unknown key"),
    ({"id": "Q 1"}, "id Q 1\\).id: String should match pattern"),
])
def test_bad_choice_question_is_named(tmp_path, change, message):
    with pytest.raises(quiz.QuizError, match=message):
        quiz.load_quiz(_write_quiz(tmp_path, {**_CHOICE, **change}))


@pytest.mark.parametrize("change, message", [
    ({"tolerance": None}, "needs precision and tolerance"),
    ({"tolerance": {"abs": 0.1, "rel": 0.1}}, "exactly one of abs or rel"),
    ({"tolerance": {"rel": 0.0001}}, "outside the tolerance"),
    ({"hint": ""}, "needs a hint"),
    ({"answer": "12"}, "must be a number"),
])
def test_bad_numeric_question_is_named(tmp_path, change, message):
    question = {k: v for k, v in {**_NUMERIC, **change}.items() if v is not None}
    with pytest.raises(quiz.QuizError, match=message):
        quiz.load_quiz(_write_quiz(tmp_path, question))


def test_question_points_must_match_the_part(course, tmp_path):
    a = course.assignment("hw3")
    q = _quiz(course, "hw3")
    doc = yaml.safe_load((a.solution_dir / "quiz.yml").read_text())
    doc["questions"][0]["points"] = 3
    path = tmp_path / "quiz.yml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(quiz.QuizError, match="shared equally"):
        quiz.check_parts(quiz.load_quiz(path), a, path)
    doc["questions"][0]["points"], doc["questions"][0]["part"] = 2, "adam"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(quiz.QuizError, match="every question must be in the part"):
        quiz.check_parts(quiz.load_quiz(path), a, path)
    assert q.questions  # the course's own quiz passed the same check in the release


def test_release_refuses_an_invalid_quiz(course, tmp_path):
    src = course.assignment("hw3")
    folder = tmp_path / "solutions" / "hw3"
    shutil.copytree(src.solution_dir, folder, ignore=shutil.ignore_patterns("hidden", "*.ipynb", "figures"))
    (folder / "quiz.yml").write_text("questions: []\n")
    (tmp_path / "grading.yml").write_text((course.root / "grading.yml").read_text())
    a = load_config(tmp_path / "grading.yml", check_tree=False).assignment("hw3")
    with pytest.raises(ReleaseError, match="questions"):
        build_release(a)


# --- the release: no answer, no invertible check ------------------------------------------------

@pytest.mark.parametrize("hw", HWS)
def test_release_holds_no_answer_and_no_invertible_check(course, releases, hw):
    q = _quiz(course, hw)
    release = releases[hw]
    assert quiz.find_quiz_leaks(hw, q, release, hw) == []
    assert b"answer:" not in release[quiz.QUIZ_NAME] and b"feedback" not in release[quiz.QUIZ_NAME]
    assert release[quiz.ANSWERS_NAME] != (course.assignment(hw).solution_dir / quiz.ANSWERS_NAME).read_bytes()
    assert quiz.read_answers_text(release[quiz.ANSWERS_NAME]) == {x.id: None for x in q.questions}
    # The committed release is the one that was checked.
    for name in (quiz.QUIZ_NAME, quiz.ANSWERS_NAME, "test_quiz.py"):
        assert (course.assignment(hw).release_dir / name).read_bytes() == release[name]
    # Each check, tried against its dictionary, leaves many candidates; questions with few
    # plausible answers (every multiple-choice one) carry no check at all.
    for question in q.questions:
        check = quiz.released_checks(release)[question.id]
        if question.kind == "choice":
            assert check == "answered"
        if check != "answered":
            words = quiz.dictionary(question)
            hits = [w for w in words if quiz.check_value(check["salt"], question.id, w, check["bits"])
                    == int(check["hash"], 16)]
            assert question.accepted[0] in hits and len(hits) >= quiz.MIN_CANDIDATES
            assert check["bits"] >= quiz.MIN_CHECK_BITS


def test_leak_check_catches_plain_answers_and_strong_hashes(course, releases):
    q = _quiz(course, "hw3")
    release = dict(releases["hw3"])
    release["README.md"] = release["README.md"] + b"\nThe second Adam step is 3.456e-4.\n"
    doc = yaml.safe_load(release[quiz.QUIZ_NAME])
    for item in doc["questions"]:
        if item["id"] == "momentum_two_steps":
            s = item["check"]["salt"]
            item["check"] = {"salt": s, "bits": 32, "hash": format(quiz.check_value(s, item["id"], "-0.29", 32), "x")}
        if item["id"] == "vanishing":  # four options: any hash of the answer is inverted at once
            item["check"] = {"salt": "00", "bits": 8, "hash": format(quiz.check_value("00", "vanishing", "b", 8), "x")}
    release[quiz.QUIZ_NAME] = yaml.safe_dump(doc).encode()
    problems = "\n".join(quiz.find_quiz_leaks("hw3", q, release, "assignments/hw3"))
    assert "README.md: holds the answer of quiz question adam_second_step" in problems
    assert "check of question momentum_two_steps (32 bits) leaves 1 of" in problems
    assert "check of question vanishing" in problems


def test_published_leak_check_reads_the_quiz(course, releases, tmp_path):
    folder = tmp_path / "published" / "assignments" / "hw5"
    folder.mkdir(parents=True)
    for name, data in releases["hw5"].items():
        if name in (quiz.QUIZ_NAME, quiz.ANSWERS_NAME, "test_quiz.py"):
            (folder / name).write_bytes(data)
    check = LeakCheck(course)
    assert check.scan(tmp_path / "published").problems == []
    (folder / "notes.md").write_text("fc6 of AlexNet: 37,752,832 parameters\n")
    shutil.copy(course.assignment("hw5").solution_dir / "answers.yml", folder / "answers-ref.yml")
    problems = "\n".join(LeakCheck(course).scan(tmp_path / "published").problems)
    assert "notes.md: holds the answer of quiz question alexnet_fc6" in problems
    assert "a copy of solutions/hw5/answers.yml" in problems


# --- the local check ------------------------------------------------------------------------------

@pytest.mark.parametrize("hw", HWS)
def test_local_check_accepts_the_reference_and_rejects_wrong_answers(course, hw, tmp_path):
    a = course.assignment(hw)
    released = a.release_dir / quiz.QUIZ_NAME
    collisions = []
    for q in _quiz(course, hw).questions:
        verdict = quiz.local_check(released, a.solution_dir / quiz.ANSWERS_NAME, q.id)
        checks = quiz.released_checks({quiz.QUIZ_NAME: released.read_bytes()})
        assert verdict == ("answered" if checks[q.id] == "answered" else "right"), q.id
        with pytest.raises(AssertionError, match="not answered yet"):
            quiz.local_check(released, a.release_dir / quiz.ANSWERS_NAME, q.id)
        if verdict == "right":
            for wrong in _wrong_answers(q):
                (tmp_path / "answers.yml").write_text(yaml.safe_dump({q.id: wrong}))
                try:
                    quiz.local_check(released, tmp_path / "answers.yml", q.id)
                except AssertionError as exc:
                    assert f"{q.id}: not right" in str(exc) and q.hint.strip() in str(exc)
                else:  # a wrong answer whose truncated hash collides: 1 in 2**bits, by design
                    collisions.append((q.id, wrong))
    assert len(collisions) <= 1, collisions


def test_local_pytest_run_reports_quiz_questions(root, tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "hw3"
    shutil.copytree(root / "assignments" / "hw3", folder)
    (folder / "answers.yml").write_text("adam_second_step: 0.0003456\nmomentum_two_steps: -0.3\nvanishing: b\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", str(folder / "test_quiz.py"), "-q", "-rs",
                           "-p", "no:cacheprovider"], capture_output=True, text=True, cwd=tmp_path)
    out = proc.stdout
    assert "1 passed" in out and "1 skipped" in out and "4 failed" in out, out
    assert "momentum_two_steps: not right" in out and "vanishing is answered" in out


# --- grading ----------------------------------------------------------------------------------

def test_grading_without_answers_scores_zero_on_the_quiz_only(course, tmp_path):
    a = course.assignment("hw3")
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy(a.solution_dir / "optim.py", sub / "optim.py")
    out = tmp_path / "results.json"
    card = grade(course, a, sub, out).scorecard
    for part in card.parts:
        assert part.score == pytest.approx(0 if part.name == "quiz" else part.points), part.name
    data = json.loads(out.read_text())
    assert "missing file: answers.yml" in data["output"]
    quiz_tests = [t for t in data["tests"] if t["name"].startswith("quiz:")]
    assert len(quiz_tests) == 6 and all("answers.yml was not submitted" in t["output"] for t in quiz_tests)


def test_grading_writes_each_question_with_feedback_and_no_answer(course, tmp_path):
    a = course.assignment("hw2")
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy(a.solution_dir / "conv_layers.py", sub / "conv_layers.py")
    (sub / "answers.yml").write_text("alexnet_out: 55\nalexnet_params: 34848\nmax_pool: d\n"
                                     "one_by_one: [a, b, e]\none_by_one_dw: (192, 32, 1, 1)\n")
    out = tmp_path / "results.json"
    grade(course, a, sub, out, select="quiz")
    tests = {t["name"].split("[")[1].split("]")[0]: t for t in json.loads(out.read_text())["tests"]
             if t["name"].startswith("quiz:")}
    assert {k: t["score"] for k, t in tests.items()} == {
        "alexnet_out": 2, "alexnet_params": 0, "bottleneck_saving": 0, "max_pool": 0, "one_by_one": 2,
        "one_by_one_dw": 0}
    assert "not answered" in tests["bottleneck_saving"]["output"]
    assert "average pooling" in tests["max_pool"]["output"]
    assert "34944" not in tests["alexnet_params"]["output"] and "Hint" in tests["alexnet_params"]["output"]
    assert "(32, 192, 1, 1)" not in tests["one_by_one_dw"]["output"]

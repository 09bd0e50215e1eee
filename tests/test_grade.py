"""`deepgrade grade` end to end on hw1: full marks, zero, partial credit, broken submissions."""
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from autograder.grade import grade

SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())
FILES = ["layers.py", "fc_net.py", "house_prices.py"]


@pytest.fixture(scope="module")
def hw1(course):
    return course.assignment("hw1")


def submission(tmp_path: Path, src: Path, edit=None, drop=()) -> Path:
    dest = tmp_path / "sub"
    dest.mkdir()
    for name in FILES:
        if name not in drop:
            shutil.copyfile(src / name, dest / name)
    if edit:
        for name, text in edit.items():
            with open(dest / name, "a", encoding="utf-8") as fh:
                fh.write(text)
    return dest


@pytest.fixture(scope="module")
def reference_result(course, hw1, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "results.json"
    return grade(course, hw1, hw1.solution_dir, out), out


def test_reference_gets_full_marks(reference_result, hw1):
    result, out = reference_result
    card = result.scorecard
    assert card.score == pytest.approx(card.max_score) and card.max_score == 100
    data = json.loads(out.read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["score"] == pytest.approx(100)
    assert all(t["status"] == "passed" for t in data["tests"])
    assert {t["visibility"] for t in data["tests"]} == {"visible", hw1.hidden_visibility}
    assert sum(t["max_score"] for t in data["tests"]) == pytest.approx(100, abs=0.01)


def test_stub_gets_zero(course, hw1, tmp_path):
    out = tmp_path / "results.json"
    result = grade(course, hw1, hw1.release_dir, out)
    assert result.scorecard.score == 0
    data = json.loads(out.read_text())
    jsonschema.validate(data, SCHEMA)
    assert all("NotImplementedError" in t["output"] for t in data["tests"])


def test_one_wrong_backward_loses_only_its_tests(course, hw1, tmp_path):
    wrong = "\n\ndef tanh_backward(dout, cache):\n    return dout  # forgets the derivative\n"
    result = grade(course, hw1, submission(tmp_path, hw1.solution_dir, {"layers.py": wrong}))
    card = result.scorecard
    failed = [t for t in card.tests if not t.passed]
    assert failed and all("tanh" in t.outcome.name and t.part == "activations" for t in failed)
    for part in card.parts:
        if part.name != "activations":
            assert part.score == pytest.approx(part.points), part.name
    assert card.score == pytest.approx(100 - sum(t.max_score for t in failed))
    assert 0 < card.score < 100


def test_missing_file_scores_what_works(course, hw1, tmp_path):
    out = tmp_path / "results.json"
    result = grade(course, hw1, submission(tmp_path, hw1.solution_dir, drop=["house_prices.py"]), out)
    card = result.scorecard
    by_part = {p.name: p for p in card.parts}
    assert by_part["house_prices"].score == 0
    assert by_part["affine"].score == pytest.approx(by_part["affine"].points)
    data = json.loads(out.read_text())
    jsonschema.validate(data, SCHEMA)
    assert "missing file: house_prices.py" in data["output"]
    assert any("house_prices.py is missing" in t["output"] for t in data["tests"])


def test_syntax_error_scores_zero_for_that_module(course, hw1, tmp_path):
    result = grade(course, hw1, submission(tmp_path, hw1.solution_dir, {"house_prices.py": "\ndef broken(:\n"}))
    by_part = {p.name: p for p in result.scorecard.parts}
    assert by_part["house_prices"].score == 0
    assert by_part["batchnorm"].score == pytest.approx(by_part["batchnorm"].points)
    msgs = [t.outcome.message for t in result.scorecard.tests if t.part == "house_prices"]
    assert all("SyntaxError" in m for m in msgs)


def test_error_on_import_is_reported(course, hw1, tmp_path):
    result = grade(course, hw1, submission(tmp_path, hw1.solution_dir, {"fc_net.py": "\nraise RuntimeError('boom')\n"}))
    by_part = {p.name: p for p in result.scorecard.parts}
    assert by_part["fc_net"].score == 0 and by_part["affine"].score == pytest.approx(by_part["affine"].points)
    assert any("RuntimeError: boom" in t.outcome.message for t in result.scorecard.tests if t.part == "fc_net")


def test_zip_at_repository_path(course, hw1, tmp_path):
    archive = tmp_path / "sub.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in FILES:
            zf.write(hw1.solution_dir / name, f"my-repo/assignments/hw1/{name}")
        zf.writestr("my-repo/notes.txt", "hello")
    result = grade(course, hw1, archive)
    assert result.scorecard.score == pytest.approx(100)
    assert result.submission.found["layers.py"] == "my-repo/assignments/hw1/layers.py"
    assert "my-repo/notes.txt" in result.submission.ignored


def test_cli_grade_prints_table_and_writes_results(root, tmp_path):
    out = tmp_path / "r.json"
    run = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "assignments/hw1", "-a", "hw1", "-o", str(out)],
        cwd=root, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "total" in run.stdout and "0.00 / 100" in run.stdout
    jsonschema.validate(json.loads(out.read_text()), SCHEMA)


@pytest.mark.parametrize(
    "args, message",
    [
        (["grade", "nowhere", "-a", "hw1"], "nowhere: no such file or folder"),
        (["grade", "assignments/hw1", "-a", "hw9"], "no assignment 'hw9'"),
    ],
)
def test_cli_bad_input_is_a_clear_error(root, args, message):
    run = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=root, capture_output=True, text=True)
    assert run.returncode == 2 and message in run.stderr


def test_existing_results_survive_a_failed_grade(root, tmp_path):
    out = tmp_path / "results.json"
    out.write_text('{"score": 42}')
    run = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "nowhere", "-a", "hw1", "-o", str(out)],
        cwd=root, capture_output=True, text=True,
    )
    assert run.returncode == 2 and json.loads(out.read_text()) == {"score": 42}

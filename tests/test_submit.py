"""`deepgrade submit hw1`: exactly the graded files and a manifest; refuses a missing file,
warns about untouched stubs; the zip grades like the folder it came from."""
import hashlib
import json
import shutil
import zipfile

import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.config import load_config
from autograder.grade import grade
from autograder.release import make_stub, write_release
from autograder.submit import MANIFEST, SubmitError, build_submission, stub_blocks_left


@pytest.fixture
def student_course(root, tmp_path):
    """A course checkout in tmp_path: grading.yml, solutions/hw1, and the release
    assignments/hw1 (the stubs) made from it."""
    shutil.copyfile(root / "grading.yml", tmp_path / "grading.yml")
    shutil.copytree(root / "solutions" / "hw1", tmp_path / "solutions" / "hw1",
                    ignore=shutil.ignore_patterns("__pycache__"))
    course = load_config(tmp_path / "grading.yml", check_tree=False)
    write_release(course.assignment("hw1"))
    return course


def submit(course, *args):
    """`deepgrade submit hw1 ARGS`; the result's output holds stdout and stderr."""
    return CliRunner().invoke(main, ["submit", "hw1", "--config", str(course.path), *args])


def finish(assignment):
    """The student's work: the reference solution copied over the stubs."""
    for f in assignment.files:
        shutil.copyfile(assignment.solution_dir / f, assignment.release_dir / f)


def test_zip_holds_exactly_the_graded_files_and_a_manifest(student_course, tmp_path):
    hw1 = student_course.assignment("hw1")
    finish(hw1)
    out = tmp_path / "hw1.zip"
    res = submit(student_course, "-o", str(out))
    assert res.exit_code == 0, res.output
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == sorted([*hw1.files, MANIFEST])
        manifest = json.loads(zf.read(MANIFEST))
        for entry in manifest["files"]:
            data = zf.read(entry["name"])
            assert entry["sha256"] == hashlib.sha256(data).hexdigest()
            assert entry["bytes"] == len(data)
            assert data == (hw1.release_dir / entry["name"]).read_bytes()
    assert manifest["assignment"] == "hw1"
    assert [e["name"] for e in manifest["files"]] == hw1.files
    assert "warning" not in res.output


def test_untouched_stubs_are_warned_about(student_course, tmp_path):
    out = tmp_path / "hw1.zip"
    res = submit(student_course, "-o", str(out))
    assert res.exit_code == 0
    for f in student_course.assignment("hw1").module_names:
        assert f"{f}.py is identical to the stub" in res.output
    assert "answers.yml: 6 question(s) still blank" in res.output  # the quiz, released blank
    assert out.exists()


def test_a_missing_file_is_refused_and_nothing_is_written(student_course, tmp_path):
    hw1 = student_course.assignment("hw1")
    (hw1.release_dir / "fc_net.py").unlink()
    out = tmp_path / "hw1.zip"
    res = submit(student_course, "-o", str(out))
    assert res.exit_code == 2
    assert "missing fc_net.py" in res.output
    assert not out.exists()


def test_partly_done_file_counts_its_stub_blocks(student_course, tmp_path):
    hw1 = student_course.assignment("hw1")
    finish(hw1)
    ref = (hw1.solution_dir / "layers.py").read_text()
    stub = make_stub(ref, "layers.py")
    # Half done: the stub of layers.py with its first function filled in is neither the stub
    # nor finished.
    first_stub = stub.index("# YOUR CODE HERE")
    start = stub.rfind("\n", 0, first_stub) + 1
    end = stub.index("raise NotImplementedError", first_stub) + len("raise NotImplementedError\n")
    indent = stub[start:first_stub]
    partly = stub[:start] + f"{indent}pass\n" + stub[end:]
    (hw1.release_dir / "layers.py").write_text(partly)
    report = build_submission(hw1, tmp_path / "hw1.zip")
    left = stub_blocks_left(stub) - 1
    assert report.warnings == [f"layers.py: {left} place(s) still say '# YOUR CODE HERE' / 'raise NotImplementedError'"]


def test_stub_blocks_left():
    text = "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError\n\ndef g():\n    return 1\n"
    assert stub_blocks_left(text) == 1
    assert stub_blocks_left(text.replace("raise NotImplementedError", "return 2")) == 0


def test_build_submission_raises_naming_every_missing_file(student_course, tmp_path):
    hw1 = student_course.assignment("hw1")
    with pytest.raises(SubmitError, match="missing layers.py, fc_net.py, house_prices.py"):
        build_submission(hw1, tmp_path / "x.zip", source=tmp_path / "empty")


def test_the_submitted_zip_grades_like_the_work(course, student_course, tmp_path):
    finish(student_course.assignment("hw1"))
    out = tmp_path / "hw1.zip"
    assert submit(student_course, "-o", str(out)).exit_code == 0
    result = grade(course, course.assignment("hw1"), out, select="affine")
    assert result.scorecard.score == pytest.approx(10)
    assert result.submission.missing == []


def test_default_zip_goes_to_a_git_ignored_folder_and_says_where(student_course, tmp_path, monkeypatch):
    hw1 = student_course.assignment("hw1")
    finish(hw1)
    monkeypatch.chdir(tmp_path)  # not the course: the zip's place must not depend on the cwd
    res = submit(student_course)
    assert res.exit_code == 0, res.output
    expected = (student_course.root / "handin" / "hw1-submission.zip").resolve()
    assert expected.is_file() and f"wrote {expected}" in res.output
    assert not list(tmp_path.glob("*.zip"))
    assert (expected.parent / ".gitignore").read_text().splitlines()[-1] == "*"
    if shutil.which("git"):
        import subprocess

        subprocess.run(["git", "init", "-q", str(student_course.root)], check=True)
        ignored = subprocess.run(["git", "-C", str(student_course.root), "check-ignore", "-q", str(expected)])
        assert ignored.returncode == 0, "git would offer the submission zip for a commit"


def test_grading_the_zip_does_not_call_the_manifest_ignored(course, student_course, tmp_path):
    finish(student_course.assignment("hw1"))
    out = tmp_path / "hw1.zip"
    assert submit(student_course, "-o", str(out)).exit_code == 0
    result = grade(course, course.assignment("hw1"), out, select="affine")
    assert result.submission.ignored == []
    assert "ignored" not in result.results["output"]

"""The student release is made from one source, deterministically, and malformed markers fail."""
import pytest

from autograder.config import load_config
from autograder.release import ReleaseError, build_release, diff_release, make_stub, write_release

SOURCE = '''def f(x):
    """Doc."""
    ### BEGIN SOLUTION
    y = x * 2
    return y
    ### END SOLUTION


class Net:
    def __init__(self):
        self.a = 1
        ### BEGIN SOLUTION
        self.b = 2
        ### END SOLUTION
'''


def test_blocks_become_stubs_with_their_indentation():
    out = make_stub(SOURCE, "m.py")
    assert "y = x * 2" not in out and "self.b = 2" not in out
    assert "    # YOUR CODE HERE\n    raise NotImplementedError\n" in out
    assert "        # YOUR CODE HERE\n        raise NotImplementedError\n" in out
    assert '"""Doc."""' in out and "self.a = 1" in out
    compile(out, "m.py", "exec")


def test_file_without_blocks_is_unchanged():
    assert make_stub("x = 1\n", "m.py") == "x = 1\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("    ### BEGIN SOLUTION\n    x = 1\n", "m.py:1: '### BEGIN SOLUTION' is never closed"),
        ("x = 1\n### END SOLUTION\n", "m.py:2: '### END SOLUTION' without a '### BEGIN SOLUTION'"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "m.py:2: nested"),
        ("## BEGIN SOLUTION\nx = 1\n## END SOLUTION\n", "m.py:1: malformed solution marker"),
        ("### BEGIN SOLUTIONS\n", "m.py:1: malformed solution marker"),
    ],
)
def test_malformed_markers_name_file_and_line(text, message):
    with pytest.raises(ReleaseError) as info:
        make_stub(text, "m.py")
    assert message in str(info.value)


@pytest.fixture
def toy(tmp_path):
    sol = tmp_path / "solutions" / "hwx"
    (sol / "hidden").mkdir(parents=True)
    (sol / "toy.py").write_text(SOURCE)
    (sol / "README.md").write_text("# Toy\n")
    (sol / "test_toy.py").write_text("def test_f(student):\n    assert student.f(1) == 2\n")
    (sol / "hidden" / "test_toy_hidden.py").write_text("def test_g(student):\n    assert student.f(2) == 4\n")
    (tmp_path / "grading.yml").write_text(
        "assignments:\n  hwx:\n    title: Toy\n    files: [toy.py]\n"
        "    parts:\n      f: {points: 1, tests: [test_*]}\n"
    )
    return load_config(tmp_path / "grading.yml").assignment("hwx")


def test_release_copies_tests_and_handout_never_hidden(toy):
    files = build_release(toy)
    assert sorted(files) == ["README.md", "test_toy.py", "toy.py"]
    assert b"NotImplementedError" in files["toy.py"]


def test_release_is_deterministic_and_check_lists_drift(toy):
    assert diff_release(toy) == ["missing: assignments/hwx/README.md", "missing: assignments/hwx/test_toy.py",
                                 "missing: assignments/hwx/toy.py"]
    write_release(toy)
    first = {p: p.read_bytes() for p in toy.release_dir.rglob("*") if p.is_file()}
    assert diff_release(toy) == []
    write_release(toy)
    assert first == {p: p.read_bytes() for p in toy.release_dir.rglob("*") if p.is_file()}
    (toy.release_dir / "toy.py").write_text("edited by hand\n")
    (toy.release_dir / "stale.py").write_text("old\n")
    (toy.release_dir / "hidden").mkdir()
    (toy.release_dir / "hidden" / "leak.py").write_text("x\n")
    assert diff_release(toy) == [
        "differs: assignments/hwx/toy.py",
        "extra:   assignments/hwx/hidden/leak.py",
        "extra:   assignments/hwx/stale.py",
    ]
    write_release(toy)
    assert diff_release(toy) == [] and not (toy.release_dir / "hidden").exists()


def test_cli_release_check_exit_status(toy, root):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "autograder", "release", "--check", "--config", str(toy.root / "grading.yml")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 1 and "missing: assignments/hwx/toy.py" in out.stdout
    subprocess.run(cmd[:4] + cmd[5:], check=True, capture_output=True)
    assert subprocess.run(cmd, capture_output=True).returncode == 0


def test_repository_release_is_in_sync(course):
    for a in course.assignments.values():
        assert diff_release(a) == [], f"run `deepgrade release {a.name}`"

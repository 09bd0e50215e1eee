"""What the `deepgrade` commands print: escaped user and library text (square brackets stay,
markup in a path cannot crash), no wrapping at 80 columns when the output is not a terminal,
failure reasons cut at a word, `check` with reasons, parameters, "not run" parts and pytest's
exit status, `release` naming its files by assignment, in order."""
import ast
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from autograder.cli import main

LONG = "the output of f(x) for x in the middle of the range is " + "very " * 70 + "wrong"
# Numbers that must never be printed cut in half.
NUMBERS = " ".join(f"{1.2345678e-05 * (i + 1):.7e}" for i in range(40))

TESTS = f'''import pytest

@pytest.mark.parametrize("x", [1, 2, 3], ids=["one", "two", "three"])
def test_double_values(student, x):
    assert student.double(x) == 2 * x, "double({{}}) is wrong".format(x)

def test_double_long_reason(student):
    assert student.double(5) == 10, {LONG!r}

def test_double_numbers(student):
    assert student.double(6) == 12, {NUMBERS!r}

def test_half_value(student):
    assert student.half(4) == 2
'''


def make_course(base: Path, names=("hwx",), module="def double(x):\n    return 2 * x if x != 3 else 7\n"
                "\ndef half(x):\n    return x / 2\n") -> Path:
    """A course of toy assignments with a release (assignments/) that holds `module`; the
    double part's tests fail for x == 3 and the two long-reason tests pass only when 2 * x."""
    blocks = []
    for name in names:
        sol = base / "solutions" / name
        sol.mkdir(parents=True)
        (sol / "toy.py").write_text("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
                                    "    ### END SOLUTION\n\ndef half(x):\n    return x / 2\n")
        (sol / "test_toy.py").write_text(TESTS)
        rel = base / "assignments" / name
        rel.mkdir(parents=True)
        (rel / "toy.py").write_text(module)
        (rel / "test_toy.py").write_text(TESTS)
        blocks.append(f"  {name}:\n    title: Toy {name}\n    files: [toy.py]\n    parts:\n"
                      "      double: {points: 6, tests: [test_double_*]}\n"
                      "      half: {points: 4, tests: [test_half_*]}\n")
    (base / "grading.yml").write_text("assignments:\n" + "".join(blocks))
    return base / "grading.yml"


def invoke(*args):
    return CliRunner().invoke(main, [*args])


# --- check ----------------------------------------------------------------------------------

def test_check_shows_why_each_case_failed_with_its_parameters_and_exits_1(tmp_path):
    config = make_course(tmp_path, module="def double(x):\n    return 2 * x if x != 3 else 7\n\n"
                         "def half(x):\n    return x / 2\n")
    res = invoke("check", "hwx", "--config", str(config))
    assert res.exit_code == 1, res.output
    failed = [line for line in res.output.splitlines() if line.startswith("FAILED")]
    assert failed == ["FAILED assignments/hwx/test_toy.py::test_double_values[three]: "
                      "AssertionError: double(3) is wrong"], res.output


def test_check_exits_0_when_every_visible_test_passes(tmp_path):
    config = make_course(tmp_path, module="def double(x):\n    return 2 * x\n\ndef half(x):\n    return x / 2\n")
    res = invoke("check", "hwx", "--config", str(config))
    assert res.exit_code == 0, res.output
    assert "FAILED" not in res.output


def test_check_with_a_part_calls_the_others_not_run(tmp_path):
    config = make_course(tmp_path, module="def double(x):\n    return 2 * x\n\ndef half(x):\n    return 0\n")
    res = invoke("check", "hwx", "-m", "double", "--config", str(config))
    assert res.exit_code == 0, res.output  # the failing half part was not run
    assert "not run: half (not selected by -m double)" in res.output
    rows = {line.split("│")[1].strip(): line for line in res.output.splitlines() if line.count("│") >= 3}
    assert "half" not in rows and "0.00 / 4" not in res.output
    assert "6.00 / 6" in rows["total"]


# --- escaping, wrapping, cutting ------------------------------------------------------------

def test_a_path_with_markup_is_printed_as_is(tmp_path):
    config = make_course(tmp_path / "course[/bold]")
    res = invoke("grade", str(tmp_path / "no[/bold]such[red]"), "-a", "hwx", "--config", str(config))
    assert res.exit_code == 2, res.output
    assert "no[/bold]such[red]: no such file or folder" in res.output
    assert "MarkupError" not in res.output


def test_grade_prints_paths_and_test_ids_with_brackets(tmp_path):
    config = make_course(tmp_path / "course")  # pytest itself refuses test files under "[...]"
    sub = tmp_path / "sub[/bold]"
    sub.mkdir(parents=True)
    (sub / "toy.py").write_text("def double(x):\n    return 2 * x if x != 3 else 7\n\ndef half(x):\n    return x / 2\n")
    (sub / "notes[instructor].txt").write_text("hi\n")
    out = tmp_path / "out[/red]" / "results.json"
    out.parent.mkdir(parents=True)
    res = invoke("grade", str(sub), "-a", "hwx", "--config", str(config), "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "test_double_values[three]" in res.output
    assert "ignored (not graded): notes[instructor].txt" in res.output
    assert f"results written to {out}" in res.output and out.is_file()


def test_an_error_keeps_its_square_brackets(tmp_path, monkeypatch):
    # releasing a notebook without nbgrader: the message names the extra to install.
    config = make_course(tmp_path)
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    (tmp_path / "solutions" / "hwx" / "hwx.ipynb").write_text(nbformat.writes(nb))
    monkeypatch.setitem(sys.modules, "nbgrader.preprocessors", None)
    res = invoke("release", "--config", str(config))
    assert res.exit_code == 2, res.output
    assert "pip install -e '.[instructor]'" in res.output


def test_output_is_not_wrapped_and_reasons_are_cut_at_a_word(tmp_path):
    config = make_course(tmp_path, module="def double(x):\n    return 0\n\ndef half(x):\n    return x / 2\n")
    res = invoke("check", "hwx", "--config", str(config))
    lines = {line.split("::")[-1].split(":")[0]: line for line in res.output.splitlines() if line.startswith("FAILED")}
    long_line = lines["test_double_long_reason"]
    assert "very very" in long_line and long_line.endswith(" ...")  # one line, over 80 columns
    numbers = lines["test_double_numbers"]
    printed = numbers.split("AssertionError: ", 1)[1].removesuffix(" ...").split()
    assert printed and all(n in NUMBERS.split() for n in printed), numbers


# --- release --------------------------------------------------------------------------------

def test_release_names_each_file_under_its_assignment_in_order(tmp_path):
    config = make_course(tmp_path, names=("hw10", "hw2"))
    for name in ("hw10", "hw2"):
        (tmp_path / "assignments" / name / "stale.py").write_text("x = 1\n")
    res = invoke("release", "--check", "--config", str(config))
    assert res.exit_code == 1
    assert res.output.splitlines()[:6] == [
        "hw2: 2 file(s) differ",
        "  differs: assignments/hw2/toy.py",
        "  extra:   assignments/hw2/stale.py",
        "hw10: 2 file(s) differ",
        "  differs: assignments/hw10/toy.py",
        "  extra:   assignments/hw10/stale.py",
    ], res.output
    res = invoke("release", "--config", str(config))
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [
        "hw2: 2 file(s) written or removed",
        "  written: assignments/hw2/toy.py",
        "  removed: assignments/hw2/stale.py",
        "hw10: 2 file(s) written or removed",
        "  written: assignments/hw10/toy.py",
        "  removed: assignments/hw10/stale.py",
    ]
    assert invoke("release", "--config", str(config)).output.splitlines() == ["hw2: up to date", "hw10: up to date"]


def test_release_and_notebook_do_not_import_each_other():
    # notebook imports release (NotebookError, release_notebook); release never imports notebook.
    import autograder.release

    tree = ast.parse(Path(autograder.release.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert not {m for m in imported if m and re.match(r"autograder\.notebook", m)}

"""The handout notebooks: released through nbgrader, runnable top to bottom, checked per part."""
from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbgrader")
nbclient = pytest.importorskip("nbclient")

from autograder.config import load_config  # noqa: E402
from autograder.notebook import NotebookError, check, format_result, release_notebook, run_part  # noqa: E402
from autograder.release import ReleaseError, build_release  # noqa: E402
from autograder.verify import find_leaks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COURSE = load_config(ROOT / "grading.yml", check_tree=False)
NAMES = sorted(COURSE.assignments)
CHECK_CALL = re.compile(r"""^check\(["'](\w+)["']\)\s*$""")


def source_notebook(name: str) -> Path:
    a = COURSE.assignment(name)
    return a.solution_dir / f"{a.path}.ipynb"


def cells(data: bytes, kind: str) -> list[str]:
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    return [c.source for c in nb.cells if c.cell_type == kind]


def execute(nb, folder: Path, timeout: int = 300):
    """Run a notebook top to bottom with the kernel of this interpreter, in folder."""
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return nb


def stream_text(nb) -> str:
    return "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
        if o.output_type == "stream"
    )


@pytest.fixture
def quiet_kernel(monkeypatch, tmp_path):
    # The kernel inherits this environment: no __pycache__ left in solutions/.
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    # A user-level "python3" kernel spec (another interpreter) must not be picked up: with an
    # empty data folder, "python3" is the spec of this environment, run by this interpreter.
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))


# --- what every notebook holds --------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_notebook_has_a_check_cell_per_part(name):
    code = cells(source_notebook(name).read_bytes(), "code")
    checked = [m.group(1) for src in code for m in [CHECK_CALL.match(src.strip())] if m]
    assert sorted(checked) == sorted(COURSE.assignment(name).parts), (
        f"{name}.ipynb: expected one check('part') cell per part of grading.yml"
    )


@pytest.mark.parametrize("name", NAMES)
def test_notebook_has_written_questions_with_model_answers(name):
    nb = nbformat.read(source_notebook(name), as_version=4)
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert answers, f"{name}.ipynb has no written question with a model answer"
    for c in answers:
        assert c.source.startswith("### BEGIN SOLUTION") and c.source.endswith("### END SOLUTION")
        assert c.metadata.nbgrader["grade_id"].startswith("answer_")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_sources_have_no_outputs(name):
    nb = nbformat.read(source_notebook(name), as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, f"{name}.ipynb: clear the outputs"


def test_the_course_questions_are_asked():
    text = " ".join(
        src.lower() for name in NAMES for src in cells(source_notebook(name).read_bytes(), "markdown")
    )
    for topic in ("relu", "overfitting", "receptive field", "1x1"):
        assert topic in text


# --- release through nbgrader ---------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_release_clears_answers_and_keeps_the_code(name):
    a = COURSE.assignment(name)
    src = source_notebook(name).read_bytes()
    released = build_release(a)[f"{a.path}.ipynb"]
    assert b"BEGIN SOLUTION" not in released
    assert cells(released, "code") == cells(src, "code")
    nb = nbformat.reads(released.decode(), as_version=4)
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert answers and all(c.source == "YOUR ANSWER HERE" for c in answers)
    # The committed release is this one, byte for byte.
    assert (a.release_dir / f"{a.path}.ipynb").read_bytes() == released


def test_release_is_deterministic_and_drops_outputs():
    src = source_notebook("hw3").read_bytes()
    nb = nbformat.reads(src.decode(), as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.outputs = [nbformat.v4.new_output("stream", name="stdout", text="left over\n")]
    first.execution_count = 7
    with_outputs = nbformat.writes(nb).encode()
    assert release_notebook(with_outputs) == release_notebook(src) == release_notebook(src)


def test_release_removes_hidden_tests_and_solution_code():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    solution = nbformat.v4.new_code_cell(
        "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
    )
    solution.metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False,
                                     "grade_id": "f", "schema_version": 3}
    tests = nbformat.v4.new_code_cell(
        "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(3) == 6\n### END HIDDEN TESTS"
    )
    tests.metadata["nbgrader"] = {"solution": False, "grade": True, "locked": True, "points": 1,
                                  "grade_id": "f_tests", "schema_version": 3}
    nb.cells = [solution, tests]
    for i, c in enumerate(nb.cells):
        c.id = f"cell-{i}"
    out = release_notebook(nbformat.writes(nb).encode())
    code = cells(out, "code")
    assert "return 2 * x" not in code[0] and "raise NotImplementedError" in code[0]
    assert code[1].strip() == "assert f(1) == 2"


def test_solution_region_outside_a_solution_cell_is_an_error():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    cell.id = "c0"
    nb.cells = [cell]
    with pytest.raises(ReleaseError, match="bad.ipynb"):
        release_notebook(nbformat.writes(nb).encode(), "bad.ipynb")


def test_missing_nbgrader_names_the_instructor_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "nbgrader.preprocessors", None)
    with pytest.raises(NotebookError, match=r"instructor"):
        release_notebook(source_notebook("hw3").read_bytes())


def test_verify_finds_a_model_answer_leaked_into_the_release():
    a = COURSE.assignment("hw1")
    release = build_release(a)
    assert find_leaks(a, release) == []
    release["hw1.ipynb"] = source_notebook("hw1").read_bytes()
    leaks = find_leaks(a, release)
    assert leaks and all("hw1.ipynb" in line for line in leaks)


# --- check("part") --------------------------------------------------------------------------

def test_check_passes_on_the_reference(capsys):
    folder = COURSE.assignment("hw3").solution_dir
    assert check("schedules", points=10, folder=folder) == 10.0
    out = capsys.readouterr().out
    assert "pass  test_schedule_step_decay_values" in out and "FAIL" not in out


def test_check_on_the_stub_says_what_fails():
    result = run_part("adam", COURSE.assignment("hw3").release_dir)
    assert result.cases >= 2 and result.passed == 0 and result.fraction == 0.0
    table = format_result(result)
    assert "FAIL  test_adam_one_step" in table and "not implemented yet" in table


def test_check_part_without_visible_tests_says_so():
    result = run_part("conventions", COURSE.assignment("hw3").solution_dir)
    assert result.tests == [] and "only the hidden tests" in format_result(result)


def test_check_unknown_part_lists_the_parts():
    with pytest.raises(NotebookError, match="its parts are: sgd, momentum"):
        run_part("sgdd", COURSE.assignment("hw3").solution_dir)


def test_check_reads_a_parts_file_outside_the_course(tmp_path):
    (tmp_path / "calc.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "test_calc.py").write_text(
        "def test_double_one(student):\n    assert student.double(1) == 2\n\n"
        "def test_double_bad(student):\n    assert student.double(2) == 5\n\n"
        "def test_other(student):\n    assert True\n"
    )
    (tmp_path / "deepgrade_parts.json").write_text(json.dumps(
        {"assignment": "calc", "parts": {"double": {"title": "Doubling", "tests": ["test_double_*"]}}}
    ))
    result = run_part("double", tmp_path)
    assert [(t.name, t.ok) for t in result.tests] == [
        ("test_calc.py::test_double_one", True), ("test_calc.py::test_double_bad", False)]
    assert "assert 4 == 5" in result.tests[1].message


# --- every notebook runs top to bottom against the reference --------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_source_notebook_runs_against_the_reference(name, quiet_kernel):
    a = COURSE.assignment(name)
    nb = nbformat.read(source_notebook(name), as_version=4)
    start = time.perf_counter()
    execute(nb, a.solution_dir)
    elapsed = time.perf_counter() - start
    text = stream_text(nb)
    assert "FAIL" not in text, text
    for part in a.parts:
        assert f"{part}: " in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.outputs)
    assert images >= 1, f"{name}.ipynb shows no plot"
    assert elapsed < 120, f"{name}.ipynb took {elapsed:.0f} s; keep notebooks fast"


def test_released_notebook_runs_against_the_reference(tmp_path, quiet_kernel):
    a = COURSE.assignment("hw3")
    released = tmp_path / "hw3.ipynb"
    shutil.copyfile(a.release_dir / "hw3.ipynb", released)
    nb = execute(nbformat.read(released, as_version=4), a.solution_dir)
    assert "FAIL" not in stream_text(nb)

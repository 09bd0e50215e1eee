"""`deepgrade publish`: the student repository, its leak check, and a student's first steps in it.

- A toy course in tmp_path (stable while the real assignments are being rewritten): the layout,
  the minimal grading.yml, reruns that add an assignment and keep student work, refusals.
- The real course, copied and released in tmp_path: the published repository of all five
  assignments passes its leak check, and one leak of each kind, seeded on purpose into a copy
  of it, is caught. The seeds are picked from whatever the release holds, not from fixed text.
- `slow`: hw1 as a student gets it, in a fresh virtual environment made with the README's own
  command (pip installs torch and the engine's dependencies: one to four minutes).
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from autograder.cli import main
from autograder.config import ConfigError, find_config, load_config
from autograder.publish import (
    ENGINE_DIR, HIDDEN_ONLY, MANIFEST, WORKFLOW, PublishError, add_engine, content, publish, select,
)
from autograder.release import find_blocks, write_release
from autograder.verify import LeakCheck, find_published_leaks

ENGINE = Path(__file__).resolve().parent.parent / "autograder"

# --- a toy course --------------------------------------------------------------------------------

MODULE = '''"""Toy module: scale an array."""
import numpy as np


def scale(x, factor):
    """Return x * factor, of the shape of x."""
    ### BEGIN SOLUTION
    scaled_result = np.multiply(x, factor)
    return scaled_result
    ### END SOLUTION
'''
VISIBLE = '''import numpy as np


def test_scale_doubles(student):
    assert np.allclose(student.scale(np.ones(3), 2.0), 2.0)
'''
HIDDEN = '''import numpy as np
import pytest

SECRET_SHAPES = [(3, 17, 5), (11, 4, 9), (23, 6, 2)]


@pytest.mark.parametrize("shape", SECRET_SHAPES)
def test_scale_secret_shapes(student, shape):
    got = student.scale(np.full(shape, 1.5), -4.0)
    assert got.shape == shape and np.allclose(got, -6.0)


def test_secret_only_part(student):
    assert student.scale(np.zeros(2), 9.0).sum() == 0.0
'''
CATALOG = '''bugs:
  - name: scale-adds-instead
    parts: [scaling]
    description: scale adds the factor to x instead of multiplying by it
    file: toy.py
    find: "scaled_result = np.multiply(x, factor)"
    replace: "scaled_result = np.add(x, factor)"
'''


def _assignment(root: Path, hw: str) -> None:
    sol = root / "solutions" / hw
    (sol / "hidden" / "bugs").mkdir(parents=True)
    (sol / "toy.py").write_text(MODULE)
    (sol / "test_toy.py").write_text(VISIBLE)
    (sol / "README.md").write_text(f"# {hw}: scaling\n\nImplement `scale` in toy.py.\n")
    (sol / "hidden" / f"test_toy_hidden_{hw}.py").write_text(HIDDEN)
    (sol / "hidden" / "bugs" / "catalog.yml").write_text(CATALOG)


def make_toy(root: Path) -> Path:
    """A course of three toy assignments, listed out of order in grading.yml (hw10 before hw2),
    released into assignments/. Returns grading.yml."""
    root.mkdir(parents=True, exist_ok=True)
    blocks = {}
    for hw in ("hw10", "hw2", "hw1"):
        _assignment(root, hw)
        blocks[hw] = {
            "title": f"Toy {hw}", "files": ["toy.py"], "forbidden_imports": ["scipy"],
            "parts": {"scaling": {"title": "Scaling", "points": 6, "tests": ["test_scale_*"]},
                      "secret": {"title": "Graded by hidden tests", "points": 4, "tests": ["test_secret_*"]}},
        }
    (root / "grading.yml").write_text(yaml.safe_dump({"course": {"title": "Toy course"},
                                                      "assignments": blocks}, sort_keys=False))
    course = load_config(root / "grading.yml")
    for a in course.assignments.values():
        write_release(a)
    return root / "grading.yml"


@pytest.fixture(scope="module")
def toy_template(tmp_path_factory):
    """(grading.yml of a toy course, a folder with hw1 published into it): built once, copied
    by each test, so the engine's wheel is built once for the module."""
    base = tmp_path_factory.mktemp("toy")
    config = make_toy(base / "course")
    report = publish(load_config(config), base / "published", ["hw1"])
    assert not report.blocked and not report.leaks.problems, report.leaks.problems
    return config, base / "published"


@pytest.fixture
def toy(toy_template, tmp_path):
    """(course, a published folder holding hw1): fresh copies for one test."""
    config, published = toy_template
    shutil.copytree(config.parent, tmp_path / "course")
    shutil.copytree(published, tmp_path / "published")
    return load_config(tmp_path / "course" / "grading.yml"), tmp_path / "published"


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org",
                           "-c", "init.defaultBranch=main", *args],
                          cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


# --- the student repository ----------------------------------------------------------------------

def test_published_folder_holds_the_release_the_engine_and_nothing_else(toy):
    course, out = toy
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    wheel = next(f for f in files if f.startswith(f"{ENGINE_DIR}/"))
    assert files == sorted([
        ".gitignore", MANIFEST, "README.md", "grading.yml", "requirements.txt", wheel,
        "assignments/hw1/README.md", "assignments/hw1/test_toy.py", "assignments/hw1/toy.py",
    ])
    stub = (out / "assignments/hw1/toy.py").read_text()
    assert "raise NotImplementedError" in stub and "np.multiply" not in stub
    # The wheel carries the whole engine, at a version that names its content.
    version = re.match(r"engine/deepgrade-(\S+?)-py3-none-any\.whl$", wheel).group(1)
    assert re.fullmatch(r"\d+(\.\d+)*\+g[0-9a-f]{12}", version)
    assert f"deepgrade=={version}" in (out / "requirements.txt").read_text().splitlines()
    with zipfile.ZipFile(out / wheel) as zf:
        members = set(zf.namelist())
        entry_points = zf.read(f"deepgrade-{version}.dist-info/entry_points.txt").decode()
    engine = {f"autograder/{p.relative_to(ENGINE).as_posix()}" for p in ENGINE.rglob("*.py")
              if "__pycache__" not in p.parts}
    assert engine <= members, sorted(engine - members)
    assert "deepgrade = autograder.plugin" in entry_points and "autograder.cli:main" in entry_points
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["assignments"] == ["hw1"] and set(manifest["files"]) == set(files) - {MANIFEST}
    assert not find_published_leaks(course, out).problems


def test_published_grading_yml_names_visible_tests_only(toy):
    course, out = toy
    published = load_config(out / "grading.yml", check_tree=False)
    assert list(published.assignments) == ["hw1"]
    hw1 = published.assignment("hw1")
    source = course.assignment("hw1")
    assert {n: p.points for n, p in hw1.parts.items()} == {n: p.points for n, p in source.parts.items()}
    assert hw1.files == source.files and hw1.forbidden_imports == ["scipy"]
    assert hw1.parts["scaling"].tests == ("test_scale_*",)
    # The secret part has hidden tests only: it keeps its points, and names none of them.
    assert hw1.parts["secret"].tests == (HIDDEN_ONLY,)
    text = (out / "grading.yml").read_text()
    assert "test_secret" not in text and "hidden_visibility" not in text
    assert hw1.part_of("test_toy.py", "test_scale_doubles") == "scaling"
    # The students' engine finds this grading.yml from inside the repository.
    assert find_config(out / "assignments" / "hw1") == out / "grading.yml"


def test_assignments_are_chosen_in_course_order(toy):
    course, _ = toy
    assert list(course.assignments) == ["hw10", "hw2", "hw1"]  # as grading.yml lists them
    assert select(course) == ["hw1", "hw2", "hw10"]
    assert select(course, through="hw2") == ["hw1", "hw2"]
    assert select(course, ["hw10", "hw1"]) == ["hw1", "hw10"]
    with pytest.raises(PublishError, match="not both"):
        select(course, ["hw1"], through="hw2")
    with pytest.raises(ConfigError, match="no assignment 'hw3'"):
        select(course, through="hw3")


def test_next_week_adds_an_assignment_and_a_pull_keeps_student_work(toy, tmp_path):
    course, template = toy
    git(template, "init", "-q")
    git(template, "add", "-A")
    git(template, "commit", "-q", "-m", "Publish hw1")
    student = tmp_path / "student"
    git(tmp_path, "clone", "-q", str(template), str(student))
    work = (student / "assignments/hw1/toy.py").read_text().replace(
        "    # YOUR CODE HERE\n    raise NotImplementedError\n", "    return x * factor  # mine\n")
    (student / "assignments/hw1/toy.py").write_text(work)
    git(student, "commit", "-q", "-am", "my scale")

    report = publish(course, template, select(course, through="hw2"))
    assert report.assignments == ["hw1", "hw2"] and not report.leaks.problems
    assert not report.wheel_built  # the engine did not change: its wheel is reused
    assert all(rel.startswith("assignments/hw2/") or rel in ("README.md", "grading.yml", MANIFEST)
               for rel in report.written), report.written
    git(template, "add", "-A")
    git(template, "commit", "-q", "-m", "Publish hw2")

    git(student, "pull", "-q", "--no-rebase", "origin", "main")
    assert (student / "assignments/hw1/toy.py").read_text() == work
    assert (student / "assignments/hw2/toy.py").is_file()
    assert list(load_config(student / "grading.yml", check_tree=False).assignments) == ["hw1", "hw2"]
    # --assignments adds to what was published before; nothing is taken away.
    assert publish(course, template, ["hw10"]).assignments == ["hw1", "hw2", "hw10"]


def test_publishing_into_a_clone_keeps_what_changed_since(toy):
    course, out = toy
    mine = out / "assignments/hw1/toy.py"
    mine.write_text(mine.read_text() + "\n# my work\n")
    (out / "notes.md").write_text("my notes\n")
    report = publish(course, out, ["hw2"])
    assert report.kept == ["assignments/hw1/toy.py"]
    assert mine.read_text().endswith("# my work\n") and (out / "notes.md").read_text() == "my notes\n"
    assert (out / "assignments/hw2/toy.py").is_file()


def test_files_the_release_dropped_are_removed_unless_changed(toy):
    course, out = toy
    hw1 = course.assignment("hw1")
    for name in ("extra.md", "kept.md"):
        (hw1.solution_dir / name).write_text(f"{name}\n")
    write_release(hw1)
    publish(course, out, ["hw1"])
    (out / "assignments/hw1/kept.md").write_text("edited\n")
    for name in ("extra.md", "kept.md"):
        (hw1.solution_dir / name).unlink()
    write_release(hw1)
    report = publish(course, out, ["hw1"])
    assert report.removed == ["assignments/hw1/extra.md"] and report.kept == ["assignments/hw1/kept.md"]
    assert not (out / "assignments/hw1/extra.md").exists()
    assert (out / "assignments/hw1/kept.md").read_text() == "edited\n"


def test_a_folder_publish_did_not_write_is_refused(toy, tmp_path):
    course, _ = toy
    other = tmp_path / "other"
    other.mkdir()
    (other / "README.md").write_text("someone's readme\n")
    res = run_cli("publish", str(other), "--config", str(course.path))
    assert res.exit_code == 2
    assert f"has no {MANIFEST}" in res.output and "README.md" in res.output
    assert [p.name for p in other.iterdir()] == ["README.md"]
    assert (other / "README.md").read_text() == "someone's readme\n"


def test_a_stale_release_is_refused(toy):
    course, out = toy
    hw1 = course.assignment("hw1")
    (hw1.solution_dir / "toy.py").write_text(MODULE + "\n\ndef later():\n    return 1\n")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = run_cli("publish", str(out), "--config", str(course.path))
    assert res.exit_code == 2
    assert "differs: assignments/hw1/toy.py" in res.output and "deepgrade release hw1" in res.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_leaking_release_is_not_written(toy):
    course, out = toy
    hw2 = course.assignment("hw2")
    with open(hw2.solution_dir / "README.md", "a") as fh:
        fh.write("\nHint: test_scale_secret_shapes is the one to beat.\n")
    write_release(hw2)
    res = run_cli("publish", str(out), "--assignments", "hw2", "--config", str(course.path))
    assert res.exit_code == 1
    assert "nothing written" in res.output and "names hidden test test_scale_secret_shapes" in res.output
    assert not (out / "assignments/hw2").exists()
    assert json.loads((out / MANIFEST).read_text())["assignments"] == ["hw1"]


def test_ci_workflow_grades_the_newest_assignment_and_stays(toy):
    course, out = toy
    res = run_cli("publish", str(out), "--through", "hw2", "--ci", "--config", str(course.path))
    assert res.exit_code == 0, res.output
    flow = yaml.safe_load((out / WORKFLOW).read_text())
    assert flow["env"]["ASSIGNMENT"] == "hw2"
    publish(course, out, ["hw10"])  # a rerun without --ci keeps the workflow, and moves it on
    assert yaml.safe_load((out / WORKFLOW).read_text())["env"]["ASSIGNMENT"] == "hw10"


def test_verify_published_exit_status(toy):
    course, out = toy
    res = run_cli("verify", "--published", str(out), "--config", str(course.path))
    assert res.exit_code == 0 and "ok" in res.output, res.output
    (out / "assignments/hw1/hidden").mkdir()
    shutil.copy(course.assignment("hw1").hidden_dir / "test_toy_hidden_hw1.py", out / "assignments/hw1/hidden")
    res = run_cli("verify", "--published", str(out), "--config", str(course.path))
    assert res.exit_code == 1
    assert "inside a hidden/ folder" in res.output and "a copy of solutions/hw1/hidden/" in res.output
    res = run_cli("verify", "hw1", "--published", str(out), "--config", str(course.path))
    assert res.exit_code == 2
    # The published grading.yml has no solutions/ beside it: a check against it would pass
    # whatever the folder holds, so it is refused.
    res = run_cli("verify", "--published", str(out), "--config", str(out / "grading.yml"))
    assert res.exit_code == 2 and "nothing to check for" in res.output


# --- the real course: every kind of leak, seeded -----------------------------------------------

@pytest.fixture(scope="module")
def real(root, tmp_path_factory):
    """(course, LeakCheck, a published folder of all its assignments, the problems the check
    finds there before any seed): the course's grading.yml and solutions/ copied and released
    in tmp_path, so the test sees a consistent release while assignments/ is being edited. The
    folder is written from publish's content without its leak gate, so that seeds can be
    compared with it even while the course itself leaks."""
    base = tmp_path_factory.mktemp("real")
    shutil.copyfile(root / "grading.yml", base / "grading.yml")
    shutil.copytree(root / "solutions", base / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    course = load_config(base / "grading.yml")
    for a in course.assignments.values():
        write_release(a)
    names = select(course)
    files = content(course, names)
    add_engine(files, base / "published")
    out = base / "published"
    for rel, data in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    check = LeakCheck(course)
    return course, check, out, set(check.scan(out).problems)


def test_published_course_passes_its_leak_check(real):
    """The target: the published repository of all five assignments leaks nothing."""
    _, _, _, baseline = real
    assert not baseline, "\n".join(sorted(baseline))


@pytest.fixture
def seeded(real, tmp_path):
    """A copy of the published course to seed, and a function giving the problems the check
    finds there that the unseeded folder does not have."""
    course, check, out, baseline = real
    copy = tmp_path / "published"
    shutil.copytree(out, copy)

    def new_problems() -> list[str]:
        return [p for p in check.scan(copy).problems if p not in baseline]

    return course, copy, new_problems


def _first(course, want):
    """The first (assignment, value) for which want(assignment) gives a value, in course order."""
    for name in select(course):
        value = want(course.assignment(name))
        if value:
            return course.assignment(name), value
    pytest.skip(f"no assignment has {want.__doc__}")


def _released_text(a) -> str:
    """Every text file of the whole course's release (a seed must be something none shows)."""
    root = a.release_dir.parent
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file())


def _solution_line(a):
    """a solution line that no released file shows"""
    released = _released_text(a)
    lines = [line.strip() for f in a.files for b in find_blocks((a.solution_dir / f).read_text(), f)
             for line in b.lines if line.strip() and not line.strip().startswith("#")
             and line.strip() not in released]
    return max(lines, key=len) if lines else None


def _hidden_tests(a):
    """a hidden test file"""
    return sorted(a.hidden_dir.glob("test_*.py"))


def _notebook(a):
    """a notebook"""
    return sorted(a.release_dir.glob("*.ipynb"))


def test_seeded_solution_block_is_caught(seeded):
    course, out, new = seeded
    a, _ = _first(course, _solution_line)
    graded = next(f for f in a.files if find_blocks((a.solution_dir / f).read_text(), f))
    reference = (a.solution_dir / graded).read_text()
    (out / "assignments" / a.path / graded).write_text(reference + "\n# edited\n")  # not a byte copy
    problems = new()
    assert any("a solution marker: ### BEGIN SOLUTION" in p for p in problems), problems
    assert any(f"a line of a solution (solutions/{a.path}/{graded}:" in p for p in problems), problems


def test_seeded_fragment_of_a_reference_module_is_caught(seeded):
    course, out, new = seeded
    a, line = _first(course, _solution_line)
    test_file = sorted((out / "assignments" / a.path).glob("test_*.py"))[0]
    test_file.write_text(test_file.read_text() + f'\n\ndef helper(x):\n    """Worked example:\n    {line}\n    """\n')
    problems = new()
    assert any(p.startswith(f"assignments/{a.path}/{test_file.name}:") and "a line of a solution" in p
               and line[:60] in p for p in problems), problems


def test_seeded_reference_module_under_another_name_is_caught(seeded):
    course, out, new = seeded
    a, _ = _first(course, _solution_line)
    shutil.copyfile(a.solution_dir / a.files[0], out / "assignments" / a.path / "answers.py")
    problems = new()
    assert f"assignments/{a.path}/answers.py: a copy of solutions/{a.path}/{a.files[0]} (a reference module)" \
        in problems, problems


def test_seeded_hidden_test_file_is_caught(seeded):
    course, out, new = seeded
    a, files = _first(course, _hidden_tests)
    visible = sorted((out / "assignments" / a.path).glob("test_*.py"))[0]
    visible.write_text(visible.read_text() + "\n\n" + files[0].read_text())  # appended to a visible test
    problems = new()
    assert any(p.startswith(f"assignments/{a.path}/{visible.name}:") and "a line of a hidden test" in p
               for p in problems), problems
    assert any("names hidden test" in p for p in problems), problems


def test_seeded_hidden_test_name_is_caught(seeded):
    course, out, new = seeded

    def hidden_name(a):
        """a hidden test whose name the release does not show"""
        shown = _released_text(a)
        for path in _hidden_tests(a) or []:
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef) and node.name.startswith("test") and node.name not in shown:
                    return node.name
        return None

    a, name = _first(course, hidden_name)
    readme = out / "assignments" / a.path / "README.md"
    readme.write_text(readme.read_text() + f"\nHint: make `{name}` pass first.\n")
    problems = new()
    assert any(p.startswith(f"assignments/{a.path}/README.md:") and f"names hidden test {name} " in p
               for p in problems), problems


def test_seeded_input_constants_of_a_hidden_test_are_caught(seeded):
    """A hidden test's constants, written another way (one per line, no brackets), still count."""
    course, out, new = seeded

    def numbers(value) -> list | None:
        if isinstance(value, (list, tuple)):
            parts = [numbers(v) for v in value]
            return None if None in parts else [n for p in parts for n in p]
        return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def constants(a):
        """a hidden test with a literal of six or more numbers that no released file shows"""
        shown = [float(n) for n in re.findall(r"(?<![\w.])\d+\.?\d*(?:e-?\d+)?", _released_text(a))]
        best = []
        for path in _hidden_tests(a) or []:
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.List, ast.Tuple)):
                    try:
                        flat = numbers(ast.literal_eval(node)) or []
                    except ValueError:
                        continue
                    size = [abs(float(n)) for n in flat]  # the release's numbers, unsigned
                    public = any(shown[i:i + len(size)] == size for i in range(len(shown)))
                    if len(flat) > len(best) and not public:
                        best = flat
        return [f"{float(n):g}" for n in best] if len(best) >= 6 else None

    a, found = _first(course, constants)
    readme = out / "assignments" / a.path / "README.md"
    readme.write_text(readme.read_text() + "\nTry these:\n" + "\n".join(f"- {n}" for n in found) + "\n")
    problems = new()
    assert any(p.startswith(f"assignments/{a.path}/README.md:") and "the input constants of a hidden test" in p
               for p in problems), problems


def test_seeded_bug_catalog_is_caught(seeded):
    course, out, new = seeded

    def catalog(a):
        """a bug catalog"""
        return sorted(a.hidden_dir.glob("bugs/*.yml"))

    a, catalogs = _first(course, catalog)
    shutil.copyfile(catalogs[0], out / "assignments" / a.path / "bugs.yml")
    description = yaml.safe_load(catalogs[0].read_text())["bugs"][0]["description"]
    readme = out / "README.md"
    readme.write_text(readme.read_text() + f"\nCommon mistake: {description}.\n")
    problems = new()
    assert any(p.startswith(f"assignments/{a.path}/bugs.yml: a copy of solutions/{a.path}/hidden/bugs/")
               for p in problems), problems
    assert any(p.startswith("README.md:") and "text of a bug catalog" in p for p in problems), problems


def test_seeded_quiz_answer_is_caught(seeded):
    course, out, new = seeded

    def answer(a):
        """a notebook with a written answer"""
        for path in sorted(a.solution_dir.glob("*.ipynb")):
            for cell in json.loads(path.read_text())["cells"]:
                text = "".join(cell["source"])
                if cell["cell_type"] == "markdown" and "BEGIN SOLUTION" in text:
                    body = text.split("BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
                    return path.name, max(body.splitlines(), key=len)
        return None

    a, (name, line) = _first(course, answer)
    nb_path = out / "assignments" / a.path / name
    nb = json.loads(nb_path.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "markdown" and "YOUR ANSWER HERE" in "".join(c["source"]))
    cell["source"] = [line]
    nb_path.write_text(json.dumps(nb, indent=1))
    problems = new()
    assert any(p.startswith(f"assignments/{a.path}/{name} (cell ") and "a line of a quiz answer" in p
               for p in problems), problems


def test_seeded_notebook_outputs_are_caught(seeded):
    course, out, new = seeded
    a, notebooks = _first(course, _notebook)
    path = out / "assignments" / a.path / notebooks[0].name
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["loss 0.0213\n"]}]
    path.write_text(json.dumps(nb, indent=1))
    problems = new()
    assert any(p.startswith(f"assignments/{a.path}/{path.name} (cell ") and "holds notebook outputs" in p
               for p in problems), problems


def test_seeded_solutions_paths_are_caught(seeded):
    course, out, new = seeded
    a = course.assignment(select(course)[0])
    test_file = sorted((out / "assignments" / a.path).glob("test_*.py"))[0]
    test_file.write_text(test_file.read_text() + f"\n# compare with ../../solutions/{a.path}/{a.files[0]}\n")
    (out / "notes.txt").write_text(f"copied from {course.root / 'solutions'}\n")
    problems = new()
    assert any(p.startswith(f"assignments/{a.path}/{test_file.name}:")
               and f"a path into the instructor's solutions: solutions/{a.path}" in p for p in problems), problems
    assert any(p.startswith("notes.txt:1: a path into the instructor's solutions") for p in problems), problems


def test_seeded_reference_code_in_the_engine_wheel_is_caught(seeded):
    course, out, new = seeded
    a, line = _first(course, _solution_line)
    wheel = next((out / ENGINE_DIR).glob("*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(wheel, "w") as zf:
        for info, data in members:
            if info.filename == "autograder/gradcheck.py":
                data += f'\n\ndef _example(x):\n    """For instance:\n    {line}\n    """\n'.encode()
            zf.writestr(info, data)
    problems = new()
    assert any(p.startswith(f"{ENGINE_DIR}/{wheel.name}/autograder/gradcheck.py:") and "a line of a solution"
               in p for p in problems), problems


def test_seeded_hidden_test_pattern_in_grading_yml_is_caught(seeded):
    course, out, new = seeded
    a, files = _first(course, _hidden_tests)
    name = next(n.name for n in ast.walk(ast.parse(files[0].read_text()))
                if isinstance(n, ast.FunctionDef) and n.name.startswith("test"))
    config = yaml.safe_load((out / "grading.yml").read_text())
    part = next(iter(config["assignments"][a.name]["parts"].values()))
    part["tests"].append(name[:-2] + "*")  # a pattern that matches the hidden test only
    (out / "grading.yml").write_text(yaml.safe_dump(config))
    problems = new()
    assert any(p.startswith(f"grading.yml: assignments.{a.name}.parts.") and "matches only hidden tests" in p
               for p in problems), problems


# --- as a student gets it -----------------------------------------------------------------------

def _setup_command(readme: str) -> str:
    """The one set-up command of the student README (the first bash block of its set-up section)."""
    section = readme.split("## Set up", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", section, re.S).group(1).strip()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_hw1_as_a_student_gets_it(real, root, tmp_path_factory):
    """Publish hw1, copy it where no instructor checkout is near, set it up with the README's
    command in a fresh virtual environment (pip installs torch and every dependency: the
    minutes this test costs), run the visible tests, `deepgrade check` and `deepgrade submit`;
    the instructor's `deepgrade grade` scores the submission exactly as it scores the stubs."""
    course, _, _, _ = real
    template = tmp_path_factory.mktemp("template") / "course-student"
    report = publish(course, template, ["hw1"])
    assert not report.blocked and not report.leaks.problems, report.leaks.problems
    repo = tmp_path_factory.mktemp("laptop") / "dl-course"
    shutil.copytree(template, repo)
    assert find_config(repo.parent) is None and not (repo / "solutions").exists()

    # A student's shell: no instructor virtual environment on PATH, no PYTHONPATH.
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = path if shutil.which("python3", path=path) else os.environ["PATH"]

    def shell(command: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=timeout)

    setup = shell(_setup_command((repo / "README.md").read_text()))
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    student = ". .venv/bin/activate && "

    run = shell(student + "python -m pytest assignments/hw1 -q -p no:cacheprovider", timeout=600)
    assert run.returncode == 1, run.stdout[-3000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ failed", summary) and "passed" not in summary and "error" not in summary, summary
    assert "NotImplementedError" in run.stdout

    check = shell(student + "deepgrade check hw1", timeout=600)
    assert check.returncode in (0, 1), check.stdout + check.stderr  # 1: visible tests fail
    assert "Traceback" not in check.stdout + check.stderr
    for part in course.assignment("hw1").parts:
        assert part in check.stdout

    submit = shell(student + "deepgrade submit hw1 -o hw1-submission.zip")
    assert submit.returncode == 0, submit.stdout + submit.stderr
    assert "YOUR CODE HERE" in submit.stderr  # the untouched stubs are pointed out

    def grade(what: Path, out: Path) -> dict:
        proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(what), "-a", "hw1", "-q",
                               "--config", str(course.path), "-o", str(out)],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(out.read_text())

    graded = grade(repo / "hw1-submission.zip", repo.parent / "zip.json")
    stubs = grade(repo / "assignments" / "hw1", repo.parent / "stubs.json")
    assert graded["score"] == stubs["score"]
    assert [(t["name"], t["status"], t["score"]) for t in graded["tests"]] == \
        [(t["name"], t["status"], t["score"]) for t in stubs["tests"]]

"""`deepgrade export nbgrader`: the course it writes works with the real nbgrader."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbgrader")

from autograder.config import load_config  # noqa: E402
from autograder.exports.nbgrader import export_nbgrader  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COURSE = load_config(ROOT / "grading.yml", check_tree=False)


def run(cmd: list[str], cwd: Path, scratch: Path) -> subprocess.CompletedProcess:
    # nbgrader starts alembic and Jupyter kernels by name: this interpreter's bin/ comes first.
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               PYTHONDONTWRITEBYTECODE="1", JUPYTER_DATA_DIR=str(scratch / "jupyter-data"))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def grade_cells(path: Path) -> dict[str, dict]:
    nb = nbformat.read(path, as_version=4)
    return {c.metadata.nbgrader["grade_id"]: c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def test_export_writes_a_course(tmp_path):
    files = export_nbgrader(COURSE, ["hw1", "hw3"], tmp_path)
    assert "nbgrader_config.py" in files and "source/hw1/hw1.ipynb" in files
    config = (tmp_path / "nbgrader_config.py").read_text()
    assert "'hw1': ['layers.py', 'fc_net.py', 'house_prices.py', 'answers.yml']" in config
    # Students get stubs: the modules in source/ are the released ones, never the reference.
    a = COURSE.assignment("hw1")
    assert (tmp_path / "source/hw1/layers.py").read_bytes() == (a.release_dir / "layers.py").read_bytes()
    assert not (tmp_path / "source/hw1/hidden").exists()
    cells = grade_cells(tmp_path / "source/hw1/hw1.ipynb")
    checks = {k: c for k, c in cells.items() if k.startswith("check_")}
    assert sorted(checks) == sorted(f"check_{p}" for p in a.parts)
    for part, spec in a.parts.items():
        cell = checks[f"check_{part}"]
        assert cell.metadata.nbgrader["points"] == spec.points and cell.metadata.nbgrader["locked"]
        assert "### BEGIN HIDDEN TESTS" in cell.source and f"graded_part({part!r}" in cell.source
    parts = json.loads((tmp_path / "source/hw1/deepgrade_parts.json").read_text())
    assert parts["assignment"] == "hw1" and set(parts["parts"]) == set(a.parts)
    assert "tamper-proof" in (tmp_path / "README.md").read_text()


def test_cli_export_names_an_unknown_assignment(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "autograder", "export", "nbgrader", str(tmp_path), "hw9"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "no assignment 'hw9'" in proc.stderr


def test_nbgrader_generates_and_autogrades_the_export(tmp_path):
    course_dir = tmp_path / "course"
    run([sys.executable, "-m", "autograder", "export", "nbgrader", str(course_dir), "hw3"], ROOT, tmp_path)
    run([sys.executable, "-m", "nbgrader", "generate_assignment", "hw3"], course_dir, tmp_path)

    released = course_dir / "release/hw3/hw3.ipynb"
    text = released.read_text()
    assert "HIDDEN TESTS" not in text and "graded_part" not in text and "BEGIN SOLUTION" not in text
    assert (course_dir / "release/hw3/optim.py").read_bytes() == (
        COURSE.assignment("hw3").release_dir / "optim.py").read_bytes()

    for student, module in [("alice", ROOT / "solutions/hw3/optim.py"),
                            ("bob", course_dir / "release/hw3/optim.py")]:
        folder = course_dir / "submitted" / student / "hw3"
        folder.mkdir(parents=True)
        shutil.copy(released, folder)
        shutil.copy(module, folder)
        shutil.copy(module.parent / "answers.yml", folder)  # the reference's answers; the release's blanks
    run([sys.executable, "-m", "nbgrader", "autograde", "hw3"], course_dir, tmp_path)

    from nbgrader.api import Gradebook

    total = sum(p.points for p in COURSE.assignment("hw3").parts.values())
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        alice = gb.find_submission("hw3", "alice")
        bob = gb.find_submission("hw3", "bob")
        assert (alice.score, alice.max_score) == (pytest.approx(total), pytest.approx(total))
        assert bob.score == 0


def test_export_carries_the_engine_and_names_a_real_first_assignment(tmp_path):
    # nbgrader knows an assignment by its folder (grading.yml's path), not by its name; with
    # no names given, the first assignment is the first in order.
    import yaml
    from click.testing import CliRunner

    from autograder.cli import main

    base = tmp_path / "course"
    data = yaml.safe_load(COURSE.path.read_text())
    data["assignments"] = {"hw3": {**data["assignments"]["hw3"], "path": "optimizers"}}
    (base / "solutions").mkdir(parents=True)
    shutil.copytree(COURSE.assignment("hw3").solution_dir, base / "solutions" / "optimizers")
    (base / "solutions" / "optimizers" / "hw3.ipynb").rename(base / "solutions" / "optimizers" / "optimizers.ipynb")
    (base / "grading.yml").write_text(yaml.safe_dump(data))
    out = tmp_path / "export"
    res = CliRunner().invoke(main, ["export", "nbgrader", str(out), "--config", str(base / "grading.yml")])
    assert res.exit_code == 0, res.output
    assert res.output.rstrip().endswith("nbgrader generate_assignment optimizers"), res.output
    assert (out / "source/optimizers/optimizers.ipynb").is_file()
    requirements = (out / "requirements.txt").read_text().splitlines()
    assert "--find-links wheels" in requirements
    assert any(line.startswith("nbgrader==") for line in requirements)
    wheels = list((out / "wheels").glob("deepgrade-*-py3-none-any.whl"))
    assert len(wheels) == 1 and any(line == f"deepgrade=={wheels[0].name.split('-')[1]}" for line in requirements)
    readme = (out / "README.md").read_text()
    assert "nbgrader generate_assignment optimizers" in readme and "pip install -r requirements.txt" in readme
    assert "Attribute 'checksum' for cell check_<part> has changed!" in readme


@pytest.mark.slow
def test_the_course_installs_its_grader_in_a_fresh_environment(tmp_path, fresh_venv):
    # The graders' environment made from the export's own requirements.txt (nothing of this
    # checkout's environment), then nbgrader's own commands run from it.
    course_dir = tmp_path / "course"
    run([sys.executable, "-m", "autograder", "export", "nbgrader", str(course_dir), "hw3"], ROOT, tmp_path)
    fresh_venv.pip_install("-r", "requirements.txt", cwd=course_dir)
    assert fresh_venv.folder in fresh_venv.imports_deepgrade_from(tmp_path).parents
    nbgrader = [str(fresh_venv.python), "-m", "nbgrader"]
    scratch = {"JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data")}
    fresh_venv.run([*nbgrader, "generate_assignment", "hw3"], course_dir, **scratch)
    folder = course_dir / "submitted" / "alice" / "hw3"
    folder.mkdir(parents=True)
    shutil.copy(course_dir / "release/hw3/hw3.ipynb", folder)
    shutil.copy(COURSE.assignment("hw3").solution_dir / "optim.py", folder)
    shutil.copy(COURSE.assignment("hw3").solution_dir / "answers.yml", folder)
    fresh_venv.run([*nbgrader, "autograde", "hw3"], course_dir, **scratch)
    fresh_venv.run([str(fresh_venv.python), "-c", (
        "from nbgrader.api import Gradebook\n"
        "with Gradebook('sqlite:///gradebook.db') as gb:\n"
        "    s = gb.find_submission('hw3', 'alice')\n"
        "    print(s.score, s.max_score)\n"
        "    assert s.score == s.max_score > 0, (s.score, s.max_score)\n")], course_dir)

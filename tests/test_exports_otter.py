"""`deepgrade export otter`: test files that the real `otter run` grades as deepgrade would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("otter")

from autograder.config import load_config  # noqa: E402
from autograder.exports.otter import export_otter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COURSE = load_config(ROOT / "grading.yml", check_tree=False)


def run(cmd: list[str], cwd: Path, scratch: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               PYTHONDONTWRITEBYTECODE="1", JUPYTER_DATA_DIR=str(scratch / "jupyter-data"))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_export_has_a_test_file_per_part_with_points_and_hidden_flags(tmp_path):
    from otter.test_files import OKTestFile

    a = COURSE.assignment("hw1")
    export_otter(COURSE, a, tmp_path)
    hidden_names = {path.name for path in a.hidden_dir.glob("test_*.py")}
    for part, spec in a.parts.items():
        test = OKTestFile.from_file(str(tmp_path / "tests" / f"{part}.py"))
        assert sum(c.points for c in test.test_cases) == pytest.approx(spec.points)
        for case in test.test_cases:
            assert case.hidden == (case.name.split("::")[0] in hidden_names)
    assert any(c.hidden for c in OKTestFile.from_file(str(tmp_path / "tests/affine.py")).test_cases)
    readme = (tmp_path / "README.md").read_text()
    assert "in the student's own Python process" in readme
    assert "`deepgrade grade SUBMISSION -a hw1` is the tamper-proof path" in readme
    assert (tmp_path / "solutions/hw1/hidden/test_layers_hidden.py").is_file()
    exported = load_config(tmp_path / "grading.yml")
    assert list(exported.assignments) == ["hw1"]


def test_export_ships_the_support_files_into_each_submission(tmp_path):
    a = COURSE.assignment("hw5")
    export_otter(COURSE, a, tmp_path)
    for name in a.support_files:
        assert (tmp_path / name).read_bytes() == (a.solution_dir / name).read_bytes()
        assert f"grading.yml solutions wheels {name}" in (tmp_path / "README.md").read_text()


def _zip(path: Path, members: dict[str, Path]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, src in members.items():
            zf.write(src, name)
    return path


def test_otter_run_gives_the_reference_full_marks_and_the_stub_zero(tmp_path):
    a = COURSE.assignment("hw3")
    out = tmp_path / "otter"
    run([sys.executable, "-m", "autograder", "export", "otter", "hw3", str(out)], ROOT, tmp_path)
    run([sys.executable, "-m", "otter", "generate", "-t", "tests", "grading.yml", "solutions"], out, tmp_path)
    assert (out / "autograder.zip").is_file()

    notebook = a.release_dir / "hw3.ipynb"
    total = sum(p.points for p in a.parts.values())
    for label, module, expected in [("reference", a.solution_dir / "optim.py", total),
                                    ("stub", a.release_dir / "optim.py", 0.0)]:
        # Each brings its answers.yml: the reference's answers, the release's blanks.
        submission = _zip(tmp_path / f"{label}.zip", {"hw3.ipynb": notebook, "optim.py": module,
                                                      "answers.yml": module.parent / "answers.yml"})
        results_dir = tmp_path / f"results-{label}"
        results_dir.mkdir()
        run([sys.executable, "-m", "otter", "run", "-a", str(out / "autograder.zip"),
             "-o", str(results_dir), "--no-logo", str(submission)], tmp_path, tmp_path)
        results = json.loads((results_dir / "results.json").read_text())
        scored = [t for t in results["tests"] if "max_score" in t]
        assert sorted(t["name"] for t in scored) == sorted(a.parts)
        assert sum(t["max_score"] for t in scored) == pytest.approx(total)
        assert sum(t["score"] for t in scored) == pytest.approx(expected), label


def test_export_carries_the_engine_as_a_wheel_its_requirements_install(tmp_path):
    a = COURSE.assignment("hw3")
    files = export_otter(COURSE, a, tmp_path)
    wheels = [f for f in files if f.startswith("wheels/") and f.endswith(".whl")]
    assert len(wheels) == 1
    with zipfile.ZipFile(tmp_path / wheels[0]) as zf:
        names = zf.namelist()
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "autograder/notebook.py" in names and "autograder/plugin.py" in names
    assert "deepgrade = autograder.plugin" in entry_points  # the plugin the cases' pytest needs
    requirements = (tmp_path / "requirements.txt").read_text().splitlines()
    assert "--find-links wheels" in requirements and "--find-links files/wheels" in requirements
    assert any(line.startswith("deepgrade==") for line in requirements)
    assert " wheels" in (tmp_path / "README.md").read_text()  # `otter generate ... wheels`


def test_each_parametrized_case_is_an_otter_case_worth_its_share(tmp_path):
    # otter scores a case all or nothing: one case per test function would give a function
    # with 1 of 5 cases failing 0 points, where deepgrade gives 4/5 of them.
    from otter.test_files import OKTestFile

    from autograder.exports.otter import collect
    from autograder.scoring import shares

    a = COURSE.assignment("hw3")
    export_otter(COURSE, a, tmp_path)
    items = collect(a)
    for part, spec in a.parts.items():
        mine = [f"{i['file']}::{i['name']}" for i in items if i["part"] == part]
        cases = OKTestFile.from_file(str(tmp_path / "tests" / f"{part}.py")).test_cases
        assert [c.name for c in cases] == mine
        assert [c.points for c in cases] == shares(spec.points, len(mine))
    assert any("[" in c.name for c in OKTestFile.from_file(str(tmp_path / "tests/adam.py")).test_cases)


def _environment_pip_requirements(autograder_zip: Path) -> list[str]:
    """The pip requirements of the conda environment that otter's grading image is built with."""
    import yaml

    with zipfile.ZipFile(autograder_zip) as zf:
        env = yaml.safe_load(zf.read("environment.yml"))
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)


@pytest.mark.slow
def test_the_autograder_zip_installs_its_grader_in_a_fresh_environment(tmp_path, fresh_venv):
    # Otter's image build: unpack the zip to .../source and pip-install the environment's pip
    # requirements from there (conda writes them to a file beside environment.yml). Then grade
    # with that environment's otter: nothing of this checkout's environment is used.
    a = COURSE.assignment("hw3")
    out = tmp_path / "otter"
    run([sys.executable, "-m", "autograder", "export", "otter", "hw3", str(out)], ROOT, tmp_path)
    run([sys.executable, "-m", "otter", "generate", "-t", "tests", "grading.yml", "solutions", "wheels"], out, tmp_path)
    source = tmp_path / "image" / "source"
    with zipfile.ZipFile(out / "autograder.zip") as zf:
        zf.extractall(source)
    requirements = source / "requirements.from-environment.txt"
    requirements.write_text("\n".join(_environment_pip_requirements(out / "autograder.zip")) + "\n")
    fresh_venv.pip_install("-r", str(requirements), cwd=source)
    assert fresh_venv.folder in fresh_venv.imports_deepgrade_from(tmp_path).parents

    submission = _zip(tmp_path / "reference.zip", {"hw3.ipynb": a.release_dir / "hw3.ipynb",
                                                   "optim.py": a.solution_dir / "optim.py",
                                                   "answers.yml": a.solution_dir / "answers.yml"})
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    fresh_venv.run([str(fresh_venv.python), "-m", "otter", "run", "-a", str(out / "autograder.zip"),
                    "-o", str(results_dir), "--no-logo", str(submission)], tmp_path,
                   JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"))
    results = json.loads((results_dir / "results.json").read_text())
    total = sum(p.points for p in a.parts.values())
    assert sum(t["score"] for t in results["tests"] if "max_score" in t) == pytest.approx(total)

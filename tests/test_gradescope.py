"""`deepgrade gradescope hw1`: the autograder zip, and its run_autograder in a simulated
/autograder tree (the reference gets full marks, the stub 0)."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from autograder.cli import main
from autograder.release import make_stub

SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())


@pytest.fixture(scope="module")
def hw1(course):
    return course.assignment("hw1")


@pytest.fixture(scope="module")
def autograder_zip(course, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "autograder.zip"
    res = CliRunner().invoke(main, ["gradescope", "hw1", "-o", str(out), "--config", str(course.path)])
    assert res.exit_code == 0, res.output
    return out


def test_zip_holds_the_scripts_engine_and_this_assignment_only(autograder_zip, hw1):
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert {"setup.sh", "run_autograder", "pyproject.toml", "grading.yml",
            "autograder/__init__.py", "autograder/cli.py", "autograder/plugin.py"} <= names
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    for f in hw1.files:
        assert f"solutions/hw1/{f}" in names
    assert any(n.startswith("solutions/hw1/hidden/test_") for n in names)
    assert not [n for n in names if n.startswith("solutions/") and not n.startswith("solutions/hw1/")]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_grading_yml_in_the_zip_lists_only_this_assignment(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as zf:
        config = yaml.safe_load(zf.read("grading.yml"))
    assert list(config["assignments"]) == ["hw1"]
    assert "defaults" in config


def test_setup_installs_pinned_dependencies_with_cpu_torch(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as zf:
        setup = zf.read("setup.sh").decode()
        pyproject = zf.read("pyproject.toml").decode()
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup
    assert "torch==" in setup
    deps = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    pins = [line.strip().strip('",') for line in deps.splitlines() if line.strip()]
    assert pins and all("==" in p for p in pins)
    assert any(p.startswith("numpy==") for p in pins)
    assert 'deepgrade = "autograder.plugin"' in pyproject  # the pytest plugin is registered


def test_zip_is_reproducible(course, autograder_zip, tmp_path):
    again = tmp_path / "again.zip"
    res = CliRunner().invoke(main, ["gradescope", "hw1", "-o", str(again), "--config", str(course.path)])
    assert res.exit_code == 0
    assert again.read_bytes() == autograder_zip.read_bytes()


def run_autograder(autograder_zip: Path, root: Path, files: dict[str, str]) -> dict:
    """Unpack the zip as Gradescope does (into ROOT/source), put `files` in ROOT/submission,
    run run_autograder with this interpreter (setup.sh is not run) and return results.json."""
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(root / "source")
    (root / "submission").mkdir()
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    env = {**os.environ, "DEEPGRADE_AUTOGRADER_ROOT": str(root), "DEEPGRADE_PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((root / "results" / "results.json").read_text())


def test_run_autograder_gives_the_reference_full_marks(autograder_zip, hw1, tmp_path):
    results = run_autograder(autograder_zip, tmp_path, {f: (hw1.solution_dir / f).read_text() for f in hw1.files})
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == pytest.approx(100)
    assert results["tests"] and all(t["status"] == "passed" for t in results["tests"])


def test_run_autograder_gives_the_stub_zero(autograder_zip, hw1, tmp_path):
    stub = {f: make_stub((hw1.solution_dir / f).read_text(), f) for f in hw1.files}
    results = run_autograder(autograder_zip, tmp_path, stub)
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 0
    assert not [t for t in results["tests"] if t["status"] == "passed"]


def test_unknown_assignment_is_a_usage_error(course, tmp_path):
    res = CliRunner().invoke(main, ["gradescope", "hw99", "-o", str(tmp_path / "a.zip"), "--config", str(course.path)])
    assert res.exit_code == 2
    assert "no assignment 'hw99'" in res.output
    assert not (tmp_path / "a.zip").exists()


@pytest.mark.parametrize("script", ["setup.sh", "run_autograder"])
def test_scripts_are_valid_bash(autograder_zip, tmp_path, script):
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extract(script, tmp_path)
    proc = subprocess.run(["bash", "-n", str(tmp_path / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    if shutil.which("shellcheck"):
        proc = subprocess.run(["shellcheck", str(tmp_path / script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout

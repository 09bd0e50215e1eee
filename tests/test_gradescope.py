"""`deepgrade gradescope hw1`: the autograder zip, and its run_autograder in a simulated
/autograder tree (the reference gets full marks, the stub 0); its setup.sh in a fresh
environment, and its pins on every Python of Gradescope's base images (slow)."""
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
from autograder.exports.gradescope import SUPPORTED_PYTHONS
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
    assert results["score"] == pytest.approx(sum(p.points for p in hw1.parts.values()))  # the quiz's 12 too
    assert results["tests"] and all(t["status"] == "passed" for t in results["tests"])


def test_run_autograder_gives_the_stub_zero(autograder_zip, hw1, tmp_path):
    # The release as students get it: stubbed modules and a blank answers.yml.
    stub = {f: (hw1.release_dir / f).read_text() for f in hw1.files}
    assert all(stub[f] == make_stub((hw1.solution_dir / f).read_text(), f) for f in hw1.files if f.endswith(".py"))
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


def _pins(autograder_zip: Path) -> tuple[list[str], str]:
    """(the pinned dependencies of the zip's pyproject.toml, the torch pin of its setup.sh)."""
    with zipfile.ZipFile(autograder_zip) as zf:
        pyproject = zf.read("pyproject.toml").decode()
        setup = zf.read("setup.sh").decode()
    deps = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    pins = [line.strip().strip('",') for line in deps.splitlines() if line.strip()]
    torch = next(word for line in setup.splitlines() for word in line.split() if word.startswith("torch=="))
    return pins, torch


def test_cli_names_the_base_images(course, tmp_path):
    res = CliRunner().invoke(main, ["gradescope", "hw3", "-o", str(tmp_path / "a.zip"), "--config", str(course.path)])
    assert res.exit_code == 0, res.output
    assert "Ubuntu 22.04 (Python 3.10) or Ubuntu 24.04 (Python 3.12)" in res.output
    assert "Python 3.10 to 3.13" in res.output
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert "Ubuntu 22.04 (Python 3.10)" in zf.read("setup.sh").decode()


# Gradescope's images are x86_64 Ubuntu; 22.04 has glibc 2.35: any manylinux wheel up to that.
PLATFORMS = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64",
             *(f"manylinux_2_{minor}_x86_64" for minor in range(5, 36))]


@pytest.mark.parametrize("python", SUPPORTED_PYTHONS)
def test_every_pin_of_setup_sh_has_a_build_for_each_supported_python(autograder_zip, tmp_path, python):
    # The exact pins setup.sh installs, resolved as binaries for that Python and Gradescope's
    # platforms, with everything they need: what `pip download --only-binary=:all:
    # --python-version` resolves, from the wheels' metadata alone (a dry run), so the proof
    # costs seconds, not the 2 GB of torch's wheels for four Pythons. torch comes from PyPI here
    # (its CPU index is not reachable from every CI machine); its CPU builds cover the same Pythons.
    pins, torch = _pins(autograder_zip)
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
           "--target", str(tmp_path / "target"), "--report", str(report), "--only-binary=:all:",
           "--python-version", python, *(arg for p in PLATFORMS for arg in ("--platform", p)), *pins, torch]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"Python {python}: {proc.stderr[-3000:]}"
    chosen = {i["metadata"]["name"].lower(): i for i in json.loads(report.read_text())["install"]}
    for pin in [*pins, torch]:
        name, version = pin.split("==")
        wheel = chosen[name.lower()]["download_info"]["url"].rsplit("/", 1)[-1]
        # A local build of the pin (2.13.0+cpu, from a machine's own wheel folder) is the pin too.
        got = chosen[name.lower()]["metadata"]["version"].split("+")[0]
        assert got == version and wheel.endswith(".whl"), (pin, wheel)


@pytest.mark.slow
def test_setup_sh_installs_the_grader_in_a_fresh_environment(course, tmp_path):
    # Gradescope's image build, in a simulated /autograder: setup.sh makes its own virtual
    # environment from the zip alone; run_autograder then grades with it (no DEEPGRADE_PYTHON).
    archive = tmp_path / "hw3.zip"
    res = CliRunner().invoke(main, ["gradescope", "hw3", "-o", str(archive), "--config", str(course.path)])
    assert res.exit_code == 0, res.output
    root = tmp_path / "autograder"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(root / "source")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(DEEPGRADE_AUTOGRADER_ROOT=str(root), PIP_NO_COMPILE="1", PIP_RETRIES="0", PIP_QUIET="1")
    proc = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    where = subprocess.run([str(root / "venv" / "bin" / "python"), "-c",
                            "import autograder; print(autograder.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).is_relative_to(root / "venv")

    hw3 = course.assignment("hw3")
    (root / "submission").mkdir()
    for name in hw3.files:  # optim.py and the quiz's answers.yml
        shutil.copyfile(hw3.solution_dir / name, root / "submission" / name)
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == pytest.approx(sum(p.points for p in hw3.parts.values()))

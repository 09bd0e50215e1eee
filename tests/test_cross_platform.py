"""One grade, whichever platform grades it: the same partly-correct submissions of hw3 get the
same score, part by part, from `deepgrade grade`, Gradescope's run_autograder (the exported zip,
in a simulated /autograder tree), `otter run` (the otter export) and `nbgrader autograde` (the
nbgrader export), to 0.01 points.

Each submission is the hw3 reference with some functions wrapped to go wrong in some of their
tests only (the otter export once scored a test function all-or-nothing over its parametrized
cases), in different parts. The course is copied at the start, so edits elsewhere during the
run do not matter; the mutations name only the functions of the handout's API.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

pytest.importorskip("otter")
pytest.importorskip("nbgrader")

from autograder.config import load_config  # noqa: E402
from autograder.exports.gradescope import build_autograder  # noqa: E402
from autograder.exports.nbgrader import export_nbgrader  # noqa: E402
from autograder.exports.otter import export_otter, generate_command  # noqa: E402
from autograder.grade import grade  # noqa: E402
from autograder.release import build_release  # noqa: E402

# Its module fixtures grade every platform once: under pytest-xdist, keep the tests together.
pytestmark = pytest.mark.xdist_group("cross_platform")

HW = "hw3"
TOLERANCE = 0.01
# Code appended to the reference's optim.py: each student's functions go wrong on some inputs.
SUBMISSIONS = {
    # clipping never clips (right only when the norm is already below the limit); no Nesterov.
    "alice": '''
_ref_clip = clip_grad_norm
def clip_grad_norm(grads, max_norm):
    _, total = _ref_clip(grads, max_norm)
    return {k: np.array(g, dtype=float) for k, g in grads.items()}, total

def nesterov_momentum(w, dw, config=None):
    raise NotImplementedError
''',
    # cosine annealing ignores lr_min (right when it is 0); RMSProp always decays at 0.99.
    "bob": '''
_ref_cosine = cosine_schedule
def cosine_schedule(lr0, epoch, total_epochs, lr_min=0.0):
    return _ref_cosine(lr0, epoch, total_epochs, 0.0)

_ref_rmsprop = rmsprop
def rmsprop(w, dw, config=None):
    if config is not None and "decay_rate" in config:
        given = config["decay_rate"]
        config["decay_rate"] = 0.99
        next_w, config = _ref_rmsprop(w, dw, config)
        config["decay_rate"] = given
        return next_w, config
    return _ref_rmsprop(w, dw, config)
''',
    # momentum ignores a momentum other than 0.9; step decay always drops every 10 epochs.
    "carol": '''
_ref_momentum = sgd_momentum
def sgd_momentum(w, dw, config=None):
    if config is not None and config.get("momentum", 0.9) != 0.9:
        given = config["momentum"]
        config["momentum"] = 0.9
        next_w, config = _ref_momentum(w, dw, config)
        config["momentum"] = given
        return next_w, config
    return _ref_momentum(w, dw, config)

_ref_step = step_decay
def step_decay(lr0, epoch, drop=0.5, every=10):
    return _ref_step(lr0, epoch, drop, 10)
''',
}


def _env(scratch: Path) -> dict[str, str]:
    # The platforms start alembic, kernels and pytest by name: this interpreter's bin/ first.
    # An empty Jupyter data folder: "python3" is this interpreter's kernel.
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
                PYTHONDONTWRITEBYTECODE="1", JUPYTER_DATA_DIR=str(scratch / "jupyter-data"))


def run(cmd: list[str], cwd: Path, scratch: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env or _env(scratch), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("platforms")


@pytest.fixture(scope="module")
def course(scratch, root):
    """A copy of the course holding only hw3."""
    base = scratch / "course"
    shutil.copytree(root / "solutions" / HW, base / "solutions" / HW, ignore=shutil.ignore_patterns("__pycache__"))
    data = yaml.safe_load((root / "grading.yml").read_text())
    data["assignments"] = {HW: data["assignments"][HW]}
    (base / "grading.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(base / "grading.yml")


@pytest.fixture(scope="module")
def hw(course):
    return course.assignment(HW)


@pytest.fixture(scope="module")
def modules(hw) -> dict[str, dict[str, bytes]]:
    """student -> graded file -> content."""
    reference = (hw.solution_dir / "optim.py").read_bytes()
    return {s: {"optim.py": reference + b"\n\n" + code.encode()} for s, code in SUBMISSIONS.items()}


@pytest.fixture(scope="module")
def notebook(hw) -> bytes:
    """The students' notebook, as released."""
    return build_release(hw)[f"{hw.path}.ipynb"]


@pytest.fixture(scope="module")
def deepgrade_scores(course, hw, modules, scratch) -> dict[str, dict]:
    out = {}
    for student, files in modules.items():
        folder = scratch / "deepgrade" / student
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        card = grade(course, hw, folder).scorecard
        out[student] = {"parts": {p.name: p.score for p in card.parts}, "card": card}
    return out


@pytest.fixture(scope="module")
def gradescope_scores(course, hw, modules, scratch) -> dict[str, dict]:
    """run_autograder of the exported zip, with this interpreter (setup.sh is not run here:
    tests/test_gradescope.py installs it in a fresh environment)."""
    archive = scratch / "autograder.zip"
    build_autograder(course, hw, archive)
    out = {}
    for student, files in modules.items():
        root = scratch / "gradescope" / student
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(root / "source")
        (root / "submission").mkdir()
        for name, data in files.items():
            (root / "submission" / name).write_bytes(data)
        env = {**_env(scratch), "DEEPGRADE_AUTOGRADER_ROOT": str(root), "DEEPGRADE_PYTHON": sys.executable}
        run(["bash", str(root / "source" / "run_autograder")], root, scratch, env)
        results = json.loads((root / "results" / "results.json").read_text())
        out[student] = {"parts": {p: v["score"] for p, v in results["extra_data"]["parts"].items()},
                        "total": results["score"]}
    return out


@pytest.fixture(scope="module")
def otter_scores(course, hw, modules, notebook, scratch) -> dict[str, dict]:
    folder = scratch / "otter"
    export_otter(course, hw, folder)
    run([sys.executable, "-m", *generate_command(hw).split()], folder, scratch)
    out = {}
    for student, files in modules.items():
        submission = scratch / f"otter-{student}.zip"
        with zipfile.ZipFile(submission, "w") as zf:
            zf.writestr(f"{hw.path}.ipynb", notebook)
            for name, data in files.items():
                zf.writestr(name, data)
        results_dir = scratch / f"otter-results-{student}"
        results_dir.mkdir()
        run([sys.executable, "-m", "otter", "run", "-a", str(folder / "autograder.zip"), "-o", str(results_dir),
             "--no-logo", str(submission)], scratch, scratch)
        results = json.loads((results_dir / "results.json").read_text())
        parts = {t["name"]: t["score"] for t in results["tests"] if "max_score" in t}
        out[student] = {"parts": parts, "total": sum(parts.values())}
    return out


@pytest.fixture(scope="module")
def nbgrader_run(course, hw, modules, scratch) -> tuple[dict[str, dict], str]:
    """(student -> scores from the gradebook, autograde's log)."""
    folder = scratch / "nbgrader"
    export_nbgrader(course, [HW], folder)
    run([sys.executable, "-m", "nbgrader", "generate_assignment", hw.path], folder, scratch)
    released = folder / "release" / hw.path / f"{hw.path}.ipynb"
    for student, files in modules.items():
        target = folder / "submitted" / student / hw.path
        target.mkdir(parents=True)
        shutil.copy(released, target)
        for name, data in files.items():
            (target / name).write_bytes(data)
    proc = run([sys.executable, "-m", "nbgrader", "autograde", hw.path], folder, scratch)
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{folder / 'gradebook.db'}") as gb:
        for student in modules:
            submission = gb.find_submission(hw.path, student)
            grades = submission.notebooks[0].grades
            parts = {g.name.removeprefix("check_"): g.score for g in grades if g.name.startswith("check_")}
            out[student] = {"parts": parts, "total": submission.score}
    return out, proc.stdout + proc.stderr


@pytest.mark.parametrize("student", sorted(SUBMISSIONS))
def test_every_platform_gives_the_same_partial_credit(student, hw, deepgrade_scores, gradescope_scores,
                                                      otter_scores, nbgrader_run):
    expected = deepgrade_scores[student]["parts"]
    total = sum(expected.values())
    platforms = {"gradescope": gradescope_scores[student], "otter": otter_scores[student],
                 "nbgrader": nbgrader_run[0][student]}
    for platform, got in platforms.items():
        assert set(got["parts"]) == set(hw.parts), platform
        for part, points in expected.items():
            assert got["parts"][part] == pytest.approx(points, abs=TOLERANCE), (platform, part, got["parts"])
        assert got["total"] == pytest.approx(total, abs=TOLERANCE), platform


def test_the_submissions_are_partly_right_in_several_parts(hw, deepgrade_scores):
    # What makes the comparison worth something: partial totals, failures in different parts,
    # and parametrized tests with some cases passed and some failed.
    max_score = sum(p.points for p in hw.parts.values())
    failing_parts = set()
    mixed = set()
    for student, graded in deepgrade_scores.items():
        card = graded["card"]
        assert 0 < card.score < max_score, student
        failing = {t.part for t in card.tests if t.status == "failed"}
        assert failing, student
        failing_parts |= failing
        by_function: dict[str, set[str]] = {}
        for t in card.tests:
            by_function.setdefault(t.outcome.nodeid.split("[")[0], set()).add(t.status)
        mixed |= {f for f, statuses in by_function.items() if {"passed", "failed"} <= statuses}
    assert len(failing_parts) >= 3
    assert mixed, "no parametrized test is partly passed: the comparison would not see per-case credit"


def test_nbgrader_warns_only_about_the_check_cells_it_restores(hw, nbgrader_run):
    # The export's README explains these warnings: one per check cell and student, from the
    # hidden region nbgrader puts back; any other "has changed" would mean an edited cell.
    _, log = nbgrader_run
    changed = [line for line in log.splitlines() if "has changed" in line]
    for line in changed:
        assert "Attribute 'checksum' for cell check_" in line, line
    assert len(changed) <= len(SUBMISSIONS) * len(hw.parts)

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
        assert f"grading.yml solutions {name}" in (tmp_path / "README.md").read_text()


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
        submission = _zip(tmp_path / f"{label}.zip", {"hw3.ipynb": notebook, "optim.py": module})
        results_dir = tmp_path / f"results-{label}"
        results_dir.mkdir()
        run([sys.executable, "-m", "otter", "run", "-a", str(out / "autograder.zip"),
             "-o", str(results_dir), "--no-logo", str(submission)], tmp_path, tmp_path)
        results = json.loads((results_dir / "results.json").read_text())
        scored = [t for t in results["tests"] if "max_score" in t]
        assert sorted(t["name"] for t in scored) == sorted(a.parts)
        assert sum(t["max_score"] for t in scored) == pytest.approx(total)
        assert sum(t["score"] for t in scored) == pytest.approx(expected), label

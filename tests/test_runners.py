"""GPU routing end to end on a toy course: a CPU run defers the GPU part, a GPU run grades only
it, and `deepgrade merge` makes one valid result of the two."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

from autograder.config import load_config
from autograder.grade import grade
from autograder.merge import merge_files

SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())

TOY = "def double(x):\n    return 2 * x\n"
TESTS = '''
import pytest

def test_cpu_double(student):
    assert student.double(2) == 4

def test_cpu_double_negative(student):
    assert student.double(-3) == -6

@pytest.mark.gpu
def test_gpu_marked(student):
    assert student.double(0.5) == 1.0

def test_gpu_by_part(student):
    # Not marked: it is a GPU test because its part has runner: gpu.
    assert student.double(10) == 20
'''


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("runners")
    sol = root / "solutions" / "toy"
    sol.mkdir(parents=True)
    (sol / "toy.py").write_text(TOY)
    (sol / "test_toy.py").write_text(TESTS)
    (root / "grading.yml").write_text(textwrap.dedent("""
        assignments:
          toy:
            title: Toy with a GPU part
            files: [toy.py]
            parts:
              cpu_part: {points: 6, tests: [test_cpu_*]}
              gpu_part: {points: 4, tests: [test_gpu_*], runner: gpu}
    """))
    course = load_config(root / "grading.yml")
    return course, course.assignment("toy"), sol


def statuses(path):
    data = json.loads(Path(path).read_text())
    jsonschema.validate(data, SCHEMA)
    return data, {t["extra_data"]["nodeid"].split("::")[-1]: t["extra_data"]["deepgrade_status"]
                  for t in data["tests"]}


def test_cpu_run_defers_the_gpu_part(toy, tmp_path):
    course, a, sol = toy
    result = grade(course, a, sol, tmp_path / "cpu.json", runner="cpu")
    data, status = statuses(tmp_path / "cpu.json")
    assert status == {"test_cpu_double": "passed", "test_cpu_double_negative": "passed",
                      "test_gpu_marked": "deferred", "test_gpu_by_part": "deferred"}
    assert result.scorecard.score == pytest.approx(6) and data["score"] == pytest.approx(6)
    deferred = [t for t in data["tests"] if "deferred" in t["tags"]]
    assert len(deferred) == 2 and all("GPU runner" in t["output"] and t["score"] == 0 for t in deferred)


def test_gpu_run_grades_only_the_gpu_part_and_merge_makes_one_result(toy, tmp_path):
    course, a, sol = toy
    grade(course, a, sol, tmp_path / "cpu.json", runner="cpu")
    # The engine runs the GPU part when told to: these toy tests need no CUDA device.
    grade(course, a, sol, tmp_path / "gpu.json", runner="gpu")
    gpu, status = statuses(tmp_path / "gpu.json")
    assert status == {"test_cpu_double": "deferred", "test_cpu_double_negative": "deferred",
                      "test_gpu_marked": "passed", "test_gpu_by_part": "passed"}
    assert gpu["score"] == pytest.approx(4)
    merged = merge_files(tmp_path / "cpu.json", tmp_path / "gpu.json")
    jsonschema.validate(merged, SCHEMA)
    assert merged["score"] == pytest.approx(10)
    assert {t["extra_data"]["deepgrade_status"] for t in merged["tests"]} == {"passed"}
    assert merged["extra_data"]["merged"] == {"gpu_tests_filled": 2, "still_deferred": 0}


def test_default_runner_follows_the_machine(toy, tmp_path):
    import torch

    course, a, sol = toy
    grade(course, a, sol, tmp_path / "auto.json")
    _, status = statuses(tmp_path / "auto.json")
    expected = "passed" if torch.cuda.is_available() else "deferred"
    assert status["test_gpu_marked"] == status["test_gpu_by_part"] == expected
    assert status["test_cpu_double"] == "passed"


def test_cli_runner_gpu_needs_cuda(toy, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    course, a, sol = toy
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(sol), "-a", "toy", "--runner", "gpu",
                           "--config", str(course.path), "-o", str(tmp_path / "r.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
    assert not (tmp_path / "r.json").exists()

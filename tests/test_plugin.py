"""The pytest plugin as students meet it: `pytest assignments/hwN`, part markers, gpu skips."""
import json
import re
import shutil
import subprocess
import sys

import pytest


def run_pytest(args, cwd, tmp_path):
    report = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "--deepgrade-report", str(report)],
        cwd=cwd, capture_output=True, text=True,
    )
    events = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    results = {e["nodeid"]: e for e in events if e["event"] == "result"}
    collected = next((e["items"] for e in events if e["event"] == "collected"), [])
    return proc, collected, results


@pytest.mark.parametrize("where", ["root", "inside"])
def test_stub_tests_all_fail_with_not_implemented(root, tmp_path, where):
    cwd, target = (root, "assignments/hw1") if where == "root" else (root / "assignments/hw1", ".")
    proc, collected, results = run_pytest([target], cwd, tmp_path)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "error" not in proc.stdout.splitlines()[-1], proc.stdout[-2000:]
    assert collected and len(results) == len(collected)
    for item in collected:
        res = results[item["nodeid"]]
        assert res["status"] == "failed" and res["when"] == "call", item["nodeid"]
        # The concept checks' answers.yml is released blank: each question says so.
        expected = "not answered yet" if item["part"] == "quiz" else "NotImplementedError"
        assert expected in res["message"], (item["nodeid"], res["message"])


def test_part_marker_selects_one_part(root, tmp_path):
    proc, collected, _ = run_pytest(["assignments/hw1", "-m", "affine"], root, tmp_path)
    assert collected and all(i["part"] == "affine" for i in collected)
    assert all("affine" in i["name"] for i in collected)


def test_solutions_copied_over_stubs_pass(root, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(root / "assignments/hw1", course / "assignments/hw1")
    shutil.copytree(root / "solutions/hw1", course / "solutions/hw1")
    shutil.copyfile(root / "grading.yml", course / "grading.yml")
    for module in [*(root / "solutions/hw1").glob("*.py"), root / "solutions/hw1/answers.yml"]:
        if not module.name.startswith("test_"):
            shutil.copyfile(module, course / "assignments/hw1" / module.name)
    proc, collected, results = run_pytest(["assignments/hw1"], course, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    # Questions with too few plausible answers for a local check are skipped as answered.
    assert collected and all(r["status"] == "passed" or (r["status"] == "skipped" and "is answered" in r["message"])
                             for r in results.values())


@pytest.fixture
def gpu_course(tmp_path):
    sol = tmp_path / "solutions" / "hwg"
    sol.mkdir(parents=True)
    (sol / "m.py").write_text("def one():\n    return 1\n")
    (sol / "test_m.py").write_text(
        "import pytest\n\n"
        "def test_cpu_one(student):\n    assert student.one() == 1\n\n"
        "@pytest.mark.gpu\ndef test_gpu_one(student):\n    assert student.one() == 1\n"
    )
    (tmp_path / "grading.yml").write_text(
        "assignments:\n  hwg:\n    title: G\n    files: [m.py]\n    parts:\n"
        "      cpu_part: {points: 1, tests: [test_cpu_*]}\n"
        "      gpu_part: {points: 1, tests: [test_gpu_*], runner: gpu}\n"
    )
    return tmp_path


def test_gpu_tests_are_skipped_with_reason_without_cuda(gpu_course, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the gpu test runs")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "solutions/hwg", "-rs", "-p", "no:cacheprovider"],
        cwd=gpu_course, capture_output=True, text=True,
    )
    assert proc.returncode == 0
    assert "1 passed, 1 skipped" in proc.stdout
    assert "needs a CUDA GPU" in proc.stdout


def test_rng_fixture_is_seeded_by_test_id(tmp_path):
    (tmp_path / "test_r.py").write_text(
        "def test_a(rng):\n    print('VALUE', rng.integers(1 << 30))\n"
    )
    outs = [
        subprocess.run([sys.executable, "-m", "pytest", "-s", "-q", "test_r.py", "-p", "no:cacheprovider"],
                       cwd=tmp_path, capture_output=True, text=True).stdout
        for _ in range(2)
    ]
    values = [line for out in outs for line in out.splitlines() if "VALUE" in line]
    assert len(values) == 2 and values[0] == values[1]


def test_a_function_that_changes_its_input_array_fails_only_the_rule_locally_as_in_grading(root, tmp_path):
    # relu_backward written as `dout[x <= 0] = 0` changes the array it is given: locally, as in
    # grading, it works on a copy, so its values are judged as they are; the write fails only
    # the conventions test of relu_backward, with the same words as in grading.
    course = tmp_path / "course"
    shutil.copytree(root / "assignments/hw1", course / "assignments/hw1")
    shutil.copyfile(root / "grading.yml", course / "grading.yml")
    for module in ("layers.py", "fc_net.py", "house_prices.py"):
        shutil.copyfile(root / "solutions/hw1" / module, course / "assignments/hw1" / module)
    with open(course / "assignments/hw1/layers.py", "a", encoding="utf-8") as fh:
        fh.write("\n\ndef relu_backward(dout, cache):\n    dout[cache <= 0] = 0\n    return dout\n")
    proc, collected, results = run_pytest(["assignments/hw1", "-k", "relu"], course, tmp_path)
    failed = {n: r for n, r in results.items() if r["status"] == "failed"}
    assert list(failed) == ["assignments/hw1/test_layers.py::test_inputs_unchanged[relu_backward]"], proc.stdout[-2000:]
    assert "relu_backward() changed the array it was given as argument 1" in next(iter(failed.values()))["message"]
    assert "InputChangedWarning: relu_backward() changed the array" in proc.stdout  # pytest's warnings summary


def test_a_failure_shows_the_test_line_the_students_line_and_the_message(tmp_path):
    # pytest's default options on a course: each failure is the test's line, the student's line
    # and the message (worst error, its index, the hint), not the engine's frames or the whole
    # source of each function on the way: at most 15 lines.
    course = tmp_path / "course"
    release = course / "assignments" / "hwt"
    release.mkdir(parents=True)
    (release / "calc.py").write_text(
        'def scale(x):\n    """Twice x, a long docstring\n' + "    that pytest would print\n" * 20 + '    """\n'
        "    return x * 2.02\n\n"
        "def todo(x):\n    # YOUR CODE HERE\n    raise NotImplementedError\n")
    (release / "test_calc.py").write_text(
        "import numpy as np\nimport pytest\n\nfrom autograder.gradcheck import assert_close\n\n\n"
        "def judge(f, x):\n    \"\"\"A helper of the test file.\"\"\"\n" + "    y = x.copy()\n" * 15 +
        "    assert_close(f(y), 2 * x, name='scale(x)')\n\n\n"
        "@pytest.mark.parametrize('n', [6, 12])\n"
        "def test_scale_values(student, n):\n    x = np.arange(1.0, n + 1.0)\n" + "    x = x + 0\n" * 15 +
        "    judge(student.scale, x)\n\n\n"
        "def test_todo(student):\n    assert student.todo(1) == 1\n")
    (course / "grading.yml").write_text(
        "assignments:\n  hwt:\n    title: T\n    files: [calc.py]\n    parts:\n"
        "      scale: {points: 1, tests: [test_scale_*]}\n      todo: {points: 1, tests: [test_todo]}\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "assignments/hwt", "-p", "no:cacheprovider"],
                          cwd=course, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout[-3000:]
    section = proc.stdout.split("= FAILURES =", 1)[1].split("short test summary info", 1)[0]
    failures = re.split(r"^_{3,} (\S+) _{3,}$", section, flags=re.M)[1:]
    reports = dict(zip(failures[::2], failures[1::2]))
    assert sorted(reports) == ["test_scale_values[12]", "test_scale_values[6]", "test_todo"], proc.stdout[-3000:]
    for name, text in reports.items():
        lines = [line for line in text.strip("\n").splitlines() if line.strip(" =")]
        assert len(lines) <= 15, f"{name}: {len(lines)} lines\n{text}"
        assert "autograder/" not in text, text  # no engine frame (loader, gradcheck)
    numeric = reports["test_scale_values[12]"]
    assert "worst relative error" in numeric and "at index (" in numeric and "hint:" in numeric, numeric
    assert "calc.py:" in reports["test_todo"] and "NotImplementedError" in reports["test_todo"]

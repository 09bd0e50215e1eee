"""The pytest plugin as students meet it: `pytest assignments/hwN`, part markers, gpu skips."""
import json
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
        assert "NotImplementedError" in res["message"], (item["nodeid"], res["message"])


def test_part_marker_selects_one_part(root, tmp_path):
    proc, collected, _ = run_pytest(["assignments/hw1", "-m", "affine"], root, tmp_path)
    assert collected and all(i["part"] == "affine" for i in collected)
    assert all("affine" in i["name"] for i in collected)


def test_solutions_copied_over_stubs_pass(root, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(root / "assignments/hw1", course / "assignments/hw1")
    shutil.copytree(root / "solutions/hw1", course / "solutions/hw1")
    shutil.copyfile(root / "grading.yml", course / "grading.yml")
    for module in (root / "solutions/hw1").glob("*.py"):
        if not module.name.startswith("test_"):
            shutil.copyfile(module, course / "assignments/hw1" / module.name)
    proc, collected, results = run_pytest(["assignments/hw1"], course, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert collected and all(r["status"] == "passed" for r in results.values())


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


def test_a_function_that_changes_its_input_array_fails_locally_as_in_grading(root, tmp_path):
    # relu_backward written as `dout[x <= 0] = 0` changes the caller's dout: locally the test
    # fails with the same words as in grading, where the worker never changes the test's arrays.
    course = tmp_path / "course"
    shutil.copytree(root / "assignments/hw1", course / "assignments/hw1")
    shutil.copyfile(root / "grading.yml", course / "grading.yml")
    for module in ("layers.py", "fc_net.py", "house_prices.py"):
        shutil.copyfile(root / "solutions/hw1" / module, course / "assignments/hw1" / module)
    with open(course / "assignments/hw1/layers.py", "a", encoding="utf-8") as fh:
        fh.write("\n\ndef relu_backward(dout, cache):\n    dout[cache <= 0] = 0\n    return dout\n")
    proc, collected, results = run_pytest(["assignments/hw1", "-k", "relu"], course, tmp_path)
    failed = {n: r for n, r in results.items() if r["status"] == "failed"}
    assert failed, proc.stdout[-2000:]
    for res in failed.values():
        assert "relu_backward() changed the array it was given as argument 1" in res["message"], res["message"]

"""grade-batch's warm pytest servers (autograder/warm.py): the same grades as a cold pytest per
submission, a fresh child and worker for each submission, and the cold path whenever the warm
one cannot be had (a collection error, the time limit, a child killed from outside).

Most tests use a toy course so that they stay fast; one grades hw1's affine part both ways.
"""
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import warm
from autograder.batch import read_results, run_batch
from autograder.config import load_config

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and /proc")

COUNTED = (
    "import os\n"
    "with open('imports', 'a') as fh:  # in the worker's own scratch folder\n"
    "    fh.write('x')\n"
    "IMPORTS = os.path.getsize('imports')\n\n"
    "def double(x):\n"
    "    import time\n"
    "    time.sleep(DELAY)\n"
    "    return 2 * x\n\n"
    "def imports():\n"
    "    return IMPORTS\n"
)
TESTS = (
    "import pytest\n\n"
    "@pytest.mark.parametrize('x', [1, 2, 3])\n"
    "def test_double(student, x):\n"
    "    assert student.double(x) == 2 * x\n\n"
    "def test_fresh_worker(student):\n"
    "    # one import per test, all in a worker of this submission's own: never more than 4\n"
    "    assert student.imports() <= 4\n"
)


def toy_course(root: Path, tests: str = TESTS, total: float = 1800) -> tuple:
    sol = root / "solutions" / "toy"
    sol.mkdir(parents=True)
    (sol / "toy.py").write_text(COUNTED.replace("DELAY", "0"))
    (sol / "test_toy.py").write_text(tests)
    (root / "grading.yml").write_text(
        "assignments:\n  toy:\n    title: Toy\n    files: [toy.py]\n"
        f"    timeouts: {{total: {total}}}\n"
        "    parts:\n      double: {points: 3, tests: [test_double]}\n"
        "      fresh: {points: 1, tests: [test_fresh_worker]}\n")
    course = load_config(root / "grading.yml")
    return course, course.assignment("toy")


def write_class(folder: Path, bodies: dict[str, str]) -> Path:
    for name, body in bodies.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "toy.py").write_text(body)
    return folder


@pytest.fixture
def served(monkeypatch):
    """The pid of the warm server of each grade, in order."""
    log = []
    real = warm.WarmServer.run

    def run(self, submission, *args, **kwargs):
        log.append(self.proc.pid)
        return real(self, submission, *args, **kwargs)

    monkeypatch.setattr(warm.WarmServer, "run", run)
    return log


def verdicts(out: Path) -> dict:
    """student -> [(test, status, score, output)] of their results.json."""
    table = {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        data = read_results(folder / "results.json")
        table[folder.name] = [(t["name"], t["status"], t["score"], t["output"]) for t in data["tests"]]
    return table


def test_warm_and_cold_give_the_same_grades_each_in_a_fresh_worker(tmp_path, served, monkeypatch):
    course, a = toy_course(tmp_path / "course")
    cls = write_class(tmp_path / "class", {"s0": COUNTED.replace("DELAY", "0"), "s1": COUNTED.replace("DELAY", "0"),
                                           "wrong": COUNTED.replace("DELAY", "0").replace("return 2 * x", "return x")})
    report = run_batch(course, a, cls, tmp_path / "warm", jobs=1)
    assert sorted(report.graded) == ["s0", "s1", "wrong"] and not report.failed
    # Every submission went through the one warm server, none cold.
    assert len(served) == 3 and len(set(served)) == 1
    monkeypatch.setenv("DEEPGRADE_COLD", "1")
    run_batch(course, a, cls, tmp_path / "cold", jobs=1)
    assert len(served) == 3
    got = verdicts(tmp_path / "warm")
    assert got == verdicts(tmp_path / "cold")
    # test_fresh_worker passed for everyone: no worker served two submissions.
    assert all({t[0]: t[1] for t in tests}["fresh: test_fresh_worker"] == "passed" for tests in got.values())
    assert read_results(tmp_path / "warm" / "wrong" / "results.json")["score"] == 1


def test_hw1_affine_is_graded_the_same_warm_and_cold(course, tmp_path, served, monkeypatch):
    hw1 = course.assignment("hw1")
    ref = {f: (hw1.solution_dir / f).read_text() for f in hw1.files}
    cls = tmp_path / "class"
    wrong_dw = ref["layers.py"].replace("dw = x_flat.T @ dout", "dw = 2 * x_flat.T @ dout")
    for name, files in (("ref", ref), ("half", {**ref, "layers.py": wrong_dw})):
        (cls / name).mkdir(parents=True)
        for f, text in files.items():
            (cls / name / f).write_text(text)
    run_batch(course, hw1, cls, tmp_path / "warm", jobs=1, select="affine")
    assert len(served) == 2
    monkeypatch.setenv("DEEPGRADE_COLD", "1")
    run_batch(course, hw1, cls, tmp_path / "cold", jobs=1, select="affine")
    got = verdicts(tmp_path / "warm")
    assert got == verdicts(tmp_path / "cold")
    scores = {n: sum(t[2] for t in tests) for n, tests in got.items()}
    assert scores["ref"] > scores["half"] > 0


def test_a_collection_error_is_reported_as_a_cold_run_reports_it(tmp_path, served):
    course, a = toy_course(tmp_path / "course", tests=TESTS + "\nraise RuntimeError('a broken course')\n")
    cls = write_class(tmp_path / "class", {"ann": COUNTED.replace("DELAY", "0")})
    report = run_batch(course, a, cls, tmp_path / "out")
    assert list(report.failed) == ["ann"] and "could not be collected" in report.failed["ann"]
    assert served == []  # the server never became ready: nothing was sent to it
    error = json.loads((tmp_path / "out" / "ann" / "error.json").read_text())
    assert "1 error during collection" in error["error"]  # as a cold run says it


def test_the_time_limit_stops_the_child_and_the_server_grades_the_next(tmp_path, served):
    course, a = toy_course(tmp_path / "course", total=6)
    cls = write_class(tmp_path / "class", {"a-slow": COUNTED.replace("DELAY", "20"),
                                           "b-quick": COUNTED.replace("DELAY", "0")})
    report = run_batch(course, a, cls, tmp_path / "out", jobs=1)
    assert sorted(report.graded) == ["a-slow", "b-quick"]
    slow = read_results(tmp_path / "out" / "a-slow" / "results.json")
    assert slow["score"] == 0 and "time limit for the whole submission" in slow["output"]
    assert read_results(tmp_path / "out" / "b-quick" / "results.json")["score"] == 4
    assert len(set(served)) == 1  # the same server, after the kill of its child


def warm_children() -> list[int]:
    """Pids of the children of this process's warm servers (the trusted pytest of a grade)."""
    servers = set()
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and b"\0autograder.warm\0" in Path(f"/proc/{entry}/cmdline").read_bytes() \
                    and f"\nPPid:\t{os.getpid()}\n" in Path(f"/proc/{entry}/status").read_text():
                servers.add(entry)
        except OSError:
            pass
    children = []
    for server in servers:
        try:
            children += [int(p) for p in Path(f"/proc/{server}/task/{server}/children").read_text().split()]
        except OSError:
            pass
    return children


def test_a_child_killed_from_outside_is_graded_again(tmp_path, served):
    course, a = toy_course(tmp_path / "course")
    cls = write_class(tmp_path / "class", {"ann": COUNTED.replace("DELAY", "1")})
    killed = []

    def kill() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for pid in warm_children():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    report = run_batch(course, a, cls, tmp_path / "out")
    killer.join()
    assert killed and served
    assert report.graded == ["ann"]
    assert read_results(tmp_path / "out" / "ann" / "results.json")["score"] == 4


def test_the_trusted_pytest_loads_every_installed_plugin_by_name(monkeypatch):
    from importlib.metadata import entry_points

    from autograder.runner import trusted_env

    env, plugins = trusted_env({"PATH": "/usr/bin"})
    assert env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] == "1" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    # The same plugins pytest would load itself, named with -p: deepgrade's first.
    assert plugins[0] == "autograder.plugin"
    assert set(plugins) == {ep.value for ep in entry_points(group="pytest11")} | {"autograder.plugin"}
    # Autoloading switched off by the caller: only deepgrade's own.
    assert trusted_env({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})[1] == ["autograder.plugin"]
    # DEEPGRADE_COLD=1: pytest loads them itself, as before.
    monkeypatch.setenv("DEEPGRADE_COLD", "1")
    env, plugins = trusted_env({"PATH": "/usr/bin"})
    assert plugins is None and "PYTEST_DISABLE_PLUGIN_AUTOLOAD" not in env


def test_a_module_is_compiled_once_but_imported_fresh_and_as_it_is_now(tmp_path):
    from autograder.loader import load_modules

    (tmp_path / "m.py").write_text("import itertools\nCOUNT = [0]\nVALUE = 1\n")
    first = load_modules(tmp_path, ["m"]).modules["m"]
    second = load_modules(tmp_path, ["m"]).modules["m"]
    assert first is not second and first.COUNT is not second.COUNT  # executed afresh each time
    (tmp_path / "m.py").write_text("VALUE = 2\n")
    assert load_modules(tmp_path, ["m"]).modules["m"].VALUE == 2  # the file as it is now
    (tmp_path / "m.py").write_text("def broken(:\n")
    assert "SyntaxError" in load_modules(tmp_path, ["m"]).errors["m"]

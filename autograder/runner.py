"""Run an assignment's tests in a child pytest with the deepgrade plugin, and read the outcomes.

The child is trusted: it runs the course's own test files (solutions/hwN/test_*.py and
hidden/), and the plugin's ``student`` fixture is the only way those tests reach the
submission. The child reports each test as JSON lines in a file; this module turns them into
one TestOutcome per test and fails closed: a test that started and never finished (a crash, a
timeout) or never ran is a failure with the reason.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.config import AssignmentConfig

_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


class RunnerError(Exception):
    """The tests themselves could not be run (a course problem, not the student's)."""


@dataclass
class TestOutcome:
    nodeid: str
    name: str
    file: str
    hidden: bool
    part: str | None
    gpu: bool
    status: str  # passed | failed | error | skipped
    message: str = ""
    duration: float = 0.0


@dataclass
class RunResult:
    outcomes: list[TestOutcome]
    returncode: int | None
    timed_out: bool
    log: str
    wall_time: float


def pytest_command(
    assignment: AssignmentConfig,
    report: Path,
    submission: Path | None,
    ini: Path,
    select: str | None = None,
    tests: list[Path] | None = None,
    isolation: str = "worker",
    runner: str = "all",
) -> list[str]:
    files = [str(p) for p in (tests if tests is not None else assignment.test_files())]
    cmd = [
        sys.executable, "-m", "pytest", *files,
        "-c", str(ini), "--rootdir", str(assignment.root),
        "-p", "no:cacheprovider", "--import-mode=importlib",
        "-q", "--no-header", "-rN", "--tb=no", "-W", "ignore::DeprecationWarning",
        "--deepgrade-config", str(assignment.root / "grading.yml"),
        "--deepgrade-assignment", assignment.name,
        "--deepgrade-report", str(report),
        "--deepgrade-runner", runner,
    ]
    if submission is not None:
        cmd += ["--deepgrade-submission", str(submission), "--deepgrade-isolation", isolation]
    if select:
        cmd += ["-m", select]
    return cmd


def read_outcomes(report: Path) -> tuple[list[dict], set[str], dict[str, dict]]:
    """(collected items, started node ids, node id -> worst result) from the JSON lines file."""
    items: list[dict] = []
    started: set[str] = set()
    results: dict[str, dict] = {}
    if not report.exists():
        return items, started, results
    for line in report.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        kind = rec.get("event")
        if kind == "collected":
            items = rec["items"]
        elif kind == "start":
            started.add(rec["nodeid"])
        elif kind == "result":
            old = results.get(rec["nodeid"])
            if old is None or _RANK[rec["status"]] > _RANK[old["status"]]:
                if old is not None and old["status"] == "passed":
                    rec = {**rec, "duration": rec["duration"] + old["duration"]}
                results[rec["nodeid"]] = rec
    return items, started, results


def run_tests(
    assignment: AssignmentConfig,
    work: Path,
    submission: Path | None = None,
    timeout: float | None = None,
    select: str | None = None,
    tests: list[Path] | None = None,
    env: dict[str, str] | None = None,
    isolation: str | None = None,
    runner: str = "all",
) -> RunResult:
    """Run the assignment's tests (visible and hidden) in a child pytest.

    submission: folder of student files, or None to run against the modules beside the tests
    (the reference, for `deepgrade verify`). runner: cpu, gpu or all (the parts this run
    grades; the others are skipped and scored as deferred). Returns RunResult with one
    TestOutcome per collected test. Raises RunnerError when nothing could be collected.
    """
    work.mkdir(parents=True, exist_ok=True)
    report = work / "outcomes.jsonl"
    report.unlink(missing_ok=True)
    ini = work / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    isolation = isolation or os.environ.get("DEEPGRADE_ISOLATION", "worker")
    cmd = pytest_command(assignment, report, submission, ini, select=select, tests=tests, isolation=isolation,
                         runner=runner)
    timeout = timeout if timeout is not None else assignment.timeouts.total
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONDONTWRITEBYTECODE"] = "1"
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=str(work), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, env=child_env, start_new_session=True,
    )
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    wall = time.perf_counter() - start
    log = out.decode("utf-8", errors="replace")
    items, started, results = read_outcomes(report)
    if not items and not timed_out:
        raise RunnerError(
            f"the tests of {assignment.name} could not be collected (pytest exit "
            f"{proc.returncode}):\n{log[-4000:]}"
        )
    if proc.returncode in (2, 3, 4) and not results and not timed_out:
        raise RunnerError(f"pytest stopped before running {assignment.name}'s tests:\n{log[-4000:]}")
    outcomes = []
    for item in items:
        res = results.get(item["nodeid"])
        if res is not None and (res["status"] != "passed" or res.get("when") == "call"):
            status, message, duration = res["status"], res["message"], res["duration"]
        elif item["nodeid"] in started:
            status = "failed"
            duration = 0.0
            message = (
                f"the test did not finish: the grader timed out after {timeout:g} s"
                if timed_out else
                f"the test did not finish: the test process died (exit status {proc.returncode})"
            )
        else:
            status, duration = "failed", 0.0
            message = "not run: grading stopped before this test " + (
                f"(time limit of {timeout:g} s reached)" if timed_out else
                f"(the test process died, exit status {proc.returncode})"
            )
        outcomes.append(TestOutcome(
            nodeid=item["nodeid"], name=item["name"], file=item["file"], hidden=item["hidden"],
            part=item["part"], gpu=item["gpu"], status=status, message=message, duration=duration,
        ))
    return RunResult(outcomes, proc.returncode, timed_out, log, wall)

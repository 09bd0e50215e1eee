"""Run an assignment's tests in a child pytest with the deepgrade plugin, and read the outcomes.

The child is trusted: it runs the course's own test files (solutions/hwN/test_*.py and
hidden/), and the plugin's ``student`` fixture is the only way those tests reach the
submission. The child reports each test as JSON lines in a file; this module turns them into
one TestOutcome per test and fails closed: a test that started and never finished (a crash, a
timeout) or never ran is a failure with the reason.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from autograder.config import AssignmentConfig
from autograder.loader import cold_start

if TYPE_CHECKING:
    from autograder.warm import WarmPool

_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


class RunnerError(Exception):
    """The tests themselves could not be run (a course problem, not the student's)."""


class InfrastructureError(Exception):
    """Grading was cut short twice by something outside the submission's control (its worker
    or the test process killed from outside, a worker that could not start): no grade is
    given, and a rerun (of grade-batch too) grades the submission again."""


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread so that cleanup runs (see on_sigterm)."""


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
    warnings: tuple[str, ...] = ()  # a stated rule broken here, graded by its own tests


@dataclass
class RunResult:
    outcomes: list[TestOutcome]
    returncode: int | None
    timed_out: bool
    log: str
    wall_time: float


def pytest_command(
    assignment: AssignmentConfig,
    report: Path | None,
    submission: Path | None,
    ini: Path,
    select: str | None = None,
    tests: list[Path | str] | None = None,
    isolation: str = "worker",
    runner: str = "all",
    plugins: list[str] | None = None,
) -> list[str]:
    """The child pytest's command line. plugins: the plugin modules to name with -p, for a
    child run with PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 (trusted_env); None when pytest loads
    them itself."""
    files = [str(p) for p in (tests if tests is not None else assignment.test_files())]
    cmd = [
        sys.executable, "-m", "pytest", *files,
        "-c", str(ini), "--rootdir", str(assignment.root),
        *[arg for module in plugins or [] for arg in ("-p", module)],
        "-p", "no:cacheprovider", "--import-mode=importlib",
        "-q", "--no-header", "-rN", "--tb=no", "-W", "ignore::DeprecationWarning",
        "--deepgrade-config", str(assignment.root / "grading.yml"),
        "--deepgrade-assignment", assignment.name,
        *(["--deepgrade-report", str(report)] if report is not None else []),
        "--deepgrade-runner", runner,
    ]
    if submission is not None:
        cmd += ["--deepgrade-submission", str(submission), "--deepgrade-isolation", isolation]
    if select:
        cmd += ["-m", select]
    return cmd


def read_outcomes(report: Path) -> tuple[list[dict], set[str], dict[str, dict]]:
    """(collected items, started node ids, node id -> worst result) from the JSON lines file.
    A result carries the test's warnings, in order and without repeats, under "warnings", and
    under "infra" why its worker was lost to something outside the submission (the test is
    then to be graded again: run_tests does)."""
    items: list[dict] = []
    started: set[str] = set()
    results: dict[str, dict] = {}
    warned: dict[str, list[str]] = {}
    infra: dict[str, str] = {}
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
        elif kind == "warning":
            seen = warned.setdefault(rec["nodeid"], [])
            if rec["message"] not in seen:
                seen.append(rec["message"])
        elif kind == "infra":
            infra.setdefault(rec["nodeid"], rec["message"])
    for nodeid, messages in warned.items():
        if nodeid in results:
            results[nodeid] = {**results[nodeid], "warnings": messages}
    for nodeid, message in infra.items():
        # The test's worker was lost to something outside the submission (autograder/proxy.py): whatever
        # the test made of that, it is graded again, not scored.
        results[nodeid] = {**results.get(nodeid, {"status": "failed", "message": message, "duration": 0.0}),
                           "infra": message}
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
    warm: WarmPool | None = None,
) -> RunResult:
    """Run the assignment's tests (visible and hidden) in a child pytest.

    submission: folder of student files, or None to run against the modules beside the tests
    (the reference, for `deepgrade verify`). runner: cpu, gpu or all (the parts this run
    grades; the others are skipped and scored as deferred). Returns RunResult with one
    TestOutcome per collected test. Raises RunnerError when nothing could be collected.

    Tests lost to something outside the submission's control (a worker or the test process
    killed from outside) are graded once more in a fresh pytest and worker; lost again, the
    grade is given up: InfrastructureError.

    warm: a pool of warm, collected pytest servers (autograder/warm.py, grade-batch): the
    tests then run in a child forked from one, not in a new pytest; the outcomes are the same.
    """
    work.mkdir(parents=True, exist_ok=True)
    report = work / "outcomes.jsonl"
    report.unlink(missing_ok=True)
    ini = work / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    isolation = isolation or os.environ.get("DEEPGRADE_ISOLATION", "worker")
    child_env, plugins = trusted_env(os.environ if env is None else env)
    cmd = pytest_command(assignment, report, submission, ini, select=select, tests=tests, isolation=isolation,
                         runner=runner, plugins=plugins)
    timeout = timeout if timeout is not None else assignment.timeouts.total
    # Every temporary file of the run (the worker's scratch folder and mount point among them)
    # goes inside `work`, so that removing `work` removes them, even after a kill.
    (work / "tmp").mkdir(exist_ok=True)
    child_env["TMPDIR"] = str(work / "tmp")
    start = time.perf_counter()
    server = None
    if warm is not None and submission is not None and tests is None and not cold_start():
        from autograder.warm import Key, WarmError

        server = warm.server(assignment, Key(assignment.name, select, runner, isolation), child_env, plugins)
    if server is not None:
        try:
            returncode, timed_out, log = server.run(submission, work, report, work / "tmp", timeout)
        except WarmError:  # no child was started: grade cold
            report.unlink(missing_ok=True)
            returncode, timed_out, log = _run_pytest(cmd, work, child_env, timeout)
        finally:
            warm.give_back(server)
    else:
        returncode, timed_out, log = _run_pytest(cmd, work, child_env, timeout)
    items, started, results = read_outcomes(report)
    if not items and not timed_out and not _killed_from_outside(returncode, timed_out):
        raise RunnerError(
            f"the tests of {assignment.name} could not be collected (pytest exit "
            f"{returncode}):\n{log[-4000:]}"
        )
    if returncode in (2, 3, 4) and not results and not timed_out:
        raise RunnerError(f"pytest stopped before running {assignment.name}'s tests:\n{log[-4000:]}")
    lost = _lost(items, started, results, returncode, timed_out)
    whole = not items and _killed_from_outside(returncode, timed_out)  # killed before collecting
    if lost or whole:
        # Once more, in a new pytest with a new worker: the tests that were lost.
        retry_report = work / "outcomes-retry.jsonl"
        retry_report.unlink(missing_ok=True)
        retry_tests = tests if whole else [f"{assignment.root}/{n}" for n in lost]
        retry_cmd = pytest_command(assignment, retry_report, submission, ini, select=select, tests=retry_tests,
                                   isolation=isolation, runner=runner, plugins=plugins)
        returncode, timed_out, log2 = _run_pytest(retry_cmd, work, child_env, timeout)
        log += "\n--- graded again: lost to something outside the submission ---\n" + log2
        items2, started2, results2 = read_outcomes(retry_report)
        again = _lost(items2, started2, results2, returncode, timed_out)
        missing = set(lost) - {i["nodeid"] for i in items2}
        if again or missing or not items2:
            why = [r.get("infra") for r in [*results.values(), *results2.values()] if r.get("infra")]
            why = why or [f"the test process was killed (exit status {returncode})"]
            raise InfrastructureError(
                f"grading {assignment.name} was cut short twice by something outside the submission's "
                f"control, so it was not graded (a rerun grades it again): {why[-1].splitlines()[0]}")
        if whole:
            items, started, results = items2, started2, results2
        for nodeid in lost:
            results.pop(nodeid, None)
            started.discard(nodeid)
            if nodeid in results2:
                results[nodeid] = results2[nodeid]
            if nodeid in started2:
                started.add(nodeid)
    wall = time.perf_counter() - start
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
                f"the test did not finish: the test process died (exit status {returncode})"
            )
        else:
            status, duration = "failed", 0.0
            message = "not run: grading stopped before this test " + (
                f"(time limit of {timeout:g} s reached)" if timed_out else
                f"(the test process died, exit status {returncode})"
            )
        outcomes.append(TestOutcome(
            nodeid=item["nodeid"], name=item["name"], file=item["file"], hidden=item["hidden"],
            part=item["part"], gpu=item["gpu"], status=status, message=message, duration=duration,
            warnings=tuple((res or {}).get("warnings", ())),
        ))
    return RunResult(outcomes, returncode, timed_out, log, wall)


def trusted_env(env: dict[str, str] | os._Environ) -> tuple[dict[str, str], list[str] | None]:
    """The child pytest's environment, and the plugin modules it must be given with -p (None:
    pytest loads its plugins itself). No bytecode is written next to the course's files.

    The plugins are the installed ones, as pytest would load them, but named with -p under
    PYTEST_DISABLE_PLUGIN_AUTOLOAD=1: pytest then assertion-rewrites only those modules, not
    every module of every package that ships a plugin (deepgrade's whole engine among them),
    which without a bytecode cache cost more than a second of CPU per grade. With
    DEEPGRADE_COLD=1, or a plugin that is not a module, pytest loads them as before; when the
    caller disabled autoloading itself, only deepgrade's plugin is named."""
    out = dict(env)
    out["PYTHONDONTWRITEBYTECODE"] = "1"
    if "PYTEST_DISABLE_PLUGIN_AUTOLOAD" in out:
        return out, ["autograder.plugin"]
    modules = None if cold_start() else _plugin_modules()
    if modules is not None:
        out["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return out, modules


_PLUGINS: list[list[str] | None] = []


def _plugin_modules() -> list[str] | None:
    """The modules of the installed pytest plugins (entry points pytest11), deepgrade's first;
    None when one is not a plain module (pytest must then load them itself)."""
    if not _PLUGINS:
        from importlib.metadata import entry_points  # once per process

        modules = ["autograder.plugin"]
        for ep in entry_points(group="pytest11"):
            if ":" in ep.value or not ep.value.replace(".", "").replace("_", "").isalnum():
                modules = None
                break
            if ep.value not in modules:
                modules.append(ep.value)
        _PLUGINS.append(modules)
    return _PLUGINS[0]


def _killed_from_outside(returncode: int | None, timed_out: bool) -> bool:
    """The trusted pytest ended by a signal the grader did not send (its own timeout)."""
    return returncode is not None and returncode < 0 and not timed_out


def _lost(items: list[dict], started: set[str], results: dict[str, dict], returncode: int | None,
          timed_out: bool) -> list[str]:
    """Node ids of the tests to grade again: those whose worker was lost to something outside
    the submission, and, when the test process itself was killed from outside, every test
    that did not finish."""
    lost = [i["nodeid"] for i in items if "infra" in results.get(i["nodeid"], {})]
    if _killed_from_outside(returncode, timed_out):
        finished = {n for n, r in results.items() if r["status"] != "passed" or r.get("when") == "call"}
        lost += [i["nodeid"] for i in items if i["nodeid"] not in finished and i["nodeid"] not in lost]
    return lost


try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # not a POSIX system
    _LIBC = None


def _die_with_parent() -> None:
    """preexec of the test process: it dies with the grader (SIGKILL when the grader's thread
    that started it ends), so that a killed grader leaves no grading behind."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _run_pytest(cmd: list[str], work: Path, env: dict[str, str], timeout: float) -> tuple[int | None, bool, str]:
    """Run the child pytest to its end or to `timeout` seconds: (returncode, timed_out, log).
    Interrupted (Ctrl-C, SIGTERM), it kills the child's whole process group before leaving."""
    proc = subprocess.Popen(
        cmd, cwd=str(work), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        raise
    return proc.returncode, timed_out, out.decode("utf-8", errors="replace")


@contextmanager
def on_sigterm() -> Iterator[None]:
    """While inside: SIGTERM raises Terminated in the main thread, so that `finally` blocks
    run (the child pytest is killed, temporary folders removed); on the way out the process
    then ends by SIGTERM, as it would have. Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        raise
    finally:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, previous)

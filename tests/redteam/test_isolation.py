"""One student cannot touch another: two submissions graded at once, one attacking the other.

`grade-batch --jobs 2` grades a victim (a correct submission whose tests take a few seconds)
beside an attacker that, in every call, hunts for the victim's processes and signals them,
ptraces them, reads their /proc/PID/mem, environ and cwd, and takes every process the per-user
limit allows. The victim must score exactly what it scores alone, and the attacker must
reach nothing. Each worker runs as a uid of its own (the uid pool) and as PID 1 of its own PID
namespace with its own /proc, so there is nothing to find.

The attacker aims at the victim alone: a process whose parent is another grader of this
course (the trusted pytest, whose command line names the course folder). It never signals
anything else, so the test is safe to run on a machine that other work shares, even where
the isolation is missing (that is what makes it fail there). Attacks that cannot aim
(SIGKILL to every process, to every pid number) run only where they are contained: when the
attacker is PID 1 of its own namespace.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.batch import read_results, run_batch
from autograder.config import load_config

VICTIM = textwrap.dedent("""
    import os
    import time

    def work(i):
        time.sleep(0.4)
        return 2 * i

    def spawn():
        # A child process, as a submission may start: the per-user process limit must count
        # this submission's processes only.
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    def reached():
        return {}
""")

ATTACKER = textwrap.dedent("""
    import ctypes
    import os
    import signal
    import time

    MARKER = COURSE_MARKER.encode()
    REACHED = {}
    _libc = ctypes.CDLL(None, use_errno=True)
    _children = []


    def _note(what):
        REACHED[what] = REACHED.get(what, 0) + 1


    def _targets():
        # Processes of another grader of this course: their parent's command line names the
        # course folder, and their parent is not ours.
        mine = {os.getpid(), os.getppid(), *_children}
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in mine:
                continue
            try:
                with open(f"/proc/{entry}/status") as fh:
                    ppid = int(next(line for line in fh if line.startswith("PPid:")).split()[1])
                if ppid in mine or ppid == 0:
                    continue
                with open(f"/proc/{ppid}/cmdline", "rb") as fh:
                    if MARKER in fh.read():
                        found.append(int(entry))
            except (OSError, StopIteration, ValueError):
                pass
        return found


    def _hit(pid):
        for name, path in (("mem", f"/proc/{pid}/mem"), ("environ", f"/proc/{pid}/environ")):
            try:
                with open(path, "rb") as fh:
                    fh.read(64)
                _note(name)
            except OSError:
                pass
        try:
            os.readlink(f"/proc/{pid}/cwd")
            _note("cwd")
        except OSError:
            pass
        if _libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
            _note("ptrace")
        try:
            os.kill(pid, signal.SIGKILL)
            _note("signal")
        except OSError:
            pass


    def _fill_processes():
        # As many processes as the per-user limit allows, each living a few seconds.
        while len(_children) < 64:
            try:
                pid = os.fork()
            except OSError:
                return
            if pid == 0:
                time.sleep(3)
                os._exit(0)
            _children.append(pid)


    def attack(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            _fill_processes()
            for pid in _targets():
                _hit(pid)
            if os.getpid() == 1:
                # Contained in this namespace: every process, and every pid number.
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    pass
                for pid in range(2, 4096):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            for pid in list(_children):
                try:
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        _children.remove(pid)
                except ChildProcessError:
                    _children.remove(pid)
            time.sleep(0.02)


    def work(i):
        attack(1.5)
        return 2 * i


    def spawn():
        return 7


    def reached():
        return dict(REACHED)
""")

TESTS = textwrap.dedent("""
    import pytest

    @pytest.mark.parametrize("i", range(8))
    def test_work(student, i):
        assert student.work(i) == 2 * i

    def test_spawn(student):
        assert student.spawn() == 7

    def test_spawn_again(student):
        assert student.spawn() == 7

    def test_nothing_of_another_submission_was_reached(student):
        assert student.reached() == {}
""")


def isolation_course(root: Path):
    sol = root / "solutions" / "iso"
    sol.mkdir(parents=True)
    (sol / "iso.py").write_text(VICTIM)
    (sol / "test_iso.py").write_text(TESTS)
    (root / "grading.yml").write_text(textwrap.dedent("""
        assignments:
          iso:
            title: Isolation
            files: [iso.py]
            timeouts: {call: 10, test: 20, total: 300, startup: 20}
            limits: {cpu_seconds: 60, memory_mb: 1024, file_size_mb: 1, processes: 24,
                     open_files: 64, output_kb: 4}
            parts:
              work: {points: 8, tests: ["test_work"]}
              spawn: {points: 2, tests: ["test_spawn*"]}
              reach: {points: 1, tests: ["test_nothing_*"]}
    """))
    course = load_config(root / "grading.yml")
    return course, course.assignment("iso")


def verdicts(out: Path, name: str) -> dict[str, str]:
    data = read_results(out / name / "results.json")
    assert data is not None, json.loads((out / name / "error.json").read_text())["error"]
    return {t["name"]: t["status"] for t in data["tests"]}


_ACTIVE = sandbox.probe_protections()


@pytest.mark.skipif(not (_ACTIVE["pid_namespace"] or _ACTIVE["unprivileged_user"]),
                    reason="this machine gives workers neither a PID namespace nor a uid of their own")
def test_one_submission_cannot_touch_another(tmp_path):
    course, a = isolation_course(tmp_path / "course")
    subs = tmp_path / "submissions"
    (subs / "victim").mkdir(parents=True)
    (subs / "victim" / "iso.py").write_text(VICTIM)
    (subs / "attacker").mkdir()
    marker = str(course.root)
    (subs / "attacker" / "iso.py").write_text(f"COURSE_MARKER = {marker!r}\n" + ATTACKER)

    alone = tmp_path / "alone"
    (alone / "victim").mkdir(parents=True)
    (alone / "victim" / "iso.py").write_text(VICTIM)
    run_batch(course, a, alone, tmp_path / "out-alone", jobs=1)
    solo = verdicts(tmp_path / "out-alone", "victim")
    assert set(solo.values()) == {"passed"}

    report = run_batch(course, a, subs, tmp_path / "out", jobs=2)
    assert not report.failed, report.failed
    # The victim scores exactly what it scores alone, test by test ...
    assert verdicts(tmp_path / "out", "victim") == solo
    # ... and the attacker, which ran all along (its calls last 1.5 s each), reached nothing.
    attacker = verdicts(tmp_path / "out", "attacker")
    assert attacker["reach: test_nothing_of_another_submission_was_reached"] == "passed", \
        read_results(tmp_path / "out" / "attacker" / "results.json")["tests"][-1]["output"]
    assert read_results(tmp_path / "out" / "attacker" / "results.json")["execution_time"] > 8

"""A warm trusted pytest for many submissions: collect once, fork a fresh child per submission.

Starting the trusted pytest for one submission (the interpreter, pytest, numpy, the course's
config, collecting and assertion-rewriting the test files) costs about as much CPU as running
the tests. grade-batch pays it once per slot instead: a *server* pytest collects the
assignment's tests with no submission and then waits. For each submission it forks a child,
which is exactly that collected session, untouched: no test has run in the server, no fixture
is set up, no worker is started. The child is pointed at the submission (plugin.retarget),
runs every collected test as pytest's own loop does, and exits; its worker is started by the
child as in a cold run (sandbox/process.py: its own namespaces, uid, limits), so each
submission still gets a fresh worker that no other submission touched, and student code never
runs in the server or its children.

    client (runner.run_tests)              server (python -m pytest -p autograder.warm ...)
    WarmPool.server(...) ---- start -----> collects, warms the reference's code, "ready"
    WarmServer.run(submission) --------->  fork: child runs the tests into the report file
                             <- "pid" ---  (child: own session, dies with the server)
                             <- "done" --  the child's exit status (-N: killed by signal N)

The control channel is two pipes (requests on the server's stdin, replies on the fd named by
DEEPGRADE_WARM_FD); the server's own output goes to a log file, each child's to the run's.
A server that cannot start (a collection error, anything) is not used: that grade runs cold,
and reports the problem as a cold run does. A child that dies, or a server lost mid-grade,
reads as a test process killed from outside: runner.run_tests grades those tests again in a
cold pytest.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ENV_FD = "DEEPGRADE_WARM_FD"
_STARTUP_TIMEOUT = 120.0  # collecting an assignment's tests takes seconds; a hung server is dropped


# --- the server side: a pytest plugin, loaded only by the server (-p autograder.warm) ------------

def _send(fd: int, message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def _lines(fd: int):
    """The request lines read from `fd`, until it closes."""
    buf = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


def _warm_reference(config: pytest.Config) -> None:
    """Compile the reference's modules once here (loader's code cache), so that no child
    compiles them again for its first test. Failures are left to the tests to report."""
    from autograder.loader import load_modules
    from autograder.plugin import _state

    state = _state(config)
    try:
        assignment = state.course.assignment(state.assignment_name)
        if assignment.solution_dir.is_dir():
            load_modules(assignment.solution_dir, assignment.module_names + assignment.support_module_names)
    except Exception:  # noqa: BLE001, S110 - a warm-up only: the tests report what is wrong
        pass


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session):
    """Instead of running the tests: serve submissions, one forked child each."""
    fd = os.environ.get(ENV_FD)
    if fd is None or session.testsfailed or session.config.option.collectonly:
        return None  # not a server, or collection failed: pytest's own loop reports it
    reply_fd = int(fd)
    import autograder.proxy  # noqa: F401 - imported once here, not in every child

    _warm_reference(session.config)
    sys.stdout.flush()
    sys.stderr.flush()
    gc.collect()
    gc.freeze()  # the children's collector then leaves the server's objects (and their pages) alone
    _send(reply_fd, {"ready": True, "items": len(session.items)})
    for request in _lines(0):
        server = os.getpid()
        pid = os.fork()
        if pid == 0:
            _child(session, request, reply_fd, server)  # never returns
        _send(reply_fd, {"pid": pid})
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
        _send(reply_fd, {"done": True, "returncode": os.waitstatus_to_exitcode(status)})
    return True


def _child(session: pytest.Session, request: dict, reply_fd: int, server: int) -> None:
    """In the forked child: grade one submission with the collected session, then exit with
    pytest's status (0 all passed, 1 some failed, 3 an internal error)."""
    status = 3
    try:
        os.setsid()  # the client kills the child's whole group (a timeout, Ctrl-C)
        _die_with_parent()
        if os.getppid() != server:  # the server died before the line above: so must this child
            os._exit(status)
        os.close(reply_fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # the server's requests are not the child's to read
        os.close(null)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.chdir(request["cwd"])
        os.environ["TMPDIR"] = request["tmpdir"]
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again: the worker's folders go there
        from autograder.plugin import retarget

        config = session.config
        retarget(config, request["submission"], request["report"], session.items)
        items = session.items
        for i, item in enumerate(items):
            nextitem = items[i + 1] if i + 1 < len(items) else None
            config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            if session.shouldfail or session.shouldstop:
                break
        status = 1 if session.testsfailed else 0
        config._ensure_unconfigure()  # closes the report file, stops the worker (cleanups)
    except BaseException:  # noqa: BLE001 - anything here is the grader's own failure
        traceback.print_exc()
        status = 3
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def _die_with_parent() -> None:
    from autograder.runner import _die_with_parent as die

    die()


# --- the client side --------------------------------------------------------------------------

class WarmError(Exception):
    """A server could not be started or stopped answering (the grade then runs cold)."""


class _NoAnswer(WarmError):
    """The server said nothing before the deadline."""


@dataclass(frozen=True)
class Key:
    """What a server's collected session depends on: the same key, the same tests."""

    assignment: str
    select: str | None
    runner: str
    isolation: str


class WarmServer:
    """One server pytest: collected for `key`, grading one submission at a time."""

    def __init__(self, assignment, key: Key, env: dict[str, str], folder: Path,
                 plugins: list[str] | None = None) -> None:
        from autograder.runner import _die_with_parent, pytest_command

        self.key = key
        self.folder = folder  # an empty folder of its own, removed by close()
        self.held = None  # what keeps another run from sweeping the folder away (WarmPool)
        ini = self.folder / "pytest.ini"
        ini.write_text("[pytest]\n", encoding="utf-8")
        cmd = pytest_command(assignment, None, None, ini, select=key.select, isolation=key.isolation,
                             runner=key.runner, plugins=plugins)
        # The server collects with no submission; the children are told theirs. Output is
        # captured at the sys level, so that a child's own log file holds its fd 1 and 2.
        cmd += ["--deepgrade-isolation", key.isolation, "-p", "autograder.warm", "--capture=sys"]
        rep_r, rep_w = os.pipe()
        env = {**env, ENV_FD: str(rep_w)}  # (runner.trusted_env's, with its plugins)
        (self.folder / "tmp").mkdir()
        env["TMPDIR"] = str(self.folder / "tmp")
        self.log_path = self.folder / "server.log"
        with open(self.log_path, "wb") as log:
            try:
                self.proc = subprocess.Popen(
                    cmd, cwd=str(self.folder), stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                    env=env, pass_fds=(rep_w,), start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                )
            except BaseException:
                os.close(rep_r)
                raise
            finally:
                os.close(rep_w)
        self.reply_fd = rep_r
        self.buf = b""
        try:
            ready = self._read(time.monotonic() + _STARTUP_TIMEOUT)
        except (WarmError, ValueError) as exc:
            self.close()
            raise WarmError(f"the warm pytest did not start: {exc}") from None
        if not isinstance(ready, dict) or not ready.get("ready"):
            self.close()
            raise WarmError(f"the warm pytest answered {ready!r}")

    def _read(self, deadline: float | None) -> dict:
        while b"\n" not in self.buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self.reply_fd], [], [], left)
            if not readable:
                raise _NoAnswer("the warm pytest did not answer in time")
            chunk = os.read(self.reply_fd, 65536)
            if not chunk:
                tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:] \
                    if self.log_path.exists() else ""
                raise WarmError(f"the warm pytest ended (exit status {self.proc.poll()}):\n{tail}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def run(self, submission: Path, work: Path, report: Path, tmpdir: Path,
            timeout: float) -> tuple[int | None, bool, str]:
        """Grade `submission` in a fresh child: (returncode, timed_out, log), as
        runner._run_pytest returns them. A server lost mid-grade reads as a child killed by
        SIGKILL (the runner grades those tests again, cold). Raises WarmError when the server
        cannot take the request (nothing was graded: run cold instead)."""
        log = work / "pytest.log"
        request = {"submission": str(submission), "report": str(report), "cwd": str(work),
                   "tmpdir": str(tmpdir), "log": str(log)}
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
            pid = self._read(time.monotonic() + 30.0)["pid"]
        except (OSError, ValueError, KeyError, WarmError) as exc:
            self.close()
            raise WarmError(f"the warm pytest did not take the submission: {exc}") from None
        deadline = time.monotonic() + timeout
        timed_out = False
        try:
            try:
                done = self._read(deadline)
            except _NoAnswer:  # the grade's time limit: its child is killed, the server goes on
                timed_out = True
                _kill_group(pid)
                done = self._read(time.monotonic() + 30.0)
        except BaseException as exc:  # Ctrl-C, SIGTERM, a lost server: the child must not outlive it
            _kill_group(pid)
            self.close()
            if isinstance(exc, WarmError):
                return -signal.SIGKILL, False, _tail(log) + f"\n{exc}"
            raise
        return done.get("returncode"), timed_out, _tail(log)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the server's loop ends; pytest finishes
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait()
        try:
            os.close(self.reply_fd)
        except OSError:
            pass
        from autograder.grade import remove_tree

        remove_tree(self.folder)
        if self.held is not None:
            self.held.close()
            self.held = None


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _tail(path: Path, limit: int = 100_000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


class WarmPool:
    """Idle servers by Key, for the grades of one batch (one server per grade under way).
    server() takes one (starting it if none is idle); give_back() returns it; close() stops
    them all. A key whose server would not start is graded cold from then on.

    base: where the servers' folders go (a folder ".warm-<random>" each; default: the system's
    temporary folder). hold(name): a context manager held while a folder is in use, so that a
    sweep by another run (batch.sweep_work) leaves it alone; a folder left by a killed run is
    not held, and is swept."""

    def __init__(self, base: Path | None = None, hold=None) -> None:
        self.base = base
        self.hold = hold
        self.lock = threading.Lock()
        self.idle: dict[Key, list[WarmServer]] = {}
        self.busy: set[WarmServer] = set()
        self.broken: dict[Key, str] = {}
        self.closed = False

    def server(self, assignment, key: Key, env: dict[str, str],
               plugins: list[str] | None = None) -> WarmServer | None:
        """An idle server for `key` (env, plugins: runner.trusted_env's), started if none is
        idle; None when a server for `key` could not be started (grade cold)."""
        with self.lock:
            if key in self.broken or self.closed:
                return None
            idle = self.idle.get(key)
            if idle:
                server = idle.pop()
                self.busy.add(server)
                return server
        try:
            server = self._start(assignment, key, env, plugins)
        except (WarmError, OSError) as exc:
            with self.lock:
                self.broken[key] = str(exc)
            return None
        with self.lock:
            self.busy.add(server)
        return server

    def _start(self, assignment, key: Key, env: dict[str, str], plugins: list[str] | None) -> WarmServer:
        if self.base is not None:
            self.base.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".warm-", dir=self.base))
        held = contextlib.ExitStack()
        if self.hold is not None:
            held.enter_context(self.hold(folder.name))
        try:
            server = WarmServer(assignment, key, env, folder, plugins)
        except BaseException:
            from autograder.grade import remove_tree

            remove_tree(folder)
            held.close()
            raise
        server.held = held
        return server

    def give_back(self, server: WarmServer) -> None:
        with self.lock:
            self.busy.discard(server)
            keep = server.proc.poll() is None and not self.closed
            if keep:
                self.idle.setdefault(server.key, []).append(server)
        if not keep:
            server.close()

    def close(self) -> None:
        """Stop the idle servers now, and each busy one when its grade ends (a batch stopped
        by Ctrl-C lets the grades under way finish)."""
        with self.lock:
            self.closed = True
            servers = [s for group in self.idle.values() for s in group]
            self.idle.clear()
        for server in servers:
            server.close()

"""The grading side of the boundary: one worker process, its pipes, and the pool that keeps it.

A Connection starts a worker (process.start), sends it one request at a time (protocol.py
frames, with deadlines) and reads its replies within the budgets the trusted side accepts. When
the worker's pipe closes it says why (Connection._lost): its own crash or exit (WorkerDied:
the test fails with the reason), or a kill from outside its PID namespace, or a worker that
could not start (InfrastructureFailure: not the submission's doing; the runner grades the
test again in a fresh worker). The WorkerPool keeps the session's worker, starts it lazily,
replaces it after a crash, and before a test whose predecessor left threads or processes
running in it. The `student` object that tests use is built on this in proxy.py.
"""
from __future__ import annotations

import builtins
import os
import select
import signal
import threading
import time
from pathlib import Path

from autograder.config import AssignmentConfig
from autograder.loader import StudentCodeError, cold_start
from autograder.sandbox import process, uids
from autograder.sandbox import protocol as P
from autograder.sandbox.limits import SELF_INFLICTED
from autograder.sandbox.namespaces import package_paths

_STDERR_KEEP = 4000
_SIGNAL_WORDS = {
    signal.SIGSEGV: "segfault", signal.SIGBUS: "bus error", signal.SIGABRT: "aborted",
    signal.SIGFPE: "floating-point exception", signal.SIGILL: "illegal instruction",
    signal.SIGXCPU: "CPU time limit reached", signal.SIGXFSZ: "file size limit reached",
    signal.SIGKILL: "killed (out of memory, or a limit)",
}


class WorkerDied(StudentCodeError):
    """The worker process ended or was stopped while student code ran."""


class InfrastructureFailure(WorkerDied):
    """The worker was lost to something outside the submission's control: killed from
    outside its PID namespace (an operator, the OOM killer, the machine), or it could not be
    started. The test is not scored: the runner grades it again in a fresh worker."""


class GraderProtocolError(StudentCodeError):
    """The worker sent something that is not a valid reply (no credit for the test)."""


# --- one worker process -----------------------------------------------------------------------

class Connection:
    """A started worker and its pipes. request() sends one frame and waits for the reply."""

    def __init__(self, assignment: AssignmentConfig, folder: Path, hide: list[Path], drop_user: bool = True) -> None:
        self.assignment = assignment
        files = [folder / f for f in assignment.files + assignment.support_files]
        t0 = time.perf_counter()
        self.started = process.start(process.SandboxSpec(
            files=files, limits=assignment.limits, hide=hide, drop_user=drop_user,
            cover=package_paths(assignment.hidden_package_data),
            uid_timeout=assignment.timeouts.startup))
        self.protections = self.started.protections
        self.alive = True
        self.reader = P.FrameReader(self.started.rep_fd)
        os.set_blocking(self.started.req_fd, False)  # writes wait in select, with a deadline
        self.reset_pending = False
        self.unanswered: list[str] = []
        self._stderr = bytearray()
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        limit = assignment.limits.output_kb * 1024
        # What the trusted side accepts in one reply: arrays up to reply_mb (read without a
        # copy), and plain data (JSON, which costs many times its size as Python objects)
        # within its own, smaller budget. The worker checks the same before sending, so that
        # an honest large value fails its test with a clear message.
        reply_limit = min(assignment.limits.memory_mb, assignment.limits.reply_mb) * 1024 * 1024
        self.max_header = P.header_budget(P.HEADER_LIMIT, limit)
        self.max_frame = reply_limit + self.max_header + (1 << 20)
        reply = self.request(
            {"op": "init", "dir": str(self.started.scratch), "modules": assignment.module_names
             + assignment.support_module_names, "forbidden": list(assignment.forbidden_imports),
             "output_limit": limit, "reply_limit": reply_limit, "value_limit": P.HEADER_LIMIT,
             "cache_code": not cold_start()},
            timeout=assignment.timeouts.startup, what="starting the worker",
        )[0]
        if reply.get("ok") is not True:
            self.close()
            raise WorkerDied("the worker could not start")
        self.startup_time = time.perf_counter() - t0

    def _drain_stderr(self) -> None:
        # The interpreter's own output (a fatal error); bounded so a flood costs nothing.
        fd = self.started.err_fd
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                self._stderr += chunk
                if len(self._stderr) > 2 * _STDERR_KEEP:
                    del self._stderr[:-_STDERR_KEEP]
        except OSError:
            return
        finally:
            os.close(fd)

    def request(self, header: dict, blobs: list[bytes] | None = None, timeout: float = 30.0,
                what: str = "the call") -> tuple[dict, list[bytes]]:
        """Send one request and wait for its reply. Raises WorkerDied (crash, timeout) or
        GraderProtocolError (an invalid reply); either way the worker is stopped."""
        self.send(header, blobs, what, timeout)
        failure = self._read_unanswered(timeout)
        reply = self.receive(timeout, what)
        if failure is not None:
            raise failure
        return reply

    def send_unanswered(self, header: dict, blobs: list[bytes], what: str) -> None:
        """Send a request whose reply (None, or an error) is read with the next request's:
        `model.params[k] = v` then costs no round trip of its own. A failure is raised by the
        next request of the test, or at its teardown (finish_test), so it is never lost."""
        if len(self.unanswered) >= self._MAX_UNANSWERED:
            failure = self._read_unanswered(self.assignment.timeouts.call)
            if failure is not None:
                raise failure
        self.send(header, blobs, what)
        self.unanswered.append(what)

    def _read_unanswered(self, timeout: float) -> StudentCodeError | None:
        failure = None
        while self.unanswered:
            what = self.unanswered.pop(0)
            reply, _ = self.receive(timeout, what)
            if reply.get("ok") is not True and failure is None:
                err = reply.get("error")
                valid = type(err) is dict and all(type(err.get(k)) is str for k in ("type", "message"))
                failure = student_error(err, what) if valid else GraderProtocolError(
                    f"the worker sent an invalid reply during {what}")
        return failure

    def finish_test(self) -> None:
        """At a test's teardown: collect unanswered replies (raising a failure, which fails the
        test), then ask for the next test's fresh import."""
        failure = self._read_unanswered(self.assignment.timeouts.call) if self.alive else None
        self.prefetch_reset()
        if failure is not None:
            raise failure

    def send(self, header: dict, blobs: list[bytes] | None = None, what: str = "the call",
             timeout: float | None = None) -> None:
        if not self.alive:
            raise WorkerDied("the worker was restarted: objects from before the restart are gone")
        timeout = self.assignment.timeouts.call if timeout is None else timeout
        data = memoryview(P.pack_frame(header, blobs or []))
        deadline = time.monotonic() + timeout
        req, rep = self.started.req_fd, self.started.rep_fd
        try:
            while data:
                left = deadline - time.monotonic()
                readable, writable, _ = select.select([rep], [req], [], max(left, 0))
                if writable:
                    n = os.write(req, data[:65536])
                    data = data[n:]
                elif readable:
                    # The worker is blocked writing replies we have not read yet: take them,
                    # so that neither side waits for the other forever.
                    chunk = os.read(rep, 65536)
                    if not chunk:
                        raise P.PeerGone()
                    self.reader.buf += chunk
                elif left <= 0:
                    self.close()
                    raise WorkerDied(f"{what} timed out after {timeout:g} s (the worker was stopped)")
        except (OSError, P.PeerGone):
            raise self._lost(what) from None

    _MAX_UNANSWERED = 32

    def receive(self, timeout: float, what: str = "the call") -> tuple[dict, list[bytes]]:
        try:
            return self.reader.read(self.max_frame, time.monotonic() + timeout, self.max_header)
        except P.FrameTimeout:
            if self.started.proc.poll() is not None:
                raise self._lost(what) from None
            self.close()
            raise WorkerDied(f"{what} timed out after {timeout:g} s (the worker was stopped)") from None
        except (P.PeerGone, OSError):
            raise self._lost(what) from None
        except P.ProtocolError as exc:
            self.close()
            raise GraderProtocolError(f"the worker sent an invalid reply during {what}: {exc}") from None

    def prefetch_reset(self) -> None:
        """Ask for the next test's fresh import now, so that it overlaps pytest's own work
        between tests; reset() collects the reply."""
        if self.alive and not self.reset_pending:
            try:
                self.send({"op": "reset"}, what="importing the submission")
                self.reset_pending = True
            except WorkerDied:
                pass

    def reset(self, timeout: float) -> dict:
        what = "importing the submission"
        if not self.reset_pending:
            self.send({"op": "reset"}, what=what)
            self._read_unanswered(timeout)  # left by a test that ended without a teardown
        self.reset_pending = False
        return self.receive(timeout, what)[0]

    def _lost(self, what: str) -> WorkerDied:
        """The worker's pipe closed: stop what is left of it and say why it ended. Its own status
        is read first (before stop() kills the reaper that reports it). Returns the exception:
        InfrastructureFailure for a kill from outside its PID namespace, else WorkerDied."""
        try:
            rc = self.started.proc.wait(timeout=2)
        except Exception:  # noqa: BLE001
            rc = None
        self.close()
        external = False
        if rc is None:
            reason = "worker crashed: its pipe closed"
        elif rc < 0:
            sig = -rc
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            # As PID 1 of its own namespace the worker cannot be killed by its own processes:
            # a signal other than one the kernel raises for its own code came from outside.
            external = self.protections.get("pid_namespace", False) and sig not in SELF_INFLICTED
            if external:
                reason = (f"the worker was killed from outside (signal {sig}, {name}): not the "
                          "submission's doing, so this test is graded again in a fresh worker")
            else:
                reason = f"worker crashed: {_SIGNAL_WORDS.get(sig, name)} (signal {sig}, {name})"
        else:
            reason = f"worker exited with status {rc} (student code ended the process)"
        self._drain.join(timeout=0.5)
        tail = bytes(self._stderr[-600:]).decode("utf-8", "replace").strip()
        message = f"{reason} during {what}" + (f"\nlast output:\n{tail}" if tail else "")
        return InfrastructureFailure(message) if external else WorkerDied(message)

    def close(self) -> None:
        if self.alive:
            self.alive = False
            process.stop(self.started)


class WorkerPool:
    """The session's worker: started lazily, replaced after a crash, stopped at the end."""

    def __init__(self, assignment: AssignmentConfig, folder: Path, hide: list[Path]) -> None:
        self.assignment = assignment
        self.folder = folder
        self.hide = hide
        self.conn: Connection | None = None
        self.import_crashes: list[str] = []
        self.protections: dict[str, bool] | None = None
        self.drop_user = True
        self.replaced = 0  # workers replaced because student code left threads or processes

    def connection(self) -> Connection:
        """The live worker, started if need be. No student code runs before the worker
        answers its first request, so a failure to start is the machine's, not the
        submission's: it is retried once without the user switch, then reported as an
        InfrastructureFailure (the test is graded again, not scored)."""
        if self.conn is None or not self.conn.alive:
            try:
                self.conn = Connection(self.assignment, self.folder, self.hide, self.drop_user)
            except Exception as first:  # noqa: BLE001
                if not self.drop_user or isinstance(first, uids.UidPoolError):
                    raise InfrastructureFailure(f"the sandboxed worker could not be started: {first}") from None
                self.drop_user = False
                try:
                    self.conn = Connection(self.assignment, self.folder, self.hide, self.drop_user)
                except Exception as exc:  # noqa: BLE001
                    raise InfrastructureFailure(f"the sandboxed worker could not be started: {exc}") from None
            self.protections = self.conn.protections
        return self.conn

    def fresh_test(self, timeout: float) -> tuple[Connection, dict]:
        """The worker for a new test, with the submission freshly imported: (connection,
        the reset reply). A worker that student code left threads or processes running in
        (the reply says "replace") is stopped and a new one started."""
        conn = self.connection()
        reply = conn.reset(timeout)
        if reply.get("replace"):
            conn.close()
            conn = self.connection()
            reply = conn.reset(timeout)
            self.replaced += 1
        return conn, reply

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()



_ERROR_CLASSES: dict[str, type] = {}


def student_error(err: dict, what: str) -> StudentCodeError:
    """A StudentCodeError (an AssertionError: the test fails) that is also the builtin exception
    type the student raised, so that `pytest.raises(ValueError)` works the same both ways."""
    name = err["type"][:200]
    cls = StudentCodeError
    base_name = err.get("base")
    base = getattr(builtins, base_name, None) if err.get("builtin") is True and type(base_name) is str else None
    if isinstance(base, type) and issubclass(base, Exception) and not issubclass(base, AssertionError):
        cls = _ERROR_CLASSES.get(base_name)
        if cls is None:
            try:
                cls = type(f"Student{base_name}", (StudentCodeError, base), {})
            except TypeError:  # builtin exceptions with incompatible layouts
                cls = StudentCodeError
            _ERROR_CLASSES[base_name] = cls
    message = err["message"][:20000]
    if err.get("kind") in ("missing", "grader"):
        return cls(message)
    if err.get("kind") == "limit":
        return cls(f"the value returned during {what} cannot be graded: {message}")
    return cls(f"student code raised {name} during {what}:\n{message}")

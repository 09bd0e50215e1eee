"""The `student` object in grading mode: a stand-in whose every use is a request to the worker.

``student.affine_forward(x, w, b)`` sends the arrays to the sandboxed worker, which calls the
submitted function and sends back plain data: arrays, numbers, strings, and tuples, lists and
dicts of them. Any other object the student returns (a model, a cache holding objects) stays
in the worker; the test gets a RemoteObject that forwards calls, attributes and items to it.

One worker per pytest session (kept on the config's stash), started on first use and started
again after it dies. Each test begins with a reset that imports the submission fresh. A call
that crashes the worker or runs past its time limit fails that test with the reason; the next
test gets a new worker.
"""
from __future__ import annotations

import builtins
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autograder import protocol as P
from autograder import sandbox
from autograder.config import AssignmentConfig
from autograder.loader import InputChangedError, StudentCodeError, input_changed_message

_POOL_KEY = pytest.StashKey["WorkerPool"]()
_STDERR_KEEP = 4000
_SIGNAL_WORDS = {
    signal.SIGSEGV: "segfault", signal.SIGBUS: "bus error", signal.SIGABRT: "aborted",
    signal.SIGFPE: "floating-point exception", signal.SIGILL: "illegal instruction",
    signal.SIGXCPU: "CPU time limit reached", signal.SIGXFSZ: "file size limit reached",
    signal.SIGKILL: "killed (out of memory, or a limit)",
}


class WorkerDied(StudentCodeError):
    """The worker process ended or was stopped while student code ran."""


class GraderProtocolError(StudentCodeError):
    """The worker sent something that is not a valid reply (no credit for the test)."""


# --- one worker process -----------------------------------------------------------------------

class Connection:
    """A started worker and its pipes. request() sends one frame and waits for the reply."""

    def __init__(self, assignment: AssignmentConfig, folder: Path, hide: list[Path], drop_user: bool = True) -> None:
        self.assignment = assignment
        files = [folder / f for f in assignment.files + assignment.support_files]
        t0 = time.perf_counter()
        self.started = sandbox.start(sandbox.SandboxSpec(
            files=files, limits=assignment.limits, hide=hide, drop_user=drop_user,
            cover=sandbox.package_paths(assignment.hidden_package_data)))
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
        self.max_frame = min(assignment.limits.memory_mb, 2048) * 1024 * 1024
        reply = self.request(
            {"op": "init", "dir": str(self.started.scratch), "modules": assignment.module_names
             + assignment.support_module_names, "forbidden": list(assignment.forbidden_imports),
             "output_limit": limit},
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
                failure = _student_error(err, what) if valid else GraderProtocolError(
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
            self.close()
            raise WorkerDied(self._death(what)) from None

    _MAX_UNANSWERED = 32

    def receive(self, timeout: float, what: str = "the call") -> tuple[dict, list[bytes]]:
        try:
            return self.reader.read(self.max_frame, time.monotonic() + timeout)
        except P.FrameTimeout:
            died = self.started.proc.poll() is not None
            self.close()
            if died:
                raise WorkerDied(self._death(what)) from None
            raise WorkerDied(f"{what} timed out after {timeout:g} s (the worker was stopped)") from None
        except (P.PeerGone, OSError):
            self.close()
            raise WorkerDied(self._death(what)) from None
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

    def _death(self, what: str) -> str:
        try:
            rc = self.started.proc.wait(timeout=2)
        except Exception:  # noqa: BLE001
            rc = None
        if rc is None:
            reason = "worker crashed: its pipe closed"
        elif rc < 0:
            sig = -rc
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            reason = f"worker crashed: {_SIGNAL_WORDS.get(sig, name)} (signal {sig}, {name})"
        else:
            reason = f"worker exited with status {rc} (student code ended the process)"
        self._drain.join(timeout=0.5)
        tail = bytes(self._stderr[-600:]).decode("utf-8", "replace").strip()
        return f"{reason} during {what}" + (f"\nlast output:\n{tail}" if tail else "")

    def close(self) -> None:
        if self.alive:
            self.alive = False
            sandbox.stop(self.started)


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

    def connection(self) -> Connection:
        """The live worker, started if need be. No student code runs before the worker
        answers its first request, so a failure to start is the machine's, not the
        submission's: it is retried once without the user switch, then reported."""
        if self.conn is None or not self.conn.alive:
            try:
                self.conn = Connection(self.assignment, self.folder, self.hide, self.drop_user)
            except Exception as first:  # noqa: BLE001
                if not self.drop_user:
                    raise WorkerDied(f"the sandboxed worker could not be started: {first}") from None
                self.drop_user = False
                try:
                    self.conn = Connection(self.assignment, self.folder, self.hide, self.drop_user)
                except Exception as exc:  # noqa: BLE001
                    raise WorkerDied(f"the sandboxed worker could not be started: {exc}") from None
            self.protections = self.conn.protections
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _pool(request: pytest.FixtureRequest, assignment: AssignmentConfig, folder: Path) -> WorkerPool:
    config = request.config
    pool = config.stash.get(_POOL_KEY, None)
    if pool is None:
        hide = [assignment.root, Path(folder).resolve().parent]
        report = config.getoption("--deepgrade-report", None)
        if report:
            hide.append(Path(report).resolve().parent)
        pool = WorkerPool(assignment, Path(folder), hide)
        config.stash[_POOL_KEY] = pool
        config.add_cleanup(pool.close)
    return pool


def student_for_test(request: pytest.FixtureRequest, assignment: AssignmentConfig, folder: Path) -> "StudentNamespace":
    """The `student` fixture's value in grading mode: the submission, reached through the
    session's worker, with the modules imported fresh for this test."""
    pool = _pool(request, assignment, folder)
    session = TestSession(pool, assignment)
    if len(pool.import_crashes) >= 2:
        # Importing the submission kills the worker every time: no point in starting it again.
        raise WorkerDied(pool.import_crashes[-1])
    try:
        conn = pool.connection()
        reply = conn.reset(assignment.timeouts.startup)
    except WorkerDied as exc:
        pool.import_crashes.append(str(exc))
        raise
    session.conn = conn
    request.addfinalizer(conn.finish_test)
    session.emit_output(reply)
    return StudentNamespace(session)


# --- one test's view of the worker -----------------------------------------------------------

class TestSession:
    """Per-test state: the connection, the test's deadline, the output budget."""

    __test__ = False  # not a pytest test class

    def __init__(self, pool: WorkerPool, assignment: AssignmentConfig) -> None:
        self.pool = pool
        self.conn: Connection | None = None
        self.timeouts = assignment.timeouts
        self.deadline = time.monotonic() + assignment.timeouts.test
        self.output_left = assignment.limits.output_kb * 1024

    def emit_output(self, reply: dict) -> None:
        out = reply.get("out")
        if type(out) is str and out and self.output_left > 0:
            text = out[: self.output_left]
            self.output_left -= len(text)
            sys.stdout.write(text if text.endswith("\n") else text + "\n")

    def request(self, header: dict, values: dict[str, Any] | None = None, what: str = "the call",
                scale: int = 1, answer: bool = True) -> tuple[dict, Any]:
        """Send one request whose `values` (name -> value) are encoded into the header; return
        (reply, decoded value). Raises StudentCodeError for an error in student code. With
        answer=False the reply is read later (Connection.send_unanswered)."""
        conn = self.conn
        if conn is None or not conn.alive:
            raise WorkerDied("the worker was restarted after an earlier failure in this test: "
                             "objects from before the restart are gone")
        enc = P.Encoder(lambda v: _encode_other(v, conn, enc))
        header = dict(header)
        for key, value in (values or {}).items():
            header[key] = enc.encode(value)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise WorkerDied(f"the test's time limit of {self.timeouts.test:g} s for student code ran out")
        timeout = min(self.timeouts.call * scale, left)
        if not answer:
            conn.send_unanswered(header, enc.blobs, what)
            return {"mut": None}, None
        reply, blobs = conn.request(header, enc.blobs, timeout=timeout, what=what)
        try:
            _check_reply(reply)
            self.emit_output(reply)
            if not reply["ok"]:
                raise _student_error(reply["error"], what)
            dec = P.Decoder(blobs, lambda node: _make_handle(node, self), conn.max_frame)
            value = dec.decode(reply["v"])
            mut = reply.get("mut")
            if mut is not None:
                mut = {"args": {int(k): dec.decode(v) for k, v in mut["args"].items()},
                       "kwargs": {k: dec.decode(v) for k, v in mut["kwargs"].items()}}
        except P.ProtocolError as exc:
            conn.close()
            raise GraderProtocolError(f"the worker sent an invalid reply during {what}: {exc}") from None
        return {"mut": mut}, value


def _check_reply(reply: dict) -> None:
    ok = reply.get("ok")
    if type(ok) is not bool or type(reply.get("out", "")) is not str:
        raise P.ProtocolError("a reply needs 'ok' (bool) and 'out' (str)")
    if ok:
        if "v" not in reply:
            raise P.ProtocolError("a successful reply needs a value")
        mut = reply.get("mut")
        if mut is not None:
            if type(mut) is not dict or set(mut) != {"args", "kwargs"} or \
                    type(mut["args"]) is not dict or type(mut["kwargs"]) is not dict:
                raise P.ProtocolError("malformed copy-back")
            if not all(k.isdigit() for k in mut["args"]):
                raise P.ProtocolError("malformed copy-back index")
    else:
        err = reply.get("error")
        if type(err) is not dict or not all(type(err.get(k)) is str for k in ("type", "message")):
            raise P.ProtocolError("malformed error reply")


_ERROR_CLASSES: dict[str, type] = {}


def _student_error(err: dict, what: str) -> StudentCodeError:
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
    return cls(f"student code raised {name} during {what}:\n{message}")


def _encode_other(value: Any, conn: Connection, enc: P.Encoder) -> Any:
    if isinstance(value, RemoteObject):
        session = object.__getattribute__(value, "_session")
        if session.conn is not conn or not conn.alive:
            raise WorkerDied("an object from an earlier test, or from before a worker restart, was used")
        node = {"t": "h", "id": object.__getattribute__(value, "_id"),
                "k": object.__getattribute__(value, "_kind"), "r": ""}
        attr = object.__getattribute__(value, "_attr")
        if attr is not None:
            node["a"] = attr
        return node
    if isinstance(value, np.ndarray) and value.dtype.kind in P.ARRAY_KINDS:
        return enc.encode(np.asarray(value).view(np.ndarray))
    raise TypeError(
        f"a {type(value).__name__} cannot be passed to student code in grading: pass numpy "
        "arrays, numbers, strings, None, tuples/lists/dicts of them, or objects student code returned"
    )


# --- stand-ins --------------------------------------------------------------------------------

class StudentNamespace:
    """The submission's modules as one namespace: attribute lookups are answered by the worker."""

    def __init__(self, session: TestSession) -> None:
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_cache", {})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        cache = object.__getattribute__(self, "_cache")
        if name not in cache:
            _, value = self._session.request({"op": "lookup", "name": name}, what=f"looking up `{name}`")
            cache[name] = value
        return cache[name]

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("the submission's modules cannot be changed from a test")

    def __repr__(self) -> str:
        return "<submission (sandboxed worker)>"


class RemoteObject:
    """An object that lives in the worker (a model, a cache, a function).

    Calls, attributes and items are forwarded. Plain data comes back by value; an attribute
    that is a dict or list comes back as a live RemoteObject, so ``model.params["W1"] = W``
    changes the model. Equality is identity: an object that claims to equal everything does
    not equal anything here.
    """

    __slots__ = ("_session", "_id", "_kind", "_label", "_attr", "_live")

    def __init__(self, session: TestSession, hid: int, kind: str, label: str, attr: str | None = None) -> None:
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_id", hid)
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_attr", attr)  # set: this is attribute `attr` of object `hid`
        object.__setattr__(self, "_live", {})  # attribute name -> its live stand-in

    def _req(self, op: str, what: str, values: dict | None = None, scale: int = 1, answer: bool = True,
             **fields) -> tuple[dict, Any]:
        session = object.__getattribute__(self, "_session")
        header = {"op": op, "target": object.__getattribute__(self, "_id"), **fields}
        attr = object.__getattribute__(self, "_attr")
        if attr is not None:
            header["attr"] = attr
        return session.request(header, values, what=what, scale=scale, answer=answer)

    def _what(self) -> str:
        return object.__getattribute__(self, "_label")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reply, value = self._req("call", f"{self._what()}()", {"args": list(args), "kwargs": kwargs})
        if reply["mut"]:
            # An array the test passed in is never changed here: a call that wrote into one
            # fails (a submission that zeroes its inputs must not make the reference, asked
            # about the same arrays afterwards, agree with it). Dicts and lists are state
            # (bn_param, an optimizer's config) and are mirrored below.
            changed = [(f"argument {i + 1}", args[i].shape) for i in sorted(reply["mut"]["args"])
                       if 0 <= i < len(args) and type(args[i]) is np.ndarray]
            changed += [(f"argument {k}=", kwargs[k].shape) for k in sorted(reply["mut"]["kwargs"])
                        if k in kwargs and type(kwargs[k]) is np.ndarray]
            if changed:
                raise InputChangedError(input_changed_message(f"{self._what()}()", changed))
            for i, new in reply["mut"]["args"].items():
                if 0 <= i < len(args):
                    _copy_back(args[i], new)
            for k, new in reply["mut"]["kwargs"].items():
                if k in kwargs:
                    _copy_back(kwargs[k], new)
        return value

    def map(self, arglists: list, kwargs: dict | None = None, output: int | None = None) -> list:
        """[f(*args, **kwargs)[output] for args in arglists], evaluated in one round trip."""
        arglists = [list(a) for a in arglists]
        _, value = self._req("map", f"{self._what()}() (batched)",
                             {"arglists": arglists, "kwargs": dict(kwargs or {})},
                             scale=max(1, len(arglists)), output=output)
        if type(value) is not list or len(value) != len(arglists):
            raise GraderProtocolError("a batched call returned the wrong number of results")
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        live = object.__getattribute__(self, "_live")
        if name in live:
            return live[name]
        value = self._req("getattr", f"reading .{name} of {self._what()}", name=name)[1]
        if isinstance(value, RemoteObject) and object.__getattribute__(value, "_attr") == name \
                and object.__getattribute__(value, "_id") == object.__getattribute__(self, "_id"):
            # A method, dict or list attribute: the stand-in looks it up afresh on every use,
            # so it can be kept and `model.params[k] = v` costs one round trip, not two.
            live[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        object.__getattribute__(self, "_live").pop(name, None)
        self._req("setattr", f"setting .{name} of {self._what()}", {"value": value}, name=name)

    def __getitem__(self, key: Any) -> Any:
        return self._req("getitem", f"reading an item of {self._what()}", {"key": key})[1]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._req("setitem", f"setting an item of {self._what()}", {"key": key, "value": value})

    def __delitem__(self, key: Any) -> None:
        self._req("delitem", f"deleting an item of {self._what()}", {"key": key})

    def __len__(self) -> int:
        n = self._req("len", f"len() of {self._what()}")[1]
        if type(n) is not int or n < 0:
            raise GraderProtocolError("len() must be a non-negative int")
        return n

    def __iter__(self):
        keys = self._req("keys", f"iterating over {self._what()}")[1]
        if type(keys) is not list:
            raise GraderProtocolError("iteration must give a list")
        return iter(keys)

    def __contains__(self, key: Any) -> bool:
        return self._req("contains", f"`in` on {self._what()}", {"key": key})[1] is True

    def __bool__(self) -> bool:
        return self._req("bool", f"bool() of {self._what()}")[1] is True

    def __eq__(self, other: Any) -> bool:
        return self is other

    def __ne__(self, other: Any) -> bool:
        return self is not other

    def __array__(self, dtype=None, copy=None):
        # Without this numpy would read a student object item by item as a sequence, and an
        # object array of the right numbers would pass where, in process, it fails.
        raise TypeError(f"{self._what()} is a student object, not an array")

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<student {self._what()}>"


class RemoteContainer(RemoteObject):
    """A student dict or list attribute, live in the worker (``model.params``)."""

    __slots__ = ()

    def __setitem__(self, key: Any, value: Any) -> None:
        # A builtin dict's item assignment cannot fail on a plain key: no need to wait.
        answer = object.__getattribute__(self, "_kind") != "dict"
        self._req("setitem", f"setting an item of {self._what()}", {"key": key, "value": value}, answer=answer)

    def map_assign(self, key: Any, values: list, fn: Any, args: tuple = (), kwargs: dict | None = None,
                   output: int | None = None) -> list:
        """For each value: self[key] = value, then fn(*args, **kwargs)[output]; one round trip.
        The container keeps the last value, as the same loop run here would leave it."""
        values = list(values)
        _, result = self._req("map_assign", f"{self._what()}[...] = value, then a call (batched)",
                              {"key": key, "values": values, "fn": fn, "args": list(args),
                               "kwargs": dict(kwargs or {})}, scale=max(1, len(values)), output=output)
        if type(result) is not list or len(result) != len(values):
            raise GraderProtocolError("a batched call returned the wrong number of results")
        return result

    def value(self) -> Any:
        """A copy of the whole container, by value."""
        return self._req("value", f"reading {self._what()}")[1]

    def keys(self):
        return self.value().keys()

    def values(self):
        return self.value().values()

    def items(self):
        return self.value().items()

    def get(self, key: Any, default: Any = None) -> Any:
        return self.value().get(key, default)

    def copy(self) -> Any:
        return self.value()

    def __eq__(self, other: Any) -> bool:
        return self.value() == other

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.value(), dtype=dtype)


def _make_handle(node: dict, session: TestSession) -> RemoteObject:
    cls = RemoteContainer if node["k"] in ("dict", "list") else RemoteObject
    return cls(session, node["id"], node["k"], node["r"], node.get("a"))


def _copy_back(orig: Any, new: Any) -> None:
    """Make `orig` (an argument the test passed) hold what student code left in it."""
    if type(orig) is np.ndarray and type(new) is np.ndarray:
        if orig.shape == new.shape and orig.flags.writeable:
            orig[...] = new.astype(orig.dtype, copy=False)
        return
    if type(orig) is dict and type(new) is dict:
        for k in [k for k in orig if k not in new]:
            del orig[k]
        for k, v in new.items():
            if k in orig and type(orig[k]) in (np.ndarray, dict, list) and type(orig[k]) is type(v) \
                    and (type(v) is not np.ndarray or orig[k].shape == v.shape):
                _copy_back(orig[k], v)
            else:
                orig[k] = v
        return
    if type(orig) is list and type(new) is list:
        orig[:] = new
        return
    if type(orig) is tuple and type(new) is tuple and len(orig) == len(new):
        for a, b in zip(orig, new):
            _copy_back(a, b)

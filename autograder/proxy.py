"""The `student` object in grading mode: a stand-in whose every use is a request to the worker.

``student.affine_forward(x, w, b)`` sends the arrays to the sandboxed worker, which calls the
submitted function and sends back plain data: arrays, numbers, strings, and tuples, lists and
dicts of them. Any other object the student returns (a model, a cache holding objects) stays
in the worker; the test gets a RemoteObject that forwards calls, attributes and items to it.

One worker per pytest session (kept on the config's stash, sandbox/connection.py), started on
first use and started again after it dies. Each test begins with a reset that imports the
submission fresh (in a new worker when the last test left threads or processes running). A
call that crashes the worker or runs past its time limit fails that test with the reason; the
next test gets a new worker. A worker lost to something outside the submission (killed from
outside its PID namespace, or not started) is recorded as an "infra" event for the test, which
the runner then grades again instead of scoring it.
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autograder.config import AssignmentConfig
from autograder.loader import InputChangedWarning, input_changed_message
from autograder.sandbox import protocol as P
from autograder.sandbox.connection import (
    Connection, GraderProtocolError, InfrastructureFailure, WorkerDied, WorkerPool, student_error,
)

_POOL_KEY = pytest.StashKey["WorkerPool"]()


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
    session = TestSession(pool, assignment, _InfraLog(request))
    if len(pool.import_crashes) >= 2:
        # Importing the submission kills the worker every time: no point in starting it again.
        raise WorkerDied(pool.import_crashes[-1])
    try:
        conn, reply = pool.fresh_test(assignment.timeouts.startup)
    except InfrastructureFailure as exc:
        session.infra.record(exc)
        raise
    except WorkerDied as exc:
        pool.import_crashes.append(str(exc))
        raise
    session.conn = conn
    request.addfinalizer(lambda: session.infra.watch(conn.finish_test))
    session.emit_output(reply)
    return StudentNamespace(session)


class _InfraLog:
    """Records, in the run's outcomes file, that a test lost its worker to something outside
    the submission's control (runner.read_outcomes reads these "infra" events): the runner
    then grades the test again in a fresh worker instead of scoring it. Recorded where the
    failure is raised, so that a test which catches the exception cannot hide it."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.nodeid = request.node.nodeid
        self.path = request.config.getoption("--deepgrade-report", None)

    def record(self, exc: InfrastructureFailure) -> None:
        if self.path:
            line = json.dumps({"event": "infra", "nodeid": self.nodeid, "message": str(exc)}) + "\n"
            # One O_APPEND write per line: lines of the plugin's own handle are never split.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)

    def watch(self, fn, *args, **kwargs):
        """fn(*args, **kwargs), recording an InfrastructureFailure it raises."""
        try:
            return fn(*args, **kwargs)
        except InfrastructureFailure as exc:
            self.record(exc)
            raise


# --- one test's view of the worker -----------------------------------------------------------

class TestSession:
    """Per-test state: the connection, the test's deadline, the output budget."""

    __test__ = False  # not a pytest test class

    def __init__(self, pool: WorkerPool, assignment: AssignmentConfig, infra: _InfraLog) -> None:
        self.pool = pool
        self.infra = infra
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
            self.infra.watch(conn.send_unanswered, header, enc.blobs, what)
            return {"mut": None}, None
        reply, blobs = self.infra.watch(conn.request, header, enc.blobs, timeout=timeout, what=what)
        try:
            _check_reply(reply)
            self.emit_output(reply)
            if not reply["ok"]:
                raise student_error(reply["error"], what)
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

    @property
    def __name__(self) -> str:  # what a message calls a student function, as it would locally
        return object.__getattribute__(self, "_label")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reply, value = self._req("call", f"{self._what()}()", {"args": list(args), "kwargs": kwargs})
        if reply["mut"]:
            # The worker's arrays are its own copies: an array the test passed in never changes
            # here (a submission that zeroes its inputs cannot make the reference, asked about
            # the same arrays afterwards, agree with it). A write into one is a warning; the
            # rule is graded by its own tests. Dicts and lists are state (bn_param, an
            # optimizer's config) and are mirrored below.
            changed = [(f"argument {i + 1}", _shape(args[i])) for i in sorted(reply["mut"]["args"])
                       if 0 <= i < len(args) and _is_arrays(args[i])]
            changed += [(f"argument {k}=", _shape(kwargs[k])) for k in sorted(reply["mut"]["kwargs"])
                        if k in kwargs and _is_arrays(kwargs[k])]
            if changed:
                warnings.warn(InputChangedWarning(input_changed_message(f"{self._what()}()", changed)),
                              stacklevel=2)
            for i, new in reply["mut"]["args"].items():
                if 0 <= i < len(args) and not _is_arrays(args[i]):
                    _copy_back(args[i], new)
            for k, new in reply["mut"]["kwargs"].items():
                if k in kwargs and not _is_arrays(kwargs[k]):
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
        if object.__getattribute__(self, "_kind") == "array":
            raise TypeError(f"student code returned {self._what()}: only arrays of numbers or booleans "
                            "can be graded (dtype object holds Python objects); convert it, e.g. with "
                            ".astype(np.float64)")
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


def _is_arrays(value: Any) -> bool:
    """An ndarray, or a tuple holding one: what student code gets as a private copy."""
    if type(value) is np.ndarray:
        return True
    return type(value) is tuple and any(_is_arrays(v) for v in value)


def _shape(value: Any) -> Any:
    return value.shape if type(value) is np.ndarray else tuple(_shape(v) for v in value if _is_arrays(v))


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

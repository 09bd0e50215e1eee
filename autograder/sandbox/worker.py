"""The sandboxed worker: imports the submitted modules and answers calls from the grader.

This file runs in the child process that process.py starts (``python -I``, limits applied,
usually as an unprivileged user). It is handed to the interpreter as source text together with
protocol.py, so it imports nothing from the engine. The loop:

    init  -> the scratch folder, module names, forbidden imports, output cap, reply budgets
    reset -> drop every handle and import the student's modules fresh (once per test); or, when
             student code left threads or processes running, answer "replace" (the grader
             then starts a new worker: a spinning thread must not slow every later test)
    then one request per frame: lookup, call, map, map_assign, getattr, setattr, getitem,
    setitem, delitem, len, keys, contains, bool, value

and one reply per request: ``{"ok": true, "v": value, "out": printed text, "mut": copy-backs}``
or ``{"ok": false, "error": {...}, "out": ...}``. Any exception, SystemExit and
KeyboardInterrupt included, is caught and reported; only a dead process (os._exit, a signal)
ends the loop, and the grader sees that as a crash.
"""
from __future__ import annotations

import builtins
import importlib.abc
import importlib.util
import io
import os
import sys
import threading
import traceback
from typing import Any

import numpy as np

P = sys.modules["_deepgrade_protocol"]  # protocol.py, loaded by the bootstrap beside this file

_ALWAYS_BLOCKED = ("autograder", "solutions", "deepgrade", "conftest")
_REQUEST_LIMIT = 1 << 31


class _ImportGuard(importlib.abc.MetaPathFinder):
    """Refuses forbidden top-level packages with a message that names the rule."""

    def __init__(self, forbidden: list[str]) -> None:
        self.forbidden = set(forbidden)

    def find_spec(self, fullname, path=None, target=None):  # noqa: D401 - finder protocol
        top = fullname.partition(".")[0]
        if top in self.forbidden:
            raise ImportError(
                f"importing {top} is not allowed in this assignment "
                f"(grading.yml forbidden_imports: {', '.join(sorted(self.forbidden))})",
                name=fullname,
            )
        if top in _ALWAYS_BLOCKED:
            raise ImportError(f"student code may not import {top}", name=fullname)
        return None


class _CappedText(io.TextIOBase):
    """A text stream that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s) -> int:
        s = str(s)
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(s[:room])
            self.kept += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n... [{self.dropped} more characters of output dropped]"
        return out


class _Missing(Exception):
    """A name that none of the student's modules defines."""


class Worker:
    def __init__(self, req_fd: int, rep_fd: int) -> None:
        self.req_fd, self.rep_fd = req_fd, rep_fd
        self.folder = ""
        self.names: list[str] = []
        self.modules: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.handles: dict[int, Any] = {}
        self.code: dict[str, tuple[bytes, Any]] = {}  # module name -> (source bytes, code object)
        self.cache_code = True
        self.next_id = 1
        self.output_limit = 65536
        self.reply_limit: int | None = None  # bytes of arrays in one reply
        self.value_limit: int | None = None  # bytes of a reply's plain data (JSON)
        self.pid = os.getpid()
        self.thread = threading.get_ident()
        # The builtins as they were before any student code ran; restored after each request
        # so that a submission that patches them cannot break the worker's own replies.
        self.builtins = dict(vars(builtins))

    # --- values ----------------------------------------------------------------------------

    def _handle(self, obj: Any) -> dict:
        hid = self.next_id
        self.next_id += 1
        self.handles[hid] = obj
        t = type(obj)
        kind = "dict" if t is dict else "list" if t is list else "callable" if callable(obj) else "object"
        # The type's name, never repr(obj): student code must not run to describe a handle.
        name = getattr(obj, "__qualname__", None) if kind == "callable" else None
        label = name if type(name) is str else f"{t.__module__}.{t.__qualname__} object"
        if isinstance(obj, np.ndarray):
            # An array that cannot cross (dtype object, strings, records): say so, not
            # "a student object". dtype and shape are numpy's own, read without student code.
            kind = "array"
            dtype, shape = np.ndarray.__getattribute__(obj, "dtype"), np.ndarray.__getattribute__(obj, "shape")
            label = f"an array of dtype {dtype} and shape {shape}"
        return {"t": "h", "id": hid, "k": kind, "r": label[: P.MAX_REPR]}

    def encoder(self):
        enc = P.Encoder(lambda v: self._other(v, enc), self.reply_limit, self.value_limit)
        return enc

    def _other(self, value: Any, enc) -> Any:
        if isinstance(value, np.ndarray) and value.dtype.kind in P.ARRAY_KINDS and not value.dtype.fields:
            # An ndarray subclass crosses as the plain array it holds; its methods are not
            # called (np.ndarray's own are), so it cannot change what is sent.
            enc.reserve(np.ndarray.view(value, np.ndarray))  # before the copy: it may be huge
            try:
                plain = np.ndarray.view(np.ndarray.copy(value), np.ndarray)
            except Exception:  # noqa: BLE001 - a subclass that cannot be read stays a handle
                return self._handle(value)
            return {"t": "nd", "b": enc.blob(P.array_to_npy(plain))}
        return self._handle(value)

    def decode(self, node: Any, blobs: list[bytes]) -> Any:
        return P.Decoder(blobs, self._resolve).decode(node)

    def _resolve(self, node: dict) -> Any:
        try:
            obj = self.handles[node["id"]]
        except KeyError:
            raise _Stale() from None
        return getattr(obj, node["a"]) if "a" in node else obj

    # --- student modules ---------------------------------------------------------------------

    def load(self) -> dict:
        """Import every student module fresh; returns {"errors": name -> message}."""
        self.handles.clear()
        for n in self.names:
            sys.modules.pop(n, None)
        self.modules, self.errors = {}, {}
        for name in self.names:
            if name in sys.modules:  # imported already by a sibling's `import name`
                self.modules[name] = sys.modules[name]
                continue
            path = os.path.join(self.folder, name + ".py")
            if not os.path.isfile(path):
                self.errors[name] = f"{name}.py is missing"
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                # Executed fresh for every test, but compiled once per distinct source: the file
                # is read each time, so a module that rewrites itself is still seen as it is now.
                exec(self._compiled(name, path), module.__dict__)  # noqa: S102
            except BaseException as exc:  # noqa: BLE001 - SystemExit at import is a failure too
                sys.modules.pop(name, None)
                self.errors[name] = (
                    f"{name}.py raised {_type_name(exc)} while being imported:\n" + self._trim(exc)
                )
                continue
            self.modules[name] = module
        for name in list(self.modules):
            if name in self.errors:
                del self.modules[name]
        return {"errors": self.errors}

    def _compiled(self, name: str, path: str) -> Any:
        """The code object of the module file at `path`, as the import system would compile
        it (raises SyntaxError the same way), reused while the file's bytes are unchanged."""
        with open(path, "rb") as fh:
            source = fh.read()
        cached = self.code.get(name)
        if cached is None or cached[0] != source or not self.cache_code:
            cached = self.code[name] = (source, compile(source, path, "exec", dont_inherit=True))
        return cached[1]

    def leftovers(self) -> str | None:
        """What student code left running after its test, or None: threads (any thread that
        runs Python, other than the worker's own) and child processes (in its own PID
        namespace, every process left there is one; exited ones are reaped here)."""
        found = []
        threads = sum(1 for ident in sys._current_frames() if ident != self.thread)
        if threads:
            found.append(f"{threads} thread(s)")
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                found.append("child processes")
                break
        return " and ".join(found) + " started by student code still running" if found else None

    def lookup(self, name: str) -> Any:
        for mod_name in self.names:
            module = self.modules.get(mod_name)
            if module is not None and name in vars(module):
                return vars(module)[name]
        if self.errors:
            problems = "\n\n".join(self.errors.values())
            raise _Missing(f"cannot use `{name}` from the submission:\n{problems}")
        files = ", ".join(f"{n}.py" for n in self.names)
        raise _Missing(f"the submission does not define `{name}` (looked in {files})")

    def _trim(self, exc: BaseException) -> str:
        """The traceback of exc cut to the student's own frames, file names only."""
        try:
            frames = [
                f for f in traceback.extract_tb(exc.__traceback__)
                if os.path.isabs(f.filename) and os.path.dirname(f.filename) == self.folder
            ]
            for f in frames:
                f.filename = os.path.basename(f.filename)
            text = "".join(traceback.format_list(frames)) if frames else ""
            if frames:
                text = "Traceback (most recent call last):\n" + text
            try:
                text += "".join(traceback.format_exception_only(type(exc), exc))
            except BaseException:  # noqa: BLE001 - a hostile __str__
                text += f"{_type_name(exc)}: <the exception could not be printed>\n"
            return text.rstrip()
        except BaseException:  # noqa: BLE001
            return _type_name(exc)

    # --- requests ----------------------------------------------------------------------------

    def serve(self) -> None:
        reader = P.FrameReader(self.req_fd)
        header, _ = reader.read(_REQUEST_LIMIT)
        self.folder = os.path.abspath(header["dir"])
        self.names = list(header["modules"])
        self.output_limit = int(header["output_limit"])
        self.reply_limit = header.get("reply_limit")
        self.value_limit = header.get("value_limit")
        self.cache_code = header.get("cache_code", True) is not False
        sys.meta_path.insert(0, _ImportGuard(header["forbidden"]))
        sys.path.insert(0, self.folder)
        os.chdir(self.folder)
        P.write_frame(self.rep_fd, {"ok": True, "pid": os.getpid()})
        while True:
            try:
                header, blobs = reader.read(_REQUEST_LIMIT)
            except P.PeerGone:
                os._exit(0)
            if os.getpid() != self.pid:
                os._exit(0)
            self.answer(header, blobs)

    def answer(self, header: dict, blobs: list[bytes]) -> None:
        out = _CappedText(self.output_limit)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        mut: dict = {}
        try:
            reply_value = self.dispatch(header, blobs, mut)
            reply = {"ok": True}
        except _Reply as r:
            reply_value, reply = None, r.reply
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            reply_value, reply = None, {"ok": False, "error": self._error(exc)}
        finally:
            sys.stdout, sys.stderr = saved
            self._restore_builtins()
        try:
            node, out_blobs = self._encode_reply(reply_value, mut)
        except P.ValueTooLarge as exc:
            node, out_blobs = None, []
            reply = _limit_error(f"it is too large to send back to the grader: {exc}")
        except MemoryError:
            node, out_blobs = None, []
            reply = _limit_error("the worker ran out of memory while copying it to send back to the grader")
        except BaseException as exc:  # noqa: BLE001 - a value that cannot be encoded
            node, out_blobs = None, []
            reply = _limit_error(f"it could not be sent back to the grader ({_type_name(exc)})")
        if os.getpid() != self.pid:
            # A child that student code forked: it must never speak on the grader's pipe.
            os._exit(0)
        reply["out"] = out.text()
        if reply["ok"] and "v" not in reply:
            reply["v"] = node["v"]
            if node.get("mut"):
                reply["mut"] = node["mut"]
        try:
            frame = P.pack_frame(reply, out_blobs)
        except MemoryError:
            frame = None
        head = len(frame) - sum(len(b) + 8 for b in out_blobs) - 16 if frame is not None else None
        if head is None or (self.value_limit is not None
                            and head > P.header_budget(self.value_limit, self.output_limit)):
            # Lists, strings and numbers (not arrays) cost the grader many times their size to
            # read: past the budget the value does not cross, and the test says why.
            size = "more memory than the worker has" if head is None else P.human_bytes(head)
            reply = _limit_error(f"it is too large to send back to the grader: as plain data (lists, "
                                 f"dicts, strings, numbers) it takes {size}, more than the "
                                 f"{P.human_bytes(self.value_limit or 0)} that can cross: return large "
                                 "data as numpy arrays")
            reply["out"] = out.text()
            frame = P.pack_frame(reply, [])
        P.write_all(self.rep_fd, frame)

    def _restore_builtins(self) -> None:
        current = vars(builtins)
        if current == self.builtins:  # the common case, compared in C
            return
        for name in [n for n in current if n not in self.builtins]:
            del current[name]
        for name, value in self.builtins.items():
            if current.get(name) is not value:
                current[name] = value

    def _encode_reply(self, value: Any, mut: dict) -> tuple[dict, list[bytes]]:
        enc = self.encoder()
        node = {"v": _encode_inline(enc, value)}
        if mut:
            node["mut"] = {
                "args": {str(i): _encode_inline(enc, v) for i, v in mut.get("args", {}).items()},
                "kwargs": {k: _encode_inline(enc, v) for k, v in mut.get("kwargs", {}).items()},
            }
        return node, enc.blobs

    def _error(self, exc: BaseException) -> dict:
        if isinstance(exc, _Missing):
            return {"kind": "missing", "type": "AttributeError", "builtin": False, "message": str(exc)}
        if isinstance(exc, _Stale):
            return {"kind": "grader", "type": "LookupError", "builtin": False,
                    "message": "an object from an earlier test was used (handles live for one test)"}
        name = _type_name(exc)
        message = self._trim(exc)
        if not isinstance(exc, Exception):
            message += f"\n(student code raised {name}, which the grader treats as a failure)"
        # The nearest builtin class (numpy's _ArrayMemoryError -> MemoryError), so that a test's
        # pytest.raises(MemoryError) means the same in grading as locally.
        base = next((c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins"), "")
        return {"kind": "student", "type": name, "builtin": isinstance(exc, Exception),
                "base": base, "message": message}

    def dispatch(self, h: dict, blobs: list[bytes], mut: dict) -> Any:
        op = h.get("op")
        if op == "reset":
            left = self.leftovers()
            if left:
                # Not imported: the grader replaces this worker before the next test.
                raise _Reply({"ok": True, "errors": {}, "replace": left})
            raise _Reply({"ok": True, "errors": self.load()["errors"]})
        if op == "lookup":
            return _Live(self.lookup(h["name"]), live=False)
        if h.get("target") not in self.handles:
            raise _Stale()
        target = self.handles[h["target"]]
        attr = h.get("attr")
        if attr is not None:
            target = getattr(target, attr)
        if op == "call":
            args = self.decode(h["args"], blobs)
            kwargs = self.decode(h["kwargs"], blobs)
            snaps = {i: _snapshot(a) for i, a in enumerate(args) if _mutable(a)}
            ksnaps = {k: _snapshot(a) for k, a in kwargs.items() if _mutable(a)}
            result = target(*args, **kwargs)
            mut["args"] = {i: args[i] for i, s in snaps.items() if _changed(s)}
            mut["kwargs"] = {k: kwargs[k] for k, s in ksnaps.items() if _changed(s)}
            if not mut["args"] and not mut["kwargs"]:
                mut.clear()
            return result
        if op == "map":
            arglists = self.decode(h["arglists"], blobs)
            kwargs = self.decode(h["kwargs"], blobs)
            output = h.get("output")
            results = []
            for args in arglists:
                r = target(*args, **kwargs)
                results.append(r[output] if output is not None else r)
            return results
        if op == "map_assign":
            # A gradient check of a model's loss with respect to one of its parameters, in one
            # round trip: target[key] = value, then fn(*args, **kwargs), for every value.
            key = self.decode(h["key"], blobs)
            values = self.decode(h["values"], blobs)
            fn = self.decode(h["fn"], blobs)
            args = self.decode(h["args"], blobs)
            kwargs = self.decode(h["kwargs"], blobs)
            output = h.get("output")
            results = []
            for value in values:
                target[key] = value
                r = fn(*args, **kwargs)
                results.append(r[output] if output is not None else r)
            return results
        if op == "getattr":
            value = getattr(target, h["name"])
            if attr is None and (type(value) in (dict, list) or callable(value)):
                # Looked up afresh on every use (model.params, model.loss): no new handle, and
                # the grader may reuse this answer without asking again.
                kind = "dict" if type(value) is dict else "list" if type(value) is list else "callable"
                raise _Reply({"ok": True, "v": {"t": "h", "id": h["target"], "k": kind,
                                                "r": f".{h['name']}"[: P.MAX_REPR], "a": h["name"]}})
            return _Live(value, live=True)
        if op == "setattr":
            setattr(target, h["name"], self.decode(h["value"], blobs))
            return None
        if op == "getitem":
            return _Live(target[self.decode(h["key"], blobs)], live=False)
        if op == "setitem":
            target[self.decode(h["key"], blobs)] = self.decode(h["value"], blobs)
            return None
        if op == "delitem":
            del target[self.decode(h["key"], blobs)]
            return None
        if op == "len":
            return len(target)
        if op == "keys":
            return list(target)
        if op == "contains":
            return self.decode(h["key"], blobs) in target
        if op == "bool":
            return bool(target)
        if op == "value":
            return target
        raise ValueError(f"unknown request {op!r}")


def _limit_error(message: str) -> dict:
    """An error reply for a value that cannot cross: the test fails with this message."""
    return {"ok": False, "error": {"kind": "limit", "type": "ValueError", "builtin": False, "message": message}}


class _Reply(Exception):
    """A reply that is not a value (reset's import report)."""

    def __init__(self, reply: dict) -> None:
        self.reply = reply


class _Stale(Exception):
    pass


class _Live:
    """A value to send; with live=True a dict or list crosses as a live handle, not a copy."""

    def __init__(self, value: Any, live: bool) -> None:
        self.value, self.live = value, live


def _encode_inline(enc, value: Any) -> Any:
    if isinstance(value, _Live):
        if value.live and type(value.value) in (dict, list):
            return enc._other(value.value)
        value = value.value
    return enc.encode(value)


def _mutable(v: Any) -> bool:
    return type(v) in (np.ndarray, dict, list, tuple)


def _snapshot(v: Any, depth: int = 0) -> tuple:
    """What an argument held before the call, to see afterwards whether it was changed."""
    t = type(v)
    if t is np.ndarray:
        return ("nd", v, v.shape, v.dtype, v.tobytes())
    if depth > 8:
        return ("leaf", v)
    if t is dict:
        return ("dict", v, dict(v), {k: _snapshot(x, depth + 1) for k, x in v.items()})
    if t is list or t is tuple:
        return ("seq", v, list(v), [_snapshot(x, depth + 1) for x in v])
    return ("leaf", v)


def _changed(s: tuple) -> bool:
    kind, v = s[0], s[1]
    if kind == "nd":
        return v.shape != s[2] or v.dtype != s[3] or v.tobytes() != s[4]
    if kind == "dict":
        before = s[2]
        if v.keys() != before.keys() or any(v[k] is not before[k] for k in before):
            return True
        return any(_changed(x) for x in s[3].values())
    if kind == "seq":
        before = s[2]
        if len(v) != len(before) or any(a is not b for a, b in zip(v, before)):
            return True
        return any(_changed(x) for x in s[3])
    return False


def _type_name(exc: BaseException) -> str:
    t = type(exc)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _not_dumpable() -> None:
    """Other processes of the same (unprivileged) user, say one left behind by an earlier
    submission, must not ptrace this worker or read its memory."""
    try:
        import ctypes  # noqa: PLC0415

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:  # noqa: BLE001 - not Linux: nothing to do
        pass


def main() -> None:
    _not_dumpable()
    req_fd, rep_fd = int(sys.argv[-2]), int(sys.argv[-1])
    # Printing goes through a capped buffer per request; these are only for the interpreter's
    # own last words (a fatal error), which the grader drains and caps.
    Worker(req_fd, rep_fd).serve()


main()

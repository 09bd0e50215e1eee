"""The wire format between the trusted grader and the sandboxed worker.

A message is one frame on a pipe:

    u64 payload length | u32 header length | header (JSON, UTF-8) | u32 blob count |
    (u64 blob length | blob bytes) * count

Values inside a header are "plain data": None, bool, int, float and str as themselves, and
tagged objects for the rest:

    {"t": "tuple" | "list", "v": [values]}
    {"t": "dict", "k": [keys], "v": [values]}
    {"t": "nd", "b": blob index}              a numpy array, the blob is .npy bytes
    {"t": "ns", "b": blob index}              a numpy scalar, as a 0-d .npy array
    {"t": "dt", "v": "<f8", "k": "type" | "dtype"}  np.float64 or np.dtype("float64")
    {"t": "h", "id": int, "k": kind, "r": repr}  an object that stays in the worker
    {"t": "h", ..., "a": name}                attribute `name` of that object, looked up afresh

Arrays are read with ``allow_pickle=False`` and only numeric and bool dtypes are accepted, so
nothing that crosses can run code when it is read: nothing is ever unpickled. This module is
loaded by the worker by file path (it must not import the rest of the engine) and uses only
the standard library and numpy.
"""
from __future__ import annotations

import array
import io
import json
import os
import re
import select
import struct
import time
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

MAX_DEPTH = 64  # nesting of plain data; deeper structures stay in the worker as handles
MAX_REPR = 200
# A header's JSON (plain data: numbers, strings, lists, dicts) turns into Python objects many
# times its size, so it gets a budget of its own, far below that of arrays (blobs, which are
# read without a copy). 4 MB of JSON is at most about 100 MB of objects.
HEADER_LIMIT = 4 << 20
HANDLE_KINDS = ("callable", "dict", "list", "object", "array")
ARRAY_KINDS = "biufc"  # bool, signed, unsigned, float, complex: nothing that can hold code

_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=True)  # one instance: it is reused
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class ProtocolError(Exception):
    """A frame or value broke the protocol: too large, malformed, or of a forbidden type."""


class PeerGone(Exception):
    """The other end closed its pipe (the worker died) before a whole frame arrived."""


class FrameTimeout(Exception):
    """No whole frame arrived before the deadline."""


class ValueTooLarge(Exception):
    """A value is too large to send within the reply budget; the message says what it is."""


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KB' (powers of 1024)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


# --- frames -------------------------------------------------------------------------------

def pack_frame(header: dict, blobs: list[bytes]) -> bytes:
    """One frame (bytes) holding a JSON header and binary blobs."""
    head = _JSON.encode(header).encode("utf-8")
    parts = [_U32.pack(len(head)), head, _U32.pack(len(blobs))]
    for b in blobs:
        parts += [_U64.pack(len(b)), b]
    payload_len = sum(len(p) for p in parts)
    return _U64.pack(payload_len) + b"".join(parts)


def write_frame(fd: int, header: dict, blobs: list[bytes] | None = None) -> None:
    """Write a whole frame to a file descriptor (blocking)."""
    write_all(fd, pack_frame(header, blobs or []))


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to a file descriptor (blocking)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def header_budget(value_limit: int, output_limit: int) -> int:
    """The largest header a reply may have: `value_limit` bytes of plain data, the printed
    output (`output_limit` characters, up to 6 bytes each in JSON) and the reply's own keys."""
    return value_limit + 6 * output_limit + 4096


class FrameReader:
    """Reads frames from a pipe, buffering so that a small reply costs one read."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()

    def _fill(self, n: int, deadline: float | None) -> None:
        while len(self.buf) < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                ready = select.select([self.fd], [], [], left)[0] if left > 0 else []
                if not ready:
                    raise FrameTimeout()
            chunk = os.read(self.fd, max(n - len(self.buf), 1 << 16))
            if not chunk:
                raise PeerGone()
            self.buf += chunk

    def read(self, max_bytes: int, deadline: float | None = None,
             max_header: int | None = None) -> tuple[dict, list[bytes]]:
        """One frame: (header, blobs). Raises FrameTimeout past `deadline` (time.monotonic()),
        PeerGone at end of file, ProtocolError for a malformed or oversized frame (over
        max_bytes in all, or a header over max_header bytes), before reading the rest of it."""
        self._fill(8, deadline)
        (size,) = _U64.unpack_from(self.buf, 0)
        if size > max_bytes:
            raise ProtocolError(f"a message of {human_bytes(size)} is over the limit of {human_bytes(max_bytes)}")
        if max_header is not None:
            self._fill(min(12, 8 + size), deadline)
            if size >= 4 and _U32.unpack_from(self.buf, 8)[0] > max_header:
                raise ProtocolError(f"a message whose plain data takes {human_bytes(_U32.unpack_from(self.buf, 8)[0])} "
                                    f"is over the limit of {human_bytes(max_header)}")
        self._fill(8 + size, deadline)
        # A bytearray of its own: arrays are read straight out of it, writable, not copied.
        if len(self.buf) == 8 + size:
            payload, self.buf = self.buf, bytearray()  # the whole buffer: no copy of a large frame
            del payload[:8]
        else:
            payload = self.buf[8:8 + size]
            del self.buf[:8 + size]
        return unpack_payload(payload, max_header)


class Blobs(Sequence):
    """The blobs of one frame: views into its payload, made when read. Only their offsets are
    kept (16 bytes a blob), so that a frame of a million empty blobs costs 16 MB, not the
    200 MB of a million views."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._spans = array.array("Q")

    def add(self, start: int, length: int) -> None:
        self._spans.extend((start, length))

    def __len__(self) -> int:
        return len(self._spans) // 2

    def __getitem__(self, i: int) -> memoryview:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        start, length = self._spans[2 * (i % len(self))], self._spans[2 * (i % len(self)) + 1]
        return self._view[start:start + length]


def unpack_payload(payload: bytes | bytearray, max_header: int | None = None) -> tuple[dict, Blobs]:
    """Split a frame's payload into (header, blobs), checking every length against the
    payload's size (and the header's against max_header). Blobs are views into the payload."""
    view = memoryview(payload)
    try:
        pos = 0
        (hlen,) = _U32.unpack_from(payload, pos)
        pos += 4
        if pos + hlen > len(payload):
            raise ProtocolError("header runs past the end of the message")
        if max_header is not None and hlen > max_header:
            raise ProtocolError(f"a message whose plain data takes {human_bytes(hlen)} is over the limit "
                                f"of {human_bytes(max_header)}")
        header = json.loads(str(view[pos:pos + hlen], "utf-8"))
        pos += hlen
        (count,) = _U32.unpack_from(payload, pos)
        pos += 4
        blobs = Blobs(view)
        for _ in range(count):
            (blen,) = _U64.unpack_from(payload, pos)
            pos += 8
            if pos + blen > len(payload):
                raise ProtocolError("a blob runs past the end of the message")
            blobs.add(pos, blen)
            pos += blen
        if pos != len(payload):
            raise ProtocolError("trailing bytes after the last blob")
    except ProtocolError:
        raise
    except (struct.error, ValueError, RecursionError) as exc:
        raise ProtocolError(f"malformed message ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise ProtocolError("the message header is not a JSON object")
    return header, blobs


# --- arrays ---------------------------------------------------------------------------------

_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_NPY_HEADER = re.compile(
    r"\{'descr': '([<>|=][biufc][0-9]{1,2})', 'fortran_order': (False|True), "
    r"'shape': \(((?:[0-9]{1,12}, ?){0,32}[0-9]{0,12})\), \} *\n"
)


_HEADERS: dict[tuple, bytes] = {}


def array_to_npy(a: np.ndarray) -> bytes:
    """.npy (format 1.0) bytes of a plain numeric array, C order."""
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)  # (keeps 0-d arrays 0-d only when already contiguous)
    key = (a.dtype.str, a.shape)
    head = _HEADERS.get(key)
    if head is None:
        text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % key
        pad = 64 - (len(_NPY_MAGIC) + 2 + len(text) + 1) % 64
        text = (text + " " * pad + "\n").encode("latin1")
        head = _NPY_MAGIC + struct.pack("<H", len(text)) + text
        if len(_HEADERS) < 4096:
            _HEADERS[key] = head
    return head + a.tobytes()


_PARSED: dict[bytes, tuple] = {}


def _parse_header(head: bytes) -> tuple | None:
    """(dtype, shape, count, fortran) from a .npy header numpy writes, or None for any other
    header. Raises ProtocolError for a dtype that cannot cross."""
    m = _NPY_HEADER.fullmatch(head.decode("latin1"))
    if m is None:
        return None
    try:
        dtype = np.dtype(m.group(1))
    except TypeError:
        raise ProtocolError(f"unknown dtype {m.group(1)!r}") from None
    if dtype.kind not in ARRAY_KINDS or dtype.fields:
        raise ProtocolError(f"arrays of dtype {dtype} cannot cross (numeric or bool only)")
    shape = tuple(int(x) for x in m.group(3).replace(" ", "").split(",") if x)
    count = 1
    for n in shape:
        count *= n
    parsed = (dtype, shape, count, m.group(2) == "True")
    if len(_PARSED) < 4096:
        _PARSED[head] = parsed
    return parsed


def npy_to_array(data: bytes, max_bytes: int | None = None) -> np.ndarray:
    """A writable plain ndarray from .npy bytes, never unpickling. Raises ProtocolError for a
    dtype that is not numeric or bool (object, structured, strings) or sizes that disagree.

    The header numpy itself writes is parsed by a strict pattern (fast); any other header
    goes through numpy's reader with allow_pickle=False.
    """
    parsed = None
    if len(data) >= 10 and bytes(data[:8]) == _NPY_MAGIC:
        (hlen,) = struct.unpack_from("<H", data, 8)
        head = bytes(data[10:10 + hlen])
        parsed = _PARSED.get(head)
        if parsed is None:
            parsed = _parse_header(head)
    if parsed is not None:
        dtype, shape, count, fortran = parsed
        offset = 10 + hlen
        if len(data) - offset != count * dtype.itemsize:
            raise ProtocolError("the array's data does not match its shape")
        if max_bytes is not None and count * dtype.itemsize > max_bytes:
            raise ProtocolError("an array over the size limit")
        flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        arr = flat.reshape(shape, order="F" if fortran else "C")
        # Bytes (read-only) or a misaligned view: copy; a view of the grader's own bytearray
        # is kept as it is (writable, and no one else holds it).
        return arr if arr.flags.writeable and arr.flags.aligned else arr.copy()
    try:
        arr = np.lib.format.read_array(io.BytesIO(bytes(data)), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any malformed array is a protocol error
        raise ProtocolError(f"not a valid .npy array ({type(exc).__name__}: {exc})") from None
    if type(arr) is not np.ndarray or arr.dtype.kind not in ARRAY_KINDS or arr.dtype.fields:
        raise ProtocolError(f"arrays of dtype {arr.dtype} cannot cross (numeric or bool only)")
    if max_bytes is not None and arr.nbytes > max_bytes:
        raise ProtocolError(f"an array of {arr.nbytes} bytes is over the limit")
    if not arr.flags.writeable:
        arr = arr.copy()
    return arr


# --- values ---------------------------------------------------------------------------------

_SCALARS = (type(None), bool, int, float, str)


class Encoder:
    """Turns a value into a JSON-able tree plus blobs.

    other(value) is called for anything that is not plain data: it returns a JSON-able node
    (a handle) or raises TypeError. Exact builtin types only: a subclass of dict or
    float is "other", so that student-defined behaviour (__eq__, __getitem__) never crosses.
    """

    def __init__(self, other: Callable[[Any], Any], max_bytes: int | None = None,
                 max_plain: int | None = None) -> None:
        self.blobs: list[bytes] = []
        self._other = other
        self._max = max_bytes  # arrays in all; past it encode() raises ValueTooLarge
        self._size = 0
        self._max_plain = max_plain  # about the JSON size of the plain data; the same
        self._plain = 0

    def blob(self, data: bytes) -> int:
        """Add a blob; returns its index."""
        self.blobs.append(data)
        return len(self.blobs) - 1

    def reserve(self, a: np.ndarray) -> None:
        """Count array `a` against the budget. Raises ValueTooLarge past it."""
        # Checked before the bytes are made: a broadcast view of 2e9 elements is 8 bytes in
        # memory and 16 GB as bytes.
        if self._max is not None:
            self._size += a.nbytes
            if self._size > self._max:
                what = f"an array of {a.size:,} elements ({human_bytes(a.nbytes)})"
                if self._size != a.nbytes:
                    what = f"arrays of {human_bytes(self._size)} in all (the last {what})"
                raise ValueTooLarge(f"{what}, and at most {human_bytes(self._max)} of arrays can cross "
                                    "(grading.yml limits.reply_mb)")

    def _count(self, n: int) -> None:
        # Checked as the value is encoded, so that ten million strings stop the encoding early
        # instead of being turned into JSON first.
        self._plain += n
        if self._max_plain is not None and self._plain > self._max_plain:
            raise ValueTooLarge(f"as plain data (lists, dicts, strings, numbers) it takes more than "
                                f"{human_bytes(self._max_plain)}, the most that can cross: return large "
                                "data as numpy arrays")

    def encode(self, value: Any, depth: int = 0) -> Any:
        t = type(value)
        if t in _SCALARS:
            self._count(len(value) + 3 if t is str else 8)
            return value
        if depth > MAX_DEPTH:
            return self._other(value)
        if t is np.ndarray and value.dtype.kind in ARRAY_KINDS and not value.dtype.fields:
            self.reserve(value)
            return {"t": "nd", "b": self.blob(array_to_npy(value))}
        if isinstance(value, np.generic) and type(value).__module__ == "numpy" \
                and value.dtype.kind in ARRAY_KINDS and not value.dtype.fields:
            return {"t": "ns", "b": self.blob(array_to_npy(np.asarray(value)))}
        if t is np.dtype or isinstance(value, np.dtype) or (
                t is type and issubclass(value, np.generic) and value.__module__ == "numpy"):
            dt = np.dtype(value)
            if dt.kind in ARRAY_KINDS and not dt.fields:
                return {"t": "dt", "v": dt.str, "k": "type" if t is type else "dtype"}
        if t is tuple or t is list:
            self._count(16)
            mark, size = len(self.blobs), self._size
            try:
                return {"t": t.__name__, "v": [self.encode(v, depth + 1) for v in value]}
            except RecursionError:
                del self.blobs[mark:]
                self._size = size
                return self._other(value)
        if t is dict:
            self._count(24)
            mark, size = len(self.blobs), self._size
            keys = list(value.keys())
            if not all(map(_plain_key, keys)):
                return self._other(value)
            try:
                return {
                    "t": "dict",
                    "k": [self.encode(k, depth + 1) for k in keys],
                    "v": [self.encode(value[k], depth + 1) for k in keys],
                }
            except RecursionError:
                del self.blobs[mark:]
                self._size = size
                return self._other(value)
        return self._other(value)


def _plain_key(k: Any) -> bool:
    t = type(k)
    if t in _SCALARS:
        return True
    return t is tuple and all(_plain_key(x) for x in k)


class Decoder:
    """Turns a JSON tree plus blobs back into values, strictly.

    handle(node) builds the local stand-in for {"t": "h", ...}. Anything that is not one of
    the documented node shapes raises ProtocolError.
    """

    def __init__(self, blobs: list[bytes], handle: Callable[[dict], Any], max_array_bytes: int | None = None):
        self._blobs = blobs
        self._handle = handle
        self._max = max_array_bytes
        self._used: set[int] = set()

    def _blob(self, node: dict) -> bytes:
        i = node.get("b")
        if type(i) is not int or not 0 <= i < len(self._blobs) or i in self._used:
            raise ProtocolError(f"bad blob reference {i!r}")
        self._used.add(i)
        return self._blobs[i]

    def decode(self, node: Any, depth: int = 0) -> Any:
        t = type(node)
        if t in _SCALARS:
            return node
        if depth > MAX_DEPTH + 2:
            raise ProtocolError("plain data nested too deeply")
        if t is not dict:
            raise ProtocolError(f"unexpected {t.__name__} in a message")
        tag = node.get("t")
        if tag == "nd":
            _only(node, {"t", "b"})
            return npy_to_array(self._blob(node), self._max)
        if tag == "ns":
            _only(node, {"t", "b"})
            arr = npy_to_array(self._blob(node), self._max)
            if arr.ndim != 0:
                raise ProtocolError("a numpy scalar must be a 0-d array")
            return arr[()]
        if tag == "dt":
            _only(node, {"t", "v", "k"})
            if type(node["v"]) is not str or len(node["v"]) > 8 or node["k"] not in ("type", "dtype"):
                raise ProtocolError("malformed dtype")
            try:
                dt = np.dtype(node["v"])
            except TypeError:
                raise ProtocolError(f"unknown dtype {node['v']!r}") from None
            if dt.kind not in ARRAY_KINDS or dt.fields:
                raise ProtocolError(f"dtype {dt} cannot cross")
            return dt.type if node["k"] == "type" else dt
        if tag in ("tuple", "list"):
            _only(node, {"t", "v"})
            items = node["v"]
            if type(items) is not list:
                raise ProtocolError("a sequence needs a list of values")
            out = [self.decode(v, depth + 1) for v in items]
            return tuple(out) if tag == "tuple" else out
        if tag == "dict":
            _only(node, {"t", "k", "v"})
            keys, values = node["k"], node["v"]
            if type(keys) is not list or type(values) is not list or len(keys) != len(values):
                raise ProtocolError("a dict needs lists of keys and values of one length")
            out = {}
            for k, v in zip(keys, values):
                key = self.decode(k, depth + 1)
                if not _plain_key(key):
                    raise ProtocolError(f"a dict key of type {type(key).__name__}")
                out[key] = self.decode(v, depth + 1)
            return out
        if tag == "h":
            if set(node) - {"a"} != {"t", "id", "k", "r"}:
                raise ProtocolError("malformed handle")
            if type(node["id"]) is not int or node["k"] not in HANDLE_KINDS or type(node["r"]) is not str \
                    or type(node.get("a", "")) is not str:
                raise ProtocolError("malformed handle")
            return self._handle({**node, "r": node["r"][:MAX_REPR]})
        raise ProtocolError(f"unknown value tag {tag!r}")


def _only(node: dict, keys: set[str]) -> None:
    if node.keys() != keys:
        raise ProtocolError(f"expected keys {sorted(keys)}, got {sorted(node)}")

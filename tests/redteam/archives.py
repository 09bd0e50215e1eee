"""Hostile zip archives, built byte by byte so that their headers can lie.

Used by test_archives.py and by benchmarks/bench_hostile_archives.py: build(members) makes the
bytes of a zip from Members, whose headers say exactly what they are given. Bombs are made from
compressed zeros without compressing gigabytes: a deflate stream of N MB of zeros is one
compressed megabyte (ended by a full flush, so it does not depend on what came before) repeated
N times; bzip2 and lzma streams are compressed once, and kept in a cache folder when one is
given (a gigabyte of bzip2 takes about 40 s to make).
"""
from __future__ import annotations

import bz2
import functools
import lzma
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64 = struct.Struct("<4sLQL")
MB = 1 << 20


@dataclass
class Member:
    """One zip member. data: the compressed bytes as stored. size: the uncompressed size the
    zip declares (which may lie); crc: the checksum it declares."""

    name: str
    data: bytes
    method: int = zipfile.ZIP_STORED
    size: int | None = None
    crc: int | None = None
    flags: int = 0
    mode: int = 0o100644  # unix mode in the external attributes (0o120777: a symbolic link)


def build(members: list[Member]) -> bytes:
    """The bytes of a zip holding `members`, their headers exactly as given."""
    out, central = bytearray(), bytearray()
    for m in members:
        name = m.name.encode()
        size = len(m.data) if m.size is None else m.size
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        offset = len(out)
        out += _LOCAL.pack(b"PK\x03\x04", 20, 0, m.flags, m.method, 0, 0x21, crc, len(m.data), size,
                           len(name), 0) + name + m.data
        central += _CENTRAL.pack(b"PK\x01\x02", 20, 3, 20, 0, m.flags, m.method, 0, 0x21, crc, len(m.data), size,
                                 len(name), 0, 0, 0, 0, (m.mode << 16) & 0xFFFFFFFF, offset) + name
    cd_offset = len(out)
    out += central
    count = len(members)
    if count > 0xFFFF:  # zip64 end records, as zipfile writes them
        end64 = len(out)
        out += _END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(central), cd_offset)
        out += _LOCATOR64.pack(b"PK\x06\x07", 0, end64, 1)
        count = 0xFFFF
    out += _END.pack(b"PK\x05\x06", 0, 0, count, count, len(central), cd_offset, 0)
    return bytes(out)


def stored(name: str, text: str) -> Member:
    return Member(name, text.encode())


def deflated(name: str, data: bytes) -> Member:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return Member(name, c.compress(data) + c.flush(), zipfile.ZIP_DEFLATED, len(data), zlib.crc32(data))


@functools.lru_cache(maxsize=4)
def deflate_zeros(megabytes: int) -> tuple[bytes, int]:
    """(a raw deflate stream of `megabytes` MB of zeros, their CRC-32), built in milliseconds."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = c.compress(bytes(MB)) + c.flush(zlib.Z_FULL_FLUSH)
    crc, zeros = 0, bytes(MB)
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    return segment * megabytes + b"\x03\x00", crc  # \x03\x00: an empty final block


def _cached(cache: Path | None, key: str, make) -> bytes:
    if cache is not None and (cache / key).exists():
        return (cache / key).read_bytes()
    data = make()
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / key).write_bytes(data)
    return data


def bzip2_zeros(megabytes: int, cache: Path | None = None) -> bytes:
    def make() -> bytes:
        c = bz2.BZ2Compressor(9)
        parts = [c.compress(bytes(16 * MB)) for _ in range(megabytes // 16)]
        return b"".join(parts) + c.compress(bytes((megabytes % 16) * MB)) + c.flush()
    return _cached(cache, f"zeros-{megabytes}mb.bz2", make)


def lzma_zeros(megabytes: int, cache: Path | None = None) -> bytes:
    """A zip member's lzma data: the zip's 4-byte header (version, size of properties), the 5
    property bytes, then the raw LZMA1 stream."""
    def make() -> bytes:
        filters = [{"id": lzma.FILTER_LZMA1, "preset": 0}]
        c = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=filters)
        parts = [c.compress(bytes(16 * MB)) for _ in range(megabytes // 16)]
        raw = b"".join(parts) + c.compress(bytes((megabytes % 16) * MB)) + c.flush()
        props = lzma._encode_filter_properties(filters[0])  # the 5 bytes zipfile writes too
        return struct.pack("<BBH", 9, 4, len(props)) + props + raw
    return _cached(cache, f"zeros-{megabytes}mb.lzma", make)


def bomb_member(method: int, megabytes: int, declared: int | None = 1000, cache: Path | None = None,
                name: str = "layers.py") -> Member:
    """A member `name` that inflates to `megabytes` MB of zeros while the zip declares
    `declared` bytes (None: the true size, an honest bomb)."""
    if method == zipfile.ZIP_DEFLATED:
        data, crc = deflate_zeros(megabytes)
    elif method == zipfile.ZIP_BZIP2:
        data, crc = bzip2_zeros(megabytes, cache), 0
    else:
        data, crc = lzma_zeros(megabytes, cache), 0
    return Member(name, data, method, megabytes * MB if declared is None else declared, crc)


def corrupt_member(method: int, name: str = "layers.py") -> Member:
    """A member whose compressed data is garbage (its headers are plausible)."""
    junk = bytes(range(256)) * 4
    data = {zipfile.ZIP_DEFLATED: b"\xff" * 64 + junk, zipfile.ZIP_BZIP2: b"BZh9" + junk,
            zipfile.ZIP_LZMA: struct.pack("<BBH", 9, 4, 5) + b"\x5d\x00\x00\x10\x00" + junk}[method]
    return Member(name, data, method, 5000, 12345)

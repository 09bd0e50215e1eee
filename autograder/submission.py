"""Collect a submission: find the graded files in a folder or a .zip, copy them to a scratch folder.

A file is found flat (``layers.py``), at its repository path (``assignments/hw1/layers.py``),
under the assignment's folder name (``hw1/layers.py``), or any of those inside one wrapping
folder (a zip of a folder). Only the files grading.yml lists are taken; everything else is
ignored and reported, except the manifest.json that `deepgrade submit` adds. Symbolic links are
never followed: one where a graded file should be is reported and the file counts as missing.

A zip is read with care, since its headers may lie. Nothing is extracted by path (a member's
name cannot escape); only the graded members are read, by streaming: each is decompressed in
chunks of at most 64 KB, its real bytes are counted against ``limits.file_size_mb`` and
reading stops at the limit, whatever sizes the zip declares, so a zip bomb costs the grader
no memory. Corrupt data (a bad CRC, a broken deflate, bzip2 or lzma stream) makes that one
file missing, with the reason, and the rest of the submission is graded. A zip whose
directory lists more than MAX_ENTRIES entries, or takes more than MAX_DIRECTORY_BYTES, is
refused before it is parsed.
"""
from __future__ import annotations

import bz2
import itertools
import lzma
import shutil
import stat
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator

from autograder.config import AssignmentConfig

MANIFEST = "manifest.json"  # what `deepgrade submit` adds beside the graded files
MAX_ENTRIES = 100_000  # a course's submission is a handful of files; a repository is thousands
MAX_DIRECTORY_BYTES = 32 << 20  # the zip's central directory, which zipfile reads whole
_CHUNK = 1 << 16
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader: 30 bytes


class SubmissionError(Exception):
    """The submission cannot be read at all (not a folder or zip, a corrupt zip)."""


class _Unreadable(Exception):
    """One member cannot be read; the message says why, for the student."""


@dataclass
class Submission:
    """What was collected. folder: the scratch folder holding the graded files (and the course's
    support files). found: file -> where it was found. missing: listed files not found.
    ignored: other files in the submission, which are not graded. problems: notes for the
    student (a file too large, an ambiguous match, a symbolic link, a duplicate zip entry)."""

    source: Path
    folder: Path
    found: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _list_folder(root: Path) -> tuple[dict[str, Path], set[str]]:
    """(regular files: relative path -> path, relative paths of symbolic links)."""
    files, links = {}, set()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            links.add(rel)
        elif p.is_file():
            files[rel] = p
    return files, links


def _candidates(name: str, assignment: AssignmentConfig) -> list[str]:
    """Relative paths where a graded file may sit, best first."""
    return [name, f"assignments/{assignment.path}/{name}", f"{assignment.path}/{name}"]


def _match(paths: list[str] | set[str], name: str, assignment: AssignmentConfig) -> list[str]:
    exact = _candidates(name, assignment)
    hits = [c for c in exact if c in paths]
    if hits:
        return hits
    # One wrapping folder: <anything>/<candidate>, with exactly one leading component.
    wrapped = []
    for p in sorted(paths):
        parts = PurePosixPath(p).parts
        if len(parts) >= 2 and "/".join(parts[1:]) in exact:
            wrapped.append(p)
    return wrapped


# --- zips ------------------------------------------------------------------------------------

def _directory_size(path: Path) -> tuple[int, int] | None:
    """(entries, bytes) of a zip's central directory, from its end record (zip64 too), read
    before zipfile parses the directory into memory; None when no end record is found."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        tail_len = min(size, 22 + 65535 + 20 + 56)  # end record, comment, zip64 locator, record
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
    i = tail.rfind(b"PK\x05\x06")
    if i < 0 or i + 22 > len(tail):
        return None
    entries, cd_bytes = struct.unpack_from("<HI", tail, i + 10)
    j = tail.rfind(b"PK\x06\x06", 0, i)
    if (entries == 0xFFFF or cd_bytes == 0xFFFFFFFF) and j >= 0 and j + 56 <= len(tail):
        entries, cd_bytes = struct.unpack_from("<QQ", tail, j + 32)
    return entries, cd_bytes


def _open_zip(source: Path) -> zipfile.ZipFile:
    declared = _directory_size(source)
    if declared is not None:
        entries, cd_bytes = declared
        if entries > MAX_ENTRIES or cd_bytes > MAX_DIRECTORY_BYTES:
            raise SubmissionError(
                f"{source.name}: the zip lists {entries} entries in a directory of {cd_bytes} bytes; "
                f"a submission may hold at most {MAX_ENTRIES} entries ({MAX_DIRECTORY_BYTES >> 20} MB of "
                "names): zip only the files of the assignment")
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        raise SubmissionError(f"{source}: cannot read the zip file ({exc})") from None


def _is_link(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _lzma_filter(props: bytes) -> dict:
    """The LZMA1 filter of a zip member's 5 property bytes (lc, lp, pb, dictionary size)."""
    if len(props) != 5:
        raise _Unreadable("its lzma header is malformed")
    d = props[0]
    if d >= 9 * 5 * 5:
        raise _Unreadable("its lzma header is malformed")
    return {"id": lzma.FILTER_LZMA1, "lc": d % 9, "lp": (d // 9) % 5, "pb": d // 45,
            "dict_size": struct.unpack("<I", props[1:])[0]}


def _inflate(method: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The decompressed bytes of a member's compressed `chunks`, in pieces of at most 64 KB:
    however much a chunk would inflate to, no more than that is ever held."""
    if method == zipfile.ZIP_STORED:
        yield from chunks
        return
    if method == zipfile.ZIP_DEFLATED:
        d = zlib.decompressobj(-15)
        for chunk in chunks:
            data = chunk
            while data and not d.eof:
                yield d.decompress(data, _CHUNK)
                data = d.unconsumed_tail
            if d.eof:
                return
        yield d.flush(_CHUNK)
        if not d.eof:
            raise _Unreadable("its compressed data ends too soon")
        return
    if method in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        if method == zipfile.ZIP_BZIP2:
            d = bz2.BZ2Decompressor()
        else:
            head = b""
            for chunk in chunks:  # the zip's own lzma header: version, size of properties, properties
                head += chunk
                if len(head) >= 4 and len(head) >= 4 + struct.unpack_from("<H", head, 2)[0]:
                    break
            if len(head) < 4:
                raise _Unreadable("its lzma header is missing")
            psize = struct.unpack_from("<H", head, 2)[0]
            d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[_lzma_filter(head[4:4 + psize])])
            chunks = itertools.chain([head[4 + psize:]], chunks)
        for chunk in chunks:
            out = d.decompress(chunk, _CHUNK)
            yield out
            while not d.eof and not d.needs_input:
                yield d.decompress(b"", _CHUNK)
            if d.eof:
                return
        if not d.eof:
            raise _Unreadable("its compressed data ends too soon")
        return
    name = zipfile.compressor_names.get(method, f"method {method}")
    raise _Unreadable(f"it is compressed with {name}, which the grader does not read "
                      "(zip it with the usual deflate compression)")


def _copy_member(source: Path, info: zipfile.ZipInfo, dest: Path, max_bytes: int) -> None:
    """Stream one zip member into `dest`, counting its real bytes. Raises _Unreadable (the
    reason for the student) for a member that is encrypted, corrupt, or over max_bytes."""
    if info.flag_bits & 0x1:
        raise _Unreadable("it is encrypted")
    with open(source, "rb") as fh:
        fh.seek(info.header_offset)
        head = fh.read(_LOCAL_HEADER.size)
        if len(head) != _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
            raise _Unreadable("the zip is damaged where it should begin")
        name_len, extra_len = _LOCAL_HEADER.unpack(head)[-2:]
        fh.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)

        def compressed() -> Iterator[bytes]:
            left = info.compress_size
            while left > 0:
                chunk = fh.read(min(_CHUNK, left))
                if not chunk:
                    raise _Unreadable("the zip ends in the middle of it")
                left -= len(chunk)
                yield chunk

        total, crc = 0, 0
        with open(dest, "wb") as out:
            for piece in _inflate(info.compress_type, compressed()):
                total += len(piece)
                if total > max_bytes:
                    raise _Unreadable(f"it is over the {max_bytes}-byte limit once decompressed "
                                      f"(the zip says {info.file_size} bytes)")
                crc = zlib.crc32(piece, crc)
                out.write(piece)
    if crc != info.CRC or total != info.file_size:
        raise _Unreadable("its data does not match the zip's checksum or size (the zip is corrupt)")


# --- collect ---------------------------------------------------------------------------------

def collect(source: Path | str, assignment: AssignmentConfig, dest: Path) -> Submission:
    """Copy the graded files of `source` (folder or .zip) into the new folder `dest`.

    Returns Submission. Support files are copied from solutions/, never from the submission.
    Raises SubmissionError when the source cannot be read at all.
    """
    source = Path(source)
    max_bytes = assignment.limits.file_size_mb * 1024 * 1024
    copies: Counter = Counter()
    if source.is_dir():
        listing, links = _list_folder(source)
        sizes = {rel: p.stat().st_size for rel, p in listing.items()}

        def copy(rel: str, target: Path) -> None:
            if sizes[rel] > max_bytes:
                raise _Unreadable(f"{sizes[rel]} bytes is over the {max_bytes}-byte limit")
            shutil.copyfile(listing[rel], target)
    elif source.is_file() and zipfile.is_zipfile(source):
        zf = _open_zip(source)
        with zf:
            members = [i for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
        copies = Counter(i.filename for i in members)
        infos = {i.filename: i for i in members}  # the last of several copies, as zipfile reads it
        links = {n for n, i in infos.items() if _is_link(i)}
        listing = {n: n for n in infos if n not in links}

        def copy(rel: str, target: Path) -> None:
            _copy_member(source, infos[rel], target, max_bytes)
    elif source.exists():
        raise SubmissionError(f"{source}: expected a folder or a .zip file")
    else:
        raise SubmissionError(f"{source}: no such file or folder")

    dest.mkdir(parents=True, exist_ok=False)
    sub = Submission(source=source, folder=dest)
    paths = sorted(listing)
    used: set[str] = set()
    for name in assignment.files:
        hits = _match(paths, name, assignment)
        if not hits:
            sub.missing.append(name)
            for link in _match(links, name, assignment)[:1]:
                used.add(link)
                sub.problems.append(f"{link} is a symbolic link, which is not graded: submit the file itself")
            continue
        if len(hits) > 1:
            sub.problems.append(f"{name}: found at {', '.join(hits)}; graded {hits[0]}")
        rel = hits[0]
        used.add(rel)
        if copies[rel] > 1:
            sub.problems.append(f"the zip holds {copies[rel]} copies of {rel}; graded the last of them")
        try:
            copy(rel, dest / name)
        except _Unreadable as exc:
            (dest / name).unlink(missing_ok=True)
            sub.problems.append(f"{name}: {exc}")
            sub.missing.append(name)
            continue
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, struct.error) as exc:
            # bz2 reports corrupt data as OSError, lzma as LZMAError, zlib as zlib.error.
            (dest / name).unlink(missing_ok=True)
            sub.problems.append(f"{name}: could not be read: corrupt data ({type(exc).__name__}: {exc})")
            sub.missing.append(name)
            continue
        sub.found[name] = rel
    for name in assignment.support_files:
        shutil.copyfile(assignment.solution_dir / name, dest / name)
    # The manifest of `deepgrade submit` (at the top, or in the one wrapping folder) is part of
    # the hand-in, not a stray file.
    sub.ignored = [p for p in sorted(set(paths) | set(links)) if p not in used and "__pycache__" not in p
                   and not (PurePosixPath(p).name == MANIFEST and len(PurePosixPath(p).parts) <= 2)]
    return sub

"""Collect a submission: find the graded files in a folder or a .zip, copy them to a scratch folder.

A file is found flat (``layers.py``), at its repository path (``assignments/hw1/layers.py``),
under the assignment's folder name (``hw1/layers.py``), or any of those inside one wrapping
folder (a zip of a folder). Only the files grading.yml lists are taken; everything else is
ignored and reported. Zip members are read, never extracted, so a member's path cannot escape.
"""
from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder.config import AssignmentConfig


class SubmissionError(Exception):
    """The submission cannot be read at all (not a folder or zip, a corrupt zip)."""


@dataclass
class Submission:
    """What was collected. folder: the scratch folder holding the graded files (and the course's
    support files). found: file -> where it was found. missing: listed files not found.
    ignored: other files in the submission, which are not graded. problems: notes for the
    student (a file too large, an ambiguous match)."""

    source: Path
    folder: Path
    found: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _list_folder(root: Path) -> dict[str, Path]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[p.relative_to(root).as_posix()] = p
    return out


def _candidates(name: str, assignment: AssignmentConfig) -> list[str]:
    """Relative paths where a graded file may sit, best first."""
    return [name, f"assignments/{assignment.path}/{name}", f"{assignment.path}/{name}"]


def _match(paths: list[str], name: str, assignment: AssignmentConfig) -> list[str]:
    exact = _candidates(name, assignment)
    hits = [c for c in exact if c in paths]
    if hits:
        return hits
    # One wrapping folder: <anything>/<candidate>, with exactly one leading component.
    wrapped = []
    for p in paths:
        parts = PurePosixPath(p).parts
        if len(parts) >= 2 and "/".join(parts[1:]) in exact:
            wrapped.append(p)
    return wrapped


def collect(source: Path | str, assignment: AssignmentConfig, dest: Path) -> Submission:
    """Copy the graded files of `source` (folder or .zip) into the new folder `dest`.

    Returns Submission. Support files are copied from solutions/, never from the submission.
    Raises SubmissionError when the source cannot be read at all.
    """
    source = Path(source)
    dest.mkdir(parents=True, exist_ok=False)
    sub = Submission(source=source, folder=dest)
    max_bytes = assignment.limits.file_size_mb * 1024 * 1024
    if source.is_dir():
        listing = _list_folder(source)
        read = lambda rel: listing[rel].read_bytes()  # noqa: E731
        sizes = {rel: p.stat().st_size for rel, p in listing.items()}
    elif source.is_file() and zipfile.is_zipfile(source):
        try:
            zf = zipfile.ZipFile(source)
            infos = {i.filename: i for i in zf.infolist() if not i.is_dir()}
        except (zipfile.BadZipFile, OSError) as exc:
            raise SubmissionError(f"{source}: cannot read the zip file ({exc})") from None
        listing = {n: n for n in infos if not n.startswith("__MACOSX/")}
        read = lambda rel: zf.read(infos[rel])  # noqa: E731
        sizes = {n: infos[n].file_size for n in listing}
    elif source.exists():
        raise SubmissionError(f"{source}: expected a folder or a .zip file")
    else:
        raise SubmissionError(f"{source}: no such file or folder")

    paths = sorted(listing)
    used: set[str] = set()
    for name in assignment.files:
        hits = _match(paths, name, assignment)
        if not hits:
            sub.missing.append(name)
            continue
        if len(hits) > 1:
            sub.problems.append(f"{name}: found at {', '.join(hits)}; graded {hits[0]}")
        rel = hits[0]
        used.add(rel)
        if sizes[rel] > max_bytes:
            sub.problems.append(f"{name}: {sizes[rel]} bytes is over the {max_bytes}-byte limit")
            sub.missing.append(name)
            continue
        try:
            data = read(rel)
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
            sub.problems.append(f"{name}: could not be read ({exc})")
            sub.missing.append(name)
            continue
        (dest / name).write_bytes(data)
        sub.found[name] = rel
    for name in assignment.support_files:
        shutil.copyfile(assignment.solution_dir / name, dest / name)
    sub.ignored = [p for p in paths if p not in used and "__pycache__" not in p]
    return sub

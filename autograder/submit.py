"""`deepgrade submit hwN`: a zip of exactly the files that are graded, with a manifest.

The zip holds the assignment's graded files (grading.yml `files`) from the student's copy,
assignments/hwN/, at the top level, and ``manifest.json``: the assignment, when the zip was made,
and each file's size and SHA-256, so that student and staff can tell which version was handed
in. Nothing else goes in: no tests, notebooks or caches. Grading reads the manifest as part of
the zip, never as an ignored file.

By default the zip goes to handin/hwN-submission.zip beside grading.yml: a folder that holds
its own .gitignore ("*"), so that a zip of one's solutions is never committed by accident (a
student's repository may be public).

It refuses (SubmitError) when a graded file is missing, and warns for each file that still has
stub blocks (``# YOUR CODE HERE`` followed by ``raise NotImplementedError``), or that is the
stub exactly when the reference is at hand to make it.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from autograder.config import AssignmentConfig
from autograder.formats import write_bytes_atomic
from autograder.quiz import ANSWERS_NAME, blank_answers_warning
from autograder.release import make_stub
from autograder.submission import MANIFEST, SubmissionError

HANDIN_DIR = "handin"


class SubmitError(SubmissionError):
    """The submission cannot be made (a graded file is missing)."""


@dataclass
class SubmitReport:
    """path: the zip written. files: name -> sha256. warnings: one line per untouched stub."""

    path: Path
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def stub_blocks_left(text: str) -> int:
    """How many stub blocks a file still has: a '# YOUR CODE HERE' line followed by
    'raise NotImplementedError' at the same indentation, as `deepgrade release` writes them."""
    lines = text.splitlines()
    count = 0
    for here, nxt in zip(lines, lines[1:]):
        if here.strip() == "# YOUR CODE HERE" and nxt.strip() == "raise NotImplementedError":
            indent = here[: len(here) - len(here.lstrip())]
            count += nxt.startswith(indent) and not nxt[len(indent):].startswith((" ", "\t"))
    return count


def _stub_warning(assignment: AssignmentConfig, name: str, text: str) -> str | None:
    if name == ANSWERS_NAME:  # the quiz's answers: data, with blanks instead of stubs
        return blank_answers_warning(text.encode("utf-8"))
    reference = assignment.solution_dir / name
    if reference.is_file():  # an instructor's checkout: the exact stub can be made
        try:
            if text == make_stub(reference.read_text(encoding="utf-8"), name):
                return f"{name} is identical to the stub: nothing in it is implemented yet"
        except Exception:  # a malformed reference must not stop a student's submission
            pass
    left = stub_blocks_left(text)
    if left:
        return f"{name}: {left} place(s) still say '# YOUR CODE HERE' / 'raise NotImplementedError'"
    return None


def _version() -> str:
    try:
        return metadata.version("deepgrade")
    except metadata.PackageNotFoundError:
        return "unknown"


def default_output(assignment: AssignmentConfig) -> Path:
    """handin/hwN-submission.zip beside grading.yml, the folder made with a .gitignore that
    ignores everything in it (itself included), so git never offers the zip for a commit."""
    folder = assignment.root / HANDIN_DIR
    folder.mkdir(exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by `deepgrade submit`: submission zips are never committed\n*\n",
                          encoding="utf-8")
    return folder / f"{assignment.name}-submission.zip"


def build_submission(assignment: AssignmentConfig, output: Path | None = None,
                     source: Path | None = None) -> SubmitReport:
    """Write the submission zip of `assignment` from `source` (default: assignments/hwN) to
    `output` (default: default_output). Returns SubmitReport, whose path is absolute. Raises
    SubmitError, naming every missing file, before anything is written."""
    source = Path(source) if source is not None else assignment.release_dir
    missing = [n for n in assignment.files if not (source / n).is_file()]
    if missing:
        raise SubmitError(
            f"cannot submit {assignment.name}: missing {', '.join(missing)} in {source} "
            f"(the graded files are: {', '.join(assignment.files)})"
        )
    output = Path(output) if output is not None else default_output(assignment)
    report = SubmitReport(path=output.resolve())
    entries = []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in assignment.files:
            data = (source / name).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            report.files[name] = digest
            entries.append({"name": name, "bytes": len(data), "sha256": digest})
            zf.writestr(name, data)
            warning = _stub_warning(assignment, name, data.decode("utf-8", errors="replace"))
            if warning:
                report.warnings.append(warning)
        manifest = {
            "assignment": assignment.name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "deepgrade_version": _version(),
            "files": entries,
        }
        zf.writestr(MANIFEST, json.dumps(manifest, indent=2) + "\n")
    write_bytes_atomic(output, buf.getvalue())
    return report

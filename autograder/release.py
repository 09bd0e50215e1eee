"""The student release: `assignments/hwN/` generated from `solutions/hwN/`, deterministically.

Every `.py` file has its `### BEGIN SOLUTION` / `### END SOLUTION` blocks replaced by a stub
(`# YOUR CODE HERE` and `raise NotImplementedError`, at the indentation of the BEGIN line).
A `.ipynb` handout goes through nbgrader's own preprocessors (ClearSolutions, ClearHiddenTests,
ClearOutput), so written answers between the markers and hidden test regions never reach
students; nbgrader is an instructor-only dependency, imported only when a notebook is released.
Everything else in solutions/hwN (visible tests, the handout, figures, scripts) is copied as is;
`hidden/` and caches never are.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autograder import quiz
from autograder.config import AssignmentConfig

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_MARKER_LIKE = re.compile(r"(BEGIN|END)[ _]+SOLUTION", re.IGNORECASE)
_SKIP_DIRS = {"hidden", "__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


class ReleaseError(Exception):
    """A malformed solution marker: the message names the file and line."""


class NotebookError(ReleaseError):
    """A notebook could not be released or checked; the message says why."""


@dataclass(frozen=True)
class SolutionBlock:
    """Lines begin..end (1-based, the marker lines included) of a file, and their code."""

    begin: int
    end: int
    lines: tuple[str, ...]


def find_blocks(text: str, filename: str) -> list[SolutionBlock]:
    """The solution blocks of a file. Raises ReleaseError on an unclosed block, END without
    BEGIN, nesting, or a line that looks like a marker but is not spelled as one."""
    blocks: list[SolutionBlock] = []
    open_at: int | None = None
    body: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if open_at is not None:
                raise ReleaseError(
                    f"{filename}:{number}: nested '{BEGIN}' (the block opened at line {open_at} "
                    "is not closed)"
                )
            open_at, body = number, []
        elif stripped == END:
            if open_at is None:
                raise ReleaseError(f"{filename}:{number}: '{END}' without a '{BEGIN}' before it")
            blocks.append(SolutionBlock(open_at, number, tuple(body)))
            open_at = None
        elif _MARKER_LIKE.search(line) and stripped.startswith("#"):
            raise ReleaseError(
                f"{filename}:{number}: malformed solution marker {stripped!r} "
                f"(expected exactly '{BEGIN}' or '{END}' on a line of its own)"
            )
        elif open_at is not None:
            body.append(line)
    if open_at is not None:
        raise ReleaseError(f"{filename}:{open_at}: '{BEGIN}' is never closed by '{END}'")
    return blocks


def make_stub(text: str, filename: str) -> str:
    """The student version of a source file: each solution block becomes a stub."""
    blocks = find_blocks(text, filename)
    if not blocks:
        return text
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    for block in blocks:
        out += lines[pos : block.begin - 1]
        marker = lines[block.begin - 1]
        indent = marker[: len(marker) - len(marker.lstrip())]
        out.append(f"{indent}# YOUR CODE HERE\n")
        out.append(f"{indent}raise NotImplementedError\n")
        pos = block.end
    out += lines[pos:]
    return "".join(out)


def _nbgrader():
    try:
        import nbformat
        from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions
    except ImportError as exc:  # nbgrader is in the `instructor` extra only
        raise NotebookError(
            f"releasing a notebook needs nbgrader ({exc}); install the instructor extra: "
            "pip install -e '.[instructor]'"
        ) from None
    return nbformat, (ClearSolutions, ClearHiddenTests, ClearOutput)


def release_notebook(data: bytes, filename: str = "<notebook>") -> bytes:
    """The student version of a source notebook (bytes of .ipynb JSON in, bytes out).

    Solution regions and solution cells are replaced by nbgrader's stubs, hidden test regions
    removed and outputs cleared. The result depends only on the input: cell ids come from the
    source, and nothing time-dependent is added. Raises NotebookError naming the file.
    """
    nbformat, preprocessors = _nbgrader()
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        resources: dict = {}
        for cls in preprocessors:
            nb, resources = cls().preprocess(nb, resources)
    except NotebookError:
        raise
    except Exception as exc:  # nbgrader raises RuntimeError/ValueError on bad markers
        raise NotebookError(f"{filename}: {exc}") from None
    return (nbformat.writes(nb) + "\n").encode("utf-8")


def _source_files(solution_dir: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(solution_dir):
        rel = Path(dirpath).relative_to(solution_dir)
        # `hidden/` is skipped at the top only; sorting keeps the walk deterministic.
        dirnames[:] = sorted(
            d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")
        )
        for name in sorted(filenames):
            if Path(name).suffix in _SKIP_SUFFIXES or name.startswith("."):
                continue
            files.append(rel / name)
    return files


def build_release(assignment: AssignmentConfig) -> dict[str, bytes]:
    """relative path -> content of every file of the release of one assignment.

    A quiz (solutions/hwN/quiz.yml, with the reference answers.yml beside it) is never copied:
    the release gets its questions with checks that do not give the answers away, a blank
    answers.yml and the local check test_quiz.py (autograder.quiz.release_files)."""
    out: dict[str, bytes] = {}
    quiz_files = quiz_release(assignment)
    for rel in _source_files(assignment.solution_dir):
        if quiz_files and rel.as_posix() in (quiz.QUIZ_NAME, quiz.ANSWERS_NAME):
            continue
        data = (assignment.solution_dir / rel).read_bytes()
        if rel.suffix == ".py":
            text = data.decode("utf-8")
            data = make_stub(text, str(Path("solutions") / assignment.path / rel)).encode("utf-8")
        elif rel.suffix == ".ipynb":
            data = release_notebook(data, str(Path("solutions") / assignment.path / rel))
        out[rel.as_posix()] = data
    out.update(quiz_files)
    return out


def quiz_release(assignment: AssignmentConfig) -> dict[str, bytes]:
    """The released files of the assignment's quiz ({} when it has none). Raises ReleaseError
    for a quiz.yml that is invalid or does not fit grading.yml."""
    path = assignment.solution_dir / quiz.QUIZ_NAME
    if not path.is_file():
        return {}
    try:
        q = quiz.load_quiz(path)
        quiz.check_parts(q, assignment, Path("solutions") / assignment.path / quiz.QUIZ_NAME)
    except quiz.QuizError as exc:
        raise ReleaseError(str(exc)) from None
    return quiz.release_files(assignment.name, q)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _existing(release_dir: Path) -> set[str]:
    if not release_dir.is_dir():
        return set()
    return {p.as_posix() for p in _source_files(release_dir)} | {
        # a hidden/ folder in the release is a leak that --check must report
        p.relative_to(release_dir).as_posix()
        for p in (release_dir / "hidden").rglob("*") if p.is_file()
    }


def diff_release(assignment: AssignmentConfig, files: dict[str, bytes] | None = None) -> list[str]:
    """Lines describing how assignments/hwN differs from a fresh release: the release's files in
    order, then the extra ones ("missing: assignments/hw1/x.py", "differs: ...", "extra:   ...";
    empty: in sync)."""
    files = build_release(assignment) if files is None else files
    root = assignment.release_dir
    problems = []
    for rel, data in files.items():
        target = root / rel
        if not target.is_file():
            problems.append(f"missing: {target.relative_to(assignment.root).as_posix()}")
        elif target.read_bytes() != data:
            problems.append(f"differs: {target.relative_to(assignment.root).as_posix()}")
    for rel in sorted(_existing(root) - set(files)):
        problems.append(f"extra:   {(root / rel).relative_to(assignment.root).as_posix()}")
    return problems


def write_release(assignment: AssignmentConfig) -> list[str]:
    """Write assignments/hwN from solutions/hwN. Returns one line per file written or removed,
    in the order of diff_release ("written: assignments/hw1/layers.py", "removed: ...")."""
    files = build_release(assignment)
    root = assignment.release_dir
    changes = []
    for rel, data in files.items():
        target = root / rel
        if not target.is_file() or target.read_bytes() != data:
            _atomic_write(target, data)
            changes.append(f"written: {target.relative_to(assignment.root).as_posix()}")
    for rel in sorted(_existing(root) - set(files)):
        (root / rel).unlink()
        changes.append(f"removed: {(root / rel).relative_to(assignment.root).as_posix()}")
    # Remove folders the stale files leave empty, deepest first.
    if root.is_dir():
        for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(d.iterdir()):
                d.rmdir()
    return changes

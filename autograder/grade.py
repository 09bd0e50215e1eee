"""One submission, graded: config -> collect submission -> run tests -> score -> report."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.config import AssignmentConfig, ConfigError, CourseConfig
from autograder.reports import gradescope_results, write_json
from autograder.runner import RunResult, on_sigterm, run_tests
from autograder.sandbox import active_protections, sandbox_note, uids
from autograder.scoring import Scorecard, score
from autograder.submission import Submission, collect


class OutputError(Exception):
    """An output file cannot be written (its folder is missing or read-only): found before
    grading, so that no grading is lost to it."""


def check_output_file(path: Path | str, option: str = "-o") -> None:
    """Raise OutputError unless a file can be written at `path`: its folder must exist and be
    writable (tried with a temporary file, which also catches a read-only file system)."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name")
    if not folder.is_dir():
        raise OutputError(f"{option} {path}: the folder {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot write in {folder} ({exc.strerror})") from None


@dataclass
class GradeResult:
    submission: Submission
    run: RunResult
    scorecard: Scorecard
    results: dict


# results.json names at most this many ignored files (a zip of 50,000 names made it 1.3 MB);
# extra_data.ignored_count says how many there were.
IGNORED_KEPT = 100


def _notes(sub: Submission, run: RunResult) -> list[str]:
    notes = []
    for name in sub.missing:
        notes.append(f"missing file: {name} (every test that needs it scores 0)")
    notes += [f"note: {p}" for p in sub.problems]
    if sub.ignored:
        more = len(sub.ignored) - 20
        shown = ", ".join(sub.ignored[:20]) + (f" and {more} more" if more > 0 else "")
        notes.append(f"ignored (not graded): {shown}")
    if run.timed_out:
        notes.append("grading hit the time limit for the whole submission; unfinished tests score 0")
    return notes


def grade(
    course: CourseConfig,
    assignment: AssignmentConfig,
    source: Path,
    output: Path | None = None,
    select: str | None = None,
    runner: str = "all",
    workdir: Path | None = None,
    warm=None,
    check_tree: bool = True,
) -> GradeResult:
    """Grade the submission at `source` (folder or .zip) and write results.json to `output`.

    runner: "cpu" grades the CPU parts and defers the GPU ones, "gpu" the reverse, "all"
    everything (GPU tests deferred when this machine has no CUDA device). workdir: where the
    temporary grading folder goes (default: the system's temporary folder); it is removed at
    the end, also on Ctrl-C or SIGTERM. warm: grade-batch's pool of warm pytest servers
    (runner.run_tests), or None for a pytest of this grade's own. check_tree=False skips the
    check of the course's files (grade-batch checks them once, before any grade). Raises
    runner.InfrastructureError when grading was cut short twice by something outside the
    submission's control."""
    with on_sigterm():  # SIGTERM ends the tests and the worker and removes `work`, as Ctrl-C does
        start = time.perf_counter()
        if check_tree:
            course.check_tree([assignment.name])
        try:
            uids.pool_range()  # a bad DEEPGRADE_UIDS is named now, not by every worker start
        except uids.UidPoolError as exc:
            raise ConfigError(str(exc)) from None
        work = Path(tempfile.mkdtemp(prefix="deepgrade-", dir=workdir))
        try:
            sub = collect(source, assignment, work / "submission")
            run = run_tests(assignment, work / "run", submission=sub.folder, select=select, runner=runner,
                            warm=warm)
            protections = active_protections()
            card = score(assignment, run.outcomes, runner=runner)
            results = gradescope_results(
                card,
                execution_time=time.perf_counter() - start,
                notes=_notes(sub, run) + [sandbox_note(protections)],
                extra={"files": sub.found, "missing": sub.missing, "ignored": sub.ignored[:IGNORED_KEPT],
                       "ignored_count": len(sub.ignored), "protections": protections, "runner": runner},
            )
            if output is not None:
                write_json(output, results)
            return GradeResult(sub, run, card, results)
        finally:
            remove_tree(work)


def remove_tree(path: Path) -> None:
    """Remove a grading folder. A worker killed a moment ago may still be writing into its
    scratch folder inside it, so a folder that is not gone is tried again a few times."""
    for _ in range(20):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.05)

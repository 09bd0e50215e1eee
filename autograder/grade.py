"""One submission, graded: config -> collect submission -> run tests -> score -> report."""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.config import AssignmentConfig, CourseConfig
from autograder.reports import gradescope_results, write_json
from autograder.runner import RunResult, run_tests
from autograder.sandbox import active_protections, sandbox_note
from autograder.scoring import Scorecard, score
from autograder.submission import Submission, collect


@dataclass
class GradeResult:
    submission: Submission
    run: RunResult
    scorecard: Scorecard
    results: dict


def _notes(sub: Submission, run: RunResult) -> list[str]:
    notes = []
    for name in sub.missing:
        notes.append(f"missing file: {name} (every test that needs it scores 0)")
    notes += [f"note: {p}" for p in sub.problems]
    if sub.ignored:
        shown = ", ".join(sub.ignored[:20]) + (" ..." if len(sub.ignored) > 20 else "")
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
) -> GradeResult:
    """Grade the submission at `source` (folder or .zip) and write results.json to `output`.

    runner: "cpu" grades the CPU parts and defers the GPU ones, "gpu" the reverse, "all"
    everything (GPU tests deferred when this machine has no CUDA device)."""
    start = time.perf_counter()
    course.check_tree([assignment.name])
    work = Path(tempfile.mkdtemp(prefix="deepgrade-"))
    try:
        sub = collect(source, assignment, work / "submission")
        run = run_tests(assignment, work / "run", submission=sub.folder, select=select, runner=runner)
        protections = active_protections()
        card = score(assignment, run.outcomes, runner=runner)
        results = gradescope_results(
            card,
            execution_time=time.perf_counter() - start,
            notes=_notes(sub, run) + [sandbox_note(protections)],
            extra={"files": sub.found, "missing": sub.missing, "ignored": sub.ignored,
                   "protections": protections, "runner": runner},
        )
        if output is not None:
            write_json(output, results)
        return GradeResult(sub, run, card, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""Many submissions graded at once: `deepgrade grade-batch DIR -o OUT --jobs N --shard i/n`.

DIR holds one entry per student: a folder or a .zip, named after the student. Each student's
results go to ``OUT/<student>/results.json`` (Gradescope's format, written atomically by
reports.write_json), so a batch killed at any moment, even by SIGKILL, leaves only whole files.

A student has one state, read from OUT alone: *graded* when results.json holds the grade of
the submission as it is now (the same SHA-256 fingerprint and -m selection, stamped in
extra_data.batch); else *failed* when error.json says grading this submission failed (a
course or machine problem: a rerun grades it again); else *pending*. A results.json for
the current submission always wins: an error.json beside it is stale (and removed), never a
reason to show the student as failed. A rerun is the way to resume: it skips the graded and
grades the rest.

"Failed" means the grader could not grade. A broken submission is not a failure: a missing
file, a syntax error or a corrupt zip gets a results.json scoring 0 for what broke, and the
batch goes on.

Runs that share OUT (shards of a Slurm array, or a second run started by mistake) coordinate
through locks in ``OUT/.deepgrade/``: a student is graded by one run at a time (another run
that reaches them waits, then skips them once graded), and the gradebook is written by one run
at a time, from what OUT holds then, so the run that ends last writes the complete one. Each
grading folder lies in ``$TMPDIR/deepgrade-batch-<id of OUT>/<student>``; one left by a killed
run is removed by the next run.

Shards split the sorted student names round-robin: shard i of n (1-based) takes the students
at positions i-1, i-1+n, i-1+2n, ... Each shard grades only its students; the gradebook and
summary cover every student of DIR whose results exist in OUT, so the run that comes last (or
a rerun after the shards, which skips everyone) writes the complete gradebook. A gather
(gather_batch, `--gather-only`) grades no one: it writes the gradebook from OUT as it is and
names the students without a grade, so that a cancelled shard shows instead of being graded
over in the gathering job.
"""
from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import re
import statistics
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from autograder.config import AssignmentConfig, CourseConfig
from autograder.formats import write_bytes_atomic, write_text_atomic
from autograder.grade import grade, remove_tree
from autograder.loader import cold_start
from autograder.reports import gradescope_results, write_json
from autograder.runner import on_sigterm
from autograder.scoring import score
from autograder.submission import SubmissionError

if TYPE_CHECKING:
    from autograder.warm import WarmPool

RESULTS = "results.json"
ERROR = "error.json"
GRADEBOOK = "gradebook.csv"
SUMMARY = "summary.md"
HISTOGRAM = "histogram.png"
_REPORT_FILES = {GRADEBOOK, SUMMARY, HISTOGRAM}
STATE_DIR = ".deepgrade"  # OUT/.deepgrade: the locks of the runs that share OUT
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class BatchError(Exception):
    """The batch cannot start: a bad DIR, a bad shard, two entries for one student."""


@dataclass(frozen=True)
class Student:
    name: str
    source: Path  # a folder or a .zip


@dataclass
class BatchReport:
    """What one grade-batch run did. students: every student of DIR; shard: those this run
    was responsible for; graded / skipped / failed: names (failed maps to the error)."""

    students: list[Student]
    shard: list[Student]
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_time: float = 0.0
    gradebook: Path | None = None
    summary: Path | None = None
    histogram: Path | None = None
    shard_spec: tuple[int, int] = (1, 1)

    def lines(self, assignment: str) -> list[str]:
        """What the run did, for the terminal: one line, one per failure, where the reports are."""
        i, n = self.shard_spec
        out = [f"{assignment}, shard {i}/{n}: {len(self.shard)} of {len(self.students)} students; "
               f"{len(self.graded)} graded, {len(self.skipped)} already graded, {len(self.failed)} failed "
               f"({self.wall_time:.1f} s)"]
        out += [f"  failed {name}: {error}" for name, error in sorted(self.failed.items())]
        if self.failed:
            out.append("  rerun the same command to grade them again (details in OUT/<student>/error.json)")
        out.append(f"gradebook: {self.gradebook}; summary: {self.summary}")
        return out


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 1 <= i <= n. Raises BatchError."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise BatchError(f"--shard {text!r}: expected i/n, for example 2/8") from None
    if n < 1 or not 1 <= i <= n:
        raise BatchError(f"--shard {text!r}: expected 1 <= i <= n")
    return i, n


def discover(directory: Path, exclude: Path | None = None) -> list[Student]:
    """The students of DIR, sorted by name: each subfolder and each .zip file. Hidden entries
    (.git, .DS_Store), other files, and `exclude` (OUT, when it lies inside DIR) are skipped.
    Raises BatchError when DIR is not a folder or a name is taken twice (alice/ and alice.zip)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BatchError(f"{directory}: expected a folder with one subfolder or .zip per student")
    found: dict[str, Path] = {}
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith((".", "__")):
            continue
        if exclude is not None and entry.resolve() == exclude.resolve():
            continue
        if entry.is_dir():
            name = entry.name
        elif entry.is_file() and entry.suffix.lower() == ".zip":
            name = entry.stem
        else:
            continue
        if name in found:
            raise BatchError(f"{directory}: two submissions for {name!r}: {found[name].name} and {entry.name}")
        if name in _REPORT_FILES:
            raise BatchError(f"{directory}: a student may not be named {name!r} (a report file of OUT)")
        found[name] = entry
    return [Student(name, found[name]) for name in sorted(found)]


def select_shard(students: list[Student], index: int, count: int) -> list[Student]:
    """Shard `index` of `count` (1-based), round-robin over the sorted names, so that shards
    differ in size by at most one and each gets a spread of the alphabet."""
    ordered = sorted(students, key=lambda s: s.name)
    return [s for pos, s in enumerate(ordered) if pos % count == index - 1]


def fingerprint(source: Path) -> str:
    """SHA-256 of a submission: the zip's bytes, or a folder's relative paths and file bytes.
    A resubmission changes it, so a rerun regrades that student."""
    h = hashlib.sha256()
    if source.is_dir():
        for rel, path in _folder_files(str(source)):
            h.update("/".join(rel).encode() + b"\0")
            with open(path, "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
    else:
        with open(source, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _folder_files(root: str) -> list[tuple[tuple[str, ...], str]]:
    """The regular files under `root`, as (relative path parts, path), in the order of their
    parts: symlinks are neither followed nor listed, nor is anything in __pycache__ (the
    files, and their order, that sorting Path(root).rglob("*") gives, found with os.scandir
    at a fraction of the cost: stamping 5,000 students is part of every gradebook)."""
    found: list[tuple[tuple[str, ...], str]] = []
    stack: list[tuple[tuple[str, ...], str]] = [((), root)]
    while stack:
        parts, folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name == "__pycache__" or entry.is_symlink():
                        continue
                    rel = (*parts, entry.name)
                    if entry.is_dir():
                        stack.append((rel, entry.path))
                    elif entry.is_file():
                        found.append((rel, entry.path))
        except OSError:  # a folder that cannot be read is skipped, as rglob skips it
            continue
    found.sort(key=lambda item: item[0])
    return found


def read_results(path: Path) -> dict[str, Any] | None:
    """A results.json as a dict, or None when it is absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "score" in data else None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


_SCORE_FIRST = re.compile(r'\{\s*"score"\s*:\s*')
_SPACE = re.compile(r"\s*")
_DECODER = json.JSONDecoder()


_TAIL = 16384  # bytes at the end of a results.json that hold its extra_data, as a rule


def _head_and_tail(head: str, tail: str) -> dict[str, Any] | None:
    """{"score", "extra_data"} when `head` (the start of a results.json) opens the object with
    its "score" and `tail` (its end) closes it with its "extra_data"; else None."""
    first = _SCORE_FIRST.match(head)
    key = tail.rfind('"extra_data"')  # a key or a whole string: a quote inside a string is escaped
    if first is None or key < 0:
        return None
    try:
        score, _ = _DECODER.raw_decode(head, first.end())
        colon = _SPACE.match(tail, key + len('"extra_data"')).end()
        if tail[colon] != ":":
            return None
        extra, end = _DECODER.raw_decode(tail, _SPACE.match(tail, colon + 1).end())
    except (ValueError, IndexError):
        return None
    # Only the closing brace of the whole object may follow: then this is its last key, not the
    # "extra_data" of a test or of something nested deeper.
    if tail[end:].strip() != "}" or not isinstance(extra, dict):
        return None
    return {"score": score, "extra_data": extra}


def read_grade(path: Path) -> dict[str, Any] | None:
    """What the gradebook needs of a results.json: {"score": the total, "extra_data": its
    extra_data (the parts' scores, the batch stamp)}, or None when it is absent or unreadable.

    A results.json that reports.write_json wrote begins with its "score" and ends with its
    "extra_data": only its first bytes and its last _TAIL bytes are read and decoded, not the
    tests between them (nearly all of the file). Any other layout is read whole, as
    read_results reads it."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > 2 * _TAIL:
                head_text = fh.read(256).decode("utf-8", "replace")
                fh.seek(size - _TAIL)
                found = _head_and_tail(head_text, fh.read().decode("utf-8", "replace"))
                if found is not None:
                    return found
                fh.seek(0)
            text = fh.read().decode("utf-8")
    except (OSError, ValueError):
        return None
    found = _head_and_tail(text, text)
    if found is not None:
        return found
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "score" not in data:
        return None
    return {"score": data["score"], "extra_data": data.get("extra_data") or {}}


def student_state(folder: Path, stamp: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The one state of a student in OUT: ("graded", grade) when results.json is the grade of
    this submission (its stamp; grade: read_grade's score and extra_data), else ("failed",
    error) when error.json says grading this submission failed, else ("pending", None)."""
    data = read_grade(folder / RESULTS)
    if data is not None and (data.get("extra_data") or {}).get("batch") == stamp:
        return "graded", data
    error = _read_json(folder / ERROR)
    if error is not None and error.get("batch") == stamp:
        return "failed", error
    return "pending", None


def _is_done(folder: Path, stamp: dict[str, Any]) -> bool:
    return student_state(folder, stamp)[0] == "graded"


def stamp_of(student: Student, select: str | None) -> dict[str, Any]:
    """What a grade is of: the student, their submission's fingerprint, the -m selection."""
    return {"student": student.name, "source": student.source.name, "fingerprint": fingerprint(student.source),
            "select": select}


def check_output_folder(out: Path) -> None:
    """Make sure OUT is a folder this run can write (creating it, not its parents), before any
    grading. Raises BatchError naming the problem."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BatchError(f"-o {out}: exists and is not a folder")
    if not out.exists():
        if not out.parent.is_dir():
            raise BatchError(f"-o {out}: the folder {out.parent} does not exist")
        try:
            out.mkdir()
        except OSError as exc:
            raise BatchError(f"-o {out}: cannot create the folder ({exc.strerror})") from None
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".deepgrade-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BatchError(f"-o {out}: cannot write there ({exc.strerror})") from None


@contextmanager
def _lock(path: Path, blocking: bool = True) -> Iterator[bool]:
    """An exclusive flock on `path` (created): yields True once held, or False when
    blocking=False and another process holds it. The kernel drops it if this process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            held = True
        except BlockingIOError:
            held = False
        yield held
    finally:
        os.close(fd)


def _student_lock(out: Path, name: str, blocking: bool = True):
    return _lock(out / STATE_DIR / "locks" / f"{name}.lock", blocking)


def work_base(out: Path) -> Path:
    """The local folder of this OUT's grading folders: $TMPDIR/deepgrade-batch-<id of OUT>.
    Local (OUT may be on a shared file system) and the same for every run on OUT."""
    digest = hashlib.sha256(str(Path(out).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"deepgrade-batch-{digest}"


def sweep_work(out: Path) -> list[str]:
    """Remove the grading folders that runs killed on OUT left behind (those of students no
    running run is grading). Returns their names."""
    base = work_base(out)
    removed = []
    if base.is_dir():
        for entry in sorted(base.iterdir()):
            with _student_lock(out, entry.name, blocking=False) as free:
                if free:
                    remove_tree(entry)
                    removed.append(entry.name)
    return removed


def zero_results(assignment: AssignmentConfig, reason: str) -> dict[str, Any]:
    """results.json for a submission that could not be read at all: every part 0, the reason."""
    card = score(assignment, [])
    extra = {"files": {}, "missing": list(assignment.files), "ignored": []}
    return gradescope_results(card, execution_time=0.0, notes=[reason], extra=extra)


def grade_one(course: CourseConfig, assignment: AssignmentConfig, student: Student, folder: Path,
              stamp: dict[str, Any], select: str | None = None, regrade: bool = False,
              warm: WarmPool | None = None) -> dict[str, Any] | None:
    """Grade one student into `folder` (OUT/<student>): results.json on success (a broken
    submission is a success that scores 0 where it broke); error.json and an exception when
    grading failed. Returns the results, or None when another run graded the student while
    this one waited for them. warm: the run's warm pytest servers (autograder/warm.py)."""
    out = folder.parent
    with _student_lock(out, student.name):
        if not regrade and _is_done(folder, stamp):
            return None  # graded by another run sharing OUT, while this one waited
        for stale in folder.glob(".*.tmp"):  # left by a run killed in the middle of a write
            stale.unlink(missing_ok=True)
        workdir = work_base(out) / student.name
        remove_tree(workdir)  # left by a run killed while grading this student
        workdir.mkdir(parents=True)
        try:
            try:
                # The tree was checked once by run_batch. (Checking it here, in each job's thread,
                # also ran ast.parse in two threads at once, which CPython 3.11 can fail with
                # "SystemError: AST constructor recursion depth mismatch".)
                results = grade(course, assignment, student.source, select=select, workdir=workdir,
                                warm=warm, check_tree=False).results
            except SubmissionError as exc:
                results = zero_results(assignment, f"the submission could not be read: {exc}")
            results.setdefault("extra_data", {})["batch"] = stamp
            write_json(folder / RESULTS, results)
        except Exception as exc:
            write_json(folder / ERROR, {
                "student": student.name,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "batch": stamp,
            })
            raise
        finally:
            remove_tree(workdir)
        # The results are the student's state now; an error.json of an earlier try is stale.
        (folder / ERROR).unlink(missing_ok=True)
        return results


@contextmanager
def _closing(warm: WarmPool | None) -> Iterator[None]:
    try:
        yield
    finally:
        if warm is not None:
            warm.close()


@contextmanager
def _threads_per_job(jobs: int) -> Iterator[None]:
    """Share the cores among the jobs: each grade's numeric libraries get cores // jobs threads
    (unless the user set them), so that N jobs do not fight over N cores with N*cores threads."""
    per_job = str(max(1, (os.cpu_count() or 1) // jobs))
    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    for v in _THREAD_VARS:
        os.environ.setdefault(v, per_job)
    try:
        yield
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


def run_batch(
    course: CourseConfig,
    assignment: AssignmentConfig,
    directory: Path,
    out: Path,
    jobs: int = 1,
    shard: tuple[int, int] = (1, 1),
    select: str | None = None,
    regrade: bool = False,
    on_progress: Callable[[str, str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> BatchReport:
    """Grade this shard's students of `directory` into `out`, `jobs` at a time, then write the
    gradebook, summary and histogram for every student graded so far.

    on_start(n): called once with the number of students to grade. on_progress(name, state):
    called as each one ends, state in graded | failed. Returns BatchReport."""
    start = time.perf_counter()
    directory, out = Path(directory), Path(out)
    if jobs < 1:
        raise BatchError(f"--jobs {jobs}: expected at least 1")
    course.check_tree([assignment.name])
    students = discover(directory, exclude=out)
    check_output_folder(out)  # before any grading: a read-only OUT is an error now, not later
    mine = select_shard(students, *shard)
    report = BatchReport(students, mine, shard_spec=shard)
    stamps = {s.name: stamp_of(s, select) for s in students}
    sweep_work(out)
    todo: list[Student] = []
    for s in mine:
        if not regrade and _is_done(out / s.name, stamps[s.name]):
            report.skipped.append(s.name)
        else:
            todo.append(s)
    if on_start:
        on_start(len(todo))
    # One warm, collected pytest per job: each submission's tests run in a child forked from it,
    # not in a pytest started and collected anew (DEEPGRADE_COLD=1: a new pytest each).
    if cold_start() or not todo:
        warm = None
    else:
        # (Imported here: it imports pytest.) Each server's folder lies beside the grading
        # folders, held as a student's is: a run killed with its servers leaves them to the
        # next run's sweep_work.
        from autograder.warm import WarmPool

        warm = WarmPool(work_base(out), lambda name: _student_lock(out, name, blocking=False))
    with on_sigterm(), _threads_per_job(jobs), _closing(warm):
        # Threads suffice: each grade runs its tests in a child process, so the work is there.
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            futures = {pool.submit(grade_one, course, assignment, s, out / s.name, stamps[s.name], select,
                                   regrade, warm): s for s in todo}
            for fut in as_completed(futures):
                name = futures[fut].name
                try:
                    graded = fut.result() is not None
                except Exception as exc:  # recorded in error.json; the batch goes on
                    first = str(exc).splitlines()[0] if str(exc) else ""
                    report.failed[name] = f"{type(exc).__name__}: {first}"
                    state = "failed"
                else:
                    (report.graded if graded else report.skipped).append(name)
                    state = "graded" if graded else "skipped"
                if on_progress:
                    on_progress(name, state)
        except BaseException:
            # Ctrl-C: drop the queue and let only the grades under way finish; a rerun resumes.
            # (SIGTERM ends the process at once, on_sigterm; a rerun cleans up after it.)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    try:
        work_base(out).rmdir()  # gone once empty: no run on OUT is grading
    except OSError:
        pass
    report.graded.sort()
    report.gradebook, report.summary, report.histogram = write_reports(assignment, students, out, stamps)
    report.wall_time = time.perf_counter() - start
    return report


@dataclass
class GatherReport:
    """What `grade-batch --gather-only` found: the reports it wrote and the students of DIR
    without a grade in OUT (missing: name -> pending | failed, in name order)."""

    students: list[Student]
    missing: dict[str, str]
    gradebook: Path
    summary: Path
    histogram: Path

    def lines(self, assignment: str) -> list[str]:
        """The terminal lines: how many are graded, where the reports are."""
        graded = len(self.students) - len(self.missing)
        return [f"{assignment}: {graded} of {len(self.students)} students graded",
                f"gradebook: {self.gradebook}; summary: {self.summary}"]

    def missing_lines(self) -> list[str]:
        """The students without a grade and what to do, for stderr; empty when there are none."""
        if not self.missing:
            return []
        out = [f"{len(self.missing)} of {len(self.students)} students have no grade:"]
        out += [f"  {name}: {state}" for name, state in self.missing.items()]
        out.append("  resubmit the shards that grade them (or run grade-batch without --gather-only "
                   "to grade them here), then gather again")
        return out


def gather_batch(assignment: AssignmentConfig, directory: Path, out: Path,
                 select: str | None = None) -> GatherReport:
    """Grade no one: write the gradebook, summary and histogram of every student of
    `directory` from what `out` holds now, and name those without a grade (a shard that was
    cancelled, or one still running). Safe beside runs that are grading into `out`: it only
    reads their results and takes the reports lock. Raises BatchError for a bad DIR or OUT."""
    directory, out = Path(directory), Path(out)
    students = discover(directory, exclude=out)
    check_output_folder(out)
    stamps = {s.name: stamp_of(s, select) for s in students}
    states: dict[str, tuple[str, dict[str, Any] | None]] = {}
    paths = write_reports(assignment, students, out, stamps, states_out=states)
    missing = {name: state for name, (state, _) in states.items() if state != "graded"}
    return GatherReport(students, missing, *paths)


def collect_results(students: list[Student], out: Path,
                    stamps: dict[str, dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """student name -> (state, grade or error or None): their one state in OUT
    (student_state) for the submission they have now (stamps: name -> stamp_of)."""
    return {s.name: student_state(out / s.name, stamps[s.name]) for s in students}


def csv_cell(text: str) -> str:
    """A text cell made safe for a spreadsheet: one that begins with =, +, -, @ (or a tab or
    carriage return) would be read as a formula, so it gets a leading apostrophe, which
    spreadsheets show as text (OWASP's advice for CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def gradebook_csv(assignment: AssignmentConfig, states: dict[str, tuple[str, dict[str, Any] | None]]) -> str:
    """The gradebook as CSV text: student, one column per part, total, status (graded,
    failed: grading failed and a rerun will retry, pending: not graded yet, e.g. another
    shard's). Scores are empty unless graded, so that no one reads "not graded" as 0."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", *assignment.parts, "total", "status"])
    for name, (state, data) in states.items():
        if state != "graded":
            writer.writerow([csv_cell(name), *([""] * len(assignment.parts)), "", state])
            continue
        parts = (data.get("extra_data") or {}).get("parts") or {}
        cells = [f"{parts.get(p, {}).get('score', 0):g}" for p in assignment.parts]
        writer.writerow([csv_cell(name), *cells, f"{data['score']:g}", "graded"])
    return buf.getvalue()


def histogram_png(assignment: AssignmentConfig, totals: list[float]) -> bytes:
    """A histogram of the total scores (PNG bytes): ten bins from 0 to the maximum score."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    # A bare Figure with the Agg canvas: no pyplot state and no display, safe in any thread.
    max_score = sum(p.points for p in assignment.parts.values())
    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bins = [max_score * k / 10 for k in range(11)]
    ax.hist(totals, bins=bins, color="#4c72b0", edgecolor="white")
    ax.set_xlim(0, max_score)
    ax.set_xlabel(f"total score (out of {max_score:g})")
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    title = f"{assignment.name}: {len(totals)} graded"
    if totals:
        title += f", mean {statistics.mean(totals):.1f}, median {statistics.median(totals):.1f}"
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def summary_markdown(assignment: AssignmentConfig, states: dict[str, tuple[str, dict[str, Any] | None]]) -> str:
    """The batch summary in Markdown: counts, total statistics, each part's mean, the
    histogram, and the students who still need grading."""
    graded = {n: d for n, (state, d) in states.items() if state == "graded"}
    totals = [d["score"] for d in graded.values()]
    failed = [n for n, (state, _) in states.items() if state == "failed"]
    pending = [n for n, (state, _) in states.items() if state == "pending"]
    max_score = sum(p.points for p in assignment.parts.values())
    md = [f"# {assignment.name}: {assignment.title}", "",
          f"{len(graded)} of {len(states)} students graded"
          + (f"; grading failed for {len(failed)} (a rerun retries them)" if failed else "")
          + (f"; {len(pending)} pending" if pending else "") + ".", ""]
    if totals:
        md += ["| statistic | total |", "|---|---:|",
               f"| mean | {statistics.mean(totals):.2f} / {max_score:g} |",
               f"| median | {statistics.median(totals):.2f} |",
               f"| min | {min(totals):.2f} |", f"| max | {max(totals):.2f} |",
               f"| full marks | {sum(t >= max_score - 1e-6 for t in totals)} |",
               f"| zero | {sum(t <= 1e-6 for t in totals)} |", "",
               "| part | points | mean |", "|---|---:|---:|"]
        for name, part in assignment.parts.items():
            scores = [((d.get("extra_data") or {}).get("parts") or {}).get(name, {}).get("score", 0.0)
                      for d in graded.values()]
            md.append(f"| {name} | {part.points:g} | {statistics.mean(scores):.2f} |")
        md += ["", f"![histogram of total scores]({HISTOGRAM})", ""]
    if failed:
        md += ["Grading failed (see OUT/<student>/error.json): " + ", ".join(failed), ""]
    if pending:
        md += ["Pending: " + ", ".join(pending[:50]) + (" ..." if len(pending) > 50 else ""), ""]
    return "\n".join(md)


def write_reports(assignment: AssignmentConfig, students: list[Student], out: Path,
                  stamps: dict[str, dict[str, Any]],
                  states_out: dict[str, tuple[str, dict[str, Any] | None]] | None = None) -> tuple[Path, Path, Path]:
    """Write OUT/gradebook.csv, OUT/summary.md and OUT/histogram.png, each atomically, for
    every student of DIR, from what OUT holds now. One run at a time writes them (a lock),
    so the run that ends last writes them from the most complete state. states_out, when
    given, receives the states the reports were written from. Returns their paths."""
    paths = (out / GRADEBOOK, out / SUMMARY, out / HISTOGRAM)
    with _lock(out / STATE_DIR / "reports.lock"):
        states = collect_results(students, out, stamps)
        if states_out is not None:
            states_out.update(states)
        for name, (state, _) in states.items():
            if state == "graded":
                (out / name / ERROR).unlink(missing_ok=True)  # stale beside a valid grade
        totals = [d["score"] for state, d in states.values() if state == "graded"]
        write_text_atomic(paths[0], gradebook_csv(assignment, states))
        write_text_atomic(paths[1], summary_markdown(assignment, states))
        write_bytes_atomic(paths[2], histogram_png(assignment, totals))
    return paths

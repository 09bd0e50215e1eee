"""`deepgrade grade-batch`: students found, sharded, graded in parallel, resumable, kill-safe.

The batch tests grade only the `affine` part (`-m affine`) of a handful of hw1 submissions, so
that they stay fast; grading itself is covered by test_grade.py.
"""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

import autograder.batch as batch
from autograder.batch import (
    BatchError, discover, fingerprint, parse_shard, read_results, run_batch, select_shard,
)
from autograder.cli import main
from autograder.release import make_stub
from autograder.runner import RunnerError

SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())
FILES = ["layers.py", "fc_net.py", "house_prices.py"]


def write_submission(dest: Path, files: dict[str, str], as_zip: bool = False) -> None:
    if as_zip:
        with zipfile.ZipFile(dest.with_suffix(".zip"), "w") as zf:
            for name, text in files.items():
                zf.writestr(name, text)
    else:
        dest.mkdir(parents=True)
        for name, text in files.items():
            (dest / name).write_text(text)


@pytest.fixture(scope="module")
def hw1(course):
    return course.assignment("hw1")


@pytest.fixture(scope="module")
def class_dir(hw1, tmp_path_factory):
    """Five students: full marks, the stub, a syntax error where affine lives, one elsewhere
    (affine still works), and a zip that is not a zip. Expected affine scores: 10, 0, 0, 10, 0."""
    ref = {f: (hw1.solution_dir / f).read_text() for f in FILES}
    root = tmp_path_factory.mktemp("class")
    write_submission(root / "alice", ref)
    write_submission(root / "bob", {f: make_stub(t, f) for f, t in ref.items()})
    write_submission(root / "carol", {**ref, "layers.py": ref["layers.py"] + "\ndef broken(:\n"}, as_zip=True)
    write_submission(root / "dave", {**ref, "fc_net.py": "import nonexistent_module\n"})
    (root / "erin.zip").write_bytes(b"this is not a zip file")
    (root / "roster.csv").write_text("not a student\n")  # other files are not students
    (root / ".DS_Store").write_bytes(b"")
    return root


EXPECTED = {"alice": 10, "bob": 0, "carol": 0, "dave": 10, "erin": 0}


@pytest.fixture(scope="module")
def graded(course, hw1, class_dir, tmp_path_factory):
    """The class graded once, unsharded, through the command line."""
    out = tmp_path_factory.mktemp("graded") / "out"
    res = CliRunner().invoke(main, ["grade-batch", str(class_dir), "-a", "hw1", "-o", str(out), "--jobs", "2",
                                    "-m", "affine", "--no-progress", "--config", str(course.path)])
    assert res.exit_code == 0, res.output
    return out


def scores(out: Path) -> dict[str, float]:
    return {p.name: read_results(p / "results.json")["score"] for p in sorted(out.iterdir())
            if (p / "results.json").exists()}


def verdicts(out: Path) -> dict[str, list]:
    table = {}
    for name in scores(out):
        data = read_results(out / name / "results.json")
        table[name] = [data["score"], [(t["name"], t["status"], t["score"]) for t in data["tests"]]]
    return table


# --- students and shards -------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [("1/1", (1, 1)), ("3/8", (3, 8)), ("8/8", (8, 8))])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "2", "a/b", "1/2/3"])
def test_parse_shard_rejects(text):
    with pytest.raises(BatchError, match="--shard"):
        parse_shard(text)


def test_discover_takes_folders_and_zips_sorted(class_dir, tmp_path):
    found = discover(class_dir)
    assert [s.name for s in found] == ["alice", "bob", "carol", "dave", "erin"]
    assert found[2].source.name == "carol.zip"
    out = class_dir / "graded"  # OUT inside DIR is not a student
    out.mkdir()
    try:
        assert "graded" not in [s.name for s in discover(class_dir, exclude=out)]
    finally:
        out.rmdir()


def test_discover_refuses_two_submissions_for_one_student(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice.zip").write_bytes(b"")
    with pytest.raises(BatchError, match="two submissions for 'alice'"):
        discover(tmp_path)


def test_shards_partition_the_class_deterministically():
    students = [batch.Student(f"s{i:02d}", Path(f"s{i:02d}")) for i in range(11)]
    shards = [select_shard(list(reversed(students)), i, 3) for i in (1, 2, 3)]
    names = [[s.name for s in shard] for shard in shards]
    assert sorted(n for shard in names for n in shard) == [s.name for s in students]
    assert [len(s) for s in names] == [4, 4, 3]
    assert names[0][:2] == ["s00", "s03"]


def test_fingerprint_changes_with_the_submission(tmp_path):
    write_submission(tmp_path / "a", {"layers.py": "x = 1\n"})
    before = fingerprint(tmp_path / "a")
    assert fingerprint(tmp_path / "a") == before
    (tmp_path / "a" / "layers.py").write_text("x = 2\n")
    assert fingerprint(tmp_path / "a") != before


# --- a whole batch -------------------------------------------------------------------------

def test_every_student_gets_a_valid_results_json(graded):
    assert scores(graded) == EXPECTED
    for name in EXPECTED:
        jsonschema.validate(json.loads((graded / name / "results.json").read_text()), SCHEMA)
    erin = read_results(graded / "erin" / "results.json")
    assert "could not be read" in erin["output"]
    carol = read_results(graded / "carol" / "results.json")
    assert all(t["status"] == "failed" for t in carol["tests"])


def test_gradebook_has_each_part_and_the_total(graded, hw1):
    with open(graded / "gradebook.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["student", *hw1.parts, "total", "status"]
    assert {r["student"]: float(r["total"]) for r in rows} == EXPECTED
    assert {r["student"]: float(r["affine"]) for r in rows} == EXPECTED
    assert {r["status"] for r in rows} == {"graded"}


def test_summary_and_histogram(graded, hw1):
    summary = (graded / "summary.md").read_text()
    total = sum(part.points for part in hw1.parts.values())  # 112: the quiz's 12 points too
    assert "5 of 5 students graded" in summary and f"| mean | 4.00 / {total:g} |" in summary
    assert "](histogram.png)" in summary
    assert (graded / "histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_temporary_files_are_left(graded):
    assert not [p for p in graded.rglob("*") if p.name.endswith(".tmp")]


def test_rerun_skips_those_graded_and_regrades_a_changed_submission(course, hw1, class_dir, graded, tmp_path):
    report = run_batch(course, hw1, class_dir, graded, jobs=2, select="affine")
    assert report.graded == [] and sorted(report.skipped) == sorted(EXPECTED)

    ref = {f: (hw1.solution_dir / f).read_text() for f in FILES}
    small = tmp_path / "class"
    write_submission(small / "alice", ref)
    write_submission(small / "bob", ref)
    out = tmp_path / "out"
    assert run_batch(course, hw1, small, out, select="affine").graded == ["alice", "bob"]
    # A resubmission (new content, new fingerprint) is graded again; the others are skipped.
    (small / "alice" / "layers.py").write_text(make_stub(ref["layers.py"], "layers.py"))
    report = run_batch(course, hw1, small, out, select="affine")
    assert report.graded == ["alice"] and report.skipped == ["bob"]
    assert read_results(out / "alice" / "results.json")["score"] == 0
    # So is a grade made with another -m selection.
    assert run_batch(course, hw1, small, out, select="affine or dropout").graded == ["alice", "bob"]


def test_a_failed_grading_is_recorded_and_retried(course, hw1, class_dir, tmp_path, monkeypatch):
    real_grade = batch.grade

    def flaky(course, assignment, source, **kwargs):
        if source.name == "bob":
            raise RunnerError("the tests could not be collected")
        return real_grade(course, assignment, source, **kwargs)

    out = tmp_path / "out"
    monkeypatch.setattr(batch, "grade", flaky)
    report = run_batch(course, hw1, class_dir, out, jobs=2, shard=(2, 2), select="affine")  # bob, dave
    assert report.failed == {"bob": "RunnerError: the tests could not be collected"}
    assert report.graded == ["dave"]
    error = json.loads((out / "bob" / "error.json").read_text())
    assert "could not be collected" in error["error"] and "Traceback" in error["traceback"]
    assert not (out / "bob" / "results.json").exists()
    with open(out / "gradebook.csv", newline="") as fh:
        status = {r["student"]: r["status"] for r in csv.DictReader(fh)}
    assert status == {"alice": "pending", "bob": "failed", "carol": "pending", "dave": "graded", "erin": "pending"}

    monkeypatch.setattr(batch, "grade", real_grade)
    report = run_batch(course, hw1, class_dir, out, shard=(2, 2), select="affine")
    assert report.graded == ["bob"] and report.skipped == ["dave"] and not report.failed
    assert not (out / "bob" / "error.json").exists()


def test_cli_exit_status_is_1_when_grading_failed(course, class_dir, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RunnerError("no tests")

    monkeypatch.setattr(batch, "grade", broken)
    res = CliRunner().invoke(main, ["grade-batch", str(class_dir), "-a", "hw1", "-o", str(tmp_path / "o"),
                                    "--shard", "1/5", "--no-progress", "--config", str(course.path)])
    assert res.exit_code == 1
    assert "1 failed" in res.output and "alice: RunnerError: no tests" in res.output


def test_union_of_shards_equals_the_unsharded_batch(course, hw1, class_dir, graded, tmp_path):
    out = tmp_path / "sharded"
    for i in (1, 2, 3):
        report = run_batch(course, hw1, class_dir, out, jobs=2, shard=(i, 3), select="affine")
        assert len(report.shard) in (1, 2) and not report.failed, report.failed
    assert verdicts(out) == verdicts(graded)
    with open(out / "gradebook.csv", newline="") as fh:
        assert {r["student"]: float(r["total"]) for r in csv.DictReader(fh)} == EXPECTED


def test_sigkill_loses_nothing_already_written(course, hw1, class_dir, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "autograder", "grade-batch", str(class_dir), "-a", "hw1", "-o", str(out),
           "--jobs", "1", "-m", "affine", "--no-progress", "--config", str(course.path)]
    # TMPDIR: the grading folders that the killed batch can no longer remove stay in tmp_path.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("*/results.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = {p.parent.name: p.read_text() for p in out.glob("*/results.json")}
    assert written, "the batch wrote nothing before it was killed"
    for text in written.values():
        json.loads(text)  # whole files only
    report = run_batch(course, hw1, class_dir, out, select="affine")
    assert set(report.skipped) == set(written)
    assert sorted(report.graded + report.skipped) == sorted(EXPECTED)
    for name, text in written.items():
        assert (out / name / "results.json").read_text() == text  # not graded again
    assert scores(out) == EXPECTED


def test_assignment_defaults_to_the_folder_name(course, tmp_path):
    (tmp_path / "hw1").mkdir()
    res = CliRunner().invoke(main, ["grade-batch", str(tmp_path / "hw1"), "-o", str(tmp_path / "out"),
                                    "--no-progress", "--config", str(course.path)])
    assert res.exit_code == 0, res.output
    assert "hw1, shard 1/1: 0 of 0 students" in res.output
    assert (tmp_path / "out" / "gradebook.csv").read_text().startswith("student,affine,")


def test_not_a_folder_is_a_usage_error(course, tmp_path):
    res = CliRunner().invoke(main, ["grade-batch", str(tmp_path / "nope"), "-a", "hw1", "-o", str(tmp_path / "out"),
                                    "--no-progress", "--config", str(course.path)])
    assert res.exit_code == 2
    assert "expected a folder" in res.output


# --- one state per student, locks, kills: on a toy course, so that they stay fast -------------

TOY = "import time\n\ndef double(x):\n    time.sleep(DELAY)\n    return 2 * x\n"
TOY_TESTS = ("import pytest\n\n@pytest.mark.parametrize('x', [1, 2, 3])\n"
             "def test_double(student, x):\n    assert student.double(x) == 2 * x\n")


@pytest.fixture
def toy(tmp_path):
    """A toy course (one part, three tests) and a class of three students: two right, one
    wrong (score 0). Returns (course, assignment, class folder)."""
    from autograder.config import load_config

    root = tmp_path / "course"
    sol = root / "solutions" / "toy"
    sol.mkdir(parents=True)
    (sol / "toy.py").write_text(TOY.replace("DELAY", "0"))
    (sol / "test_toy.py").write_text(TOY_TESTS)
    (root / "grading.yml").write_text("assignments:\n  toy:\n    title: Toy\n    files: [toy.py]\n"
                                      "    parts:\n      double: {points: 3, tests: [test_double]}\n")
    course = load_config(root / "grading.yml")
    cls = tmp_path / "class"
    for name, body in (("ann", TOY.replace("DELAY", "0")), ("ben", TOY.replace("DELAY", "0")),
                       ("cat", "def double(x):\n    return x\n")):
        write_submission(cls / name, {"toy.py": body})
    return course, course.assignment("toy"), cls


def gradebook(out: Path) -> dict[str, tuple[str, str]]:
    with open(out / "gradebook.csv", newline="") as fh:
        return {r["student"]: (r["total"], r["status"]) for r in csv.DictReader(fh)}


TOY_BOOK = {"ann": ("3", "graded"), "ben": ("3", "graded"), "cat": ("0", "graded")}


def test_a_stale_error_json_never_hides_a_grade(toy, tmp_path):
    course, a, cls = toy
    out = tmp_path / "out"
    run_batch(course, a, cls, out)
    assert gradebook(out) == TOY_BOOK
    # An error.json beside a valid results.json (a run killed between the two writes, or a
    # copy of an old folder): the student is graded, and a rerun says so.
    (out / "ben" / "error.json").write_text(json.dumps({"student": "ben", "error": "RunnerError: old"}))
    report = run_batch(course, a, cls, out)
    assert sorted(report.skipped) == ["ann", "ben", "cat"] and not report.failed
    assert gradebook(out) == TOY_BOOK
    assert not (out / "ben" / "error.json").exists()


def test_a_failed_regrade_of_a_new_submission_shows_as_failed(toy, tmp_path, monkeypatch):
    course, a, cls = toy
    out = tmp_path / "out"
    run_batch(course, a, cls, out)
    (cls / "cat" / "toy.py").write_text("def double(x):\n    return 2 * x\n")  # a resubmission

    def broken(*args, **kwargs):
        raise RunnerError("no tests")

    monkeypatch.setattr(batch, "grade", broken)
    report = run_batch(course, a, cls, out)
    assert report.failed == {"cat": "RunnerError: no tests"}
    # The old results are of the old submission: not this student's grade any more.
    assert gradebook(out)["cat"] == ("", "failed")
    monkeypatch.undo()
    assert run_batch(course, a, cls, out).graded == ["cat"]
    assert gradebook(out) == {**TOY_BOOK, "cat": ("3", "graded")}


def test_a_second_run_on_the_same_folder_waits_for_the_student_being_graded(toy, tmp_path):
    course, a, cls = toy
    out = tmp_path / "out"
    done = {}
    with batch._student_lock(out, "ben"):  # as another run does while it grades ben
        thread = threading.Thread(target=lambda: done.setdefault("report", run_batch(course, a, cls, out, jobs=2)))
        thread.start()
        deadline = time.monotonic() + 60
        while not ((out / "ann" / "results.json").exists() and (out / "cat" / "results.json").exists()):
            assert time.monotonic() < deadline, "the others were not graded meanwhile"
            time.sleep(0.1)
        time.sleep(1)
        assert thread.is_alive() and not (out / "ben" / "results.json").exists(), "ben was graded twice at once"
        # The other run finishes ben: this one, which waited, takes its grade as it is.
        stamp = batch.stamp_of(batch.Student("ben", cls / "ben"), None)
        results = batch.zero_results(a, "graded by the other run")
        results["extra_data"]["batch"] = stamp
        batch.write_json(out / "ben" / "results.json", results)
    thread.join(timeout=60)
    report = done["report"]
    assert report.graded == ["ann", "cat"] and report.skipped == ["ben"]
    assert gradebook(out) == {**TOY_BOOK, "ben": ("0", "graded")}


def test_kill_9_of_the_batch_leaves_nothing_a_rerun_does_not_clean(toy, tmp_path):
    course, a, cls = toy
    for name in ("ann", "ben"):
        (cls / name / "toy.py").write_text(TOY.replace("DELAY", "1.5"))  # slow enough to be killed in
    out = tmp_path / "out"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    cmd = [sys.executable, "-m", "autograder", "grade-batch", str(cls), "-a", "toy", "-o", str(out),
           "--jobs", "2", "--no-progress", "--config", str(course.path)]
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(tmp.rglob("deepgrade-worker-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(tmp.rglob("deepgrade-worker-*")), "the batch was not killed while grading"
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert gradebook(out) == TOY_BOOK
    assert [p for p in tmp.rglob("*")] == [], "a folder of the killed run is left"


def test_gradebook_cells_cannot_be_formulas(toy, tmp_path):
    course, a, cls = toy
    for name in ("=HYPERLINK(\"http:x\",\"y\")", "+1", "-2", "@SUM(A1)"):
        write_submission(cls / name, {"toy.py": TOY.replace("DELAY", "0")})
    out = tmp_path / "out"
    run_batch(course, a, cls, out)
    names = [r["student"] for r in csv.DictReader(open(out / "gradebook.csv", newline=""))]
    assert sorted(names) == sorted(["'+1", "'-2", "'=HYPERLINK(\"http:x\",\"y\")", "'@SUM(A1)", "ann", "ben", "cat"])


def test_a_read_only_output_folder_is_an_error_before_grading(toy, tmp_path):
    course, a, cls = toy
    out = tmp_path / "out"
    out.mkdir()
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("needs unshare to make a read-only folder as root")
        script = f"mount --bind {out} {out} && mount -o remount,bind,ro {out} && exec \"$@\""
        prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    else:
        out.chmod(0o555)
        prefix = []
    run = subprocess.run([*prefix, sys.executable, "-m", "autograder", "grade-batch", str(cls), "-a", "toy",
                          "-o", str(out), "--no-progress", "--config", str(course.path)],
                         capture_output=True, text=True)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cannot write there" in run.stderr and "Traceback" not in run.stderr
    assert "graded" not in run.stdout
    missing = subprocess.run([sys.executable, "-m", "autograder", "grade-batch", str(cls), "-a", "toy",
                              "-o", str(tmp_path / "no" / "out"), "--no-progress", "--config", str(course.path)],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_gather_only_names_the_students_of_a_cancelled_shard_and_grades_no_one(toy, tmp_path):
    course, a, cls = toy
    out = tmp_path / "out"
    run_batch(course, a, cls, out, shard=(1, 3))
    run_batch(course, a, cls, out, shard=(3, 3))  # shard 2/3 (ben) was cancelled
    gather = [sys.executable, "-m", "autograder", "grade-batch", str(cls), "-a", "toy", "-o", str(out),
              "--gather-only", "--no-progress", "--config", str(course.path)]
    proc = subprocess.run(gather, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "toy: 2 of 3 students graded" in proc.stdout
    assert "1 of 3 students have no grade" in proc.stderr and "  ben: pending" in proc.stderr
    assert not (out / "ben" / "results.json").exists(), "the gather graded a student"
    assert gradebook(out) == {**TOY_BOOK, "ben": ("", "pending")}
    assert "Pending: ben" in (out / "summary.md").read_text()
    # Resubmitting the cancelled shard completes the gradebook; a gather then finds no one missing.
    assert run_batch(course, a, cls, out, shard=(2, 3)).graded == ["ben"]
    assert gradebook(out) == TOY_BOOK
    proc = subprocess.run(gather, capture_output=True, text=True)
    assert proc.returncode == 0 and "toy: 3 of 3 students graded" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert gradebook(out) == TOY_BOOK


def test_gather_only_takes_no_shard(toy, tmp_path):
    course, _, cls = toy
    res = CliRunner().invoke(main, ["grade-batch", str(cls), "-a", "toy", "-o", str(tmp_path / "out"),
                                    "--gather-only", "--shard", "2/3", "--config", str(course.path)])
    assert res.exit_code == 2 and "--gather-only grades no one" in res.output

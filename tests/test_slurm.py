"""The Slurm templates on a real cluster: ci-templates/slurm/submit.sh run as
ci-templates/README.md tells a course to, on 24 hw1 submissions in 4 shards, with the shards'
logs where the README says, a gradebook equal to `deepgrade grade-batch` on one machine, and a
cancelled shard that the gradebook job names and a resubmission completes.

Needs a running cluster that this machine can submit to: `sbatch` on PATH and `sinfo` answering
(CI: ci-templates/slurm/local-cluster.sh up, then SLURM_CONF set as it prints). Skipped, with
the reason, otherwise; these tests never start a cluster themselves. Jobs run as the user that
runs the tests, in this machine's temporary folder, so the cluster's node must see it (true of
the one-node cluster).
"""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.batch import discover, select_shard, work_base
from autograder.config import load_config

ROOT = Path(__file__).resolve().parent.parent
SLURM = ROOT / "ci-templates" / "slurm"
SHARDS = 4
STUDENTS = 24
WAIT_S = 600  # a job or array must end within this

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.xdist_group("slurm")]


def _cluster_skip_reason() -> str | None:
    """Why the tests cannot run here, or None when a cluster answers with a usable node."""
    if shutil.which("sbatch") is None:
        return ("sbatch is not installed: apt-get install -y slurm-wlm munge, then "
                "ci-templates/slurm/local-cluster.sh up and export SLURM_CONF as it prints")
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "no running Slurm cluster: sinfo got no answer in 20 s"
    states = proc.stdout.split()
    if proc.returncode != 0 or not {"idle", "mixed", "allocated"} & set(states):
        said = (proc.stderr.strip() or proc.stdout.strip() or "nothing").splitlines()[0]
        return f"no running Slurm cluster with a usable node ({said}); see ci-templates/README.md"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    reason = _cluster_skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def course_repo(cluster, tmp_path_factory) -> Path:
    """A course repository to submit from, as the README has it: grading.yml (a link to this
    project's) and the class in submissions/hw1, made by the batch benchmark's make_submissions
    (references, stubs, broken variants, zips). The jobs' logs land here."""
    spec = importlib.util.spec_from_file_location("bench_batch", ROOT / "benchmarks" / "bench_batch.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    repo = tmp_path_factory.mktemp("course")
    (repo / "grading.yml").symlink_to(ROOT / "grading.yml")
    subs = repo / "submissions" / "hw1"
    subs.mkdir(parents=True)
    bench.make_submissions(load_config(ROOT / "grading.yml", check_tree=False).assignment("hw1"), subs, STUDENTS)
    return repo


@pytest.fixture(scope="module")
def one_machine(course_repo) -> list[list[str]]:
    """The gradebook rows of `deepgrade grade-batch` of the same class on this machine."""
    out = course_repo / "graded-here"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade-batch", "submissions/hw1", "-a", "hw1",
                           "-o", str(out), "--jobs", "2", "--no-progress"],
                          cwd=course_repo, capture_output=True, text=True, timeout=WAIT_S)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return rows(out / "gradebook.csv")


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def submit(repo: Path, submissions: str, out: str, *extra: str) -> tuple[str, str]:
    """Run submit.sh from the course repository as the README says, with the running venv and
    shards small enough for two cores. Returns (array job id, gradebook job id)."""
    env = {**os.environ, "VENV": sys.prefix, "SHARD_CPUS": "1", "SHARD_MEM": "1G"}
    proc = subprocess.run([str(SLURM / "submit.sh"), "hw1", submissions, out, str(SHARDS), *extra],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.search(r"as job (\d+) and the gradebook as job (\d+)", proc.stdout)
    assert found, proc.stdout
    return found.group(1), found.group(2)


def job_states(job: str) -> dict[str, tuple[str, str]]:
    """A job's state as `scontrol show job` has it: task id ("" for a plain job) ->
    (JobState, ExitCode)."""
    proc = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    states = {}
    for line in proc.stdout.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        states[fields.get("ArrayTaskId", "")] = (fields["JobState"], fields["ExitCode"])
    return states


def wait_until_done(repo: Path, *jobs: str) -> None:
    """Wait for the jobs (every task of an array) to leave the queue; on timeout cancel them and
    fail with the queue and the logs."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        proc = subprocess.run(["squeue", "-h", "-j", ",".join(jobs), "-o", "%i %T"],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode == 0 and not proc.stdout.strip():
            return
        time.sleep(0.5)
    subprocess.run(["scancel", *jobs], capture_output=True)
    pytest.fail(f"jobs {jobs} still queued after {WAIT_S} s:\n{proc.stdout}\n{logs(repo)}")


def logs(repo: Path) -> str:
    """The end of every job log in the course repository, for a failure message."""
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(repo.glob("deepgrade-*.log")))


def wait_until_running(job: str) -> None:
    """Wait until array task `job` (ARRAY_TASK) runs; fail if it ends or never starts."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        state = job_states(job).get(job.partition("_")[2], ("", ""))[0]
        if state == "RUNNING":
            return
        assert state in ("PENDING", ""), f"{job} is {state}, expected it to start running"
        time.sleep(0.1)
    pytest.fail(f"{job} did not start within {WAIT_S} s")


def shard_students(submissions: Path, i: int) -> list[str]:
    """The students of shard i of SHARDS, as grade-batch splits them (round-robin by name)."""
    return [s.name for s in select_shard(discover(submissions), i, SHARDS)]


def test_submit_sh_grades_the_class_as_one_machine_does(course_repo, one_machine):
    array, book = submit(course_repo, "submissions/hw1", "graded/hw1")
    wait_until_done(course_repo, array, book)
    tasks = job_states(array)
    assert tasks == {str(i): ("COMPLETED", "0:0") for i in range(1, SHARDS + 1)}, f"{tasks}\n{logs(course_repo)}"
    assert job_states(book) == {"": ("COMPLETED", "0:0")}, logs(course_repo)
    # The logs are where the README says: in the folder submit.sh was run from.
    for i in range(1, SHARDS + 1):
        log = (course_repo / f"deepgrade-{array}_{i}.log").read_text()
        assert f"hw1, shard {i}/{SHARDS}: {STUDENTS // SHARDS} of {STUDENTS} students" in log, log
    log = (course_repo / f"deepgrade-gradebook-{book}.log").read_text()
    assert f"hw1: {STUDENTS} of {STUDENTS} students graded" in log, log
    assert rows(course_repo / "graded" / "hw1" / "gradebook.csv") == one_machine
    scores = {r[0]: r[-2] for r in one_machine[1:]}
    assert len(set(scores.values())) > 1, f"a class with one score proves little: {scores}"
    # Under slurmd the worker is isolated as it is here (its own PID namespace and user, ...).
    seen = []
    for name in scores:
        cluster_side = json.loads((course_repo / "graded" / "hw1" / name / "results.json").read_text())
        here = json.loads((course_repo / "graded-here" / name / "results.json").read_text())
        seen.append(cluster_side["extra_data"].get("protections"))
        assert seen[-1] == here["extra_data"].get("protections"), name
    assert any(seen), "no student was graded in a worker"


def test_a_cancelled_shard_is_named_by_the_gradebook_job_and_a_resubmission_completes_it(
        course_repo, one_machine):
    # Half the class (three a shard), to keep the test short: its rows of the one-machine
    # gradebook are what the cluster must end up with.
    half = course_repo / "half" / "hw1"
    half.mkdir(parents=True)
    for entry in sorted((course_repo / "submissions" / "hw1").iterdir())[: STUDENTS // 2]:
        (shutil.copytree if entry.is_dir() else shutil.copyfile)(entry, half / entry.name)
    expected = [one_machine[0]] + [r for r in one_machine[1:] if (half / r[0]).exists()
                                   or (half / f"{r[0]}.zip").exists()]
    assert len(expected) == 1 + STUDENTS // 2
    array, book = submit(course_repo, "half/hw1", "graded-cancel/hw1")
    wait_until_running(f"{array}_2")
    subprocess.run(["scancel", f"{array}_2"], check=True, timeout=30)
    wait_until_done(course_repo, array, book)
    tasks = job_states(array)
    assert tasks["2"][0] == "CANCELLED", tasks
    assert all(tasks[str(i)] == ("COMPLETED", "0:0") for i in (1, 3, 4)), f"{tasks}\n{logs(course_repo)}"

    # The gradebook job ran anyway (afterany), graded no one, and named who is missing.
    out = course_repo / "graded-cancel" / "hw1"
    graded = {r[0] for r in rows(out / "gradebook.csv")[1:] if r[-1] == "graded"}
    missing = sorted(set(shard_students(half, 2)) - graded)
    assert missing, "shard 2 graded everyone before it was cancelled: cancel sooner"
    assert job_states(book) == {"": ("FAILED", "1:0")}
    log = (course_repo / f"deepgrade-gradebook-{book}.log").read_text()
    assert f"{len(missing)} of {STUDENTS // 2} students have no grade" in log, log
    for name in missing:
        assert f"  {name}: pending" in log
        assert name in (out / "summary.md").read_text()
    book_rows = {r[0]: r for r in rows(out / "gradebook.csv")}
    assert all(book_rows[name][-1] == "pending" for name in missing)
    assert [r for r in expected if r[0] not in missing] == [r for r in book_rows.values() if r[0] not in missing]

    # The recovery the README gives: resubmit shard 2 only; the gradebook is then complete.
    array2, book2 = submit(course_repo, "half/hw1", "graded-cancel/hw1", "2")
    wait_until_done(course_repo, array2, book2)
    assert job_states(array2) == {"2": ("COMPLETED", "0:0")}, logs(course_repo)
    assert job_states(book2) == {"": ("COMPLETED", "0:0")}, logs(course_repo)
    assert f"hw1, shard 2/{SHARDS}" in (course_repo / f"deepgrade-{array2}_2.log").read_text()
    assert rows(out / "gradebook.csv") == expected
    # The grading folders the cancelled task left were swept by the resubmitted one.
    assert not work_base(out.resolve()).exists()

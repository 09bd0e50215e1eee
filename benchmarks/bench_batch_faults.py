"""No fault changes a grade: grade-batch over 30 submissions gives the gradebook of an
uninterrupted run after each of these faults.

    python benchmarks/bench_batch_faults.py [--n 30] [--jobs 2]

1. kill -9 of the batch in the middle, then a rerun (which must also leave no temporary
   folder behind);
2. kill -9 of one worker from outside, in the middle of a call into student code (graded
   again, not scored);
3. a stale error.json beside valid results (five students), then a rerun;
4. a second grade-batch started on the same OUT while the first runs.

The course is a toy (one module, four tests of about 0.3 s each), so that a run takes about a
minute; the submissions cycle through right, half right, wrong and a syntax error, and one
right submission is slow (2 s a call): its worker is the one killed in scenario 2. Every run
is the `deepgrade grade-batch` command in a child process with its own TMPDIR. Prints one line
per scenario (equal or not, and the time) and exits 1 when a gradebook differs.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

MODULE = textwrap.dedent("""
    import time

    def double(x):
        time.sleep(0.3)
        return 2 * x

    def square(x):
        time.sleep(0.3)
        return x * x
""")
TESTS = textwrap.dedent("""
    import pytest

    @pytest.mark.parametrize("x", [1, 2])
    def test_double(student, x):
        assert student.double(x) == 2 * x

    @pytest.mark.parametrize("x", [3, 4])
    def test_square(student, x):
        assert student.square(x) == x * x
""")
GRADING = textwrap.dedent("""
    assignments:
      toy:
        title: Faults
        files: [toy.py]
        timeouts: {call: 20, test: 30, total: 300, startup: 30}
        parts:
          double: {points: 2, tests: [test_double]}
          square: {points: 2, tests: [test_square]}
""")
KINDS = [MODULE, MODULE.replace("return x * x", "return x + x"), MODULE.replace("2 * x", "x").replace("x * x", "x"),
         MODULE + "\ndef broken(:\n"]
# One student's calls take 2 s: the worker killed in scenario 2 is theirs, in the middle of a call.
SLOW = "# the slow student\n" + MODULE.replace("time.sleep(0.3)", "time.sleep(2.0)")


def setup(base: Path, n: int) -> tuple[Path, Path]:
    """(grading.yml, the class folder of n students)."""
    sol = base / "course" / "solutions" / "toy"
    sol.mkdir(parents=True)
    (sol / "toy.py").write_text(MODULE)
    (sol / "test_toy.py").write_text(TESTS)
    (base / "course" / "grading.yml").write_text(GRADING)
    cls = base / "class"
    for i in range(n):
        (cls / f"s{i:02d}").mkdir(parents=True)
        (cls / f"s{i:02d}" / "toy.py").write_text(SLOW if i == n // 2 else KINDS[i % len(KINDS)])
    return base / "course" / "grading.yml", cls


def command(config: Path, cls: Path, out: Path, jobs: int) -> list[str]:
    return [sys.executable, "-m", "autograder", "grade-batch", str(cls), "-a", "toy", "-o", str(out),
            "--jobs", str(jobs), "--no-progress", "--config", str(config)]


def run(cmd: list[str], tmp: Path) -> subprocess.CompletedProcess:
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.run(cmd, env={**os.environ, "TMPDIR": str(tmp)}, capture_output=True, text=True)


def gradebook(out: Path) -> dict[str, tuple[str, str, str, str]]:
    with open(out / "gradebook.csv", newline="") as fh:
        return {r["student"]: (r["double"], r["square"], r["total"], r["status"]) for r in csv.DictReader(fh)}


def leftovers(tmp: Path) -> list[str]:
    return [p.name for p in tmp.iterdir()] if tmp.exists() else []


def wait_for(predicate, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the batch never got there")
        time.sleep(0.05)


def slow_workers(folder: Path) -> list[int]:
    """Pids of the workers under `folder` (their TMPDIR, the scratch folder, lies inside)
    that run the slow student's code."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if not entry.isdigit() or b"_deepgrade_worker" not in Path(f"/proc/{entry}/cmdline").read_bytes():
                continue
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            scratch = next(v[7:].decode() for v in env if v.startswith(b"TMPDIR="))
            if scratch.startswith(str(folder)) and "the slow student" in (Path(scratch) / "toy.py").read_text():
                found.append(int(entry))
        except (OSError, StopIteration):
            pass
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="deepgrade-bench-"))
    ok = True
    try:
        config, cls = setup(base, args.n)
        cmd = lambda out: command(config, cls, out, args.jobs)  # noqa: E731

        t0 = time.perf_counter()
        ref = run(cmd(base / "ref"), base / "tmp-ref")
        assert ref.returncode == 0, ref.stdout + ref.stderr
        book = gradebook(base / "ref")
        totals = sorted({v[2] for v in book.values()})
        print(f"{args.n} submissions, --jobs {args.jobs}: uninterrupted run {time.perf_counter() - t0:.1f} s; "
              f"totals seen {totals}")

        def report(name: str, out: Path, t: float, extra: str = "", tmp: Path | None = None) -> None:
            nonlocal ok
            same = gradebook(out) == book
            left = leftovers(tmp) if tmp is not None else []
            ok &= same and not left
            print(f"  {name:44s} same gradebook: {same}; {time.perf_counter() - t:.1f} s"
                  + (f"; {extra}" if extra else "") + (f"; LEFT BEHIND: {left}" if left else ""))

        # 1. kill -9 of the batch, then a rerun.
        t = time.perf_counter()
        out, tmp = base / "out1", base / "tmp1"
        tmp.mkdir()
        proc = subprocess.Popen(cmd(out), env={**os.environ, "TMPDIR": str(tmp)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: len(list(out.glob("*/results.json"))) >= args.n // 3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = len(list(out.glob("*/results.json")))
        rerun = run(cmd(out), tmp)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        report("kill -9 of the batch, then a rerun", out, t, f"{done} graded before the kill", tmp)

        # 2. kill -9 of one worker, from outside, in the middle of a test.
        t = time.perf_counter()
        out, tmp = base / "out2", base / "tmp2"
        tmp.mkdir()
        proc = subprocess.Popen(cmd(out), env={**os.environ, "TMPDIR": str(tmp)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: bool(slow_workers(tmp)))
        time.sleep(1.0)  # in the middle of a 2 s call
        victim = slow_workers(tmp)[0]
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        assert proc.returncode == 0, stdout + stderr
        report("kill -9 of one worker", out, t, f"worker {victim} killed", tmp)

        # 3. a stale error.json beside valid results, then a rerun.
        t = time.perf_counter()
        out = base / "out3"
        shutil.copytree(base / "ref", out)
        for name in sorted(book)[:5]:
            (out / name / "error.json").write_text(json.dumps({"student": name, "error": "RunnerError: stale"}))
        rerun = run(cmd(out), base / "tmp3")
        report("a stale error.json (5 students), then a rerun", out, t,
               rerun.stdout.strip().splitlines()[0].split(": ", 1)[1])

        # 4. a second run on the same OUT while the first runs.
        t = time.perf_counter()
        out = base / "out4"
        first = subprocess.Popen(cmd(out), env={**os.environ, "TMPDIR": str(base / "tmp4")},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(list(out.glob("*/results.json"))) >= 2)
        second = run(cmd(out), base / "tmp4")
        stdout, stderr = first.communicate()
        assert first.returncode == 0 and second.returncode == 0, stdout + stderr + second.stdout + second.stderr
        firsts = [out_text.strip().splitlines()[0].split(": ", 1)[1] for out_text in (stdout, second.stdout)]
        report("a second run on the same OUT, at once", out, t, " | ".join(firsts))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("all gradebooks equal the uninterrupted run's" if ok else "A GRADEBOOK DIFFERS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

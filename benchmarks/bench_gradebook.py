"""The gradebook, summary and histogram of a whole course, from OUT alone: time and memory.

Writes N synthetic students (default 5,000) of hw1 into a temporary folder: each a submission
folder (the three graded files, different for each student) and OUT/<student>/results.json as
grade-batch writes it (Gradescope's format, every test of hw1 with its verdict and, when
failed, a message of a few hundred characters; the batch stamp of the submission). A tenth
have no results yet (pending) and a few an error.json (failed). Then, in a child process
whose peak RSS is read at its end, it does what the end of `grade-batch` and
`grade-batch --gather-only` do: the stamps of every submission (batch.stamp_of), then
batch.write_reports (collect_results, gradebook_csv, summary_markdown, histogram_png).

Targets (issue 16): at most 10 s and 500 MB for 5,000 students. Prints the time of each step,
the peak RSS, and exits 1 when a target is missed.

Usage: python benchmarks/bench_gradebook.py [--n 5000] [--tests 190]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIME_TARGET = 10.0  # seconds
MEMORY_TARGET = 500  # MB of peak RSS, the interpreter and matplotlib included

FAILURE = ("AssertionError: affine_backward: dx is wrong: worst relative error 0.5 at index (2, 3) "
           "(expected 0.1234, got 0.2468); shapes expected (4, 5), got (4, 5).\nHint: ") + "x" * 300


def make_course(work: Path, n: int, tests: int) -> None:
    """n students of hw1 in work/subs and their results in work/out (see the module's doc)."""
    from autograder.batch import ERROR, RESULTS, Student, stamp_of
    from autograder.config import load_config
    from autograder.reports import gradescope_results
    from autograder.runner import TestOutcome
    from autograder.scoring import score

    course = load_config(ROOT / "grading.yml", check_tree=False)
    hw1 = course.assignment("hw1")
    parts = list(hw1.parts)
    rng = random.Random(0)
    subs, out = work / "subs", work / "out"
    subs.mkdir()
    out.mkdir()
    for i in range(n):
        name = f"student{i:05d}"
        folder = subs / name
        folder.mkdir()
        for f in hw1.files:
            (folder / f).write_text(f"# {name}\n" + "def f(x):\n    return x\n" * 200, encoding="utf-8")
        if i % 10 == 9:
            continue  # pending: not graded yet
        (out / name).mkdir()
        stamp = stamp_of(Student(name, folder), None)
        if i % 97 == 0:
            (out / name / ERROR).write_text(json.dumps({"student": name, "error": "RunnerError: x", "batch": stamp}))
            continue
        skill = rng.random()
        outcomes = [TestOutcome(nodeid=f"solutions/hw1/test_x.py::test_{k}", name=f"test_{k}", file="test_x.py",
                                hidden=k % 2 == 0, part=parts[k % len(parts)], gpu=False,
                                status="passed" if rng.random() < skill else "failed",
                                message="", duration=0.01) for k in range(tests)]
        for o in outcomes:
            if o.status == "failed":
                o.message = FAILURE
        results = gradescope_results(score(hw1, outcomes), execution_time=2.0, notes=["sandbox: ..."],
                                     extra={"files": {f: "0" * 64 for f in hw1.files}, "missing": [],
                                            "ignored": [], "ignored_count": 0, "protections": {}, "runner": "all"})
        results["extra_data"]["batch"] = stamp
        # As reports.write_json writes it (indent 2), without its fsync: this is only the setup.
        (out / name / RESULTS).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def measure(work: Path) -> dict:
    """In this (fresh) process: stamps, then write_reports; the time of each and the peak RSS."""
    t0 = time.perf_counter()
    from autograder.batch import discover, stamp_of, write_reports
    from autograder.config import load_config

    hw1 = load_config(ROOT / "grading.yml", check_tree=False).assignment("hw1")
    t1 = time.perf_counter()
    c1 = time.process_time()
    students = discover(work / "subs")
    stamps = {s.name: stamp_of(s, None) for s in students}
    t2 = time.perf_counter()
    states: dict = {}
    write_reports(hw1, students, work / "out", stamps, states_out=states)
    t3 = time.perf_counter()
    graded = sum(state == "graded" for state, _ in states.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"imports": t1 - t0, "stamps": t2 - t1, "reports": t3 - t2, "total": t3 - t0, "peak_mb": peak_mb,
            "cpu": time.process_time() - c1,
            "students": len(students), "graded": graded}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="students")
    parser.add_argument("--tests", type=int, default=190, help="tests in each results.json")
    parser.add_argument("--keep", type=Path, help="make the students in this folder and keep them (a "
                        "second run with the same folder only measures)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's part
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="deepgrade-bench-gradebook-"))
    try:
        t = time.perf_counter()
        if not (work / "subs").is_dir():
            work.mkdir(parents=True, exist_ok=True)
            make_course(work, args.n, args.tests)
        size = sum(p.stat().st_size for p in (work / "out").rglob("results.json"))
        print(f"setup: {args.n} students, {size / 2**20:.0f} MB of results.json ({time.perf_counter() - t:.1f} s); "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        child = subprocess.run([sys.executable, __file__, "--measure", str(work)], capture_output=True, text=True,
                               check=False)
        if child.returncode != 0:
            print(child.stdout + child.stderr)
            return 1
        m = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{m['students']} students ({m['graded']} graded): imports {m['imports']:.2f} s, "
              f"stamps {m['stamps']:.2f} s, write_reports {m['reports']:.2f} s; "
              f"total {m['total']:.2f} s (target <= {TIME_TARGET:g} s; CPU time of stamps and reports "
              f"{m['cpu']:.2f} s), peak RSS {m['peak_mb']:.0f} MB "
              f"(target <= {MEMORY_TARGET} MB)")
        book = (work / "out" / "gradebook.csv").read_text(encoding="utf-8").splitlines()
        print(f"gradebook.csv: {len(book) - 1} rows; summary.md and histogram.png written: "
              f"{(work / 'out' / 'summary.md').exists() and (work / 'out' / 'histogram.png').exists()}")
        ok = m["total"] <= TIME_TARGET and m["peak_mb"] <= MEMORY_TARGET and len(book) - 1 == args.n
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

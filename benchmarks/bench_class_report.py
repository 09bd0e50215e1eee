"""The class report and the similarity screen at course scale, against the targets of issue 19.

1. `deepgrade report` of N students (default 1,000; synthetic results.json made as grading
   makes them, tests/synthetic_class.py): wall time (target <= 30 s) and size of the page
   (target <= 10 MB).
2. The similarity screen of the same N hw1 submissions (the released stub plus code of each
   student's own; one copied pair) with --jobs 2: wall time (target <= 120 s on 2 cores).

Usage: python benchmarks/bench_class_report.py [--n 1000] [--jobs 2]
Everything runs in a temporary folder. Prints one line per measurement: the wall time, the CPU
time (this process and the tokenizing processes) and the load average, since the machine may be
shared; exits 1 when a wall-time or size target is missed.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from autograder.classreport import build_report, write_report  # noqa: E402
from autograder.config import load_config  # noqa: E402
from autograder.similarity import screen_folder  # noqa: E402
from synthetic_class import make_class  # noqa: E402

REPORT_SECONDS, REPORT_MB, SIMILAR_SECONDS = 30.0, 10.0, 120.0


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the tokenizing pool): on a shared
    machine the wall time says little, the CPU time what the same work costs on idle cores."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    course = load_config(ROOT / "grading.yml")
    hw1 = course.assignment("hw1")
    ok = True
    with tempfile.TemporaryDirectory(prefix="deepgrade-bench-report-") as tmp:
        start = time.perf_counter()
        planted = make_class(Path(tmp), hw1, args.n)
        print(f"made {args.n} synthetic students in {time.perf_counter() - start:.1f} s "
              f"(load average {os.getloadavg()[0]:.1f})")

        start, cpu = time.perf_counter(), cpu_seconds()
        sim = screen_folder(planted.submissions, hw1, jobs=args.jobs)
        similar_s, similar_cpu = time.perf_counter() - start, cpu_seconds() - cpu
        top = sim.pairs[0] if sim.pairs else None
        found = top is not None and {top.a, top.b} == set(planted.copied)
        print(f"similarity: {args.n} submissions, {sim.compared} pairs, --jobs {args.jobs}: {similar_s:.1f} s "
              f"(target <= {SIMILAR_SECONDS:g} s), {similar_cpu:.1f} CPU-s; {len(sim.flagged)} flagged; "
              f"copied pair first: {found} (load average {os.getloadavg()[0]:.1f})")
        ok &= similar_s <= SIMILAR_SECONDS and found

        start, cpu = time.perf_counter(), cpu_seconds()
        html = build_report(course, planted.graded)
        out = Path(tmp) / "report.html"
        write_report(out, html)
        report_s, report_cpu = time.perf_counter() - start, cpu_seconds() - cpu
        mb = out.stat().st_size / 1e6
        print(f"report: {args.n} students: {report_s:.1f} s (target <= {REPORT_SECONDS:g} s), {report_cpu:.1f} CPU-s, "
              f"{mb:.2f} MB (target <= {REPORT_MB:g} MB) (load average {os.getloadavg()[0]:.1f})")
        ok &= report_s <= REPORT_SECONDS and mb <= REPORT_MB

        start = time.perf_counter()
        write_report(out, build_report(course, planted.graded, similarity=sim))
        print(f"report with the similarity section: {time.perf_counter() - start:.1f} s, "
              f"{out.stat().st_size / 1e6:.2f} MB")
    print("all targets met" if ok else "a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

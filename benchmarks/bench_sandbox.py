"""How much the sandboxed worker costs: grade an assignment's reference in process and sandboxed.

    python benchmarks/bench_sandbox.py [--assignment hw1] [--suite hidden|all] [--repeat 3]

Prints, for each way of grading, the wall time of the whole pytest run and the time spent in
the tests themselves (medians over the repeats, the two ways interleaved so that load on the
machine affects both alike), the ratios, and the worker's start-up time (start, sandbox,
import numpy, answer the first request). Targets: sandboxed <= 1.5x in process for the hidden
suite; start-up <= 0.5 s.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from autograder import sandbox
from autograder.sandbox.connection import Connection
from autograder.config import load_config
from autograder.runner import run_tests
from autograder.submission import collect

ROOT = Path(__file__).resolve().parent.parent


def grade_once(assignment, submission: Path, tests: list[Path] | None, isolation: str) -> tuple[float, float, int]:
    """(wall seconds of the pytest run, seconds inside tests, tests passed)."""
    work = Path(tempfile.mkdtemp(prefix="deepgrade-bench-"))
    try:
        run = run_tests(assignment, work / "run", submission=submission, tests=tests, isolation=isolation)
        passed = sum(o.status == "passed" for o in run.outcomes)
        return run.wall_time, sum(o.duration for o in run.outcomes), passed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def startup_times(assignment, submission: Path, n: int) -> list[float]:
    times = []
    for _ in range(n):
        conn = Connection(assignment, submission, [assignment.root])
        times.append(conn.startup_time)
        conn.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="hw1")
    parser.add_argument("--suite", choices=["hidden", "all"], default="hidden")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    course = load_config(ROOT / "grading.yml", check_tree=False)
    a = course.assignment(args.assignment)
    scratch = Path(tempfile.mkdtemp(prefix="deepgrade-bench-sub-"))
    sub = collect(a.solution_dir, a, scratch / "submission").folder
    hidden = sorted(a.hidden_dir.glob("test_*.py")) if args.suite == "hidden" else None
    try:
        print(f"{a.name}: {args.suite} suite, reference solution, {args.repeat} runs each way")
        print("protections:", ", ".join(f"{k}={'on' if v else 'off'}" for k, v in sandbox.probe_protections().items()))
        results: dict[str, list[tuple[float, float, int]]] = {"inprocess": [], "worker": []}
        for _ in range(args.repeat):
            for isolation in ("inprocess", "worker"):
                results[isolation].append(grade_once(a, sub, hidden, isolation))
        med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v), v[0][2])
               for k, v in results.items()}
        for k, (wall, inside, passed) in med.items():
            print(f"  {k:10s} wall {wall:7.3f} s   in tests {inside:7.3f} s   passed {passed}")
        print(f"ratio sandboxed / in process: wall {med['worker'][0] / med['inprocess'][0]:.2f}x "
              f"(target <= 1.5x), in tests {med['worker'][1] / max(med['inprocess'][1], 1e-9):.2f}x")
        t0 = time.perf_counter()
        starts = startup_times(a, sub, 5)
        print(f"worker start-up: median {statistics.median(starts):.3f} s, max {max(starts):.3f} s "
              f"(target <= 0.5 s; 5 starts in {time.perf_counter() - t0:.2f} s)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

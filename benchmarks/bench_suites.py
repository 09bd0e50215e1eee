"""Wall time of each assignment's test suites, in one run, against the targets.

- hidden suite on the reference (targets: hw1, hw2, hw4 under 10 s; hw3 under 5 s)
- visible suite on the stubs, as a student first runs it (target: hw1 under 5 s, hw5 under 10 s)

Usage: python benchmarks/bench_suites.py [hw1 hw2 ...]
Each suite runs in a fresh `python -m pytest`, as a student or the grader would, so interpreter
and import start-up are included. Prints one line per suite: seconds, target and their ratio.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.config import load_config  # noqa: E402

HIDDEN_TARGET = {"hw1": 10.0, "hw2": 10.0, "hw3": 5.0, "hw4": 10.0, "hw5": 60.0}
STUB_TARGET = {"hw1": 5.0, "hw5": 10.0}


def timed_pytest(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                   cwd=ROOT, capture_output=True)
    return time.perf_counter() - start


def main(names: list[str]) -> None:
    course = load_config(ROOT / "grading.yml", check_tree=False)
    names = names or list(course.assignments)
    print(f"{'suite':40s} {'seconds':>8s} {'target':>7s} {'ratio':>6s}")
    for name in names:
        a = course.assignment(name)
        rows = [(f"{name} hidden suite on the reference", [str(a.hidden_dir)], HIDDEN_TARGET.get(name)),
                (f"{name} visible suite on the stubs", [str(a.release_dir)], STUB_TARGET.get(name, 10.0))]
        for label, args, target in rows:
            secs = timed_pytest(args)
            ratio = f"{secs / target:6.2f}" if target else "     -"
            print(f"{label:40s} {secs:8.2f} {target or 0:7.1f} {ratio}")


if __name__ == "__main__":
    main(sys.argv[1:])

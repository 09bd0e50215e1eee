"""Full audit figures and wall time of every assignment (target: hw2 under 180 s).

Usage: python benchmarks/bench_audit.py [hw1 hw2 ...] [--jobs N] [--sample N] [--reports DIR]
Runs `deepgrade audit`'s engine on each assignment (every catalogued bug, every automatic
mutant unless --sample) and prints one line each: catalog caught, mutants made / graded /
equivalent / caught / survived, the mutation score, seconds, and the target where there is one.
With --reports, also writes DIR/audit-hwN.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.audit import run_audit, write_report  # noqa: E402
from autograder.config import load_config  # noqa: E402

TARGET = {"hw2": 180.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sample", type=int, default=None)
    parser.add_argument("--reports", type=Path, default=None)
    args = parser.parse_args()
    course = load_config(ROOT / "grading.yml", check_tree=False)
    names = args.names or sorted(course.assignments)
    print(f"{'hw':4s} {'catalog':>8s} {'made':>5s} {'graded':>6s} {'equiv':>6s} {'caught':>6s} "
          f"{'surv':>5s} {'score':>7s} {'seconds':>8s} {'target':>7s}")
    for name in names:
        report = run_audit(course.assignment(name), jobs=args.jobs, sample=args.sample)
        caught, total = report.catalog_caught()
        c = report.mutant_counts()
        score = report.mutation_score()
        target = TARGET.get(name)
        print(f"{name:4s} {f'{caught}/{total}':>8s} {report.mutants_made:5d} {c['total']:6d} "
              f"{c['equivalent']:6d} {c['caught']:6d} {c['survived']:5d} "
              f"{'-' if score is None else f'{100 * score:.1f}%':>7s} {report.wall_time:8.1f} "
              f"{'-' if target is None else f'{target:.0f}':>7s}", flush=True)
        if args.reports:
            args.reports.mkdir(parents=True, exist_ok=True)
            write_report(report, args.reports / f"audit-{name}.md")


if __name__ == "__main__":
    main()

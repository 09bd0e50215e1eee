"""What grading the concept checks adds to a submission's grade, per assignment, in one run.

Target: at most 0.2 s per submission. Two child pytests, as `deepgrade grade` runs them (the
grading plugin, a submission folder with the reference module and answers.yml), are timed in
turn, REPEAT times each, and their medians compared:

- with:    every test file of the assignment, `-m quiz` (collects everything, runs the questions)
- without: the same files less hidden/test_quiz_hidden.py, `-m quiz` (collects the rest, runs nothing)

The difference is the quiz's whole cost: importing its module, loading and validating quiz.yml,
reading answers.yml and grading each question. It is measured in CPU seconds of the child
(and in wall seconds, which other work on a shared machine disturbs more), each the minimum over
the repeats: the least the run needs. Also printed: the quiz's work in process.

Usage: python benchmarks/bench_quiz.py [hw1 hw2 ...]
"""
from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import quiz  # noqa: E402
from autograder.config import load_config  # noqa: E402
from autograder.runner import pytest_command  # noqa: E402

TARGET = 0.2  # seconds a quiz may add to one submission's grade
REPEAT = 5


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child pytest and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def in_process(a) -> float:
    start = time.perf_counter()
    q = quiz.load_quiz(a.solution_dir / quiz.QUIZ_NAME)
    answers = quiz.read_answers(a.solution_dir / quiz.ANSWERS_NAME)
    assert all(quiz.grade_answer(x, answers)[0] for x in q.questions)
    return time.perf_counter() - start


def main(names: list[str]) -> None:
    course = load_config(ROOT / "grading.yml", check_tree=False)
    names = names or [n for n, a in course.assignments.items() if (a.solution_dir / quiz.QUIZ_NAME).is_file()]
    print(f"{'assignment':10s} {'cpu with':>8s} {'without':>8s} {'cpu added':>9s} {'wall added':>10s} "
          f"{'target':>7s} {'ratio':>6s} {'in process':>11s}")
    worst = 0.0
    for name in names:
        a = course.assignment(name)
        with tempfile.TemporaryDirectory(prefix="bench-quiz-") as tmp:
            work = Path(tmp)
            sub = work / "sub"
            sub.mkdir()
            for f in a.files + a.support_files:
                shutil.copy(a.solution_dir / f, sub / f)
            ini = work / "pytest.ini"
            ini.write_text("[pytest]\n")
            files = a.test_files()
            rest = [f for f in files if f.name != "test_quiz_hidden.py"]
            cmds = {
                "with": pytest_command(a, work / "with.jsonl", sub, ini, select="quiz", tests=files),
                "without": pytest_command(a, work / "without.jsonl", sub, ini, select="quiz", tests=rest),
            }
            runs: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
            for _ in range(REPEAT):  # interleaved, so that a busy moment hits both
                for key, cmd in cmds.items():
                    runs[key].append(timed(cmd, work))
        wall = {k: min(w for w, _ in v) for k, v in runs.items()}
        cpu = {k: min(c for _, c in v) for k, v in runs.items()}
        added = cpu["with"] - cpu["without"]
        worst = max(worst, added)
        print(f"{name:10s} {cpu['with']:8.2f} {cpu['without']:8.2f} {added:9.3f} {wall['with'] - wall['without']:10.3f} "
              f"{TARGET:7.1f} {added / TARGET:6.2f} {in_process(a):11.4f}")
    print(f"worst added CPU time {worst:.3f} s: {'within' if worst <= TARGET else 'OVER'} the {TARGET} s target")


if __name__ == "__main__":
    main(sys.argv[1:])

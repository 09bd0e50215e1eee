"""Batch grading at course scale, in one run, against the targets of the batch issues.

1. Grade N hw1 submissions (default 100: copies of the reference, the stub and typical broken
   variants) with --jobs 2, both ways, interleaved (A B B A ... in --rounds rounds, each
   round grading N/rounds of them): A is the cold start (DEEPGRADE_COLD=1, a new pytest
   per submission, as before the warm servers), B the default (a child forked from a warm,
   collected pytest per submission). Prints each one's wall time per submission per core and
   B's speed-up over A (target: at least 2x); both must give every student the same grade,
   test by test.
2. Grade the same N as shards 1/3, 2/3, 3/3: their union must equal the unsharded results
   (same students, same score and verdict for every test).
3. Grade the first K of them (default 20) with --jobs 1 and with --jobs 2: the speed-up
   (target: at least 1.7x on two cores).

Usage: python benchmarks/bench_batch.py [--n 100] [--rounds 2] [--speedup-n 20]
Everything runs in a temporary folder through autograder.batch.run_batch, as
`deepgrade grade-batch` does; grading uses the default isolation (the sandboxed worker) unless
DEEPGRADE_ISOLATION says otherwise. Prints one line per measurement and exits 1 when a target
is missed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.batch import RESULTS, read_results, run_batch  # noqa: E402
from autograder.config import load_config  # noqa: E402
from autograder.release import make_stub  # noqa: E402

SPEEDUP_TARGET = 1.7
WARM_TARGET = 2.0  # submissions per core-second, warm over cold
COLD = "DEEPGRADE_COLD"


def make_submissions(assignment, dest: Path, n: int) -> None:
    """n student entries in `dest`, cycling through six kinds: the reference, the stub, a wrong
    backward pass, a missing file, a syntax error, and the reference as a zip."""
    ref = {f: (assignment.solution_dir / f).read_text(encoding="utf-8") for f in assignment.files}
    stub = {f: make_stub(text, f) for f, text in ref.items()}
    first = assignment.files[0]
    kinds = [
        ("reference", ref),
        ("stub", stub),
        ("wrong-backward", {**ref, first: ref[first] + "\n\ndef tanh_backward(dout, cache):\n    return dout\n"}),
        ("missing-file", {f: t for f, t in ref.items() if f != assignment.files[-1]}),
        ("syntax-error", {**ref, assignment.files[-1]: ref[assignment.files[-1]] + "\ndef broken(:\n"}),
        ("zip", ref),
    ]
    for i in range(n):
        kind, files = kinds[i % len(kinds)]
        name = f"student{i:03d}-{kind}"
        if kind == "zip":
            with zipfile.ZipFile(dest / f"{name}.zip", "w") as zf:
                for f, text in files.items():
                    zf.writestr(f"{name}/{f}", text)
        else:
            (dest / name).mkdir()
            for f, text in files.items():
                (dest / name / f).write_text(text, encoding="utf-8")


def load() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every number."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def verdicts(out: Path) -> dict[str, tuple]:
    """student -> (score, ((test name, status, score), ...)): what must not depend on sharding."""
    table = {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        data = read_results(folder / RESULTS)
        if data is not None:
            table[folder.name] = (data["score"], tuple((t["name"], t["status"], t["score"]) for t in data["tests"]))
    return table


def compare_cold_and_warm(course, hw1, subs: Path, work: Path, rounds: int) -> bool:
    """Grade the submissions of `subs` cold (A) and warm (B), --jobs 2, interleaved in
    `rounds` rounds (A B, then B A, ...: a drift in the machine's load hits both alike), into
    work/out-jobs2 (B) and work/out-cold (A). Prints the figures; True when B is at least
    WARM_TARGET times faster and every grade is the same both ways."""
    entries = sorted(subs.iterdir())
    cores = os.cpu_count() or 1
    walls = {"cold": 0.0, "warm": 0.0}
    failed = 0
    for r in range(rounds):
        chunk = work / f"round{r}"
        chunk.mkdir()
        for entry in entries[r::rounds]:
            (shutil.copytree if entry.is_dir() else shutil.copyfile)(entry, chunk / entry.name)
        for mode in (("cold", "warm") if r % 2 == 0 else ("warm", "cold")):
            out = work / ("out-cold" if mode == "cold" else "out-jobs2")
            out.mkdir(exist_ok=True)
            if mode == "cold":
                os.environ[COLD] = "1"
            try:
                report = run_batch(course, hw1, chunk, out, jobs=2)
            finally:
                os.environ.pop(COLD, None)
            walls[mode] += report.wall_time
            failed += len(report.failed)
    n = len(entries)
    per_core = {mode: wall * cores / n for mode, wall in walls.items()}
    ratio = per_core["cold"] / per_core["warm"]
    for mode, label in (("cold", "A cold (DEEPGRADE_COLD=1)"), ("warm", "B warm (default)")):
        print(f"{label}: {n} hw1 submissions, --jobs 2, {walls[mode]:.1f} s wall, "
              f"{per_core[mode]:.2f} s per submission per core")
    same = verdicts(work / "out-cold") == verdicts(work / "out-jobs2")
    print(f"warm over cold: {ratio:.2f}x the submissions per core-second (target >= {WARM_TARGET}x); "
          f"the same grades both ways: {same}; failed: {failed}")
    return ratio >= WARM_TARGET and same and not failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="submissions in the batch")
    parser.add_argument("--speedup-n", type=int, default=20, help="submissions for the jobs 1 vs 2 run")
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="A/B rounds of the cold-versus-warm run")
    args = parser.parse_args(argv)
    course = load_config(ROOT / "grading.yml", check_tree=False)
    hw1 = course.assignment("hw1")
    ok = True
    work = Path(tempfile.mkdtemp(prefix="deepgrade-bench-"))
    try:
        subs = work / "submissions"
        subs.mkdir()
        make_submissions(hw1, subs, args.n)
        print(f"cores: {os.cpu_count()}; isolation: {os.environ.get('DEEPGRADE_ISOLATION', 'worker')}; "
              f"load average before: {load()}")

        ok &= compare_cold_and_warm(course, hw1, subs, work, args.rounds)
        full = run_batch(course, hw1, subs, work / "out-jobs2", jobs=2, regrade=True)
        times = [read_results(work / "out-jobs2" / s.name / RESULTS)["execution_time"] for s in full.students]
        print(f"{args.n} hw1 submissions, --jobs 2 (warm, again): {full.wall_time:.1f} s wall, "
              f"{full.wall_time / args.n:.2f} s per submission of wall time, "
              f"median grading time per submission {statistics.median(times):.2f} s "
              f"(failed: {len(full.failed)})")
        ok &= not full.failed

        for i in range(1, args.shards + 1):
            shard = run_batch(course, hw1, subs, work / "out-sharded", jobs=2, shard=(i, args.shards))
            for name, error in sorted(shard.failed.items()):
                print(f"  shard {i}/{args.shards}: grading {name} failed: {error}")
        sharded, unsharded = verdicts(work / "out-sharded"), verdicts(work / "out-jobs2")
        same = sharded == unsharded
        print(f"shards 1..{args.shards}/{args.shards}: union equals the unsharded results: {same}")
        for name in sorted(set(sharded) | set(unsharded)):
            a, b = sharded.get(name), unsharded.get(name)
            if a != b:
                diff = [(x, y) for x, y in zip(a[1], b[1]) if x != y] if a and b else []
                print(f"  {name}: sharded {a and a[0]}, unsharded {b and b[0]}; first differences {diff[:3]}")
                for out in ("out-sharded", "out-jobs2"):  # why: the first failure's message
                    tests = (read_results(work / out / name / RESULTS) or {}).get("tests", [])
                    bad = [t for t in tests if t["status"] == "failed" and (t["name"], "passed", t["max_score"])
                           in {(x[0], x[1], x[2]) for x in (*(a or [0, ()])[1], *(b or [0, ()])[1])}]
                    if bad:
                        print(f"    {out}: {bad[0]['name']}: {bad[0]['output'][:300]!r}")
        ok &= same

        small = work / "small"
        small.mkdir()
        for s in full.students[: args.speedup_n]:
            dest = small / s.source.name
            (shutil.copytree if s.source.is_dir() else shutil.copyfile)(s.source, dest)
        one = run_batch(course, hw1, small, work / "small-jobs1", jobs=1)
        two = run_batch(course, hw1, small, work / "small-jobs2", jobs=2)
        speedup = one.wall_time / two.wall_time
        print(f"{args.speedup_n} submissions: --jobs 1 {one.wall_time:.1f} s, --jobs 2 {two.wall_time:.1f} s, "
              f"speed-up {speedup:.2f}x (target >= {SPEEDUP_TARGET}x)")
        ok &= speedup >= SPEEDUP_TARGET
        # Other work on the machine takes cores from the batch: the speed-up means little under load.
        print(f"load average after: {load()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The grader's own memory on hostile input: every archive of the red-team catalogue, and the
largest values a worker may send back. Target: at most 300 MB each.

    python benchmarks/bench_hostile_archives.py [--cache DIR] [--quick]

Archives: zip bombs (deflate 4000 MB, bzip2 and lzma 1 GB, each with honest and lying sizes),
corrupt deflate / bzip2 / lzma data, a wrong checksum, encryption, an unknown compression,
100,000 entries, 100,001 entries, a directory of 32 MB of long names, 10,000 copies of one
name, symbolic links and escaping names. Each is collected (submission.collect, what the
grader does with a submission) in a fresh child process, which prints its peak resident
memory (VmHWM, of its own address space alone).

Replies: a toy course whose student code returns ten million short strings, a 2e9-element
array, and a reply frame written by hand that claims 4 MB of nested plain data (the most the
grader reads). The trusted pytest runs in a child that prints its own peak memory; the
worker's memory is its own (grading.yml limits.memory_mb) and not counted.

The bzip2 and lzma bombs take about a minute to make; --cache keeps them (default: a folder in
the system's temporary folder). --quick skips the 1 GB bzip2 and lzma bombs. Exits 1 when a
target is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.redteam import archives as A  # noqa: E402

TARGET_MB = 300
GRADING_YML = """
assignments:
  hwz:
    title: Hostile
    files: [layers.py, helpers.py]
    timeouts: {call: 120, test: 300, total: 900, startup: 60}
    limits: {file_size_mb: 1, memory_mb: 4096}
    parts:
      f: {points: 1, tests: [test_f]}
      g: {points: 1, tests: [test_g]}
      r: {points: 1, tests: ["test_return_*"]}
"""
TESTS = textwrap.dedent("""
    def test_f(student):
        assert student.f(2) == 4

    def test_g(student):
        assert student.g() == 1

    def test_return_small(student):
        assert student.f(1) == 2

    def test_return_many_strings(student):
        student.many_strings(10_000_000)

    def test_return_huge_array(student):
        student.huge_array(2_000_000_000)

    def test_return_rogue_frame(student):
        student.rogue_frame()
""")
LAYERS = textwrap.dedent("""
    import os, struct, sys, json
    import numpy as np

    def f(x):
        return 2 * x

    def many_strings(n):
        return ["ab"] * n

    def huge_array(n):
        return np.broadcast_to(np.float64(1.0), (n,))

    def rogue_frame():
        # A reply of nested plain data just under the grader's header budget (4 MB), written
        # straight onto the reply pipe: the most a hostile worker can make the grader parse.
        node = '{"t":"list","v":[]}'
        body = '{"ok":true,"out":"","v":{"t":"list","v":[' + ",".join([node] * 200_000) + "]}}"
        head = body.encode()
        payload = struct.pack("<I", len(head)) + head + struct.pack("<I", 0)
        os.write(int(sys.argv[-1]), struct.pack("<Q", len(payload)) + payload)
        import time
        time.sleep(600)
""")
HELPERS = "def g():\n    return 1\n"
# VmHWM: the peak resident memory of this process's own address space (ru_maxrss would
# include the benchmark's, inherited through fork and exec).
PEAK = """
def peak_kb():
    with open("/proc/self/status") as fh:
        return int(next(line for line in fh if line.startswith("VmHWM:")).split()[1])
"""
MEASURE_COLLECT = PEAK + """
import json, sys
from pathlib import Path
from autograder.config import load_config
from autograder.submission import SubmissionError, collect
a = load_config(sys.argv[1]).assignment("hwz")
try:
    s = collect(sys.argv[2], a, Path(sys.argv[3]))
    what = {"missing": s.missing, "problems": s.problems[:2]}
except SubmissionError as exc:
    what = {"refused": str(exc)[:160]}
print(json.dumps({"peak_kb": peak_kb(), **what}))
"""
MEASURE_PYTEST = PEAK + """
import json, sys
import pytest
rc = pytest.main(sys.argv[1:])
print("PEAK " + json.dumps({"rc": int(rc), "peak_kb": peak_kb()}))
"""


def archives(cache: Path, quick: bool) -> dict[str, bytes]:
    """name -> zip bytes: the hostile archives, each with a good helpers.py beside."""
    helpers = A.stored("helpers.py", HELPERS)
    good = A.stored("layers.py", "def f(x):\n    return 2 * x\n")
    cases: dict[str, list[A.Member]] = {}
    bombs = [(zipfile.ZIP_DEFLATED, "deflate", 4000)]  # (4096 MB would need zip64)
    if not quick:
        bombs += [(zipfile.ZIP_BZIP2, "bzip2", 1024), (zipfile.ZIP_LZMA, "lzma", 1024)]
    for method, label, mb in bombs:
        for declared, how in ((1000, "lying"), (None, "honest")):
            cases[f"{label} bomb, {mb} MB, {how} sizes"] = [A.bomb_member(method, mb, declared, cache), helpers]
    for method, label in ((zipfile.ZIP_DEFLATED, "deflate"), (zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma")):
        cases[f"corrupt {label} data"] = [A.corrupt_member(method), helpers]
    cases["wrong checksum"] = [A.Member("layers.py", b"def f(x):\n    return x\n", crc=1), helpers]
    cases["encrypted"] = [A.Member("layers.py", b"x" * 100, flags=0x1), helpers]
    cases["unknown compression"] = [A.Member("layers.py", b"x" * 100, method=98), helpers]
    cases["10,000 copies of layers.py"] = [good] * 10_000 + [helpers]
    cases["symbolic links"] = [A.Member("layers.py", b"/etc/passwd", mode=0o120777),
                               A.Member("helpers.py", b"../../solutions", mode=0o120777)]
    cases["escaping names"] = [A.stored("../" * 50 + "etc/evil.py", "x"), A.stored("/abs/layers.py", "x"),
                               good, helpers]
    out = {name: A.build(members) for name, members in cases.items()}
    out["100,000 entries"] = A.build([good, helpers] + [A.stored(f"junk/{i}", "") for i in range(99_998)])
    out["100,001 entries (refused)"] = A.build([good, helpers] + [A.stored(f"junk/{i}", "") for i in range(99_999)])
    out["32 MB of long names (refused)"] = A.build([good, helpers] + [A.stored(f"{i:08d}" + "n" * 4000, "")
                                                                       for i in range(9000)])
    return out


def peak_mb(kb: int) -> float:
    return kb / 1024


def measure_archives(course: Path, cases: dict[str, bytes], work: Path) -> bool:
    ok = True
    print(f"{'archive':44s} {'zip size':>10s} {'peak RSS':>10s}  outcome")
    for i, (name, data) in enumerate(cases.items()):
        archive = work / f"case{i}.zip"
        archive.write_bytes(data)
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", MEASURE_COLLECT, str(course), str(archive), str(work / f"d{i}")],
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(f"{name:44s} FAILED: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}")
            ok = False
            continue
        got = json.loads(run.stdout)
        mb = peak_mb(got.pop("peak_kb"))
        ok &= mb <= TARGET_MB
        outcome = got.get("refused") or "; ".join(got["problems"])[:90] or "read"
        print(f"{name:44s} {len(data) / 1e6:8.2f} MB {mb:7.1f} MB  {outcome} ({time.perf_counter() - t0:.1f} s)")
        archive.unlink()
    return ok


def measure_replies(course_root: Path, work: Path) -> bool:
    from autograder.config import load_config
    from autograder.runner import pytest_command
    from autograder.submission import collect

    a = load_config(course_root / "grading.yml").assignment("hwz")
    sub = collect(a.solution_dir, a, work / "submission")
    ok = True
    print(f"\n{'value sent back by student code':44s} {'':>10s} {'peak RSS':>10s}  (the trusted pytest)")
    for test in ("test_return_small", "test_return_many_strings", "test_return_huge_array", "test_return_rogue_frame"):
        run_dir = work / test
        (run_dir / "tmp").mkdir(parents=True)
        (run_dir / "pytest.ini").write_text("[pytest]\n")
        cmd = pytest_command(a, run_dir / "outcomes.jsonl", sub.folder, run_dir / "pytest.ini",
                             tests=[f"{a.solution_dir}/test_z.py::{test}"])
        args = cmd[cmd.index("pytest") + 1:]
        env = {**os.environ, "TMPDIR": str(run_dir / "tmp")}
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", MEASURE_PYTEST, *args], cwd=run_dir, env=env,
                             capture_output=True, text=True)
        line = [ln for ln in run.stdout.splitlines() if ln.startswith("PEAK ")]
        if not line:
            print(f"{test:44s} FAILED: {run.stdout[-500:]} {run.stderr[-500:]}")
            ok = False
            continue
        mb = peak_mb(json.loads(line[0][5:])["peak_kb"])
        outcome = ""
        for rec in map(json.loads, (run_dir / "outcomes.jsonl").read_text().splitlines()):
            if rec.get("event") == "result" and rec.get("when") == "call":
                outcome = rec["status"] + (": " + rec["message"].splitlines()[-1][:100] if rec["message"] else "")
        ok &= mb <= TARGET_MB
        print(f"{test:44s} {'':>10s} {mb:7.1f} MB  {outcome} ({time.perf_counter() - t0:.1f} s)")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "deepgrade-bench-bombs")
    parser.add_argument("--quick", action="store_true", help="skip the 1 GB bzip2 and lzma bombs")
    parser.add_argument("--address-space-mb", type=int, default=None,
                        help="limit each child's address space (to measure an older grader safely)")
    args = parser.parse_args(argv)
    if args.address_space_mb:
        limit = args.address_space_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # inherited by the children
    work = Path(tempfile.mkdtemp(prefix="deepgrade-bench-"))
    try:
        root = work / "course"
        sol = root / "solutions" / "hwz"
        sol.mkdir(parents=True)
        (sol / "layers.py").write_text(LAYERS)
        (sol / "helpers.py").write_text(HELPERS)
        (sol / "test_z.py").write_text(TESTS)
        (root / "grading.yml").write_text(GRADING_YML)
        t0 = time.perf_counter()
        cases = archives(args.cache, args.quick)
        print(f"{len(cases)} hostile archives made in {time.perf_counter() - t0:.1f} s; "
              f"target: peak RSS <= {TARGET_MB} MB\n")
        ok = measure_archives(root / "grading.yml", cases, work)
        ok &= measure_replies(root, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nall targets met" if ok else "\nTARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())

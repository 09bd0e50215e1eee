"""How long `deepgrade publish` takes: the whole course into a new folder, then again.

    python benchmarks/bench_publish.py [--repeat 3] [--through hw5]

The course (grading.yml and solutions/) is copied and released in a scratch folder first, not
timed, so the benchmark runs while assignments/ is being edited. Each run is the command as an
instructor types it, in a new process: "cold" publishes into a new folder (the engine's wheel
is built), "warm" publishes again into the same folder (nothing changes; the wheel is reused).
Prints the median wall and CPU seconds of each. Target: cold <= 10 s.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.config import load_config
from autograder.release import write_release

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 10.0


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def publish_once(config: Path, folder: Path, through: str | None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit status) of one `deepgrade publish`."""
    cmd = [sys.executable, "-m", "autograder", "publish", str(folder), "--config", str(config)]
    cmd += ["--through", through] if through else []
    cpu, start = child_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"publish failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return wall, child_cpu() - cpu, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--through", default=None, help="publish up to this assignment (default: all)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="deepgrade-bench-publish-"))
    try:
        shutil.copyfile(ROOT / "grading.yml", scratch / "grading.yml")
        shutil.copytree(ROOT / "solutions", scratch / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
        course = load_config(scratch / "grading.yml")
        for a in course.assignments.values():
            write_release(a)
        runs: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
        status = 0
        for i in range(args.repeat):
            folder = scratch / f"published-{i}"
            for kind in ("cold", "warm"):
                wall, cpu, status = publish_once(scratch / "grading.yml", folder, args.through)
                runs[kind].append((wall, cpu))
                if status:  # the leak check failed: nothing was written, so no warm run either
                    break
        files = sum(1 for p in (scratch / "published-0").rglob("*") if p.is_file())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"deepgrade publish of {args.through or 'every assignment'} ({files} files), "
          f"median of {args.repeat}:")
    for kind, values in runs.items():
        if not values:
            continue
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        print(f"  {kind}: {wall:6.2f} s wall, {cpu:6.2f} s CPU")
    if status:
        print("  (the leak check failed, so nothing was written: run `deepgrade verify --published` "
              "on a folder to see why)")
    cold = statistics.median(w for w, _ in runs["cold"])
    print(f"target: cold <= {TARGET_S:g} s wall: {'met' if cold <= TARGET_S else 'NOT met'}")
    sys.exit(0 if cold <= TARGET_S else 1)


if __name__ == "__main__":
    main()

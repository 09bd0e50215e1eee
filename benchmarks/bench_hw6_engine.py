"""One epoch of the same MLP in hw6's engine (the reference) and in PyTorch, on the CPU.

    python benchmarks/bench_hw6_engine.py [--repeats 3] [--threads 1]

Both train a 784-128-10 MLP (ReLU, He initialization) with SGD, momentum 0.9, lr 0.05, batches
of 64, in the same order, on the 4,000 offline training digits (float64 in the engine, which is
float64 by design; float32 in PyTorch, as hw5 trains). Prints the seconds per epoch of each, the
median over the repeats, and their ratio (engine / PyTorch), and the held-out accuracy after one
epoch of each (a check that both trained). No target: the ratio is reported, not enforced.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.loader import load_modules  # noqa: E402

HIDDEN, LR, MOMENTUM, BATCH = 128, 0.05, 0.9, 64


def blas_threads(n):
    """numpy's BLAS limited to n threads (threadpoolctl comes with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def engine_epoch(engine, nn, X, y, order, seed):
    """Seconds of one epoch in the engine, and the trained model."""
    model = nn.MLP(X.shape[1], [HIDDEN], 10, seed=seed)
    opt = nn.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    start = time.perf_counter()
    for i in range(0, len(X), BATCH):
        idx = order[i:i + BATCH]
        opt.zero_grad()
        loss = engine.cross_entropy(model(engine.Tensor(X[idx])), y[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - start, model


def torch_epoch(torch, X, y, order, seed):
    """Seconds of one epoch of the same MLP in PyTorch, and the trained model."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 10))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    Xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    order = torch.as_tensor(order)
    start = time.perf_counter()
    for i in range(0, len(X), BATCH):
        idx = order[i:i + BATCH]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx]).backward()
        opt.step()
    return time.perf_counter() - start, model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch CPU threads")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    loaded = load_modules(ROOT / "solutions" / "hw6", ["engine", "nn", "datasets"])
    if loaded.errors:
        print("\n".join(loaded.errors.values()), file=sys.stderr)
        return 2
    engine, nn, datasets = (loaded.modules[k] for k in ("engine", "nn", "datasets"))
    data = datasets.load_digits()
    X, y = data["X_train"], data["y_train"]
    mine, theirs = [], []
    with blas_threads(args.threads):
        for run in range(args.repeats):
            order = np.random.default_rng(run).permutation(len(X))
            t_engine, model = engine_epoch(engine, nn, X, y, order, run)
            t_torch, tmodel = torch_epoch(torch, X, y, order, run)
            acc = np.mean(model.predict(data["X_test"]).argmax(axis=1) == data["y_test"])
            with torch.no_grad():
                tacc = float((tmodel(torch.as_tensor(data["X_test"], dtype=torch.float32)).argmax(1)
                              == torch.as_tensor(data["y_test"])).float().mean())
            mine.append(t_engine)
            theirs.append(t_torch)
            print(f"run {run}: engine {t_engine:.3f} s/epoch (accuracy {acc:.3f}), "
                  f"PyTorch {t_torch:.3f} s/epoch (accuracy {tacc:.3f})")
    a, b = statistics.median(mine), statistics.median(theirs)
    print(f"median seconds per epoch: engine {a:.3f}, PyTorch {b:.3f}; ratio engine / PyTorch {a / b:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

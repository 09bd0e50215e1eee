"""Benchmark: the hw2 reference im2col convolution against PyTorch's CPU conv2d.

Both sides do one forward and one backward pass (all of dx, dw, db) of a 3x3 convolution,
stride 1, pad 1, on x (64, 3, 32, 32) and w (32, 3, 3, 3), in float32 (PyTorch's default and
what a course GPU would run), in one process, with several repetitions each; the medians are
compared. Target: numpy/torch <= 5.

    python benchmarks/bench_hw2_conv.py [--repeats 20] [--dtype float32|float64] [--threads N]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

SOLUTION_DIR = Path(__file__).resolve().parents[1] / "solutions" / "hw2"


def _load_reference():
    sys.dont_write_bytecode = True  # leave no __pycache__ in solutions/
    sys.path.insert(0, str(SOLUTION_DIR))
    try:
        import conv_layers
    finally:
        sys.path.remove(str(SOLUTION_DIR))
    return conv_layers


def _median_time(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own choice)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    ref = _load_reference()
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3, 32, 32)).astype(dtype)
    w = rng.standard_normal((32, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(32).astype(dtype)
    dout = rng.standard_normal((64, 32, 32, 32)).astype(dtype)
    param = {"stride": 1, "pad": 1}

    def numpy_step():
        out, cache = ref.conv_forward_im2col(x, w, b, param)
        return ref.conv_backward_im2col(dout, cache)

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    doutt = torch.tensor(dout)

    def torch_step():
        for t in (xt, wt, bt):
            t.grad = None
        out = torch.nn.functional.conv2d(xt, wt, bt, stride=1, padding=1)
        out.backward(doutt)
        return xt.grad, wt.grad, bt.grad

    # The two must compute the same thing before their times mean anything.
    dx, dw, db = numpy_step()
    gx, gw, gb = torch_step()
    tol = 1e-3 if dtype == np.float32 else 1e-9
    for name, a, t in (("dx", dx, gx), ("dw", dw, gw), ("db", db, gb)):
        scale = max(1.0, float(np.abs(t.numpy()).max()))
        err = float(np.abs(a - t.numpy()).max()) / scale
        assert err < tol, f"{name} differs from torch by {err:.2e}"

    t_np = _median_time(numpy_step, args.repeats)
    t_torch = _median_time(torch_step, args.repeats)
    print(f"x (64, 3, 32, 32), w (32, 3, 3, 3), stride 1, pad 1, {args.dtype}, "
          f"forward + backward, median of {args.repeats}")
    print(f"  numpy im2col (reference): {t_np * 1e3:8.2f} ms")
    print(f"  torch conv2d (CPU, {torch.get_num_threads()} threads): {t_torch * 1e3:8.2f} ms")
    print(f"  ratio numpy / torch: {t_np / t_torch:.2f}x (target <= 5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The hw2 reference solution agrees with PyTorch (conv2d with dilation, max_pool2d, avg_pool2d),
forward and backward (autograd), on seeded random geometries.

The assignment's own tests compare student code with this reference, so the reference itself
is checked here against an independent implementation.
"""
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from autograder.loader import load_modules  # noqa: E402

SOLUTION_DIR = Path(__file__).resolve().parents[1] / "solutions" / "hw2"
TOL = 1e-10  # float64 on both sides: only rounding separates them


@pytest.fixture(scope="module")
def ref():
    loaded = load_modules(SOLUTION_DIR, ["conv_layers"])
    assert not loaded.errors, loaded.errors
    return loaded.modules["conv_layers"]


def _conv_cases(count, seed):
    """Random valid conv geometries: the output size is drawn first, and the input size
    follows, so that the windows always tile the padded input exactly."""
    g = np.random.default_rng(seed)
    cases = []
    for k in range(count):
        stride, dil = int(g.integers(1, 4)), int(g.integers(1, 3))
        HH, WW = int(g.integers(1, 5)), int(g.integers(1, 5))
        while True:  # redraw until the input is at least 1 x 1 (a small filter and big pad may not fit)
            pad = int(g.integers(0, 3))
            Ho, Wo = int(g.integers(1, 5)), int(g.integers(1, 5))
            H = (Ho - 1) * stride + dil * (HH - 1) + 1 - 2 * pad
            W = (Wo - 1) * stride + dil * (WW - 1) + 1 - 2 * pad
            if H >= 1 and W >= 1:
                break
        N, C, Fn = int(g.integers(1, 4)), int(g.integers(1, 4)), int(g.integers(1, 4))
        cases.append(pytest.param((N, C, H, W), (Fn, C, HH, WW), stride, pad, dil, id=f"conv{k}"))
    return cases


def _pool_cases(count, seed):
    g = np.random.default_rng(seed)
    cases = []
    for k in range(count):
        ph, pw, stride = int(g.integers(1, 4)), int(g.integers(1, 4)), int(g.integers(1, 4))
        Ho, Wo = int(g.integers(1, 5)), int(g.integers(1, 5))
        shape = (int(g.integers(1, 4)), int(g.integers(1, 4)), (Ho - 1) * stride + ph, (Wo - 1) * stride + pw)
        cases.append(pytest.param(shape, ph, pw, stride, id=f"pool{k}"))
    return cases


def _torch_grads(fn, arrays, dout):
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


def _close(name, got, expected):
    assert got.shape == expected.shape, f"{name}: shape {got.shape}, torch {expected.shape}"
    err = np.max(np.abs(got - expected), initial=0.0) / max(1.0, np.max(np.abs(expected), initial=0.0))
    assert err < TOL, f"{name}: max scaled difference from torch {err:.3e}"


@pytest.mark.parametrize("x_shape, w_shape, stride, pad, dil", _conv_cases(60, seed=231))
def test_conv_matches_torch(ref, x_shape, w_shape, stride, pad, dil):
    g = np.random.default_rng(abs(hash((x_shape, w_shape, stride, pad, dil))) % 2**32)
    x = g.standard_normal(x_shape)
    w = g.standard_normal(w_shape)
    b = g.standard_normal(w_shape[0])
    param = {"stride": stride, "pad": pad, "dilation": dil}
    H_out = ref.conv_output_size(x_shape[2], w_shape[2], pad, stride, dil)
    W_out = ref.conv_output_size(x_shape[3], w_shape[3], pad, stride, dil)
    dout = g.standard_normal((x_shape[0], w_shape[0], H_out, W_out))
    out_t, (dx_t, dw_t, db_t) = _torch_grads(
        lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=pad, dilation=dil), (x, w, b), dout
    )
    for forward, backward in ((ref.conv_forward_naive, ref.conv_backward_naive),
                              (ref.conv_forward_im2col, ref.conv_backward_im2col)):
        out, cache = forward(x, w, b, param)
        dx, dw, db = backward(dout, cache)
        label = forward.__name__
        _close(f"{label} out", out, out_t)
        _close(f"{label} dx", dx, dx_t)
        _close(f"{label} dw", dw, dw_t)
        _close(f"{label} db", db, db_t)


@pytest.mark.parametrize("shape, ph, pw, stride", _pool_cases(50, seed=232))
def test_pools_match_torch(ref, shape, ph, pw, stride):
    g = np.random.default_rng(abs(hash((shape, ph, pw, stride))) % 2**32)
    # A permutation: every value distinct, so max-pool has no ties for torch and us to break
    # differently.
    x = g.permutation(np.prod(shape)).reshape(shape) / 7.0
    param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    Ho, Wo = (shape[2] - ph) // stride + 1, (shape[3] - pw) // stride + 1
    dout = g.standard_normal((shape[0], shape[1], Ho, Wo))
    for name, torch_fn, forward, backward in (
        ("max", F.max_pool2d, ref.max_pool_forward_naive, ref.max_pool_backward_naive),
        ("avg", F.avg_pool2d, ref.avg_pool_forward_naive, ref.avg_pool_backward_naive),
    ):
        out_t, (dx_t,) = _torch_grads(lambda x: torch_fn(x, (ph, pw), stride=stride), (x,), dout)
        out, cache = forward(x, param)
        _close(f"{name} pool out", out, out_t)
        _close(f"{name} pool dx", backward(dout, cache), dx_t)

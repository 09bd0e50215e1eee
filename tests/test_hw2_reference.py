"""The hw2 reference solution agrees with PyTorch (conv2d with dilation, max_pool2d, avg_pool2d),
forward and backward (autograd), on seeded random geometries.

The assignment's own tests compare student code with this reference, so the reference itself
is checked here against an independent implementation. The hidden tests' check of max-pool
gradients at ties is checked here too: it accepts every split of a window's gradient among its
tied maxima (first, last, even, random), and nothing else. (The correct variants of the catalog
are graded by the audit: tests/test_audit.py.)
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


# --- the hidden tie check accepts every valid split, and nothing else -----------------------------

@pytest.fixture(scope="module")
def hidden():
    """The hidden test module, imported as a plain module for its tie checker."""
    import importlib.util

    path = SOLUTION_DIR / "hidden" / "test_conv_layers_hidden.py"
    spec = importlib.util.spec_from_file_location("_hw2_hidden_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _split_gradient(x, param, dout, choose):
    """dx = sum over windows of dout[w] * p_w, with p_w = choose(k) a probability vector over the
    k tied maxima of window w (in row-major order)."""
    ph, pw, s = param["pool_height"], param["pool_width"], param["stride"]
    dx = np.zeros_like(x)
    N, C, Ho, Wo = dout.shape
    for n, c, i, j in np.ndindex(N, C, Ho, Wo):
        window = x[n, c, i * s:i * s + ph, j * s:j * s + pw]
        rows, cols = np.nonzero(window == window.max())
        for r, q, share in zip(rows, cols, choose(len(rows))):
            dx[n, c, i * s + r, j * s + q] += share * dout[n, c, i, j]
    return dx


TIE_PARAMS = [
    {"pool_height": 2, "pool_width": 2, "stride": 2},
    {"pool_height": 2, "pool_width": 2, "stride": 1},
    {"pool_height": 3, "pool_width": 3, "stride": 2},
]


@pytest.mark.parametrize("param", TIE_PARAMS, ids=["2x2-s2", "2x2-s1", "3x3-s2"])
def test_tie_check_accepts_every_split(hidden, param):
    g = np.random.default_rng(7)
    ph, s = param["pool_height"], param["stride"]
    size = 7 if ph == 3 else 6  # windows that tile the input exactly
    x = g.integers(0, 3, size=(2, 2, size, size)).astype(float)  # few values: many ties
    Ho = (size - ph) // s + 1
    dout = g.uniform(0.5, 1.5, size=(2, 2, Ho, Ho))
    splits = {
        "first": lambda k: np.eye(k)[0],
        "last": lambda k: np.eye(k)[-1],
        "even": lambda k: np.full(k, 1.0 / k),
        "random": lambda k: g.dirichlet(np.ones(k)),
    }
    for name, choose in splits.items():
        dx = _split_gradient(x, param, dout, choose)
        assert hidden.tie_split_problem(x, param, dout, dx) is None, name
    # Sending the full gradient to every tied maximum counts it twice.
    dx = _split_gradient(x, param, dout, lambda k: np.ones(k))
    assert "add up to" in hidden.tie_split_problem(x, param, dout, dx)
    # A share on an entry that is no window's maximum (an even split reaches every maximum).
    dx = _split_gradient(x, param, dout, lambda k: np.eye(k)[0])
    r, q = np.argwhere(_split_gradient(x, param, dout, lambda k: np.full(k, 1.0 / k))[0, 0] == 0)[0]
    dx[0, 0, r, q] += 0.25
    assert "must get no gradient" in hidden.tie_split_problem(x, param, dout, dx)


def test_tie_check_sees_a_split_no_window_can_make(hidden):
    # Two overlapping windows share the tied maximum (0, 1). Pixel (0, 0) belongs to window 0
    # only, so it can receive at most window 0's dout (1.0): 1.5 there is no valid split, even
    # though the total (3.0), the signs and the support are all right.
    x = np.array([[[[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]]])
    param = {"pool_height": 2, "pool_width": 2, "stride": 1}
    dout = np.array([[[[1.0, 2.0]]]])
    assert hidden.tie_split_problem(x, param, dout, np.array([[[[1.0, 1.0, 1.0], [0, 0, 0]]]])) is None
    assert hidden.tie_split_problem(x, param, dout, np.array([[[[0.0, 3.0, 0.0], [0, 0, 0]]]])) is None
    problem = hidden.tie_split_problem(x, param, dout, np.array([[[[1.5, 0.0, 1.5], [0, 0, 0]]]]))
    assert problem is not None and "dx[0, 0, 0, 0] = 1.5" in problem, problem

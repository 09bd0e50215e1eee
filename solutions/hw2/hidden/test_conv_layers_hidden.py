"""Hidden tests for hw2: every function on many seeded geometries, against the reference
solution (float64; the reference itself is checked against PyTorch in tests/test_hw2_reference.py).

Geometries cover stride 1-3, padding 0-2, dilation 1-2, non-square inputs and filters, a batch
of one, one channel and one filter.

Fair verdicts (DESIGN.md): each function is judged on its own. A backward gets the cache of the
student's own forward and must return the true gradient at those inputs (judge_backward); when
that forward crashes, the naive backwards are judged on the cache their forward documents
((x, w, b, conv_param) or (x, pool_param)), so a forward bug costs the forward's tests only.
conv_forward_im2col / conv_backward_im2col are composites of im2col / col2im (the handout builds
them that way): they are compared with the reference, and a failure notes what is wrong with the
student's im2col, col2im or conv_output_size on that geometry. Max-pooling inputs have no ties,
except in the tie tests, which accept any split of a window's gradient among its tied maxima.
"""
import contextlib
import copy
from collections import deque

import numpy as np
import pytest

from autograder.gradcheck import GradientError, assert_close
from autograder.verdicts import (BackwardNotJudged, explain_with, forward_problem, judge_backward,
                                 reference_gradients)

GRAD_THRESHOLD = 1e-7
MATCH_THRESHOLD = 1e-9  # student vs. reference: the same sums, perhaps in another order


def _conv_geometry(g, max_out, max_batch, max_chan, max_kernel):
    """One valid geometry drawn at random: the output size first, the input size from it, so
    the windows always tile the padded input exactly."""
    while True:
        stride, pad, dil = int(g.integers(1, 4)), int(g.integers(0, 3)), int(g.integers(1, 3))
        HH, WW = int(g.integers(1, max_kernel + 1)), int(g.integers(1, max_kernel + 1))
        Ho, Wo = int(g.integers(1, max_out + 1)), int(g.integers(1, max_out + 1))
        H = (Ho - 1) * stride + dil * (HH - 1) + 1 - 2 * pad
        W = (Wo - 1) * stride + dil * (WW - 1) + 1 - 2 * pad
        if H >= 1 and W >= 1:
            N, C, F = (int(g.integers(1, max_batch + 1)), int(g.integers(1, max_chan + 1)),
                       int(g.integers(1, max_chan + 1)))
            return (N, C, H, W), (F, C, HH, WW), {"stride": stride, "pad": pad, "dilation": dil}


def _case_id(x_shape, w_shape, p):
    return (f"x{'x'.join(map(str, x_shape))}-w{'x'.join(map(str, w_shape))}"
            f"-s{p['stride']}p{p['pad']}d{p.get('dilation', 1)}")


# Edges named by hand: batch of 1, one channel, one filter, non-square, the filter as big as
# the padded input, the largest stride/pad/dilation, and conv_param without 'dilation'.
EDGE_CASES = [
    ((1, 3, 6, 4), (2, 3, 3, 2), {"stride": 1, "pad": 1}),
    ((2, 1, 6, 7), (1, 1, 2, 3), {"stride": 2, "pad": 0, "dilation": 1}),
    ((1, 1, 4, 4), (1, 1, 4, 4), {"stride": 1, "pad": 0, "dilation": 1}),
    ((2, 2, 4, 7), (3, 2, 3, 3), {"stride": 3, "pad": 2, "dilation": 2}),
    ((1, 2, 5, 6), (2, 2, 1, 1), {"stride": 1, "pad": 0, "dilation": 1}),
    ((1, 2, 7, 5), (2, 2, 1, 1), {"stride": 2, "pad": 1, "dilation": 1}),
]


def _conv_cases(count, seed, **sizes):
    g = np.random.default_rng(seed)
    cases = list(EDGE_CASES) + [_conv_geometry(g, **sizes) for _ in range(count)]
    return [pytest.param(*c, id=_case_id(*c)) for c in cases]


# Forward comparisons: moderate sizes. Gradient checks: tiny (two forward calls per entry).
FORWARD_CASES = _conv_cases(14, seed=2021, max_out=5, max_batch=3, max_chan=3, max_kernel=4)
GRAD_CASES = _conv_cases(6, seed=2022, max_out=3, max_batch=2, max_chan=2, max_kernel=3)


def _pool_cases(count, seed):
    g = np.random.default_rng(seed)
    cases = [
        ((1, 1, 4, 6), {"pool_height": 2, "pool_width": 3, "stride": 1}),
        ((2, 3, 6, 6), {"pool_height": 2, "pool_width": 2, "stride": 2}),
        ((1, 2, 7, 5), {"pool_height": 3, "pool_width": 1, "stride": 2}),
        ((2, 1, 3, 3), {"pool_height": 3, "pool_width": 3, "stride": 3}),
    ]
    for _ in range(count):
        ph, pw, s = int(g.integers(1, 4)), int(g.integers(1, 4)), int(g.integers(1, 4))
        Ho, Wo = int(g.integers(1, 4)), int(g.integers(1, 4))
        shape = (int(g.integers(1, 3)), int(g.integers(1, 3)), (Ho - 1) * s + ph, (Wo - 1) * s + pw)
        cases.append((shape, {"pool_height": ph, "pool_width": pw, "stride": s}))
    return [pytest.param(shape, p, id=f"x{'x'.join(map(str, shape))}-{p['pool_height']}x{p['pool_width']}-s{p['stride']}")
            for shape, p in cases]


POOL_CASES = _pool_cases(6, seed=2023)


def _conv_inputs(rng, x_shape, w_shape):
    return {"x": rng.standard_normal(x_shape), "w": rng.standard_normal(w_shape),
            "b": rng.standard_normal(w_shape[0])}


def _distinct(rng, shape):
    """Values at least 0.1 apart: max-pooling without ties."""
    n = int(np.prod(shape))
    return 0.1 * rng.permutation(n).reshape(shape) - 0.05 * n


# Student calls get their own copy of conv_param / pool_param: dicts are state that the
# grader mirrors back, and the case lists below are shared by many tests.


def _geometry(w_shape, conv_param):
    """(HH, WW, stride, pad, dilation): im2col's and col2im's geometry arguments."""
    return (w_shape[2], w_shape[3], conv_param["stride"], conv_param["pad"], conv_param.get("dilation", 1))


# --- notes: what is wrong with a function that feeds the one under test ----------------------

def _safely(make_note):
    """make_note(), or a note that it could not be made: a note never hides the failure."""
    try:
        return make_note()
    except Exception as exc:  # noqa: BLE001 - student code, any exception
        return f"note: (could not check the functions this one uses: {type(exc).__name__}: {exc})"


@contextlib.contextmanager
def _noted(*make_notes):
    """Append to a failure inside the notes that make_notes find (each called only then, and
    returning a line or None): what is wrong with a student function this result depends on."""
    __tracebackhide__ = True
    try:
        yield
    except AssertionError as exc:
        notes = [n for n in (_safely(m) for m in make_notes) if n]
        if not notes:
            raise
        raise GradientError(f"{exc}\n" + "\n".join(notes)) from None


def _size_note(student, reference, x_shape, w_shape, conv_param):
    """A note when the student's conv_output_size is wrong on this geometry, else None."""
    HH, WW, stride, pad, dil = _geometry(w_shape, conv_param)
    for n, f in ((x_shape[2], HH), (x_shape[3], WW)):
        args = f"conv_output_size(n={n}, f={f}, pad={pad}, stride={stride}, dilation={dil})"
        want = reference.conv_output_size(n, f, pad, stride, dil)
        try:
            got = student.conv_output_size(n, f, pad, stride, dil)
        except Exception as exc:  # noqa: BLE001
            return f"note: your {args} raised {type(exc).__name__}: {exc} (it should be {want})"
        if got != want:
            return f"note: your {args} returned {got!r}, expected {want}"
    return None


def _im2col_note(student, reference, x, w_shape, conv_param):
    geometry = _geometry(w_shape, conv_param)
    try:
        cols = student.im2col(x, *geometry)
    except Exception as exc:  # noqa: BLE001
        return f"note: your im2col raised {type(exc).__name__}: {exc}"
    problem = forward_problem(cols, reference.im2col(x, *geometry), "im2col(x)", MATCH_THRESHOLD)
    return f"note: your im2col is wrong on this geometry too: {problem}" if problem else None


def _col2im_note(student, reference, rng, x_shape, w_shape, conv_param):
    geometry = _geometry(w_shape, conv_param)
    cols = rng.standard_normal(np.shape(reference.im2col(np.zeros(x_shape), *geometry)))
    try:
        got = student.col2im(cols, x_shape, *geometry)
    except Exception as exc:  # noqa: BLE001
        return f"note: your col2im raised {type(exc).__name__}: {exc}"
    problem = forward_problem(got, reference.col2im(cols, x_shape, *geometry), "col2im(cols)", MATCH_THRESHOLD)
    return f"note: your col2im is wrong on this geometry too: {problem}" if problem else None


# --- judging a backward -----------------------------------------------------------------------

def _judge(forward, backward, ref, args, dout, grads, *, documented=None, what="", threshold=GRAD_THRESHOLD):
    """judge_backward against the reference pair ref; when the student's forward crashes (or
    returns no cache) and the forward documents its cache, judge the backward on that cache:
    documented(*args) builds it."""
    __tracebackhide__ = True
    try:
        return judge_backward(forward, backward, args, dout, grads, reference=ref, threshold=threshold,
                              what=what)
    except BackwardNotJudged as exc:
        if documented is None:
            raise
        reason = str(exc).splitlines()[0]
    fname, bname = forward.__name__, backward.__name__
    _, expected = reference_gradients(*ref, args, [dout], grads)
    note = (f"note: {reason}; so {bname} was judged on the cache that {fname}'s docstring "
            f"documents, built by the test ({fname}'s own tests grade the forward)")
    try:
        got = backward(dout, documented(*copy.deepcopy(list(args.values()))))
    except Exception as exc:  # noqa: BLE001
        raise GradientError(f"{bname} {what} raised {type(exc).__name__}: {exc}\n{note}") from exc
    got = (got,) if len(grads) == 1 else tuple(got)
    with explain_with(note):
        if len(got) != len(grads):
            raise GradientError(f"{bname} must return {len(grads)} gradients; it returned {len(got)}")
        for name, g in zip(grads, got):
            assert_close(g, expected[name], name=f"{bname} d{name} {what}", threshold=threshold)
    return dict(zip(grads, got))


def _conv_cache(x, w, b, conv_param):
    return (x, w, b, conv_param)


def _pool_cache(x, pool_param):
    return (x, pool_param)


# --- output size ------------------------------------------------------------------------------

def _size_cases(seed):
    g = np.random.default_rng(seed)
    cases = []
    for _ in range(30):
        cases.append((int(g.integers(1, 40)), int(g.integers(1, 8)), int(g.integers(0, 4)),
                      int(g.integers(1, 5)), int(g.integers(1, 4))))
    return cases


SIZE_CASES = _size_cases(2024)


def test_output_size_hidden_random(student, reference):
    for n, f, pad, stride, dil in SIZE_CASES:
        try:
            expected = reference.conv_output_size(n, f, pad, stride, dil)
        except ValueError:
            with pytest.raises(ValueError):
                student.conv_output_size(n, f, pad, stride, dil)
                pytest.fail(f"conv_output_size(n={n}, f={f}, pad={pad}, stride={stride}, "
                            f"dilation={dil}) should raise ValueError (the windows do not tile)")
            continue
        got = student.conv_output_size(n, f, pad, stride, dil)
        assert got == expected, (f"conv_output_size(n={n}, f={f}, pad={pad}, stride={stride}, "
                                 f"dilation={dil}) returned {got!r}, expected {expected}")


def test_output_size_hidden_message_names_numbers(student, reference):
    # A conv_output_size that raises for every geometry must not pass: a valid one first.
    got = student.conv_output_size(13, 4, 1, 2, 2)
    assert got == reference.conv_output_size(13, 4, 1, 2, 2), (
        f"conv_output_size(n=13, f=4, pad=1, stride=2, dilation=2) returned {got!r}, expected 5"
    )
    with pytest.raises(ValueError) as info:
        student.conv_output_size(12, 4, 1, 3, 2)
    message = str(info.value)
    for label, value in (("n", 12), ("f", 4), ("stride", 3)):
        assert str(value) in message, f"the message should name {label}={value}: {message!r}"


# --- naive convolution ------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape, w_shape, conv_param", FORWARD_CASES)
def test_conv_naive_forward_hidden_vs_reference(student, reference, rng, x_shape, w_shape, conv_param):
    a = _conv_inputs(rng, x_shape, w_shape)
    expected, _ = reference.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)
    with _noted(lambda: _size_note(student, reference, x_shape, w_shape, conv_param)):
        out, _ = student.conv_forward_naive(a["x"], a["w"], a["b"], dict(conv_param))
        assert_close(out, expected, name=f"out ({_case_id(x_shape, w_shape, conv_param)})",
                     threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("x_shape, w_shape, conv_param", GRAD_CASES)
def test_conv_naive_backward_hidden(student, reference, rng, x_shape, w_shape, conv_param):
    a = _conv_inputs(rng, x_shape, w_shape)
    dout = rng.standard_normal(np.shape(reference.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)[0]))
    _judge(student.conv_forward_naive, student.conv_backward_naive,
           (reference.conv_forward_naive, reference.conv_backward_naive), {**a, "conv_param": conv_param},
           dout, ["x", "w", "b"], documented=_conv_cache, threshold=MATCH_THRESHOLD,
           what=f"({_case_id(x_shape, w_shape, conv_param)})")


# --- pooling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, pool_param", POOL_CASES)
def test_max_pool_hidden_forward_vs_reference(student, reference, rng, shape, pool_param):
    x = _distinct(rng, shape)
    out, _ = student.max_pool_forward_naive(x, dict(pool_param))
    assert_close(out, reference.max_pool_forward_naive(x, pool_param)[0], name=f"out (x {shape}, {pool_param})")


@pytest.mark.parametrize("shape, pool_param", POOL_CASES)
def test_max_pool_hidden_backward(student, reference, rng, shape, pool_param):
    x = _distinct(rng, shape)  # no ties: the gradient is unique
    dout = rng.standard_normal(np.shape(reference.max_pool_forward_naive(x, pool_param)[0]))
    _judge(student.max_pool_forward_naive, student.max_pool_backward_naive,
           (reference.max_pool_forward_naive, reference.max_pool_backward_naive),
           {"x": x, "pool_param": pool_param}, dout, ["x"], documented=_pool_cache,
           what=f"(x {shape}, {pool_param})")


@pytest.mark.parametrize("shape, pool_param", POOL_CASES)
def test_avg_pool_hidden_forward_vs_reference(student, reference, rng, shape, pool_param):
    x = rng.standard_normal(shape)
    out, _ = student.avg_pool_forward_naive(x, dict(pool_param))
    assert_close(out, reference.avg_pool_forward_naive(x, pool_param)[0], name=f"out (x {shape}, {pool_param})",
                 threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("shape, pool_param", POOL_CASES)
def test_avg_pool_hidden_backward(student, reference, rng, shape, pool_param):
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(np.shape(reference.avg_pool_forward_naive(x, pool_param)[0]))
    _judge(student.avg_pool_forward_naive, student.avg_pool_backward_naive,
           (reference.avg_pool_forward_naive, reference.avg_pool_backward_naive),
           {"x": x, "pool_param": pool_param}, dout, ["x"], documented=_pool_cache,
           threshold=MATCH_THRESHOLD, what=f"(x {shape}, {pool_param})")


# --- im2col and col2im ------------------------------------------------------------------------

def _im2col_cases(reference, x_shape, w_shape, conv_param):
    """The case, and the first edge case too when every tap of this one reads padding: both
    answers are then all zeros, which an im2col or col2im returning zeros would match."""
    cases = [(x_shape, w_shape, conv_param)]
    if not np.any(reference.im2col(np.ones(x_shape), *_geometry(w_shape, conv_param))):
        cases.append(EDGE_CASES[0])
    return cases


@pytest.mark.parametrize("x_shape, w_shape, conv_param", FORWARD_CASES)
def test_im2col_hidden_vs_reference(student, reference, rng, x_shape, w_shape, conv_param):
    for xs, ws, p in _im2col_cases(reference, x_shape, w_shape, conv_param):
        geometry = _geometry(ws, p)
        x = rng.standard_normal(xs)
        with _noted(lambda: _size_note(student, reference, xs, ws, p)):
            assert_close(student.im2col(x, *geometry), reference.im2col(x, *geometry),
                         name=f"im2col(x) ({_case_id(xs, ws, p)})")


@pytest.mark.parametrize("x_shape, w_shape, conv_param", FORWARD_CASES)
def test_col2im_hidden_vs_reference(student, reference, rng, x_shape, w_shape, conv_param):
    for xs, ws, p in _im2col_cases(reference, x_shape, w_shape, conv_param):
        geometry = _geometry(ws, p)
        cols = rng.standard_normal(np.shape(reference.im2col(np.zeros(xs), *geometry)))
        with _noted(lambda: _size_note(student, reference, xs, ws, p)):
            assert_close(student.col2im(cols, xs, *geometry), reference.col2im(cols, xs, *geometry),
                         name=f"col2im(cols) ({_case_id(xs, ws, p)})", threshold=MATCH_THRESHOLD)


# --- vectorized convolution -------------------------------------------------------------------

@pytest.mark.parametrize("x_shape, w_shape, conv_param", FORWARD_CASES)
def test_conv_im2col_hidden_forward(student, reference, rng, x_shape, w_shape, conv_param):
    a = _conv_inputs(rng, x_shape, w_shape)
    expected, _ = reference.conv_forward_im2col(a["x"], a["w"], a["b"], conv_param)
    # A composite of im2col (the handout builds it so): a failure says when im2col is wrong too.
    with _noted(lambda: _im2col_note(student, reference, a["x"], w_shape, conv_param),
                lambda: _size_note(student, reference, x_shape, w_shape, conv_param)):
        out, _ = student.conv_forward_im2col(a["x"], a["w"], a["b"], dict(conv_param))
        assert_close(out, expected, name=f"conv_forward_im2col out ({_case_id(x_shape, w_shape, conv_param)})",
                     threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("x_shape, w_shape, conv_param", GRAD_CASES)
def _judge_conv_im2col_backward(student, reference, rng, x_shape, w_shape, conv_param):
    a = _conv_inputs(rng, x_shape, w_shape)
    dout = rng.standard_normal(np.shape(reference.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)[0]))
    # The cache is whatever the student's conv_forward_im2col keeps; dw reads its im2col matrix
    # and dx goes through col2im, so a failure also says when those are wrong.
    with _noted(lambda: _im2col_note(student, reference, a["x"], w_shape, conv_param),
                lambda: _col2im_note(student, reference, rng, x_shape, w_shape, conv_param)):
        _judge(student.conv_forward_im2col, student.conv_backward_im2col,
               (reference.conv_forward_naive, reference.conv_backward_naive), {**a, "conv_param": conv_param},
               dout, ["x", "w", "b"], threshold=MATCH_THRESHOLD, what=f"({_case_id(x_shape, w_shape, conv_param)})")


@pytest.mark.parametrize("x_shape, w_shape, conv_param", GRAD_CASES)
def test_conv_im2col_hidden_backward(student, reference, rng, x_shape, w_shape, conv_param):
    _judge_conv_im2col_backward(student, reference, rng, x_shape, w_shape, conv_param)


@pytest.mark.parametrize("x_shape, w_shape, conv_param", FORWARD_CASES[-8:])
def test_conv_im2col_hidden_backward_larger(student, reference, rng, x_shape, w_shape, conv_param):
    _judge_conv_im2col_backward(student, reference, rng, x_shape, w_shape, conv_param)


def test_conv_im2col_hidden_1x1_batch(student, reference, rng):
    # A 1x1 convolution with stride 2 and padding: channel mixing on a subsampled, padded grid.
    x = rng.standard_normal((4, 5, 7, 9))
    w = rng.standard_normal((3, 5, 1, 1))
    b = rng.standard_normal(3)
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))[:, :, ::2, ::2]
    expected = np.einsum("nchw,fc->nfhw", xpad, w[:, :, 0, 0]) + b[None, :, None, None]
    param = {"stride": 2, "pad": 1}
    with _noted(lambda: _im2col_note(student, reference, x, w.shape, param),
                lambda: _size_note(student, reference, x.shape, w.shape, param)):
        out, _ = student.conv_forward_im2col(x, w, b, param)
        assert_close(out, expected, name="out of a 1x1 convolution, stride 2, pad 1")


# --- max-pool backward at ties ---------------------------------------------------------------
# Where a window's maximum is tied, max pooling has no derivative; any split of the window's
# gradient among its tied maxima (nonnegative weights summing to 1, nothing elsewhere) is a
# valid subgradient, and the handout accepts every one: first maximum, last, even split, ...
# Windows that overlap can share a tied maximum, so the check is whether dx can be written as
# sum over windows of dout[w] * p_w, p_w a probability vector on window w's tied maxima: with
# dout > 0 that is a flow problem (windows send dout[w] to their tied maxima; pixel k must
# receive exactly dx[k]), which _max_flow answers exactly.

def _max_flow(sends, receives, edges):
    """Edmonds-Karp on a bipartite network: source -> window w (capacity sends[w]) -> pixel k
    (for (w, k) in edges, unbounded) -> sink (capacity receives[k]). Returns how much each
    pixel receives in a maximum flow (an array like receives)."""
    W, K = len(sends), len(receives)
    S, T = W + K, W + K + 1
    cap = {}
    adj = [[] for _ in range(W + K + 2)]

    def add(u, v, c):
        if (u, v) not in cap:
            adj[u].append(v)
            adj[v].append(u)
            cap.setdefault((v, u), 0.0)
        cap[(u, v)] = cap.get((u, v), 0.0) + c

    for w, c in enumerate(sends):
        add(S, w, float(c))
    for k, c in enumerate(receives):
        add(W + k, T, float(c))
    for w, k in edges:
        add(w, W + k, np.inf)
    eps = 1e-12 * (1.0 + float(np.sum(sends)))
    while True:
        parent = {S: None}
        queue = deque([S])
        while queue and T not in parent:
            u = queue.popleft()
            for v in adj[u]:
                if v not in parent and cap[(u, v)] > eps:
                    parent[v] = u
                    queue.append(v)
        if T not in parent:
            break
        path, v = [], T
        while parent[v] is not None:
            path.append((parent[v], v))
            v = parent[v]
        push = min(cap[e] for e in path)
        for u, v in path:
            cap[(u, v)] -= push
            cap[(v, u)] += push
    return np.array([float(c) - cap[(W + k, T)] for k, c in enumerate(receives)])


def tie_split_problem(x, pool_param, dout, dx):
    """None when dx is a valid max-pool gradient for x, pool_param and an upstream gradient
    dout > 0: each window's dout split among the entries tied for its maximum, with
    nonnegative weights summing to 1, and nothing elsewhere (contributions of overlapping
    windows add up). Otherwise a sentence saying what is wrong."""
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    x, dout = np.asarray(x, dtype=np.float64), np.asarray(dout, dtype=np.float64)
    try:
        dx = np.asarray(dx, dtype=np.float64)
    except (TypeError, ValueError):
        return f"dx is not an array of numbers: {type(dx).__name__}"
    if dx.shape != x.shape:
        return f"dx has shape {dx.shape}, expected {x.shape}"
    if not np.all(np.isfinite(dx)):
        return "dx contains NaN or inf"
    tol = 1e-9 * (1.0 + float(np.max(np.abs(dout), initial=0.0)))
    N, C, Ho, Wo = dout.shape
    for n, c in np.ndindex(N, C):
        ties = {}
        for i, j in np.ndindex(Ho, Wo):
            window = x[n, c, i * s:i * s + ph, j * s:j * s + pw]
            ties[(i, j)] = [(i * s + int(r), j * s + int(q)) for r, q in zip(*np.nonzero(window == window.max()))]
        pixels = sorted({p for t in ties.values() for p in t})
        for r, q in zip(*np.nonzero(np.abs(dx[n, c]) > tol)):
            if (r, q) not in pixels:
                return (f"dx[{n}, {c}, {r}, {q}] = {dx[n, c, r, q]:.6g}, but x[{n}, {c}, {r}, {q}] is not "
                        f"the maximum of any window that covers it, so it must get no gradient")
        for r, q in pixels:
            if dx[n, c, r, q] < -tol:
                return (f"dx[{n}, {c}, {r}, {q}] = {dx[n, c, r, q]:.6g} < 0 though every dout here is > 0: "
                        f"a window's gradient is split with nonnegative weights")
        windows = list(ties)
        index = {p: k for k, p in enumerate(pixels)}
        sends = np.array([dout[n, c, i, j] for i, j in windows])
        receives = np.array([max(dx[n, c, r, q], 0.0) for r, q in pixels])
        total, got = float(sends.sum()), float(receives.sum())
        if abs(total - got) > tol * len(windows):
            return (f"in dx[{n}, {c}] the tied maxima receive {got:.10g} in all, but the windows' gradients "
                    f"dout[{n}, {c}] add up to {total:.10g}: each window's gradient must be split, "
                    f"not copied to every tied maximum or lost")
        paid = _max_flow(sends, receives, [(w, index[p]) for w, win in enumerate(windows) for p in ties[win]])
        over = np.nonzero(receives - paid > tol * len(windows))[0]
        if over.size:
            r, q = pixels[over[0]]
            mine = [(i, j) for (i, j), t in ties.items() if (r, q) in t]
            return (f"dx[{n}, {c}] is not a split of each window's gradient among its own tied maxima: "
                    f"at most {float(paid.sum()):.10g} of the {total:.10g} it holds can come from the windows "
                    f"whose maxima hold it; for example dx[{n}, {c}, {r}, {q}] = {dx[n, c, r, q]:.6g}, more "
                    f"than its windows {mine} (dout {[round(float(dout[n, c, i, j]), 6) for i, j in mine]}) "
                    f"can give it alongside their other maxima")
    return None


TIE_CASES = [
    pytest.param((2, 2, 6, 6), {"pool_height": 2, "pool_width": 2, "stride": 2}, id="2x2-stride2"),
    pytest.param((2, 2, 5, 5), {"pool_height": 2, "pool_width": 2, "stride": 1}, id="2x2-stride1-overlapping"),
    pytest.param((1, 2, 7, 7), {"pool_height": 3, "pool_width": 3, "stride": 2}, id="3x3-stride2-overlapping"),
]


@pytest.mark.parametrize("shape, pool_param", TIE_CASES)
def test_max_pool_hidden_backward_ties(student, reference, rng, shape, pool_param):
    # Few distinct values, so most windows hold their maximum twice or more.
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    expected_out, _ = reference.max_pool_forward_naive(x, pool_param)
    dout = rng.uniform(0.5, 1.5, size=np.shape(expected_out))
    out, cache = student.max_pool_forward_naive(x, dict(pool_param))
    note = forward_problem(out, expected_out, "max_pool_forward_naive out")
    problem = tie_split_problem(x, pool_param, dout, student.max_pool_backward_naive(dout, cache))
    if problem:
        raise AssertionError(
            f"max_pool_backward_naive with tied maxima (x {shape}, {pool_param}): {problem}"
            + (f"\nnote: {note}. This test judges max_pool_backward_naive alone, given the cache your "
               "max_pool_forward_naive returned" if note else ""))

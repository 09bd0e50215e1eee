"""Hidden tests for hw2: every function on many seeded geometries, against the reference
solution and by numerical gradient checks (float64, relative error <= 1e-7).

Geometries cover stride 1-3, padding 0-2, dilation 1-2, non-square inputs and filters, a batch
of one, one channel and one filter. Max-pooling inputs have no ties.
"""
import numpy as np
import pytest

from autograder.gradcheck import assert_close, check_gradients

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
    out, _ = student.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)
    expected, _ = reference.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)
    assert_close(out, expected, name=f"out ({_case_id(x_shape, w_shape, conv_param)})",
                 threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("x_shape, w_shape, conv_param", GRAD_CASES)
def test_conv_naive_backward_hidden(student, reference, rng, x_shape, w_shape, conv_param):
    a = _conv_inputs(rng, x_shape, w_shape)
    out, cache = student.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)
    dout = rng.standard_normal(np.shape(out))
    dx, dw, db = student.conv_backward_naive(dout, cache)
    check_gradients(student.conv_forward_naive, {**a, "conv_param": conv_param},
                    {"x": dx, "w": dw, "b": db}, dout=dout, output=0, threshold=GRAD_THRESHOLD)
    _, ref_cache = reference.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)
    for name, got, want in zip(("dx", "dw", "db"), (dx, dw, db), reference.conv_backward_naive(dout, ref_cache)):
        assert_close(got, want, name=name, threshold=MATCH_THRESHOLD)


# --- pooling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, pool_param", POOL_CASES)
def test_max_pool_hidden_forward_vs_reference(student, reference, rng, shape, pool_param):
    x = _distinct(rng, shape)
    out, _ = student.max_pool_forward_naive(x, pool_param)
    assert_close(out, reference.max_pool_forward_naive(x, pool_param)[0], name="out")


@pytest.mark.parametrize("shape, pool_param", POOL_CASES)
def test_max_pool_hidden_backward(student, reference, rng, shape, pool_param):
    x = _distinct(rng, shape)
    out, cache = student.max_pool_forward_naive(x, pool_param)
    dout = rng.standard_normal(np.shape(out))
    dx = student.max_pool_backward_naive(dout, cache)
    check_gradients(student.max_pool_forward_naive, {"x": x, "pool_param": pool_param}, {"x": dx},
                    dout=dout, output=0, threshold=GRAD_THRESHOLD)
    _, ref_cache = reference.max_pool_forward_naive(x, pool_param)
    assert_close(dx, reference.max_pool_backward_naive(dout, ref_cache), name="dx")


@pytest.mark.parametrize("shape, pool_param", POOL_CASES)
def test_avg_pool_hidden_forward_vs_reference(student, reference, rng, shape, pool_param):
    x = rng.standard_normal(shape)
    out, _ = student.avg_pool_forward_naive(x, pool_param)
    assert_close(out, reference.avg_pool_forward_naive(x, pool_param)[0], name="out",
                 threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("shape, pool_param", POOL_CASES)
def test_avg_pool_hidden_backward(student, reference, rng, shape, pool_param):
    x = rng.standard_normal(shape)
    out, cache = student.avg_pool_forward_naive(x, pool_param)
    dout = rng.standard_normal(np.shape(out))
    dx = student.avg_pool_backward_naive(dout, cache)
    check_gradients(student.avg_pool_forward_naive, {"x": x, "pool_param": pool_param}, {"x": dx},
                    dout=dout, output=0, threshold=GRAD_THRESHOLD)
    _, ref_cache = reference.avg_pool_forward_naive(x, pool_param)
    assert_close(dx, reference.avg_pool_backward_naive(dout, ref_cache), name="dx",
                 threshold=MATCH_THRESHOLD)


# --- im2col and col2im ------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape, w_shape, conv_param", FORWARD_CASES)
def test_im2col_hidden_vs_reference(student, reference, rng, x_shape, w_shape, conv_param):
    _, _, HH, WW = w_shape
    geometry = (HH, WW, conv_param["stride"], conv_param["pad"], conv_param.get("dilation", 1))
    x = rng.standard_normal(x_shape)
    expected = reference.im2col(x, *geometry)
    assert_close(student.im2col(x, *geometry), expected, name="im2col(x)")
    cols = rng.standard_normal(np.shape(expected))
    assert_close(student.col2im(cols, x_shape, *geometry), reference.col2im(cols, x_shape, *geometry),
                 name="col2im(cols)", threshold=MATCH_THRESHOLD)
    if not np.any(expected):
        # Every tap of this geometry reads padding, so both answers are all zeros, which an
        # im2col and col2im that return zeros for everything would match: check the first
        # edge case too, whose windows read the input.
        (x_shape, (_, _, HH, WW), p) = EDGE_CASES[0]
        geometry = (HH, WW, p["stride"], p["pad"], p.get("dilation", 1))
        x = rng.standard_normal(x_shape)
        assert_close(student.im2col(x, *geometry), reference.im2col(x, *geometry),
                     name=f"im2col(x) ({_case_id(*EDGE_CASES[0])})")
        cols = rng.standard_normal(np.shape(reference.im2col(x, *geometry)))
        assert_close(student.col2im(cols, x_shape, *geometry), reference.col2im(cols, x_shape, *geometry),
                     name=f"col2im(cols) ({_case_id(*EDGE_CASES[0])})", threshold=MATCH_THRESHOLD)


# --- vectorized convolution -------------------------------------------------------------------

@pytest.mark.parametrize("x_shape, w_shape, conv_param", FORWARD_CASES)
def test_conv_im2col_hidden_forward(student, reference, rng, x_shape, w_shape, conv_param):
    a = _conv_inputs(rng, x_shape, w_shape)
    out, _ = student.conv_forward_im2col(a["x"], a["w"], a["b"], conv_param)
    label = _case_id(x_shape, w_shape, conv_param)
    assert_close(out, reference.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)[0],
                 name=f"out ({label}) vs. the reference", threshold=MATCH_THRESHOLD)
    # The two versions the student wrote must agree with each other too.
    naive, _ = student.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)
    assert_close(out, naive, name=f"conv_forward_im2col out ({label})",
                 what="conv_forward_naive gave", threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("x_shape, w_shape, conv_param", GRAD_CASES)
def test_conv_im2col_hidden_backward(student, reference, rng, x_shape, w_shape, conv_param):
    a = _conv_inputs(rng, x_shape, w_shape)
    out, cache = student.conv_forward_im2col(a["x"], a["w"], a["b"], conv_param)
    dout = rng.standard_normal(np.shape(out))
    dx, dw, db = student.conv_backward_im2col(dout, cache)
    check_gradients(student.conv_forward_im2col, {**a, "conv_param": conv_param},
                    {"x": dx, "w": dw, "b": db}, dout=dout, output=0, threshold=GRAD_THRESHOLD)
    _, ref_cache = reference.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)
    for name, got, want in zip(("dx", "dw", "db"), (dx, dw, db), reference.conv_backward_naive(dout, ref_cache)):
        assert_close(got, want, name=name, threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("x_shape, w_shape, conv_param", FORWARD_CASES[-8:])
def test_conv_im2col_hidden_backward_larger(student, reference, rng, x_shape, w_shape, conv_param):
    # Bigger than a numerical check can afford: compared with the reference only.
    a = _conv_inputs(rng, x_shape, w_shape)
    out, cache = student.conv_forward_im2col(a["x"], a["w"], a["b"], conv_param)
    dout = rng.standard_normal(np.shape(out))
    got = student.conv_backward_im2col(dout, cache)
    _, ref_cache = reference.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)
    for name, g, want in zip(("dx", "dw", "db"), got, reference.conv_backward_naive(dout, ref_cache)):
        assert_close(g, want, name=f"{name} ({_case_id(x_shape, w_shape, conv_param)})",
                     threshold=MATCH_THRESHOLD)


def test_conv_im2col_hidden_1x1_batch(student, rng):
    # A 1x1 convolution with stride 2 and padding: channel mixing on a subsampled, padded grid.
    x = rng.standard_normal((4, 5, 7, 9))
    w = rng.standard_normal((3, 5, 1, 1))
    b = rng.standard_normal(3)
    out, _ = student.conv_forward_im2col(x, w, b, {"stride": 2, "pad": 1})
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))[:, :, ::2, ::2]
    expected = np.einsum("nchw,fc->nfhw", xpad, w[:, :, 0, 0]) + b[None, :, None, None]
    assert_close(out, expected, name="out of a 1x1 convolution, stride 2, pad 1")


@pytest.mark.parametrize("stride", [1, 2])
def test_max_pool_hidden_backward_ties(student, reference, rng, stride):
    # Few distinct values, so most windows hold their maximum twice or more: the handout sends
    # each window's gradient to the first maximum only (row-major), never to every tied one.
    x = rng.integers(0, 3, size=(2, 2, 6, 6)).astype(np.float64)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": stride}
    out, cache = student.max_pool_forward_naive(x, pool_param)
    dout = rng.standard_normal(np.shape(out))
    dx = student.max_pool_backward_naive(dout, cache)
    _, ref_cache = reference.max_pool_forward_naive(x, pool_param)
    assert_close(dx, reference.max_pool_backward_naive(dout, ref_cache), name="dx with tied maxima")

"""Visible tests for hw2 (convolution and pooling). Run them with `pytest assignments/hw2`.

Forward passes are checked against values computed beforehand from a correct solution (on
fixed inputs built by `ramp`) or against closed forms. Each backward pass is judged on its own:
given the cache your forward returned, its gradients must equal the true gradients at those
inputs, which the tests compute from the definitions below (the im2col layout spelled out entry
by entry, and its transpose) or as numerical gradients of pooling written out window by window.
So a wrong forward costs only the forward's tests (as long as its cache holds what the backward
needs); a failing backward test says, in a "note:" line, when your forward is wrong too, and
whether your backward agrees with the numerical gradient of your own forward. The hidden tests
check many more geometries (strides, padding, dilation, non-square inputs and kernels, batch of
1, one channel, one filter) the same way.

The `conventions` tests grade the one rule stated for every function: leave the arrays you are
given unchanged. Elsewhere a write into an input is reported as a "warning:" line only.
"""
import time

import numpy as np
import pytest

from autograder.gradcheck import GradientError, assert_close, numeric_gradients
from autograder.verdicts import BackwardNotJudged, check_inputs_rule, explain_with, judge_backward

# Largest relative error allowed for a layer's gradient (float64).
GRAD_THRESHOLD = 1e-7
# The expected values below are printed with 10 significant digits.
GOLDEN_THRESHOLD = 1e-8


def ramp(shape, phase, scale=1.0):
    """A fixed, irregular-looking float64 array of the given shape (no random generator, so the
    expected values below never change with the numpy version)."""
    n = int(np.prod(shape))
    return scale * np.cos(1.7 * np.arange(n) + phase).reshape(shape)


def distinct(rng, shape, gap=0.1):
    """Random values, all different by at least `gap`: max-pooling without ties, so that a
    small numerical step never changes which entry wins a window."""
    return gap * rng.permutation(int(np.prod(shape))).reshape(shape) - gap * np.prod(shape) / 2


# Golden values: conv of ramp((2, 3, 5, 5), 0.1) with ramp((2, 3, 3, 3), 0.7, 0.5) and
# ramp((2,), 1.3, 0.2), stride 2, pad 1.
CONV_GOLDEN = np.array([
    [[[0.04565702087, -0.6027455565, 0.1188673058],
      [0.1988751266, 0.5102940669, -0.1567469288],
      [-0.1270375919, 0.1681527092, 0.231442458]],
     [[-0.3690997223, 0.1516351879, -0.05787210637],
      [-0.09909511392, -0.9712620632, -0.2081866805],
      [-0.1332058085, 0.3816660603, -0.3149989342]]],
    [[[-0.1171884298, 0.3514340714, 0.2026317527],
      [0.1341533519, -0.6621777898, 0.008947774552],
      [0.1157419326, 0.6428877785, -0.04279777954]],
     [[-0.07748761104, 0.2468725608, -0.3395483837],
      [-0.421236633, -0.1588065064, -0.00785837234],
      [-0.05333449176, -0.6730415077, -0.3041182856]]],
])

# Golden values: conv of ramp((1, 2, 5, 5), 0.3) with ramp((2, 2, 2, 2), 0.9, 0.5) and
# ramp((2,), 0.5, 0.2), stride 2, pad 1, dilation 2.
CONV_DILATED_GOLDEN = np.array([
    [[[-0.4994494013, 0.8168015231, 0.1799757806],
      [0.8031082508, -0.2454676989, 0.1284618013],
      [0.1652434138, -0.1635810865, 0.4140767669]],
     [[-0.4288371731, -0.4391896062, 0.3995782225],
      [0.1697277525, 0.2890113498, -0.4754206096],
      [0.02861393864, -0.5077125001, -0.1123621303]]],
])


def golden_conv_inputs():
    return ramp((2, 3, 5, 5), 0.1), ramp((2, 3, 3, 3), 0.7, 0.5), ramp((2,), 1.3, 0.2), {"stride": 2, "pad": 1}


def golden_dilated_inputs():
    return (ramp((1, 2, 5, 5), 0.3), ramp((2, 2, 2, 2), 0.9, 0.5), ramp((2,), 0.5, 0.2),
            {"stride": 2, "pad": 1, "dilation": 2})


def check_conv_golden(conv_forward):
    """conv_forward (naive or im2col) on the two golden inputs gives the golden outputs."""
    out, _ = conv_forward(*golden_conv_inputs())
    assert_close(out, CONV_GOLDEN, name="out (stride 2, pad 1)", threshold=GOLDEN_THRESHOLD)
    out, _ = conv_forward(*golden_dilated_inputs())
    assert_close(out, CONV_DILATED_GOLDEN, name="out (stride 2, pad 1, dilation 2)",
                 threshold=GOLDEN_THRESHOLD)


def pool_by_windows(x, pool_param, reduce):
    """Pooling written out one window at a time: reduce (np.max or np.mean) over each window."""
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    rows = range(0, x.shape[2] - ph + 1, stride)
    cols = range(0, x.shape[3] - pw + 1, stride)
    return np.stack([np.stack([reduce(x[:, :, r:r + ph, c:c + pw], axis=(2, 3)) for c in cols], -1)
                     for r in rows], -2)


def im2col_by_definition(x, HH, WW, stride, pad, dil):
    """The im2col layout spelled out in the docstring, entry by entry (slow, for checking)."""
    N, C, H, W = x.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - dil * (HH - 1) - 1) // stride + 1, (W + 2 * pad - dil * (WW - 1) - 1) // stride + 1
    expected = np.empty((C * HH * WW, N * Ho * Wo))
    for c, p, q in np.ndindex(C, HH, WW):
        for n, i, j in np.ndindex(N, Ho, Wo):
            expected[(c * HH + p) * WW + q, (n * Ho + i) * Wo + j] = \
                xpad[n, c, i * stride + p * dil, j * stride + q * dil]
    return expected


def col2im_by_definition(cols, x_shape, HH, WW, stride, pad, dil):
    """The transpose of im2col_by_definition, entry by entry (slow, for checking): every entry
    of cols is added to the pixel it was read from; entries read from the padding are dropped."""
    N, C, H, W = x_shape
    Ho, Wo = (H + 2 * pad - dil * (HH - 1) - 1) // stride + 1, (W + 2 * pad - dil * (WW - 1) - 1) // stride + 1
    xpad = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    for c, p, q in np.ndindex(C, HH, WW):
        for n, i, j in np.ndindex(N, Ho, Wo):
            xpad[n, c, i * stride + p * dil, j * stride + q * dil] += cols[(c * HH + p) * WW + q, (n * Ho + i) * Wo + j]
    return xpad[:, :, pad:pad + H, pad:pad + W]


def conv_by_definition(x, w, b, conv_param, dout):
    """(out, {"x": dx, "w": dw, "b": db}): the convolution and its true gradients for upstream
    gradient dout, from the matrix form in the handout (section 4) with the im2col layout
    spelled out above, so that no function of yours is used."""
    F, _, HH, WW = w.shape
    stride, pad, dil = conv_param["stride"], conv_param["pad"], conv_param.get("dilation", 1)
    cols = im2col_by_definition(x, HH, WW, stride, pad, dil)
    N, Ho, Wo = x.shape[0], dout.shape[2], dout.shape[3]
    out = (w.reshape(F, -1) @ cols + b[:, None]).reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)
    dY = dout.transpose(1, 0, 2, 3).reshape(F, -1)
    grads = {
        "x": col2im_by_definition(w.reshape(F, -1).T @ dY, x.shape, HH, WW, stride, pad, dil),
        "w": (dY @ cols.T).reshape(w.shape),
        "b": dY.sum(axis=1),
    }
    return out, grads


def pool_by_definition(x, pool_param, reduce, dout):
    """(out, {"x": dx}): pooling window by window, and its true gradient for upstream gradient
    dout: a numerical gradient, which is exact here (the inputs have no ties, and the step of
    1e-3 never changes which entry wins a window)."""
    out = pool_by_windows(x, pool_param, reduce)
    grads = numeric_gradients(lambda x: pool_by_windows(x, pool_param, reduce), {"x": x}, ["x"],
                              dout=dout, h=1e-3)
    return out, grads


def conv_out_shape(x_shape, w_shape, conv_param):
    """(N, F, H', W') of a convolution, from the formula in the handout (section 1)."""
    stride, pad, dil = conv_param["stride"], conv_param["pad"], conv_param.get("dilation", 1)
    size = [(n + 2 * pad - dil * (f - 1) - 1) // stride + 1 for n, f in zip(x_shape[2:], w_shape[2:])]
    return (x_shape[0], w_shape[0], *size)


def conv_args(rng, x_shape, w_shape):
    return {
        "x": rng.standard_normal(x_shape),
        "w": rng.standard_normal(w_shape),
        "b": rng.standard_normal(w_shape[0]),
    }


# Geometries for the backward tests: (x shape, w shape, conv_param). Small, since the true
# gradients come from the entry-by-entry definitions above.
GRAD_CASES = [
    pytest.param((2, 2, 5, 5), (3, 2, 3, 3), {"stride": 1, "pad": 1}, id="stride1-pad1"),
    pytest.param((1, 3, 5, 8), (2, 3, 3, 2), {"stride": 2, "pad": 0}, id="stride2-nonsquare"),
    pytest.param((2, 1, 6, 5), (2, 1, 2, 2), {"stride": 1, "pad": 2, "dilation": 2}, id="dilation2-pad2"),
]


# --- output size ------------------------------------------------------------------------------

@pytest.mark.parametrize("n, f, pad, stride, dilation, expected", [
    (5, 3, 1, 1, 1, 5),    # "same" padding
    (7, 3, 0, 2, 1, 3),
    (32, 5, 0, 1, 1, 28),
    (4, 4, 0, 1, 1, 1),    # the filter covers the whole input
    (6, 2, 0, 2, 1, 3),    # 2x2 windows, stride 2 (pooling)
    (7, 3, 2, 1, 2, 7),    # dilation 2: the filter spans 5
    (9, 3, 0, 1, 3, 3),    # dilation 3: the filter spans 7
    (1, 1, 0, 1, 1, 1),
])
def test_output_size_values(student, n, f, pad, stride, dilation, expected):
    got = student.conv_output_size(n, f, pad, stride, dilation)
    assert got == expected, (
        f"conv_output_size(n={n}, f={f}, pad={pad}, stride={stride}, dilation={dilation}) "
        f"returned {got!r}, expected {expected}"
    )


def test_output_size_default_dilation(student):
    assert student.conv_output_size(5, 3, 0, 1) == 3, "dilation must default to 1"


@pytest.mark.parametrize("n, f, pad, stride, dilation", [
    (6, 3, 0, 2, 1),   # (6 - 3) / 2 + 1 = 2.5
    (2, 5, 0, 1, 1),   # the filter is bigger than the input
    (5, 3, 0, 1, 3),   # dilated, the filter spans 7 > 5
    (8, 3, 1, 3, 1),   # (8 + 2 - 3) / 3 + 1 is not whole
])
def test_output_size_rejects_bad_geometry(student, n, f, pad, stride, dilation):
    # A conv_output_size that raises for every geometry must not pass: a good one first.
    assert student.conv_output_size(7, 3, 0, 2, 1) == 3, "conv_output_size(7, 3, 0, 2, 1) should be 3"
    with pytest.raises(ValueError) as info:
        student.conv_output_size(n, f, pad, stride, dilation)
    message = str(info.value)
    for label, value in (("n", n), ("f", f), ("stride", stride)):
        assert str(value) in message, (
            f"the ValueError message should name the numbers of the geometry (missing {label}={value}): "
            f"{message!r}"
        )


# --- naive convolution ------------------------------------------------------------------------

def test_conv_naive_forward_golden(student):
    out, _ = student.conv_forward_naive(*golden_conv_inputs())
    assert_close(out, CONV_GOLDEN, name="out (stride 2, pad 1)", threshold=GOLDEN_THRESHOLD)


def test_conv_naive_forward_dilated_golden(student):
    out, _ = student.conv_forward_naive(*golden_dilated_inputs())
    assert_close(out, CONV_DILATED_GOLDEN, name="out (stride 2, pad 1, dilation 2)",
                 threshold=GOLDEN_THRESHOLD)


def test_conv_naive_forward_padding_is_zeros(student, rng):
    # Padding by p is the same as convolving the zero-padded input with no padding.
    a = conv_args(rng, (2, 2, 4, 5), (3, 2, 3, 2))
    out, _ = student.conv_forward_naive(a["x"], a["w"], a["b"], {"stride": 1, "pad": 2})
    xpad = np.pad(a["x"], ((0, 0), (0, 0), (2, 2), (2, 2)))
    expected, _ = student.conv_forward_naive(xpad, a["w"], a["b"], {"stride": 1, "pad": 0})
    assert_close(out, expected, name="out with pad=2 (vs. conv of the zero-padded input, pad=0)")
    # Both sides are your conv: a wrong one (all zeros, say) agrees with itself.
    check_conv_golden(student.conv_forward_naive)


def test_conv_naive_forward_dilation_is_spread_kernel(student, rng):
    # A dilated filter is the plain filter with (dilation - 1) zeros between its taps.
    a = conv_args(rng, (1, 2, 7, 8), (2, 2, 2, 3))
    out, _ = student.conv_forward_naive(a["x"], a["w"], a["b"], {"stride": 1, "pad": 1, "dilation": 2})
    spread = np.zeros((2, 2, 3, 5))
    spread[:, :, ::2, ::2] = a["w"]
    expected, _ = student.conv_forward_naive(a["x"], spread, a["b"], {"stride": 1, "pad": 1})
    assert_close(out, expected, name="out with dilation=2 (vs. the zero-spread filter, dilation=1)")
    check_conv_golden(student.conv_forward_naive)


def test_conv_naive_forward_stride_subsamples(student, rng):
    a = conv_args(rng, (2, 1, 7, 9), (1, 1, 3, 3))
    out, _ = student.conv_forward_naive(a["x"], a["w"], a["b"], {"stride": 2, "pad": 0})
    dense, _ = student.conv_forward_naive(a["x"], a["w"], a["b"], {"stride": 1, "pad": 0})
    assert_close(out, dense[:, :, ::2, ::2], name="out with stride=2 (vs. stride 1, every other pixel)")
    check_conv_golden(student.conv_forward_naive)


def judge(forward, backward, args, dout, expected, expected_out, documented_cache=None, what=""):
    """Judge backward on its own: given the cache that forward(*args) returns, its gradients
    for upstream gradient dout must be `expected` (name -> true gradient). When forward
    crashes and it documents its cache, the backward is judged on that cache instead, so that
    a crashing forward costs its own tests only."""
    __tracebackhide__ = True
    try:
        judge_backward(forward, backward, args, dout, list(expected), expected=expected,
                       expected_out=expected_out, threshold=GRAD_THRESHOLD, what=what)
        return
    except BackwardNotJudged as exc:
        if documented_cache is None:
            raise
        reason = str(exc).splitlines()[0]
    note = (f"note: {reason}; so {backward.__name__} was judged on the cache that "
            f"{forward.__name__}'s docstring documents ({forward.__name__}'s own tests grade the forward)")
    try:
        got = backward(dout, documented_cache)
    except Exception as exc:
        raise GradientError(f"{backward.__name__} {what} raised {type(exc).__name__}: {exc}\n{note}") from exc
    got = (got,) if len(expected) == 1 else tuple(got)
    with explain_with(note):
        assert len(got) == len(expected), f"{backward.__name__} must return {len(expected)} gradients"
        for (name, want), g in zip(expected.items(), got):
            assert_close(g, want, name=f"{backward.__name__} d{name} {what}", threshold=GRAD_THRESHOLD)


def judge_conv_backward(forward, backward, rng, x_shape, w_shape, conv_param, documented=True):
    """Judge a conv backward (naive or im2col) on its own, given the cache of its forward."""
    a = conv_args(rng, x_shape, w_shape)
    dout = rng.standard_normal(conv_out_shape(x_shape, w_shape, conv_param))
    out, grads = conv_by_definition(a["x"], a["w"], a["b"], conv_param, dout)
    judge(forward, backward, {**a, "conv_param": conv_param}, dout, grads, out,
          (a["x"], a["w"], a["b"], conv_param) if documented else None,
          what=f"for x {x_shape}, w {w_shape}, {conv_param}")


@pytest.mark.parametrize("x_shape, w_shape, conv_param", GRAD_CASES)
def test_conv_naive_backward_true_gradient(student, rng, x_shape, w_shape, conv_param):
    judge_conv_backward(student.conv_forward_naive, student.conv_backward_naive, rng,
                        x_shape, w_shape, conv_param)


# --- pooling ----------------------------------------------------------------------------------

def test_max_pool_forward_closed_form(student, rng):
    # Non-overlapping 2x2 windows: a reshape puts each window on two axes of its own.
    x = distinct(rng, (2, 3, 4, 6))
    out, _ = student.max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert_close(out, x.reshape(2, 3, 2, 2, 3, 2).max(axis=(3, 5)), name="out (2x2 windows, stride 2)")
    # 2x3 windows with stride 2 overlap along W: the windows start at rows 0, 2 and columns 0, 2, 4.
    x = distinct(rng, (2, 3, 4, 7))
    out, _ = student.max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 3, "stride": 2})
    expected = np.stack([np.stack([x[:, :, r:r + 2, c:c + 3].max(axis=(2, 3)) for c in (0, 2, 4)], -1)
                         for r in (0, 2)], -2)
    assert_close(out, expected, name="out (2x3 windows, stride 2, overlapping along W)")


@pytest.mark.parametrize("shape, pool_param", [
    pytest.param((2, 2, 4, 4), {"pool_height": 2, "pool_width": 2, "stride": 2}, id="2x2-stride2"),
    pytest.param((1, 2, 5, 4), {"pool_height": 3, "pool_width": 2, "stride": 1}, id="3x2-overlapping"),
])
def test_max_pool_backward_true_gradient(student, rng, shape, pool_param):
    x = distinct(rng, shape)  # no ties: the gradient is unique
    dout = rng.standard_normal(pool_by_windows(x, pool_param, np.max).shape)
    out, grads = pool_by_definition(x, pool_param, np.max, dout)
    judge(student.max_pool_forward_naive, student.max_pool_backward_naive, {"x": x, "pool_param": pool_param},
          dout, grads, out, (x, pool_param), what=f"for x {shape}, {pool_param}")


def test_avg_pool_forward_closed_form(student, rng):
    x = rng.standard_normal((2, 3, 4, 6))
    out, _ = student.avg_pool_forward_naive(x, {"pool_height": 2, "pool_width": 3, "stride": 1})
    expected = np.stack([np.stack([x[:, :, r:r + 2, c:c + 3].mean(axis=(2, 3)) for c in range(4)], -1)
                         for r in range(3)], -2)
    assert_close(out, expected, name="out (2x3 windows, stride 1)")


@pytest.mark.parametrize("shape, pool_param", [
    pytest.param((2, 2, 4, 4), {"pool_height": 2, "pool_width": 2, "stride": 2}, id="2x2-stride2"),
    pytest.param((1, 2, 5, 4), {"pool_height": 3, "pool_width": 2, "stride": 1}, id="3x2-overlapping"),
])
def test_avg_pool_backward_true_gradient(student, rng, shape, pool_param):
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(pool_by_windows(x, pool_param, np.mean).shape)
    out, grads = pool_by_definition(x, pool_param, np.mean, dout)
    judge(student.avg_pool_forward_naive, student.avg_pool_backward_naive, {"x": x, "pool_param": pool_param},
          dout, grads, out, (x, pool_param), what=f"for x {shape}, {pool_param}")


# --- im2col and col2im ------------------------------------------------------------------------

def test_im2col_small_by_hand(student):
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    cols = student.im2col(x, 2, 2, 1, 0, 1)
    # One row per filter tap (p, q), one column per window (top-left (0,0), (0,1), ... (1,2)).
    expected = np.array([
        [0, 1, 2, 4, 5, 6],     # tap (0, 0)
        [1, 2, 3, 5, 6, 7],     # tap (0, 1)
        [4, 5, 6, 8, 9, 10],    # tap (1, 0)
        [5, 6, 7, 9, 10, 11],   # tap (1, 1)
    ], dtype=float)
    assert_close(cols, expected, name="im2col(x, 2, 2) of x = arange(12).reshape(1, 1, 3, 4)")


def test_im2col_layout(student, rng):
    # The layout spelled out in the docstring, entry by entry.
    N, C, H, W, HH, WW, stride, pad, dil = 2, 2, 5, 7, 2, 3, 2, 1, 2
    x = rng.standard_normal((N, C, H, W))
    cols = student.im2col(x, HH, WW, stride, pad, dil)
    assert_close(cols, im2col_by_definition(x, HH, WW, stride, pad, dil),
                 name="im2col(x, 2, 3, stride=2, pad=1, dilation=2)")


@pytest.mark.parametrize("x_shape, HH, WW, stride, pad, dil", [
    pytest.param((2, 2, 4, 5), 3, 2, 1, 1, 1, id="pad1"),
    pytest.param((1, 3, 7, 5), 2, 3, 2, 2, 2, id="stride2-pad2-dilation2"),
])
def test_col2im_is_adjoint_of_im2col(student, rng, x_shape, HH, WW, stride, pad, dil):
    # col2im is the backward pass of im2col: with upstream gradient dcols, d(sum(im2col(x) *
    # dcols))/dx = col2im(dcols), the transpose of the layout spelled out in im2col's docstring.
    x = rng.standard_normal(x_shape)
    dcols = rng.standard_normal(im2col_by_definition(x, HH, WW, stride, pad, dil).shape)
    dx = student.col2im(dcols, x_shape, HH, WW, stride, pad, dil)
    assert_close(dx, col2im_by_definition(dcols, x_shape, HH, WW, stride, pad, dil),
                 name=f"col2im(dcols, {x_shape}, {HH}, {WW}, stride={stride}, pad={pad}, dilation={dil})",
                 threshold=GRAD_THRESHOLD)
    # The adjoint identity of the handout, with the same dcols and this x.
    lhs = float(np.sum(im2col_by_definition(x, HH, WW, stride, pad, dil) * dcols))
    assert abs(lhs - float(np.sum(x * dx))) <= 1e-9 * max(1.0, abs(lhs)), (
        f"sum(im2col(x) * dcols) = {lhs:.10g} but sum(x * col2im(dcols)) = {float(np.sum(x * dx)):.10g}"
    )


# --- vectorized convolution -------------------------------------------------------------------

def test_conv_im2col_forward_golden(student):
    out, _ = student.conv_forward_im2col(*golden_conv_inputs())
    assert_close(out, CONV_GOLDEN, name="out (stride 2, pad 1)", threshold=GOLDEN_THRESHOLD)
    out, _ = student.conv_forward_im2col(*golden_dilated_inputs())
    assert_close(out, CONV_DILATED_GOLDEN, name="out (stride 2, pad 1, dilation 2)",
                 threshold=GOLDEN_THRESHOLD)


def test_conv_im2col_forward_1x1(student, rng):
    # A 1x1 convolution mixes channels pixel by pixel: a matrix product over C.
    a = conv_args(rng, (3, 4, 5, 6), (2, 4, 1, 1))
    out, _ = student.conv_forward_im2col(a["x"], a["w"], a["b"], {"stride": 1, "pad": 0})
    expected = np.einsum("nchw,fc->nfhw", a["x"], a["w"][:, :, 0, 0]) + a["b"][None, :, None, None]
    assert_close(out, expected, name="out of a 1x1 convolution")


@pytest.mark.parametrize("x_shape, w_shape, conv_param", GRAD_CASES)
def test_conv_im2col_backward_true_gradient(student, rng, x_shape, w_shape, conv_param):
    # Its cache is whatever conv_forward_im2col keeps: no documented one to fall back on.
    judge_conv_backward(student.conv_forward_im2col, student.conv_backward_im2col, rng,
                        x_shape, w_shape, conv_param, documented=False)


def _best_time(f, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = f()
        best = min(best, time.perf_counter() - start)
    return best, result


def test_conv_im2col_is_vectorized(student):
    # A 300 x 300 output is 90,000 windows. Any Python loop over them costs at least one slice
    # and one small product per window: `floor` measures that on this machine, and the
    # vectorized conv (forward and backward each) must take less than a quarter of it.
    # float32 halves the bytes that cross to the grading process, whose copying is timed too.
    size = 300
    x = ramp((1, 1, size + 1, size + 1), 0.2).astype(np.float32)
    w = ramp((1, 1, 2, 2), 0.4).astype(np.float32)
    b = np.zeros(1, dtype=np.float32)
    param = {"stride": 1, "pad": 0}
    forward_time, (out, cache) = _best_time(lambda: student.conv_forward_im2col(x, w, b, param))
    plane, taps = x[0, 0].astype(np.float64), w.ravel().astype(np.float64)
    floor_out = np.empty((size, size))
    start = time.perf_counter()
    for i in range(size):
        for j in range(size):
            floor_out[i, j] = plane[i:i + 2, j:j + 2].ravel() @ taps
    floor = time.perf_counter() - start
    shape = f"1x1x{size + 1}x{size + 1}"
    # float32 arithmetic: about 7 significant digits.
    assert_close(out, floor_out[None, None], name=f"out (float32 {shape} input, 2x2 filter)", threshold=1e-4)
    dout = ramp((1, 1, size, size), 0.6).astype(np.float32)
    backward_time, _ = _best_time(lambda: student.conv_backward_im2col(dout, cache))
    for label, took in (("conv_forward_im2col", forward_time), ("conv_backward_im2col", backward_time)):
        assert took < floor / 4, (
            f"{label} took {took:.3f} s on a {shape} input with a 2x2 filter; a loop over the "
            f"{size * size:,} output pixels takes about {floor:.3f} s here, and the vectorized version "
            f"must be at least 4x faster than that. Loop over the filter taps (HH * WW), not "
            f"over output positions."
        )


# --- conventions: inputs left unchanged -------------------------------------------------------
# One test per function that is easy to get wrong this way (dout /= k, a padded buffer that
# is really x). Each call gets two different inputs; it must leave every array it is given as
# it was, and compute something from them (the values are graded by the function's own tests).

def _rule_conv_forward_naive(student, rng):
    def conv_forward_naive_out(x, w, b, conv_param):
        # Only `out`: the cache holds the inputs themselves, which says nothing about the rule.
        return student.conv_forward_naive(x, w, b, conv_param)[0]

    # The simplest geometry (no padding, stride 1), which any forward that runs at all handles.
    param = {"stride": 1, "pad": 0}
    calls = [(*conv_args(rng, (1, 2, 4, 4), (2, 2, 3, 3)).values(), param) for _ in range(2)]
    return conv_forward_naive_out, calls


def _rule_conv_backward_naive(student, rng):
    # The cache that conv_forward_naive documents, (x, w, b, conv_param), so that this test
    # does not depend on your forward.
    param = {"stride": 1, "pad": 1}
    calls = [(rng.standard_normal((1, 2, 4, 4)), tuple(conv_args(rng, (1, 2, 4, 4), (2, 2, 3, 3)).values()) + (param,))
             for _ in range(2)]
    return student.conv_backward_naive, calls


def _rule_pool_backward(name):
    def build(student, rng):
        # The documented cache (x, pool_param), 2x2 windows with stride 2: no ties.
        param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        calls = [(rng.standard_normal((1, 2, 2, 2)), (distinct(rng, (1, 2, 4, 4)), param)) for _ in range(2)]
        return getattr(student, name), calls
    return build


def _rule_conv_backward_im2col(student, rng):
    # Its cache is whatever your conv_forward_im2col keeps: made here on the simplest geometry.
    param = {"stride": 1, "pad": 0}
    calls = []
    for _ in range(2):
        _, cache = student.conv_forward_im2col(*conv_args(rng, (1, 2, 4, 4), (2, 2, 3, 3)).values(), param)
        calls.append((rng.standard_normal((1, 2, 2, 2)), cache))
    return student.conv_backward_im2col, calls


RULE_CALLS = {
    "conv_forward_naive": _rule_conv_forward_naive,
    "conv_backward_naive": _rule_conv_backward_naive,
    "max_pool_backward_naive": _rule_pool_backward("max_pool_backward_naive"),
    "avg_pool_backward_naive": _rule_pool_backward("avg_pool_backward_naive"),
    "conv_backward_im2col": _rule_conv_backward_im2col,
}


@pytest.mark.parametrize("function", sorted(RULE_CALLS))
def test_inputs_left_unchanged(student, rng, function):
    fn, (first, second) = RULE_CALLS[function](student, rng)
    check_inputs_rule(fn, first, second)

"""Visible tests for hw2 (convolution and pooling). Run them with `pytest assignments/hw2`.

Forward passes are checked against values computed beforehand from a correct solution (on
fixed inputs built by `ramp`) or against closed forms; backward passes by numerical gradient
checks. A gradient check differentiates your own forward pass, and a wrong forward (all zeros,
say) agrees with a backward that is wrong the same way, so each gradient check also checks the
forward pass it relies on. The hidden tests check many more geometries (strides, padding,
dilation, non-square inputs and kernels, batch of 1, one channel, one filter) the same way.
"""
import time

import numpy as np
import pytest

from autograder.gradcheck import assert_close, check_gradients

# Largest relative error allowed for a layer's gradient (float64, central differences).
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


def conv_args(rng, x_shape, w_shape):
    return {
        "x": rng.standard_normal(x_shape),
        "w": rng.standard_normal(w_shape),
        "b": rng.standard_normal(w_shape[0]),
    }


# Geometries for gradient checks: (x shape, w shape, conv_param). Tiny, since a numerical
# gradient calls the forward pass twice per input entry.
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


@pytest.mark.parametrize("x_shape, w_shape, conv_param", GRAD_CASES)
def test_conv_naive_backward_gradcheck(student, rng, x_shape, w_shape, conv_param):
    check_conv_golden(student.conv_forward_naive)
    a = conv_args(rng, x_shape, w_shape)
    out, cache = student.conv_forward_naive(a["x"], a["w"], a["b"], conv_param)
    dout = rng.standard_normal(np.shape(out))
    dx, dw, db = student.conv_backward_naive(dout, cache)
    check_gradients(student.conv_forward_naive, {**a, "conv_param": conv_param},
                    {"x": dx, "w": dw, "b": db}, dout=dout, output=0, threshold=GRAD_THRESHOLD)


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
def test_max_pool_backward_gradcheck(student, rng, shape, pool_param):
    x = distinct(rng, shape)
    out, cache = student.max_pool_forward_naive(x, pool_param)
    assert_close(out, pool_by_windows(x, pool_param, np.max),
                 name="out (the inputs of the gradient check)")
    dout = rng.standard_normal(np.shape(out))
    dx = student.max_pool_backward_naive(dout, cache)
    check_gradients(student.max_pool_forward_naive, {"x": x, "pool_param": pool_param}, {"x": dx},
                    dout=dout, output=0, threshold=GRAD_THRESHOLD)


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
def test_avg_pool_backward_gradcheck(student, rng, shape, pool_param):
    x = rng.standard_normal(shape)
    out, cache = student.avg_pool_forward_naive(x, pool_param)
    assert_close(out, pool_by_windows(x, pool_param, np.mean),
                 name="out (the inputs of the gradient check)")
    dout = rng.standard_normal(np.shape(out))
    dx = student.avg_pool_backward_naive(dout, cache)
    check_gradients(student.avg_pool_forward_naive, {"x": x, "pool_param": pool_param}, {"x": dx},
                    dout=dout, output=0, threshold=GRAD_THRESHOLD)


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
    # dcols))/dx = col2im(dcols).
    x = rng.standard_normal(x_shape)
    cols = student.im2col(x, HH, WW, stride, pad, dil)
    # The check differentiates your im2col: it must be the right one.
    assert_close(cols, im2col_by_definition(x, HH, WW, stride, pad, dil), name="im2col(x)")
    dcols = rng.standard_normal(np.shape(cols))
    dx = student.col2im(dcols, x_shape, HH, WW, stride, pad, dil)
    check_gradients(student.im2col, {"x": x, "HH": HH, "WW": WW, "stride": stride, "pad": pad, "dilation": dil},
                    {"x": dx}, dout=dcols, threshold=GRAD_THRESHOLD)


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
def test_conv_im2col_backward_gradcheck(student, rng, x_shape, w_shape, conv_param):
    check_conv_golden(student.conv_forward_im2col)
    a = conv_args(rng, x_shape, w_shape)
    out, cache = student.conv_forward_im2col(a["x"], a["w"], a["b"], conv_param)
    dout = rng.standard_normal(np.shape(out))
    dx, dw, db = student.conv_backward_im2col(dout, cache)
    check_gradients(student.conv_forward_im2col, {**a, "conv_param": conv_param},
                    {"x": dx, "w": dw, "b": db}, dout=dout, output=0, threshold=GRAD_THRESHOLD)


def _best_time(f, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = f()
        best = min(best, time.perf_counter() - start)
    return best, result


def test_conv_im2col_is_vectorized(student):
    # A 400 x 400 output is 160,000 windows. Any Python loop over them costs at least one
    # slice and one small product per window: `floor` measures that on this machine, and the
    # vectorized conv (forward and backward each) must take less than a quarter of it.
    # float32 halves the bytes that cross to the grading process, whose copying is timed too.
    x = ramp((1, 1, 401, 401), 0.2).astype(np.float32)
    w = ramp((1, 1, 2, 2), 0.4).astype(np.float32)
    b = np.zeros(1, dtype=np.float32)
    param = {"stride": 1, "pad": 0}
    forward_time, (out, cache) = _best_time(lambda: student.conv_forward_im2col(x, w, b, param))
    plane, taps = x[0, 0].astype(np.float64), w.ravel().astype(np.float64)
    floor_out = np.empty((400, 400))
    start = time.perf_counter()
    for i in range(400):
        for j in range(400):
            floor_out[i, j] = plane[i:i + 2, j:j + 2].ravel() @ taps
    floor = time.perf_counter() - start
    # float32 arithmetic: about 7 significant digits.
    assert_close(out, floor_out[None, None], name="out (float32 1x1x401x401 input, 2x2 filter)",
                 threshold=1e-4)
    dout = ramp((1, 1, 400, 400), 0.6).astype(np.float32)
    backward_time, _ = _best_time(lambda: student.conv_backward_im2col(dout, cache))
    for label, took in (("conv_forward_im2col", forward_time), ("conv_backward_im2col", backward_time)):
        assert took < floor / 4, (
            f"{label} took {took:.3f} s on a 1x1x401x401 input with a 2x2 filter; a loop over the "
            f"160,000 output pixels takes about {floor:.3f} s here, and the vectorized version "
            f"must be at least 4x faster than that. Loop over the filter taps (HH * WW), not "
            f"over output positions."
        )

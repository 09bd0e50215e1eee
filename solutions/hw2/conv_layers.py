"""Convolution and pooling layers, naive and vectorized (numpy only).

Layout conventions (the same in every function):
- Images are NCHW: x has shape (N, C, H, W): N images, C channels, H rows, W columns.
- Filters are w of shape (F, C, HH, WW): F filters, each spanning all C input channels over an
  HH x WW window; b has shape (F,), one bias per filter.
- conv_param is a dict with
  - 'stride': step, in pixels, between neighbouring windows (both directions);
  - 'pad': number of zero rows/columns added on every side of the input;
  - 'dilation' (optional, default 1): spacing between the taps of a filter; dilation d makes
    an HH-tap filter cover d * (HH - 1) + 1 input rows.
- pool_param is a dict with 'pool_height', 'pool_width' and 'stride' (pooling never pads).

Forward functions return (out, cache); backward functions take (dout, cache) and return the
gradients of the loss with respect to the forward function's array inputs, in the same order.
A geometry in which the windows do not tile the padded input exactly is an error (ValueError),
never silently cropped.
"""
import numpy as np


def _conv_params(conv_param):
    """(stride, pad, dilation) from a conv_param dict; dilation defaults to 1."""
    return conv_param["stride"], conv_param["pad"], conv_param.get("dilation", 1)


def conv_output_size(n, f, pad, stride, dilation=1):
    """Length of a convolution's output along one spatial axis.

    Inputs:
    - n: Input length (H or W), a positive integer.
    - f: Filter length (HH or WW), a positive integer.
    - pad: Zero padding added on each side, an integer >= 0.
    - stride: Step between windows, a positive integer.
    - dilation: Spacing between filter taps, a positive integer (default 1).

    Returns:
    - The output length (n + 2 * pad - dilation * (f - 1) - 1) / stride + 1, as an int.

    Raises ValueError, naming all five numbers, when an argument is out of range or when that
    expression is not a positive whole number (the windows would not tile the padded input).
    """
    ### BEGIN SOLUTION
    for name, value, low in (("n", n, 1), ("f", f, 1), ("pad", pad, 0),
                             ("stride", stride, 1), ("dilation", dilation, 1)):
        # bool is an int subclass, and a float such as 2.0 hides a caller's mistake.
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(
                f"conv_output_size(n={n}, f={f}, pad={pad}, stride={stride}, "
                f"dilation={dilation}): {name} must be an integer >= {low}, got {value!r}"
            )
    span = n + 2 * pad - (dilation * (f - 1) + 1)
    if span < 0 or span % stride != 0:
        raise ValueError(
            f"conv_output_size(n={n}, f={f}, pad={pad}, stride={stride}, dilation={dilation}): "
            f"(n + 2*pad - dilation*(f-1) - 1) / stride + 1 = {span}/{stride} + 1 "
            f"is not a positive whole number"
        )
    return int(span // stride + 1)
    ### END SOLUTION


def conv_forward_naive(x, w, b, conv_param):
    """Convolution forward pass, written with explicit loops over the output.

    Inputs:
    - x: Input data of shape (N, C, H, W).
    - w: Filter weights of shape (F, C, HH, WW).
    - b: Biases of shape (F,).
    - conv_param: dict with 'stride', 'pad' and optionally 'dilation' (see the module doc).

    Returns a tuple of:
    - out: Output data of shape (N, F, H', W') where
      H' = conv_output_size(H, HH, pad, stride, dilation) and
      W' = conv_output_size(W, WW, pad, stride, dilation), and
      out[n, f, i, j] = b[f] + sum over c, p, q of
          xpad[n, c, i * stride + p * dilation, j * stride + q * dilation] * w[f, c, p, q]
      with xpad the input zero-padded by `pad` on every side.
    - cache: (x, w, b, conv_param)
    """
    stride, pad, dilation = _conv_params(conv_param)
    out = None
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = conv_output_size(H, HH, pad, stride, dilation)
    W_out = conv_output_size(W, WW, pad, stride, dilation)
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    w_rows = w.reshape(F, -1)
    out = np.empty((N, F, H_out, W_out), dtype=np.result_type(x, w, b))
    # Extent of one dilated window in the padded input.
    span_h = dilation * (HH - 1) + 1
    span_w = dilation * (WW - 1) + 1
    for n in range(N):
        for i in range(H_out):
            top = i * stride
            for j in range(W_out):
                left = j * stride
                window = xpad[n, :, top:top + span_h:dilation, left:left + span_w:dilation]
                out[n, :, i, j] = w_rows @ window.ravel() + b
    ### END SOLUTION
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    """Convolution backward pass, written with explicit loops over the output.

    Inputs:
    - dout: Upstream derivatives, of shape (N, F, H', W').
    - cache: The cache of the conv_forward_naive call that produced the output.

    Returns a tuple of:
    - dx: Gradient with respect to x, of shape (N, C, H, W).
    - dw: Gradient with respect to w, of shape (F, C, HH, WW).
    - db: Gradient with respect to b, of shape (F,).
    """
    x, w, b, conv_param = cache
    stride, pad, dilation = _conv_params(conv_param)
    dx, dw, db = None, None, None
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxpad = np.zeros_like(xpad, dtype=np.result_type(x, w, dout))
    dw = np.zeros_like(w, dtype=np.result_type(x, w, dout))
    span_h = dilation * (HH - 1) + 1
    span_w = dilation * (WW - 1) + 1
    for n in range(N):
        for i in range(H_out):
            top = i * stride
            for j in range(W_out):
                left = j * stride
                rows = slice(top, top + span_h, dilation)
                cols = slice(left, left + span_w, dilation)
                g = dout[n, :, i, j]  # (F,)
                # out[n, f, i, j] touched each tap of this window once, with weight w[f].
                dw += g[:, None, None, None] * xpad[n, :, rows, cols]
                dxpad[n, :, rows, cols] += np.tensordot(g, w, axes=1)
    dx = dxpad[:, :, pad:pad + H, pad:pad + W]
    db = dout.sum(axis=(0, 2, 3))
    ### END SOLUTION
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    """Max-pooling forward pass, with a loop over the output positions.

    Inputs:
    - x: Input data of shape (N, C, H, W).
    - pool_param: dict with 'pool_height', 'pool_width' and 'stride'.

    Returns a tuple of:
    - out: Output data of shape (N, C, H', W') with
      H' = (H - pool_height) / stride + 1 and W' = (W - pool_width) / stride + 1, and
      out[n, c, i, j] the largest entry of x[n, c] in the window whose top-left corner is
      (i * stride, j * stride). A geometry that does not tile exactly raises ValueError.
    - cache: (x, pool_param)
    """
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    out = None
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    H_out = conv_output_size(H, ph, 0, stride)
    W_out = conv_output_size(W, pw, 0, stride)
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]
            out[:, :, i, j] = window.max(axis=(2, 3))
    ### END SOLUTION
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    """Max-pooling backward pass.

    Inputs:
    - dout: Upstream derivatives, of shape (N, C, H', W').
    - cache: The cache of the max_pool_forward_naive call.

    Returns:
    - dx: Gradient with respect to x, of shape (N, C, H, W). Each dout[n, c, i, j] goes to the
      position of its window's maximum; where windows overlap, contributions add up. On a tie
      any split among the tied maxima (nonnegative shares adding up to dout[n, c, i, j]) is a
      valid subgradient; giving it all to the first maximum argmax finds is the simplest.
    """
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = None
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x, dtype=np.result_type(x, dout))
    for i in range(H_out):
        for j in range(W_out):
            rows = slice(i * stride, i * stride + ph)
            cols = slice(j * stride, j * stride + pw)
            flat = x[:, :, rows, cols].reshape(N, C, ph * pw)
            # argmax picks one winner per window, so a tie cannot double the gradient.
            winner = flat.argmax(axis=2)[:, :, None]
            route = np.zeros_like(flat, dtype=dx.dtype)
            np.put_along_axis(route, winner, dout[:, :, i, j][:, :, None], axis=2)
            dx[:, :, rows, cols] += route.reshape(N, C, ph, pw)
    ### END SOLUTION
    return dx


def avg_pool_forward_naive(x, pool_param):
    """Average-pooling forward pass, with a loop over the output positions.

    Inputs:
    - x: Input data of shape (N, C, H, W).
    - pool_param: dict with 'pool_height', 'pool_width' and 'stride'.

    Returns a tuple of:
    - out: Output data of shape (N, C, H', W') (sizes as in max_pool_forward_naive), with
      out[n, c, i, j] the mean of x[n, c] over the window at (i * stride, j * stride).
    - cache: (x, pool_param)
    """
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    out = None
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    H_out = conv_output_size(H, ph, 0, stride)
    W_out = conv_output_size(W, pw, 0, stride)
    out = np.empty((N, C, H_out, W_out), dtype=np.result_type(x, 1.0))
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]
            out[:, :, i, j] = window.mean(axis=(2, 3))
    ### END SOLUTION
    cache = (x, pool_param)
    return out, cache


def avg_pool_backward_naive(dout, cache):
    """Average-pooling backward pass.

    Inputs:
    - dout: Upstream derivatives, of shape (N, C, H', W').
    - cache: The cache of the avg_pool_forward_naive call.

    Returns:
    - dx: Gradient with respect to x, of shape (N, C, H, W): each dout[n, c, i, j] is shared
      equally by the pool_height * pool_width entries of its window.
    """
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = None
    ### BEGIN SOLUTION
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x, dtype=np.result_type(x, dout, 1.0))
    share = dout / (ph * pw)
    for i in range(H_out):
        for j in range(W_out):
            rows = slice(i * stride, i * stride + ph)
            cols = slice(j * stride, j * stride + pw)
            dx[:, :, rows, cols] += share[:, :, i, j][:, :, None, None]
    ### END SOLUTION
    return dx


def im2col(x, HH, WW, stride=1, pad=0, dilation=1):
    """Unfold every filter-sized window of a padded input into one column of a matrix.

    Inputs:
    - x: Input data of shape (N, C, H, W).
    - HH, WW: Filter height and width.
    - stride, pad, dilation: As in conv_param.

    Returns:
    - cols: Array of shape (C * HH * WW, N * H' * W'), with H', W' the output sizes given by
      conv_output_size. Row r = (c * HH + p) * WW + q (the order of w.reshape(F, -1)) and
      column k = (n * H' + i) * W' + j (the order of an (N, H', W') array raveled) hold
          cols[r, k] = xpad[n, c, i * stride + p * dilation, j * stride + q * dilation]
      with xpad the input zero-padded by `pad` on every side.

    Vectorized: no Python loop over output positions (a loop over the HH * WW filter taps is
    fine). Raises ValueError when the geometry does not tile (as conv_output_size).
    """
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    H_out = conv_output_size(H, HH, pad, stride, dilation)
    W_out = conv_output_size(W, WW, pad, stride, dilation)
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((C, HH, WW, N, H_out, W_out), dtype=x.dtype)
    for p in range(HH):
        top = p * dilation
        for q in range(WW):
            left = q * dilation
            # Tap (p, q) of every window at once: a strided slice of the padded input.
            tap = xpad[:, :, top:top + stride * (H_out - 1) + 1:stride,
                       left:left + stride * (W_out - 1) + 1:stride]
            cols[:, p, q] = tap.transpose(1, 0, 2, 3)
    cols = cols.reshape(C * HH * WW, N * H_out * W_out)
    ### END SOLUTION
    return cols


def col2im(cols, x_shape, HH, WW, stride=1, pad=0, dilation=1):
    """Fold columns back onto an image: the adjoint (transpose) of im2col.

    Inputs:
    - cols: Array of shape (C * HH * WW, N * H' * W'), laid out as im2col's output.
    - x_shape: The shape (N, C, H, W) of the image im2col was applied to.
    - HH, WW, stride, pad, dilation: As given to im2col.

    Returns:
    - x: Array of shape x_shape. Every entry of cols is added to the input position that
      im2col read it from; entries that fall on the padding are dropped. So a pixel covered by
      k windows receives the sum of k entries, and for all arrays a, c of matching shapes
      sum(im2col(a) * c) == sum(a * col2im(c)).

    Vectorized, like im2col. Raises ValueError when the geometry does not tile.
    """
    ### BEGIN SOLUTION
    N, C, H, W = x_shape
    H_out = conv_output_size(H, HH, pad, stride, dilation)
    W_out = conv_output_size(W, WW, pad, stride, dilation)
    taps = cols.reshape(C, HH, WW, N, H_out, W_out)
    xpad = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for p in range(HH):
        top = p * dilation
        for q in range(WW):
            left = q * dilation
            # Within one tap the windows never hit the same pixel, so += on the strided view
            # is exact; overlaps between taps add up across iterations.
            xpad[:, :, top:top + stride * (H_out - 1) + 1:stride,
                 left:left + stride * (W_out - 1) + 1:stride] += taps[:, p, q].transpose(1, 0, 2, 3)
    x = xpad[:, :, pad:pad + H, pad:pad + W]
    ### END SOLUTION
    return x


def conv_forward_im2col(x, w, b, conv_param):
    """Convolution forward pass, vectorized with im2col and one matrix product.

    Inputs and outputs as in conv_forward_naive (same out, to rounding); dtype follows the
    inputs (float32 in, float32 out).

    Returns a tuple of:
    - out: Output data of shape (N, F, H', W').
    - cache: Whatever conv_backward_im2col needs (for example x, w, b, conv_param and the
      im2col matrix, so it is not rebuilt).
    """
    stride, pad, dilation = _conv_params(conv_param)
    out, cache = None, None
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    cols = im2col(x, HH, WW, stride, pad, dilation)
    H_out = conv_output_size(H, HH, pad, stride, dilation)
    W_out = conv_output_size(W, WW, pad, stride, dilation)
    res = w.reshape(F, -1) @ cols + b[:, None]  # (F, N * H' * W')
    out = np.ascontiguousarray(res.reshape(F, N, H_out, W_out).transpose(1, 0, 2, 3))
    cache = (x, w, b, conv_param, cols)
    ### END SOLUTION
    return out, cache


def conv_backward_im2col(dout, cache):
    """Convolution backward pass, vectorized with col2im.

    Inputs:
    - dout: Upstream derivatives, of shape (N, F, H', W').
    - cache: The cache of the conv_forward_im2col call.

    Returns a tuple of (dx, dw, db), shaped like x, w and b.
    """
    dx, dw, db = None, None, None
    ### BEGIN SOLUTION
    x, w, b, conv_param, cols = cache
    stride, pad, dilation = _conv_params(conv_param)
    F, _, HH, WW = w.shape
    # The same (F, N * H' * W') layout as the forward product.
    dres = dout.transpose(1, 0, 2, 3).reshape(F, -1)
    db = dres.sum(axis=1)
    dw = (dres @ cols.T).reshape(w.shape)
    dcols = w.reshape(F, -1).T @ dres
    dx = col2im(dcols, x.shape, HH, WW, stride, pad, dilation)
    ### END SOLUTION
    return dx, dw, db

"""Layers for recurrent networks: vanilla RNN and LSTM cells, whole sequences, and the
time-distributed layers around them (word embedding, affine, softmax loss).

Shapes used throughout:
- N: batch size, T: number of time steps, D: input size, H: hidden size, V: vocabulary size,
  M: output size of a temporal affine layer.
- In the LSTM, the 4H axis of Wx, Wh and b holds the four gates in the order
  input (i), forget (f), output (o), candidate (g): columns [0:H], [H:2H], [2H:3H], [3H:4H].

Every forward function returns (out, cache); every backward function takes (dout, cache)
and returns the gradients of the loss with respect to the forward's inputs, in the order of
the forward's arguments. Only numpy is allowed.
"""
import numpy as np


def sigmoid(x):
    """Numerically stable logistic sigmoid, 1 / (1 + exp(-x)), elementwise.

    Inputs:
    - x: numpy array of any shape (float).

    Returns:
    - s: array of the same shape with values in [0, 1]. No overflow warning and no NaN for
      any finite input, however large (for example +-1000).
    """
    ### BEGIN SOLUTION
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    # exp is only ever taken of a non-positive number, so it lies in (0, 1] and cannot overflow.
    z = np.exp(-np.abs(x))
    s = np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
    return s.astype(x.dtype, copy=False)
    ### END SOLUTION


# --- vanilla RNN -------------------------------------------------------------------------------

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One time step of a vanilla RNN with a tanh nonlinearity:

        next_h = tanh(x @ Wx + prev_h @ Wh + b)

    Inputs:
    - x: input at this step, of shape (N, D)
    - prev_h: hidden state of the previous step, of shape (N, H)
    - Wx: input-to-hidden weights, of shape (D, H)
    - Wh: hidden-to-hidden weights, of shape (H, H)
    - b: bias, of shape (H,)

    Returns a tuple of:
    - next_h: next hidden state, of shape (N, H)
    - cache: whatever rnn_step_backward needs
    """
    next_h, cache = None, None
    ### BEGIN SOLUTION
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    ### END SOLUTION
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """Backward pass of one vanilla RNN step.

    Inputs:
    - dnext_h: upstream gradient of the loss with respect to next_h, of shape (N, H)
    - cache: the cache from rnn_step_forward

    Returns a tuple of:
    - dx: gradient with respect to x, of shape (N, D)
    - dprev_h: gradient with respect to prev_h, of shape (N, H)
    - dWx: gradient with respect to Wx, of shape (D, H)
    - dWh: gradient with respect to Wh, of shape (H, H)
    - db: gradient with respect to b, of shape (H,)
    """
    dx, dprev_h, dWx, dWh, db = None, None, None, None, None
    ### BEGIN SOLUTION
    x, prev_h, Wx, Wh, next_h = cache
    # d tanh(a) / da = 1 - tanh(a)^2, and tanh(a) is next_h, which is kept for this reason.
    da = dnext_h * (1.0 - next_h ** 2)
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    ### END SOLUTION
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """Run a vanilla RNN over a whole sequence of T steps (batch-major).

    Inputs:
    - x: input sequence, of shape (N, T, D)
    - h0: initial hidden state, of shape (N, H)
    - Wx: input-to-hidden weights, of shape (D, H)
    - Wh: hidden-to-hidden weights, of shape (H, H)
    - b: bias, of shape (H,)

    Returns a tuple of:
    - h: hidden states of every step, of shape (N, T, H); h[:, t] is the state after step t
    - cache: whatever rnn_backward needs
    """
    h, cache = None, None
    ### BEGIN SOLUTION
    N, T, _ = x.shape
    H = h0.shape[1]
    h = np.empty((N, T, H), dtype=np.result_type(x, h0, Wx, Wh, b))
    step_caches = []
    prev_h = h0
    for t in range(T):
        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        h[:, t] = prev_h
        step_caches.append(step_cache)
    cache = (step_caches, x.shape, h0.shape)
    ### END SOLUTION
    return h, cache


def rnn_backward(dh, cache):
    """Backpropagation through time for a vanilla RNN.

    Inputs:
    - dh: upstream gradients of the loss with respect to every hidden state, of shape
      (N, T, H). dh[:, t] is only the part that comes from outside the RNN (the layer above);
      the part that flows back from step t + 1 is added here.
    - cache: the cache from rnn_forward

    Returns a tuple of:
    - dx: gradient with respect to the inputs, of shape (N, T, D)
    - dh0: gradient with respect to the initial hidden state, of shape (N, H)
    - dWx: gradient with respect to Wx, of shape (D, H)
    - dWh: gradient with respect to Wh, of shape (H, H)
    - db: gradient with respect to b, of shape (H,)
    """
    dx, dh0, dWx, dWh, db = None, None, None, None, None
    ### BEGIN SOLUTION
    step_caches, x_shape, h0_shape = cache
    T = x_shape[1]
    dx = np.zeros(x_shape, dtype=dh.dtype)
    dWx = dWh = db = 0.0
    # Gradient reaching h_t from step t + 1 (none for the last step).
    dcarry = np.zeros(h0_shape, dtype=dh.dtype)
    for t in reversed(range(T)):
        dx_t, dcarry, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dcarry, step_caches[t])
        dx[:, t] = dx_t
        # The weights are shared by every step, so their gradients add up over time.
        dWx = dWx + dWx_t
        dWh = dWh + dWh_t
        db = db + db_t
    dh0 = dcarry
    ### END SOLUTION
    return dx, dh0, dWx, dWh, db


# --- LSTM --------------------------------------------------------------------------------------

def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One time step of an LSTM.

    With a = x @ Wx + prev_h @ Wh + b split along its last axis into four blocks of size H,
    in the order i, f, o, g:

        i = sigmoid(a_i)   f = sigmoid(a_f)   o = sigmoid(a_o)   g = tanh(a_g)
        next_c = f * prev_c + i * g
        next_h = o * tanh(next_c)

    Inputs:
    - x: input at this step, of shape (N, D)
    - prev_h: previous hidden state, of shape (N, H)
    - prev_c: previous cell state, of shape (N, H)
    - Wx: input-to-gates weights, of shape (D, 4H)
    - Wh: hidden-to-gates weights, of shape (H, 4H)
    - b: gate biases, of shape (4H,)

    Returns a tuple of:
    - next_h: next hidden state, of shape (N, H)
    - next_c: next cell state, of shape (N, H)
    - cache: whatever lstm_step_backward needs
    """
    next_h, next_c, cache = None, None, None
    ### BEGIN SOLUTION
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)
    ### END SOLUTION
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of one LSTM step.

    Inputs:
    - dnext_h: upstream gradient with respect to next_h, of shape (N, H)
    - dnext_c: upstream gradient with respect to next_c, of shape (N, H)
    - cache: the cache from lstm_step_forward

    Returns a tuple of:
    - dx: gradient with respect to x, of shape (N, D)
    - dprev_h: gradient with respect to prev_h, of shape (N, H)
    - dprev_c: gradient with respect to prev_c, of shape (N, H)
    - dWx: gradient with respect to Wx, of shape (D, 4H)
    - dWh: gradient with respect to Wh, of shape (H, 4H)
    - db: gradient with respect to b, of shape (4H,)
    """
    dx, dprev_h, dprev_c, dWx, dWh, db = None, None, None, None, None, None
    ### BEGIN SOLUTION
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    # next_c reaches the loss twice: directly (dnext_c) and through next_h = o * tanh(next_c).
    dc = dnext_c + dnext_h * o * (1.0 - tanh_c ** 2)
    di = dc * g
    df = dc * prev_c
    do = dnext_h * tanh_c
    dg = dc * i
    # Back through the nonlinearities: sigmoid' = s (1 - s), tanh' = 1 - tanh^2.
    da = np.concatenate(
        [di * i * (1.0 - i), df * f * (1.0 - f), do * o * (1.0 - o), dg * (1.0 - g ** 2)], axis=1
    )
    dprev_c = dc * f
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    ### END SOLUTION
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """Run an LSTM over a whole sequence of T steps (batch-major). The initial cell state is
    zero; the cell state is not returned.

    Inputs:
    - x: input sequence, of shape (N, T, D)
    - h0: initial hidden state, of shape (N, H)
    - Wx: input-to-gates weights, of shape (D, 4H)
    - Wh: hidden-to-gates weights, of shape (H, 4H)
    - b: gate biases, of shape (4H,)

    Returns a tuple of:
    - h: hidden states of every step, of shape (N, T, H)
    - cache: whatever lstm_backward needs
    """
    h, cache = None, None
    ### BEGIN SOLUTION
    N, T, _ = x.shape
    H = h0.shape[1]
    h = np.empty((N, T, H), dtype=np.result_type(x, h0, Wx, Wh, b))
    prev_h = h0
    prev_c = np.zeros_like(h0)
    step_caches = []
    for t in range(T):
        prev_h, prev_c, step_cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        step_caches.append(step_cache)
    cache = (step_caches, x.shape, h0.shape)
    ### END SOLUTION
    return h, cache


def lstm_backward(dh, cache):
    """Backpropagation through time for an LSTM.

    Inputs:
    - dh: upstream gradients with respect to every hidden state, of shape (N, T, H), from
      outside the LSTM only (as in rnn_backward)
    - cache: the cache from lstm_forward

    Returns a tuple of:
    - dx: gradient with respect to the inputs, of shape (N, T, D)
    - dh0: gradient with respect to the initial hidden state, of shape (N, H)
    - dWx: gradient with respect to Wx, of shape (D, 4H)
    - dWh: gradient with respect to Wh, of shape (H, 4H)
    - db: gradient with respect to b, of shape (4H,)
    """
    dx, dh0, dWx, dWh, db = None, None, None, None, None
    ### BEGIN SOLUTION
    step_caches, x_shape, h0_shape = cache
    T = x_shape[1]
    dx = np.zeros(x_shape, dtype=dh.dtype)
    dWx = dWh = db = 0.0
    dcarry_h = np.zeros(h0_shape, dtype=dh.dtype)
    # No loss reads the last cell state, so nothing flows into it from outside.
    dcarry_c = np.zeros(h0_shape, dtype=dh.dtype)
    for t in reversed(range(T)):
        dx_t, dcarry_h, dcarry_c, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh[:, t] + dcarry_h, dcarry_c, step_caches[t]
        )
        dx[:, t] = dx_t
        dWx = dWx + dWx_t
        dWh = dWh + dWh_t
        db = db + db_t
    # c0 is a constant zero, so its gradient (dcarry_c) is dropped.
    dh0 = dcarry_h
    ### END SOLUTION
    return dx, dh0, dWx, dWh, db


# --- time-distributed layers -------------------------------------------------------------------

def word_embedding_forward(x, W):
    """Look up word vectors: out[n, t] = W[x[n, t]].

    Inputs:
    - x: integer word indices, of shape (N, T), each in [0, V)
    - W: word vectors, of shape (V, D)

    Returns a tuple of:
    - out: the vectors, of shape (N, T, D)
    - cache: whatever word_embedding_backward needs
    """
    out, cache = None, None
    ### BEGIN SOLUTION
    out = W[x]
    cache = (x, W.shape)
    ### END SOLUTION
    return out, cache


def word_embedding_backward(dout, cache):
    """Backward pass of the word embedding. The indices are not differentiable, so only the
    gradient of W is returned.

    Inputs:
    - dout: upstream gradients, of shape (N, T, D)
    - cache: the cache from word_embedding_forward

    Returns:
    - dW: gradient with respect to W, of shape (V, D). A word that appears several times
      collects the sum of its gradients.
    """
    dW = None
    ### BEGIN SOLUTION
    x, W_shape = cache
    dW = np.zeros(W_shape, dtype=dout.dtype)
    # add.at accumulates over repeated indices; dW[x] += dout would keep only one of them.
    np.add.at(dW, x, dout)
    ### END SOLUTION
    return dW


def temporal_affine_forward(x, w, b):
    """An affine layer applied at every time step: out[n, t] = x[n, t] @ w + b.

    Inputs:
    - x: inputs, of shape (N, T, D)
    - w: weights, of shape (D, M)
    - b: biases, of shape (M,)

    Returns a tuple of:
    - out: outputs, of shape (N, T, M)
    - cache: whatever temporal_affine_backward needs
    """
    out, cache = None, None
    ### BEGIN SOLUTION
    out = x @ w + b
    cache = (x, w)
    ### END SOLUTION
    return out, cache


def temporal_affine_backward(dout, cache):
    """Backward pass of the temporal affine layer.

    Inputs:
    - dout: upstream gradients, of shape (N, T, M)
    - cache: the cache from temporal_affine_forward

    Returns a tuple of:
    - dx: gradient with respect to x, of shape (N, T, D)
    - dw: gradient with respect to w, of shape (D, M)
    - db: gradient with respect to b, of shape (M,)
    """
    dx, dw, db = None, None, None
    ### BEGIN SOLUTION
    x, w = cache
    D, M = w.shape
    dx = dout @ w.T
    # Every (n, t) pair is one more sample for the shared weights.
    dw = x.reshape(-1, D).T @ dout.reshape(-1, M)
    db = dout.reshape(-1, M).sum(axis=0)
    ### END SOLUTION
    return dx, dw, db


def temporal_softmax_loss(x, y, mask):
    """Softmax cross-entropy loss at every time step, for sequences of different lengths.

    The loss is summed over the time steps and averaged over the batch (divided by N, not by
    the number of unmasked steps). Steps where mask is False add nothing to the loss and get
    a zero gradient (they are padding after the end of a shorter sequence).

    Inputs:
    - x: scores, of shape (N, T, V)
    - y: correct classes, integers of shape (N, T), each in [0, V)
    - mask: booleans of shape (N, T); mask[n, t] says whether step t of sequence n counts

    Returns a tuple of:
    - loss: the loss, a float
    - dx: gradient of the loss with respect to x, of shape (N, T, V)
    """
    loss, dx = None, None
    ### BEGIN SOLUTION
    N, T, V = x.shape
    weight = np.asarray(mask, dtype=x.dtype).reshape(N * T)
    scores = x.reshape(N * T, V)
    labels = np.asarray(y).reshape(N * T)
    # Shifting by the row maximum leaves the softmax unchanged and keeps exp from overflowing.
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N * T)
    loss = float(-(weight * log_probs[rows, labels]).sum() / N)
    dscores = np.exp(log_probs)
    dscores[rows, labels] -= 1.0
    dscores *= weight[:, None] / N
    dx = dscores.reshape(N, T, V)
    ### END SOLUTION
    return loss, dx

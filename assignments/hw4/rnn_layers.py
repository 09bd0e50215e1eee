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
    # YOUR CODE HERE
    raise NotImplementedError


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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
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
    # YOUR CODE HERE
    raise NotImplementedError
    return loss, dx

"""Layers for fully-connected networks: forward and backward passes, in numpy.

Every forward function returns ``(out, cache)``: the output, and whatever the matching
backward function needs. Every backward function takes ``(dout, cache)``, where ``dout`` is the
gradient of the final scalar loss with respect to ``out``, and returns the gradients of that
loss with respect to each input of the forward function, in the order of those inputs.

Losses return ``(loss, dx)``: a Python float and the gradient of the loss with respect to the
scores ``x``.
"""
import numpy as np


# --------------------------------------------------------------------------------------------
# Affine (fully-connected) layer
# --------------------------------------------------------------------------------------------

def affine_forward(x, w, b):
    """Forward pass of an affine layer: out = x_flat @ w + b.

    Each example may have any shape (d_1, ..., d_k); it is flattened to a row of length
    D = d_1 * ... * d_k before the product.

    Inputs:
    - x: array of shape (N, d_1, ..., d_k), a minibatch of N examples
    - w: weights, of shape (D, M)
    - b: biases, of shape (M,)

    Returns a tuple of:
    - out: output, of shape (N, M)
    - cache: whatever affine_backward needs
    """
    out = None
    # YOUR CODE HERE
    raise NotImplementedError
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """Backward pass of an affine layer.

    Inputs:
    - dout: upstream gradient, of shape (N, M)
    - cache: the cache returned by affine_forward, (x, w, b)

    Returns a tuple of:
    - dx: gradient with respect to x, of shape (N, d_1, ..., d_k), the shape of x
    - dw: gradient with respect to w, of shape (D, M)
    - db: gradient with respect to b, of shape (M,)
    """
    x, w, b = cache
    dx, dw, db = None, None, None
    # YOUR CODE HERE
    raise NotImplementedError
    return dx, dw, db


# --------------------------------------------------------------------------------------------
# Elementwise activations
# --------------------------------------------------------------------------------------------

def relu_forward(x):
    """Forward pass of a rectified linear unit: out = max(x, 0), elementwise.

    Input:
    - x: array of any shape

    Returns a tuple of:
    - out: output, of the shape of x
    - cache: whatever relu_backward needs
    """
    out = None
    # YOUR CODE HERE
    raise NotImplementedError
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """Backward pass of a ReLU.

    Where x > 0 the gradient passes (dx = dout), where x < 0 it does not (dx = 0). At exactly
    x = 0 the ReLU has a kink: any value between 0 and dout (a slope in [0, 1]) is accepted
    there; 0 is the usual choice.

    Inputs:
    - dout: upstream gradient, of any shape
    - cache: the cache returned by relu_forward

    Returns:
    - dx: gradient with respect to x, of the shape of dout
    """
    x = cache
    dx = None
    # YOUR CODE HERE
    raise NotImplementedError
    return dx


def sigmoid_forward(x):
    """Forward pass of the logistic sigmoid: out = 1 / (1 + exp(-x)), elementwise.

    Must be accurate and free of overflow for large |x| (e.g. x = -50 gives about 1.9e-22,
    and x = +-1000 gives 0 and 1 without NaN).

    Input:
    - x: array of any shape

    Returns a tuple of:
    - out: output, of the shape of x, in [0, 1]
    - cache: whatever sigmoid_backward needs
    """
    out, cache = None, None
    # YOUR CODE HERE
    raise NotImplementedError
    return out, cache


def sigmoid_backward(dout, cache):
    """Backward pass of the sigmoid.

    Inputs:
    - dout: upstream gradient, of any shape
    - cache: the cache returned by sigmoid_forward

    Returns:
    - dx: gradient with respect to x, of the shape of dout
    """
    dx = None
    # YOUR CODE HERE
    raise NotImplementedError
    return dx


def tanh_forward(x):
    """Forward pass of the hyperbolic tangent, elementwise.

    Input:
    - x: array of any shape

    Returns a tuple of:
    - out: output, of the shape of x, in [-1, 1]
    - cache: whatever tanh_backward needs
    """
    out, cache = None, None
    # YOUR CODE HERE
    raise NotImplementedError
    return out, cache


def tanh_backward(dout, cache):
    """Backward pass of tanh.

    Inputs:
    - dout: upstream gradient, of any shape
    - cache: the cache returned by tanh_forward

    Returns:
    - dx: gradient with respect to x, of the shape of dout
    """
    dx = None
    # YOUR CODE HERE
    raise NotImplementedError
    return dx


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------

def softmax_loss(x, y):
    """Softmax cross-entropy loss, averaged over the minibatch.

    loss = (1/N) * sum_i -log( exp(x[i, y[i]]) / sum_j exp(x[i, j]) )

    Must stay finite for scores as large as 1e4.

    Inputs:
    - x: scores, of shape (N, C); x[i, j] is the score of class j for example i
    - y: labels, of shape (N,), integers with 0 <= y[i] < C

    Returns a tuple of:
    - loss: a float
    - dx: gradient of the loss with respect to x, of shape (N, C)
    """
    loss, dx = None, None
    # YOUR CODE HERE
    raise NotImplementedError
    return loss, dx


def mse_loss(x, y):
    """Squared-error loss for regression: half the squared error, summed over the outputs
    of an example and averaged over the minibatch.

    loss = (1 / (2N)) * sum_i sum_j (x[i, j] - y[i, j])**2

    Inputs:
    - x: predictions, of shape (N, D)
    - y: targets, with N * D entries: shape (N, D), or (N,) when D == 1. It is reshaped to
      the shape of x.

    Returns a tuple of:
    - loss: a float
    - dx: gradient of the loss with respect to x, of shape (N, D)
    """
    loss, dx = None, None
    # YOUR CODE HERE
    raise NotImplementedError
    return loss, dx


# --------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------

def dropout_forward(x, dropout_param):
    """Forward pass of inverted dropout.

    In training, each unit is kept with probability p, independently of the others, and the
    kept units are divided by p, so that the expected output equals x and test mode needs no
    rescaling. Draw the mask from numpy's global random generator (np.random), which is seeded
    for you with np.random.seed(seed) when dropout_param has a 'seed': the same seed must give
    the same mask, so that runs can be repeated. Any correct way of drawing it is accepted. In
    test mode the input passes through unchanged.

    Inputs:
    - x: input, of any shape
    - dropout_param: a dict with keys
      - 'p': the probability of KEEPING each unit, 0 < p <= 1
      - 'mode': 'train' or 'test'
      - 'seed' (optional): the seed of numpy's global random generator

    Returns a tuple of:
    - out: output, of the shape of x
    - cache: (dropout_param, mask); mask is None in test mode
    """
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])

    mask = None
    out = None
    if mode == "train":
        # YOUR CODE HERE
        raise NotImplementedError
    elif mode == "test":
        # YOUR CODE HERE
        raise NotImplementedError
    else:
        raise ValueError(f"dropout mode must be 'train' or 'test', got {mode!r}")

    cache = (dropout_param, mask)
    # The mask is float64; keep the caller's dtype (a float32 net stays float32).
    out = out.astype(x.dtype, copy=False)
    return out, cache


def dropout_backward(dout, cache):
    """Backward pass of inverted dropout.

    Inputs:
    - dout: upstream gradient, of any shape
    - cache: the cache returned by dropout_forward, (dropout_param, mask)

    Returns:
    - dx: gradient with respect to x, of the shape of dout
    """
    dropout_param, mask = cache
    mode = dropout_param["mode"]
    dx = None
    if mode == "train":
        # YOUR CODE HERE
        raise NotImplementedError
    elif mode == "test":
        dx = dout
    return dx


# --------------------------------------------------------------------------------------------
# Batch normalization
# --------------------------------------------------------------------------------------------

def batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of batch normalization over the features of a minibatch.

    In training, each feature (column) is normalized with the mean and the biased variance
    (dividing by N) of the minibatch, then scaled by gamma and shifted by beta:

        x_hat = (x - mean) / sqrt(var + eps);   out = gamma * x_hat + beta

    and the running statistics are updated IN PLACE in bn_param:

        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var  = momentum * running_var  + (1 - momentum) * var

    In test mode, the running statistics take the place of the minibatch ones and nothing is
    updated.

    Inputs:
    - x: data, of shape (N, D)
    - gamma: scale, of shape (D,)
    - beta: shift, of shape (D,)
    - bn_param: a dict with keys
      - 'mode': 'train' or 'test' (required)
      - 'eps': added to the variance for stability (default 1e-5)
      - 'momentum': weight of the old running value (default 0.9)
      - 'running_mean', 'running_var': arrays of shape (D,); zeros and ones are used when
        they are missing, and stored in bn_param

    Returns a tuple of:
    - out: output, of shape (N, D)
    - cache: whatever batchnorm_backward needs
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)

    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.ones(D, dtype=x.dtype))

    out, cache = None, None
    if mode == "train":
        # YOUR CODE HERE
        raise NotImplementedError
    elif mode == "test":
        # YOUR CODE HERE
        raise NotImplementedError
    else:
        raise ValueError(f"batchnorm mode must be 'train' or 'test', got {mode!r}")

    # Store the running statistics back (needed when they were missing, or rebound above).
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    """Backward pass of batch normalization (training mode).

    Inputs:
    - dout: upstream gradient, of shape (N, D)
    - cache: the cache returned by batchnorm_forward in training mode

    Returns a tuple of:
    - dx: gradient with respect to x, of shape (N, D)
    - dgamma: gradient with respect to gamma, of shape (D,)
    - dbeta: gradient with respect to beta, of shape (D,)
    """
    dx, dgamma, dbeta = None, None, None
    # YOUR CODE HERE
    raise NotImplementedError
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------------------------
# Convenience "sandwich" layers, given: they only chain the layers above.
# --------------------------------------------------------------------------------------------

def affine_relu_forward(x, w, b):
    """An affine layer followed by a ReLU.

    Inputs: x of shape (N, d_1, ..., d_k), w of shape (D, M), b of shape (M,).
    Returns a tuple of: out, of shape (N, M); cache for affine_relu_backward.
    """
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    """Backward pass of affine_relu_forward.

    Inputs: dout of shape (N, M); the cache from affine_relu_forward.
    Returns a tuple of: dx (shape of x), dw of shape (D, M), db of shape (M,).
    """
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)

"""hw6: a small neural-network library on top of your engine, and two training runs.

Layers hold their parameters as Tensors with requires_grad=True; calling a layer on a Tensor
builds the graph; loss.backward() fills every parameter's .grad; an optimizer updates .data.
"""
from __future__ import annotations

import numpy as np

from engine import Tensor, cross_entropy, no_grad


def he_init(fan_in, fan_out, seed=0):
    """He (Kaiming) initialization for a weight matrix followed by a ReLU.

    Inputs: fan_in, fan_out (ints); seed (int).
    Returns: a (fan_in, fan_out) float64 array of independent normal entries with mean 0 and
    variance 2 / fan_in, drawn with np.random.default_rng(seed).standard_normal.
    """
    # YOUR CODE HERE
    raise NotImplementedError


def xavier_init(fan_in, fan_out, seed=0):
    """Xavier (Glorot) uniform initialization for a weight matrix followed by tanh, sigmoid or
    nothing.

    Returns: a (fan_in, fan_out) float64 array of independent entries drawn uniformly from
    [-a, a] with a = sqrt(6 / (fan_in + fan_out)), so that their variance is
    2 / (fan_in + fan_out), drawn with np.random.default_rng(seed).uniform.
    """
    # YOUR CODE HERE
    raise NotImplementedError


class Linear:
    """out = x @ W + b for x of shape (N, fan_in); out has shape (N, fan_out).

    Attributes: W, a (fan_in, fan_out) Tensor, and b, a (fan_out,) Tensor of zeros, both with
    requires_grad=True. W is he_init(fan_in, fan_out, seed) (init="he") or
    xavier_init(fan_in, fan_out, seed) (init="xavier").
    """

    def __init__(self, fan_in, fan_out, init="he", seed=0):
        if init not in ("he", "xavier"):
            raise ValueError(f"init must be 'he' or 'xavier', got {init!r}")
        # YOUR CODE HERE
        raise NotImplementedError

    def __call__(self, x):
        # YOUR CODE HERE
        raise NotImplementedError

    def parameters(self):
        """[W, b]."""
        return [self.W, self.b]


class MLP:
    """Linear -> ReLU -> ... -> Linear: a hidden layer of each size in hidden_dims, each
    followed by a ReLU, then a last Linear to output_dim scores (no activation after it).

    Layer k (counting from 0) is Linear(sizes[k], sizes[k + 1], init="he", seed=seed + k) with
    sizes = [input_dim, *hidden_dims, output_dim]; self.layers is the list of them.
    """

    def __init__(self, input_dim, hidden_dims, output_dim, seed=0):
        # YOUR CODE HERE
        raise NotImplementedError

    def __call__(self, x):
        """x: an (N, input_dim) Tensor (or array). Returns the (N, output_dim) scores Tensor."""
        # YOUR CODE HERE
        raise NotImplementedError

    def parameters(self):
        """Every parameter, layer by layer: [W0, b0, W1, b1, ...]."""
        return [p for layer in self.layers for p in layer.parameters()]

    def predict(self, X):
        """The scores for an (N, input_dim) array X as an (N, output_dim) array, computed under
        no_grad (no graph is kept)."""
        # YOUR CODE HERE
        raise NotImplementedError


class SGD:
    """Minibatch SGD with (heavy-ball) momentum, the update of hw3's sgd_momentum, for each
    parameter p with its own velocity v (zeros at first):

        v <- momentum * v - lr * p.grad
        p.data <- p.data + v

    A parameter whose .grad is None is left as it is (its velocity too).
    """

    def __init__(self, params, lr=0.01, momentum=0.9):
        self.params = list(params)
        self.lr = lr
        self.momentum = momentum
        self.velocities = [np.zeros_like(p.data) for p in self.params]

    def step(self):
        """Update every parameter's .data in place of the old array (p.data = new array)."""
        # YOUR CODE HERE
        raise NotImplementedError

    def zero_grad(self):
        """Every parameter's .grad becomes None."""
        for p in self.params:
            p.zero_grad()


def train(model, X, y, loss_fn, lr=0.01, momentum=0.9, epochs=10, batch_size=64, seed=0):
    """Train model with SGD(model.parameters(), lr, momentum) on minibatches.

    Each epoch visits the examples in a new random order, from
    np.random.default_rng(seed).permutation (one generator for the whole run), in minibatches
    of batch_size (the last may be smaller). For each minibatch: zero the gradients, compute
    loss = loss_fn(model(Tensor(X_batch)), y_batch), call loss.backward(), take a step.

    Inputs:
    - model: an MLP (anything with __call__ and parameters())
    - X: (N, D) array; y: (N,) array of targets
    - loss_fn: (scores Tensor, targets array) -> 0-d loss Tensor
    Returns: a list of `epochs` floats, the mean minibatch loss of each epoch (each minibatch
    weighted by its size).
    """
    # YOUR CODE HERE
    raise NotImplementedError


def mse_loss(pred, y):
    """Half the mean squared error of (N, 1) predictions against (N,) targets (given):
    0.5 * mean((pred[:, 0] - y) ** 2), a 0-d Tensor."""
    diff = pred.reshape(-1) - Tensor(y)
    return 0.5 * (diff * diff).mean()


def train_regression(X, y, hidden_dims=(32, 32), lr=0.01, momentum=0.9, epochs=30, batch_size=32, seed=0):
    """hw1's house-price regression in your engine: MLP(D, hidden_dims, 1, seed=seed) trained
    with train(..., loss_fn=mse_loss). Returns (model, history)."""
    # YOUR CODE HERE
    raise NotImplementedError


def fit_digits(X, y, hidden_dims=(128,), lr=0.05, momentum=0.9, epochs=5, batch_size=64, seed=0):
    """The MNIST digits of hw5 in your engine: MLP(784, hidden_dims, 10, seed=seed) trained with
    train(..., loss_fn=cross_entropy) on (N, 784) pixels in [0, 1] and (N,) labels 0..9.
    Returns (model, history)."""
    # YOUR CODE HERE
    raise NotImplementedError

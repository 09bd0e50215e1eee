"""First-order update rules, gradient clipping and learning-rate schedules.

Every update rule has the same interface:

    next_w, config = update(w, dw, config=None)

Inputs:
- w: A numpy array of parameters, of any shape.
- dw: A numpy array of the same shape as w: the gradient of the loss with respect to w.
- config: A dictionary of hyperparameters (learning rate, momentum, ...) and of the state the
  rule carries from one step to the next (velocity, caches, step count). None means "all
  defaults, no state yet"; a dictionary that lacks some keys gets the defaults for those keys.

Returns a tuple of:
- next_w: A new array of w's shape: the parameters after one step.
- config: The dictionary to pass to the next call of the same rule; it holds every
  hyperparameter and the updated state.

Neither w nor dw is modified. All state arrays have w's shape and start at zero.
"""
import math

import numpy as np


def _fill_defaults(config, defaults):
    """config with every key of defaults that it lacks set (the given dict, or a new one)."""
    if config is None:
        config = {}
    for key, value in defaults.items():
        config.setdefault(key, value)
    return config


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: w <- w - learning_rate * dw.

    config:
    - learning_rate: Scalar step size (default 1e-2).
    """
    config = _fill_defaults(config, {"learning_rate": 1e-2})
    ### BEGIN SOLUTION
    next_w = w - config["learning_rate"] * dw
    ### END SOLUTION
    return next_w, config


def sgd_momentum(w, dw, config=None):
    """SGD with (heavy-ball) momentum.

        v <- momentum * v - learning_rate * dw
        w <- w + v

    config:
    - learning_rate: Scalar step size (default 1e-2).
    - momentum: Scalar in [0, 1): the fraction of the velocity kept (default 0.9).
    - velocity: Array of w's shape; the running velocity (default zeros).
    """
    config = _fill_defaults(config, {"learning_rate": 1e-2, "momentum": 0.9})
    if config.get("velocity") is None:
        config["velocity"] = np.zeros_like(w, dtype=np.float64)
    ### BEGIN SOLUTION
    v = config["momentum"] * config["velocity"] - config["learning_rate"] * dw
    next_w = w + v
    config["velocity"] = v
    ### END SOLUTION
    return next_w, config


def nesterov_momentum(w, dw, config=None):
    """Nesterov momentum, written in terms of the look-ahead point.

        v_old = v
        v <- momentum * v - learning_rate * dw
        w <- w - momentum * v_old + (1 + momentum) * v

    Here w is the point where the gradient dw was taken (the "look-ahead" parameters), which is
    why the rule needs only dw at w, like the other rules.

    config:
    - learning_rate: Scalar step size (default 1e-2).
    - momentum: Scalar in [0, 1) (default 0.9).
    - velocity: Array of w's shape; the running velocity (default zeros).
    """
    config = _fill_defaults(config, {"learning_rate": 1e-2, "momentum": 0.9})
    if config.get("velocity") is None:
        config["velocity"] = np.zeros_like(w, dtype=np.float64)
    ### BEGIN SOLUTION
    rho = config["momentum"]
    v_old = config["velocity"]
    v = rho * v_old - config["learning_rate"] * dw
    next_w = w - rho * v_old + (1 + rho) * v
    config["velocity"] = v
    ### END SOLUTION
    return next_w, config


def adagrad(w, dw, config=None):
    """AdaGrad: a per-coordinate step size that shrinks with the gradients seen so far.

        cache <- cache + dw**2
        w <- w - learning_rate * dw / (sqrt(cache) + epsilon)

    config:
    - learning_rate: Scalar step size (default 1e-2).
    - epsilon: Small scalar added to the root, outside it, to avoid dividing by zero
      (default 1e-7).
    - cache: Array of w's shape; the sum of squared gradients (default zeros).
    """
    config = _fill_defaults(config, {"learning_rate": 1e-2, "epsilon": 1e-7})
    if config.get("cache") is None:
        config["cache"] = np.zeros_like(w, dtype=np.float64)
    ### BEGIN SOLUTION
    cache = config["cache"] + dw * dw
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    config["cache"] = cache
    ### END SOLUTION
    return next_w, config


def rmsprop(w, dw, config=None):
    """RMSProp: AdaGrad with a leaky (exponentially decaying) average of squared gradients.

        cache <- decay_rate * cache + (1 - decay_rate) * dw**2
        w <- w - learning_rate * dw / (sqrt(cache) + epsilon)

    config:
    - learning_rate: Scalar step size (default 1e-2).
    - decay_rate: Scalar in [0, 1): how much of the old average is kept (default 0.99).
    - epsilon: Small scalar added to the root, outside it (default 1e-8).
    - cache: Array of w's shape; the moving average of squared gradients (default zeros).
    """
    config = _fill_defaults(
        config, {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8}
    )
    if config.get("cache") is None:
        config["cache"] = np.zeros_like(w, dtype=np.float64)
    ### BEGIN SOLUTION
    rate = config["decay_rate"]
    cache = rate * config["cache"] + (1 - rate) * dw * dw
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    config["cache"] = cache
    ### END SOLUTION
    return next_w, config


def adam(w, dw, config=None):
    """Adam: momentum on the gradient (m) and RMSProp scaling (v), both bias-corrected.

        t <- t + 1
        m <- beta1 * m + (1 - beta1) * dw
        v <- beta2 * v + (1 - beta2) * dw**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        w <- w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    t counts the steps taken, this one included: it is incremented before the bias correction,
    so the first step uses t = 1.

    config:
    - learning_rate: Scalar step size (default 1e-3).
    - beta1: Decay rate of the first moment m (default 0.9).
    - beta2: Decay rate of the second moment v (default 0.999).
    - epsilon: Small scalar added to the root, outside it (default 1e-8).
    - m: Array of w's shape; moving average of the gradient (default zeros).
    - v: Array of w's shape; moving average of the squared gradient (default zeros).
    - t: Integer, the number of steps taken before this one (default 0).
    """
    config = _fill_defaults(
        config,
        {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 0},
    )
    for key in ("m", "v"):
        if config.get(key) is None:
            config[key] = np.zeros_like(w, dtype=np.float64)
    ### BEGIN SOLUTION
    beta1, beta2 = config["beta1"], config["beta2"]
    t = config["t"] + 1
    m = beta1 * config["m"] + (1 - beta1) * dw
    v = beta2 * config["v"] + (1 - beta2) * dw * dw
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    config["m"], config["v"], config["t"] = m, v, t
    ### END SOLUTION
    return next_w, config


def clip_grad_norm(grads, max_norm):
    """Rescale a set of gradients so that their global L2 norm is at most max_norm.

    The global norm treats all the arrays as one long vector:

        total_norm = sqrt(sum over names k of sum(grads[k]**2))

    When total_norm > max_norm every array is multiplied by max_norm / total_norm, so the
    direction of the update is kept and only its length changes. Otherwise (including all-zero
    gradients, whose norm is 0) the gradients are returned unchanged.

    Inputs:
    - grads: Dictionary name -> numpy array (any shapes).
    - max_norm: Positive scalar.

    Returns a tuple of:
    - clipped: A new dictionary with the same keys; new arrays of the same shapes. The input
      dictionary and its arrays are not modified.
    - total_norm: Python float, the global norm of the gradients before clipping.
    """
    ### BEGIN SOLUTION
    total_norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
    # Only a norm above the limit is touched; this also keeps a zero gradient away from 0 / 0.
    scale = max_norm / total_norm if total_norm > max_norm else 1.0
    # Multiplying makes new arrays, so the caller's gradients are left as they were.
    clipped = {name: np.asarray(g) * scale for name, g in grads.items()}
    ### END SOLUTION
    return clipped, total_norm


def step_decay(lr0, epoch, drop=0.5, every=10):
    """Step decay: the learning rate is multiplied by `drop` once every `every` epochs.

        lr(epoch) = lr0 * drop ** floor(epoch / every)

    Inputs:
    - lr0: Learning rate of epoch 0.
    - epoch: Integer >= 0, the epoch (counted from 0).
    - drop: Factor applied at each drop (default 0.5).
    - every: Positive integer, epochs between drops (default 10).

    Returns: the learning rate for that epoch, a Python float.
    """
    ### BEGIN SOLUTION
    return float(lr0 * drop ** (epoch // every))
    ### END SOLUTION


def cosine_schedule(lr0, epoch, total_epochs, lr_min=0.0):
    """Cosine annealing from lr0 at epoch 0 down to lr_min at epoch total_epochs.

        lr(epoch) = lr_min + (lr0 - lr_min) * (1 + cos(pi * epoch / total_epochs)) / 2

    Epochs after total_epochs stay at lr_min.

    Inputs:
    - lr0: Learning rate of epoch 0.
    - epoch: Integer >= 0, the epoch (counted from 0).
    - total_epochs: Positive integer, the epoch at which lr_min is reached.
    - lr_min: The final learning rate (default 0).

    Returns: the learning rate for that epoch, a Python float.
    """
    ### BEGIN SOLUTION
    progress = min(epoch, total_epochs) / total_epochs
    return float(lr_min + (lr0 - lr_min) * (1 + math.cos(math.pi * progress)) / 2)
    ### END SOLUTION

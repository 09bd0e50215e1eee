"""House prices: a small regression trained with FullyConnectedNet and minibatch SGD.

make_house_data (given) builds a synthetic data set; you write train_regression.
"""
import numpy as np

from fc_net import FullyConnectedNet

FEATURES = ("area", "rooms", "age", "distance")


def make_house_data(n_train=800, n_test=200, seed=0):
    """A synthetic house-price data set, the same for the same arguments. (Given.)

    Each house has four features: living area in square metres, number of rooms, age in years
    and distance to the city centre in km. Its price (in thousands) is a nonlinear function of
    them plus Gaussian noise: it grows with area, less than linearly, and a square metre is worth
    more near the centre (falling off with distance, fastest close in); rooms add value up to
    a point; old houses lose value, except that very old ones regain some.

    Features and prices are standardized with the mean and standard deviation of the training
    split, so that a network with a small weight_scale starts in a sensible range.

    Inputs:
    - n_train, n_test: number of houses in each split
    - seed: seed of the generator

    Returns a dict with:
    - 'X_train' of shape (n_train, 4), 'y_train' of shape (n_train,),
      'X_test' of shape (n_test, 4), 'y_test' of shape (n_test,): standardized, float64
    - 'x_mean', 'x_std' of shape (4,), 'y_mean', 'y_std' (floats): to undo the scaling
    - 'features': the feature names, in column order
    """
    rs = np.random.RandomState(seed)
    n = n_train + n_test
    area = rs.uniform(30.0, 250.0, n)
    rooms = np.clip(np.round(area / 30.0 + rs.normal(0.0, 1.0, n)), 1, 10)
    age = rs.uniform(0.0, 100.0, n)
    distance = rs.exponential(8.0, n)

    price = (
        np.sqrt(area) * (25.0 + 60.0 * np.exp(-distance / 6.0))
        + 30.0 * rooms - 4.0 * (rooms - 5.0) ** 2
        - 5.0 * age + 0.045 * age ** 2
        + rs.normal(0.0, 30.0, n)
    )

    X = np.stack([area, rooms, age, distance], axis=1)
    X_train, X_test = X[:n_train], X[n_train:]
    y_train, y_test = price[:n_train], price[n_train:]
    x_mean, x_std = X_train.mean(axis=0), X_train.std(axis=0)
    y_mean, y_std = float(y_train.mean()), float(y_train.std())
    return {
        "X_train": (X_train - x_mean) / x_std,
        "y_train": (y_train - y_mean) / y_std,
        "X_test": (X_test - x_mean) / x_std,
        "y_test": (y_test - y_mean) / y_std,
        "x_mean": x_mean,
        "x_std": x_std,
        "y_mean": y_mean,
        "y_std": y_std,
        "features": FEATURES,
    }


def r2_score(y_true, y_pred):
    """Coefficient of determination, 1 - SS_res / SS_tot. (Given.)

    Inputs: y_true and y_pred with N entries each (any shapes; they are flattened).
    Returns: a float; 1 is a perfect fit, 0 is no better than predicting the mean.
    """
    y_true = np.ravel(y_true)
    y_pred = np.ravel(y_pred)
    ss_res = np.sum((y_true - y_pred) ** 2)
    ss_tot = np.sum((y_true - y_true.mean()) ** 2)
    return float(1.0 - ss_res / ss_tot)


def train_regression(X, y, hidden_dims=(32, 32), lr=0.05, epochs=40, batch_size=32,
                     seed=0, reg=0.0, weight_scale=0.3):
    """Train a FullyConnectedNet regressor with plain minibatch SGD.

    Build FullyConnectedNet(hidden_dims, input_dim=D, num_classes=1, loss_type='mse',
    reg=reg, weight_scale=weight_scale, dtype=np.float64, seed=seed). Then, for each epoch,
    visit the training examples in a new random order (use np.random.RandomState(seed) for
    the shuffles), in minibatches of batch_size (the last one may be smaller); for each
    minibatch compute (loss, grads) = model.loss(X_batch, y_batch) and update every
    parameter in place: params[k] -= lr * grads[k].

    Inputs:
    - X: training inputs, of shape (N, D)
    - y: training targets, of shape (N,)
    - hidden_dims: sizes of the hidden layers
    - lr: learning rate
    - epochs: number of passes over the data
    - batch_size: examples per minibatch
    - seed: seed of the initialization and of the shuffles
    - reg: L2 strength
    - weight_scale: standard deviation of the initial weights

    Returns a tuple of:
    - model: the trained FullyConnectedNet
    - loss_history: list of `epochs` floats; entry e is the mean of the minibatch losses
      during epoch e
    """
    model, loss_history = None, []
    # YOUR CODE HERE
    raise NotImplementedError
    return model, loss_history

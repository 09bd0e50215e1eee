"""Visible tests for fc_net.py: parameters, scores, loss and gradients of FullyConnectedNet."""
import numpy as np
import pytest

from autograder.gradcheck import EntryFunction, assert_close, check_gradients


def check_net_gradients(model, X, y, threshold=1e-6):
    """Check every gradient that model.loss returns against numerical gradients of the loss.

    Returns the loss, for the caller to check: numerical gradients of a wrong loss (one that
    is always zero, say) agree with gradients that are wrong the same way.
    """
    # Biases start at 0, so an example whose hidden units are all off (ReLU or dropout)
    # would put the next layer exactly on the ReLU kink; small random biases avoid that.
    shift = np.random.default_rng(7)
    for name in sorted(model.params):
        if name.startswith("b") and name[1:].isdigit():
            model.params[name] = 0.1 * shift.standard_normal(np.shape(model.params[name]))
    loss, grads = model.loss(X, y)
    assert sorted(grads) == sorted(model.params), (
        f"grads must have the keys of params {sorted(model.params)}, got {sorted(grads)}"
    )
    for name in sorted(grads):
        if name.startswith("b") and f"gamma{name[1:]}" in model.params:
            # A bias right before batchnorm is cancelled by the mean subtraction: its true
            # gradient is 0, which a relative-error check cannot judge, so check it directly.
            worst = float(np.max(np.abs(grads[name])))
            assert worst < 1e-8, (
                f"gradient d{name} should be 0 (the bias is removed by batchnorm's mean), "
                f"got an entry of size {worst:.3e}"
            )
            continue
        original = model.params[name]
        # The loss as a function of params[name] (set it, call model.loss).
        loss_of = EntryFunction(model.params, name, model.loss, X, y)
        try:
            check_gradients(loss_of, {name: original}, {name: grads[name]}, output=0, threshold=threshold)
        finally:
            model.params[name] = original
    return loss


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
    # The order the docstring specifies: W1, then W2, then W3, each weight_scale * randn.
    np.random.seed(7)
    for i, shape in enumerate([(5, 4), (4, 3), (3, 2)], start=1):
        assert_close(model.params[f"W{i}"], 0.5 * np.random.randn(*shape), name=f"W{i}")


def test_fc_net_scores_golden(student):
    model = student.FullyConnectedNet([4, 3], input_dim=5, num_classes=2, weight_scale=0.5,
                                      dtype=np.float64, seed=7)
    X = np.linspace(-1.0, 1.0, 15).reshape(3, 5)
    scores = model.loss(X)
    expected = np.array([[-0.47659867756957597, 0.5786116655650236],
                         [-0.05192736142181487, 0.016839588617381267],
                         [-0.8095871058992953, 0.21244756371354453]])
    assert_close(scores, expected, name="scores (y=None)")
    loss, _ = model.loss(X, np.array([0, 1, 1]))
    assert_close(loss, 0.7735528987178606, name="loss")


def test_fc_net_initial_loss(student, rng):
    # With tiny weights every class gets probability about 1/C: the loss is about log(C).
    model = student.FullyConnectedNet([20], input_dim=8, num_classes=10, weight_scale=1e-4,
                                      dtype=np.float64, seed=1)
    loss, _ = model.loss(rng.standard_normal((16, 8)), rng.integers(0, 10, 16))
    assert abs(loss - np.log(10)) < 1e-3, f"initial loss {loss:.5f}, expected about log(10) = 2.30259"


def test_fc_net_l2_penalty(student):
    data = np.random.default_rng(5)
    X = data.standard_normal((4, 5))
    y = data.integers(0, 3, 4)
    plain = student.FullyConnectedNet([6], input_dim=5, num_classes=3, weight_scale=0.3,
                                      dtype=np.float64, seed=3)
    reg = student.FullyConnectedNet([6], input_dim=5, num_classes=3, weight_scale=0.3,
                                    dtype=np.float64, seed=3, reg=0.7)
    # The data loss itself, computed once from a correct solution: a penalty added to a wrong
    # loss is no L2 penalty.
    assert_close(plain.loss(X, y)[0], 1.0826439511309416, name="loss with reg=0")
    W1, W2 = plain.params["W1"], plain.params["W2"]
    penalty = 0.5 * 0.7 * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    assert_close(reg.loss(X, y)[0], plain.loss(X, y)[0] + penalty,
                 name="loss with reg=0.7 (data loss + 0.5 * reg * sum of W**2)")


# Each config with the loss a correct solution gives on the inputs of the test (computed once).
@pytest.mark.parametrize("config, expected_loss", [
    ({}, 1.1484003702406465),
    ({"reg": 0.5}, 3.775241919381059),
    ({"normalization": "batchnorm"}, 1.2510849794345364),
    ({"loss_type": "mse", "num_classes": 2}, 0.4045719207319302),
], ids=["plain", "reg", "batchnorm", "mse"])
def test_fc_net_gradcheck(student, config, expected_loss):
    config = dict(config)
    num_classes = config.pop("num_classes", 3)
    model = student.FullyConnectedNet([5, 4], input_dim=4, num_classes=num_classes,
                                      weight_scale=0.5, dtype=np.float64, seed=11, **config)
    data = np.random.default_rng(2024)
    X = data.standard_normal((5, 4))
    if config.get("loss_type") == "mse":
        y = data.standard_normal((5, num_classes))
    else:
        y = data.integers(0, num_classes, 5)
    loss = check_net_gradients(model, X, y)
    assert_close(loss, expected_loss, name=f"loss (config {config})", threshold=1e-8)

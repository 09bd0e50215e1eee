"""Visible tests for layers.py: run them with `pytest assignments/hw1` (or `-m affine`, ...).

Expected values are either closed-form or were computed once from a correct solution on the
fixed inputs below. Backward passes are checked against numerical gradients of your forward
pass, so each gradient check first checks that forward pass on the same inputs: a wrong
forward (all zeros, say) with a backward to match would agree with its own numerical
gradients.
"""
import numpy as np
import pytest

from autograder.gradcheck import assert_close, check_gradients


def away_from_zero(rng, shape, margin=0.1):
    """Random values with |x| >= margin, so that no ReLU sits on its kink."""
    return rng.uniform(margin, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


# --- affine ---------------------------------------------------------------------------------

def test_affine_forward_golden(student):
    x = np.linspace(-0.4, 0.6, 12).reshape(2, 2, 3)
    w = np.linspace(-0.25, 0.35, 18).reshape(6, 3)
    b = np.array([0.1, -0.2, 0.05])
    out, _ = student.affine_forward(x, w, b)
    expected = np.array([[0.2532085561497326, -0.08336898395721927, 0.1300534759358289],
                         [0.301336898395722, 0.08026737967914438, 0.40919786096256683]])
    assert_close(out, expected, name="affine_forward out")


def test_affine_backward_gradcheck(student, rng):
    x = rng.standard_normal((3, 2, 2))
    w = rng.standard_normal((4, 5))
    b = rng.standard_normal(5)
    dout = rng.standard_normal((3, 5))
    out, cache = student.affine_forward(x, w, b)
    assert_close(out, x.reshape(3, -1) @ w + b,
                 name="affine_forward out (inputs of the gradient check)")
    dx, dw, db = student.affine_backward(dout, cache)
    check_gradients(student.affine_forward, {"x": x, "w": w, "b": b},
                    {"x": dx, "w": dw, "b": db}, dout=dout, output=0, threshold=1e-7)


# --- activations ----------------------------------------------------------------------------

X_ACT = np.linspace(-2.0, 2.5, 8).reshape(2, 4)  # no entry at 0


def test_relu_forward_golden(student):
    out, _ = student.relu_forward(X_ACT)
    assert_close(out, np.maximum(X_ACT, 0.0), name="relu_forward out")


def test_relu_backward_gradcheck(student, rng):
    x = away_from_zero(rng, (4, 5))
    dout = rng.standard_normal((4, 5))
    out, cache = student.relu_forward(x)
    assert_close(out, np.maximum(x, 0.0), name="relu_forward out (inputs of the gradient check)")
    dx = student.relu_backward(dout, cache)
    check_gradients(student.relu_forward, {"x": x}, {"x": dx}, dout=dout, output=0)


def test_sigmoid_forward_golden(student):
    out, _ = student.sigmoid_forward(X_ACT)
    expected = np.array(
        [[0.11920292202211755, 0.20470505527196248, 0.32865254651727005, 0.4821504455938654],
         [0.6390927451628513, 0.771056378226556, 0.8649635770771977, 0.9241418199787566]])
    assert_close(out, expected, name="sigmoid_forward out")


def test_sigmoid_backward_gradcheck(student, rng):
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    out, cache = student.sigmoid_forward(x)
    assert_close(out, 1.0 / (1.0 + np.exp(-x)),
                 name="sigmoid_forward out (inputs of the gradient check)")
    dx = student.sigmoid_backward(dout, cache)
    check_gradients(student.sigmoid_forward, {"x": x}, {"x": dx}, dout=dout, output=0)


def test_sigmoid_extreme_inputs(student):
    # sigmoid(-50) = 1.93e-22 must keep its relative precision; +-1000 must not give NaN.
    out, _ = student.sigmoid_forward(np.array([-50.0, 50.0, -1000.0, 1000.0]))
    assert np.all(np.isfinite(out)), f"sigmoid of [-50, 50, -1000, 1000] gave {out}: no inf/NaN"
    assert_close(out[0], 1.9287498479639178e-22, name="sigmoid(-50)")
    assert_close(out[1:], [1.0, 0.0, 1.0], name="sigmoid([50, -1000, 1000])")


def test_tanh_forward_golden(student):
    out, _ = student.tanh_forward(X_ACT)
    expected = np.array(
        [[-0.9640275800758169, -0.8757287338271407, -0.6133572603953825, -0.07130734166794292],
         [0.51640765518518, 0.8379604626693843, 0.9524141152036708, 0.9866142981514303]])
    assert_close(out, expected, name="tanh_forward out")


def test_tanh_backward_gradcheck(student, rng):
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    out, cache = student.tanh_forward(x)
    assert_close(out, np.tanh(x), name="tanh_forward out (inputs of the gradient check)")
    dx = student.tanh_backward(dout, cache)
    check_gradients(student.tanh_forward, {"x": x}, {"x": dx}, dout=dout, output=0)


# --- losses ---------------------------------------------------------------------------------

def test_softmax_loss_golden(student):
    x = np.linspace(-1.0, 2.0, 12).reshape(3, 4)
    y = np.array([0, 3, 1])
    loss, dx = student.softmax_loss(x, y)
    assert_close(loss, 1.477755746103479, name="softmax_loss loss")
    expected_dx = np.array(
        [[-0.2804678371195133, 0.06944104736790244, 0.09121372927339877, 0.11981306047821207],
         [0.05286549621382006, 0.06944104736790244, 0.09121372927339877, -0.21352027285512123],
         [0.05286549621382006, -0.2638922859654309, 0.09121372927339877, 0.1198130604782121]])
    assert_close(dx, expected_dx, name="softmax_loss dx")


@pytest.mark.parametrize("num_classes", [2, 10])
def test_softmax_loss_uniform_scores(student, num_classes):
    # Equal scores give every class probability 1/C, so the loss is log(C).
    loss, _ = student.softmax_loss(np.full((5, num_classes), 3.0), np.arange(5) % num_classes)
    assert_close(loss, np.log(num_classes), name=f"softmax_loss of equal scores (C={num_classes})")


def test_softmax_loss_gradcheck(student, rng):
    x = rng.standard_normal((4, 5))
    y = rng.integers(0, 5, 4)
    loss, dx = student.softmax_loss(x, y)
    # The formula of the docstring, fine for scores this small.
    probs = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert_close(loss, -np.mean(np.log(probs[np.arange(4), y])),
                 name="softmax_loss loss (inputs of the gradient check)")
    check_gradients(student.softmax_loss, {"x": x, "y": y}, {"x": dx}, output=0)


def test_mse_loss_golden(student):
    x = np.linspace(-1.0, 1.0, 6).reshape(3, 2)
    y = np.array([[0.5, -0.5], [0.0, 1.0], [2.0, 0.25]])
    loss, dx = student.mse_loss(x, y)
    assert_close(loss, 0.9104166666666665, name="mse_loss loss")
    expected_dx = np.array([[-0.5, -0.033333333333333326],
                            [-0.06666666666666665, -0.2666666666666666],
                            [-0.4666666666666666, 0.25]])
    assert_close(dx, expected_dx, name="mse_loss dx")


def test_mse_loss_gradcheck(student, rng):
    x = rng.standard_normal((4, 3))
    y = rng.standard_normal((4, 3))
    loss, dx = student.mse_loss(x, y)
    assert_close(loss, 0.5 * np.sum((x - y) ** 2) / 4,
                 name="mse_loss loss (inputs of the gradient check)")
    check_gradients(student.mse_loss, {"x": x, "y": y}, {"x": dx}, output=0)


# --- dropout --------------------------------------------------------------------------------

def test_dropout_forward_seeded_mask(student, rng):
    x = rng.standard_normal((6, 7))
    out, _ = student.dropout_forward(x, {"mode": "train", "p": 0.6, "seed": 123})
    # The mask the handout specifies, drawn from the same seed.
    np.random.seed(123)
    mask = (np.random.rand(6, 7) < 0.6) / 0.6
    assert_close(out, x * mask, name="dropout_forward out (train, p=0.6, seed=123)")


def test_dropout_forward_statistics(student):
    x = np.ones((500, 400))
    out, _ = student.dropout_forward(x, {"mode": "train", "p": 0.3, "seed": 0})
    kept = float(np.mean(out != 0))
    assert abs(kept - 0.3) < 0.01, f"dropout with keep probability p=0.3 kept {kept:.3f} of the units"
    assert abs(float(out.mean()) - 1.0) < 0.03, (
        f"inverted dropout must keep the mean: mean of ones after dropout is {out.mean():.3f}, "
        "expected about 1 (divide the kept units by p)"
    )


def test_dropout_test_mode_is_identity(student, rng):
    x = rng.standard_normal((4, 5))
    out, _ = student.dropout_forward(x, {"mode": "test", "p": 0.5})
    assert_close(out, x, name="dropout_forward out in test mode")


def test_dropout_backward_gradcheck(student, rng):
    x = rng.standard_normal((5, 4))
    dout = rng.standard_normal((5, 4))
    param = {"mode": "train", "p": 0.7, "seed": 5}
    out, cache = student.dropout_forward(x, param)
    np.random.seed(5)
    mask = (np.random.rand(5, 4) < 0.7) / 0.7
    assert_close(out, x * mask, name="dropout_forward out (inputs of the gradient check)")
    dx = student.dropout_backward(dout, cache)
    check_gradients(student.dropout_forward, {"x": x, "dropout_param": param}, {"x": dx},
                    dout=dout, output=0)


# --- batch normalization --------------------------------------------------------------------

def test_batchnorm_forward_train_statistics(student, rng):
    x = 4.0 * rng.standard_normal((50, 3)) + 7.0
    gamma = np.array([1.0, 2.0, 0.5])
    beta = np.array([0.0, -1.0, 3.0])
    out, _ = student.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    # Normalized columns have mean 0 and variance 1 (up to eps), then are scaled and shifted.
    assert_close(out.mean(axis=0), beta, name="per-feature mean of the output", threshold=1e-6)
    assert_close(out.std(axis=0), gamma, name="per-feature std of the output", threshold=1e-5)


def test_batchnorm_running_averages_one_step(student, rng):
    x = rng.standard_normal((8, 4)) + 2.0
    bn_param = {"mode": "train", "momentum": 0.8,
                "running_mean": np.zeros(4), "running_var": np.ones(4)}
    out, _ = student.batchnorm_forward(x, np.ones(4), np.zeros(4), bn_param)
    # The running averages are a side effect; the normalized output is what the layer is for.
    assert_close(out, (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5),
                 name="batchnorm_forward out (gamma 1, beta 0, the default eps 1e-5)")
    assert_close(bn_param["running_mean"], 0.2 * x.mean(axis=0), name="running_mean after one step")
    assert_close(bn_param["running_var"], 0.8 + 0.2 * x.var(axis=0),
                 name="running_var after one step (biased variance)")


def test_batchnorm_backward_gradcheck(student, rng):
    x = 2.0 * rng.standard_normal((6, 4)) + 1.0
    gamma = rng.standard_normal(4)
    beta = rng.standard_normal(4)
    dout = rng.standard_normal((6, 4))
    bn_param = {"mode": "train"}
    out, cache = student.batchnorm_forward(x, gamma, beta, bn_param)
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
    assert_close(out, gamma * x_hat + beta,
                 name="batchnorm_forward out (inputs of the gradient check)")
    dx, dgamma, dbeta = student.batchnorm_backward(dout, cache)
    check_gradients(student.batchnorm_forward,
                    {"x": x, "gamma": gamma, "beta": beta, "bn_param": bn_param},
                    {"x": dx, "gamma": dgamma, "beta": dbeta}, dout=dout, output=0)

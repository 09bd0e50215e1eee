"""Visible tests for layers.py: run them with `pytest assignments/hw1` (or `-m affine`, ...).

Each function is judged on its own. A forward pass is compared with closed-form or golden
values (computed once from a correct solution on the fixed inputs below). A backward pass is
given the cache that YOUR forward returned, and its gradients are compared with the true
gradients at the same inputs: the numerical gradients of a correct forward formula written in
this file. So a wrong forward costs only the forward's tests (as long as its cache holds what
the backward needs), and a failing backward test adds a note when your forward is wrong too.
"""
import numpy as np
import pytest

from autograder.gradcheck import assert_close, numeric_gradients
from autograder.verdicts import check_inputs_rule, judge_backward


def away_from_zero(rng, shape, margin=0.1):
    """Random values with |x| >= margin, so that no ReLU sits on its kink."""
    return rng.uniform(margin, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def true_gradients(formula, args, dout):
    """name -> the gradient of sum(formula(*args) * dout) with respect to each array in args,
    taken numerically (central differences) from a correct forward formula."""
    return numeric_gradients(formula, args, [k for k, v in args.items() if isinstance(v, np.ndarray)],
                             dout=dout)


def sigmoid(x):
    """The logistic function, accurate for the moderate inputs of the tests below."""
    return 1.0 / (1.0 + np.exp(-x))


# --- affine ---------------------------------------------------------------------------------

def test_affine_forward_golden(student):
    x = np.linspace(-0.4, 0.6, 12).reshape(2, 2, 3)
    w = np.linspace(-0.25, 0.35, 18).reshape(6, 3)
    b = np.array([0.1, -0.2, 0.05])
    out, _ = student.affine_forward(x, w, b)
    expected = np.array([[0.2532085561497326, -0.08336898395721927, 0.1300534759358289],
                         [0.301336898395722, 0.08026737967914438, 0.40919786096256683]])
    assert_close(out, expected, name="affine_forward out")


def test_affine_backward(student, rng):
    args = {"x": rng.standard_normal((3, 2, 2)), "w": rng.standard_normal((4, 5)),
            "b": rng.standard_normal(5)}
    dout = rng.standard_normal((3, 5))

    def affine(x, w, b):
        return x.reshape(x.shape[0], -1) @ w + b

    judge_backward(student.affine_forward, student.affine_backward, args, dout, ["x", "w", "b"],
                   expected=true_gradients(affine, args, dout), expected_out=affine(**args),
                   threshold=1e-6, what="for x of shape (3, 2, 2)")


# --- activations ----------------------------------------------------------------------------

X_ACT = np.linspace(-2.0, 2.5, 8).reshape(2, 4)  # no entry at 0


def test_relu_forward_golden(student):
    out, _ = student.relu_forward(X_ACT)
    assert_close(out, np.maximum(X_ACT, 0.0), name="relu_forward out")


def test_relu_backward(student, rng):
    args = {"x": away_from_zero(rng, (4, 5))}
    dout = rng.standard_normal((4, 5))
    judge_backward(student.relu_forward, student.relu_backward, args, dout, ["x"],
                   expected=true_gradients(lambda x: np.maximum(x, 0.0), args, dout),
                   expected_out=np.maximum(args["x"], 0.0), threshold=1e-6)


def test_sigmoid_forward_golden(student):
    out, _ = student.sigmoid_forward(X_ACT)
    expected = np.array(
        [[0.11920292202211755, 0.20470505527196248, 0.32865254651727005, 0.4821504455938654],
         [0.6390927451628513, 0.771056378226556, 0.8649635770771977, 0.9241418199787566]])
    assert_close(out, expected, name="sigmoid_forward out")


def test_sigmoid_backward(student, rng):
    args = {"x": rng.standard_normal((3, 4))}
    dout = rng.standard_normal((3, 4))
    judge_backward(student.sigmoid_forward, student.sigmoid_backward, args, dout, ["x"],
                   expected=true_gradients(sigmoid, args, dout), expected_out=sigmoid(args["x"]),
                   threshold=1e-6)


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


def test_tanh_backward(student, rng):
    args = {"x": rng.standard_normal((3, 4))}
    dout = rng.standard_normal((3, 4))
    judge_backward(student.tanh_forward, student.tanh_backward, args, dout, ["x"],
                   expected=true_gradients(np.tanh, args, dout), expected_out=np.tanh(args["x"]),
                   threshold=1e-6)


# --- losses ---------------------------------------------------------------------------------
# A loss returns (loss, dx) from one call; the value and the gradient are separate tests, so
# that a wrong value does not cost the gradient's points, nor the other way round.

SOFTMAX_X = np.linspace(-1.0, 2.0, 12).reshape(3, 4)
SOFTMAX_Y = np.array([0, 3, 1])


def test_softmax_loss_golden(student):
    loss, _ = student.softmax_loss(SOFTMAX_X, SOFTMAX_Y)
    assert_close(loss, 1.477755746103479, name="softmax_loss loss")


def test_softmax_loss_dx_golden(student):
    _, dx = student.softmax_loss(SOFTMAX_X, SOFTMAX_Y)
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


def test_softmax_loss_dx(student, rng):
    x = rng.standard_normal((4, 5))
    y = rng.integers(0, 5, 4)

    def softmax_cross_entropy(x):
        # The formula of the docstring, fine for scores this small.
        probs = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
        return -np.mean(np.log(probs[np.arange(len(y)), y]))

    _, dx = student.softmax_loss(x, y)
    assert_close(dx, true_gradients(softmax_cross_entropy, {"x": x}, None)["x"],
                 name="softmax_loss dx (against the numerical gradient of the loss)", threshold=1e-6)


def test_mse_loss_golden(student):
    x = np.linspace(-1.0, 1.0, 6).reshape(3, 2)
    y = np.array([[0.5, -0.5], [0.0, 1.0], [2.0, 0.25]])
    loss, _ = student.mse_loss(x, y)
    assert_close(loss, 0.9104166666666665, name="mse_loss loss")


def test_mse_loss_dx(student, rng):
    x = rng.standard_normal((4, 3))
    y = rng.standard_normal((4, 3))
    _, dx = student.mse_loss(x, y)
    half_squared_error = lambda x: 0.5 * np.sum((x - y) ** 2) / len(x)  # noqa: E731
    assert_close(dx, true_gradients(half_squared_error, {"x": x}, None)["x"],
                 name="mse_loss dx (against the numerical gradient of the loss)", threshold=1e-6)


# --- dropout --------------------------------------------------------------------------------
# The handout does not fix how the mask is drawn: any correct way passes. The tests check what
# inverted dropout means: every output is 0 or x / p, about a fraction p is kept, the seed
# makes it repeatable, test mode is the identity, and the backward uses the forward's mask.

def test_dropout_forward_train_outputs(student, rng):
    x = rng.standard_normal((20, 30))
    out, _ = student.dropout_forward(x, {"mode": "train", "p": 0.6, "seed": 123})
    out = np.asarray(out)
    assert out.shape == x.shape, f"dropout_forward out: expected shape {x.shape}, got {out.shape}"
    kept = out != 0
    assert kept.any(), "dropout_forward (train, p=0.6) dropped all 600 units"
    assert_close(out[kept], x[kept] / 0.6, name="dropout_forward out at the kept units (must be x / p)")


def test_dropout_forward_statistics(student):
    x = np.ones((500, 400))
    out, _ = student.dropout_forward(x, {"mode": "train", "p": 0.3, "seed": 0})
    # Over 200000 units the kept fraction has a standard deviation of 0.001: 0.01 is 10 of them.
    kept = float(np.mean(out != 0))
    assert abs(kept - 0.3) < 0.01, f"dropout with keep probability p=0.3 kept {kept:.3f} of the units"
    assert abs(float(out.mean()) - 1.0) < 0.03, (
        f"inverted dropout must keep the mean: mean of ones after dropout is {out.mean():.3f}, "
        "expected about 1 (divide the kept units by p)"
    )


def test_dropout_forward_seeded_masks(student, rng):
    x = rng.standard_normal((10, 10))
    first, _ = student.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 1})
    again, _ = student.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 1})
    other, _ = student.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 2})
    assert_close(again, first, name="dropout_forward out, drawn twice with seed 1 (must repeat)")
    assert not np.array_equal(np.asarray(first) != 0, np.asarray(other) != 0), (
        "dropout_forward kept the same units with seed 1 and seed 2: draw the mask after seeding"
    )


def test_dropout_test_mode_is_identity(student, rng):
    x = rng.standard_normal((4, 5))
    out, _ = student.dropout_forward(x, {"mode": "test", "p": 0.5})
    assert_close(out, x, name="dropout_forward out in test mode")


def test_dropout_backward_uses_forward_mask(student, rng):
    x = rng.standard_normal((5, 8))
    dout = rng.standard_normal((5, 8))
    out, cache = student.dropout_forward(x, {"mode": "train", "p": 0.7, "seed": 5})
    out = np.asarray(out)
    # Your forward's output tells which units it kept and by what they were multiplied: the
    # backward must pass dout through the same mask, whatever that mask is.
    assert out.shape == x.shape and np.any(out != 0), (
        "dropout_backward could not be judged: dropout_forward must return an output of x's "
        f"shape with some units kept; it returned shape {out.shape} (fix dropout_forward first)"
    )
    dx = student.dropout_backward(dout, cache)
    assert_close(dx, dout * out / x, name="dropout_backward dx (must be dout * mask, the mask of the "
                 "forward that made the cache)")


# --- batch normalization --------------------------------------------------------------------

def batchnorm_train(x, gamma, beta, eps=1e-5):
    """The training-mode formula of the handout."""
    return gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta


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
    # The averages are judged for a forward that computes an output (its values are the other
    # tests' business): one that returns nothing useful earns nothing here.
    out = np.asarray(out, dtype=float)
    assert out.shape == x.shape and np.ptp(out) > 0, (
        f"batchnorm_forward returned an output of shape {out.shape} that is constant: it must "
        "compute the normalized batch as well as update the running averages"
    )
    assert_close(bn_param["running_mean"], 0.2 * x.mean(axis=0), name="running_mean after one step")
    assert_close(bn_param["running_var"], 0.8 + 0.2 * x.var(axis=0),
                 name="running_var after one step (biased variance)")


def test_batchnorm_backward(student, rng):
    args = {"x": 2.0 * rng.standard_normal((6, 4)) + 1.0, "gamma": rng.standard_normal(4),
            "beta": rng.standard_normal(4), "bn_param": {"mode": "train"}}
    dout = rng.standard_normal((6, 4))
    formula = lambda x, gamma, beta, bn_param: batchnorm_train(x, gamma, beta)  # noqa: E731
    judge_backward(student.batchnorm_forward, student.batchnorm_backward, args, dout,
                   ["x", "gamma", "beta"], expected=true_gradients(formula, args, dout),
                   expected_out=formula(**args), threshold=1e-6, what="for x of shape (6, 4)")


# --- conventions: functions leave the arrays they are given unchanged -----------------------
# One test per function that students most often write into an input of (relu's `x[x < 0] = 0`,
# softmax's `x -= x.max(...)`, a backward's `dout[...] = 0` or `dout *= ...`). Only the rule is
# judged here, on two calls with different inputs; the values are the function's own tests'
# business. Elsewhere, a write into an input is a warning line: your function works on a copy.
# Each case gives the arguments of the two calls; a backward's cache comes from your forward.

def rule_relu_forward(student, rng):
    return [(away_from_zero(rng, (4, 5)),) for _ in range(2)]


def rule_relu_backward(student, rng):
    return [(rng.standard_normal((4, 5)), student.relu_forward(away_from_zero(rng, (4, 5)))[1])
            for _ in range(2)]


def rule_sigmoid_forward(student, rng):
    return [(3.0 * rng.standard_normal((3, 4)),) for _ in range(2)]


def rule_sigmoid_backward(student, rng):
    return [(rng.standard_normal((3, 4)), student.sigmoid_forward(rng.standard_normal((3, 4)))[1])
            for _ in range(2)]


def rule_softmax_loss(student, rng):
    return [(rng.standard_normal((4, 5)), rng.integers(0, 5, 4)) for _ in range(2)]


def rule_dropout_forward(student, rng):
    return [(rng.standard_normal((6, 5)), {"mode": "train", "p": 0.5, "seed": seed}) for seed in (1, 2)]


def rule_dropout_backward(student, rng):
    return [(rng.standard_normal((6, 5)),
             student.dropout_forward(x, param)[1]) for x, param in rule_dropout_forward(student, rng)]


def rule_batchnorm_forward(student, rng):
    return [(rng.standard_normal((6, 3)) + 1.0, rng.standard_normal(3), rng.standard_normal(3),
             {"mode": "train"}) for _ in range(2)]


def rule_batchnorm_backward(student, rng):
    return [(rng.standard_normal((6, 3)), student.batchnorm_forward(*args)[1])
            for args in rule_batchnorm_forward(student, rng)]


INPUTS_RULE = {name[len("rule_"):]: case for name, case in globals().items() if name.startswith("rule_")}


def output_of(fn, name):
    """fn without its cache: a forward's cache may hold its inputs, which are no result of its
    own, so the rule is judged on the output alone."""
    def output(*args):
        return fn(*args)[0]

    output.__name__ = name
    return output


@pytest.mark.parametrize("function", sorted(INPUTS_RULE))
def test_inputs_unchanged(student, rng, function):
    first, second = INPUTS_RULE[function](student, rng)
    fn = getattr(student, function)
    if function.endswith("_forward"):
        fn = output_of(fn, function)
    check_inputs_rule(fn, first, second)

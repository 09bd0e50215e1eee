"""Hidden tests for layers.py: more shapes, edge cases, and comparison with the reference.

Each function is judged on its own: a forward against the reference's output; a backward,
given the cache of the student's own forward, against the reference's gradients at the same
inputs (judge_backward, which also notes a wrong forward). Where the handout leaves a choice
open (the subgradient of ReLU at 0, how dropout draws its mask), any valid choice passes.
"""
import numpy as np
import pytest

from autograder.gradcheck import assert_close
from autograder.verdicts import judge_backward


def away_from_zero(rng, shape, margin=0.1):
    """Random values with |x| >= margin, so that no ReLU sits on its kink."""
    return rng.uniform(margin, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


# --- affine ---------------------------------------------------------------------------------

AFFINE_SHAPES = [((1, 5), 3), ((4, 6), 1), ((2, 3, 4), 5), ((3, 2, 2, 3), 4)]


def affine_args(rng, x_shape, M):
    D = int(np.prod(x_shape[1:]))
    return {"x": rng.standard_normal(x_shape), "w": rng.standard_normal((D, M)), "b": rng.standard_normal(M)}


@pytest.mark.parametrize("x_shape,M", AFFINE_SHAPES, ids=lambda v: str(v))
def test_affine_forward_matches_reference(student, reference, rng, x_shape, M):
    args = affine_args(rng, x_shape, M)
    out, _ = student.affine_forward(**args)
    assert_close(out, reference.affine_forward(**args)[0], name=f"affine_forward out for x of shape {x_shape}")


@pytest.mark.parametrize("x_shape,M", AFFINE_SHAPES, ids=lambda v: str(v))
def test_affine_backward_matches_reference(student, reference, rng, x_shape, M):
    args = affine_args(rng, x_shape, M)
    dout = rng.standard_normal((x_shape[0], M))
    judge_backward(student.affine_forward, student.affine_backward, args, dout, ["x", "w", "b"],
                   reference=(reference.affine_forward, reference.affine_backward),
                   what=f"for x of shape {x_shape}")


# --- activations ----------------------------------------------------------------------------

ACT_SHAPES = [(1, 1), (1, 7), (5, 3), (2, 3, 4)]


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_relu_forward_matches_reference(student, reference, rng, shape):
    x = away_from_zero(rng, shape)
    # At least one active unit: on all-negative inputs an all-zero relu would be right.
    x.flat[0] = abs(x.flat[0])
    out, _ = student.relu_forward(x)
    assert_close(out, reference.relu_forward(x)[0], name=f"relu_forward out, shape {shape}")


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_relu_backward_matches_reference(student, reference, rng, shape):
    x = away_from_zero(rng, shape)
    x.flat[0] = abs(x.flat[0])
    judge_backward(student.relu_forward, student.relu_backward, {"x": x}, rng.standard_normal(shape), ["x"],
                   reference=(reference.relu_forward, reference.relu_backward), what=f"shape {shape}")


def test_relu_at_zero(student):
    out, _ = student.relu_forward(np.array([[-1.0, 0.0, -0.0, 2.0]]))
    assert_close(out, [[0.0, 0.0, 0.0, 2.0]], name="relu_forward of [-1, 0, -0, 2]")


def test_relu_backward_at_zero_any_subgradient(student, rng):
    x = away_from_zero(rng, (4, 6))
    x.flat[::3] = 0.0
    dout = away_from_zero(rng, (4, 6))
    _, cache = student.relu_forward(x)
    dx = np.asarray(student.relu_backward(dout, cache), dtype=float)
    assert dx.shape == x.shape, f"relu_backward dx: expected shape {x.shape}, got {dx.shape}"
    kink = x == 0
    assert_close(dx[~kink], (dout * (x > 0))[~kink], name="relu_backward dx away from 0")
    # At exactly 0 any slope in [0, 1] is a valid subgradient: dx between 0 and dout.
    slope = dx[kink] / dout[kink]
    bad = ~((slope >= -1e-12) & (slope <= 1 + 1e-12))
    assert not bad.any(), (
        f"relu_backward at x = 0 gave dx = {dx[kink][bad][0]:.6g} for dout = {dout[kink][bad][0]:.6g}: "
        "any value between 0 and dout (a slope in [0, 1]) is accepted there, not this"
    )


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_sigmoid_forward_matches_reference(student, reference, rng, shape):
    x = 3.0 * rng.standard_normal(shape)
    out, _ = student.sigmoid_forward(x)
    assert_close(out, reference.sigmoid_forward(x)[0], name=f"sigmoid_forward out, shape {shape}")


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_sigmoid_backward_matches_reference(student, reference, rng, shape):
    judge_backward(student.sigmoid_forward, student.sigmoid_backward, {"x": 3.0 * rng.standard_normal(shape)},
                   rng.standard_normal(shape), ["x"],
                   reference=(reference.sigmoid_forward, reference.sigmoid_backward), what=f"shape {shape}")


SATURATED = np.array([[-50.0, -30.0, 30.0, 50.0]])
# sigma(x) and sigma'(x) = sigma(x) * (1 - sigma(x)) = sigma(-|x|) up to rounding, at SATURATED.
SATURATED_SIGMOID = np.array([[1.9287498479639178e-22, 9.357622968839299e-14, 1.0, 1.0]])
SATURATED_SLOPE = np.array([[1.9287498479639178e-22, 9.357622968839299e-14,
                             9.357622968831e-14, 1.9287498479639178e-22]])


def test_sigmoid_forward_saturated(student):
    out, _ = student.sigmoid_forward(SATURATED)
    assert np.all(np.isfinite(out)), f"sigmoid_forward at +-30, +-50 gave {out}"
    assert_close(out, SATURATED_SIGMOID, name="sigmoid at -50, -30, 30, 50")


def test_sigmoid_backward_saturated(student):
    _, cache = student.sigmoid_forward(SATURATED)
    dx = np.asarray(student.sigmoid_backward(np.ones_like(SATURATED), cache), dtype=float)
    assert dx.shape == SATURATED.shape and np.all(np.isfinite(dx)), f"sigmoid_backward at +-30, +-50 gave {dx}"
    assert_close(dx[0, :2], SATURATED_SLOPE[0, :2], name="sigmoid_backward at -50, -30")
    # 1 - sigma(x) rounds to 0 near 1, so at +30 and +50 any value this small is right.
    assert np.all(np.abs(dx[0, 2:]) < 1e-12), f"sigmoid_backward at 30, 50 should be ~0, got {dx[0, 2:]}"


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_tanh_forward_matches_reference(student, reference, rng, shape):
    x = 2.0 * rng.standard_normal(shape)
    out, _ = student.tanh_forward(x)
    assert_close(out, reference.tanh_forward(x)[0], name=f"tanh_forward out, shape {shape}")


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_tanh_backward_matches_reference(student, reference, rng, shape):
    judge_backward(student.tanh_forward, student.tanh_backward, {"x": 2.0 * rng.standard_normal(shape)},
                   rng.standard_normal(shape), ["x"],
                   reference=(reference.tanh_forward, reference.tanh_backward), what=f"shape {shape}")


def test_tanh_forward_large_inputs(student):
    out, _ = student.tanh_forward(np.array([-400.0, 400.0]))
    assert_close(out, [-1.0, 1.0], name="tanh(+-400)")


def test_tanh_backward_large_inputs(student):
    # The slope 1 - tanh(x)^2 is 0 in float64 at +-400, and 0.786448 at 0.5.
    x = np.array([-400.0, 400.0, 0.5])
    judge_backward(student.tanh_forward, student.tanh_backward, {"x": x}, np.ones(3), ["x"],
                   expected={"x": 1.0 - np.tanh(x) ** 2}, expected_out=np.tanh(x), what="at -400, 400 and 0.5")


# --- losses ---------------------------------------------------------------------------------
# (loss, dx) come from one call: the value and the gradient are separate tests.

SOFTMAX_CASES = [(1, 2), (1, 10), (6, 3), (20, 10)]


@pytest.mark.parametrize("N,C", SOFTMAX_CASES)
def test_softmax_loss_matches_reference(student, reference, rng, N, C):
    x = 2.0 * rng.standard_normal((N, C))
    y = rng.integers(0, C, N)
    loss, _ = student.softmax_loss(x, y)
    assert_close(loss, reference.softmax_loss(x, y)[0], name=f"softmax_loss loss, N={N}, C={C}")


@pytest.mark.parametrize("N,C", SOFTMAX_CASES)
def test_softmax_loss_dx_matches_reference(student, reference, rng, N, C):
    x = 2.0 * rng.standard_normal((N, C))
    y = rng.integers(0, C, N)
    _, dx = student.softmax_loss(x, y)
    assert_close(dx, reference.softmax_loss(x, y)[1], name=f"softmax_loss dx, N={N}, C={C}")


HUGE_X = np.array([[1e4, 0.0, -1e4], [1e4, 1e4 - 2.0, 3.0], [-1e4, -1e4, -1e4 + 1.0]])
HUGE_Y = np.array([1, 1, 2])


def test_softmax_loss_huge_logits(student, reference):
    loss, _ = student.softmax_loss(HUGE_X, HUGE_Y)
    assert np.isfinite(loss), f"softmax_loss with logits of 1e4 gave loss {loss}: subtract each row's max"
    assert_close(loss, reference.softmax_loss(HUGE_X, HUGE_Y)[0], name="softmax_loss loss with logits of 1e4")


def test_softmax_loss_dx_huge_logits(student, reference):
    _, dx = student.softmax_loss(HUGE_X, HUGE_Y)
    assert np.all(np.isfinite(dx)), f"softmax_loss with logits of 1e4 gave dx {dx}: subtract each row's max"
    assert_close(dx, reference.softmax_loss(HUGE_X, HUGE_Y)[1], name="softmax_loss dx with logits of 1e4")


def test_softmax_loss_is_batch_mean(student, reference, rng):
    x = rng.standard_normal((4, 5))
    y = rng.integers(0, 5, 4)
    whole, _ = student.softmax_loss(x, y)
    # The mean of wrong per-row losses (all zero, say) would equal itself: check the value too.
    assert_close(whole, reference.softmax_loss(x, y)[0], name="softmax_loss of a batch")
    rows = [student.softmax_loss(x[i:i + 1], y[i:i + 1])[0] for i in range(4)]
    assert_close(whole, np.mean(rows), name="softmax_loss of a batch (the mean of per-row losses)")


MSE_CASES = [((1, 1), (1,)), ((5, 1), (5,)), ((5, 1), (5, 1)), ((4, 3), (4, 3))]


@pytest.mark.parametrize("x_shape,y_shape", MSE_CASES, ids=str)
def test_mse_loss_matches_reference(student, reference, rng, x_shape, y_shape):
    x, y = rng.standard_normal(x_shape), rng.standard_normal(y_shape)
    loss, _ = student.mse_loss(x, y)
    assert_close(loss, reference.mse_loss(x, y)[0], name=f"mse_loss loss, x {x_shape}, y {y_shape}")


@pytest.mark.parametrize("x_shape,y_shape", MSE_CASES, ids=str)
def test_mse_loss_dx_matches_reference(student, reference, rng, x_shape, y_shape):
    x, y = rng.standard_normal(x_shape), rng.standard_normal(y_shape)
    _, dx = student.mse_loss(x, y)
    assert_close(dx, reference.mse_loss(x, y)[1], name=f"mse_loss dx, x {x_shape}, y {y_shape}")


def test_mse_loss_perfect_prediction(student, rng):
    x = rng.standard_normal((3, 2))
    loss, dx = student.mse_loss(x, x.copy())
    assert_close(loss, 0.0, name="mse_loss when predictions equal targets")
    assert_close(dx, np.zeros((3, 2)), name="mse_loss dx when predictions equal targets")
    # A loss that is always zero is not right: the same call with other targets must not be.
    other, _ = student.mse_loss(x, x + 1.0)
    assert_close(other, 1.0, name="mse_loss when every prediction is off by 1 (half of 1, times 2 outputs)")


# --- dropout --------------------------------------------------------------------------------
# The handout requires inverted dropout with keep probability p, not one way of drawing the
# mask: every output is 0 or x / p, about a fraction p is kept (judged on a large input), the
# same seed gives the same mask and another seed another, test mode is the identity, and the
# backward passes dout through the mask of the forward that made the cache.

DROPOUT_PS = [0.25, 0.5, 0.9]
# At least 100 units each: a correct dropout keeps none of them with probability below 1e-12.
DROPOUT_SHAPES = [(1, 120), (10, 12), (4, 5, 6)]


@pytest.mark.parametrize("p", DROPOUT_PS)
@pytest.mark.parametrize("shape", DROPOUT_SHAPES, ids=str)
def test_dropout_forward_train_values(student, rng, p, shape):
    x = rng.standard_normal(shape)
    out, _ = student.dropout_forward(x, {"mode": "train", "p": p, "seed": 17})
    out = np.asarray(out)
    assert out.shape == x.shape, f"dropout_forward out: expected shape {x.shape}, got {out.shape}"
    kept = out != 0
    assert kept.any(), f"dropout_forward (train, p={p}) dropped all {x.size} units"
    assert_close(out[kept], x[kept] / p, name=f"dropout_forward out at the kept units (x / p, p={p})")


@pytest.mark.parametrize("p", DROPOUT_PS)
def test_dropout_forward_keep_fraction(student, p):
    x = np.ones((400, 500))
    out, _ = student.dropout_forward(x, {"mode": "train", "p": p, "seed": 3})
    # Over 200000 units the kept fraction has a standard deviation of at most 0.0011; the
    # tolerance, 0.01, is about 9 of them: a correct dropout fails this once in 1e18.
    kept = float(np.mean(np.asarray(out) != 0))
    assert abs(kept - p) < 0.01, f"dropout with keep probability p={p} kept {kept:.4f} of the units"


def test_dropout_forward_seeding(student, rng):
    x = rng.standard_normal((8, 25))
    draws = {}
    for seed in (4, 4, 5, 6):
        out, _ = student.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": seed})
        draws.setdefault(seed, []).append(np.asarray(out) != 0)
    assert np.array_equal(draws[4][0], draws[4][1]), "dropout_forward with seed 4, twice, kept different units"
    masks = [draws[s][0] for s in (4, 5, 6)]
    assert not any(np.array_equal(a, b) for i, a in enumerate(masks) for b in masks[i + 1:]), (
        "dropout_forward kept the same units for two different seeds (4, 5, 6)"
    )


def test_dropout_forward_keep_all(student, rng):
    x = rng.standard_normal((4, 6))
    out, _ = student.dropout_forward(x, {"mode": "train", "p": 1.0, "seed": 3})
    assert_close(out, x, name="dropout_forward out with keep probability p=1")


def test_dropout_forward_test_mode_ignores_p(student, rng):
    x = rng.standard_normal((3, 4))
    out, _ = student.dropout_forward(x, {"mode": "test", "p": 0.2, "seed": 1})
    assert_close(out, x, name="dropout_forward out in test mode (no mask, no scaling)")


def judge_dropout_backward(student, x, dout, param):
    """Run the student's forward once, then its backward on that cache: dx must be dout times
    the mask the forward applied, out / x (x has no zero entries)."""
    out, cache = student.dropout_forward(x, param)
    out = np.asarray(out)
    assert out.shape == x.shape and np.any(out != 0), (
        "dropout_backward could not be judged: dropout_forward must return an output of x's "
        f"shape with some units kept; it returned shape {out.shape} (fix dropout_forward first)"
    )
    dx = student.dropout_backward(dout, cache)
    assert_close(dx, dout * out / x, name=f"dropout_backward dx ({param['mode']}, p={param['p']}): "
                 "dout times the mask of the forward that made the cache")


@pytest.mark.parametrize("p", DROPOUT_PS)
@pytest.mark.parametrize("shape", DROPOUT_SHAPES, ids=str)
def test_dropout_backward_uses_mask(student, rng, p, shape):
    judge_dropout_backward(student, away_from_zero(rng, shape), rng.standard_normal(shape),
                           {"mode": "train", "p": p, "seed": 17})


def test_dropout_backward_keep_all(student, rng):
    judge_dropout_backward(student, away_from_zero(rng, (4, 6)), rng.standard_normal((4, 6)),
                           {"mode": "train", "p": 1.0, "seed": 3})


def test_dropout_backward_test_mode(student, rng):
    judge_dropout_backward(student, away_from_zero(rng, (3, 4)), rng.standard_normal((3, 4)),
                           {"mode": "test", "p": 0.2, "seed": 1})


# --- batch normalization --------------------------------------------------------------------

BN_SHAPES = [(2, 1), (4, 3), (10, 5)]


def computes(out, shape, fname):
    """Fail unless out is an array of `shape` that is not constant: the running averages are
    judged for a forward that computes an output (its values are other tests' business)."""
    out = np.asarray(out, dtype=float)
    assert out.shape == shape and np.ptp(out) > 0, (
        f"{fname} returned an output of shape {out.shape} that is constant: it must compute the "
        "normalized batch as well as update the running averages"
    )


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batchnorm_forward_train_matches_reference(student, reference, rng, shape):
    N, D = shape
    x = 3.0 * rng.standard_normal(shape) - 1.0
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    out, _ = student.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    ref_out, _ = reference.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    assert_close(out, ref_out, name=f"batchnorm_forward out (train), shape {shape}")


# (shape, eps, offset of the data): the last case has a large mean and another eps.
BN_BACKWARD_CASES = [((2, 1), 1e-5, -1.0), ((4, 3), 1e-5, -1.0), ((10, 5), 1e-5, -1.0), ((6, 4), 1e-3, 5.0)]


@pytest.mark.parametrize("shape,eps,offset", BN_BACKWARD_CASES, ids=str)
def test_batchnorm_backward_matches_reference(student, reference, rng, shape, eps, offset):
    N, D = shape
    args = {"x": 3.0 * rng.standard_normal(shape) + offset, "gamma": rng.standard_normal(D),
            "beta": rng.standard_normal(D), "bn_param": {"mode": "train", "eps": eps}}
    judge_backward(student.batchnorm_forward, student.batchnorm_backward, args, rng.standard_normal(shape),
                   ["x", "gamma", "beta"], reference=(reference.batchnorm_forward, reference.batchnorm_backward),
                   threshold=1e-6, what=f"shape {shape}, eps {eps}")


def test_batchnorm_running_averages_many_steps(student, reference, rng):
    gamma, beta = np.ones(3), np.zeros(3)
    mine = {"mode": "train", "momentum": 0.7}
    ref = {"mode": "train", "momentum": 0.7}
    for step in range(4):
        x = rng.standard_normal((6, 3)) * (step + 1) + step
        out, _ = student.batchnorm_forward(x, gamma, beta, mine)
        reference.batchnorm_forward(x, gamma, beta, ref)
        computes(out, x.shape, "batchnorm_forward")
        for key in ("running_mean", "running_var"):
            assert key in mine, f"bn_param has no '{key}' after a training step: store it there"
            assert_close(mine[key], ref[key], name=f"bn_param['{key}'] after step {step + 1}")


def test_batchnorm_default_eps(student, rng):
    x = rng.standard_normal((5, 2)) * 0.01
    out, _ = student.batchnorm_forward(x, np.ones(2), np.zeros(2), {"mode": "train"})
    # The batch's variance is about 1e-4, so eps = 1e-5 shows in the output.
    assert_close(out, (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5),
                 name="batchnorm out with the default eps 1e-5")


def test_batchnorm_default_momentum(student, rng):
    x = rng.standard_normal((5, 2)) * 0.01
    bn_param = {"mode": "train"}
    out, _ = student.batchnorm_forward(x, np.ones(2), np.zeros(2), bn_param)
    computes(out, x.shape, "batchnorm_forward")
    assert_close(bn_param["running_mean"], 0.1 * x.mean(axis=0), name="running_mean with the default momentum 0.9")
    assert_close(bn_param["running_var"], 0.9 + 0.1 * x.var(axis=0),
                 name="running_var with the default momentum 0.9")


def test_batchnorm_test_mode_uses_running_stats(student, rng):
    x = rng.standard_normal((4, 3))
    gamma = np.array([1.5, 0.5, 2.0])
    beta = np.array([0.1, -0.2, 0.3])
    running_mean = np.array([0.5, -1.0, 2.0])
    running_var = np.array([4.0, 0.25, 1.0])
    bn_param = {"mode": "test", "eps": 1e-3, "running_mean": running_mean.copy(),
                "running_var": running_var.copy()}
    out, _ = student.batchnorm_forward(x, gamma, beta, bn_param)
    expected = gamma * (x - running_mean) / np.sqrt(running_var + 1e-3) + beta
    assert_close(out, expected, name="batchnorm_forward out in test mode (uses the running stats)")
    assert_close(bn_param["running_mean"], running_mean, name="running_mean (test mode must not update it)")
    assert_close(bn_param["running_var"], running_var, name="running_var (test mode must not update it)")


def test_batchnorm_single_feature_batch_of_two(student):
    x = np.array([[1.0], [3.0]])
    out, _ = student.batchnorm_forward(x, np.array([2.0]), np.array([0.5]), {"mode": "train", "eps": 0.0})
    assert_close(out, [[-1.5], [2.5]], name="batchnorm of [[1], [3]] with gamma 2, beta 0.5, eps 0")

"""Hidden tests for layers.py: more shapes, edge cases, and comparison with the reference."""
import numpy as np
import pytest

from autograder.gradcheck import assert_close, check_gradients


def away_from_zero(rng, shape, margin=0.1):
    """Random values with |x| >= margin, so that no ReLU sits on its kink."""
    return rng.uniform(margin, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


# --- affine ---------------------------------------------------------------------------------

AFFINE_SHAPES = [((1, 5), 3), ((4, 6), 1), ((2, 3, 4), 5), ((3, 2, 2, 3), 4)]


@pytest.mark.parametrize("x_shape,M", AFFINE_SHAPES, ids=lambda v: str(v))
def test_affine_matches_reference(student, reference, rng, x_shape, M):
    D = int(np.prod(x_shape[1:]))
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((D, M))
    b = rng.standard_normal(M)
    dout = rng.standard_normal((x_shape[0], M))
    out, cache = student.affine_forward(x, w, b)
    ref_out, ref_cache = reference.affine_forward(x, w, b)
    assert_close(out, ref_out, name=f"affine_forward out for x of shape {x_shape}")
    for name, got, exp in zip(("dx", "dw", "db"), student.affine_backward(dout, cache),
                              reference.affine_backward(dout, ref_cache)):
        assert_close(got, exp, name=f"affine_backward {name} for x of shape {x_shape}")


@pytest.mark.parametrize("x_shape,M", AFFINE_SHAPES, ids=lambda v: str(v))
def test_affine_gradcheck_shapes(student, reference, rng, x_shape, M):
    D = int(np.prod(x_shape[1:]))
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((D, M))
    b = rng.standard_normal(M)
    dout = rng.standard_normal((x_shape[0], M))
    out, cache = student.affine_forward(x, w, b)
    # The check differentiates the student's own forward: it means something only when that
    # forward is right (a zero forward and a zero backward agree with each other).
    assert_close(out, reference.affine_forward(x, w, b)[0], name=f"affine_forward out for x of shape {x_shape}")
    dx, dw, db = student.affine_backward(dout, cache)
    check_gradients(student.affine_forward, {"x": x, "w": w, "b": b},
                    {"x": dx, "w": dw, "b": db}, dout=dout, output=0, threshold=1e-7)


# --- activations ----------------------------------------------------------------------------

ACT_SHAPES = [(1, 1), (1, 7), (5, 3), (2, 3, 4)]


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_relu_matches_reference(student, reference, rng, shape):
    x = away_from_zero(rng, shape)
    # At least one active unit: on all-negative inputs an all-zero relu would be right.
    x.flat[0] = abs(x.flat[0])
    dout = rng.standard_normal(shape)
    out, cache = student.relu_forward(x)
    assert_close(out, reference.relu_forward(x)[0], name=f"relu_forward out, shape {shape}")
    dx = student.relu_backward(dout, cache)
    assert_close(dx, dout * (x > 0), name=f"relu_backward dx, shape {shape}")
    check_gradients(student.relu_forward, {"x": x}, {"x": dx}, dout=dout, output=0)


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_sigmoid_matches_reference(student, reference, rng, shape):
    x = 3.0 * rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    out, cache = student.sigmoid_forward(x)
    ref_out, ref_cache = reference.sigmoid_forward(x)
    assert_close(out, ref_out, name=f"sigmoid_forward out, shape {shape}")
    dx = student.sigmoid_backward(dout, cache)
    assert_close(dx, reference.sigmoid_backward(dout, ref_cache), name=f"sigmoid_backward dx, shape {shape}")
    check_gradients(student.sigmoid_forward, {"x": x}, {"x": dx}, dout=dout, output=0)


def test_sigmoid_saturated_gradients(student):
    x = np.array([[-50.0, -30.0, 30.0, 50.0]])
    out, cache = student.sigmoid_forward(x)
    dx = student.sigmoid_backward(np.ones_like(x), cache)
    # sigma'(x) = sigma(x) * (1 - sigma(x)) = sigma(-|x|) up to rounding.
    expected = np.array([[1.9287498479639178e-22, 9.357622968839299e-14,
                          9.357622968831e-14, 1.9287498479639178e-22]])
    assert np.all(np.isfinite(dx)), f"sigmoid_backward at +-30, +-50 gave {dx}"
    assert_close(out[0, :2], expected[0, :2], name="sigmoid(-50), sigmoid(-30)")
    assert_close(dx[0, :2], expected[0, :2], name="sigmoid_backward at -50, -30")
    assert np.all(np.abs(dx[0, 2:]) < 1e-12), f"sigmoid_backward at 30, 50 should be ~0, got {dx[0, 2:]}"


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_tanh_matches_reference(student, reference, rng, shape):
    x = 2.0 * rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    out, cache = student.tanh_forward(x)
    ref_out, ref_cache = reference.tanh_forward(x)
    assert_close(out, ref_out, name=f"tanh_forward out, shape {shape}")
    dx = student.tanh_backward(dout, cache)
    assert_close(dx, reference.tanh_backward(dout, ref_cache), name=f"tanh_backward dx, shape {shape}")
    check_gradients(student.tanh_forward, {"x": x}, {"x": dx}, dout=dout, output=0)


def test_tanh_large_inputs(student):
    out, cache = student.tanh_forward(np.array([-400.0, 400.0]))
    assert_close(out, [-1.0, 1.0], name="tanh(+-400)")
    dx = student.tanh_backward(np.ones(2), cache)
    assert np.all(np.isfinite(dx)) and np.all(np.abs(dx) < 1e-12), f"tanh_backward at +-400: {dx}"


# --- losses ---------------------------------------------------------------------------------

@pytest.mark.parametrize("N,C", [(1, 2), (1, 10), (6, 3), (20, 10)])
def test_softmax_loss_matches_reference(student, reference, rng, N, C):
    x = 2.0 * rng.standard_normal((N, C))
    y = rng.integers(0, C, N)
    loss, dx = student.softmax_loss(x, y)
    ref_loss, ref_dx = reference.softmax_loss(x, y)
    assert_close(loss, ref_loss, name=f"softmax_loss loss, N={N}, C={C}")
    assert_close(dx, ref_dx, name=f"softmax_loss dx, N={N}, C={C}")
    check_gradients(student.softmax_loss, {"x": x, "y": y}, {"x": dx}, output=0)


def test_softmax_loss_huge_logits(student, reference):
    x = np.array([[1e4, 0.0, -1e4], [1e4, 1e4 - 2.0, 3.0], [-1e4, -1e4, -1e4 + 1.0]])
    y = np.array([1, 1, 2])
    loss, dx = student.softmax_loss(x, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dx)), (
        f"softmax_loss with logits of 1e4 gave loss {loss} and dx {dx}: subtract each row's max"
    )
    ref_loss, ref_dx = reference.softmax_loss(x, y)
    assert_close(loss, ref_loss, name="softmax_loss loss with logits of 1e4")
    assert_close(dx, ref_dx, name="softmax_loss dx with logits of 1e4")


def test_softmax_loss_is_batch_mean(student, reference, rng):
    x = rng.standard_normal((4, 5))
    y = rng.integers(0, 5, 4)
    whole, _ = student.softmax_loss(x, y)
    # The mean of wrong per-row losses (all zero, say) would equal itself: check the value too.
    assert_close(whole, reference.softmax_loss(x, y)[0], name="softmax_loss of a batch")
    rows = [student.softmax_loss(x[i:i + 1], y[i:i + 1])[0] for i in range(4)]
    assert_close(whole, np.mean(rows), name="softmax_loss of a batch (the mean of per-row losses)")


@pytest.mark.parametrize("x_shape,y_shape", [((1, 1), (1,)), ((5, 1), (5,)), ((5, 1), (5, 1)),
                                             ((4, 3), (4, 3))], ids=str)
def test_mse_loss_matches_reference(student, reference, rng, x_shape, y_shape):
    x = rng.standard_normal(x_shape)
    y = rng.standard_normal(y_shape)
    loss, dx = student.mse_loss(x, y)
    ref_loss, ref_dx = reference.mse_loss(x, y)
    assert_close(loss, ref_loss, name=f"mse_loss loss, x {x_shape}, y {y_shape}")
    assert_close(dx, ref_dx, name=f"mse_loss dx, x {x_shape}, y {y_shape}")
    check_gradients(student.mse_loss, {"x": x, "y": y}, {"x": dx}, output=0)


def test_mse_loss_perfect_prediction(student, reference, rng):
    x = rng.standard_normal((3, 2))
    # First an imperfect prediction: a loss that is always zero must not pass this test.
    y = rng.standard_normal((3, 2))
    loss, dx = student.mse_loss(x, y)
    ref_loss, ref_dx = reference.mse_loss(x, y)
    assert_close(loss, ref_loss, name="mse_loss loss (predictions differ from targets)")
    assert_close(dx, ref_dx, name="mse_loss dx (predictions differ from targets)")
    loss, dx = student.mse_loss(x, x.copy())
    assert_close(loss, 0.0, name="mse_loss when predictions equal targets")
    assert_close(dx, np.zeros((3, 2)), name="mse_loss dx when predictions equal targets")


# --- dropout --------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.25, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(1, 6), (8, 5), (2, 3, 4)], ids=str)
def test_dropout_matches_reference(student, reference, rng, p, shape):
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    param = {"mode": "train", "p": p, "seed": 17}
    out, cache = student.dropout_forward(x, dict(param))
    ref_out, ref_cache = reference.dropout_forward(x, dict(param))
    assert_close(out, ref_out, name=f"dropout_forward out (p={p}, seed=17, shape {shape})")
    assert_close(student.dropout_backward(dout, cache), reference.dropout_backward(dout, ref_cache),
                 name=f"dropout_backward dx (p={p}, shape {shape})")


def test_dropout_keep_all(student, rng):
    x = rng.standard_normal((4, 6))
    out, cache = student.dropout_forward(x, {"mode": "train", "p": 1.0, "seed": 3})
    assert_close(out, x, name="dropout_forward out with keep probability p=1")
    dout = rng.standard_normal((4, 6))
    assert_close(student.dropout_backward(dout, cache), dout, name="dropout_backward dx with p=1")


def test_dropout_test_mode_ignores_p(student, rng):
    x = rng.standard_normal((3, 4))
    out, cache = student.dropout_forward(x, {"mode": "test", "p": 0.2, "seed": 1})
    assert_close(out, x, name="dropout_forward out in test mode (no mask, no scaling)")
    dout = rng.standard_normal((3, 4))
    assert_close(student.dropout_backward(dout, cache), dout, name="dropout_backward dx in test mode")


def test_dropout_gradcheck_hidden(student, reference, rng):
    x = rng.standard_normal((3, 4, 2))
    dout = rng.standard_normal((3, 4, 2))
    param = {"mode": "train", "p": 0.4, "seed": 9}
    out, cache = student.dropout_forward(x, param)
    # The gradient check differentiates this forward: it must be the right one.
    assert_close(out, reference.dropout_forward(x, dict(param))[0],
                 name="dropout_forward out (p=0.4, seed=9)")
    dx = student.dropout_backward(dout, cache)
    check_gradients(student.dropout_forward, {"x": x, "dropout_param": param}, {"x": dx},
                    dout=dout, output=0)


# --- batch normalization --------------------------------------------------------------------

BN_SHAPES = [(2, 1), (4, 3), (10, 5)]


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batchnorm_train_matches_reference(student, reference, rng, shape):
    N, D = shape
    x = 3.0 * rng.standard_normal(shape) - 1.0
    gamma = rng.standard_normal(D)
    beta = rng.standard_normal(D)
    dout = rng.standard_normal(shape)
    out, cache = student.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    ref_out, ref_cache = reference.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    assert_close(out, ref_out, name=f"batchnorm_forward out (train), shape {shape}")
    for name, got, exp in zip(("dx", "dgamma", "dbeta"), student.batchnorm_backward(dout, cache),
                              reference.batchnorm_backward(dout, ref_cache)):
        assert_close(got, exp, name=f"batchnorm_backward {name}, shape {shape}", threshold=1e-6)


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batchnorm_gradcheck_hidden(student, reference, rng, shape):
    N, D = shape
    x = 2.0 * rng.standard_normal(shape) + 0.5
    gamma = rng.standard_normal(D)
    beta = rng.standard_normal(D)
    dout = rng.standard_normal(shape)
    bn_param = {"mode": "train", "eps": 1e-5}
    out, cache = student.batchnorm_forward(x, gamma, beta, bn_param)
    # The gradient check differentiates this forward: it must be the right one.
    assert_close(out, reference.batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": 1e-5})[0],
                 name=f"batchnorm_forward out (train), shape {shape}")
    dx, dgamma, dbeta = student.batchnorm_backward(dout, cache)
    check_gradients(student.batchnorm_forward,
                    {"x": x, "gamma": gamma, "beta": beta, "bn_param": bn_param},
                    {"x": dx, "gamma": dgamma, "beta": dbeta}, dout=dout, output=0)


def test_batchnorm_running_averages_many_steps(student, reference, rng):
    gamma, beta = np.ones(3), np.zeros(3)
    mine = {"mode": "train", "momentum": 0.7}
    ref = {"mode": "train", "momentum": 0.7}
    for step in range(4):
        x = rng.standard_normal((6, 3)) * (step + 1) + step
        out, _ = student.batchnorm_forward(x, gamma, beta, mine)
        ref_out, _ = reference.batchnorm_forward(x, gamma, beta, ref)
        # The running averages are a side effect; the output is what the layer is for.
        assert_close(out, ref_out, name=f"batchnorm_forward out at step {step + 1}")
        for key in ("running_mean", "running_var"):
            assert key in mine, f"bn_param has no '{key}' after a training step: store it there"
            assert_close(mine[key], ref[key], name=f"bn_param['{key}'] after step {step + 1}")


def test_batchnorm_default_eps_and_momentum(student, rng):
    x = rng.standard_normal((5, 2)) * 0.01
    bn_param = {"mode": "train"}
    out, _ = student.batchnorm_forward(x, np.ones(2), np.zeros(2), bn_param)
    mean, var = x.mean(axis=0), x.var(axis=0)
    assert_close(out, (x - mean) / np.sqrt(var + 1e-5), name="batchnorm out with the default eps 1e-5")
    assert_close(bn_param["running_mean"], 0.1 * mean, name="running_mean with the default momentum 0.9")
    assert_close(bn_param["running_var"], 0.9 + 0.1 * var, name="running_var with the default momentum 0.9")


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

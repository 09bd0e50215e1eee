"""Visible tests for hw3 (optimizer updates): run them with `pytest assignments/hw3`.

Each update rule takes one step from fixed inputs and is compared with values worked out once
from the formulas in the handout. The stateful rules start from a non-zero state, so the way
the state enters the update is checked as well as the way it is updated.
"""
import math

import numpy as np

from autograder.gradcheck import assert_close

# Parameters, gradient and starting state shared by the one-step tests (shape 2 x 3).
W = np.array([[-0.4, -0.15, 0.1], [0.35, 0.6, 0.85]])
DW = np.array([[0.25, -0.7, 0.05], [-0.3, 0.45, 1.1]])
VELOCITY = np.array([[0.1, -0.2, 0.05], [0.3, -0.15, 0.02]])
CACHE = np.array([[0.5, 0.02, 0.3], [0.9, 0.1, 0.05]])
ADAM_M = np.array([[0.1, -0.2, 0.03], [-0.05, 0.12, 0.2]])
ADAM_V = np.array([[0.02, 0.05, 0.001], [0.01, 0.03, 0.09]])


def check_step(next_w, expected_w, rule):
    """Compare the new parameters, and the step they imply, with the expected ones."""
    assert_close(next_w, expected_w, name=f"{rule}: next_w")
    # The step is small next to w for the adaptive rules; comparing it on its own keeps a
    # wrong step from hiding behind the size of w.
    assert_close(np.asarray(next_w) - W, np.asarray(expected_w) - W, name=f"{rule}: next_w - w")


def check_state(config, key, expected, rule):
    assert isinstance(config, dict), f"{rule} must return (next_w, config) with config a dict"
    assert key in config, f"{rule}: the returned config has no '{key}' (keys: {sorted(config)})"
    assert_close(config[key], expected, name=f"{rule}: config['{key}'] after one step")


def test_sgd_one_step(student):
    next_w, _ = student.sgd(W.copy(), DW.copy(), {"learning_rate": 0.1})
    check_step(next_w, [[-0.425, -0.08, 0.095], [0.38, 0.555, 0.74]], "sgd")


def test_momentum_one_step(student):
    config = {"learning_rate": 0.1, "momentum": 0.8, "velocity": VELOCITY.copy()}
    next_w, config = student.sgd_momentum(W.copy(), DW.copy(), config)
    check_step(next_w, [[-0.345, -0.24, 0.135], [0.62, 0.435, 0.756]], "sgd_momentum")
    check_state(config, "velocity", [[0.055, -0.09, 0.035], [0.27, -0.165, -0.094]], "sgd_momentum")


def test_momentum_first_step_starts_at_rest(student):
    # A config with no velocity yet: the velocity starts at zero, so the first step is a plain
    # SGD step. (The hyperparameters are given: the defaults are the conventions part's tests.)
    config = {"learning_rate": 1e-2, "momentum": 0.9}
    next_w, config = student.sgd_momentum(W.copy(), DW.copy(), config)
    check_step(next_w, W - 1e-2 * DW, "sgd_momentum (no velocity yet)")
    check_state(config, "velocity", -1e-2 * DW, "sgd_momentum (no velocity yet)")


def test_nesterov_one_step(student):
    config = {"learning_rate": 0.1, "momentum": 0.8, "velocity": VELOCITY.copy()}
    next_w, config = student.nesterov_momentum(W.copy(), DW.copy(), config)
    check_step(next_w, [[-0.381, -0.152, 0.123], [0.596, 0.423, 0.6648]], "nesterov_momentum")
    check_state(config, "velocity", [[0.055, -0.09, 0.035], [0.27, -0.165, -0.094]], "nesterov_momentum")


def test_nesterov_first_step_starts_at_rest(student):
    # v_old = 0 and v = -lr * dw, so w moves by (1 + momentum) * v = -1.9 * 1e-2 * dw.
    config = {"learning_rate": 1e-2, "momentum": 0.9}
    next_w, config = student.nesterov_momentum(W.copy(), DW.copy(), config)
    check_step(next_w, W - 1.9e-2 * DW, "nesterov_momentum (no velocity yet)")
    check_state(config, "velocity", -1e-2 * DW, "nesterov_momentum (no velocity yet)")


def test_adagrad_one_step(student):
    config = {"learning_rate": 0.1, "epsilon": 1e-7, "cache": CACHE.copy()}
    next_w, config = student.adagrad(W.copy(), DW.copy(), config)
    check_step(
        next_w,
        [
            [-0.43333332888888954, -0.05198040784352759, 0.09090909256198318],
            [0.3801511314274736, 0.5181818330578485, 0.7520042200289356],
        ],
        "adagrad",
    )
    check_state(config, "cache", [[0.5625, 0.51, 0.3025], [0.99, 0.3025, 1.26]], "adagrad")


def test_rmsprop_one_step(student):
    config = {"learning_rate": 0.01, "decay_rate": 0.9, "epsilon": 1e-8, "cache": CACHE.copy()}
    next_w, config = student.rmsprop(W.copy(), DW.copy(), config)
    check_step(
        next_w,
        [
            [-0.40370116599619355, -0.12295664171975712, 0.09903819474704385],
            [0.3533149676840289, 0.5864473818645844, 0.8230015625105906],
        ],
        "rmsprop",
    )
    check_state(config, "cache", [[0.45625, 0.067, 0.27025], [0.819, 0.11025, 0.166]], "rmsprop")


def test_adam_one_step(student):
    config = {
        "learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
        "m": ADAM_M.copy(), "v": ADAM_V.copy(), "t": 5,
    }
    next_w, config = student.adam(W.copy(), DW.copy(), config)
    check_step(
        next_w,
        [
            [-0.40134119031969295, -0.1481621037715756, 0.09833047468284754],
            [0.3512333874137604, 0.5985456990118192, 0.8484137937397517],
        ],
        "adam (t=5 before the step)",
    )
    check_state(config, "m", [[0.115, -0.25, 0.032], [-0.075, 0.153, 0.29]], "adam")
    check_state(config, "v", [[0.0200425, 0.05044, 0.0010015], [0.01008, 0.0301725, 0.09112]], "adam")
    assert config.get("t") == 6, (
        f"adam: config['t'] should go from 5 to 6 in one step, got {config.get('t')!r}"
    )


def test_adam_first_step_from_rest(student):
    # At t = 1 the bias correction undoes the (1 - beta) factors exactly: m_hat = dw and
    # v_hat = dw**2, so the first step is lr * dw / (|dw| + eps), about lr * sign(dw).
    config = {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
    next_w, config = student.adam(W.copy(), DW.copy(), config)
    check_step(next_w, W - 1e-3 * DW / (np.abs(DW) + 1e-8), "adam (first step: no m, v, t yet)")
    assert config.get("t") == 1, (
        f"adam: after the first step config['t'] should be 1 (t is incremented before the bias "
        f"correction), got {config.get('t')!r}"
    )


def test_clip_scales_to_max_norm(student):
    # Global norm sqrt(3^2 + 4^2 + 12^2) = 13; clipping to 6.5 halves every entry.
    grads = {"W1": np.array([[3.0, 0.0], [0.0, 4.0]]), "b1": np.array([-12.0])}
    clipped, total_norm = student.clip_grad_norm(grads, 6.5)
    assert math.isclose(float(total_norm), 13.0, rel_tol=1e-12), (
        f"total_norm should be the global L2 norm of all gradients (13.0), got {total_norm!r}"
    )
    assert sorted(clipped) == ["W1", "b1"], f"clipped should keep the keys W1, b1, got {sorted(clipped)}"
    # 1e-6: a safety term max_norm / (total_norm + 1e-6), as torch writes it, is accepted too.
    assert_close(clipped["W1"], [[1.5, 0.0], [0.0, 2.0]], threshold=1e-6, name="clipped['W1']")
    assert_close(clipped["b1"], [-6.0], threshold=1e-6, name="clipped['b1']")


def test_clip_below_max_returns_same_values(student):
    grads = {"W": np.array([0.3, -0.4])}
    clipped, total_norm = student.clip_grad_norm(grads, 1.0)
    assert math.isclose(float(total_norm), 0.5, rel_tol=1e-12), (
        f"total_norm should be 0.5, got {total_norm!r}"
    )
    assert_close(clipped["W"], [0.3, -0.4], name="clipped['W'] (norm below max_norm: unchanged)")


# Each schedule is checked at several epochs in one test: at epoch 0 (and, for step decay, up
# to the first drop) the rate is lr0, which a schedule that never changes it would also give.
def test_schedule_step_decay_values(student):
    for epoch, expected in [(0, 0.1), (9, 0.1), (10, 0.05), (19, 0.05), (20, 0.025), (35, 0.0125)]:
        lr = student.step_decay(0.1, epoch, drop=0.5, every=10)
        assert math.isclose(float(lr), expected, rel_tol=1e-12), (
            f"step_decay(0.1, {epoch}, drop=0.5, every=10) should be {expected}, got {lr!r}"
        )


def test_schedule_cosine_values(student):
    for epoch, expected in [(0, 0.1), (25, 0.01 + 0.09 * (1 + math.sqrt(0.5)) / 2), (50, 0.055),
                            (100, 0.01)]:
        lr = student.cosine_schedule(0.1, epoch, 100, lr_min=0.01)
        assert math.isclose(float(lr), expected, rel_tol=1e-12), (
            f"cosine_schedule(0.1, {epoch}, 100, lr_min=0.01) should be {expected}, got {lr!r}"
        )

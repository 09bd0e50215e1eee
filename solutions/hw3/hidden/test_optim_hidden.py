"""Hidden tests for hw3: whole trajectories, the config conventions, clipping edges, schedules.

Every trajectory is 50 steps on a quadratic loss 0.5 * w.A.w - b.w whose gradient the test
computes from the current parameters, so a wrong step also changes every later gradient. The
student's rule is called once per step with the config it returned the step before, exactly as
a training loop would, and compared with the reference after every step.
"""
import copy
import math

import numpy as np
import pytest

from autograder.gradcheck import assert_close

RULES = ["sgd", "sgd_momentum", "nesterov_momentum", "adagrad", "rmsprop", "adam"]

# The documented defaults of every rule (the handout and the docstrings of optim.py).
DEFAULTS = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "nesterov_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "adagrad": {"learning_rate": 1e-2, "epsilon": 1e-7},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
}
# The state each rule keeps in config, and a non-default hyperparameter to pass alone.
STATE_KEYS = {
    "sgd": [],
    "sgd_momentum": ["velocity"],
    "nesterov_momentum": ["velocity"],
    "adagrad": ["cache"],
    "rmsprop": ["cache"],
    "adam": ["m", "v", "t"],
}
PARTIAL = {
    "sgd": {"learning_rate": 0.03},
    "sgd_momentum": {"momentum": 0.6},
    "nesterov_momentum": {"learning_rate": 0.04},
    "adagrad": {"learning_rate": 0.2},
    "rmsprop": {"decay_rate": 0.8},
    "adam": {"beta1": 0.7},
}
STEPS = 50


class Quadratic:
    """L(w) = 0.5 * w.A.w - b.w over w of shape (3, 4); A symmetric, eigenvalues 0.5 .. 8."""

    shape = (3, 4)

    def __init__(self, rng):
        n = int(np.prod(self.shape))
        q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        self.A = (q * np.linspace(0.5, 8.0, n)) @ q.T
        self.b = rng.standard_normal(n)
        self.w0 = rng.standard_normal(self.shape)

    def grad(self, w):
        return (self.A @ w.reshape(-1) - self.b).reshape(self.shape)


def run_trajectory(student, reference, rng, rule, config):
    """Run STEPS steps of one rule for the student and the reference, comparing every step."""
    problem = Quadratic(rng)
    w_s, cfg_s = problem.w0.copy(), copy.deepcopy(config)
    w_r, cfg_r = problem.w0.copy(), copy.deepcopy(config)
    for step in range(1, STEPS + 1):
        w_s, cfg_s = getattr(student, rule)(w_s, problem.grad(np.asarray(w_s)), cfg_s)
        w_r, cfg_r = getattr(reference, rule)(w_r, problem.grad(w_r), cfg_r)
        assert_close(w_s, w_r, name=f"{rule}: w after step {step} of {STEPS} (config {config})")
    for key in STATE_KEYS[rule]:
        assert_close(cfg_s[key], cfg_r[key], name=f"{rule}: config['{key}'] after {STEPS} steps")


SETTINGS = {
    "sgd": [None, {"learning_rate": 0.05}],
    "sgd_momentum": [None, {"learning_rate": 0.02, "momentum": 0.5}],
    "nesterov_momentum": [None, {"learning_rate": 0.02, "momentum": 0.5}],
    "adagrad": [None, {"learning_rate": 0.3, "epsilon": 1e-6}],
    # Not a faster decay: with decay_rate 0.9 the cache of a coordinate whose gradient passes
    # near zero collapses, the step becomes extremely sensitive to rounding, and two correct
    # ways of writing the update drift apart by more than the tolerance within 50 steps.
    "rmsprop": [None, {"learning_rate": 0.01, "decay_rate": 0.98, "epsilon": 1e-6}],
    "adam": [None, {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7}],
}
IDS = ["defaults", "custom"]


@pytest.mark.parametrize("config", SETTINGS["sgd"], ids=IDS)
def test_sgd_trajectory(student, reference, rng, config):
    run_trajectory(student, reference, rng, "sgd", config)


@pytest.mark.parametrize("config", SETTINGS["sgd_momentum"], ids=IDS)
def test_momentum_trajectory(student, reference, rng, config):
    run_trajectory(student, reference, rng, "sgd_momentum", config)


@pytest.mark.parametrize("config", SETTINGS["nesterov_momentum"], ids=IDS)
def test_nesterov_trajectory(student, reference, rng, config):
    run_trajectory(student, reference, rng, "nesterov_momentum", config)


@pytest.mark.parametrize("config", SETTINGS["adagrad"], ids=IDS)
def test_adagrad_trajectory(student, reference, rng, config):
    run_trajectory(student, reference, rng, "adagrad", config)


@pytest.mark.parametrize("config", SETTINGS["rmsprop"], ids=IDS)
def test_rmsprop_trajectory(student, reference, rng, config):
    run_trajectory(student, reference, rng, "rmsprop", config)


@pytest.mark.parametrize("config", SETTINGS["adam"], ids=IDS)
def test_adam_trajectory(student, reference, rng, config):
    run_trajectory(student, reference, rng, "adam", config)


def test_adam_step_count_in_config(student, reference):
    # t counts the steps taken; a run resumed from a saved config continues the count.
    w, dw = np.full((2, 2), 0.5), np.full((2, 2), -0.25)
    w_r, config, config_r = w.copy(), None, None
    for _ in range(3):
        w, config = student.adam(w, dw, config)
        w_r, config_r = reference.adam(w_r, dw, config_r)
    assert config.get("t") == 3, f"adam: after 3 steps config['t'] should be 3, got {config.get('t')!r}"
    # Counting steps is bookkeeping; the steps must be taken too.
    assert_close(w, w_r, name="adam: w after 3 steps from the defaults")


# --- the update interface --------------------------------------------------------------------


def _inputs(rng, shape=(4, 3)):
    return rng.standard_normal(shape), rng.standard_normal(shape)


@pytest.mark.parametrize("rule", RULES)
def test_config_none_fills_defaults(student, reference, rng, rule):
    w, dw = _inputs(rng)
    # Copies go in, so that a rule that changes its inputs fails test_inputs_not_modified
    # and not this test.
    next_w, config = getattr(student, rule)(w.copy(), dw.copy(), None)
    assert isinstance(config, dict), (
        f"{rule}(w, dw, None) must return (next_w, config) with a dict config"
    )
    for key, value in DEFAULTS[rule].items():
        assert key in config, f"{rule}: config=None should fill in '{key}' (default {value})"
        assert config[key] == value, f"{rule}: default {key} should be {value}, got {config[key]!r}"
    for key in STATE_KEYS[rule]:
        assert key in config, f"{rule}: the returned config should hold the state '{key}'"
    expected, _ = getattr(reference, rule)(w.copy(), dw.copy(), None)
    assert_close(next_w, expected, name=f"{rule}: next_w with config=None (all defaults)")


@pytest.mark.parametrize("rule", RULES)
def test_config_partial_keeps_given_keys(student, reference, rng, rule):
    w, dw = _inputs(rng)
    given = PARTIAL[rule]
    next_w, config = getattr(student, rule)(w.copy(), dw.copy(), dict(given))
    for key, value in given.items():
        assert config.get(key) == value, (
            f"{rule}: config {given} was given, but the returned config has {key}={config.get(key)!r}"
            " (keys that are given must be kept)"
        )
    for key, value in DEFAULTS[rule].items():
        if key not in given:
            assert config.get(key) == value, (
                f"{rule}: with config {given}, the missing key '{key}' should get its default {value},"
                f" got {config.get(key)!r}"
            )
    expected, _ = getattr(reference, rule)(w.copy(), dw.copy(), dict(given))
    assert_close(next_w, expected, name=f"{rule}: next_w with the partial config {given}")


@pytest.mark.parametrize("rule", RULES)
def test_config_state_carried_across_calls(student, reference, rng, rule):
    # Two independent runs, stepped in turn: the state of each must live in its own config
    # (not, say, in a module-level variable shared by every call).
    runs = []
    for lr in (0.01, 0.03):
        w, _ = _inputs(rng)
        runs.append({
            "w_s": w.copy(), "w_r": w.copy(),
            "cfg_s": {"learning_rate": lr}, "cfg_r": {"learning_rate": lr},
        })
    for step in range(1, 6):
        for i, run in enumerate(runs):
            dw = rng.standard_normal(run["w_r"].shape)
            run["w_s"], run["cfg_s"] = getattr(student, rule)(run["w_s"], dw.copy(), run["cfg_s"])
            run["w_r"], run["cfg_r"] = getattr(reference, rule)(run["w_r"], dw.copy(), run["cfg_r"])
            assert_close(
                run["w_s"], run["w_r"],
                name=f"{rule}: w of run {i} after step {step} "
                "(two runs stepped in turn, each with its own config)",
            )
    for i, run in enumerate(runs):
        for key in STATE_KEYS[rule]:
            assert_close(
                run["cfg_s"][key], run["cfg_r"][key], name=f"{rule}: config['{key}'] of run {i}"
            )


@pytest.mark.parametrize("rule", RULES)
def test_inputs_not_modified(student, reference, rng, rule):
    w, dw = _inputs(rng)
    w_passed, dw_passed = w.copy(), dw.copy()
    config = ref_config = None
    for step in (1, 2):  # the second call has state, so in-place updates of it are exercised
        next_w, config = getattr(student, rule)(w_passed, dw_passed, config)
        expected, ref_config = getattr(reference, rule)(w.copy(), dw.copy(), ref_config)
        # Leaving the inputs alone is easy for a rule that returns anything at all: the value
        # must be the step too.
        assert_close(next_w, expected, name=f"{rule}: next_w of call {step} (from w, dw, the same each time)")
        assert np.array_equal(dw_passed, dw), (
            f"{rule} changed the gradient dw it was given; leave dw as it is"
        )
        assert np.array_equal(w_passed, w), (
            f"{rule} changed w in place; return a new array next_w instead"
        )
    assert not np.array_equal(next_w, w), f"{rule}: next_w equals w, so no step was taken"


# --- gradient clipping ----------------------------------------------------------------------


def _grads(rng, scale):
    shapes = {"W1": (4, 3), "b1": (3,), "W2": (3, 2), "b2": (2,)}
    return {k: scale * rng.standard_normal(s) for k, s in shapes.items()}


def _global_norm(grads):
    return math.sqrt(sum(float(np.sum(np.asarray(g) ** 2)) for g in grads.values()))


@pytest.mark.parametrize("scale, max_norm", [(1.0, 0.5), (3.0, 1.0), (0.1, 5.0), (2.0, 100.0)])
def test_clip_matches_reference(student, reference, rng, scale, max_norm):
    grads = _grads(rng, scale)
    clipped, total_norm = student.clip_grad_norm(copy.deepcopy(grads), max_norm)
    exp_clipped, exp_norm = reference.clip_grad_norm(copy.deepcopy(grads), max_norm)
    assert_close(total_norm, exp_norm, name="total_norm (the global norm before clipping)")
    assert sorted(clipped) == sorted(grads), (
        f"clipped should have the keys {sorted(grads)}, got {sorted(clipped)}"
    )
    for key in grads:
        assert_close(clipped[key], exp_clipped[key], name=f"clipped['{key}'] (max_norm {max_norm})")


def test_clip_result_has_max_norm(student, rng):
    grads = _grads(rng, 5.0)
    clipped, _ = student.clip_grad_norm(grads, 2.0)
    norm = _global_norm(clipped)
    assert math.isclose(norm, 2.0, rel_tol=1e-10), (
        f"after clipping the global norm should be max_norm=2.0, got {norm}"
    )


def test_clip_zero_gradient(student, reference, rng):
    # Returning the input unchanged is right for zero gradients: a clip that never clips
    # would pass on those alone, so first a gradient that does need clipping.
    big = _grads(rng, 3.0)
    clipped, total_norm = student.clip_grad_norm(copy.deepcopy(big), 1.0)
    exp_clipped, exp_norm = reference.clip_grad_norm(copy.deepcopy(big), 1.0)
    assert_close(total_norm, exp_norm, name="total_norm (a gradient of norm above max_norm=1)")
    for key in big:
        assert_close(clipped[key], exp_clipped[key], name=f"clipped['{key}'] (norm above max_norm=1)")
    grads = {"W": np.zeros((3, 2)), "b": np.zeros(2)}
    clipped, total_norm = student.clip_grad_norm(grads, 1.0)
    assert float(total_norm) == 0.0, f"the norm of all-zero gradients is 0.0, got {total_norm!r}"
    for key in grads:
        got = np.asarray(clipped[key])
        assert np.all(np.isfinite(got)), f"clipped['{key}'] has NaN or inf for a zero gradient (0 / 0?)"
        assert np.array_equal(got, grads[key]), (
            f"a zero gradient should come back unchanged (clipped['{key}'])"
        )


def test_clip_norm_below_max_unchanged(student, rng):
    grads = _grads(rng, 0.05)
    clipped, total_norm = student.clip_grad_norm(copy.deepcopy(grads), 10.0)
    assert_close(total_norm, _global_norm(grads), name="total_norm")
    for key in grads:
        assert_close(clipped[key], grads[key], threshold=1e-15,
                     name=f"clipped['{key}'] (norm below max_norm: unchanged)")


def test_clip_inputs_not_modified(student, reference, rng):
    grads = _grads(rng, 4.0)
    passed = copy.deepcopy(grads)
    clipped, total_norm = student.clip_grad_norm(passed, 1.0)
    # Leaving the input alone is easy for a clip that does nothing: the result must be right.
    exp_clipped, exp_norm = reference.clip_grad_norm(copy.deepcopy(grads), 1.0)
    assert_close(total_norm, exp_norm, name="total_norm")
    for key in grads:
        assert_close(clipped[key], exp_clipped[key], name=f"clipped['{key}'] (max_norm 1)")
    assert sorted(passed) == sorted(grads), "clip_grad_norm changed the keys of the dict it was given"
    for key in grads:
        assert np.array_equal(passed[key], grads[key]), (
            f"clip_grad_norm changed grads['{key}'] in place; return new arrays in a new dict"
        )


# --- learning-rate schedules ---------------------------------------------------------------


@pytest.mark.parametrize("lr0, drop, every", [(0.1, 0.5, 10), (1.0, 0.1, 3), (0.02, 0.9, 1)])
def test_schedule_step_decay_matches_reference(student, reference, lr0, drop, every):
    for epoch in range(0, 40):
        got = student.step_decay(lr0, epoch, drop=drop, every=every)
        expected = reference.step_decay(lr0, epoch, drop=drop, every=every)
        assert math.isclose(float(got), expected, rel_tol=1e-12), (
            f"step_decay({lr0}, {epoch}, drop={drop}, every={every}) should be {expected}, got {got!r}"
        )


def test_schedule_step_decay_defaults(student):
    got = student.step_decay(0.2, 25)
    assert math.isclose(float(got), 0.05, rel_tol=1e-12), (
        f"step_decay(0.2, 25) with the defaults drop=0.5, every=10 should be 0.05, got {got!r}"
    )


@pytest.mark.parametrize("lr0, total, lr_min", [(0.1, 20, 0.0), (0.5, 7, 0.05), (1e-3, 1, 1e-5)])
def test_schedule_cosine_matches_reference(student, reference, lr0, total, lr_min):
    for epoch in range(0, total + 1):
        got = student.cosine_schedule(lr0, epoch, total, lr_min=lr_min)
        expected = reference.cosine_schedule(lr0, epoch, total, lr_min=lr_min)
        assert math.isclose(float(got), expected, rel_tol=1e-10, abs_tol=1e-15), (
            f"cosine_schedule({lr0}, {epoch}, {total}, lr_min={lr_min}) should be {expected}, "
            f"got {got!r}"
        )


def test_schedule_cosine_default_lr_min(student):
    got = student.cosine_schedule(0.4, 10, 20)
    assert math.isclose(float(got), 0.2, rel_tol=1e-12), (
        f"cosine_schedule(0.4, 10, 20) is halfway down to the default lr_min=0: expected 0.2, "
        f"got {got!r}"
    )


def test_schedule_cosine_stays_at_min_after_end(student):
    for epoch in (31, 45, 90):
        got = student.cosine_schedule(0.1, epoch, 30, lr_min=0.002)
        assert math.isclose(float(got), 0.002, rel_tol=1e-12), (
            f"after total_epochs the rate stays at lr_min: "
            f"cosine_schedule(0.1, {epoch}, 30, lr_min=0.002) should be 0.002, got {got!r}"
        )

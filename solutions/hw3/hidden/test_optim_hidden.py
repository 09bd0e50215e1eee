"""Hidden tests for hw3: whole trajectories, the update interface, clipping edges, schedules.

Every trajectory is 50 steps on a quadratic loss 0.5 * w.A.w - b.w whose gradient the test
computes from the current parameters, so a wrong step also changes every later gradient. The
student's rule is called once per step with the config it returned the step before, exactly as
a training loop would, and compared with the reference after every step. The trajectories pass
every hyperparameter explicitly: the defaults are the interface's business (the conventions
part), so a wrong default costs points there and not again in the rule's own part.

The conventions part judges the interface, not the update rule: its tests compare the
student's rule with itself (config=None against the defaults passed explicitly, a replayed step
against the original), so a wrong step costs points in its rule's part only. Each of its tests
also checks that a step was taken at all, so that code which does nothing earns nothing there.
"""
import copy
import math

import numpy as np
import pytest

from autograder.gradcheck import assert_close
from autograder.verdicts import check_inputs_rule

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
    "sgd": [{"learning_rate": 0.05}],
    "sgd_momentum": [{"learning_rate": 0.02, "momentum": 0.5}],
    "nesterov_momentum": [{"learning_rate": 0.02, "momentum": 0.5}],
    "adagrad": [{"learning_rate": 0.3, "epsilon": 1e-6}],
    # Not a faster decay: with decay_rate 0.9 the cache of a coordinate whose gradient passes
    # near zero collapses, the step becomes extremely sensitive to rounding, and two correct
    # ways of writing the update drift apart by more than the tolerance within 50 steps.
    "rmsprop": [{"learning_rate": 0.01, "decay_rate": 0.98, "epsilon": 1e-6}],
    "adam": [{"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7}],
}
# The handout's defaults, given explicitly (see the module docstring), and one custom setting.
SETTINGS = {rule: [dict(DEFAULTS[rule])] + custom for rule, custom in SETTINGS.items()}
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
    w_r, config, config_r = w.copy(), dict(DEFAULTS["adam"]), dict(DEFAULTS["adam"])
    for _ in range(3):
        w, config = student.adam(w, dw, config)
        w_r, config_r = reference.adam(w_r, dw, config_r)
    assert config.get("t") == 3, f"adam: after 3 steps config['t'] should be 3, got {config.get('t')!r}"
    # Counting steps is bookkeeping; the steps must be taken too.
    assert_close(w, w_r, name="adam: w after 3 steps")


# --- the update interface (conventions) ------------------------------------------------------


def _inputs(rng, shape=(4, 3)):
    return rng.standard_normal(shape), rng.standard_normal(shape)


def assert_same_step(got, expected, name):
    """The same code on the same inputs gives the same numbers (NaN where the other has NaN:
    a wrong step is its rule's business, not the interface's)."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape == expected.shape and np.array_equal(got, expected, equal_nan=True):
        return
    assert_close(got, expected, name=name)


def assert_steps_taken(rule, calls):
    """calls: (w, next_w) of calls with different inputs. Each must move w, and no two may give
    the same next_w: the interface is graded for a rule that computes a step."""
    for w, next_w in calls:
        assert not np.array_equal(np.asarray(next_w), w), f"{rule}: next_w equals w, so no step was taken"
    for (_, a), (_, b) in zip(calls, calls[1:]):
        assert not np.array_equal(np.asarray(a), np.asarray(b)), (
            f"{rule}: two different (w, dw) gave the same next_w, so next_w is not a step from w"
        )


@pytest.mark.parametrize("rule", RULES)
def test_config_none_fills_defaults(student, rng, rule):
    # config=None means "the defaults": the same step as the defaults passed explicitly, and a
    # returned config that holds them (and the state) for the next call.
    w, dw = _inputs(rng)
    next_w, config = getattr(student, rule)(w, dw, None)
    assert isinstance(config, dict), (
        f"{rule}(w, dw, None) must return (next_w, config) with a dict config"
    )
    for key, value in DEFAULTS[rule].items():
        assert key in config, f"{rule}: config=None should fill in '{key}' (default {value})"
        assert config[key] == value, f"{rule}: default {key} should be {value}, got {config[key]!r}"
    for key in STATE_KEYS[rule]:
        assert key in config, f"{rule}: the returned config should hold the state '{key}'"
    explicit, _ = getattr(student, rule)(w, dw, dict(DEFAULTS[rule]))
    assert_same_step(next_w, explicit, f"{rule}: next_w with config=None vs with the defaults "
                                       f"{DEFAULTS[rule]} passed explicitly")
    w2, dw2 = _inputs(rng)
    next_w2, _ = getattr(student, rule)(w2, dw2, None)
    assert_steps_taken(rule, [(w, next_w), (w2, next_w2)])


@pytest.mark.parametrize("rule", RULES)
def test_config_partial_keeps_given_keys(student, rng, rule):
    w, dw = _inputs(rng)
    given = PARTIAL[rule]
    next_w, config = getattr(student, rule)(w, dw, dict(given))
    assert isinstance(config, dict), f"{rule} must return (next_w, config) with a dict config"
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
    full = {**DEFAULTS[rule], **given}
    explicit, _ = getattr(student, rule)(w, dw, dict(full))
    assert_same_step(next_w, explicit, f"{rule}: next_w with the partial config {given} vs with "
                                       f"the full config {full}")
    w2, dw2 = _inputs(rng)
    next_w2, _ = getattr(student, rule)(w2, dw2, dict(given))
    assert_steps_taken(rule, [(w, next_w), (w2, next_w2)])


@pytest.mark.parametrize("rule", RULES)
def test_config_state_kept_in_config(student, rng, rule):
    # The rule's whole memory is its config: two runs stepped in turn, then every step taken
    # again from a copy of the config it was given, must give the same next_w. A velocity kept
    # in a module-level variable (shared by every call) changes the replayed steps.
    runs = [{"w": rng.standard_normal((4, 3)), "config": {"learning_rate": lr}} for lr in (0.01, 0.03)]
    calls = []
    for _ in range(5):
        for i, run in enumerate(runs):
            dw = rng.standard_normal((4, 3))
            given = copy.deepcopy(run["config"])
            w = np.asarray(run["w"])
            run["w"], run["config"] = getattr(student, rule)(w, dw, run["config"])
            assert isinstance(run["config"], dict), f"{rule} must return (next_w, config) with a dict config"
            calls.append((i, w, dw, given, run["w"]))
    for step, (i, w, dw, given, next_w) in enumerate(calls):
        again, _ = getattr(student, rule)(w, dw, copy.deepcopy(given))
        assert_same_step(
            again, next_w,
            f"{rule}: call {step + 1} of two runs stepped in turn (run {i}), taken again from a copy "
            "of the config it was given (is some state kept outside config?)",
        )
    assert_steps_taken(rule, [(w, next_w) for _, w, _, _, next_w in calls[:2]])
    for _, w, _, _, next_w in calls:
        assert not np.array_equal(np.asarray(next_w), w), f"{rule}: next_w equals w, so no step was taken"


def _state_config(rule, rng, shape=(4, 3)):
    """A config as a later step sees it: hyperparameters and non-zero state."""
    state = {
        "sgd": {},
        "sgd_momentum": {"velocity": 0.1 * rng.standard_normal(shape)},
        "nesterov_momentum": {"velocity": 0.1 * rng.standard_normal(shape)},
        "adagrad": {"cache": rng.uniform(0.5, 2.0, shape)},
        "rmsprop": {"cache": rng.uniform(0.5, 2.0, shape)},
        "adam": {"m": 0.1 * rng.standard_normal(shape), "v": rng.uniform(0.1, 1.0, shape), "t": 4},
    }[rule]
    return {**DEFAULTS[rule], "learning_rate": 0.05, **state}


@pytest.mark.parametrize("rule", RULES)
def test_inputs_left_unchanged(student, rng, rule):
    # The stated rule "do not change w or dw in place", graded here only: a first call with
    # config=None, a second with state in its config (where in-place updates are tempting).
    w1, dw1 = _inputs(rng)
    w2, dw2 = _inputs(rng)
    first, second = check_inputs_rule(getattr(student, rule), (w1, dw1, None),
                                      (w2, dw2, _state_config(rule, rng)))
    assert_steps_taken(rule, [(w1, first[0]), (w2, second[0])])


def test_inputs_clip_grad_norm(student, rng):
    # The same rule for clip_grad_norm: neither the dict it is given nor its arrays change.
    # (A dict argument is state that crosses back from the grader's worker, so a write into
    # it shows here.) Gradients well above max_norm, where in-place scaling is tempting.
    results = []
    for scale in (4.0, 6.0):
        grads = _grads(rng, scale)
        passed = copy.deepcopy(grads)
        clipped, total_norm = student.clip_grad_norm(passed, 1.0)
        assert sorted(passed) == sorted(grads), "clip_grad_norm changed the keys of the dict it was given"
        for key in grads:
            assert np.array_equal(passed[key], grads[key]), (
                f"clip_grad_norm changed grads['{key}'] in place; return new arrays in a new dict"
            )
        results.append((grads, clipped, total_norm))
    # The rule is graded for a function that computes something from its gradients: not one
    # that hands them back with no norm, nor one that gives the same answer for any gradients.
    norms = []
    for grads, clipped, total_norm in results:
        assert isinstance(clipped, dict), "clip_grad_norm must return (clipped, total_norm), clipped a dict"
        try:
            norms.append(float(total_norm))
        except (TypeError, ValueError):
            norms.append(math.nan)
        handed_back = all(key in clipped and np.array_equal(np.asarray(clipped[key]), grads[key]) for key in grads)
        assert not (handed_back and not norms[-1] > 0), (
            "clip_grad_norm handed the gradients back with no norm: nothing was computed"
        )
    (_, c1, _), (_, c2, _) = results
    same = (norms[0] == norms[1] and sorted(c1) == sorted(c2)
            and all(np.array_equal(np.asarray(c1[k]), np.asarray(c2[k])) for k in c1))
    assert not same, "clip_grad_norm gave the same result for two different sets of gradients"


# --- gradient clipping ----------------------------------------------------------------------


def _grads(rng, scale):
    shapes = {"W1": (4, 3), "b1": (3,), "W2": (3, 2), "b2": (2,)}
    return {k: scale * rng.standard_normal(s) for k, s in shapes.items()}


def _global_norm(grads):
    return math.sqrt(sum(float(np.sum(np.asarray(g) ** 2)) for g in grads.values()))


# Every clipping test passes its own copy of the gradients: whether clip_grad_norm leaves them
# alone is test_inputs_clip_grad_norm's question (conventions), not these tests'.
# A safety term in the division, max_norm / (total_norm + 1e-6) as torch writes it, is
# accepted (the handout says so): it moves the clipped values by at most 1e-6 / total_norm
# relative, and CLIP_THRESHOLD allows that for the norms clipped here (all above 1), while
# every clipping bug (a per-array norm, a clip that always rescales) is off by far more.
CLIP_THRESHOLD = 1e-6


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
        assert_close(clipped[key], exp_clipped[key], threshold=CLIP_THRESHOLD,
                     name=f"clipped['{key}'] (max_norm {max_norm})")


def test_clip_result_has_max_norm(student, rng):
    grads = _grads(rng, 5.0)
    clipped, _ = student.clip_grad_norm(copy.deepcopy(grads), 2.0)
    norm = _global_norm(clipped)
    assert math.isclose(norm, 2.0, rel_tol=CLIP_THRESHOLD), (
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
        assert_close(clipped[key], exp_clipped[key], threshold=CLIP_THRESHOLD,
                     name=f"clipped['{key}'] (norm above max_norm=1)")
    grads = {"W": np.zeros((3, 2)), "b": np.zeros(2)}
    clipped, total_norm = student.clip_grad_norm(copy.deepcopy(grads), 1.0)
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
        # "Unchanged" up to rounding: a scale computed as min(1, max_norm / norm) is exactly 1,
        # one computed as norm / norm may be off by an ulp; a rescaling is far larger.
        assert_close(clipped[key], grads[key], threshold=1e-12,
                     name=f"clipped['{key}'] (norm below max_norm: unchanged)")


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

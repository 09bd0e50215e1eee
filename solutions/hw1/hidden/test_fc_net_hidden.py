"""Hidden tests for fc_net.py: the initialization, and the scores, loss and gradients of the
whole net against the reference's.

The initialization has its own tests. Every other test gives the student's net the
reference's parameters first, so that a wrong initialization costs only the init tests, and
judges the result against the reference net at the same inputs. The net is built from the
student's layers, so a wrong layer shows here too: each failure then says which layer is
wrong (its own tests grade it). Dropout's mask is an arbitrary draw, not fixed by the
handout: the reference net drops the units the student's dropout_forward drops.
"""
import contextlib
import copy

import numpy as np
import pytest

from autograder.gradcheck import assert_close
from autograder.verdicts import explain_with, forward_problem, judge_backward

CONFIGS = {
    "plain": {},
    "no_hidden": {"hidden_dims": []},
    "deep": {"hidden_dims": [6, 5, 4]},
    "reg": {"reg": 0.3},
    "dropout": {"dropout_keep_ratio": 0.6},
    "batchnorm": {"normalization": "batchnorm"},
    "bn_dropout_reg": {"normalization": "batchnorm", "dropout_keep_ratio": 0.75, "reg": 0.1},
    "mse": {"loss_type": "mse", "num_classes": 1},
}


def build(ns, config, dtype=np.float64, seed=21):
    """A FullyConnectedNet from `ns` (student or reference) for one of CONFIGS."""
    kwargs = {"hidden_dims": [5, 4], "input_dim": 6, "num_classes": 3, "weight_scale": 0.5}
    kwargs.update(CONFIGS[config])
    hidden_dims = kwargs.pop("hidden_dims")
    return ns.FullyConnectedNet(hidden_dims, dtype=dtype, seed=seed, **kwargs)


def batch(config, N=4, seed=99):
    """Inputs and targets for a net built by build(); inputs of shape (N, 2, 3)."""
    data = np.random.default_rng(seed)
    X = data.standard_normal((N, 2, 3))
    if config == "mse":
        return X, data.standard_normal(N)
    return X, data.integers(0, 3, N)


def use_student_masks(student, reference, monkeypatch):
    """Make the reference net drop the units that the student's dropout drops.

    The handout fixes where dropout goes (after each hidden ReLU, called with the net's
    dropout_param and its seed), not how the mask is drawn. The student's dropout_forward
    applied to ones, with the same dropout_param, gives the mask it applies in the net; the
    reference net multiplies by that mask instead of drawing its own. (A wrong dropout layer
    is then graded by the dropout tests only.)
    """
    own = reference.dropout_forward

    def dropout_forward(x, dropout_param):
        if dropout_param["mode"] != "train":
            return own(x, dropout_param)
        mask, _ = student.dropout_forward(np.ones_like(x), dict(dropout_param))
        mask = np.asarray(mask, dtype=x.dtype)
        return x * mask, (dropout_param, mask)

    # The reference is loaded afresh for each test; monkeypatch still undoes this afterwards.
    monkeypatch.setitem(reference.FullyConnectedNet.loss.__globals__, "dropout_forward", dropout_forward)


def twins(student, reference, monkeypatch, config, dtype=np.float64):
    """(mine, ref): the reference net for `config`, with its biases moved off 0 (so that no
    ReLU sits on its kink), and a student net of the same config holding the same parameters."""
    ref = build(reference, config, dtype)
    shift = np.random.default_rng(7)
    for name in sorted(ref.params):
        if name.startswith("b") and name[1:].isdigit():
            ref.params[name] = (0.1 * shift.standard_normal(ref.params[name].shape)).astype(dtype)
    mine = build(student, config, dtype)
    for name in sorted(ref.params):
        mine.params[name] = ref.params[name].copy()
    use_student_masks(student, reference, monkeypatch)
    return mine, ref


def layer_note(student, reference, config, backward=False):
    """A note naming those of the student's layers used by the net of `config` that are wrong
    (or crash) on small inputs; None when they are all right."""
    data = np.random.default_rng(0)
    x, w, b = data.standard_normal((4, 2, 3)), data.standard_normal((6, 5)), data.standard_normal(5)
    a, dout = data.standard_normal((4, 5)), data.standard_normal((4, 5))
    gamma, beta = data.standard_normal(5), data.standard_normal(5)
    scores = data.standard_normal((4, 3))
    loss = "mse_loss" if CONFIGS[config].get("loss_type") == "mse" else "softmax_loss"
    y = data.standard_normal((4, 3)) if loss == "mse_loss" else data.integers(0, 3, 4)
    batchnorm = CONFIGS[config].get("normalization") == "batchnorm"
    # Each layer: (its arguments, the names of the gradients its backward returns).
    layers = {"affine": ({"x": x, "w": w, "b": b}, ["x", "w", "b"]), "relu": ({"x": a}, ["x"])}
    if batchnorm:
        layers["batchnorm"] = ({"x": a, "gamma": gamma, "beta": beta, "bn_param": {"mode": "train"}},
                               ["x", "gamma", "beta"])

    def first_problem(name, check):
        try:
            return check()
        except AssertionError as exc:
            lines = str(exc).splitlines() or [type(exc).__name__]
            # A crash reported as "... raised X during f():" then its traceback: its last line.
            return f"{lines[0]} {lines[-1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
        except Exception as exc:  # noqa: BLE001 - student code: any crash is worth naming
            return f"{name} raised {type(exc).__name__}: {exc}"

    problems = []
    for layer, (args, grads) in layers.items():
        fwd = f"{layer}_forward"
        problems.append(first_problem(fwd, lambda: forward_problem(
            getattr(student, fwd)(*copy.deepcopy(list(args.values())))[0],
            getattr(reference, fwd)(*copy.deepcopy(list(args.values())))[0], f"{fwd} out")))
        if backward:
            pair = lambda ns: (getattr(ns, fwd), getattr(ns, f"{layer}_backward"))  # noqa: E731
            problems.append(first_problem(f"{layer}_backward", lambda: judge_backward(
                *pair(student), args, dout, grads, reference=pair(reference), threshold=1e-6) and None))
    for k, what in enumerate(("loss", "dx")):
        problems.append(first_problem(loss, lambda: forward_problem(
            getattr(student, loss)(scores, y)[k], getattr(reference, loss)(scores, y)[k], f"{loss} {what}")))
    problems = [p for p in problems if p]
    if not problems:
        return None
    return ("note: your layers are wrong too: " + "; ".join(problems) + ". The net is judged against "
            "the reference's, so a wrong layer shows here as well: fix it first (its own tests say more).")


@contextlib.contextmanager
def noted(make_note):
    """On a failure inside, add the note that make_note() returns (computed only then)."""
    __tracebackhide__ = True
    try:
        yield
    except AssertionError:
        with explain_with(make_note()):
            raise


def assert_grads_match(grads, ref_grads, what):
    """Every gradient of the student's net against the reference's."""
    assert sorted(grads) == sorted(ref_grads), f"grads keys: expected {sorted(ref_grads)}, got {sorted(grads)}"
    for k in sorted(ref_grads):
        if k.startswith("b") and f"gamma{k[1:]}" in ref_grads:
            # A bias right before batchnorm is cancelled by its mean: the true gradient is 0,
            # which a relative error cannot judge, so check its size.
            worst = float(np.max(np.abs(grads[k])))
            assert worst < 1e-8, f"grads['{k}'] should be 0 before batchnorm, got an entry of size {worst:.3e}"
            continue
        assert_close(grads[k], ref_grads[k], name=f"grads['{k}'], {what}", threshold=1e-6)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fc_net_params_match_reference(student, reference, config):
    mine, ref = build(student, config), build(reference, config)
    keys = sorted(ref.params)
    assert sorted(mine.params) == keys, f"params keys: expected {keys}, got {sorted(mine.params)}"
    for k in keys:
        assert_close(mine.params[k], ref.params[k], name=f"initial params['{k}'] (seed=21)")


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fc_net_scores_match_reference(student, reference, monkeypatch, config):
    mine, ref = twins(student, reference, monkeypatch, config)
    X, _ = batch(config)
    with noted(lambda: layer_note(student, reference, config)):
        assert_close(mine.loss(X), ref.loss(X), name=f"scores (test mode), config {config}")


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fc_net_loss_matches_reference(student, reference, monkeypatch, config):
    mine, ref = twins(student, reference, monkeypatch, config)
    X, y = batch(config)
    loss, _ = mine.loss(X, y)
    with noted(lambda: layer_note(student, reference, config)):
        assert_close(loss, ref.loss(X, y)[0], name=f"loss (training mode), config {config}")


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fc_net_grads_match_reference(student, reference, monkeypatch, config):
    mine, ref = twins(student, reference, monkeypatch, config)
    X, y = batch(config)
    loss, grads = mine.loss(X, y)
    ref_loss, ref_grads = ref.loss(X, y)

    def note():
        notes = [forward_problem(loss, ref_loss, "the loss that model.loss returns")]
        if notes[0]:
            notes[0] = f"note: {notes[0]} (the loss tests grade it)."
        notes.append(layer_note(student, reference, config, backward=True))
        return "\n".join(n for n in notes if n) or None

    with noted(note):
        assert_grads_match(grads, ref_grads, f"config {config}")


def test_fc_net_batch_of_one(student, reference, monkeypatch):
    mine, ref = twins(student, reference, monkeypatch, "reg")
    X, y = batch("reg", N=1)
    loss, grads = mine.loss(X, y)
    ref_loss, ref_grads = ref.loss(X, y)
    with noted(lambda: layer_note(student, reference, "reg", backward=True)):
        assert_close(loss, ref_loss, name="loss for a batch of one")
        assert_grads_match(grads, ref_grads, "for a batch of one")


def test_fc_net_dtype_float32_params(student, reference):
    model, ref = build(student, "batchnorm", dtype=np.float32), build(reference, "batchnorm", dtype=np.float32)
    assert sorted(model.params) == sorted(ref.params), (
        f"params keys: expected {sorted(ref.params)}, got {sorted(model.params)}"
    )
    for k in sorted(ref.params):
        dtype = model.params[k].dtype
        assert dtype == np.float32, f"params['{k}'] has dtype {dtype}, expected float32"
        assert_close(model.params[k], ref.params[k], name=f"initial params['{k}'] of a float32 net", threshold=1e-6)


def test_fc_net_dtype_float32_outputs(student, reference, monkeypatch):
    mine, ref = twins(student, reference, monkeypatch, "batchnorm", dtype=np.float32)
    X, y = batch("batchnorm")
    loss, _ = mine.loss(X, y)
    assert np.isfinite(loss), f"loss is {loss}"
    scores = mine.loss(X)
    assert scores.dtype == np.float32, f"scores have dtype {scores.dtype}, expected float32 (the net's dtype)"
    # Right dtype, and right values: float32 rounding (about 1e-7) is all that may differ.
    with noted(lambda: layer_note(student, reference, "batchnorm")):
        assert_close(loss, ref.loss(X, y)[0], name="loss of a float32 net", threshold=1e-4)
        assert_close(scores, ref.loss(X), name="scores of a float32 net (test mode)", threshold=1e-4)


def test_fc_net_test_mode_uses_running_stats(student, reference, monkeypatch):
    # After some training-mode passes, test-mode scores depend on the running averages.
    mine, ref = twins(student, reference, monkeypatch, "bn_dropout_reg")
    for seed in range(3):
        X, y = batch("bn_dropout_reg", N=6, seed=seed)
        mine.loss(X, y)
        ref.loss(X, y)
    X, _ = batch("bn_dropout_reg", N=2, seed=50)
    with noted(lambda: layer_note(student, reference, "bn_dropout_reg")):
        assert_close(mine.loss(X), ref.loss(X),
                     name="test-mode scores after 3 training passes (batchnorm running stats, no dropout)")


def test_fc_net_dropout_is_active_in_training(student):
    model = build(student, "dropout")
    plain = build(student, "plain")
    X, y = batch("dropout")
    assert_close(model.loss(X), plain.loss(X), name="test-mode scores with dropout (dropout off in test)")
    assert abs(model.loss(X, y)[0] - plain.loss(X, y)[0]) > 1e-6, (
        "training-mode loss with dropout_keep_ratio=0.6 equals the loss without dropout: "
        "dropout is not applied in training"
    )

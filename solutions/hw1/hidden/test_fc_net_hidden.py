"""Hidden tests for fc_net.py: same params and outputs as the reference, and whole-net gradients."""
import numpy as np
import pytest

from autograder.gradcheck import EntryFunction, assert_close, check_gradients

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


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fc_net_params_match_reference(student, reference, config):
    mine, ref = build(student, config), build(reference, config)
    keys = sorted(ref.params)
    assert sorted(mine.params) == keys, f"params keys: expected {keys}, got {sorted(mine.params)}"
    for k in keys:
        assert_close(mine.params[k], ref.params[k], name=f"initial params['{k}'] (seed=21)")


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fc_net_loss_and_grads_match_reference(student, reference, config):
    mine, ref = build(student, config), build(reference, config)
    X, y = batch(config)
    assert_close(mine.loss(X), ref.loss(X), name=f"scores (test mode), config {config}")
    loss, grads = mine.loss(X, y)
    ref_loss, ref_grads = ref.loss(X, y)
    assert_close(loss, ref_loss, name=f"loss, config {config}")
    assert sorted(grads) == sorted(ref_grads), (
        f"grads keys: expected {sorted(ref_grads)}, got {sorted(grads)}"
    )
    for k in sorted(ref_grads):
        assert_close(grads[k], ref_grads[k], name=f"grads['{k}'], config {config}", threshold=1e-6)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fc_net_gradcheck_hidden(student, reference, config):
    model, ref = build(student, config), build(reference, config)
    X, y = batch(config)
    # Biases start at 0, so an example whose hidden units are all off (ReLU or dropout)
    # would put the next layer exactly on the ReLU kink; small random biases avoid that.
    shift = np.random.default_rng(7)
    for name in sorted(model.params):
        if name.startswith("b") and name[1:].isdigit():
            value = 0.1 * shift.standard_normal(np.shape(model.params[name]))
            model.params[name] = value
            ref.params[name] = value.copy()
    loss, grads = model.loss(X, y)
    # The numerical gradients below are those of the student's own loss: it must be the right
    # loss (a net whose loss and gradients are all zero would pass the check alone).
    assert_close(loss, ref.loss(X, y)[0], name=f"loss, config {config}")
    assert sorted(grads) == sorted(model.params), (
        f"grads must have the keys of params {sorted(model.params)}, got {sorted(grads)}"
    )
    for name in sorted(grads):
        if name.startswith("b") and f"gamma{name[1:]}" in model.params:
            # Batchnorm cancels this bias: its true gradient is 0.
            worst = float(np.max(np.abs(grads[name])))
            assert worst < 1e-8, f"gradient d{name} should be 0 before batchnorm, got {worst:.3e}"
            continue
        original = model.params[name]
        # The loss as a function of params[name]; in grading it is evaluated in the worker, all
        # of a check's perturbed values in one round trip.
        loss_of = EntryFunction(model.params, name, model.loss, X, y)
        try:
            check_gradients(loss_of, {name: original}, {name: grads[name]}, output=0, threshold=1e-6)
        finally:
            model.params[name] = original


def test_fc_net_batch_of_one(student, reference):
    mine, ref = build(student, "reg"), build(reference, "reg")
    X, y = batch("reg", N=1)
    loss, grads = mine.loss(X, y)
    ref_loss, ref_grads = ref.loss(X, y)
    assert_close(loss, ref_loss, name="loss for a batch of one")
    for k in sorted(ref_grads):
        assert_close(grads[k], ref_grads[k], name=f"grads['{k}'] for a batch of one", threshold=1e-6)


def test_fc_net_dtype_float32(student, reference):
    model = build(student, "batchnorm", dtype=np.float32)
    for k in sorted(model.params):
        dtype = model.params[k].dtype
        assert dtype == np.float32, f"params['{k}'] has dtype {dtype}, expected float32"
    X, y = batch("batchnorm")
    loss, grads = model.loss(X, y)
    assert np.isfinite(loss), f"loss is {loss}"
    scores = model.loss(X)
    assert scores.dtype == np.float32, f"scores have dtype {scores.dtype}, expected float32 (the net's dtype)"
    # Right dtype, and right values: float32 rounding (about 1e-7) is all that may differ.
    ref = build(reference, "batchnorm", dtype=np.float32)
    ref_loss, _ = ref.loss(X, y)
    assert_close(loss, ref_loss, name="loss of a float32 net", threshold=1e-4)
    assert_close(scores, ref.loss(X), name="scores of a float32 net (test mode)", threshold=1e-4)


def test_fc_net_test_mode_uses_running_stats(student, reference):
    # After some training-mode passes, test-mode scores depend on the running averages.
    mine, ref = build(student, "bn_dropout_reg"), build(reference, "bn_dropout_reg")
    for seed in range(3):
        X, y = batch("bn_dropout_reg", N=6, seed=seed)
        mine.loss(X, y)
        ref.loss(X, y)
    X, _ = batch("bn_dropout_reg", N=2, seed=50)
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

"""hw1 reference solution, checked against an independent implementation: torch autograd.

Each layer of solutions/hw1/layers.py is run forward in numpy and in torch (float64) on the
same inputs; the backward pass is then compared with what autograd gives for the scalar
sum(out * dout). The mapping:

- affine <-> x.reshape(N, -1) @ w + b
- relu, sigmoid, tanh <-> torch.relu, torch.sigmoid, torch.tanh
- softmax_loss <-> torch.nn.functional.cross_entropy (mean reduction)
- mse_loss <-> 0.5 * sum((x - y)**2) / N (torch's mse_loss averages over all entries instead)
- batchnorm (train) <-> torch.nn.functional.batch_norm(training=True); torch updates its
  running variance with the unbiased batch variance and weighs the new value by its
  `momentum`, so ours with momentum m matches torch's momentum 1 - m only for running_mean;
  running_var is compared with the biased formula directly.
- FullyConnectedNet <-> the same stack of torch ops with the net's parameters as leaves.

The same comparisons run for every correct variant of the bug catalog
(solutions/hw1/hidden/bugs/catalog.yml, `variants`): a variant is the reference with one
function written another correct way, so it must agree with torch too. That the grader gives
each variant its stated points is the audit's job (`deepgrade audit hw1`). Dropout has no torch
counterpart with the same random draws: its properties are checked directly.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from autograder.audit import load_catalog
from autograder.config import load_config
from autograder.gradcheck import assert_close
from autograder.loader import load_modules

torch = pytest.importorskip("torch")
F = torch.nn.functional

ROOT = Path(__file__).resolve().parents[1]
HW1 = ROOT / "solutions" / "hw1"
MODULES = ["layers", "fc_net", "house_prices"]
VARIANTS = {v.name: v for v in load_catalog(load_config(ROOT / "grading.yml").assignment("hw1")).variants}


def edited_function(variant):
    """The name of the top-level function (or "Class.method") a variant rewrites."""
    if variant.function:
        return variant.function
    source = (HW1 / variant.file).read_text()
    before = source[: source.index(variant.find)]
    return re.findall(r"^(?:class|def) (\w+)", before, flags=re.M)[-1]


def implementations(*prefixes):
    """"reference", and the variants that rewrite a function whose name starts with a prefix
    (all of them when no prefix is given)."""
    return ["reference"] + [name for name, v in VARIANTS.items()
                            if not prefixes or edited_function(v).startswith(prefixes)]


_LOADED = {}


@pytest.fixture
def hw1(request, tmp_path_factory):
    """The reference modules, or (parametrized indirectly) a copy with one variant applied."""
    name = getattr(request, "param", "reference")
    if name not in _LOADED:
        folder = HW1
        if name != "reference":
            variant = VARIANTS[name]
            folder = tmp_path_factory.mktemp(name)
            for module in MODULES:
                source = (HW1 / f"{module}.py").read_text()
                (folder / f"{module}.py").write_text(variant.apply(source) if variant.file == f"{module}.py"
                                                      else source)
        loaded = load_modules(folder, MODULES)
        assert not loaded.errors, "\n".join(loaded.errors.values())
        _LOADED[name] = loaded.modules
    return _LOADED[name]


def impls(*prefixes):
    """Parametrize a test's `hw1` with the reference and the variants of these functions."""
    return pytest.mark.parametrize("hw1", implementations(*prefixes), indirect=True)


def test_catalog_has_variants():
    # The floor: at least 8 correct variants, one of which breaks the inputs rule.
    assert len(VARIANTS) >= 8
    assert any(dict(v.loses) == {"conventions": 1.0} for v in VARIANTS.values())


@pytest.mark.parametrize("p", [0.25, 0.5, 0.9, 1.0])
@impls("dropout_")
def test_dropout_properties(hw1, p):
    layers = hw1["layers"]
    x = np.random.default_rng(7).uniform(0.5, 1.5, (300, 400))
    out, cache = layers.dropout_forward(x, {"mode": "train", "p": p, "seed": 11})
    kept = out != 0
    assert_close(out[kept], x[kept] / p, name="kept units", threshold=1e-12)
    # 120000 draws: the kept fraction is within 5 standard deviations of p.
    assert abs(kept.mean() - p) <= 5 * np.sqrt(p * (1 - p) / x.size) + 1e-12
    again, _ = layers.dropout_forward(x, {"mode": "train", "p": p, "seed": 11})
    assert np.array_equal(again, out)
    if p < 1:
        other, _ = layers.dropout_forward(x, {"mode": "train", "p": p, "seed": 12})
        assert not np.array_equal(other != 0, kept)
    dout = np.random.default_rng(8).standard_normal(x.shape)
    assert_close(layers.dropout_backward(dout, cache), dout * out / x, name="dx", threshold=1e-12)
    test_out, test_cache = layers.dropout_forward(x, {"mode": "test", "p": p})
    assert np.array_equal(test_out, x) and np.array_equal(layers.dropout_backward(dout, test_cache), dout)


@impls("relu_")
def test_relu_subgradient_at_zero(hw1):
    # Any slope in [0, 1] at exactly 0 is a valid subgradient: the tests accept each.
    layers = hw1["layers"]
    x = np.array([-1.0, 0.0, 2.0])
    dout = np.array([3.0, 5.0, 7.0])
    dx = layers.relu_backward(dout, layers.relu_forward(x)[1])
    assert dx[0] == 0 and dx[2] == 7.0 and 0.0 <= dx[1] <= 5.0


def _t(a, grad=True):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _autograd(fn, arrays, dout):
    """Gradients of sum(fn(*tensors) * dout) with respect to every array."""
    leaves = [_t(a) for a in arrays]
    out = fn(*leaves)
    (out * torch.tensor(dout)).sum().backward()
    return out.detach().numpy(), [leaf.grad.numpy() for leaf in leaves]


@pytest.mark.parametrize("x_shape,M", [((1, 4), 3), ((5, 6), 2), ((3, 2, 3, 2), 4)])
@impls("affine_")
def test_affine_against_torch(hw1, x_shape, M):
    layers = hw1["layers"]
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((int(np.prod(x_shape[1:])), M))
    b = rng.standard_normal(M)
    dout = rng.standard_normal((x_shape[0], M))
    out, cache = layers.affine_forward(x, w, b)
    t_out, t_grads = _autograd(lambda x, w, b: x.reshape(x.shape[0], -1) @ w + b, [x, w, b], dout)
    assert_close(out, t_out, name="affine out", threshold=1e-12)
    for name, got, exp in zip("xwb", layers.affine_backward(dout, cache), t_grads):
        assert_close(got, exp, name=f"affine d{name}", threshold=1e-12)


@pytest.mark.parametrize("layer,torch_fn", [("relu", torch.relu), ("sigmoid", torch.sigmoid),
                                             ("tanh", torch.tanh)])
@pytest.mark.parametrize("shape", [(1, 1), (4, 7), (2, 3, 5)])
@impls("relu_", "sigmoid_", "tanh_")
def test_activation_against_torch(hw1, layer, torch_fn, shape):
    layers = hw1["layers"]
    rng = np.random.default_rng(2)
    x = 3.0 * rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU off its kink
    dout = rng.standard_normal(shape)
    out, cache = getattr(layers, f"{layer}_forward")(x)
    dx = getattr(layers, f"{layer}_backward")(dout, cache)
    t_out, (t_dx,) = _autograd(torch_fn, [x], dout)
    assert_close(out, t_out, name=f"{layer} out", threshold=1e-12)
    assert_close(dx, t_dx, name=f"{layer} dx", threshold=1e-10)


@impls("sigmoid_")
def test_sigmoid_extremes_against_torch(hw1):
    x = np.array([-1000.0, -50.0, -20.0, 0.0, 20.0, 50.0, 1000.0])
    out, _ = hw1["layers"].sigmoid_forward(x)
    assert_close(out, torch.sigmoid(_t(x, grad=False)).numpy(), name="sigmoid at extremes",
                 threshold=1e-12)
    assert_close(out[1], 1.9287498479639178e-22, name="sigmoid(-50)", threshold=1e-12)


@pytest.mark.parametrize("N,C,scale", [(1, 3, 1.0), (8, 10, 2.0), (4, 5, 1e4)])
@impls("softmax_loss")
def test_softmax_loss_against_torch(hw1, N, C, scale):
    rng = np.random.default_rng(3)
    x = scale * rng.standard_normal((N, C))
    y = rng.integers(0, C, N)
    loss, dx = hw1["layers"].softmax_loss(x, y)
    tx = _t(x)
    t_loss = F.cross_entropy(tx, torch.tensor(y))
    t_loss.backward()
    assert_close(loss, t_loss.item(), name="softmax loss", threshold=1e-12)
    assert_close(dx, tx.grad.numpy(), name="softmax dx", threshold=1e-10)


@pytest.mark.parametrize("shape", [(1, 1), (6, 1), (5, 3)])
@impls("mse_loss")
def test_mse_loss_against_torch(hw1, shape):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    y = rng.standard_normal(shape)
    loss, dx = hw1["layers"].mse_loss(x, y)
    tx = _t(x)
    t_loss = 0.5 * F.mse_loss(tx, _t(y, grad=False), reduction="sum") / shape[0]
    t_loss.backward()
    assert_close(loss, t_loss.item(), name="mse loss", threshold=1e-12)
    assert_close(dx, tx.grad.numpy(), name="mse dx", threshold=1e-12)


@pytest.mark.parametrize("shape", [(2, 1), (7, 4), (32, 6)])
@impls("batchnorm_")
def test_batchnorm_train_against_torch(hw1, shape):
    layers = hw1["layers"]
    rng = np.random.default_rng(5)
    N, D = shape
    x = 2.0 * rng.standard_normal(shape) + 1.0
    gamma = rng.standard_normal(D)
    beta = rng.standard_normal(D)
    dout = rng.standard_normal(shape)
    bn_param = {"mode": "train", "eps": 1e-5, "momentum": 0.9}
    out, cache = layers.batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = layers.batchnorm_backward(dout, cache)

    running_mean = torch.zeros(D, dtype=torch.float64)
    running_var = torch.ones(D, dtype=torch.float64)
    t_out, t_grads = _autograd(
        lambda x, g, b: F.batch_norm(x, running_mean, running_var, g, b, training=True,
                                     momentum=0.1, eps=1e-5),
        [x, gamma, beta], dout)
    assert_close(out, t_out, name="batchnorm out", threshold=1e-10)
    for name, got, exp in zip(("x", "gamma", "beta"), (dx, dgamma, dbeta), t_grads):
        assert_close(got, exp, name=f"batchnorm d{name}", threshold=1e-8)
    assert_close(bn_param["running_mean"], running_mean.numpy(), name="running_mean", threshold=1e-12)
    assert_close(bn_param["running_var"], 0.9 + 0.1 * x.var(axis=0), name="running_var", threshold=1e-12)


def _torch_net_loss(params, X, y, num_layers, batchnorm, loss_type, reg):
    h = X.reshape(X.shape[0], -1)
    for i in range(1, num_layers):
        h = h @ params[f"W{i}"] + params[f"b{i}"]
        if batchnorm:
            h = F.batch_norm(h, None, None, params[f"gamma{i}"], params[f"beta{i}"], training=True,
                             eps=1e-5)
        h = torch.relu(h)
    scores = h @ params[f"W{num_layers}"] + params[f"b{num_layers}"]
    if loss_type == "softmax":
        loss = F.cross_entropy(scores, y)
    else:
        loss = 0.5 * ((scores - y.reshape(scores.shape)) ** 2).sum() / scores.shape[0]
    for i in range(1, num_layers + 1):
        loss = loss + 0.5 * reg * (params[f"W{i}"] ** 2).sum()
    return loss


@pytest.mark.parametrize("hidden_dims,batchnorm,loss_type,reg", [
    ([], False, "softmax", 0.0),
    ([7, 5], False, "softmax", 0.2),
    ([6, 6, 4], True, "softmax", 0.05),
    ([8], True, "mse", 0.0),
])
@impls()
def test_fc_net_against_torch(hw1, hidden_dims, batchnorm, loss_type, reg):
    num_classes = 1 if loss_type == "mse" else 4
    model = hw1["fc_net"].FullyConnectedNet(
        hidden_dims, input_dim=6, num_classes=num_classes, reg=reg, weight_scale=0.4,
        normalization="batchnorm" if batchnorm else None, dtype=np.float64, seed=3,
        loss_type=loss_type)
    rng = np.random.default_rng(6)
    for name in model.params:  # off the all-zero bias start, for a more telling comparison
        if name.startswith("b") and name[1:].isdigit():
            model.params[name] = 0.1 * rng.standard_normal(model.params[name].shape)
    X = rng.standard_normal((5, 2, 3))
    y = rng.standard_normal(5) if loss_type == "mse" else rng.integers(0, num_classes, 5)
    loss, grads = model.loss(X, y)

    leaves = {k: _t(v) for k, v in model.params.items()}
    t_y = _t(y, grad=False) if loss_type == "mse" else torch.tensor(y)
    t_loss = _torch_net_loss(leaves, _t(X, grad=False), t_y, model.num_layers, batchnorm,
                             loss_type, reg)
    t_loss.backward()
    assert_close(loss, t_loss.item(), name="net loss", threshold=1e-12)
    assert sorted(grads) == sorted(leaves)
    for k, leaf in leaves.items():
        if batchnorm and k.startswith("b") and f"gamma{k[1:]}" in leaves:
            # Batchnorm cancels the bias before it: both gradients are 0 up to rounding.
            assert np.max(np.abs(grads[k])) < 1e-12 and np.max(np.abs(leaf.grad.numpy())) < 1e-12
            continue
        assert_close(grads[k], leaf.grad.numpy(), name=f"grads['{k}']", threshold=1e-8)


@impls("train_regression")
def test_train_regression_matches_reference(hw1):
    # The handout fixes the init, the shuffles and the update: a variant trains the same net.
    ref = load_modules(HW1, MODULES).modules["house_prices"]
    data = ref.make_house_data(n_train=120, n_test=10, seed=3)
    kwargs = dict(hidden_dims=[8], lr=0.05, epochs=3, batch_size=32, seed=4)
    model, history = hw1["house_prices"].train_regression(data["X_train"], data["y_train"], **kwargs)
    ref_model, ref_history = ref.train_regression(data["X_train"], data["y_train"], **kwargs)
    assert_close(history, ref_history, name="loss history", threshold=1e-12)
    for k in ref_model.params:
        assert_close(model.params[k], ref_model.params[k], name=k, threshold=1e-12)

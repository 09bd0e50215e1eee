"""The gradient checker catches wrong gradients and accepts right ones, at every scale."""
import numpy as np
import pytest

from autograder.gradcheck import (
    EntryFunction, GradientError, assert_close, check_gradients, numeric_gradient, numeric_gradients,
    rel_error,
)

SCALES = [1e-6, 1e-3, 1.0, 1e3, 1e6]


def affine(x, w, b):
    return x @ w + b


def affine_grads(x, w, b, dout):
    return {"x": dout @ w.T, "w": x.T @ dout, "b": dout.sum(0)}


def tanh_layer(x):
    return np.tanh(x)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("scale", SCALES)
def test_accepts_right_gradient_at_output_scale(rng, scale):
    x, w, b = rng.normal(size=(4, 5)), rng.normal(size=(5, 3)) * scale, rng.normal(size=3) * scale
    dout = rng.normal(size=(4, 3))
    worst = check_gradients(affine, {"x": x, "w": w, "b": b}, affine_grads(x, w, b, dout), dout=dout)
    assert max(worst.values()) < 1e-7


@pytest.mark.parametrize("scale", SCALES)
def test_accepts_right_gradient_at_input_scale(rng, scale):
    # Every value at one scale (b is on the scale of x @ w): float64 cannot resolve a
    # perturbation of one term that is 1e-12 of another, whatever the checker does.
    x, w = rng.normal(size=(4, 5)) * scale, rng.normal(size=(5, 3)) * scale
    b = rng.normal(size=3) * scale**2
    dout = rng.normal(size=(4, 3))
    check_gradients(affine, {"x": x, "w": w, "b": b}, affine_grads(x, w, b, dout), dout=dout)


@pytest.mark.parametrize("scale", SCALES)
def test_accepts_right_gradient_of_cubic_at_input_scale(rng, scale):
    x = rng.normal(size=(3, 4)) * scale
    check_gradients(lambda v: np.sum(v**3), {"x": x}, {"x": 3 * x**2})


@pytest.mark.parametrize("scale", SCALES)
def test_accepts_right_gradient_of_nonlinear_function(rng, scale):
    x = rng.normal(size=(3, 4))
    dout = rng.normal(size=(3, 4)) * scale
    dx = (1 - np.tanh(x) ** 2) * dout
    check_gradients(tanh_layer, {"x": x}, {"x": dx}, dout=dout)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize(
    "bug",
    ["transposed_sum", "factor_two", "one_entry", "missing_sum"],
)
def test_catches_wrong_gradient(rng, scale, bug):
    x, w, b = rng.normal(size=(4, 5)), rng.normal(size=(5, 3)) * scale, rng.normal(size=3) * scale
    dout = rng.normal(size=(4, 3))
    grads = affine_grads(x, w, b, dout)
    if bug == "transposed_sum":
        grads["b"] = dout.sum(1)[:3]
    elif bug == "factor_two":
        grads["w"] = 2 * grads["w"]
    elif bug == "one_entry":
        grads["x"] = grads["x"].copy()
        grads["x"][2, 3] *= 1.001
    elif bug == "missing_sum":
        grads["b"] = dout[0]
    with pytest.raises(GradientError) as info:
        check_gradients(affine, {"x": x, "w": w, "b": b}, grads, dout=dout)
    assert "worst relative error" in str(info.value)


def test_catches_wrong_gradient_of_tiny_entry(rng):
    # One entry 1e-4 of the largest, wrong by 50%: judged against the floor it still fails.
    x = np.array([1.0, 1e-1, 1e-2])
    analytic = 2 * x
    analytic[2] *= 1.5
    with pytest.raises(GradientError):
        check_gradients(lambda v: np.sum(v**2), {"x": x}, {"x": analytic})


def test_message_names_input_shape_index_and_values(rng):
    x = rng.normal(size=(2, 3))
    dx = np.cos(x)
    dx[1, 2] += 0.5
    with pytest.raises(GradientError) as info:
        check_gradients(np.sin, {"x": x}, {"x": dx}, dout=np.ones((2, 3)))
    msg = str(info.value)
    assert "dx" in msg and "'x'" in msg and "(2, 3)" in msg and "(1, 2)" in msg
    assert f"{dx[1, 2]:.10g}" in msg and f"{np.cos(x[1, 2]):.6g}"[:6] in msg


def test_numeric_gradient_of_scalar_function():
    x = np.array([[1.0, -2.0], [3.0, 0.5]])
    g = numeric_gradient(lambda v: np.sum(v**3), x)
    np.testing.assert_allclose(g, 3 * x**2, rtol=1e-8)
    assert x.tolist() == [[1.0, -2.0], [3.0, 0.5]]  # input untouched


def test_output_index_selects_from_tuple(rng):
    x = rng.normal(size=(3, 2))
    f = lambda v: (2 * v, "cache")  # noqa: E731
    g = numeric_gradients(f, {"x": x}, ["x"], dout=np.ones((3, 2)), output=0)["x"]
    np.testing.assert_allclose(g, 2 * np.ones((3, 2)), rtol=1e-9)


def test_batched_evaluation_is_used_when_available(rng):
    calls = []

    class Batched:
        def __call__(self, *args):
            raise AssertionError("the one-by-one path should not be taken")

        def map(self, arglists, kwargs, output):
            calls.append(len(arglists))
            return [np.tanh(args[0]) for args in arglists]

    x = rng.normal(size=(2, 2))
    check_gradients(Batched(), {"x": x}, {"x": 1 - np.tanh(x) ** 2}, dout=np.ones((2, 2)))
    assert calls == [8]


def test_assert_close_reports_shape_mismatch():
    with pytest.raises(GradientError, match=r"expected shape \(2, 3\), got shape \(3, 2\)"):
        assert_close(np.zeros((3, 2)), np.zeros((2, 3)), name="out")


def test_assert_close_reports_nan():
    bad = np.ones(4)
    bad[2] = np.nan
    with pytest.raises(GradientError, match=r"nan at index \(2\)"):
        assert_close(bad, np.ones(4), name="out")


def test_assert_close_rejects_non_numeric():
    with pytest.raises(GradientError, match="numeric array"):
        assert_close(np.array(["a", "b"]), np.ones(2))


def test_rel_error_is_zero_for_equal_and_positive_otherwise():
    a = np.array([1.0, 2.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, a * 1.01) > 1e-3


class _Batching(dict):
    """A dict with the grading proxy's map_assign: counts how often it is used."""

    batches = 0

    def map_assign(self, key, values, fn, args=(), kwargs=None, output=None):
        type(self).batches += 1
        out = []
        for v in values:
            self[key] = v
            r = fn(*args, **(kwargs or {}))
            out.append(r[output] if output is not None else r)
        return out


@pytest.mark.parametrize("container", [dict, _Batching])
def test_entry_function_checks_a_model_parameter(container):
    rng = np.random.default_rng(3)
    params = container(W=rng.standard_normal((3, 2)))
    X = rng.standard_normal((4, 3))

    def loss(X, scale=1.0):  # (loss, grads), as FullyConnectedNet.loss returns
        out = X @ params["W"]
        return scale * float(np.sum(out**2)), {"W": scale * 2 * X.T @ out}

    original = params["W"].copy()
    f = EntryFunction(params, "W", loss, X, scale=0.5)
    right = loss(X, scale=0.5)[1]["W"]
    check_gradients(f, {"W": original}, {"W": right}, output=0)
    params["W"] = original
    with pytest.raises(GradientError):
        check_gradients(f, {"W": original}, {"W": 2 * right}, output=0)
    if container is _Batching:
        assert _Batching.batches == 2  # one batch per check, however many entries

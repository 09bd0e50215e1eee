"""Visible tests for engine.py: run them with `pytest assignments/hw6` (or `-m graph`, ...).

Each op rule is judged on its own: a forward by golden values (computed once from a correct
solution on the fixed inputs below) or a closed form; a backward, given the cache YOUR forward
returned, by the true gradient at the same inputs (a closed form, or central differences of a
correct forward written in this file). These tests use inputs of one shape; the graded tests
also broadcast.

The graph tests build expressions with your Tensor through graphs.py (run_graph: the same
expression you would write as `(a * b).exp().sum()`), and check the gradients that backward()
leaves in the leaves against central differences of the expression, computed here in numpy.
"""
import numpy as np
import pytest

from autograder.gradcheck import assert_close, numeric_gradients
from autograder.verdicts import judge_backward


def away_from_zero(rng, shape, margin=0.2):
    """Random values with |x| >= margin: no ReLU on its kink, no division by almost zero."""
    return rng.uniform(margin, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def judge(student, op, args, rng, grads=None, expected=None):
    """judge_backward of op's rule pair at args (name -> value), against the numerical
    gradients of a correct forward of op (FORMULAS below) unless `expected` is given."""
    grads = grads or [k for k, v in args.items() if isinstance(v, np.ndarray)]
    out = FORMULAS[op](*args.values())
    dout = rng.standard_normal(np.shape(out))
    if expected is None:
        expected = numeric_gradients(FORMULAS[op], args, grads, dout=dout)
    judge_backward(getattr(student, f"{op}_forward"), getattr(student, f"{op}_backward"), args, dout,
                   grads, expected=expected, expected_out=out, threshold=1e-6)


def log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def cross_entropy(logits, y):
    return -log_softmax(logits, axis=1)[np.arange(len(y)), y].mean()


# Correct forwards, for the numerical gradients (moderate inputs only).
FORMULAS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "neg": lambda a: -a, "pow": lambda a, p: a ** p,
    "matmul": lambda a, b: a @ b,
    "sum": lambda x, axis=None, keepdims=False: x.sum(axis=axis, keepdims=keepdims),
    "mean": lambda x, axis=None, keepdims=False: x.mean(axis=axis, keepdims=keepdims),
    "reshape": lambda x, shape: x.reshape(shape), "transpose": lambda x, axes=None: x.transpose(axes),
    "exp": np.exp, "log": np.log, "tanh": np.tanh, "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0), "log_softmax": log_softmax, "cross_entropy": cross_entropy,
}


# --- unbroadcast ---------------------------------------------------------------------------------

@pytest.mark.parametrize("grad_shape, shape, expected", [
    ((2, 3), (3,), [2.0, 2.0, 2.0]),
    ((2, 3), (2, 1), [[3.0], [3.0]]),
    ((2, 3), (1, 3), [[2.0, 2.0, 2.0]]),
    ((2, 3), (), 6.0),
    ((4, 2, 3), (2, 1), [[12.0], [12.0]]),
    ((2, 3), (2, 3), np.ones((2, 3))),
])
def test_unbroadcast_sums_ones(student, grad_shape, shape, expected):
    out = student.unbroadcast(np.ones(grad_shape), shape)
    assert_close(out, np.asarray(expected, dtype=np.float64), name=f"unbroadcast(ones{grad_shape}, {shape})")


def test_unbroadcast_values(student):
    grad = np.arange(6.0).reshape(2, 3)
    assert_close(student.unbroadcast(grad, (3,)), [3.0, 5.0, 7.0], name="unbroadcast(grad, (3,))")
    assert_close(student.unbroadcast(grad, (2, 1)), [[3.0], [12.0]], name="unbroadcast(grad, (2, 1))")


# --- elementwise ops ----------------------------------------------------------------------------

A = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
B = np.array([[2.0, 0.5, -1.0], [-0.5, 4.0, 1.25]])


@pytest.mark.parametrize("op, golden", [
    ("add", [[2.5, -0.5, 1.0], [1.0, 4.25, 0.5]]),
    ("sub", [[-1.5, -1.5, 3.0], [2.0, -3.75, -2.0]]),
    ("mul", [[1.0, -0.5, -2.0], [-0.75, 1.0, -0.9375]]),
    ("div", [[0.25, -2.0, -2.0], [-3.0, 0.0625, -0.6]]),
])
def test_elementwise_binary_forward_golden(student, op, golden):
    out, _ = getattr(student, f"{op}_forward")(A, B)
    assert_close(out, np.array(golden), name=f"{op}_forward out")


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_elementwise_binary_backward(student, rng, op):
    a, b = rng.standard_normal((3, 4)), away_from_zero(rng, (3, 4))
    judge(student, op, {"a": a, "b": b}, rng)


def test_elementwise_neg(student, rng):
    assert_close(student.neg_forward(A)[0], -A, name="neg_forward out")
    judge(student, "neg", {"a": rng.standard_normal((2, 5))}, rng)


@pytest.mark.parametrize("p", [2.0, 3.0, 0.5, -1.0])
def test_elementwise_pow_forward(student, p):
    a = np.array([[0.5, 1.0, 2.0], [4.0, 0.25, 1.5]])
    assert_close(student.pow_forward(a, p)[0], a ** p, name=f"pow_forward out (p={p})")


@pytest.mark.parametrize("p", [2.0, 3.0, 0.5, -1.0])
def test_elementwise_pow_backward(student, rng, p):
    judge(student, "pow", {"a": rng.uniform(0.5, 2.0, (3, 2)), "p": p}, rng, grads=["a"])


# --- matmul, reductions, shapes -----------------------------------------------------------------

def test_matmul_forward_golden(student):
    out, _ = student.matmul_forward(A, B.T)
    assert_close(out, [[-1.5, -1.75], [3.875, -0.6875]], name="matmul_forward out")


def test_matmul_backward(student, rng):
    judge(student, "matmul", {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal((4, 2))}, rng)


X3 = np.arange(24.0).reshape(2, 3, 4) / 10.0


@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
def test_reduce_forward(student, op, axis, keepdims):
    out, _ = getattr(student, f"{op}_forward")(X3, axis, keepdims)
    assert_close(out, FORMULAS[op](X3, axis, keepdims), name=f"{op}_forward(axis={axis}, keepdims={keepdims}) out")


@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, False), ((0, 2), True), (-1, False)])
def test_reduce_backward(student, rng, op, axis, keepdims):
    judge(student, op, {"x": rng.standard_normal((2, 3, 4)), "axis": axis, "keepdims": keepdims}, rng, grads=["x"])


def test_shape_reshape(student, rng):
    assert_close(student.reshape_forward(X3, (4, 6))[0], X3.reshape(4, 6), name="reshape_forward out")
    judge(student, "reshape", {"x": rng.standard_normal((2, 3, 4)), "shape": (6, 4)}, rng, grads=["x"])


@pytest.mark.parametrize("axes", [None, (1, 0, 2), (2, 0, 1)])
def test_shape_transpose(student, rng, axes):
    assert_close(student.transpose_forward(X3, axes)[0], X3.transpose(axes), name=f"transpose_forward(axes={axes}) out")
    judge(student, "transpose", {"x": rng.standard_normal((2, 3, 4)), "axes": axes}, rng, grads=["x"])


# --- elementwise functions ----------------------------------------------------------------------

@pytest.mark.parametrize("op", ["exp", "tanh", "sigmoid", "relu"])
def test_activation_forward_golden(student, op):
    x = np.array([[-2.0, -0.5, 0.0], [0.5, 1.0, 3.0]])
    assert_close(getattr(student, f"{op}_forward")(x)[0], FORMULAS[op](x), name=f"{op}_forward out")


def test_activation_log_forward(student):
    x = np.array([0.5, 1.0, np.e, 10.0])
    assert_close(student.log_forward(x)[0], np.log(x), name="log_forward out")


@pytest.mark.parametrize("op", ["exp", "log", "tanh", "sigmoid", "relu"])
def test_activation_backward(student, rng, op):
    x = rng.uniform(0.2, 2.0, (3, 4)) if op == "log" else away_from_zero(rng, (3, 4))
    judge(student, op, {"x": x}, rng)


# --- log-softmax and cross-entropy ---------------------------------------------------------------

def test_log_softmax_forward_golden(student):
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    golden = np.array([[-2.40760596, -1.40760596, -0.40760596], [-1.09861229, -1.09861229, -1.09861229]])
    assert_close(student.log_softmax_forward(x, -1)[0], golden, name="log_softmax_forward out")


@pytest.mark.parametrize("axis", [-1, 0])
def test_log_softmax_backward(student, rng, axis):
    judge(student, "log_softmax", {"x": rng.standard_normal((3, 5)), "axis": axis}, rng, grads=["x"])


def test_cross_entropy_forward_golden(student):
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    loss, _ = student.cross_entropy_forward(logits, np.array([0, 2]))
    assert_close(loss, 1.4185397696491857, name="cross_entropy_forward loss", threshold=1e-6)


def test_cross_entropy_backward(student, rng):
    logits, y = rng.standard_normal((4, 5)), np.array([0, 4, 2, 2])
    dlogits = np.exp(log_softmax(logits))
    dlogits[np.arange(4), y] -= 1.0
    judge_backward(student.cross_entropy_forward, student.cross_entropy_backward, {"logits": logits, "y": y},
                   np.asarray(1.5), ["logits"], expected={"logits": 1.5 * dlogits / 4}, threshold=1e-6)


# --- numerical stability -------------------------------------------------------------------------

def test_stable_log_softmax_large_scores(student):
    x = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1001.0, -1002.0]])
    out, _ = student.log_softmax_forward(x, -1)
    assert_close(out, log_softmax(x), name="log_softmax_forward out for scores of size 1000")


def test_stable_sigmoid_extremes(student):
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    out, _ = student.sigmoid_forward(x)
    assert_close(out, [0.0, 4.248354255291589e-18, 0.5, 1.0, 1.0], name="sigmoid_forward out at +-1000 and +-40")


# --- the graph: apply, backward, topological order -------------------------------------------------

def evaluate(leaves, ops):
    """The value of every node of a graphs.py description, computed here in numpy."""
    values = list(leaves)
    for op in ops:
        name, args, params = op[0], [values[i] for i in op[1]], (op[2] if len(op) > 2 else {})
        c = params.get("c")
        if name in ("radd", "rsub", "rmul", "rdiv"):
            a = args[0]
            values.append({"radd": c + a, "rsub": c - a, "rmul": c * a, "rdiv": c / a}[name])
        elif name == "cross_entropy":
            values.append(cross_entropy(args[0], np.asarray(params["y"])))
        elif name == "T":
            values.append(args[0].T)
        else:
            values.append(FORMULAS[name](*args, **params))
    return values


def check_graph(student, rng, leaves, ops, requires=None):
    """Backpropagate through the described graph from its output with a random gradient, and
    compare every leaf's .grad with central differences of the expression."""
    out = evaluate(leaves, ops)[-1]
    dout = rng.standard_normal(np.shape(out))
    result = student.run_graph(leaves, ops, requires=requires, grad=dout)
    assert_close(result["values"][-1], out, name="the output's value")
    args = {f"x{i}": x for i, x in enumerate(leaves)}
    expected = numeric_gradients(lambda *xs: evaluate(list(xs), ops)[-1], args, list(args), dout=dout)
    requires = requires or [True] * len(leaves)
    for i, r in enumerate(requires):
        if r:
            assert result["grads"][i] is not None, f"leaf {i} requires grad but has no .grad after backward()"
            assert_close(result["grads"][i], expected[f"x{i}"], name=f"leaf {i}'s .grad", threshold=1e-6)
        else:
            assert result["grads"][i] is None, f"leaf {i} does not require grad, but its .grad was set"
    return result


def test_graph_single_op_builds_a_node(student):
    result = student.run_graph([A, B], [("mul", [0, 1])], backward=False)
    assert_close(result["values"][-1], A * B, name="the value of a * b")
    assert result["requires_grad"] == [True, True, True], "a product of tensors that require grad requires grad"
    assert result["has_node"] == [False, False, True], "leaves have no node; the product has one"


def test_graph_broadcasting_expression(student, rng):
    leaves = [rng.standard_normal((3, 4)), rng.standard_normal(4), rng.uniform(0.5, 2.0, (3, 1))]
    ops = [("mul", [0, 1]), ("div", [3, 2]), ("add", [4, 1]), ("tanh", [5]), ("sum", [6], {"axis": 0})]
    check_graph(student, rng, leaves, ops)


def test_graph_scalars_and_constants(student, rng):
    leaves = [rng.uniform(0.5, 2.0, (2, 3)), rng.standard_normal((2, 3))]
    ops = [("rsub", [0], {"c": 3.0}), ("rdiv", [2], {"c": 2.0}), ("rmul", [1], {"c": 0.5}),
           ("radd", [4], {"c": 1.0}), ("mul", [3, 5]), ("pow", [6], {"p": 2.0}), ("mean", [7])]
    check_graph(student, rng, leaves, ops, requires=[True, False])


def test_graph_mlp_like_expression(student, rng):
    leaves = [rng.standard_normal((5, 4)), 0.5 * rng.standard_normal((4, 3)), 0.1 * rng.standard_normal(3)]
    y = np.array([0, 2, 1, 1, 0])
    ops = [("matmul", [0, 1]), ("add", [3, 2]), ("sigmoid", [4]), ("cross_entropy", [5], {"y": y})]
    check_graph(student, rng, leaves, ops)


def test_graph_diamond_accumulates(student, rng):
    # x feeds two branches that meet again: its gradient is the sum over both paths.
    x = away_from_zero(rng, (2, 3))
    ops = [("exp", [0]), ("rmul", [0], {"c": 3.0}), ("mul", [1, 2]), ("add", [3, 1]), ("sum", [4])]
    check_graph(student, rng, [x], ops)


def test_graph_same_tensor_twice(student, rng):
    x = rng.standard_normal((3, 3))
    result = check_graph(student, rng, [x], [("mul", [0, 0]), ("matmul", [1, 0]), ("sum", [2])])
    assert result["grads"][0].shape == (3, 3)


def test_graph_random_expressions(student):
    # A few seeded random expressions with broadcasting and shared nodes (a larger,
    # property-based set is graded).
    gen = np.random.default_rng(6)
    for _ in range(4):
        leaves = [gen.standard_normal((2, 3)), gen.uniform(0.5, 1.5, (3,)), gen.standard_normal((2, 1))]
        ops = [("mul", [0, 1]), ("add", [3, 2]), ("tanh", [4]), ("div", [5, 1]), ("mul", [6, 3]),
               ("sub", [7, 0]), ("sum", [8], {"axis": 1, "keepdims": True}), ("mul", [9, 2]), ("sum", [10])]
        check_graph(student, gen, leaves, ops)


def test_graph_backward_twice_accumulates(student, rng):
    x = rng.standard_normal((2, 2))
    ops = [("exp", [0]), ("sum", [1])]
    once = student.run_graph([x], ops)["grads"][0]
    twice = student.run_graph([x], ops, repeat=2)["grads"][0]
    assert_close(once, np.exp(x), name="x.grad after one backward()")
    assert_close(twice, 2 * np.exp(x), name="x.grad after two backward() calls (gradients add up)")


def test_graph_topological_order(student, rng):
    leaves = [A, B]
    ops = [("mul", [0, 1]), ("exp", [2]), ("add", [3, 2]), ("add", [4, 0]), ("sum", [5])]
    check_graph(student, rng, leaves, ops)  # backward() walks this order
    result = student.graph_order(leaves, ops)
    order, parents = result["order"], result["parents"]
    assert sorted(order) == list(range(7)), f"every node once: got {order}"
    assert order[-1] == 6, "the output comes last"
    for k, node in enumerate(order):
        assert all(p in order[:k] for p in parents[k]), f"node {node} comes before one of its parents: {order}"


def test_graph_deep_chain_no_recursion(student):
    # 10,000 products in a row: deeper than Python's recursion limit.
    value, grad = student.run_chain(np.array([1.0, -2.0]), 10000, 1.0001)
    assert_close(value, np.array([1.0, -2.0]) * 1.0001 ** 10000, name="chain value", threshold=1e-9)
    assert_close(grad, np.full(2, 1.0001 ** 10000), name="x.grad through 10,000 products", threshold=1e-9)


# --- grad modes -------------------------------------------------------------------------------------
#
# Each mode is judged against your own engine without it (the same expression built and
# differentiated normally), so that a wrong op rule costs its own tests, not these; the values
# must not be all zero.

def same_as_without_mode(got, normal, what):
    assert np.any(normal), f"{what}: your engine computes all zeros here, so the mode cannot be judged"
    assert_close(got, normal, name=what)


def test_grad_mode_no_grad_records_nothing(student):
    result = student.run_graph([A, B], [("mul", [0, 1]), ("exp", [2])], no_grad_mode=True)
    normal = student.run_graph([A, B], [("mul", [0, 1]), ("exp", [2])], backward=False)
    same_as_without_mode(result["values"][-1], normal["values"][-1], "exp(a * b) computed inside no_grad")
    assert result["requires_grad"][2:] == [False, False], "ops inside no_grad must not require grad"
    assert result["has_node"][2:] == [False, False], "ops inside no_grad must record no node"
    assert result["grad_enabled"] is True, "recording must be back on after the no_grad block"


def test_grad_mode_no_grad_nesting_and_errors(student):
    result = student.no_grad_nesting()
    same_as_without_mode(result["value"], result["value_outside"], "Tensor([1, -2]) * 3.0 computed inside no_grad")
    assert result["enabled"] == [False, False, False, True, True], (
        "is_grad_enabled() inside no_grad, inside a nested one, after the inner one, after the outer "
        f"one, after one that raised: expected [False, False, False, True, True], got {result['enabled']}")


def test_grad_mode_detach_stops_gradients(student, rng):
    x = rng.standard_normal((2, 3))
    # out = x * detach(x): only the first factor passes a gradient, as if the second were a
    # constant holding the same values.
    result = student.run_graph([x], [("detach", [0]), ("mul", [0, 1]), ("sum", [2])])
    assert result["requires_grad"][1] is False and result["has_node"][1] is False, "detach() gives a leaf"
    constant = student.run_graph([x, x], [("mul", [0, 1]), ("sum", [2])], requires=[True, False])
    same_as_without_mode(result["grads"][0], constant["grads"][0], "x.grad of sum(x * x.detach())")


def test_grad_mode_zero_grad(student, rng):
    x = rng.standard_normal((2, 2))
    result = student.run_graph([x], [("tanh", [0]), ("sum", [1])], repeat=2, zero_grad=True)
    once = student.run_graph([x], [("tanh", [0]), ("sum", [1])])
    same_as_without_mode(result["grads"][0], once["grads"][0], "x.grad with zero_grad() before each backward()")

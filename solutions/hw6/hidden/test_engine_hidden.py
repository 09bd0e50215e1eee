"""Hidden tests for engine.py, against torch.autograd (float64) on the trusted side.

Each op rule is judged on its own, with broadcasting: the forward by its output; the backward
(given the cache of the student's own forward) by torch's gradient at the same inputs. A rule
may return a gradient in the output's shape or in its input's shape (the handout allows
both), so each gradient is summed to its input's shape with the reference's unbroadcast before
it is compared. The graph tests are composites: expressions built with the student's Tensor
(through graphs.py, in the worker) against the same expression in torch, and random
expression graphs drawn by hypothesis (the last section).
"""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from autograder.gradcheck import assert_close
from autograder.verdicts import explain_with, judge_backward

F = torch.nn.functional
# One thread: these tensors are tiny, and torch's OpenMP thread pool does not survive a fork
# (the audit grades its mutants in processes forked from the run that recorded the reference).
torch.set_num_threads(1)


# --- the same expressions in torch.autograd ------------------------------------------------------------

BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}
SCALAR = {"radd": "{c} + {a}", "rsub": "{c} - {a}", "rmul": "{c} * {a}", "rdiv": "{c} / {a}"}


def _reduce(fn, x, params):
    axis, keepdims = params.get("axis"), bool(params.get("keepdims", False))
    if axis is None:
        out = fn(x)
        return out.reshape([1] * x.ndim) if keepdims else out
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    return fn(x, dim=axis, keepdim=keepdims)


def torch_node(name, args, params):
    """What op `name` makes of torch tensors args (float64)."""
    a = args[0]
    b = args[1] if len(args) > 1 else None
    c = params.get("c")
    if name in BINARY:
        return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b,
                "matmul": lambda: a @ b}[name]()
    if name in SCALAR:
        return {"radd": lambda: c + a, "rsub": lambda: c - a, "rmul": lambda: c * a, "rdiv": lambda: c / a}[name]()
    table = {
        "neg": lambda: -a, "pow": lambda: a ** params["p"],
        "sum": lambda: _reduce(torch.sum, a, params), "mean": lambda: _reduce(torch.mean, a, params),
        "reshape": lambda: a.reshape(tuple(params["shape"])),
        "transpose": lambda: a.permute(tuple(params["axes"]) if params.get("axes") is not None
                                       else tuple(reversed(range(a.ndim)))),
        "T": lambda: a.permute(tuple(reversed(range(a.ndim)))),
        "exp": lambda: torch.exp(a), "log": lambda: torch.log(a), "tanh": lambda: torch.tanh(a),
        "sigmoid": lambda: torch.sigmoid(a), "relu": lambda: torch.relu(a),
        "log_softmax": lambda: torch.log_softmax(a, dim=int(params.get("axis", -1))),
        "cross_entropy": lambda: F.cross_entropy(a, torch.as_tensor(np.asarray(params["y"]), dtype=torch.long)),
        "detach": lambda: a.detach(),
    }
    return table[name]()


def torch_graph(leaves, ops, requires=None, grad=None):
    """Values of every node and gradients of every leaf (None where torch has none), from
    torch.autograd, for the upstream gradient `grad` (None: the output is a scalar)."""
    requires = [True] * len(leaves) if requires is None else list(requires)
    nodes = [torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=bool(r)) for x, r in zip(leaves, requires)]
    for op in ops:
        params = dict(op[2]) if len(op) > 2 else {}
        nodes.append(torch_node(op[0], [nodes[i] for i in op[1]], params))
    out = nodes[-1]
    if out.requires_grad:
        out.backward(None if grad is None else torch.as_tensor(np.asarray(grad, dtype=np.float64)))
    values = [t.detach().numpy().copy() for t in nodes]
    grads = [None if t.grad is None else t.grad.numpy().copy() for t in nodes[:len(leaves)]]
    return values, grads


def describe(leaves, ops, requires=None):
    """The expression as the Python a student would write, one line per node."""
    requires = [True] * len(leaves) if requires is None else list(requires)
    names = [f"x{i}" for i in range(len(leaves))]
    lines = [f"x{i} = Tensor(<shape {np.shape(x)}>, requires_grad={bool(r)})"
             for i, (x, r) in enumerate(zip(leaves, requires))]
    for k, op in enumerate(ops):
        name, args, params = op[0], [names[i] for i in op[1]], (dict(op[2]) if len(op) > 2 else {})
        a = args[0]
        if name in BINARY:
            text = f"{a} {BINARY[name]} {args[1]}"
        elif name in SCALAR:
            text = SCALAR[name].format(c=params["c"], a=a)
        elif name == "neg":
            text = f"-{a}"
        elif name == "pow":
            text = f"{a} ** {params['p']}"
        elif name in ("sum", "mean"):
            text = f"{a}.{name}(axis={params.get('axis')}, keepdims={bool(params.get('keepdims', False))})"
        elif name == "reshape":
            text = f"{a}.reshape({tuple(params['shape'])})"
        elif name == "transpose":
            text = f"{a}.transpose({params.get('axes')})"
        elif name == "T":
            text = f"{a}.T"
        elif name == "log_softmax":
            text = f"{a}.log_softmax(axis={params.get('axis', -1)})"
        elif name == "cross_entropy":
            text = f"cross_entropy({a}, y={[int(v) for v in np.asarray(params['y'])]})"
        else:
            text = f"{a}.{name}()"
        names.append(f"t{len(leaves) + k}")
        lines.append(f"{names[-1]} = {text}")
    return "\n".join(lines)


# --- random expressions ---------------------------------------------------------------------------

UNARY = ("neg", "exp", "log", "tanh", "sigmoid", "relu", "pow", "sum", "mean", "reshape", "transpose",
         "radd", "rsub", "rmul", "rdiv", "log_softmax", "cross_entropy")
ALL_OPS = tuple(BINARY) + UNARY


class Expression:
    """A random expression: leaves (arrays), ops in graphs.py's form, the upstream gradient,
    and its text (what hypothesis prints for a failing example)."""

    def __init__(self, leaves, ops, grad, text):
        self.leaves, self.ops, self.grad, self.text = leaves, ops, grad, text

    def __repr__(self) -> str:
        return "\n" + self.text + "\n"


def _broadcastable(s, t):
    try:
        np.broadcast_shapes(s, t)
        return True
    except ValueError:
        return False


@st.composite
def expressions(draw, ops=ALL_OPS, max_ops=8):
    """Random expressions over 1-3 leaves of broadcast-compatible shapes, each op taking its
    inputs from any earlier node (so nodes are shared), using only the op names in `ops`.
    Logarithms, divisors and fractional powers only take nodes known to be positive."""
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(2, 3))
    choices = [(rows, cols), (cols,), (rows, 1), (1, cols), ()]
    n_leaves = draw(st.integers(1, 3))
    meta = []  # (shape, positive) of every node
    for _ in range(n_leaves):
        meta.append((draw(st.sampled_from(choices)), draw(st.booleans())))
    seed = draw(st.integers(0, 2 ** 16))
    ops_out = []
    for _ in range(draw(st.integers(1, max_ops))):
        name = draw(st.sampled_from(sorted(ops)))
        nodes = list(range(len(meta)))
        if name in BINARY:
            a = draw(st.sampled_from(nodes))
            sa = meta[a][0]
            if name == "matmul":
                cands = [i for i in nodes if len(meta[i][0]) == 2 and len(sa) == 2 and meta[i][0][0] == sa[1]]
            elif name == "div":
                cands = [i for i in nodes if meta[i][1] and _broadcastable(sa, meta[i][0])]
            else:
                cands = [i for i in nodes if _broadcastable(sa, meta[i][0])]
            if not cands:
                continue
            b = draw(st.sampled_from(cands))
            shape = (sa[0], meta[b][0][1]) if name == "matmul" else np.broadcast_shapes(sa, meta[b][0])
            pos = name in ("add", "mul", "div") and meta[a][1] and meta[b][1]
            ops_out.append((name, [a, b]))
            meta.append((tuple(shape), pos))
            continue
        needs_pos = name in ("log", "rdiv")
        cands = [i for i in nodes if meta[i][1] or not needs_pos]
        if name in ("log_softmax",):
            cands = [i for i in cands if len(meta[i][0]) >= 1]
        if name == "cross_entropy":
            cands = [i for i in cands if len(meta[i][0]) == 2]
        if not cands:
            continue
        a = draw(st.sampled_from(cands))
        shape, pos = meta[a]
        params = {}
        if name == "pow":
            params["p"] = draw(st.sampled_from([2.0, 3.0, 0.5, -1.0, 1.5] if pos else [2.0, 3.0]))
            pos = pos
        elif name in ("sum", "mean"):
            axis = draw(st.sampled_from([None] + list(range(len(shape)))))
            keepdims = draw(st.booleans())
            params = {"axis": axis, "keepdims": keepdims}
            if axis is None:
                shape = (1,) * len(shape) if keepdims else ()
            else:
                shape = tuple(1 if i == axis else n for i, n in enumerate(shape)) if keepdims else \
                    tuple(n for i, n in enumerate(shape) if i != axis)
        elif name == "reshape":
            target = tuple(reversed(shape)) if draw(st.booleans()) else (int(np.prod(shape)),)
            params = {"shape": target}
            shape = target
        elif name == "transpose":
            params = {"axes": None}
            shape = tuple(reversed(shape))
        elif name in SCALAR:
            params = {"c": draw(st.sampled_from([-1.5, 0.5, 2.0]))}
            pos = (pos and params["c"] > 0 and name in ("radd", "rmul", "rdiv"))
        elif name == "log_softmax":
            params = {"axis": draw(st.sampled_from(list(range(len(shape)))))}
            pos = False
        elif name == "cross_entropy":
            params = {"y": [draw(st.integers(0, shape[1] - 1)) for _ in range(shape[0])]}
            shape, pos = (), True
        elif name in ("exp", "sigmoid"):
            pos = True
        elif name in ("neg", "tanh", "relu", "log"):
            pos = False
        ops_out.append((name, [a], params))
        meta.append((tuple(shape), pos))
    if not ops_out:
        ops_out.append(("mul", [0, 0]))
        meta.append((meta[0][0], False))
    gen = np.random.default_rng(seed)
    leaves = []
    for shape, pos in meta[:n_leaves]:
        values = gen.uniform(0.5, 2.0, shape) if pos else gen.uniform(0.2, 2.0, shape) * gen.choice([-1.0, 1.0], shape)
        leaves.append(np.asarray(values, dtype=np.float64))
    grad = np.asarray(gen.standard_normal(meta[-1][0]), dtype=np.float64)
    return Expression(leaves, ops_out, grad, describe(leaves, ops_out))


def well_conditioned(expr, values):
    """Whether an expression's values keep away from overflow, kinks and tiny divisors, so that
    any correct engine gives torch's gradients to 1e-6: every value finite and below 1e4 in size,
    every ReLU input at least 1e-3 from 0, every log argument, divisor and fractional-power base
    at least 1e-2, and every input to exp, log_softmax and cross_entropy at most 10 in size."""
    if not all(np.all(np.isfinite(v)) and np.all(np.abs(v) < 1e4) for v in values):
        return False
    for op in expr.ops:
        name, args = op[0], op[1]
        params = dict(op[2]) if len(op) > 2 else {}
        if name == "relu" and np.any(np.abs(values[args[0]]) < 1e-3):
            return False
        if name in ("exp", "log_softmax", "cross_entropy") and np.any(np.abs(values[args[0]]) > 10):
            return False  # large scores are the stability part's business
        if name in ("log", "rdiv") and np.any(values[args[0]] < 1e-2):
            return False
        if name == "div" and np.any(values[args[1]] < 1e-2):
            return False
        if name == "pow" and params["p"] not in (2.0, 3.0) and np.any(values[args[0]] < 1e-2):
            return False
    return True


# --- op rules --------------------------------------------------------------------------------------------

def away_from_zero(rng, shape, margin=0.2):
    return rng.uniform(margin, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def torch_rule(op, args, grads, dout=None):
    """(output, name -> gradient) of op at args (name -> value, in the rule's order) from
    torch.autograd, for the upstream gradient dout (no gradients when dout is None). The arrays
    named in grads are the op's tensor inputs; every other arg is a parameter (axis, p, y)."""
    leaves = {k: torch.tensor(args[k], dtype=torch.float64, requires_grad=True) for k in grads}
    params = {k: v for k, v in args.items() if k not in grads}
    out = torch_node(op, list(leaves.values()), params)
    if dout is None:
        return out.detach().numpy().copy(), {}
    out.backward(torch.as_tensor(np.asarray(dout, dtype=np.float64)))
    return out.detach().numpy().copy(), {k: t.grad.numpy().copy() for k, t in leaves.items()}


def tensor_inputs(args):
    return [k for k, v in args.items() if isinstance(v, np.ndarray) and k != "y"]


def summed_to_inputs(backward, shapes, reference):
    """The student's backward, with each gradient it returns summed to its input's shape
    (reference.unbroadcast): a gradient in the output's shape is as right as one already
    summed."""
    def wrapped(dout, cache):
        grads = backward(dout, cache)
        single = len(shapes) == 1
        grads = (grads,) if single else tuple(grads)
        out = []
        for k, (g, s) in enumerate(zip(grads, shapes)):
            try:
                out.append(reference.unbroadcast(np.asarray(g, dtype=np.float64), s))
            except ValueError:
                raise AssertionError(f"gradient {k + 1} of {wrapped.__name__} has shape {np.shape(g)}: neither "
                                     f"its input's shape {s} nor a shape that sums to it") from None
        return out[0] if single else tuple(out)

    wrapped.__name__ = getattr(backward, "__name__", "backward")
    return wrapped


def judge_rule(student, reference, op, args, rng, grads=None):
    """judge_backward of op's rule pair at args against torch's gradients."""
    grads = grads or tensor_inputs(args)
    out, _ = torch_rule(op, args, grads)
    dout = rng.standard_normal(np.shape(out))
    out, expected = torch_rule(op, args, grads, dout)
    shapes = [np.shape(args[k]) for k in grads]
    judge_backward(getattr(student, f"{op}_forward"),
                   summed_to_inputs(getattr(student, f"{op}_backward"), shapes, reference),
                   args, dout, grads, expected=expected, expected_out=out, threshold=1e-6)


def check_forward(student, op, args):
    out, _ = torch_rule(op, args, tensor_inputs(args))
    got = getattr(student, f"{op}_forward")(*args.values())
    assert isinstance(got, tuple) and len(got) == 2, f"{op}_forward must return (out, cache)"
    assert_close(got[0], out, name=f"{op}_forward out", threshold=1e-9)


# --- unbroadcast ----------------------------------------------------------------------------------

@pytest.mark.parametrize("grad_shape, shape", [
    ((2, 3, 4), (3, 4)), ((2, 3, 4), (1, 1)), ((2, 3, 4), (2, 1, 4)), ((5,), ()), ((3, 1), (1,)),
    ((1, 4), (1, 4)), ((2, 3, 4), ()), ((4, 1, 3), (4, 1, 1)),
])
def test_unbroadcast_hidden_random(student, reference, rng, grad_shape, shape):
    grad = rng.standard_normal(grad_shape)
    expected = reference.unbroadcast(grad, shape)
    assert_close(student.unbroadcast(grad, shape), expected, name=f"unbroadcast(grad {grad_shape}, {shape})")


def test_unbroadcast_hidden_against_torch(student, rng):
    a, b = rng.standard_normal((3, 1, 4)), rng.standard_normal((2, 1))
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    dout = rng.standard_normal((3, 2, 4))
    (ta * 1.0 + tb).backward(torch.tensor(dout))
    assert_close(student.unbroadcast(dout, a.shape), ta.grad.numpy(), name="unbroadcast to (3, 1, 4)")
    assert_close(student.unbroadcast(dout, b.shape), tb.grad.numpy(), name="unbroadcast to (2, 1)")


# --- elementwise rules, with broadcasting -------------------------------------------------------------

PAIRS = [((3, 4), (4,)), ((2, 1, 3), (4, 3)), ((3, 1), (1, 4)), ((), (2, 3)), ((2, 3), (2, 3)), ((1,), (5,))]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("shapes", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_elementwise_hidden_forward(student, rng, op, shapes):
    check_forward(student, op, {"a": rng.standard_normal(shapes[0]), "b": away_from_zero(rng, shapes[1])})


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("shapes", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_elementwise_hidden_backward(student, reference, rng, op, shapes):
    judge_rule(student, reference, op, {"a": rng.standard_normal(shapes[0]), "b": away_from_zero(rng, shapes[1])}, rng)


def test_elementwise_hidden_neg(student, reference, rng):
    check_forward(student, "neg", {"a": rng.standard_normal((3, 2))})
    judge_rule(student, reference, "neg", {"a": rng.standard_normal((2, 4))}, rng)


@pytest.mark.parametrize("p", [2.0, 3.0, 0.5, -1.0, -2.5, 1.0])
def test_elementwise_hidden_pow(student, reference, rng, p):
    args = {"a": rng.uniform(0.3, 2.0, (2, 3)), "p": p}
    check_forward(student, "pow", args)
    judge_rule(student, reference, "pow", args, rng, grads=["a"])


# --- matmul, reductions, shapes ------------------------------------------------------------------------

@pytest.mark.parametrize("n, k, m", [(1, 1, 1), (3, 4, 2), (5, 1, 3), (2, 6, 1)])
def test_matmul_hidden(student, reference, rng, n, k, m):
    args = {"a": rng.standard_normal((n, k)), "b": rng.standard_normal((k, m))}
    check_forward(student, "matmul", args)
    judge_rule(student, reference, "matmul", args, rng)


REDUCTIONS = [((4,), None, False), ((4,), 0, True), ((2, 3), 1, False), ((2, 3, 4), (0, 2), True),
              ((2, 3, 4), (1, 2), False), ((2, 3, 4), -2, False), ((3, 2), None, True), ((1, 5), 0, False)]


@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("shape, axis, keepdims", REDUCTIONS)
def test_reduce_hidden(student, reference, rng, op, shape, axis, keepdims):
    args = {"x": rng.standard_normal(shape), "axis": axis, "keepdims": keepdims}
    check_forward(student, op, args)
    judge_rule(student, reference, op, args, rng, grads=["x"])


@pytest.mark.parametrize("shape, target", [((2, 3), (3, 2)), ((2, 3, 4), (6, 4)), ((6,), (1, 2, 3)), ((2, 2), (4,))])
def test_shape_hidden_reshape(student, reference, rng, shape, target):
    args = {"x": rng.standard_normal(shape), "shape": target}
    check_forward(student, "reshape", args)
    judge_rule(student, reference, "reshape", args, rng, grads=["x"])


@pytest.mark.parametrize("shape, axes", [((2, 3), None), ((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (0, 2, 1)),
                                         ((2, 3, 4, 5), (3, 1, 0, 2)), ((2, 3, 4), None)])
def test_shape_hidden_transpose(student, reference, rng, shape, axes):
    args = {"x": rng.standard_normal(shape), "axes": axes}
    check_forward(student, "transpose", args)
    judge_rule(student, reference, "transpose", args, rng, grads=["x"])


# --- elementwise functions ----------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["exp", "log", "tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("shape", [(5,), (2, 3, 2), ()])
def test_activation_hidden(student, reference, rng, op, shape):
    x = np.asarray(rng.uniform(0.2, 3.0, shape) if op == "log" else away_from_zero(rng, shape, margin=0.05) * 2)
    if x.ndim == 0:
        x = np.asarray(np.abs(x))  # one entry: on the side where every op's output and gradient are nonzero
    check_forward(student, op, {"x": x})
    judge_rule(student, reference, op, {"x": x}, rng)


def test_activation_hidden_relu_at_zero_any_subgradient(student, reference, rng):
    # At x == 0 any value in [0, dout] is a valid subgradient: only the other entries count.
    x = np.array([[-1.0, 0.0, 2.0], [0.5, -0.25, 0.0]])
    out, cache = student.relu_forward(x)
    assert_close(out, np.maximum(x, 0), name="relu_forward out")
    dout = rng.uniform(0.5, 1.5, x.shape)
    dx = np.asarray(reference.unbroadcast(np.asarray(student.relu_backward(dout, cache)), x.shape))
    kink = x == 0
    assert_close(dx[~kink], (dout * (x > 0))[~kink], name="relu_backward dx away from 0")
    assert np.all((dx[kink] >= -1e-12) & (dx[kink] <= dout[kink] + 1e-12)), "relu_backward at 0 must lie in [0, dout]"


# --- log-softmax and cross-entropy ------------------------------------------------------------------

@pytest.mark.parametrize("shape, axis", [((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1), ((1, 3), -1), ((4,), 0)])
def test_log_softmax_hidden(student, reference, rng, shape, axis):
    args = {"x": 3 * rng.standard_normal(shape), "axis": axis}
    check_forward(student, "log_softmax", args)
    judge_rule(student, reference, "log_softmax", args, rng, grads=["x"])


@pytest.mark.parametrize("n, c", [(1, 2), (5, 3), (8, 10)])
def test_cross_entropy_hidden(student, reference, rng, n, c):
    logits, y = 2 * rng.standard_normal((n, c)), rng.integers(0, c, n)
    ref_loss = F.cross_entropy(torch.tensor(logits), torch.tensor(y)).item()
    loss, _ = student.cross_entropy_forward(logits, y)
    assert_close(loss, ref_loss, name="cross_entropy_forward loss", threshold=1e-9)
    judge_rule(student, reference, "cross_entropy", {"logits": logits, "y": y}, rng, grads=["logits"])


# --- numerical stability --------------------------------------------------------------------------------

def test_stable_hidden_log_softmax_huge(student, rng):
    x = rng.standard_normal((4, 6)) * 500 + np.array([[800.0], [-800.0], [0.0], [1e4]])
    out, cache = student.log_softmax_forward(x, -1)
    assert_close(out, torch.log_softmax(torch.tensor(x), -1).numpy(), name="log_softmax_forward out at scale 1e3")


def test_stable_hidden_cross_entropy_huge(student):
    logits = np.array([[1000.0, -1000.0, 0.0], [-5000.0, 5000.0, 4990.0]])
    y = np.array([1, 2])
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor(y)).item()
    loss, cache = student.cross_entropy_forward(logits, y)
    assert_close(loss, expected, name="cross_entropy_forward loss for scores of size 1000-5000")
    ref = torch.tensor(logits, requires_grad=True)
    F.cross_entropy(ref, torch.tensor(y)).backward()
    assert_close(student.cross_entropy_backward(np.asarray(1.0), cache), ref.grad.numpy(),
                 name="cross_entropy_backward dlogits for huge scores")


def test_stable_hidden_sigmoid(student):
    x = np.array([-1e4, -745.0, -50.0, 0.0, 50.0, 745.0, 1e4])
    out, _ = student.sigmoid_forward(x)
    assert_close(out, torch.sigmoid(torch.tensor(x)).numpy(), name="sigmoid_forward out at -1e4 ... 1e4")


# --- the graph, against torch.autograd --------------------------------------------------------------------

# Rounding that a correct engine may differ from torch by, on gradients of size about 1: an
# entry that is zero in exact arithmetic comes out as 1e-17 or so in either.
ROUNDING = 1e-10


def compare_graph(student, leaves, ops, requires=None, grad=None, what="", **options):
    """The student's engine against torch on one described expression."""
    values, grads = torch_graph(leaves, ops, requires, grad)
    result = student.run_graph(leaves, ops, requires=requires, grad=grad, **options)
    assert_close(result["values"][-1], values[-1], name=f"the output's value{what}", threshold=1e-9,
                 noise=ROUNDING)
    for i, g in enumerate(grads):
        mine = result["grads"][i]
        if g is None:
            assert mine is None or not np.any(mine), f"leaf {i}{what} gets no gradient in torch; yours has .grad {mine}"
            continue
        assert mine is not None, f"leaf {i}{what} has no .grad after backward()"
        assert_close(mine, g * options.get("repeat", 1), name=f"leaf {i}'s .grad{what}", threshold=1e-6,
                     noise=ROUNDING)
    return result


def test_graph_hidden_diamond(student, rng):
    x = rng.standard_normal((3, 2))
    ops = [("rmul", [0], {"c": 2.0}), ("mul", [0, 0]), ("add", [1, 2]), ("mul", [3, 1]), ("sum", [4])]
    compare_graph(student, [x], ops, what=" (x feeds two paths that meet)")


def test_graph_hidden_shared_intermediate(student, rng):
    # t = x * y is used three times; its gradient must be complete before it reaches x and y.
    x, y = rng.standard_normal((2, 3)), rng.standard_normal(3)
    ops = [("mul", [0, 1]), ("add", [2, 2]), ("mul", [3, 2]), ("sub", [4, 2]), ("sum", [5])]
    compare_graph(student, [x, y], ops)


def test_graph_hidden_broadcast_chain(student, rng):
    leaves = [rng.standard_normal((4, 1, 3)), rng.standard_normal((2, 1)), rng.standard_normal(()) + 3.0]
    ops = [("add", [0, 1]), ("mul", [3, 2]), ("sub", [4, 1]), ("sum", [5], {"axis": (0, 2)})]
    compare_graph(student, leaves, ops, grad=rng.standard_normal(2))


def test_graph_hidden_mlp_composite(student, rng):
    leaves = [rng.standard_normal((6, 5)), 0.5 * rng.standard_normal((5, 4)), 0.3 * rng.standard_normal(4),
              0.5 * rng.standard_normal((4, 3)), 0.3 * rng.standard_normal(3)]
    y = [0, 2, 1, 1, 0, 2]
    ops = [("matmul", [0, 1]), ("add", [5, 2]), ("tanh", [6]), ("matmul", [7, 3]), ("add", [8, 4]),
           ("cross_entropy", [9], {"y": y})]
    compare_graph(student, leaves, ops, requires=[False, True, True, True, True])


def test_graph_hidden_requires_grad_mix(student, rng):
    a, b, c = rng.standard_normal((2, 2)), rng.standard_normal((2, 2)), rng.standard_normal(2)
    ops = [("mul", [0, 1]), ("add", [3, 2]), ("mul", [4, 4]), ("sum", [5])]
    result = compare_graph(student, [a, b, c], ops, requires=[True, False, False])
    assert result["requires_grad"] == [True, False, False, True, True, True, True], \
        "requires_grad: leaves as made; every op with an input that requires grad requires grad"


def test_graph_hidden_constants_require_no_grad(student, rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    result = student.run_graph([a, b], [("mul", [0, 1]), ("sum", [2])], requires=[False, False], backward=False)
    assert_close(result["values"][-1], np.sum(a * b), name="the value of (a * b).sum()")
    assert result["requires_grad"] == [False] * 4, "ops on tensors that need no gradient need none"
    assert result["has_node"] == [False] * 4, "ops on tensors that need no gradient record no node"


def test_graph_hidden_backward_three_times(student, rng):
    x = rng.standard_normal((2, 3))
    compare_graph(student, [x], [("sigmoid", [0]), ("mul", [1, 0]), ("sum", [2])], repeat=3,
                  what=" after three backward() calls")


def test_graph_hidden_nonscalar_output_with_grad(student, rng):
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    compare_graph(student, [x, w], [("matmul", [0, 1]), ("exp", [2])], grad=rng.standard_normal((3, 2)))


def test_graph_hidden_topological_order(student, rng):
    leaves = [rng.standard_normal((2, 2)), rng.standard_normal(2), rng.standard_normal((2, 2))]
    ops = [("mul", [0, 1]), ("add", [3, 2]), ("mul", [4, 3]), ("add", [5, 0]), ("mul", [6, 4]), ("sum", [7])]
    # backward() walks this order: its gradients must be torch's.
    compare_graph(student, leaves, ops)
    result = student.graph_order(leaves, ops)
    order, parents = result["order"], result["parents"]
    assert sorted(order) == list(range(9)), f"every node of the graph once: got {order}"
    assert order[-1] == 8, f"the root comes last: got {order}"
    for k, node in enumerate(order):
        missing = [p for p in parents[k] if p not in order[:k]]
        assert not missing, f"node {node} comes before its parent(s) {missing}: {order}"


@pytest.mark.parametrize("n", [3000, 20000])
def test_graph_hidden_deep_chain(student, n):
    x = np.array([[0.5, -1.5]])
    value, grad = student.run_chain(x, n, 1.00002)
    assert_close(value, x * 1.00002 ** n, name=f"value after {n} products", threshold=1e-8)
    assert_close(grad, np.full((1, 2), 1.00002 ** n), name=f"x.grad through {n} products", threshold=1e-8)


# --- grad modes -------------------------------------------------------------------------------------------
#
# Each mode is judged against the student's own engine without it (the same expression built
# and differentiated normally): a wrong op rule costs its own part, not this one. The values
# must not be all zero, so that an engine that computes nothing earns nothing here.

def same_as_without_mode(got, normal, what):
    assert np.any(normal), f"{what}: the engine computes all zeros here, so the mode cannot be judged"
    assert_close(got, normal, name=what)


def test_grad_mode_hidden_no_grad_everything(student, rng):
    leaves = [rng.standard_normal((2, 3)), rng.standard_normal(3)]
    ops = [("mul", [0, 1]), ("exp", [2]), ("sum", [3], {"axis": 0}), ("cross_entropy", [2], {"y": [0, 2]})]
    result = student.run_graph(leaves, ops, no_grad_mode=True)
    assert result["requires_grad"] == [True, True, False, False, False, False], \
        "inside no_grad every op's result has requires_grad False (leaves keep theirs)"
    assert result["has_node"] == [False] * 6, "inside no_grad no op records a node"
    normal = student.run_graph(leaves, ops, backward=False)
    for k in (4, 5):
        same_as_without_mode(result["values"][k], normal["values"][k], f"node {k}'s value computed under no_grad")
    assert result["grad_enabled"] is True, "after the no_grad block recording is on again"


def test_grad_mode_hidden_nesting(student):
    result = student.no_grad_nesting()
    same_as_without_mode(result["value"], result["value_outside"], "Tensor([1, -2]) * 3.0 computed inside no_grad")
    seen = result["enabled"]
    assert seen[:2] == [False, False], "inside no_grad (and a nested one) recording is off"
    assert seen[2] is False, "leaving an inner no_grad inside an outer one keeps recording off"
    assert seen[3] is True, "leaving the outer no_grad turns recording back on"
    assert seen[4] is True, "a no_grad block that raises still turns recording back on"


def test_grad_mode_hidden_detach(student, rng):
    x = rng.standard_normal((2, 3))
    ops = [("exp", [0]), ("detach", [1]), ("mul", [1, 2]), ("sum", [3])]
    result = student.run_graph([x], ops)
    assert result["requires_grad"][2] is False and result["has_node"][2] is False, "detach() gives a leaf"
    # The detached node counts as a constant holding its values: the same as that constant.
    constant = student.run_graph([x, result["values"][2]], [("exp", [0]), ("mul", [2, 1]), ("sum", [3])],
                                 requires=[True, False])
    same_as_without_mode(result["grads"][0], constant["grads"][0], "x.grad of sum(exp(x) * exp(x).detach())")
    t = student.Tensor(x, requires_grad=True)
    d = t.detach()
    assert d.requires_grad is False and d.node is None, "detach(): requires_grad False, no node"
    assert_close(d.data, x, name="detach().data")


def test_grad_mode_hidden_zero_grad(student, rng):
    x = rng.standard_normal((3,))
    ops = [("pow", [0], {"p": 3.0}), ("sum", [1])]
    result = student.run_graph([x], ops, repeat=3, zero_grad=True)
    once = student.run_graph([x], ops)
    same_as_without_mode(result["grads"][0], once["grads"][0], "x.grad with zero_grad() before each of 3 backward()")
    t = student.Tensor(x, requires_grad=True)
    t.grad = np.ones(3)
    t.zero_grad()
    assert t.grad is None, "zero_grad() sets .grad to None"


# --- random expression graphs (hypothesis) -------------------------------------------------------
#
# Hidden property-based tests for hw6's engine: random expression graphs, with broadcasting and
# shared subexpressions, built with the student's Tensor and compared with torch.autograd.
#
# hypothesis draws the expressions; the settings are pinned (derandomize, a fixed number of
# examples, no database, no deadline), so every run tries the same expressions and a failure is
# the same on every run. When an expression fails, hypothesis shrinks it, and the message shows
# the smallest failing expression it found, as the Python that builds it.
#
# These tests judge the graph machinery (apply, topological order, backward, unbroadcast), so an
# expression uses only the ops whose rules are right on their own: a wrong rule costs its own
# part, and is named here in a note, but it is left out of the random expressions.

# No "explain" phase: it reports lines of the grader's own files, which say nothing to a student.
PINNED = settings(max_examples=50, derandomize=True, database=None, deadline=None, print_blob=False,
                  phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                         HealthCheck.filter_too_much])

# One small input per op, to try its rule on its own (through a one-op graph).
PROBES = {
    "add": [(2, 3), (3,)], "sub": [(2, 3), (2, 1)], "mul": [(2, 3), (3,)], "div": [(2, 3), (1, 3)],
    "matmul": [(2, 3), (3, 2)], "neg": [(2, 3)], "exp": [(2, 3)], "log": [(2, 3)], "tanh": [(2, 3)],
    "sigmoid": [(2, 3)], "relu": [(2, 3)], "pow": [(2, 3)], "sum": [(2, 3)], "mean": [(2, 3)],
    "reshape": [(2, 3)], "transpose": [(2, 3)], "radd": [(2, 3)], "rsub": [(2, 3)], "rmul": [(2, 3)],
    "rdiv": [(2, 3)], "log_softmax": [(2, 3)], "cross_entropy": [(2, 3)],
}
PARAMS = {"pow": {"p": 1.5}, "sum": {"axis": 0, "keepdims": True}, "mean": {"axis": 1}, "reshape": {"shape": (3, 2)},
          "transpose": {"axes": None}, "radd": {"c": 2.0}, "rsub": {"c": 2.0}, "rmul": {"c": 2.0},
          "rdiv": {"c": 2.0}, "log_softmax": {"axis": 1}, "cross_entropy": {"y": [0, 2]}}


def rule_problem(student, op):
    """None when a one-op graph of op, built with the student's Tensor, gives torch's value and
    gradients; else a few words on what went wrong."""
    gen = np.random.default_rng(3)
    leaves = [gen.uniform(0.5, 2.0, s) for s in PROBES[op]]
    ops = [(op, list(range(len(leaves))), PARAMS.get(op, {}))]
    shape = tuple(torch_node(op, [torch.tensor(x) for x in leaves], PARAMS.get(op, {})).shape)
    grad = gen.standard_normal(shape)
    values, grads = torch_graph(leaves, ops, grad=grad)
    try:
        result = student.run_graph(leaves, ops, grad=grad)
        assert_close(result["values"][-1], values[-1], name="value", threshold=1e-8)
        for mine, g in zip(result["grads"], grads):
            assert_close(mine, g, name="gradient", threshold=1e-6)
    except Exception as exc:  # noqa: BLE001 - student code: any failure means "leave this op out"
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return f"{type(exc).__name__}: {lines[-1] if lines else ''}"  # the last line names the error
    return None


@pytest.fixture
def engine(student):
    """The student's engine with the ops whose one-op graphs are right (good) and a note naming
    the others (None when every op is right). A plain object, not `student` itself: hypothesis
    inspects a test's first argument, and in grading `student` answers every attribute lookup
    through the worker."""
    problems = {op: rule_problem(student, op) for op in ALL_OPS}
    bad = {op: p for op, p in problems.items() if p is not None}
    note = None
    if bad:
        note = ("note: these ops are wrong on a one-op graph and are left out of the random expressions "
                "(their own tests say more): " + "; ".join(f"{op} ({p})" for op, p in sorted(bad.items())))
    return SimpleNamespace(student=student, good=tuple(op for op in ALL_OPS if op not in bad), note=note)


def compare(student, expr, values, grads):
    result = student.run_graph(expr.leaves, expr.ops, grad=expr.grad)
    assert_close(result["values"][-1], values[-1], name="the expression's value", threshold=1e-8, noise=ROUNDING)
    for i, g in enumerate(grads):
        mine = result["grads"][i]
        if g is None:
            assert mine is None or not np.any(mine), f"x{i} is not used, but its .grad is {mine}"
            continue
        assert mine is not None, f"x{i} is used, but has no .grad after backward()"
        # noise: a gradient that is zero in exact arithmetic (x / x) comes out as rounding.
        assert_close(mine, g, name=f"x{i}.grad", threshold=1e-6, noise=ROUNDING)


def run_property(engine, data, max_ops):
    student, good, note = engine.student, engine.good, engine.note
    if len(good) < 3:
        raise AssertionError("fewer than three ops work on a one-op graph, so no expression can be built: "
                             "write the op rules and apply() first" + (f"\n{note}" if note else ""))
    expr = data.draw(expressions(ops=good, max_ops=max_ops), label="expression")
    values, grads = torch_graph(expr.leaves, expr.ops, grad=expr.grad)
    assume(well_conditioned(expr, values))
    with explain_with(f"the expression (leaves drawn at random, backward() from a random gradient):\n{expr.text}"
                      + (f"\n{note}" if note else "")):
        compare(student, expr, values, grads)


@PINNED
@given(data=st.data())
def test_graph_hidden_random_expressions(engine, data):
    run_property(engine, data, max_ops=6)


@settings(PINNED, max_examples=25)
@given(data=st.data())
def test_graph_hidden_random_deep_shared(engine, data):
    run_property(engine, data, max_ops=14)

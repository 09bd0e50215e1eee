"""Build an expression from a plain description with YOUR engine, and report what it computed.

Course code (you import it, you do not submit it). The tests use it to drive your Tensor the
way you would write an expression by hand (`a * b + 2.0`, `x.sum(axis=0)`): in grading your code
runs in a separate process, and a description made of lists, numbers and arrays is what can be
sent there. You can use it too, to look at a graph:

    from graphs import run_graph
    leaves = [np.array([[1.0, 2.0]]), np.array([3.0])]
    ops = [("mul", [0, 1]), ("exp", [2]), ("sum", [3], {"axis": 1})]
    result = run_graph(leaves, ops)
    result["values"][-1], result["grads"]

Node numbers: the leaves are 0 .. L-1 in the order given, and op k makes node L + k. Each op is
(name, [input node numbers]) or (name, [inputs], {params}); the output is the last op's node.
Ops, with the Python that builds them:

    add a + b      sub a - b      mul a * b      div a / b      matmul a @ b      neg -a
    pow a ** p                    radd c + a     rsub c - a     rmul c * a     rdiv c / a
    sum a.sum(axis=axis, keepdims=keepdims)      mean a.mean(axis=..., keepdims=...)
    reshape a.reshape(shape)      transpose a.transpose(axes)   T a.T
    exp log tanh sigmoid relu     a.exp(), ...   log_softmax a.log_softmax(axis)
    cross_entropy  cross_entropy(a, y)           detach a.detach()
"""
from __future__ import annotations

import numpy as np

from engine import Tensor, cross_entropy, is_grad_enabled, no_grad, topological_order


def _tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _build(name, args, params):
    """The Tensor that op `name` makes from the Tensors args, written as a student would."""
    a = args[0]
    b = args[1] if len(args) > 1 else None
    c = params.get("c")
    builders = {
        "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b,
        "matmul": lambda: a @ b, "neg": lambda: -a, "pow": lambda: a ** params["p"],
        "radd": lambda: c + a, "rsub": lambda: c - a, "rmul": lambda: c * a, "rdiv": lambda: c / a,
        "sum": lambda: a.sum(axis=_tuple(params.get("axis")), keepdims=bool(params.get("keepdims", False))),
        "mean": lambda: a.mean(axis=_tuple(params.get("axis")), keepdims=bool(params.get("keepdims", False))),
        "reshape": lambda: a.reshape(tuple(params["shape"])),
        "transpose": lambda: a.transpose(_tuple(params.get("axes"))), "T": lambda: a.T,
        "exp": lambda: a.exp(), "log": lambda: a.log(), "tanh": lambda: a.tanh(),
        "sigmoid": lambda: a.sigmoid(), "relu": lambda: a.relu(),
        "log_softmax": lambda: a.log_softmax(int(params.get("axis", -1))),
        "cross_entropy": lambda: cross_entropy(a, np.asarray(params["y"])),
        "detach": lambda: a.detach(),
    }
    if name not in builders:
        raise ValueError(f"unknown op {name!r}; known: {', '.join(sorted(builders))}")
    return builders[name]()


def build_graph(leaves, ops, requires=None):
    """The Tensors of every node: leaves (requires_grad as `requires` says, True by default)
    then one per op. Returns the list of nodes."""
    requires = [True] * len(leaves) if requires is None else list(requires)
    nodes = [Tensor(np.asarray(x, dtype=np.float64), requires_grad=bool(r)) for x, r in zip(leaves, requires)]
    for op in ops:
        name, args = op[0], op[1]
        params = dict(op[2]) if len(op) > 2 else {}
        nodes.append(_build(name, [nodes[i] for i in args], params))
    return nodes


def _copy(value):
    return None if value is None else np.array(value, dtype=np.float64)


def run_graph(leaves, ops, requires=None, grad=None, backward=True, repeat=1, zero_grad=False,
              no_grad_mode=False):
    """Build the expression and backpropagate from its output.

    Inputs:
    - leaves: list of arrays; ops: list of (name, [inputs]) or (name, [inputs], {params})
    - requires: requires_grad of each leaf (default all True)
    - grad: the gradient to start backward() from (None: the output must have one element)
    - backward: False builds the graph only
    - repeat: how many times to call backward() on the same graph
    - zero_grad: call zero_grad() on every node before each backward()
    - no_grad_mode: build the whole expression inside `with no_grad():` (and do not
      backpropagate)
    Returns a dict:
    - "values": every node's values (leaves first), as arrays
    - "grads": every leaf's .grad after the last backward() (None where it has none)
    - "node_grads": every node's .grad
    - "requires_grad", "has_node": every node's requires_grad and whether .node is set
    - "grad_enabled": is_grad_enabled() at the end
    """
    if no_grad_mode:
        with no_grad():
            nodes = build_graph(leaves, ops, requires)
    else:
        nodes = build_graph(leaves, ops, requires)
    out = nodes[-1]
    if backward and not no_grad_mode:
        for _ in range(int(repeat)):
            if zero_grad:
                for tensor in nodes:
                    tensor.zero_grad()
            out.backward(None if grad is None else np.asarray(grad, dtype=np.float64))
    return {
        "values": [np.array(t.data, dtype=np.float64) for t in nodes],
        "grads": [_copy(t.grad) for t in nodes[:len(leaves)]],
        "node_grads": [_copy(t.grad) for t in nodes],
        "requires_grad": [bool(t.requires_grad) for t in nodes],
        "has_node": [t.node is not None for t in nodes],
        "grad_enabled": bool(is_grad_enabled()),
    }


def graph_order(leaves, ops, requires=None):
    """topological_order of the output, as node numbers (-1 for a tensor that is not one of
    the described nodes, such as a constant made from a number). Returns a dict: "order", the
    node numbers in the order given, and "parents", each one's parents' node numbers."""
    nodes = build_graph(leaves, ops, requires)
    index = {id(t): k for k, t in enumerate(nodes)}
    order = topological_order(nodes[-1])
    return {"order": [index.get(id(t), -1) for t in order],
            "parents": [[index.get(id(p), -1) for p in t.parents] for t in order]}


def run_chain(x, n, factor):
    """y = x * factor * factor * ... (n products, one node each), then y.backward(): a graph n
    tensors deep. Returns (y's value, x's gradient)."""
    leaf = Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    y = leaf
    for _ in range(int(n)):
        y = y * float(factor)
    y.sum().backward()
    return np.array(y.data), _copy(leaf.grad)


def no_grad_nesting():
    """is_grad_enabled() at each step of: inside no_grad; inside a nested no_grad; after the
    inner one ends; after the outer one ends; after a no_grad block that raised. Returns a dict:
    "enabled", a list of five bools (the right answer is [False, False, False, True, True]), and
    "value", Tensor([1, -2]) * 3.0 computed inside the nested block, and "value_outside", the
    same computed after all the blocks."""
    seen = []
    with no_grad():
        seen.append(is_grad_enabled())
        with no_grad():
            seen.append(is_grad_enabled())
            value = np.array((Tensor([1.0, -2.0]) * 3.0).data)
        seen.append(is_grad_enabled())
    seen.append(is_grad_enabled())
    try:
        with no_grad():
            raise KeyError("raised inside no_grad")
    except KeyError:
        pass
    seen.append(is_grad_enabled())
    outside = np.array((Tensor([1.0, -2.0]) * 3.0).data)
    return {"enabled": seen, "value": value, "value_outside": outside}

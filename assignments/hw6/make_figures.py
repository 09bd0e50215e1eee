"""Draw the computation graph of a small expression after backward().

    python make_figures.py        (from this folder, or give the path to it)

writes figures/graph.png: every tensor of

    d = a * b;  e = d + c;  f = tanh(e);  L = f * a

as a box (its name, value and .grad), every edge from a parent to the tensor made from it, and
on each edge the gradient that backward() sent along it: the parent's share of dL, which the
parent adds up over all its edges (a is used twice, so its .grad is the sum of two edges). It
uses your engine.py (Tensor, the op rules and backward()), so it works once those are written.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write a file; no window needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from engine import Tensor, topological_order, unbroadcast  # noqa: E402

HERE = Path(__file__).resolve().parent


def build():
    """The expression's tensors by name, after L.backward()."""
    a = Tensor(2.0, requires_grad=True)
    b = Tensor(-0.5, requires_grad=True)
    c = Tensor(0.25, requires_grad=True)
    d = a * b
    e = d + c
    f = e.tanh()
    L = f * a
    L.backward()
    return {"a": a, "b": b, "c": c, "d = a * b": d, "e = d + c": e, "f = tanh(e)": f, "L = f * a": L}


def edge_gradients(tensors):
    """(parent, child, gradient sent from child to parent) for every edge: the child's
    gradient through the child's backward rule, summed to the parent's shape."""
    edges = []
    for child in tensors:
        node = child.node
        if node is None:
            continue
        grads = node.backward(child.grad, node.cache)
        grads = (grads,) if len(node.parents) == 1 else grads
        for parent, g in zip(node.parents, grads):
            edges.append((parent, child, unbroadcast(g, parent.shape)))
    return edges


def layout(order):
    """x: the tensor's depth (longest path from a leaf); y: spread within a depth."""
    depth = {}
    for t in order:
        depth[id(t)] = 1 + max((depth[id(p)] for p in t.parents), default=-1)
    columns = {}
    for t in order:
        columns.setdefault(depth[id(t)], []).append(t)
    pos = {}
    for x, column in columns.items():
        for k, t in enumerate(column):
            pos[id(t)] = (x * 2.6, (len(column) - 1) / 2 - k * 1.3)
    return pos


def main():
    named = build()
    names = {id(t): name for name, t in named.items()}
    root = named["L = f * a"]
    order = topological_order(root)
    pos = layout(order)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    for parent, child, g in edge_gradients(order):
        (x0, y0), (x1, y1) = pos[id(parent)], pos[id(child)]
        ax.annotate("", xy=(x1 - 0.75, y1), xytext=(x0 + 0.75, y0),
                    arrowprops=dict(arrowstyle="->", color="0.4"))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.12, f"{float(np.sum(g)):+.3f}", ha="center",
                fontsize=9, color="tab:red")
    for t in order:
        x, y = pos[id(t)]
        label = f"{names.get(id(t), 'const')}\nvalue {float(t.data):.3f}\ngrad {float(t.grad):.3f}"
        ax.text(x, y, label, ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round", fc="tab:blue" if t.node is None else "white", alpha=0.25))
    ax.set_title("after L.backward(): value and .grad of each tensor; in red, the gradient sent "
                 "back along each edge", fontsize=10)
    ax.set_xlim(-1.0, max(x for x, _ in pos.values()) + 1.0)
    ax.set_ylim(-1.8, 1.6)
    ax.axis("off")
    fig.tight_layout()
    out = HERE / "figures" / "graph.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}; a.grad = {float(named['a'].grad):.4f} (the sum of its two edges)")


if __name__ == "__main__":
    main()

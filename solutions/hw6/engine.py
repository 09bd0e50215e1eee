"""hw6: a reverse-mode automatic differentiation engine in numpy.

The engine has three layers, and you write parts of each:

1. Op rules: for every operation a pair of plain numpy functions, in the CS231n style,

       out, cache = op_forward(*arrays, **params)
       grads = op_backward(dout, cache)

   A backward returns one gradient per array input (a tuple when there are two, the array
   itself when there is one): the gradient of the loss with respect to that input. For an
   elementwise op whose inputs were broadcast, you may return it in the output's shape (what
   numpy broadcasting gives you) or already summed to the input's shape: the engine passes
   every gradient through `unbroadcast` before it reaches the input.
2. The graph: `Tensor` wraps a float64 array; `apply` runs an op rule's forward on the data of
   its input tensors and, when gradients are being recorded, remembers how the result was made
   (a `Node`: the backward rule, the parent tensors, the cache). `Tensor.backward()` walks the
   graph from the output back to the leaves in reverse topological order.
3. Grad modes: `no_grad()` turns recording off; `detach()` cuts a tensor from its graph.

The operators and methods of Tensor (`a + b`, `a @ b`, `x.sum(axis=0)`, `x.relu()`) are given:
each is one call to `apply` with its rule pair.
"""
from __future__ import annotations

import numpy as np

# Whether apply() records graphs (see no_grad). Read it with is_grad_enabled().
_grad_enabled = True


def is_grad_enabled():
    """True when operations record the graph that backward() needs. (Given.)"""
    return _grad_enabled


class no_grad:
    """A context manager in which operations record no graph:

        with no_grad():
            scores = model(X)      # scores.requires_grad is False and scores.node is None

    On exit (also when the block raises) recording is back to what it was on entry, so
    no_grad blocks nest: leaving an inner block inside an outer one keeps recording off.
    """

    def __enter__(self):
        global _grad_enabled
        ### BEGIN SOLUTION
        self._saved = _grad_enabled
        _grad_enabled = False
        ### END SOLUTION
        return self

    def __exit__(self, exc_type, exc, tb):
        global _grad_enabled
        ### BEGIN SOLUTION
        _grad_enabled = self._saved
        ### END SOLUTION
        return False  # an exception inside the block is not swallowed


def unbroadcast(grad, shape):
    """Sum a gradient back to the shape of the input it belongs to.

    When numpy broadcasts an input of shape `shape` to a larger output, each input entry is
    used several times, so its gradient is the sum of the output gradient over the copies:
    over the leading axes that broadcasting added, and over every axis where `shape` has 1 and
    the gradient does not.

    Inputs:
    - grad: array whose shape `shape` broadcasts to (for example the output's shape)
    - shape: tuple, the input's shape
    Returns: an array of shape `shape`. Raises ValueError when `shape` does not broadcast to
    grad's shape (such a gradient belongs to another input).
    """
    grad = np.asarray(grad, dtype=np.float64)
    shape = tuple(shape)
    ### BEGIN SOLUTION
    if len(shape) > grad.ndim or np.broadcast_shapes(shape, grad.shape) != grad.shape:
        raise ValueError(f"a gradient of shape {grad.shape} cannot be summed to shape {shape}")
    lead = grad.ndim - len(shape)
    if lead:
        grad = grad.sum(axis=tuple(range(lead)))
    ones = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if ones:
        grad = grad.sum(axis=ones, keepdims=True)
    return grad
    ### END SOLUTION


# --- op rules: elementwise, with broadcasting ---------------------------------------------------

def add_forward(a, b):
    """out = a + b (a and b broadcast). Returns (out, cache)."""
    ### BEGIN SOLUTION
    return a + b, None
    ### END SOLUTION


def add_backward(dout, cache):
    """Returns (da, db), in out's shape or in the inputs' shapes."""
    ### BEGIN SOLUTION
    return dout, dout
    ### END SOLUTION


def sub_forward(a, b):
    """out = a - b (a and b broadcast). Returns (out, cache)."""
    ### BEGIN SOLUTION
    return a - b, None
    ### END SOLUTION


def sub_backward(dout, cache):
    """Returns (da, db)."""
    ### BEGIN SOLUTION
    return dout, -dout
    ### END SOLUTION


def mul_forward(a, b):
    """out = a * b, elementwise (a and b broadcast). Returns (out, cache)."""
    ### BEGIN SOLUTION
    return a * b, (a, b)
    ### END SOLUTION


def mul_backward(dout, cache):
    """Returns (da, db)."""
    ### BEGIN SOLUTION
    a, b = cache
    return dout * b, dout * a
    ### END SOLUTION


def div_forward(a, b):
    """out = a / b, elementwise (a and b broadcast). Returns (out, cache)."""
    ### BEGIN SOLUTION
    return a / b, (a, b)
    ### END SOLUTION


def div_backward(dout, cache):
    """Returns (da, db)."""
    ### BEGIN SOLUTION
    a, b = cache
    return dout / b, -dout * a / (b * b)
    ### END SOLUTION


def neg_forward(a):
    """out = -a. Returns (out, cache)."""
    ### BEGIN SOLUTION
    return -a, None
    ### END SOLUTION


def neg_backward(dout, cache):
    """Returns da."""
    ### BEGIN SOLUTION
    return -dout
    ### END SOLUTION


def pow_forward(a, p):
    """out = a ** p for a constant (Python float) exponent p. Returns (out, cache)."""
    ### BEGIN SOLUTION
    return a ** p, (a, p)
    ### END SOLUTION


def pow_backward(dout, cache):
    """Returns da (p is a constant: it has no gradient)."""
    ### BEGIN SOLUTION
    a, p = cache
    return dout * p * a ** (p - 1)
    ### END SOLUTION


# --- op rules: matrix product, reductions, shapes -----------------------------------------------

def matmul_forward(a, b):
    """out = a @ b for a of shape (N, K) and b of shape (K, M); out has shape (N, M)."""
    ### BEGIN SOLUTION
    return a @ b, (a, b)
    ### END SOLUTION


def matmul_backward(dout, cache):
    """Returns (da, db) of shapes (N, K) and (K, M)."""
    ### BEGIN SOLUTION
    a, b = cache
    return dout @ b.T, a.T @ dout
    ### END SOLUTION


def _axes(axis, ndim):
    """axis (None, an int or a tuple of ints, negative allowed) as a sorted tuple of
    non-negative axes. (Given.)"""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return tuple(sorted(int(a) % ndim for a in axes))


def sum_forward(x, axis=None, keepdims=False):
    """out = x.sum(axis, keepdims=keepdims); axis is None (all axes), an int or a tuple."""
    ### BEGIN SOLUTION
    return x.sum(axis=axis, keepdims=keepdims), (x.shape, _axes(axis, x.ndim), keepdims)
    ### END SOLUTION


def sum_backward(dout, cache):
    """Returns dx, of x's shape: each entry of x gets the gradient of the sum it went into."""
    ### BEGIN SOLUTION
    shape, axes, keepdims = cache
    if not keepdims:
        dout = np.expand_dims(dout, axes)
    return np.broadcast_to(dout, shape).copy()
    ### END SOLUTION


def mean_forward(x, axis=None, keepdims=False):
    """out = x.mean(axis, keepdims=keepdims). Returns (out, cache)."""
    ### BEGIN SOLUTION
    axes = _axes(axis, x.ndim)
    count = int(np.prod([x.shape[a] for a in axes]))
    return x.mean(axis=axis, keepdims=keepdims), (x.shape, axes, keepdims, count)
    ### END SOLUTION


def mean_backward(dout, cache):
    """Returns dx, of x's shape."""
    ### BEGIN SOLUTION
    shape, axes, keepdims, count = cache
    if not keepdims:
        dout = np.expand_dims(dout, axes)
    return np.broadcast_to(dout / count, shape).copy()
    ### END SOLUTION


def reshape_forward(x, shape):
    """out = x.reshape(shape). Returns (out, cache)."""
    ### BEGIN SOLUTION
    return x.reshape(shape), x.shape
    ### END SOLUTION


def reshape_backward(dout, cache):
    """Returns dx, of x's shape."""
    ### BEGIN SOLUTION
    return dout.reshape(cache)
    ### END SOLUTION


def transpose_forward(x, axes=None):
    """out = x.transpose(axes); axes=None reverses the axes. Returns (out, cache)."""
    ### BEGIN SOLUTION
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    return x.transpose(axes), tuple(axes)
    ### END SOLUTION


def transpose_backward(dout, cache):
    """Returns dx, of x's shape (the inverse permutation of the axes)."""
    ### BEGIN SOLUTION
    return dout.transpose(np.argsort(cache))
    ### END SOLUTION


# --- op rules: elementwise functions ------------------------------------------------------------

def exp_forward(x):
    """out = exp(x). Returns (out, cache)."""
    ### BEGIN SOLUTION
    out = np.exp(x)
    return out, out
    ### END SOLUTION


def exp_backward(dout, cache):
    """Returns dx."""
    ### BEGIN SOLUTION
    return dout * cache
    ### END SOLUTION


def log_forward(x):
    """out = log(x) (natural logarithm, x > 0). Returns (out, cache)."""
    ### BEGIN SOLUTION
    return np.log(x), x
    ### END SOLUTION


def log_backward(dout, cache):
    """Returns dx."""
    ### BEGIN SOLUTION
    return dout / cache
    ### END SOLUTION


def tanh_forward(x):
    """out = tanh(x). Returns (out, cache)."""
    ### BEGIN SOLUTION
    out = np.tanh(x)
    return out, out
    ### END SOLUTION


def tanh_backward(dout, cache):
    """Returns dx."""
    ### BEGIN SOLUTION
    return dout * (1.0 - cache * cache)
    ### END SOLUTION


def sigmoid_forward(x):
    """out = 1 / (1 + exp(-x)), computed without overflow for any finite x (no warning for
    x = -1000). Returns (out, cache)."""
    ### BEGIN SOLUTION
    z = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
    return out, out
    ### END SOLUTION


def sigmoid_backward(dout, cache):
    """Returns dx."""
    ### BEGIN SOLUTION
    return dout * cache * (1.0 - cache)
    ### END SOLUTION


def relu_forward(x):
    """out = max(x, 0). Returns (out, cache)."""
    ### BEGIN SOLUTION
    return np.maximum(x, 0.0), x
    ### END SOLUTION


def relu_backward(dout, cache):
    """Returns dx (at x == 0 any value between 0 and dout is accepted)."""
    ### BEGIN SOLUTION
    return dout * (cache > 0)
    ### END SOLUTION


# --- op rules: log-softmax and cross-entropy (fused, numerically stable) ------------------------

def log_softmax_forward(x, axis=-1):
    """out = x - log(sum(exp(x), axis, keepdims=True)), computed stably: shift x by its
    maximum along `axis` first, so that no exp overflows (finite for x = 1000 or -1000).
    Returns (out, cache)."""
    ### BEGIN SOLUTION
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return out, (out, axis)
    ### END SOLUTION


def log_softmax_backward(dout, cache):
    """Returns dx: dout minus softmax(x) times the sum of dout along the axis."""
    ### BEGIN SOLUTION
    out, axis = cache
    return dout - np.exp(out) * dout.sum(axis=axis, keepdims=True)
    ### END SOLUTION


def cross_entropy_forward(logits, y):
    """The mean cross-entropy of scores against integer labels, computed stably.

    Inputs:
    - logits: (N, C) scores
    - y: (N,) integer labels in [0, C)
    Returns (loss, cache); loss is a 0-d array: -mean over i of log_softmax(logits)[i, y[i]].
    """
    ### BEGIN SOLUTION
    y = np.asarray(y).astype(np.int64)
    logp, _ = log_softmax_forward(logits, axis=1)
    N = logits.shape[0]
    loss = -logp[np.arange(N), y].mean()
    return np.asarray(loss), (logp, y)
    ### END SOLUTION


def cross_entropy_backward(dloss, cache):
    """Returns dlogits, (N, C): dloss * (softmax(logits) - onehot(y)) / N."""
    ### BEGIN SOLUTION
    logp, y = cache
    N = logp.shape[0]
    dlogits = np.exp(logp)
    dlogits[np.arange(N), y] -= 1.0
    return dlogits * (dloss / N)
    ### END SOLUTION


# --- the graph ----------------------------------------------------------------------------------

class Node:
    """How a tensor was made: the backward rule of its op, the cache of its forward, and the
    tensors it was made from (its parents, in the order the op took them). (Given.)"""

    def __init__(self, backward, cache, parents, name):
        self.backward = backward
        self.cache = cache
        self.parents = tuple(parents)
        self.name = name

    def __repr__(self):
        return f"Node({self.name}, {len(self.parents)} parents)"


def _as_tensor(value):
    """A Tensor as it is, anything else (a number, an array) as a constant tensor. (Given.)"""
    return value if isinstance(value, Tensor) else Tensor(value)


class Tensor:
    """A float64 array that remembers how it was computed.

    Attributes:
    - data: the values, a float64 numpy array (0-d for a scalar)
    - requires_grad: whether backward() computes a gradient for this tensor
    - grad: after backward(), the gradient of the output with respect to this tensor (a float64
      array of data's shape), added to what grad held before; None until then
    - node: the Node that made this tensor, or None for a leaf (a tensor you created, or one
      made while no graph was recorded)
    """

    def __init__(self, data, requires_grad=False):
        self.data = np.array(data, dtype=np.float64)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.node = None

    @property
    def parents(self):
        """The tensors this one was made from: () for a leaf."""
        return () if self.node is None else self.node.parents

    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    def __repr__(self):
        made = f", made by {self.node.name}" if self.node is not None else ""
        return f"Tensor({self.data!r}, requires_grad={self.requires_grad}{made})"

    def backward(self, grad=None):
        """Backpropagate from this tensor: afterwards every tensor of the graph that requires
        grad holds in .grad the gradient of this tensor with respect to it, added to its
        previous .grad (None counts as zero).

        Inputs:
        - grad: the gradient to start from, of this tensor's shape; None is allowed for a
          tensor of one element and means 1.

        Each tensor's gradient is complete (every path through the graph has added to it)
        before it is passed on to its parents: visit the tensors in reverse topological
        order. Graphs may be tens of thousands of tensors deep: no recursion. A parent that
        does not require grad gets nothing; every gradient is summed to its parent's shape
        with unbroadcast. Raises RuntimeError when this tensor does not require grad, and
        ValueError when grad is None for a tensor of more than one element.
        """
        ### BEGIN SOLUTION
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() needs a gradient for a tensor of shape {self.shape}")
            grad = np.ones_like(self.data)
        grad = np.broadcast_to(np.asarray(grad, dtype=np.float64), self.shape)
        pending = {id(self): grad}
        for tensor in reversed(topological_order(self)):
            g = pending.pop(id(tensor), None)
            if g is None:
                continue
            tensor.grad = np.array(g, dtype=np.float64) if tensor.grad is None else tensor.grad + g
            node = tensor.node
            if node is None:
                continue
            grads = node.backward(g, node.cache)
            if len(node.parents) == 1:
                grads = (grads,)
            for parent, gp in zip(node.parents, grads):
                if not parent.requires_grad:
                    continue
                gp = unbroadcast(gp, parent.shape)
                key = id(parent)
                pending[key] = gp if key not in pending else pending[key] + gp
        ### END SOLUTION

    def zero_grad(self):
        """Forget the gradient: .grad becomes None."""
        ### BEGIN SOLUTION
        self.grad = None
        ### END SOLUTION

    def detach(self):
        """A new leaf tensor with the same values (a copy), no graph behind it and
        requires_grad False: gradients do not flow through it."""
        ### BEGIN SOLUTION
        return Tensor(self.data.copy())
        ### END SOLUTION

    # --- operators and methods (given): one apply() each ---------------------------------------

    def __add__(self, other):
        return apply(add_forward, add_backward, self, _as_tensor(other))

    def __radd__(self, other):
        return apply(add_forward, add_backward, _as_tensor(other), self)

    def __sub__(self, other):
        return apply(sub_forward, sub_backward, self, _as_tensor(other))

    def __rsub__(self, other):
        return apply(sub_forward, sub_backward, _as_tensor(other), self)

    def __mul__(self, other):
        return apply(mul_forward, mul_backward, self, _as_tensor(other))

    def __rmul__(self, other):
        return apply(mul_forward, mul_backward, _as_tensor(other), self)

    def __truediv__(self, other):
        return apply(div_forward, div_backward, self, _as_tensor(other))

    def __rtruediv__(self, other):
        return apply(div_forward, div_backward, _as_tensor(other), self)

    def __neg__(self):
        return apply(neg_forward, neg_backward, self)

    def __pow__(self, p):
        return apply(pow_forward, pow_backward, self, p=float(p))

    def __matmul__(self, other):
        return apply(matmul_forward, matmul_backward, self, _as_tensor(other))

    def sum(self, axis=None, keepdims=False):
        return apply(sum_forward, sum_backward, self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return apply(mean_forward, mean_backward, self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and not np.isscalar(shape[0]) else shape
        return apply(reshape_forward, reshape_backward, self, shape=tuple(shape))

    def transpose(self, axes=None):
        return apply(transpose_forward, transpose_backward, self, axes=axes)

    @property
    def T(self):
        return self.transpose()

    def exp(self):
        return apply(exp_forward, exp_backward, self)

    def log(self):
        return apply(log_forward, log_backward, self)

    def tanh(self):
        return apply(tanh_forward, tanh_backward, self)

    def sigmoid(self):
        return apply(sigmoid_forward, sigmoid_backward, self)

    def relu(self):
        return apply(relu_forward, relu_backward, self)

    def log_softmax(self, axis=-1):
        return apply(log_softmax_forward, log_softmax_backward, self, axis=axis)


def log_softmax(x, axis=-1):
    """log_softmax of a Tensor along axis (given): a Tensor of x's shape."""
    return x.log_softmax(axis)


def cross_entropy(logits, y):
    """The mean cross-entropy of a (N, C) Tensor of scores against (N,) integer labels (a
    numpy array; it gets no gradient). Returns a 0-d Tensor. (Given.)"""
    return apply(cross_entropy_forward, cross_entropy_backward, logits, y=np.asarray(y))


def apply(forward, backward, *inputs, **params):
    """Run one op on tensors, recording the graph when it is needed.

    Inputs:
    - forward, backward: the op's rule pair (above)
    - inputs: the Tensors the op takes; forward gets their .data arrays, in this order
    - params: keyword arguments passed on to forward as they are (axis, shape, p, y, ...)

    Returns: a new Tensor holding forward's output. It requires grad when recording is on
    (is_grad_enabled()) and at least one input requires grad; only then does it get a Node
    (backward, the cache, the inputs as parents, and forward's name without "_forward").
    Otherwise it is a leaf with requires_grad False, and the cache is dropped.
    """
    ### BEGIN SOLUTION
    out, cache = forward(*(t.data for t in inputs), **params)
    result = Tensor(out)
    if is_grad_enabled() and any(t.requires_grad for t in inputs):
        result.requires_grad = True
        result.node = Node(backward, cache, inputs, forward.__name__.removesuffix("_forward"))
    return result
    ### END SOLUTION


def topological_order(root):
    """Every tensor that root depends on (root included, following .parents), each once, in
    an order where every tensor comes after all of its parents: root comes last.

    Graphs may be tens of thousands of tensors deep, deeper than Python's recursion limit:
    use an explicit stack, not recursion. Returns a list of Tensors.
    """
    ### BEGIN SOLUTION
    order, seen = [], {id(root)}
    stack = [(root, iter(root.parents))]
    while stack:
        tensor, parents = stack[-1]
        for parent in parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, iter(parent.parents)))
                break
        else:
            stack.pop()
            order.append(tensor)
    return order
    ### END SOLUTION

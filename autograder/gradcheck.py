"""Numerical gradient checking: the one helper every assignment's tests use.

The numerical gradient of an array-valued function f is taken of the scalar

    L(args) = sum(f(*args) * dout)

where dout is an upstream gradient of the output's shape (random, seeded, chosen by the
test), so that a backward pass that returns dL/dx can be checked elementwise. Central
differences in float64 with a step of h * max(1, |x_i|): the step grows with the value so that
inputs of size 1e6 are not perturbed below their rounding error.

All evaluations of one check are collected into one list before anything is run, so that a
function that can evaluate many argument lists at once (the grading proxy's ``.map``) answers
the whole check in one round trip.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from autograder.diagnosis import diagnose

DEFAULT_H = 1e-5

# Below this fraction of the largest gradient entry, an entry is judged against that floor
# instead of its own size: an entry that is truly zero comes out of central differences as
# rounding noise (about 1e-11 of the largest entry), and dividing that noise by itself would
# report a relative error of 1.
FLOOR_FRACTION = 1e-3

# How many machine epsilons of the outputs' size a difference quotient may be off by rounding
# alone (the forward's own arithmetic rounds several times per output).
NOISE_FACTOR = 16.0


class GradientError(AssertionError):
    """An analytic gradient (or any compared array) disagrees with what it should be."""


def _as_float64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def rel_errors(a: Any, b: Any, noise: Any = 0.0) -> np.ndarray:
    """Elementwise relative error max(|a - b| - noise, 0) / max(|a| + |b|, floor).

    Inputs: arrays of one shape; noise, an optional bound (scalar or array) on the rounding
    error of b, within which a difference is no evidence of a bug. Returns: a float64 array of
    that shape. The floor is FLOOR_FRACTION of the largest magnitude in either array (and never
    below 1e-300), so entries that are tiny next to the rest are judged by the scale of the
    whole array.
    """
    a = _as_float64(a)
    b = _as_float64(b)
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    floor = max(FLOOR_FRACTION * scale, 1e-300)
    diff = np.maximum(np.abs(a - b) - noise, 0.0)
    return diff / np.maximum(np.abs(a) + np.abs(b), floor)


def rel_error(a: Any, b: Any, noise: Any = 0.0) -> float:
    """The largest elementwise relative error between two arrays of one shape (a float)."""
    errs = rel_errors(a, b, noise)
    return float(np.max(errs, initial=0.0))


def _fmt_index(idx: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(i)) for i in idx) + ")" if idx else "()"


def _hint(name: str, actual: np.ndarray, expected: np.ndarray) -> str:
    """A diagnosis hint for a failure message ("" when no known bug signature fits)."""
    try:
        words = diagnose(actual, expected)
    except Exception:  # noqa: BLE001 - a hint must never hide the failure itself
        return ""
    return f"\nhint: {name} {words}" if words else ""


def assert_close(
    actual: Any,
    expected: Any,
    name: str = "output",
    threshold: float = 1e-7,
    what: str = "expected",
    noise: Any = 0.0,
) -> None:
    """Assert that an array matches what it should be, elementwise, in relative error.

    Inputs: actual (what the student returned), expected (array-like), name (for the
    message), threshold (largest relative error allowed). Raises GradientError with a message
    naming the array, both shapes, the worst relative error, its index and both values. NaN
    or inf in actual is reported as such. Also accepts Python scalars.
    """
    __tracebackhide__ = True  # a student's traceback ends at their test's line, not in here
    try:
        act = np.asarray(actual)
    except Exception as exc:  # an object numpy cannot read as an array
        raise GradientError(f"{name}: could not read the returned value as an array ({exc})")
    exp = np.asarray(expected)
    if act.dtype == object or not np.issubdtype(act.dtype, np.number) and act.dtype != bool:
        raise GradientError(
            f"{name}: expected a numeric array of shape {exp.shape}, got {type(actual).__name__}"
            f" with dtype {act.dtype}"
        )
    if act.shape != exp.shape:
        raise GradientError(f"{name}: expected shape {exp.shape}, got shape {act.shape}" + _hint(name, act, exp))
    act = act.astype(np.float64)
    exp = exp.astype(np.float64)
    bad = ~np.isfinite(act)
    if bad.any() and not (~np.isfinite(exp) == bad).all():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise GradientError(
            f"{name}: contains {act[idx]} at index {_fmt_index(idx)} (shape {act.shape}); "
            f"{what} {exp[idx]!r}"
        )
    errs = rel_errors(np.where(bad, 0.0, act), np.where(bad, 0.0, exp), noise)
    if errs.size == 0:
        return
    flat = int(np.argmax(errs))
    worst = float(errs.flat[flat])
    if not worst <= threshold:
        idx = np.unravel_index(flat, errs.shape)
        raise GradientError(
            f"{name} (shape {act.shape}) is wrong: worst relative error {worst:.3e} at index "
            f"{_fmt_index(idx)}: got {act[idx]:.10g}, {what} {exp[idx]:.10g} "
            f"(threshold {threshold:.0e})" + _hint(name, act, exp)
        )


def _select(result: Any, output: int | None) -> np.ndarray:
    if output is not None:
        result = result[output]
    return _as_float64(result)


def _evaluate_many(
    f: Callable[..., Any],
    arglists: list[tuple],
    kwargs: Mapping[str, Any],
    output: int | None,
) -> list[np.ndarray]:
    """f(*args, **kwargs)[output] for every argument tuple, batched when f can batch."""
    mapper = getattr(f, "map", None)
    if callable(mapper):
        return [_as_float64(r) for r in mapper(arglists, kwargs=dict(kwargs), output=output)]
    return [_select(f(*args, **kwargs), output) for args in arglists]


class EntryFunction:
    """value -> fn(*args, **kwargs), with container[key] = value set first: a model's loss as a
    function of one of its parameters (``EntryFunction(model.params, "W1", model.loss, X, y)``).

    Its .map evaluates many values at once; when the container is the grading proxy's (it has
    ``map_assign``) that is one round trip to the worker instead of one per value. Either way
    the container is left holding the last value, so restore it afterwards.
    """

    def __init__(self, container: Any, key: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.container, self.key, self.fn, self.args, self.kwargs = container, key, fn, args, kwargs

    def __call__(self, value: Any) -> Any:
        self.container[self.key] = value
        return self.fn(*self.args, **self.kwargs)

    def map(self, arglists: list[tuple], kwargs: Mapping[str, Any] | None = None,
            output: int | None = None) -> list[Any]:
        if kwargs:
            raise TypeError("EntryFunction takes its keyword arguments when it is made")
        values = [a[0] for a in arglists]
        batched = getattr(self.container, "map_assign", None)
        if callable(batched):
            return batched(self.key, values, self.fn, self.args, self.kwargs, output=output)
        return [_select(self(v), output) for v in values]


def numeric_gradients(
    f: Callable[..., Any],
    args: Mapping[str, Any],
    wrt: Sequence[str],
    dout: Any = None,
    output: int | None = None,
    kwargs: Mapping[str, Any] | None = None,
    h: float = DEFAULT_H,
    return_noise: bool = False,
) -> dict[str, np.ndarray] | tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Numerical gradients of L = sum(f(*args)[output] * dout) with respect to some args.

    Inputs:
    - f: the function; called positionally with the values of args, in order.
    - args: name -> value, in f's positional order. Values in wrt are float arrays.
    - wrt: names of the args to differentiate with respect to.
    - dout: upstream gradient, of the output's shape; None when f returns a scalar.
    - output: index into f's return value (0 for the `out` of an `(out, cache)`), or None.
    - h: relative step.
    Returns: name -> gradient, float64, of that arg's shape (and, with return_noise, name ->
    a bound on each entry's rounding error). The inputs are not modified.
    """
    noises: dict[str, np.ndarray] = {}
    kwargs = dict(kwargs or {})
    base = {k: (np.array(v, dtype=np.float64) if k in wrt else v) for k, v in args.items()}
    names = list(base)
    arglists: list[tuple] = []
    steps: dict[str, np.ndarray] = {}
    for name in wrt:
        x = base[name]
        step = np.empty_like(x)
        # The step follows the size of the values: an array whose entries are about 1e-6
        # is perturbed by about 1e-11, not by 1e-5 (bigger than the values themselves).
        typical = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
        for i in np.ndindex(x.shape):
            hi = h * (max(abs(x[i]), typical) or 1.0)
            plus, minus = x.copy(), x.copy()
            plus[i] += hi
            minus[i] -= hi
            # The step actually taken, after rounding, is what the difference divides by.
            step[i] = plus[i] - minus[i]
            for pert in (plus, minus):
                arglists.append(tuple(pert if n == name else base[n] for n in names))
        steps[name] = step
    values = _evaluate_many(f, arglists, kwargs, output)
    up = None if dout is None else _as_float64(dout)
    grads: dict[str, np.ndarray] = {}
    pos = 0
    for name in wrt:
        step = steps[name]
        g = np.empty_like(step)
        noise = np.empty_like(step)
        for i in np.ndindex(step.shape):
            fp, fm = values[pos], values[pos + 1]
            pos += 2
            weights = 1.0 if up is None else up
            g[i] = float(np.sum((fp - fm) * weights)) / step[i]
            # Each output is rounded to about eps of its size; the sum of those roundings,
            # divided by the step, bounds what the difference can get wrong by itself.
            magnitude = float(np.sum((np.abs(fp) + np.abs(fm)) * np.abs(weights)))
            noise[i] = NOISE_FACTOR * np.finfo(np.float64).eps * magnitude / step[i]
        grads[name] = g
        noises[name] = noise
    return (grads, noises) if return_noise else grads


def numeric_gradient(
    f: Callable[[np.ndarray], Any], x: Any, dout: Any = None, h: float = DEFAULT_H
) -> np.ndarray:
    """Numerical gradient of sum(f(x) * dout) (or of scalar f(x)) with respect to array x.

    Inputs: f, a function of one array; x, float array of any shape; dout, the output's shape or
    None for scalar f. Returns: float64 array of x's shape.
    """
    return numeric_gradients(f, {"x": x}, ["x"], dout=dout, h=h)["x"]


def check_gradients(
    f: Callable[..., Any],
    args: Mapping[str, Any],
    grads: Mapping[str, Any],
    dout: Any = None,
    output: int | None = None,
    kwargs: Mapping[str, Any] | None = None,
    threshold: float = 1e-7,
    h: float = DEFAULT_H,
) -> dict[str, float]:
    """Assert that analytic gradients match numerical ones.

    Inputs:
    - f, args, dout, output, kwargs, h: as in numeric_gradients.
    - grads: name -> the analytic gradient to check (dL/d args[name]).
    - threshold: largest relative error allowed (1e-7 for a layer, 1e-6 for a whole net).
    Returns: name -> worst relative error, when all pass. Raises GradientError naming the
    input, its shape, the worst relative error, its index and both values.
    """
    __tracebackhide__ = True
    numeric, noise = numeric_gradients(
        f, args, list(grads), dout=dout, output=output, kwargs=kwargs, h=h, return_noise=True
    )
    worst: dict[str, float] = {}
    for name, analytic in grads.items():
        assert_close(
            analytic,
            numeric[name],
            name=f"gradient d{name} (input '{name}')",
            threshold=threshold,
            what="numerical",
            noise=noise[name],
        )
        worst[name] = rel_error(analytic, numeric[name], noise[name])
    return worst

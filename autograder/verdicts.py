"""Fair verdicts: each function judged on its own, and each stated rule graded once.

- ``judge_backward`` judges a student's backward pass against the true gradient at the same
  inputs (the reference's analytic gradient, itself gradient-checked in the project's tests),
  given the cache the student's own forward returned. A wrong forward then costs the forward's
  tests only, as long as its cache holds what the backward needs; the message still says what
  is wrong with that forward, and whether the backward agrees with the numerical gradient of
  the student's own forward (feedback, never the verdict).
- ``check_inputs_rule`` (built on ``assert_inputs_unchanged``) grades the rule "a function
  does not change the arrays it is given", in the rule's own part. Student code always works
  on copies (loader.ModuleNamespace locally, the worker in grading), so in every other test a
  broken rule is a warning line (InputChangedWarning), not a failure.
- ``explain_with`` adds a note (what is wrong with an input that feeds a composite) to any
  failure inside it.
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from autograder.gradcheck import GradientError, assert_close, numeric_gradients, rel_error
from autograder.loader import InputChangedError, InputChangedWarning


class BackwardNotJudged(AssertionError):
    """The backward could not be run: its forward crashed or returned no cache."""


def _name(fn: Any) -> str:
    name = getattr(fn, "__name__", None)
    return name if type(name) is str else repr(fn)


def _fresh(args: Mapping[str, Any]) -> list[Any]:
    # Dicts are state (bn_param, conv_param): every call gets its own, so one call's running
    # averages never leak into the next.
    return [copy.deepcopy(v) for v in args.values()]


def forward_problem(out: Any, expected: Any, name: str, threshold: float = 1e-7) -> str | None:
    """What is wrong with a forward's output, in one line, or None when it is right."""
    try:
        assert_close(out, expected, name=name, threshold=threshold)
    except GradientError as exc:
        return str(exc).splitlines()[0]
    return None


@contextlib.contextmanager
def explain_with(note: str | None) -> Iterator[None]:
    """Append `note` (when not None) to the message of an AssertionError raised inside."""
    __tracebackhide__ = True
    try:
        yield
    except AssertionError as exc:
        if not note:
            raise
        raise GradientError(f"{exc}\n{note}") from None


def _split(result: Any, outputs: int, fname: str) -> tuple[list[Any], Any]:
    if not isinstance(result, tuple) or len(result) != outputs + 1:
        shape = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        want = ", ".join(["out"] * outputs if outputs == 1 else [f"out{i + 1}" for i in range(outputs)])
        raise BackwardNotJudged(f"{fname} must return ({want}, cache); it returned {shape}")
    return list(result[:outputs]), result[outputs]


def _as_tuple(grads: Any, n: int) -> tuple:
    if n == 1:
        return (grads,)
    return tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)


def reference_gradients(forward: Callable, backward: Callable, args: Mapping[str, Any], douts: Sequence[Any],
                        grads: Sequence[str], outputs: int = 1) -> tuple[list[Any], dict[str, np.ndarray]]:
    """(outputs, name -> true gradient) of the reference at args, for upstream gradients douts."""
    result = forward(*_fresh(args))
    outs, cache = list(result[:outputs]), result[outputs]
    values = _as_tuple(backward(*douts, cache), len(grads))
    return outs, dict(zip(grads, values))


def _own_consistency(forward: Callable, args: Mapping[str, Any], douts: Sequence[Any], grads: Sequence[str],
                     got: Mapping[str, Any], fname: str, bname: str) -> str:
    """Feedback: does the student's backward match the numerical gradient of their forward?"""
    try:
        numeric: dict[str, np.ndarray] = {}
        noise: dict[str, np.ndarray] = {}
        state = dict(args)
        for k, d in enumerate(douts):
            g, n = numeric_gradients(forward, state, list(grads), dout=d, output=k, return_noise=True)
            for name in grads:
                numeric[name] = numeric.get(name, 0.0) + g[name]
                noise[name] = noise.get(name, 0.0) + n[name]
        errors = {}
        for name in grads:
            a = np.asarray(got[name], dtype=np.float64)
            if a.shape != numeric[name].shape:
                errors[name] = None
                continue
            errors[name] = rel_error(a, numeric[name], noise[name])
    except Exception:  # noqa: BLE001 - feedback only: a forward that cannot be differentiated says nothing
        return ""
    bad = {k: v for k, v in errors.items() if v is None or v > 1e-5}
    if not bad:
        return (f"\nyour {bname} does match the numerical gradient of your own {fname}: "
                "the difference starts in the forward, or in what its cache keeps")
    words = ", ".join(f"d{k}" + ("" if v is None else f" (worst relative error {v:.1e})") for k, v in bad.items())
    return f"\nyour {bname} also disagrees with the numerical gradient of your own {fname}: {words}"


def judge_backward(
    forward: Callable,
    backward: Callable,
    args: Mapping[str, Any],
    dout: Any,
    grads: Sequence[str],
    *,
    reference: tuple[Callable, Callable] | None = None,
    expected: Mapping[str, Any] | None = None,
    expected_out: Any = None,
    outputs: int = 1,
    threshold: float = 1e-7,
    what: str = "",
) -> dict[str, Any]:
    """Judge a backward pass on its own: given the cache of the student's forward, do its
    gradients equal the true ones at these inputs?

    Inputs:
    - forward, backward: the student's pair. forward(*args.values()) returns
      (out_1, ..., out_outputs, cache); backward(*douts, cache) returns the gradients named in
      `grads`, in that order (one array when there is one name).
    - args: name -> value, in forward's positional order; each name in grads is a key.
    - dout: the upstream gradient of the output (a tuple of them when outputs > 1).
    - reference: the reference's (forward, backward), from which the true gradients (and the
      true outputs) are computed at args; or give them as expected (name -> array) and
      expected_out (the outputs, optional: used only for the note about the forward).
    - threshold: largest relative error allowed per gradient; what: words for the message
      ("for x of shape (2, 3)").
    Returns: name -> the student's gradient. Raises GradientError naming the wrong gradient,
    with a note on the forward when it is wrong too, and whether the backward agrees with the
    numerical gradient of the student's own forward; BackwardNotJudged when the forward
    crashes or returns no cache.
    """
    __tracebackhide__ = True
    douts = list(dout) if outputs > 1 else [dout]
    fname, bname = _name(forward), _name(backward)
    suffix = f" {what}" if what else ""
    if reference is not None:
        ref_outs, expected = reference_gradients(*reference, args, douts, grads, outputs)
    else:
        if expected is None:
            raise TypeError("judge_backward needs reference= or expected=")
        ref_outs = None if expected_out is None else (list(expected_out) if outputs > 1 else [expected_out])
    try:
        result = forward(*_fresh(args))
    except Exception as exc:  # noqa: BLE001 - the student's forward: any exception
        raise BackwardNotJudged(
            f"{bname}{suffix} could not be judged: {fname} raised {type(exc).__name__}: {exc}\n"
            f"(fix {fname} first: its own tests say more)") from exc
    outs, cache = _split(result, outputs, fname)
    note = ""
    if ref_outs is not None:
        problems = [forward_problem(o, r, f"{fname} output {k + 1}" if outputs > 1 else f"{fname} out")
                    for k, (o, r) in enumerate(zip(outs, ref_outs))]
        problems = [p for p in problems if p]
        if problems:
            note = ("\nnote: " + "; ".join(problems) + f". This test judges {bname} alone, given the "
                    f"cache your {fname} returned; {fname}'s own tests grade the forward.")
    try:
        got = _as_tuple(backward(*douts, cache), len(grads))
    except Exception as exc:  # noqa: BLE001
        raise GradientError(f"{bname}{suffix} raised {type(exc).__name__}: {exc}{note}") from exc
    if len(got) != len(grads):
        names = ", ".join(f"d{g}" for g in grads)
        raise GradientError(f"{bname} must return {len(grads)} gradients ({names}); it returned {len(got)}{note}")
    mine = dict(zip(grads, got))
    for name in grads:
        try:
            assert_close(mine[name], expected[name], name=f"{bname} d{name}{suffix}", threshold=threshold)
        except GradientError as exc:
            feedback = _own_consistency(forward, args, douts, grads, mine, fname, bname)
            raise GradientError(f"{exc}{note}{feedback}") from None
    return mine


def assert_inputs_unchanged(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call fn(*args, **kwargs) and fail (InputChangedError) when it writes into an array it
    was given. Returns what fn returned."""
    __tracebackhide__ = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InputChangedWarning)
        result = fn(*args, **kwargs)
    changed = [str(w.message) for w in caught if issubclass(w.category, InputChangedWarning)]
    for w in caught:
        if not issubclass(w.category, InputChangedWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if changed:
        raise InputChangedError(changed[0])
    return result


def _numbers(value: Any, depth: int = 0) -> list[np.ndarray]:
    """The arrays and numbers in a returned value (tuples, lists and dicts opened; objects that
    stay in the worker, such as a cache, skipped)."""
    if isinstance(value, (bool, int, float, np.number)) or type(value) is np.ndarray:
        return [np.asarray(value, dtype=np.float64)]
    if depth < 4 and type(value) in (tuple, list):
        return [a for v in value for a in _numbers(v, depth + 1)]
    if depth < 4 and type(value) is dict:
        return [a for v in value.values() for a in _numbers(v, depth + 1)]
    return []


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))


def check_inputs_rule(fn: Callable, first: Sequence[Any], second: Sequence[Any],
                      outputs: int | None = None) -> tuple[Any, Any]:
    """The test of the stated rule "a function leaves the arrays it is given unchanged", on its
    own: two calls, fn(*first) and fn(*second), with different inputs.

    Each call must leave every array it is given unchanged (InputChangedError names the
    argument). The rule is about a function that computes something, so a function that
    ignores its inputs earns nothing here: the two results must differ, and neither may be
    one of its call's own inputs handed back. outputs: for a function that returns
    (out_1, ..., out_k, cache), k, so that only the outputs count (a cache holds the inputs
    themselves, and differs whenever they do). The values are graded by the function's own
    tests, not here. Returns the two results.
    """
    __tracebackhide__ = True
    name = _name(fn)
    results = [assert_inputs_unchanged(fn, *first), assert_inputs_unchanged(fn, *second)]
    judged = results if outputs is None else [tuple(r[:outputs]) if isinstance(r, tuple) else r for r in results]
    got = [_numbers(r) for r in judged]
    if not got[0]:
        raise AssertionError(f"{name} returned no arrays or numbers, so the rule cannot be checked")
    if _same(got[0], got[1]):
        raise AssertionError(f"{name} returned the same result for two different inputs: the rule is "
                             "graded for a function that computes its result from its inputs")
    for args, mine in zip((first, second), got):
        inputs = [np.asarray(a, dtype=np.float64) for a in args if type(a) is np.ndarray]
        if all(any(x.shape == a.shape and np.array_equal(x, a) for a in inputs) for x in mine if x.ndim):
            if any(x.ndim for x in mine):
                raise AssertionError(f"{name} handed back an input unchanged instead of computing "
                                     "a result: the rule is graded for a function that computes")
    return results[0], results[1]

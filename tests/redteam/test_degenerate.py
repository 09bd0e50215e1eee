"""Degenerate submissions of hw1-hw4 and hw6: wrong but self-consistent code must earn nothing.

A test can pass for code that is wrong in a way the test cannot see: a gradient check compares
the student's backward with numerical gradients of the student's own forward, so a forward
that returns zeros and a backward that returns zeros agree; a "dw is not modified" test passes
for an optimizer that does nothing; a pytest.raises(ValueError) test passes for a function
that always raises ValueError. Each such test must also check the value itself.

Every submission here is the reference of an assignment with code appended to each graded
module, built at test time so that it follows the reference as it changes. The appended code
rebinds every public function (and class) the module defines to a degenerate wrapper:

- zeros: call the reference, then replace every float (and integer) result by zero of the same
  shape and dtype. Caches of forward passes and optimizer configs pass through untouched, so
  that later calls (backward, the next step) still run; their own results are zeros anyway.
  The reference's exceptions pass through too (conv_output_size still rejects bad
  geometries). A class's instances start with all-zero parameters and arrays, and its methods
  return zeros.
- do_nothing (hw3): every update rule returns (a copy of w, config with the defaults filled
  in and the state left at its start); clipping returns copies of the gradients and a norm of
  0.0; schedules return lr0 at every epoch. (A clip that computes the true norm but never
  clips is not degenerate: it is right whenever the norm is below max_norm, and the tests of
  that case may rightly pass it.)
- raises: every function, and every class's constructor, raises ValueError (whose message
  names the numbers it was given).
- zero_inputs: zeros, and then every float array the function was given is zeroed in place,
  so that a test which asks the reference about the same arrays afterwards would get zeros
  too and agree. The grader never lets student code change the test's arrays: such a call
  fails (InputChangedError), locally and in grading alike.

Each must score exactly 0: no test of any part may pass.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from autograder.grade import grade

# Appended to every graded module: shared helpers, then the kind's wrapper, then the loop
# that rebinds. Names start with _dg_ so that the loop never wraps its own helpers.
PRELUDE = '''
# ---- degenerate wrapper, appended by tests/redteam/test_degenerate.py ----
import copy as _dg_copy
import functools as _dg_functools
import inspect as _dg_inspect

import numpy as _dg_np

# Calls between the module's own functions (im2col calling conv_output_size, a sandwich
# layer calling affine_forward) reach the reference unchanged: only what a test receives is
# degenerate, so every result has the reference's shapes and nothing fails for another reason.
_dg_depth = [0]


def _dg_zero(value):
    """value with every float and integer (in tuples, lists, dicts) replaced by a zero."""
    if isinstance(value, _dg_np.ndarray):
        if _dg_np.issubdtype(value.dtype, _dg_np.number):
            return _dg_np.zeros_like(value)
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, (float, _dg_np.floating)):
        return 0.0
    if isinstance(value, (int, _dg_np.integer)):
        return 0
    if isinstance(value, tuple):
        return tuple(_dg_zero(v) for v in value)
    if isinstance(value, list):
        return [_dg_zero(v) for v in value]
    if isinstance(value, dict):
        return {k: _dg_zero(v) for k, v in value.items()}
    return value


# zero_inputs turns this on: after each call, every float array the caller passed in (directly
# or in a dict, list or tuple) is zeroed in place.
_dg_wipe_inputs = False


def _dg_wipe(args, kwargs):
    if not _dg_wipe_inputs:
        return
    for value in [*args, *kwargs.values()]:
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if isinstance(v, _dg_np.ndarray) and v.dtype.kind == "f" and v.flags.writeable:
                v[...] = 0.0


def _dg_keeps_state(fn):
    """True when the last item of fn's tuple result is state for a later call: the cache of a
    forward pass, or an optimizer's config."""
    return "forward" in fn.__name__ or "config" in _dg_inspect.signature(fn).parameters


def _dg_outer(fn, degenerate):
    """fn, degenerate when called from outside the module, the reference when called inside."""
    @_dg_functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _dg_depth[0]:
            return fn(*args, **kwargs)
        _dg_depth[0] += 1
        try:
            return degenerate(*args, **kwargs)
        finally:
            _dg_depth[0] -= 1
    return wrapper
'''

KINDS = {
    "zeros": '''
def _dg_function(fn):
    keep = _dg_keeps_state(fn)

    def degenerate(*args, **kwargs):
        result = fn(*args, **kwargs)
        _dg_wipe(args, kwargs)
        if keep and isinstance(result, tuple) and len(result) >= 2:
            return tuple(_dg_zero(r) for r in result[:-1]) + (result[-1],)
        return _dg_zero(result)
    return _dg_outer(fn, degenerate)


def _dg_class(cls):
    class Degenerate(cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # No seeded initialization survives either: every parameter array is zero, and
            # so is every array an instance holds (hw6's Tensor keeps its values in .data).
            if isinstance(getattr(self, "params", None), dict):
                self.params = _dg_zero(self.params)
            for _dg_key, _dg_value in list(vars(self).items()):
                if isinstance(_dg_value, _dg_np.ndarray):
                    setattr(self, _dg_key, _dg_zero(_dg_value))

    for name, member in list(vars(cls).items()):
        if _dg_inspect.isfunction(member) and not name.startswith("_"):
            def method(self, *args, _dg_member=member, **kwargs):
                result = _dg_member(self, *args, **kwargs)
                _dg_wipe(args, kwargs)
                return _dg_zero(result)
            setattr(Degenerate, name, _dg_functools.wraps(member)(method))
    Degenerate.__name__ = Degenerate.__qualname__ = cls.__name__
    Degenerate.__module__ = cls.__module__
    return Degenerate
''',
    "do_nothing": '''
def _dg_function(fn):
    params = list(_dg_inspect.signature(fn).parameters)

    def degenerate(*args, **kwargs):
        bound = _dg_inspect.signature(fn).bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        if "config" in params:
            # Ask the reference for the keys it fills in, on copies, then take none of its
            # step: the hyperparameters (floats) keep their defaults, the state (arrays, the
            # step count t) stays at its start, zero.
            _, filled = fn(_dg_np.array(a["w"], dtype=float), _dg_np.array(a["dw"], dtype=float),
                           _dg_copy.deepcopy(a["config"]))
            config = {} if a["config"] is None else a["config"]
            for key, value in filled.items():
                if key not in config:
                    config[key] = value if isinstance(value, float) else _dg_zero(value)
            return _dg_np.array(a["w"], copy=True), config
        if "grads" in params:
            return {k: _dg_np.array(g, copy=True) for k, g in a["grads"].items()}, 0.0
        if "lr0" in params:
            return float(a["lr0"])
        raise AssertionError(f"do_nothing has no rule for {fn.__name__}{params}")
    return _dg_outer(fn, degenerate)


def _dg_class(cls):
    return cls
''',
    "raises": '''
def _dg_function(fn):
    def degenerate(*args, **kwargs):
        # Naming every number it was given, as a good error message does, so that a test
        # that checks the message as well as the exception is not enough.
        numbers = [a for a in [*args, *kwargs.values()] if isinstance(a, (int, float))]
        raise ValueError(f"{fn.__name__}{tuple(numbers)}: degenerate submission, always ValueError")
    return _dg_outer(fn, degenerate)


def _dg_class(cls):
    class Degenerate(cls):
        def __init__(self, *args, **kwargs):
            raise ValueError(f"{cls.__name__}: degenerate submission, always ValueError")
    Degenerate.__name__ = Degenerate.__qualname__ = cls.__name__
    Degenerate.__module__ = cls.__module__
    return Degenerate
''',
}

KINDS["zero_inputs"] = "\n_dg_wipe_inputs = True\n" + KINDS["zeros"]

REBIND = '''
for _dg_name, _dg_obj in list(globals().items()):
    # Only what this module defines: names imported from a sibling module are that module's
    # (already rebound there).
    if _dg_name.startswith("_") or getattr(_dg_obj, "__module__", None) != __name__:
        continue
    if _dg_inspect.isclass(_dg_obj):
        globals()[_dg_name] = _dg_class(_dg_obj)
    elif _dg_inspect.isfunction(_dg_obj):
        globals()[_dg_name] = _dg_function(_dg_obj)
'''


def degenerate_code(kind: str) -> str:
    return PRELUDE + KINDS[kind] + REBIND


def make_degenerate(course, name: str, kind: str, dest: Path) -> Path:
    """The reference modules of assignment `name`, each with the `kind` wrapper appended, and
    the quiz's answers.yml as released: blank."""
    assignment = course.assignment(name)
    dest.mkdir(parents=True)
    for fname in assignment.files:
        if not fname.endswith(".py"):
            (dest / fname).write_bytes((assignment.release_dir / fname).read_bytes())
            continue
        text = (assignment.solution_dir / fname).read_text(encoding="utf-8")
        (dest / fname).write_text(text + "\n\n" + degenerate_code(kind), encoding="utf-8")
    return dest


def load_degenerate(course, name: str, module: str, kind: str, tmp_path: Path):
    """One module of a degenerate submission, imported here (our own code: the reference)."""
    folder = make_degenerate(course, name, kind, tmp_path / f"{name}-{kind}")
    spec = importlib.util.spec_from_file_location(f"_degenerate_{name}_{kind}_{module}",
                                                  folder / f"{module}.py")
    mod = importlib.util.module_from_spec(spec)
    # Sibling imports (fc_net imports layers) resolve in the submission; none outlives this.
    before = set(sys.modules)
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(folder))
        for key in set(sys.modules) - before:
            del sys.modules[key]
    return mod


def test_the_wrappers_do_what_they_say(course, tmp_path):
    # Score 0 below proves that the submissions are degenerate; this shows that they are the
    # intended ones: right shapes and dtypes, state kept, the defaults filled in.
    conv = load_degenerate(course, "hw2", "conv_layers", "zeros", tmp_path)
    x = np.arange(2 * 3 * 5 * 5, dtype=np.float64).reshape(2, 3, 5, 5) / 50.0
    w = np.ones((4, 3, 3, 3))
    out, cache = conv.conv_forward_im2col(x, w, np.ones(4), {"stride": 2, "pad": 1})
    assert out.shape == (2, 4, 3, 3) and out.dtype == np.float64 and not out.any()
    assert cache[0] is not None and np.array_equal(cache[0], x)  # the cache is the reference's
    dx, dw, db = conv.conv_backward_im2col(np.ones_like(out), cache)
    assert dx.shape == x.shape and dw.shape == w.shape and not (dx.any() or dw.any() or db.any())
    assert conv.conv_output_size(5, 3, 1, 1) == 0
    with pytest.raises(ValueError):  # the reference's own errors still come through
        conv.conv_output_size(6, 3, 0, 2)

    optim = load_degenerate(course, "hw3", "optim", "do_nothing", tmp_path)
    w, dw = np.ones((2, 3)), np.full((2, 3), 0.5)
    next_w, config = optim.adam(w, dw, None)
    assert np.array_equal(next_w, w) and next_w is not w
    assert config["learning_rate"] == 1e-3 and config["t"] == 0 and not config["m"].any()
    given = {"learning_rate": 0.3}
    next_w, config = optim.sgd_momentum(w, dw, given)
    assert config is given and config["momentum"] == 0.9 and not config["velocity"].any()
    clipped, total_norm = optim.clip_grad_norm({"W": 10 * w}, 1.0)
    assert np.array_equal(clipped["W"], 10 * w) and total_norm == 0.0
    assert optim.step_decay(0.1, 35) == 0.1 and optim.cosine_schedule(0.1, 50, 100) == 0.1

    layers = load_degenerate(course, "hw1", "layers", "zero_inputs", tmp_path)
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    out, _ = layers.relu_forward(x)
    assert out.shape == (2, 3) and not out.any() and not x.any()  # the input itself was wiped

    fc_net = load_degenerate(course, "hw1", "fc_net", "raises", tmp_path)
    with pytest.raises(ValueError):
        fc_net.FullyConnectedNet([3], input_dim=2, num_classes=2)


def passed_tests(result) -> list[str]:
    return sorted(f"{t.part}: {t.outcome.name}" for t in result.scorecard.tests if t.passed)


# A failure of a zeros or do_nothing submission must be a verdict on the values it returned
# (an assertion of the test), not a crash of the wrapper, which would score 0 and prove nothing.
VERDICT = re.compile(r"^(AssertionError|[\w.]*GradientError|[\w.]*InputChangedError)\b")

CASES = [
    ("hw1", "zeros"), ("hw2", "zeros"), ("hw3", "zeros"), ("hw4", "zeros"),
    ("hw3", "do_nothing"),
    ("hw1", "zero_inputs"), ("hw2", "zero_inputs"), ("hw3", "zero_inputs"), ("hw4", "zero_inputs"),
    ("hw1", "raises"), ("hw2", "raises"), ("hw3", "raises"), ("hw4", "raises"),
    ("hw6", "zeros"), ("hw6", "raises"),
]


@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_degenerate_submission_scores_zero(course, tmp_path, name, kind):
    sub = make_degenerate(course, name, kind, tmp_path / "submission")
    result = grade(course, course.assignment(name), sub, tmp_path / "results.json")
    card = result.scorecard
    total = sum(part.points for part in course.assignment(name).parts.values())
    assert card.max_score == total and len(card.tests) > 50, f"{name}: not everything was graded"
    assert card.score == 0, (
        f"{name} {kind}: a degenerate submission scored {card.score} of {card.max_score}; "
        "these tests passed:\n" + "\n".join(passed_tests(result))
    )
    for test in card.tests:
        message = test.outcome.message.strip()
        if test.part == "quiz":  # the blank answers.yml: each question says it was not answered
            ok = "not answered" in message
        elif kind == "raises":
            ok = "always ValueError" in message
        else:
            ok = bool(VERDICT.match(message))
        assert ok, f"{name} {kind}: {test.outcome.name} failed for another reason:\n{message[:600]}"

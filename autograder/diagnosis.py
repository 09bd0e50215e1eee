"""Diagnosis: what a wrong array's relation to the right one says about the bug.

The catalogued student bugs (solutions/hwN/hidden/bugs/) leave recognisable signatures in the
outputs: a gradient that is exactly the expected one transposed, a factor of N too large, the
opposite sign, the same error in every row (a bias left out), everything shifted by one place,
a batch axis left unsummed. `diagnose(actual, expected)` looks for those signatures and returns
a hint in plain words, which gradcheck.assert_close appends to its failure message.

A hint only describes how the two arrays relate; it never quotes the solution.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

# How close "the same up to this transformation" must be: loose enough for rounding in a
# different summation order, far tighter than any real bug's error.
_RTOL = 1e-6

# How many non-zero expected entries a claim needs before it is made: any two numbers differ
# by "a constant factor", so a claim about a relation is made only when enough independent
# entries share it. An exact whole-number ratio is rarer by chance than any ratio at all.
_MIN_ENTRIES = {"zeros": 2, "sign": 3, "whole_ratio": 3, "ratio": 8, "rows": 6, "constant": 4, "shift": 4}


def _enough(exp: np.ndarray, claim: str) -> bool:
    return int(np.count_nonzero(exp)) >= _MIN_ENTRIES[claim]


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(b), initial=0.0)), float(np.max(np.abs(a), initial=0.0)))
    return bool(np.allclose(a, b, rtol=_RTOL, atol=_RTOL * scale + 1e-300))


def _ratio_words(k: float, exp: np.ndarray) -> str | None:
    """A factor in words: '3 times too large', 'a quarter of', or None when it is 1 or when
    too few entries support the claim."""
    if abs(k - 1.0) < 1e-6 or not _enough(exp, "whole_ratio"):
        return None
    n = round(k)
    if k > 1 and abs(k - n) < 1e-6 * k:
        return (f"exactly {n} times the expected values: a sum where a mean belongs, or a missing "
                f"division (by the batch size or a count of {n}?)")
    inv = 1.0 / k if k else float("inf")
    n = round(inv)
    if 0 < k < 1 and abs(inv - n) < 1e-6 * inv:
        return (f"exactly 1/{n} of the expected values: a mean where a sum belongs, or a division "
                f"too many (by the batch size or a count of {n}?)")
    if not _enough(exp, "ratio"):
        return None
    return f"the expected values times a constant factor of about {k:.4g} (a scale factor is wrong)"


def _shape_hint(act: np.ndarray, exp: np.ndarray) -> str | None:
    if act.ndim == exp.ndim + 1 and act.shape[1:] == exp.shape:
        if _close(act.sum(axis=0), exp):
            return "has an extra first axis; summed over it, it would be right: it is not summed over the batch"
        return "has an extra first axis: it looks like it is not reduced over the batch"
    if act.ndim == exp.ndim and act.ndim >= 2 and act.size == exp.size and act.ndim <= 5:
        for perm in itertools.permutations(range(act.ndim)):
            if perm != tuple(range(act.ndim)) and act.transpose(perm).shape == exp.shape and _close(act.transpose(perm), exp):
                if act.ndim == 2:
                    return "holds the expected values transposed (check which operand needs a transpose)"
                return f"holds the expected values with its axes in another order (axes {perm} would fix it)"
    if act.size == exp.size:
        return "has the right number of entries in the wrong shape: a reshape or transpose is missing or wrong"
    return None


def _shifted(act: np.ndarray, exp: np.ndarray) -> str | None:
    for axis in range(act.ndim):
        n = act.shape[axis]
        if n < 3:
            continue
        for step, words in ((1, "later"), (-1, "earlier")):
            a = np.take(act, range(max(step, 0), n + min(step, 0)), axis=axis)
            e = np.take(exp, range(max(-step, 0), n + min(-step, 0)), axis=axis)
            if _close(a, e) and not _close(act, exp):
                return f"is the expected array shifted by one position along axis {axis} (an off-by-one index?)"
    return None


def _localised(act: np.ndarray, exp: np.ndarray) -> str | None:
    """When the wrong entries sit at a few positions of one axis (the first time step, the border)."""
    scale = max(float(np.max(np.abs(exp), initial=0.0)), 1e-300)
    wrong = np.abs(act - exp) > 1e-6 * scale + _RTOL * np.abs(exp)
    if not wrong.any() or wrong.all():
        return None
    for axis in range(act.ndim):
        n = act.shape[axis]
        if n < 3:
            continue
        other = tuple(i for i in range(act.ndim) if i != axis)
        rows = np.flatnonzero(wrong.any(axis=other))
        if len(rows) <= max(1, n // 3):
            where = ", ".join(str(int(r)) for r in rows)
            edge = all(r in (0, n - 1) for r in rows)
            extra = " (the edges: padding, the first or last step?)" if edge else ""
            return f"is right except at index {where} along axis {axis}{extra}"
    return None


def diagnose(actual: Any, expected: Any) -> str | None:
    """A plain-words hint about how `actual` relates to `expected`, or None when none fits.

    Inputs: two numeric arrays (or scalars) of any shapes. Returns: a phrase that follows the
    array's name, e.g. "is all zeros", "has the opposite sign of the expected values".
    """
    act = np.asarray(actual, dtype=np.float64)
    exp = np.asarray(expected, dtype=np.float64)
    if not (np.isfinite(act).all() and np.isfinite(exp).all()):
        return None
    if act.shape != exp.shape:
        return _shape_hint(act, exp)
    if exp.size == 0 or not np.any(exp) or _close(act, exp):
        return None
    if not np.any(act) and _enough(exp, "zeros"):
        return "is all zeros: nothing seems to be written into it, or no gradient reaches it"
    if _close(act, -exp) and _enough(exp, "sign"):
        return "has the opposite sign of the expected values everywhere (a sign flipped?)"
    if act.ndim == 2 and act.shape[0] == act.shape[1] and act.shape[0] > 1 and _close(act, exp.T):
        return "holds the expected values transposed (check which operand needs a transpose)"
    k = float(np.vdot(act, exp) / np.vdot(exp, exp))
    if _close(act, k * exp):
        words = _ratio_words(k, exp)
        if words:
            return "is " + words
    diff = act - exp
    if act.ndim >= 1 and act.shape[0] > 1 and _enough(exp, "constant") \
            and _close(diff, np.broadcast_to(diff[:1], diff.shape)):
        if _close(diff, np.full_like(diff, diff.flat[0])):
            return "differs from the expected values by the same constant everywhere (a term added or left out?)"
        if not (act.shape[0] >= 3 and _enough(exp, "rows")):
            return None
        return ("differs from the expected values by the same amount in every row: a term shared "
                "by all examples (such as a bias) is missing or counted twice")
    for axes, words in (((-1,), "the last axis"), ((-2, -1), "the last two axes")):
        if act.ndim >= len(axes) and _close(act, np.flip(exp, axis=axes)):
            return f"is the expected array reversed along {words} (a flipped kernel or a reversed loop?)"
    hint = _shifted(act, exp) if _enough(exp, "shift") else None
    if hint:
        return hint
    return _localised(act, exp)

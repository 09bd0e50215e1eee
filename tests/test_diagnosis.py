"""Diagnosis hints: each catalogued signature is recognised, and right answers get no hint."""
import numpy as np
import pytest

from autograder.diagnosis import diagnose
from autograder.gradcheck import GradientError, assert_close


@pytest.fixture
def expected():
    return np.random.default_rng(0).standard_normal((5, 4))


def test_transposed_shape(expected):
    assert "transposed" in diagnose(expected.T, expected)


def test_transposed_square():
    e = np.random.default_rng(1).standard_normal((4, 4))
    assert "transposed" in diagnose(e.T, e)


def test_axes_in_another_order():
    e = np.random.default_rng(2).standard_normal((2, 3, 4))
    assert "axes in another order" in diagnose(e.transpose(1, 0, 2), e)


def test_not_summed_over_batch():
    per_example = np.random.default_rng(3).standard_normal((6, 4))
    hint = diagnose(per_example, per_example.sum(axis=0))
    assert "not summed over the batch" in hint


def test_extra_axis_not_a_sum(expected):
    assert "extra first axis" in diagnose(np.stack([expected, 2 * expected]), expected)


def test_factor_n_too_large(expected):
    hint = diagnose(5 * expected, expected)
    assert "exactly 5 times" in hint and "batch size" in hint


def test_factor_n_too_small(expected):
    assert "exactly 1/8" in diagnose(expected / 8, expected)


def test_other_factor(expected):
    assert "constant factor of about 2.5" in diagnose(2.5 * expected, expected)


def test_sign_flipped(expected):
    assert "opposite sign" in diagnose(-expected, expected)


def test_zeros(expected):
    assert "all zeros" in diagnose(np.zeros_like(expected), expected)


def test_missing_bias(expected):
    bias = np.random.default_rng(4).standard_normal(4)
    assert "every row" in diagnose(expected - bias, expected)


def test_constant_offset(expected):
    assert "same constant everywhere" in diagnose(expected + 0.5, expected)


def test_shifted_by_one():
    e = np.random.default_rng(5).standard_normal((3, 7))
    a = np.roll(e, 1, axis=1)
    a[:, 0] = 9.0
    assert "shifted by one position along axis 1" in diagnose(a, e)


def test_reversed_kernel():
    e = np.random.default_rng(6).standard_normal((2, 3, 3))
    assert "reversed along the last two axes" in diagnose(e[:, ::-1, ::-1], e)


def test_wrong_only_at_the_edge():
    e = np.random.default_rng(7).standard_normal((2, 6, 6))
    a = e.copy()
    a[1, 0] += 1.0  # one sequence's first step only: not the same error in every row
    assert "right except at index 0 along axis 1" in diagnose(a, e)


@pytest.mark.parametrize("make", [lambda e: e, lambda e: e * (1 + 1e-12),
                                  lambda e: np.random.default_rng(8).standard_normal(e.shape)])
def test_no_hint_for_right_or_unrelated_answers(expected, make):
    assert diagnose(make(expected), expected) is None


def test_no_hint_for_non_finite(expected):
    a = expected.copy()
    a[0, 0] = np.nan
    assert diagnose(a, expected) is None


def test_assert_close_appends_the_hint(expected):
    with pytest.raises(GradientError) as info:
        assert_close(expected.sum(axis=0) * 5, expected.sum(axis=0), name="db")
    assert "worst relative error" in str(info.value)
    assert "\nhint: db is exactly 5 times" in str(info.value)


def test_assert_close_shape_message_gets_the_hint(expected):
    with pytest.raises(GradientError, match=r"(?s)expected shape \(5, 4\), got shape \(4, 5\).*hint: dW holds"):
        assert_close(expected.T, expected, name="dW")


def test_assert_close_without_a_signature_has_no_hint(expected):
    other = np.random.default_rng(9).standard_normal(expected.shape)
    with pytest.raises(GradientError) as info:
        assert_close(other, expected, name="out")
    assert "hint" not in str(info.value)

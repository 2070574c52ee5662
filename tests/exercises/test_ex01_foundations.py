"""Exercise 01 (activations and losses with their gradients) through the real grader: see exercise_helpers."""

import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    assert_full_marks,
    assert_full_marks_on_fresh_inputs,
    assert_not_fooled,
    assert_stub_scores_zero,
)

NAME = "ex01_foundations"

# (code appended to the reference solution, the check that must now fail)
FOOLS = [
    (ALWAYS_EQUAL + "def mse(y_pred, y_true):\n    return AlwaysEqual()\n",
         "mse_and_gradient"),
    ("def relu(z):\n    return np.maximum(z, 0.0)[:1]\n", "relu_values"),
    ("def mse_grad(y_pred, y_true):\n    return (2 * (y_pred - y_true) / y_pred.size).sum(0, keepdims=True)\n",
         "mse_and_gradient"),
    ("def relu(z):\n    return z\n", "relu_values"),
    ("def softmax(z):\n    return z\n", "softmax_rows"),
    ("def sigmoid_grad(z):\n    return z\n", "activation_derivatives"),
]


def test_reference_solution_scores_full_marks(grader):
    assert_full_marks(grader, NAME)


def test_reference_scores_full_marks_on_fresh_inputs(fresh_graders):
    """Instructor grading: fresh inputs of several run seeds, the reference still 100 %."""
    assert_full_marks_on_fresh_inputs(fresh_graders, NAME)


def test_untouched_stub_scores_zero(grader):
    assert_stub_scores_zero(grader, NAME)


@pytest.mark.parametrize(("patch", "check_name"), FOOLS)
def test_check_is_not_fooled(grader, patch, check_name):
    assert_not_fooled(grader, NAME, patch, check_name)

"""Exercise 03 (gradient checking and backprop of a 2-layer network by hand) through the real grader: see exercise_helpers."""

import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    assert_full_marks,
    assert_full_marks_on_fresh_inputs,
    assert_not_fooled,
    assert_stub_scores_zero,
)

NAME = "ex03_backpropagation"

# (code appended to the reference solution, the check that must now fail)
FOOLS = [
    (ALWAYS_EQUAL + "def relative_error(a, b):\n    return AlwaysEqual()\n",
         "relative_error_values"),
    ("def dense_backward(x, W, grad_z):\n"
         "    return grad_z @ W.T, x.T @ grad_z, grad_z.sum(axis=0, keepdims=True)\n",
         "dense_layer_backward"),
    ("def numerical_gradient(f, x, eps=1e-6):\n    return x\n",
         "numerical_gradient_matches"),
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

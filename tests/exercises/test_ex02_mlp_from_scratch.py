"""Exercise 02 (MLP forward, backward, SGD step and a training loop) through the real grader: see exercise_helpers."""

import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    assert_full_marks,
    assert_not_fooled,
    assert_stub_scores_zero,
)

NAME = "ex02_mlp_from_scratch"

# (code appended to the reference solution, the check that must now fail)
FOOLS = [
    (ALWAYS_EQUAL + "def forward(x, params):\n    return AlwaysEqual(), {}\n",
         "forward_probabilities"),
    ("_backward = backward\n\n"
         "def backward(params, cache, y):\n"
         "    grads = _backward(params, cache, y)\n"
         "    grads['b1'] = grads['b1'][None, :]\n"
         "    return grads\n",
         "backward_gradients"),
    ("def sgd_step(params, grads, lr):\n    return params\n",
         "sgd_update"),
    ("def train(x, y, n_hidden=64, epochs=10, lr=0.2, batch_size=32, seed=0):\n"
         "    return init_params(x.shape[1], n_hidden, 10, seed), [2.3, 2.2]\n",
         "training_reaches_accuracy"),
]


def test_reference_solution_scores_full_marks(grader):
    assert_full_marks(grader, NAME)


def test_untouched_stub_scores_zero(grader):
    assert_stub_scores_zero(grader, NAME)


@pytest.mark.parametrize(("patch", "check_name"), FOOLS)
def test_check_is_not_fooled(grader, patch, check_name):
    assert_not_fooled(grader, NAME, patch, check_name)

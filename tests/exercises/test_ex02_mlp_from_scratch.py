"""Exercise 02 (MLP forward, backward, SGD step and a training loop) through the real grader: see exercise_helpers."""

import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    assert_full_marks,
    assert_full_marks_on_fresh_inputs,
    assert_judges_need_work,
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
] + [(cheat, "training_reaches_accuracy") for cheat in (
    # No training: the initial parameters with a made-up falling loss history.
    "def train(x, y, n_hidden=64, epochs=10, lr=0.2, batch_size=32, seed=0):\n"
    "    return init_params(x.shape[1], n_hidden, 10, seed), [2.3 - 0.1 * i for i in range(10)]\n",
    # No training, but predict() looks the true labels up in the sample files the child can
    # read: this passed the earlier judge, which scored the returned predictions.
    "from course_lib.data import load as _load\n"
    "_LABELS = {}\n"
    "for _split in ('train', 'test'):\n"
    "    _x, _y = _load('mnist', _split, sample=True)\n"
    "    _LABELS.update({image.tobytes(): label for image, label in zip(_x.reshape(len(_x), -1), _y)})\n"
    "def train(x, y, n_hidden=64, epochs=10, lr=0.2, batch_size=32, seed=0):\n"
    "    return init_params(x.shape[1], n_hidden, 10, seed), [2.3 - 0.1 * i for i in range(10)]\n"
    "def predict(x, params):\n"
    "    keys = np.rint(x * 255).astype(np.uint8)\n"
    "    return np.array([_LABELS.get(row.tobytes(), 0) for row in keys])\n",
    # All-zero parameters: the output of a model that learned nothing.
    "def train(x, y, n_hidden=64, epochs=10, lr=0.2, batch_size=32, seed=0):\n"
    "    zeros = {k: np.zeros_like(v) for k, v in init_params(x.shape[1], n_hidden, 10).items()}\n"
    "    return zeros, [2.3 - 0.1 * i for i in range(10)]\n",
    # Parameters of shapes that would broadcast: b1 (1, 64) instead of (64,).
    "_train = train\n"
    "def train(*args, **kwargs):\n"
    "    params, history = _train(*args, **kwargs)\n"
    "    return dict(params, b1=params['b1'][None, :]), history\n",
    # Trained parameters, but no working predict().
    "def predict(x, params):\n"
    "    return np.zeros(len(x), dtype=np.int64)\n",
    # Parameters that are no data at all.
    ALWAYS_EQUAL + "_train = train\n"
    "def train(*args, **kwargs):\n"
    "    params, history = _train(*args, **kwargs)\n"
    "    return {k: AlwaysEqual() for k in params}, history\n",
)]


def test_reference_solution_scores_full_marks(grader):
    assert_full_marks(grader, NAME)


def test_reference_scores_full_marks_on_fresh_inputs(fresh_graders):
    """Instructor grading: fresh inputs of several run seeds, the reference still 100 %."""
    assert_full_marks_on_fresh_inputs(fresh_graders, NAME)


def test_untouched_stub_scores_zero(grader):
    assert_stub_scores_zero(grader, NAME)


def test_training_check_judges_the_parameters_not_the_data(grader):
    assert_judges_need_work(grader, NAME)


@pytest.mark.parametrize(("patch", "check_name"), FOOLS)
def test_check_is_not_fooled(grader, patch, check_name):
    assert_not_fooled(grader, NAME, patch, check_name)

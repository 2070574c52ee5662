"""Exercise 06 (inverted dropout, SGD with weight decay, FGSM, PGD) through the real grader: see
exercise_helpers."""

import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    assert_full_marks,
    assert_full_marks_on_fresh_inputs,
    assert_judges_need_work,
    assert_not_fooled,
    assert_stub_scores_zero,
)

NAME = "ex06_generalization"

PGD_WITHOUT = """
def pgd(x, y, loss_and_grad, eps, step_size, steps, rng=None):
    x_adv = x.copy() if rng is None else x + rng.uniform(-eps, eps, x.shape)
    for _ in range(steps):
        _, grad = loss_and_grad(x_adv, y)
        x_adv = {update}
    return x_adv
"""

# (code appended to the reference solution, the check that must now fail)
FOOLS = [
    (ALWAYS_EQUAL + "def fgsm(x, y, loss_and_grad, eps):\n    return AlwaysEqual()\n",
     "fgsm_values"),
    # shapes that broadcast
    ("_fgsm = fgsm\n\ndef fgsm(x, y, loss_and_grad, eps):\n"
     "    return _fgsm(x, y, loss_and_grad, eps)[:1]\n", "fgsm_values"),
    ("_drop = dropout_forward\n\ndef dropout_forward(x, rate, rng, training=True):\n"
     "    out, mask = _drop(x, rate, rng, training)\n    return out, mask[:1]\n",
     "dropout_training"),
    ("def dropout_backward(grad_out, mask):\n    return (grad_out * mask).sum(0, keepdims=True)\n",
     "dropout_gradient"),
    # the input returned unchanged
    ("def fgsm(x, y, loss_and_grad, eps):\n    return x\n", "fgsm_values"),
    ("def pgd(x, y, loss_and_grad, eps, step_size, steps, rng=None):\n    return x\n",
     "pgd_without_random_start"),
    ("def pgd(x, y, loss_and_grad, eps, step_size, steps, rng=None):\n    return x\n",
     "pgd_random_start_constraints"),
    ("def dropout_forward(x, rate, rng, training=True):\n    return x, np.ones_like(x)\n",
     "dropout_training"),
    ("def sgd_weight_decay_step(params, grads, lr, weight_decay):\n    return params\n",
     "sgd_with_weight_decay"),
    # dropout without the 1 / (1 - rate) scaling (not inverted), and dropout at inference
    ("def dropout_forward(x, rate, rng, training=True):\n"
     "    mask = (rng.random(x.shape) >= rate).astype(float)\n    return x * mask, mask\n",
     "dropout_training"),
    ("def dropout_forward(x, rate, rng, training=True):\n"
     "    mask = (rng.random(x.shape) >= rate) / (1 - rate)\n    return x * mask, mask\n",
     "dropout_inference"),
    # weight decay forgotten, halved, or applied in place
    ("def sgd_weight_decay_step(params, grads, lr, weight_decay):\n"
     "    return {k: p - lr * grads[k] for k, p in params.items()}\n", "sgd_with_weight_decay"),
    ("def sgd_weight_decay_step(params, grads, lr, weight_decay):\n"
     "    return {k: p - lr * grads[k] - lr * weight_decay / 2 * p for k, p in params.items()}\n",
     "sgd_with_weight_decay"),
    ("def sgd_weight_decay_step(params, grads, lr, weight_decay):\n"
     "    for k, p in params.items():\n        p -= lr * grads[k] + lr * weight_decay * p\n"
     "    return params\n", "sgd_with_weight_decay"),
    # FGSM with the raw gradient instead of its sign, or without the clip to [0, 1]
    ("def fgsm(x, y, loss_and_grad, eps):\n"
     "    return np.clip(x + eps * loss_and_grad(x, y)[1], 0, 1)\n", "fgsm_values"),
    ("def fgsm(x, y, loss_and_grad, eps):\n    return x + eps * np.sign(loss_and_grad(x, y)[1])\n",
     "fgsm_values"),
    # PGD without the projection onto the eps-ball, without the clip to [0, 1], without steps
    (PGD_WITHOUT.format(update="np.clip(x_adv + step_size * np.sign(grad), 0, 1)"),
     "pgd_random_start_constraints"),
    (PGD_WITHOUT.format(update="np.clip(x_adv + step_size * np.sign(grad), x - eps, x + eps)"),
     "pgd_random_start_constraints"),
    (PGD_WITHOUT.format(update="np.clip(x_adv + step_size * np.sign(grad), 0, 1)"),
     "pgd_without_random_start"),
    # PGD that ignores rng (no random start) or is only one FGSM step
    ("_pgd = pgd\n\ndef pgd(x, y, loss_and_grad, eps, step_size, steps, rng=None):\n"
     "    return _pgd(x, y, loss_and_grad, eps, step_size, steps, None)\n",
     "pgd_random_start_constraints"),
    ("def pgd(x, y, loss_and_grad, eps, step_size, steps, rng=None):\n"
     "    return fgsm(x, y, loss_and_grad, eps)\n", "pgd_without_random_start"),
    # PGD that only takes the random start (inside the ball and [0, 1], but no attack)
    ("_pgd = pgd\n\ndef pgd(x, y, loss_and_grad, eps, step_size, steps, rng=None):\n"
     "    return _pgd(x, y, loss_and_grad, eps, step_size, 0, rng)\n",
     "pgd_random_start_constraints"),
    # PGD whose random start is not projected to [0, 1] (pixels below 0 when steps=0)
    ("def pgd(x, y, loss_and_grad, eps, step_size, steps, rng=None):\n"
     "    x_adv = x.copy() if rng is None else x + rng.uniform(-eps, eps, x.shape)\n"
     "    for _ in range(steps):\n"
     "        x_adv = x_adv + step_size * np.sign(loss_and_grad(x_adv, y)[1])\n"
     "        x_adv = np.clip(np.clip(x_adv, x - eps, x + eps), 0, 1)\n"
     "    return x_adv\n", "pgd_random_start_constraints"),
]


def test_reference_solution_scores_full_marks(grader):
    assert_full_marks(grader, NAME)


def test_reference_scores_full_marks_on_fresh_inputs(fresh_graders):
    """Instructor grading: fresh inputs of several run seeds, the reference still 100 %."""
    assert_full_marks_on_fresh_inputs(fresh_graders, NAME)


def test_untouched_stub_scores_zero(grader):
    assert_stub_scores_zero(grader, NAME)


def test_judges_need_work(grader):
    assert_judges_need_work(grader, NAME)


@pytest.mark.parametrize(("patch", "check_name"), FOOLS)
def test_check_is_not_fooled(grader, patch, check_name):
    assert_not_fooled(grader, NAME, patch, check_name)

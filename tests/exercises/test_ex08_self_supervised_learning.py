"""Exercise 08 (rotation batch generator, linear probe on frozen features) through the real grader:
see exercise_helpers. The probe's training check is judged in the grader on held-out features the
student's code never sees; the no-training cheats below must fail it."""

import numpy as np
import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    assert_full_marks,
    assert_full_marks_on_fresh_inputs,
    assert_judges_need_work,
    assert_not_fooled,
    assert_stub_scores_zero,
)

from course_lib.grading.checks import ex08_self_supervised_learning as checks

NAME = "ex08_self_supervised_learning"

# (code appended to the reference solution, the check that must now fail)
FOOLS = [
    (ALWAYS_EQUAL + "def rotate_images(images, k):\n    return AlwaysEqual()\n",
         "rotate_images_values"),
    ("def rotate_images(images, k):\n    return images\n",                     # input unchanged
         "rotate_images_values"),
    ("def rotate_images(images, k):\n    return np.rot90(images, -k, axes=(1, 2)).copy()\n",
         "rotate_images_values"),                                               # clockwise
    ("def rotate_images(images, k):\n    return np.rot90(images, k, axes=(1, 2)).astype(float)\n",
         "rotate_images_values"),                                               # dtype changed
    (ALWAYS_EQUAL + "def rotation_batch(images):\n    return AlwaysEqual(), AlwaysEqual()\n",
         "rotation_batch_pairs"),
    ("_batch = rotation_batch\n\n"                                              # labels (4n, 1):
     "def rotation_batch(images):\n"                                            # they broadcast
     "    x, y = _batch(images)\n    return x, y[:, None]\n",
         "rotation_batch_pairs"),
    ("def rotation_batch(images):\n"                                            # input unchanged
     "    return np.concatenate([images] * 4), np.repeat(np.arange(4), len(images))\n",
         "rotation_batch_pairs"),
    ("_batch = rotation_batch\n\n"
     "def rotation_batch(images):\n"                                            # float32 back
     "    x, y = _batch(images)\n    return x.astype(np.float32), y\n",
         "rotation_batch_pairs"),
    ("def rotation_batch(images):\n"                                            # 90 twice, no 270
     "    ks = [0, 1, 2, 1]\n"
     "    x = np.concatenate([rotate_images(images, k) for k in ks])\n"
     "    return x, np.repeat(np.arange(4), len(images))\n",
         "rotation_batch_pairs"),
    ("_batch = rotation_batch\n\n"                                              # labels shuffled
     "def rotation_batch(images):\n"                                            # apart from images
     "    x, y = _batch(images)\n    return x, np.random.default_rng(0).permutation(y)\n",
         "rotation_batch_pairs"),
    ("def rotation_batch(images):\n"                                            # crops instead of
     "    s = min(images.shape[1:3])\n"                                         # refusing
     "    images = images[:, :s, :s]\n"
     "    x = np.concatenate([rotate_images(images, k) for k in range(4)])\n"
     "    return x, np.repeat(np.arange(4), len(images))\n",
         "rotation_batch_pairs"),
    ("_grads = probe_loss_and_grads\n\n"                                        # no 1/n
     "def probe_loss_and_grads(W, b, features, labels, l2):\n"
     "    loss, dW, db = _grads(W, b, features, labels, l2)\n"
     "    return loss, dW * len(features), db * len(features)\n",
         "probe_loss_and_gradients"),
    ("_grads = probe_loss_and_grads\n\n"                                        # no L2 term
     "def probe_loss_and_grads(W, b, features, labels, l2):\n"
     "    return _grads(W, b, features, labels, 0.0)\n",
         "probe_loss_and_gradients"),
    ("def probe_loss_and_grads(W, b, features, labels, l2):\n"                  # unstable softmax
     "    n = len(features)\n"
     "    with np.errstate(all='ignore'):\n"
     "        p = np.exp(features @ W + b)\n"
     "        p = p / p.sum(axis=1, keepdims=True)\n"
     "        loss = -np.log(p[np.arange(n), labels]).mean() + 0.5 * l2 * np.sum(W * W)\n"
     "        g = p.copy()\n"
     "        g[np.arange(n), labels] -= 1\n"
     "        g /= n\n"
     "    return float(loss), features.T @ g + l2 * W, g.sum(axis=0)\n",
         "probe_loss_and_gradients"),
    ("def train_linear_probe(features, labels, num_classes, l2=1e-3, lr=0.5, epochs=200):\n"
     "    return np.zeros((features.shape[1], num_classes)), np.zeros(num_classes)\n",
         "linear_probe_generalises"),                                           # no training
    ("def train_linear_probe(features, labels, num_classes, l2=1e-3, lr=0.5, epochs=200):\n"
     "    rng = np.random.default_rng(0)\n"                                     # random weights
     "    return rng.standard_normal((features.shape[1], num_classes)), np.zeros(num_classes)\n",
         "linear_probe_generalises"),
    ("_train = train_linear_probe\n\n"                                          # W (d, 1): broadcasts
     "def train_linear_probe(features, labels, num_classes, l2=1e-3, lr=0.5, epochs=200):\n"
     "    W, b = _train(features, labels, num_classes, l2, lr, epochs)\n"
     "    return W[:, :1], b\n",
         "linear_probe_generalises"),
    ("def probe_predict(features, W, b):\n"                                     # floats, not ids
     "    return np.argmax(features @ W + b, axis=1).astype(float)\n",
         "probe_predict_classes"),
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


def test_judges_need_work(grader):
    assert_judges_need_work(grader, NAME)


def test_probe_judge_draws_fresh_held_out_features(monkeypatch):
    """The judge draws its held-out features with heldout.fresh_rng (OS entropy, in the grader),
    not with the seeded generator the child got, and scores the parameters itself."""
    calls = []
    real = checks.heldout.fresh_rng

    def recording():
        calls.append(1)
        return real()

    monkeypatch.setattr(checks.heldout, "fresh_rng", recording)
    features, labels = checks._probe_features(np.random.default_rng(0), checks.TRAIN_PER_CLASS)
    means = np.stack([features[labels == c].mean(0) for c in range(checks.NUM_CLASSES)])
    nearest_mean = {"W": means.T, "b": -0.5 * (means**2).sum(1)}   # fitted to the child's data
    zeros = {"W": np.zeros((checks.FEATURE_DIM, 10)), "b": np.zeros(10)}
    passed, reason = checks._probe_judge(nearest_mean, nearest_mean)
    assert passed and "held-out features your code never saw" in reason
    assert checks._probe_judge(zeros, nearest_mean)[0] is False
    assert len(calls) == 2
    a, _ = checks._probe_features(real(), 3)
    b, _ = checks._probe_features(real(), 3)
    assert not np.array_equal(a, b)

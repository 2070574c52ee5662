"""Exercise 07 (freezing by name and depth, L2-SP, a linear head on frozen features) through the
real grader: see exercise_helpers."""

import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    assert_full_marks,
    assert_judges_need_work,
    assert_not_fooled,
    assert_stub_scores_zero,
)

NAME = "ex07_transfer_learning"

# (code appended to the reference solution, the check that must now fail)
FOOLS = [
    # Counting every weight, frozen or not.
    ("def trainable_count(model):\n"
     "    return int(sum(int(np.prod(w.shape)) for w in model.weights))\n",
     "trainable_count_of_a_model"),
    (ALWAYS_EQUAL + "def trainable_count(model):\n    return AlwaysEqual()\n",
     "trainable_count_of_a_model"),
    # Plain prefix matching: "block1" also chooses block10_conv1 ... block12_conv1.
    ("def unfreeze_by_name(model, names):\n"
     "    return _set(model, [l for l in model.layers if any(l.name.startswith(n) for n in names)])\n",
     "unfreeze_by_name_chooses_blocks"),
    # Batch norm unfrozen with its block (the silent bug of the chapter).
    ("def unfreeze_by_name(model, names):\n"
     "    model.trainable = True\n"
     "    for layer in model.layers:\n"
     "        if layer.weights:\n"
     "            layer.trainable = any(layer.name.startswith(n + '_') or layer.name == n for n in names)\n"
     "    return trainable_count(model)\n",
     "unfreeze_by_name_chooses_blocks"),
    # Forgetting model.trainable = True: a frozen model stays frozen.
    ("def unfreeze_by_name(model, names):\n"
     "    for layer in model.layers:\n"
     "        if layer.weights:\n"
     "            layer.trainable = (any(layer.name == n or layer.name.startswith(n + '_') for n in names)\n"
     "                               and not _is_batchnorm(layer))\n"
     "    return trainable_count(model)\n",
     "unfreeze_by_name_chooses_blocks"),
    # Counting all layers for the depth, not only those with weights.
    ("def unfreeze_top(model, n):\n"
     "    return _set(model, model.layers[len(model.layers) - n:] if n > 0 else [])\n",
     "unfreeze_top_counts_layers_with_weights"),
    # The count returned, but nothing (un)frozen.
    ("def unfreeze_top(model, n):\n    return trainable_count(model)\n",
     "unfreeze_top_counts_layers_with_weights"),
    # The document's loss: no 1/2, or the distance to zero instead of to the source.
    ("def l2sp_penalty(weights, source, alpha, head, beta):\n"
     "    return alpha * sum(float(np.sum((w - s) ** 2)) for w, s in zip(weights, source))"
     " + beta * sum(float(np.sum(h ** 2)) for h in head)\n",
     "l2sp_penalty_value"),
    ("def l2sp_penalty(weights, source, alpha, head, beta):\n"
     "    return 0.5 * alpha * sum(float(np.sum(w ** 2)) for w in weights)"
     " + 0.5 * beta * sum(float(np.sum(h ** 2)) for h in head)\n",
     "l2sp_penalty_value"),
    # Returning the input unchanged.
    ("def l2sp_gradient(weights, source, alpha, head, beta):\n    return weights, head\n",
     "l2sp_gradient_arrays"),
    # Shapes that broadcast: every gradient with an extra leading axis.
    ("_gradient = l2sp_gradient\n"
     "def l2sp_gradient(*args):\n"
     "    near, far = _gradient(*args)\n"
     "    return [g[None] for g in near], [g[None] for g in far]\n",
     "l2sp_gradient_arrays"),
    # Weight decay toward zero (plain L2) instead of toward the source.
    ("def l2sp_gradient(weights, source, alpha, head, beta):\n"
     "    return [alpha * w for w in weights], [beta * h for h in head]\n",
     "l2sp_gradient_arrays"),
    # No standardisation folded in.
    ("_train_head = train_head\n"
     "def train_head(features, labels, num_classes, epochs=200, lr=0.5, l2=1e-3):\n"
     "    mean, sd = features.mean(axis=0), features.std(axis=0) + 1e-8\n"
     "    W, b = _train_head(features, labels, num_classes, epochs, lr, l2)\n"
     "    return W * sd[:, None], b\n",
     "train_head_matches_the_recipe"),
] + [(cheat, "head_reaches_accuracy") for cheat in (
    # No training: the initial zeros.
    "def train_head(features, labels, num_classes, epochs=200, lr=0.5, l2=1e-3):\n"
    "    return np.zeros((features.shape[1], num_classes)), np.zeros(num_classes)\n",
    # A random head.
    "def train_head(features, labels, num_classes, epochs=200, lr=0.5, l2=1e-3):\n"
    "    rng = np.random.default_rng(0)\n"
    "    return rng.standard_normal((features.shape[1], num_classes)), rng.standard_normal(num_classes)\n",
    # Training that ignores the labels (fitted to shuffled ones).
    "_train_head = train_head\n"
    "def train_head(features, labels, num_classes, epochs=200, lr=0.5, l2=1e-3):\n"
    "    shuffled = np.random.default_rng(0).permutation(labels)\n"
    "    return _train_head(features, shuffled, num_classes, epochs, lr, l2)\n",
    # Shapes that would broadcast: b as (1, classes).
    "_train_head = train_head\n"
    "def train_head(*args, **kwargs):\n"
    "    W, b = _train_head(*args, **kwargs)\n"
    "    return W, b[None, :]\n",
    # A trained head, but predict_head ignores it.
    "def predict_head(features, W, b):\n    return np.zeros(len(features), dtype=np.int64)\n",
    # Parameters that are no data at all.
    ALWAYS_EQUAL + "def train_head(*args, **kwargs):\n    return AlwaysEqual(), AlwaysEqual()\n",
)]


def test_reference_solution_scores_full_marks(grader):
    assert_full_marks(grader, NAME)


def test_untouched_stub_scores_zero(grader):
    assert_stub_scores_zero(grader, NAME)


def test_head_check_judges_the_parameters_not_the_data(grader):
    assert_judges_need_work(grader, NAME)


@pytest.mark.parametrize(("patch", "check_name"), FOOLS)
def test_check_is_not_fooled(grader, patch, check_name):
    assert_not_fooled(grader, NAME, patch, check_name)

"""Exercise 07 (freezing by name and depth, L2-SP, a linear head on frozen features) through the
real grader: see exercise_helpers."""

import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    ROOT,
    assert_full_marks,
    assert_full_marks_on_fresh_inputs,
    assert_judges_need_work,
    assert_not_fooled,
    assert_stub_scores_zero,
)

NAME = "ex07_transfer_learning"

# (code appended to the reference solution, the check that must now fail)
FOOLS = [
    # Counting every weight as trainable.
    ("def parameter_counts(model):\n    return _size(model.weights), 0\n",
     "parameter_counts_of_a_model"),
    # Non-trainable as the size of every weight (trainable ones counted twice).
    ("def parameter_counts(model):\n"
     "    return _size(model.trainable_weights), _size(model.weights)\n",
     "parameter_counts_of_a_model"),
    # Only the trainable count (a number where a pair is asked for).
    ("def parameter_counts(model):\n    return _size(model.trainable_weights)\n",
     "parameter_counts_of_a_model"),
    (ALWAYS_EQUAL + "def parameter_counts(model):\n    return AlwaysEqual(), AlwaysEqual()\n",
     "parameter_counts_of_a_model"),
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
     "    return parameter_counts(model)\n",
     "unfreeze_by_name_chooses_blocks"),
    # Forgetting model.trainable = True: a frozen model stays frozen.
    ("def unfreeze_by_name(model, names):\n"
     "    for layer in model.layers:\n"
     "        if layer.weights:\n"
     "            layer.trainable = (any(layer.name == n or layer.name.startswith(n + '_') for n in names)\n"
     "                               and not _is_batchnorm(layer))\n"
     "    return parameter_counts(model)\n",
     "unfreeze_by_name_chooses_blocks"),
    # Counting all layers for the depth, not only those with weights.
    ("def unfreeze_top(model, n):\n"
     "    return _set(model, model.layers[len(model.layers) - n:] if n > 0 else [])\n",
     "unfreeze_top_counts_layers_with_weights"),
    # The counts returned, but nothing (un)frozen.
    ("def unfreeze_top(model, n):\n    return parameter_counts(model)\n",
     "unfreeze_top_counts_layers_with_weights"),
    # The document's loss: no 1/2.
    ("_penalty = l2sp_penalty\n"
     "def l2sp_penalty(weights, source, alpha, beta):\n"
     "    return 2 * _penalty(weights, source, alpha, beta)\n",
     "l2sp_penalty_value"),
    # The distance to zero instead of to the source.
    ("def l2sp_penalty(weights, source, alpha, beta):\n"
     "    return sum(0.5 * (alpha if n in source else beta) * float(np.sum(w ** 2))\n"
     "               for n, w in weights.items())\n",
     "l2sp_penalty_value"),
    # The new head pulled with alpha (one strength for everything).
    ("_penalty = l2sp_penalty\n"
     "def l2sp_penalty(weights, source, alpha, beta):\n"
     "    return _penalty(weights, source, alpha, alpha)\n",
     "l2sp_penalty_value"),
    # No shape check: NumPy broadcasts (4,) against (1, 4) and a wrong number comes out.
    ("def l2sp_penalty(weights, source, alpha, beta):\n"
     "    return sum(0.5 * alpha * float(np.sum((w - source[n]) ** 2)) if n in source\n"
     "               else 0.5 * beta * float(np.sum(w ** 2)) for n, w in weights.items())\n",
     "l2sp_penalty_value"),
    # Walking the source's names (its dropped head has no target parameter).
    ("def l2sp_penalty(weights, source, alpha, beta):\n"
     "    return sum(0.5 * alpha * float(np.sum((weights[n] - s) ** 2)) for n, s in source.items())\n",
     "l2sp_penalty_value"),
    # Returning the input unchanged.
    ("def l2sp_gradient(weights, source, alpha, beta):\n    return weights\n",
     "l2sp_gradient_arrays"),
    # Shapes that broadcast: every gradient with an extra leading axis.
    ("_gradient = l2sp_gradient\n"
     "def l2sp_gradient(*args):\n"
     "    return {n: g[None] for n, g in _gradient(*args).items()}\n",
     "l2sp_gradient_arrays"),
    # Weight decay toward zero (plain L2) instead of toward the source.
    ("def l2sp_gradient(weights, source, alpha, beta):\n"
     "    return {n: (alpha if n in source else beta) * w for n, w in weights.items()}\n",
     "l2sp_gradient_arrays"),
    # A list instead of a dict by name.
    ("_gradient = l2sp_gradient\n"
     "def l2sp_gradient(*args):\n"
     "    return list(_gradient(*args).values())\n",
     "l2sp_gradient_arrays"),
    # A gradient for the source's dropped head too.
    ("_gradient = l2sp_gradient\n"
     "def l2sp_gradient(weights, source, alpha, beta):\n"
     "    extra = {n: np.zeros_like(s) for n, s in source.items() if n not in weights}\n"
     "    return {**_gradient(weights, source, alpha, beta), **extra}\n",
     "l2sp_gradient_arrays"),
    (ALWAYS_EQUAL + "def l2sp_gradient(weights, source, alpha, beta):\n"
     "    return {n: AlwaysEqual() for n in weights}\n",
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


def test_reference_scores_full_marks_on_fresh_inputs(fresh_graders):
    """Instructor grading: fresh inputs of several run seeds, the reference still 100 %."""
    assert_full_marks_on_fresh_inputs(fresh_graders, NAME)


def test_untouched_stub_scores_zero(grader):
    assert_stub_scores_zero(grader, NAME)


def test_head_check_judges_the_parameters_not_the_data(grader):
    assert_judges_need_work(grader, NAME)


@pytest.mark.parametrize(("patch", "check_name"), FOOLS)
def test_check_is_not_fooled(grader, patch, check_name):
    assert_not_fooled(grader, NAME, patch, check_name)


def test_reference_agrees_with_the_library_on_a_keras_backbone():
    """The grader's stand-ins mimic Keras: on a real backbone the reference's counts are
    Keras's own trainable/non-trainable split and agree with finetuning.set_trainable, and its
    L2-SP by name equals the library's list version on the backbone's variables."""
    import importlib.util

    import keras
    import numpy as np

    from course_lib import cifar, finetuning, transfer

    def size(weights):
        return sum(int(np.prod(w.shape)) for w in weights)

    spec = importlib.util.spec_from_file_location("ex07_reference", ROOT / "solutions" / f"{NAME}.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    backbone = cifar.cifar_backbone(widths=(4, 8, 8, 16))
    for which in (["block3", "block4"], 4, 0):
        counts = (reference.unfreeze_top(backbone, which) if isinstance(which, int)
                  else reference.unfreeze_by_name(backbone, which))
        assert counts == (size(backbone.trainable_weights), size(backbone.non_trainable_weights))
        assert counts[0] == finetuning.set_trainable(backbone, which)
    assert reference.parameter_counts(backbone)[0] == finetuning.trainable_parameter_count(backbone) == 0

    rng = np.random.default_rng(0)
    source = {v.path: keras.ops.convert_to_numpy(v).astype(np.float64) for v in backbone.weights}
    moved = {name: w + 0.1 * rng.standard_normal(w.shape) for name, w in source.items()}
    head = {"head/kernel": rng.standard_normal((16, 5)), "head/bias": rng.standard_normal(5)}
    expected = transfer.l2sp_penalty(list(moved.values()), list(source.values()), 0.3,
                                     list(head.values()), 0.02)
    assert reference.l2sp_penalty({**moved, **head}, source, 0.3, 0.02) == pytest.approx(expected)

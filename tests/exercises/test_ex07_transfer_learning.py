"""Exercise 07 (freezing by name and depth, L2-SP, a linear head on frozen features, a Keras
fine-tuning procedure) through the real grader: see exercise_helpers.

The fine-tuning check imports TensorFlow and trains twice: a few seconds in every child. So the
tests of parts 1-3 grade with that check left out (``numpy_grader``), the whole exercise is graded
in the sandbox for the reference and the stub, and the fine-tuning check's own hostile cases and
fresh inputs run in this process (its check function, then its judge, exactly as the grader
calls them, against the sandboxed reference's output)."""

import json
import types

import numpy as np
import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    ROOT,
    RUN_SEEDS,
    assert_full_marks,
    assert_full_marks_on_fresh_inputs,
    assert_judges_need_work,
    assert_not_fooled,
    assert_stub_scores_zero,
    reference_source,
)

from course_lib.grading import engine, heldout, wire
from course_lib.grading.judge import judge_outputs

NAME = "ex07_transfer_learning"
KERAS_CHECK = "fine_tune_procedure"


class NumpyGrader(engine.Grader):
    """The grader without ex07's Keras check (parts 1-3 only: no TensorFlow in the child)."""

    def checks(self, exercise):
        return [item for item in super().checks(exercise) if item.check.name != KERAS_CHECK]


@pytest.fixture(scope="module")
def numpy_grader():
    return NumpyGrader(engine.discover())


@pytest.fixture(scope="module")
def numpy_fresh_graders():
    return {seed: NumpyGrader(engine.discover(), run_seed=seed) for seed in RUN_SEEDS}


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


def test_reference_scores_full_marks_on_fresh_inputs(numpy_fresh_graders):
    """Instructor grading: fresh inputs of several run seeds, the reference still 100 % (parts
    1-3 here; the fine-tuning check in test_fine_tune_reference_passes_on_fresh_inputs)."""
    assert_full_marks_on_fresh_inputs(numpy_fresh_graders, NAME)


def test_untouched_stub_scores_zero(grader):
    assert_stub_scores_zero(grader, NAME)


def test_head_check_judges_the_parameters_not_the_data(grader):
    assert_judges_need_work(grader, NAME)


@pytest.mark.parametrize(("patch", "check_name"), FOOLS)
def test_check_is_not_fooled(numpy_grader, patch, check_name):
    assert_not_fooled(numpy_grader, NAME, patch, check_name)


# ----------------------------------------------------------------- part 4: fine-tuning in Keras


def _module(patch: str = "") -> types.ModuleType:
    module = types.ModuleType(NAME)
    exec(compile(reference_source(NAME) + "\n\n" + patch, f"{NAME}.py", "exec"), module.__dict__)
    return module


def _fine_tune_verdict(grader, module, heldout_seed=None, reference=None) -> tuple[bool, str]:
    """The fine-tuning check as the grader runs it: its function on ``module`` with the check's
    seed (an exception is a failed check with its last line as the reason), the output through
    the wire format, the judge against ``reference`` (default: the sandboxed reference's
    output) with held-out data from ``heldout_seed``."""
    exercise = grader.exercises[NAME]
    (item,) = [c for c in grader.checks(exercise) if c.check.name == KERAS_CHECK]
    try:
        output = item.check.func(module, np.random.default_rng(item.seed))
        output = wire.decode(json.loads(wire.dumps({"value": wire.encode(output)}))["value"])
    except Exception as error:
        return False, f"{type(error).__name__}: {error}"
    if reference is None:
        reference = grader.reference(exercise)[(item.source, item.check.name)]
    with heldout.seeded(heldout_seed):
        return judge_outputs(output, reference, item.check.rtol, item.check.atol,
                             item.check.judge)


def test_fine_tune_reference_passes_on_fresh_inputs():
    """The reference passes the fine-tuning check on the fresh inputs and held-out data of every
    run seed (the judge's accuracy threshold holds with them)."""
    for seed in RUN_SEEDS:
        fresh = engine.Grader(engine.discover(), run_seed=seed)
        exercise = fresh.exercises[NAME]
        (item,) = [c for c in fresh.checks(exercise) if c.check.name == KERAS_CHECK]
        output = item.check.func(_module(), np.random.default_rng(item.seed))
        output = wire.decode(json.loads(wire.dumps({"value": wire.encode(output)}))["value"])
        with heldout.seeded(fresh.heldout_seed(exercise, item)):
            passed, reason = judge_outputs(output, output, item.check.rtol, item.check.atol,
                                           item.check.judge)
        assert passed, (seed, reason)


_SIGNATURE = ("def fine_tune(model, x, y, *, unfreeze, head_epochs, fine_tune_epochs, "
              "head_learning_rate, fine_tune_learning_rate, batch_size=32):\n")
_HEAD_FIRST = ("    import keras\n"
               "    backbone = model.get_layer('backbone')\n"
               "    backbone.trainable = False\n"
               "    _compile(model, head_learning_rate)\n"
               "    model.fit(x, y, epochs=head_epochs, batch_size=batch_size, verbose=0)\n")
_FIT_AGAIN = "    model.fit(x, y, epochs=fine_tune_epochs, batch_size=batch_size, verbose=0)\n"

# (code appended to the reference solution, a piece of the reason the judge must give)
FINE_TUNE_FOOLS = [
    # Silent bug 1: unfrozen, not compiled again (TensorFlow keeps training the head only).
    (_SIGNATURE + _HEAD_FIRST + "    unfreeze_by_name(backbone, unfreeze)\n" + _FIT_AGAIN
     + "    return model\n",
     "did you call compile() again after setting trainable?"),
    # Batch norm unfrozen with its block.
    (_SIGNATURE + _HEAD_FIRST
     + "    backbone.trainable = True\n"
       "    for layer in backbone.layers:\n"
       "        layer.trainable = any(layer.name.startswith(n + '_') for n in unfreeze)\n"
       "    _compile(model, fine_tune_learning_rate)\n" + _FIT_AGAIN + "    return model\n",
     "batch-norm moving statistics changed"),
    # Silent bug 2, the Keras guide's way: a model of its own calling the unfrozen backbone
    # with training=False, trusted to keep batch norm in inference mode.
    (_SIGNATURE + _HEAD_FIRST
     + "    backbone.trainable = True\n"
       "    for layer in backbone.layers:\n"
       "        layer.trainable = any(layer.name.startswith(n + '_') for n in unfreeze)\n"
       "    inputs = keras.Input(model.inputs[0].shape[1:])\n"
       "    guided = keras.Model(inputs, model.get_layer('head')(backbone(inputs, training=False)))\n"
       "    _compile(guided, fine_tune_learning_rate)\n"
       "    guided.fit(x, y, epochs=fine_tune_epochs, batch_size=batch_size, verbose=0)\n"
       "    _compile(model, fine_tune_learning_rate)\n"
       "    return model\n",
     "calling the backbone with training=False is not enough"),
    # Nothing unfrozen: the second phase trains the head again (feature extraction only).
    (_SIGNATURE + _HEAD_FIRST + "    _compile(model, fine_tune_learning_rate)\n" + _FIT_AGAIN
     + "    return model\n",
     "never changed (block"),
    # The whole backbone unfrozen, batch norm included.
    (_SIGNATURE + _HEAD_FIRST + "    backbone.trainable = True\n"
     "    _compile(model, fine_tune_learning_rate)\n" + _FIT_AGAIN + "    return model\n",
     "layers that must stay frozen changed (block1_dense"),
    # Every block unfrozen (batch norm frozen), not only those named.
    ("_fine_tune = fine_tune\n"
     "def fine_tune(model, x, y, *, unfreeze, **settings):\n"
     "    names = [layer.name.split('_')[0] for layer in model.get_layer('backbone').layers]\n"
     "    return _fine_tune(model, x, y, unfreeze=sorted(set(names) - {'backbone'}), **settings)\n",
     "layers that must stay frozen changed (block1_dense"),
    # Fine-tuning at the head's learning rate (compiled again, but not lower).
    ("_fine_tune = fine_tune\n"
     "def fine_tune(model, x, y, *, head_learning_rate, fine_tune_learning_rate, **settings):\n"
     "    return _fine_tune(model, x, y, head_learning_rate=head_learning_rate,\n"
     "                      fine_tune_learning_rate=head_learning_rate, **settings)\n",
     "has the head's learning rate"),
    # The right procedure on shuffled labels: everything in place but nothing learned.
    ("_fine_tune = fine_tune\n"
     "def fine_tune(model, x, y, **settings):\n"
     "    return _fine_tune(model, x, np.random.default_rng(0).permutation(y), **settings)\n",
     "held-out accuracy"),
    # A fresh copy of the model returned (the model given is never trained).
    ("def fine_tune(model, x, y, **settings):\n"
     "    import keras\n"
     "    return keras.models.clone_model(model)\n",
     "must return the model it was given"),
    # The right training, then no model returned; an object equal to everything.
    ("_fine_tune = fine_tune\n"
     "def fine_tune(*args, **kwargs):\n"
     "    _fine_tune(*args, **kwargs)\n",
     "trained in place (it returned an object of type NoneType)"),
    (ALWAYS_EQUAL + "def fine_tune(model, x, y, **settings):\n    return AlwaysEqual()\n",
     "of type AlwaysEqual"),
    # Weights that are no numbers.
    ("def fine_tune(model, x, y, **settings):\n"
     "    head = model.get_layer('head')\n"
     "    head.set_weights([np.full_like(w, np.nan) for w in head.get_weights()])\n"
     "    return model\n",
     "the weights of head contain NaN or inf"),
    # An exception: a failed check with its reason, not a crash.
    ("def fine_tune(model, x, y, **settings):\n    raise RuntimeError('out of ideas')\n",
     "RuntimeError: out of ideas"),
]


@pytest.mark.parametrize(("patch", "expected"), FINE_TUNE_FOOLS)
def test_fine_tune_check_names_the_bug(grader, patch, expected):
    passed, reason = _fine_tune_verdict(grader, _module(patch))
    assert passed is False
    assert expected in reason, reason


def test_fine_tune_check_passes_the_reference_and_judges_what_it_returns(grader):
    """In this process too the reference passes (its reason says what was checked); the judge
    reads the initial weights and the task from the reference's output, not the student's."""
    passed, reason = _fine_tune_verdict(grader, _module())
    assert passed, reason
    assert "frozen layers and batch norm unchanged" in reason
    exercise = grader.exercises[NAME]
    (item,) = [c for c in grader.checks(exercise) if c.check.name == KERAS_CHECK]
    reference = grader.reference(exercise)[(item.source, item.check.name)]
    forged = json.loads(json.dumps(wire.encode(reference)))
    output = wire.decode(forged)
    output["task"]["blocks"][0][0] = output["task"]["blocks"][0][0] + 1.0  # a forged start
    passed, _ = judge_outputs(output, reference, item.check.rtol, item.check.atol,
                              item.check.judge)
    assert passed  # the student's copy of the task is never read


def test_reference_agrees_with_the_library_on_a_keras_backbone():
    """The grader's stand-ins mimic Keras: on a real backbone the reference's counts are
    Keras's own trainable/non-trainable split and agree with finetuning.set_trainable, and its
    L2-SP by name equals the library's list version on the backbone's variables."""
    import importlib.util

    import keras
    import numpy as np

    from course_lib import cifar, finetuning, l2sp

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
    expected = l2sp.l2sp_penalty(list(moved.values()), list(source.values()), 0.3,
                                     list(head.values()), 0.02)
    assert reference.l2sp_penalty({**moved, **head}, source, 0.3, 0.02) == pytest.approx(expected)

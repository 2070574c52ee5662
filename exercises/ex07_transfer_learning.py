"""Exercise 07 (chapter 07): transfer learning: freezing and unfreezing, the L2-SP penalty and
its gradient, a linear head trained on frozen features, and the fine-tuning procedure in Keras.

Part 1 works on any Keras model (try yours on ``course_lib.cifar.cifar_backbone()``) and on
the grader's stand-ins, which have the same attributes: ``model.trainable``, ``model.layers``,
and for each layer ``name``, ``trainable``, ``weights`` and ``trainable_weights`` (arrays or
variables with a ``shape``). A frozen layer's ``trainable_weights`` is empty. Parts 2 and 3 are
plain NumPy. Part 2 takes parameters by name, as a Keras model gives them
(``{v.path: keras.ops.convert_to_numpy(v) for v in model.weights}``): deciding which target
parameters have a source value, and which are new, is part of the exercise. Part 4 is Keras 3
(any backend): fine-tune a small pre-trained classifier the grader builds, judged by what your
procedure leaves in the model's weights and by the accuracy the grader measures itself on
examples your code never sees.

Replace every `raise NotImplementedError` with your code. Check your work from a notebook with
`course_lib.grading.check("ex07")`, or from a terminal with `course grade ex07`. Shapes are given
in each docstring: match them exactly.
"""

import numpy as np

# ----------------------------------------------------------------- part 1: freezing


def parameter_counts(model) -> tuple[int, int]:
    """The two numbers ``model.summary()`` prints: (trainable, non-trainable), where trainable is
    the total size of every array in ``model.trainable_weights`` and non-trainable the size of
    every other array in ``model.weights`` (frozen layers, batch norm's moving statistics)."""
    raise NotImplementedError


def unfreeze_by_name(model, names: list[str]) -> tuple[int, int]:
    """Make trainable exactly the layers (with weights) whose name equals one of ``names`` or
    starts with it followed by "_" ("block4" chooses "block4_conv1", not "block40_conv1");
    freeze every other layer that has weights; batch-norm layers (class name
    "BatchNormalization") always stay frozen. Set ``model.trainable = True`` first (a frozen
    model hides the weights of all its layers). Returns ``parameter_counts(model)``."""
    raise NotImplementedError


def unfreeze_top(model, n: int) -> tuple[int, int]:
    """Make trainable the top ``n`` layers that have weights (the last ``n`` in
    ``model.layers`` with a non-empty ``weights`` list), freeze the others; batch-norm layers
    always stay frozen (they still count among the ``n``). ``model.trainable = True`` first.
    Returns ``parameter_counts(model)``. ``n = 0`` freezes everything."""
    raise NotImplementedError


# ----------------------------------------------------------------- part 2: L2-SP


def l2sp_penalty(weights: dict[str, np.ndarray], source: dict[str, np.ndarray], alpha: float,
                 beta: float) -> float:
    """The L2-SP penalty of the target model's parameters ``weights`` (arrays by name, e.g. Keras
    variable paths) given the source model's ``source`` (arrays by name), a float:

    - a name in both: alpha/2 * ||w - w_source||^2 (shapes must be equal, else ValueError
      naming the parameter: never let NumPy broadcast (4,) against (1, 4));
    - a name only in ``weights`` (the new head): beta/2 * ||w||^2;
    - a name only in ``source`` (the source's own head, dropped): ignored.
    """
    raise NotImplementedError


def l2sp_gradient(weights: dict[str, np.ndarray], source: dict[str, np.ndarray], alpha: float,
                  beta: float) -> dict[str, np.ndarray]:
    """The gradient of l2sp_penalty with respect to each array of ``weights``: a dict with
    exactly the names of ``weights``, each array shaped like its parameter (ValueError on
    mismatched shapes, as l2sp_penalty)."""
    raise NotImplementedError


# ----------------------------------------------------------------- part 3: a linear head


def train_head(features: np.ndarray, labels: np.ndarray, num_classes: int, epochs: int = 200,
               lr: float = 0.5, l2: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """A softmax classifier on frozen features, by full-batch gradient descent.

    features: (n, d) floats; labels: (n,) ints in 0..num_classes-1.
    1. Standardise: mean and sd of each feature column (sd + 1e-8), z = (features - mean) / sd.
    2. W = zeros (d, num_classes), b = zeros (num_classes,). ``epochs`` times:
       G = (softmax(z W + b) - onehot(labels)) / n; W -= lr (z^T G + l2 W); b -= lr sum_i G_i.
    3. Fold the standardisation in: return (W / sd[:, None], b - (mean / sd) @ W), so that
       features @ W' + b' are the logits for raw features.
    Returns (W' (d, num_classes), b' (num_classes,)).
    """
    raise NotImplementedError


def predict_head(features: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Predicted class ids for raw features: argmax of features @ W + b. (n, d) -> (n,) ints."""
    raise NotImplementedError


# ----------------------------------------------------------------- part 4: fine-tuning in Keras


def fine_tune(model, x: np.ndarray, y: np.ndarray, *, unfreeze: list[str], head_epochs: int,
              fine_tune_epochs: int, head_learning_rate: float, fine_tune_learning_rate: float,
              batch_size: int = 32):
    """Fine-tune ``model`` on x: (n, d) float32 inputs and y: (n,) integer labels, in place, and
    return ``model`` itself (not a copy).

    ``model`` is a functional classifier: an input, then ``model.get_layer("backbone")`` (a
    pre-trained sub-model of blocks named ``block1_dense``, ``block1_bn``, ``block1_relu``,
    ``block2_dense``, ...; the model calls it with ``training=False``), then a new Dense layer
    named "head" that outputs logits. The safe recipe of chapter 07, section 4:

    1. Freeze the backbone (``backbone.trainable = False``), compile (``keras.optimizers.Adam``
       at ``head_learning_rate``, ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``)
       and fit for ``head_epochs``. The head goes first: a random head sends large, arbitrary
       gradients into the pre-trained weights.
    2. Unfreeze the backbone's layers named by ``unfreeze`` (the rule of ``unfreeze_by_name``:
       ``"block3"`` chooses ``block3_dense``; ``backbone.trainable = True`` first) and keep every
       other layer frozen. Keep every BatchNormalization layer frozen too: a frozen batch-norm
       layer always runs in inference mode, with its stored statistics. The backbone's
       ``training=False`` is not enough: ``fit`` calls the model with ``training=True``, which
       overrides it, so a trainable batch-norm layer normalises with each batch's statistics
       and moves its stored ones toward the target data.
    3. Compile again, with Adam at the lower ``fine_tune_learning_rate`` (small steps keep the
       pre-trained weights close to where they were), and fit for ``fine_tune_epochs``.
       Compiling again is not optional: ``fit`` builds its training step for the weights that
       were trainable when it first ran; without a new ``compile``, TensorFlow silently keeps
       training the head only, and JAX raises an error.

    Use ``batch_size`` for both fits. Import Keras inside the function (``import keras``), so
    that parts 1-3 load without it. The grader checks the weights the model holds afterwards:
    the layers that must stay frozen and the batch-norm statistics bit-for-bit unchanged, the
    unfrozen blocks and the head changed, the model compiled with ``fine_tune_learning_rate``,
    and its accuracy on held-out target examples.
    """
    raise NotImplementedError

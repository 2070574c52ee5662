"""Keras helpers for freezing, unfreezing, training and reading out a classifier, shared by
chapters 07 (transfer learning) and 08 (self-supervised learning).

- :func:`set_trainable` freezes or unfreezes layers (batch norm stays frozen unless asked) and
  :func:`trainable_parameter_count` says what the optimizer will update; recompile afterwards.
- :func:`compile_classifier` / :func:`fit_classifier` train a logits-out classifier with a
  cosine-decayed learning rate; :func:`accuracy` scores it.
- :func:`extract_features` runs a frozen backbone once, in inference mode.
- :func:`weights_fingerprint` proves that frozen weights did not move.
- :func:`train_head` fits a softmax head on cached features in NumPy (a linear probe).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
from keras import layers

from course_lib.nn import checks


def trainable_parameter_count(model: keras.layers.Layer) -> int:
    """The number of scalars in ``model.trainable_weights`` (what the optimizer will update)."""
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def is_batchnorm(layer) -> bool:
    """True for a Keras ``BatchNormalization`` layer."""
    return isinstance(layer, layers.BatchNormalization)


def set_trainable(model: keras.Model, which: bool | int | Sequence[str] = True, *,
                  batchnorm: bool = False) -> int:
    """Freeze or unfreeze the layers of ``model`` (e.g. a :func:`cifar_backbone`); returns the
    number of trainable parameters of ``model`` afterwards.

    ``which``: True (every layer), False (none), an int n (the top n layers that have weights),
    or names (a layer is chosen when its name equals one of them or starts with it followed
    by "_": ``["block3", "block4"]`` chooses ``block3_conv1``, ``block4_bn1``, ...).

    Batch-norm layers stay frozen unless ``batchnorm=True``. In Keras 3 a frozen batch-norm
    layer runs in inference mode (stored statistics) even inside ``fit``; a trainable one
    normalises with the statistics of each batch and moves its stored ones, which is what
    fine-tuning on a few target images must avoid (``base(x, training=False)`` does not
    prevent it in a functional model: ``fit`` passes ``training=True`` down to nested layers).

    After changing what is trainable, compile the model again before training it.
    """
    with_weights = [layer for layer in model.layers if layer.weights]
    if isinstance(which, bool):
        chosen = set(map(id, with_weights)) if which else set()
    elif isinstance(which, int | np.integer):
        if not 0 <= which <= len(with_weights):
            raise ValueError(f"`which` = {which} layers, but {model.name!r} has "
                             f"{len(with_weights)} layers with weights")
        chosen = set(map(id, with_weights[len(with_weights) - int(which):]))
    elif isinstance(which, str):
        raise ValueError(f"`which` must be a list of names, got the string {which!r} "
                         f"(write [{which!r}])")
    else:
        names = list(which)
        def named(layer, name):
            return layer.name == name or layer.name.startswith(name + "_")

        unknown = [n for n in names if not any(named(layer, n) for layer in with_weights)]
        if unknown:
            raise ValueError(f"no layer with weights in {model.name!r} is named {unknown} (or "
                             f"starts with it); layers: {[la.name for la in with_weights]}")
        chosen = {id(layer) for layer in with_weights if any(named(layer, n) for n in names)}
    model.trainable = True
    for layer in with_weights:
        flag = id(layer) in chosen and (batchnorm or not is_batchnorm(layer))
        layer.trainable = flag
        # a nested network (keras.applications): set every inner layer too, its batch norm
        # frozen unless asked (setting an outer flag to the value it has is a no-op in Keras)
        for inner in _nested(layer):
            inner.trainable = flag and (batchnorm or not is_batchnorm(inner))
    return trainable_parameter_count(model)


def _nested(layer) -> list:
    """Every layer inside ``layer`` (a model within a model), at any depth."""
    found = []
    for inner in getattr(layer, "layers", ()):
        found += [inner, *_nested(inner)]
    return found


def weights_fingerprint(model: keras.layers.Layer) -> str:
    """sha256 (first 16 hex digits) of every weight of ``model``, trainable or not, in order:
    equal fingerprints before and after training prove that nothing changed."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()[:16]


def compile_classifier(model: keras.Model, learning_rate: float, *, total_steps: int | None = None,
                       optimizer: str = "adam", momentum: float = 0.9) -> keras.Model:
    """Compile ``model`` (logits out, integer labels) with Adam or SGD+momentum, the learning
    rate cosine-decayed to 0 over ``total_steps`` (constant when None); returns ``model``."""
    checks.check_choice("optimizer", optimizer, ["adam", "sgd"])
    rate = (keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
            if total_steps else learning_rate)
    opt = (keras.optimizers.Adam(rate) if optimizer == "adam"
           else keras.optimizers.SGD(rate, momentum=momentum))
    model.compile(optimizer=opt, metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def fit_classifier(model: keras.Model, x: np.ndarray, y: np.ndarray, *, epochs: int,
                   batch_size: int, learning_rate: float, optimizer: str = "adam",
                   seed: int = 0, monitor: bool = False, validation_data=None):
    """Compile and train ``model`` on images x: (n, 32, 32, 3) uint8 and labels y: (n,).

    Cosine-decayed learning rate over the whole run; ``monitor`` prints one line per epoch
    (examples/s, ETA; ``course_lib.training.TrainingMonitor``). Returns the Keras history.
    """
    from course_lib.training import TrainingMonitor

    y = checks.as_index_array("y", y, ndim=1)
    checks.check_same_length("x", np.asarray(x), "y", y)
    steps = epochs * int(np.ceil(len(y) / batch_size))
    compile_classifier(model, learning_rate, total_steps=steps, optimizer=optimizer)
    keras.utils.set_random_seed(seed)
    callbacks = [TrainingMonitor(batch_size, monitor="val_accuracy" if validation_data else
                                 "accuracy", examples_per_epoch=len(y))] if monitor else []
    return model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True,
                     validation_data=validation_data, callbacks=callbacks)


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` (logits out) on x: (n, ...) with labels y: (n,)."""
    predicted = np.argmax(model.predict(x, batch_size=batch_size, verbose=0), axis=1)
    return float(np.mean(predicted == np.asarray(y)))


def epochs_for(n_train: int, batch_size: int, min_steps: int, min_epochs: int,
               max_epochs: int) -> int:
    """Epochs so that a run takes at least ``min_steps`` optimizer steps (small budgets would
    otherwise stop after a handful), between ``min_epochs`` and ``max_epochs``."""
    steps_per_epoch = int(np.ceil(n_train / batch_size))
    return int(np.clip(np.ceil(min_steps / steps_per_epoch), min_epochs, max_epochs))


def even_batch_size(n: int, preferred: int) -> int:
    """The largest batch size <= ``preferred`` that divides ``n`` (and is at least
    ``preferred // 2``), else ``preferred``: with equal batches TensorFlow traces the training
    step once instead of twice (once more for a last, smaller batch)."""
    if n <= preferred:
        return n
    for size in range(preferred, max(1, preferred // 2) - 1, -1):
        if n % size == 0:
            return size
    return preferred


def extract_features(backbone: keras.Model, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Features of a (frozen) backbone in inference mode: x (n, 32, 32, 3) -> (n, width)."""
    return np.asarray(backbone.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def train_head(features: np.ndarray, y: np.ndarray, num_classes: int, *,
               iterations: int = 300, learning_rate: float = 1e-2, l2: float = 1e-3,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A softmax classifier on features ``(n, d)``: full-batch Adam on the mean cross-entropy
    plus ``l2/2 ||W||^2``, in NumPy (float64; fast: no per-epoch overhead). The features are
    centred and divided by one global scale first; that is folded into the result, so that
    ``logits = features @ W + b``. Returns ``(W (d, classes), b (classes,))``; ``seed`` sets
    the small random initial W."""
    from course_lib.nn.activations import softmax

    features = checks.as_float_array("features", features, ndim=2).astype(np.float64)
    y = checks.as_index_array("y", y, ndim=1, upper=num_classes)
    checks.check_same_length("features", features, "y", y)
    mean = features.mean(0)
    scale = float(np.sqrt(np.mean((features - mean) ** 2))) + 1e-12
    z = (features - mean) / scale
    onehot = np.eye(num_classes)[y]
    rng = np.random.default_rng(seed)
    params = [0.01 * rng.standard_normal((z.shape[1], num_classes)), np.zeros(num_classes)]
    moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
    for step in range(1, iterations + 1):
        error = (softmax(z @ params[0] + params[1]) - onehot) / len(y)
        grads = [z.T @ error + l2 * params[0], error.sum(0)]
        for p, g, m in zip(params, grads, moments, strict=True):
            m[0] = 0.9 * m[0] + 0.1 * g
            m[1] = 0.999 * m[1] + 0.001 * g * g
            p -= learning_rate * (m[0] / (1 - 0.9 ** step)) / (
                np.sqrt(m[1] / (1 - 0.999 ** step)) + 1e-8)
    kernel = params[0] / scale
    return kernel.astype(np.float32), (params[1] - mean @ kernel).astype(np.float32)


def linear_predictor(weights: tuple[np.ndarray, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``features (n, d) -> scores (n, classes)`` of a head ``(W, b)`` from :func:`train_head`."""
    kernel, bias = weights
    return lambda features: np.asarray(features, dtype=np.float64) @ kernel + bias

"""Reference solution for exercises/ex07_transfer_learning.py: freezing, L2-SP, a linear head,
a Keras fine-tuning procedure.

Part 1 works on any Keras model (and on the grader's stand-ins, which have the same attributes):
``model.trainable``, ``model.layers``, and for each layer ``name``, ``trainable``, ``weights``
and ``trainable_weights`` (arrays or variables with a ``shape``). Parts 2 and 3 are plain NumPy.
Part 4 is backend-agnostic Keras 3; it imports Keras itself, so that parts 1-3 load without it.
"""

import numpy as np

# ----------------------------------------------------------------- part 1: freezing


def _size(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


def parameter_counts(model) -> tuple[int, int]:
    """The two numbers ``model.summary()`` prints: (trainable, non-trainable), where trainable is
    the total size of every array in ``model.trainable_weights`` and non-trainable the size of
    every other array in ``model.weights`` (frozen layers, batch norm's moving statistics)."""
    trainable = _size(model.trainable_weights)
    return trainable, _size(model.weights) - trainable


def _is_batchnorm(layer) -> bool:
    return type(layer).__name__ == "BatchNormalization"


def _set(model, chosen) -> tuple[int, int]:
    model.trainable = True
    for layer in model.layers:
        if layer.weights:
            layer.trainable = layer in chosen and not _is_batchnorm(layer)
    return parameter_counts(model)


def unfreeze_by_name(model, names: list[str]) -> tuple[int, int]:
    """Make trainable exactly the layers (with weights) whose name equals one of ``names`` or
    starts with it followed by "_" ("block4" chooses "block4_conv1", not "block40_conv1");
    freeze every other layer that has weights; batch-norm layers (class name
    "BatchNormalization") always stay frozen. Set ``model.trainable = True`` first (a frozen
    model hides the weights of all its layers). Returns ``parameter_counts(model)``."""
    chosen = [layer for layer in model.layers
              if any(layer.name == n or layer.name.startswith(n + "_") for n in names)]
    return _set(model, chosen)


def unfreeze_top(model, n: int) -> tuple[int, int]:
    """Make trainable the top ``n`` layers that have weights (the last ``n`` in
    ``model.layers`` with a non-empty ``weights`` list), freeze the others; batch-norm layers
    always stay frozen (they still count among the ``n``). ``model.trainable = True`` first.
    Returns ``parameter_counts(model)``. ``n = 0`` freezes everything."""
    with_weights = [layer for layer in model.layers if layer.weights]
    return _set(model, with_weights[len(with_weights) - n:] if n > 0 else [])


# ----------------------------------------------------------------- part 2: L2-SP


def _pairs(weights: dict[str, np.ndarray], source: dict[str, np.ndarray]):
    """(name, w, its source value or None) for every name of ``weights``; shapes checked."""
    for name, w in weights.items():
        s = source.get(name)
        if s is not None and np.shape(s) != np.shape(w):
            raise ValueError(f"weights[{name!r}] has shape {np.shape(w)} but source[{name!r}] "
                             f"has shape {np.shape(s)}")
        yield name, np.asarray(w, dtype=np.float64), s


def l2sp_penalty(weights: dict[str, np.ndarray], source: dict[str, np.ndarray], alpha: float,
                 beta: float) -> float:
    """The L2-SP penalty of the target model's parameters ``weights`` (arrays by name, e.g. Keras
    variable paths) given the source model's ``source`` (arrays by name), a float:

    - a name in both: alpha/2 * ||w - w_source||^2 (shapes must be equal, else ValueError
      naming the parameter: never let NumPy broadcast (4,) against (1, 4));
    - a name only in ``weights`` (the new head): beta/2 * ||w||^2;
    - a name only in ``source`` (the source's own head, dropped): ignored.
    """
    total = 0.0
    for _, w, s in _pairs(weights, source):
        if s is None:
            total += 0.5 * beta * float(np.sum(w ** 2))
        else:
            total += 0.5 * alpha * float(np.sum((w - s) ** 2))
    return total


def l2sp_gradient(weights: dict[str, np.ndarray], source: dict[str, np.ndarray], alpha: float,
                  beta: float) -> dict[str, np.ndarray]:
    """The gradient of l2sp_penalty with respect to each array of ``weights``: a dict with
    exactly the names of ``weights``, each array shaped like its parameter (ValueError on
    mismatched shapes, as l2sp_penalty)."""
    return {name: beta * w if s is None else alpha * (w - s)
            for name, w, s in _pairs(weights, source)}


# ----------------------------------------------------------------- part 3: a linear head


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


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
    mean, sd = features.mean(axis=0), features.std(axis=0) + 1e-8
    z = (features - mean) / sd
    onehot = np.eye(num_classes)[labels]
    W = np.zeros((features.shape[1], num_classes))
    b = np.zeros(num_classes)
    for _ in range(epochs):
        G = (_softmax(z @ W + b) - onehot) / len(labels)
        W -= lr * (z.T @ G + l2 * W)
        b -= lr * G.sum(axis=0)
    return W / sd[:, None], b - (mean / sd) @ W


def predict_head(features: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Predicted class ids for raw features: argmax of features @ W + b. (n, d) -> (n,) ints."""
    return np.argmax(features @ W + b, axis=1)


# ----------------------------------------------------------------- part 4: fine-tuning in Keras


def _compile(model, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


def fine_tune(model, x: np.ndarray, y: np.ndarray, *, unfreeze: list[str], head_epochs: int,
              fine_tune_epochs: int, head_learning_rate: float, fine_tune_learning_rate: float,
              batch_size: int = 32):
    """Fine-tune ``model`` (input -> ``model.get_layer("backbone")`` -> a new Dense head that
    outputs logits) on x: (n, d) float32 and y: (n,) integer labels, in place; returns
    ``model``.

    1. Freeze the backbone (``backbone.trainable = False``), compile (Adam at
       ``head_learning_rate``, sparse categorical cross-entropy from logits) and fit the head
       for ``head_epochs``.
    2. Unfreeze the backbone's layers named by ``unfreeze`` (the rule of ``unfreeze_by_name``)
       and keep every other layer, and every BatchNormalization layer, frozen.
    3. Compile again (Adam at the lower ``fine_tune_learning_rate``) and fit for
       ``fine_tune_epochs``. ``batch_size`` for both fits.
    """
    backbone = model.get_layer("backbone")
    backbone.trainable = False
    _compile(model, head_learning_rate)
    model.fit(x, y, epochs=head_epochs, batch_size=batch_size, verbose=0)
    unfreeze_by_name(backbone, unfreeze)
    _compile(model, fine_tune_learning_rate)
    model.fit(x, y, epochs=fine_tune_epochs, batch_size=batch_size, verbose=0)
    return model

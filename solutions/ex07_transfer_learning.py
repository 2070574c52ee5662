"""Reference solution for exercises/ex07_transfer_learning.py: freezing, L2-SP, a linear head.

Part 1 works on any Keras model (and on the grader's stand-ins, which have the same attributes):
``model.trainable``, ``model.layers``, and for each layer ``name``, ``trainable``, ``weights``
and ``trainable_weights`` (arrays or variables with a ``shape``). Parts 2 and 3 are plain NumPy.
"""

import numpy as np

# ----------------------------------------------------------------- part 1: freezing


def trainable_count(model) -> int:
    """The number of trainable parameters: the total size of every array in
    ``model.trainable_weights`` (an int)."""
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def _is_batchnorm(layer) -> bool:
    return type(layer).__name__ == "BatchNormalization"


def _set(model, chosen) -> int:
    model.trainable = True
    for layer in model.layers:
        if layer.weights:
            layer.trainable = layer in chosen and not _is_batchnorm(layer)
    return trainable_count(model)


def unfreeze_by_name(model, names: list[str]) -> int:
    """Make trainable exactly the layers (with weights) whose name equals one of ``names`` or
    starts with it followed by "_" ("block4" chooses "block4_conv1", not "block40_conv1");
    freeze every other layer that has weights; batch-norm layers (class name
    "BatchNormalization") always stay frozen. Set ``model.trainable = True`` first (a frozen
    model hides the weights of all its layers). Returns ``trainable_count(model)``."""
    chosen = [layer for layer in model.layers
              if any(layer.name == n or layer.name.startswith(n + "_") for n in names)]
    return _set(model, chosen)


def unfreeze_top(model, n: int) -> int:
    """Make trainable the top ``n`` layers that have weights (the last ``n`` in
    ``model.layers`` with a non-empty ``weights`` list), freeze the others; batch-norm layers
    always stay frozen (they still count among the ``n``). ``model.trainable = True`` first.
    Returns ``trainable_count(model)``. ``n = 0`` freezes everything."""
    with_weights = [layer for layer in model.layers if layer.weights]
    return _set(model, with_weights[len(with_weights) - n:] if n > 0 else [])


# ----------------------------------------------------------------- part 2: L2-SP


def l2sp_penalty(weights: list[np.ndarray], source: list[np.ndarray], alpha: float,
                 head: list[np.ndarray], beta: float) -> float:
    """alpha/2 * sum_k ||weights[k] - source[k]||^2 + beta/2 * sum_j ||head[j]||^2 (a float).

    weights[k] and source[k] have the same shape; head holds the new layer's arrays."""
    near = sum(float(np.sum((w - s) ** 2)) for w, s in zip(weights, source, strict=True))
    return 0.5 * alpha * near + 0.5 * beta * sum(float(np.sum(h ** 2)) for h in head)


def l2sp_gradient(weights: list[np.ndarray], source: list[np.ndarray], alpha: float,
                  head: list[np.ndarray], beta: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The gradient of l2sp_penalty: (list of arrays shaped like weights, list shaped like
    head)."""
    return ([alpha * (w - s) for w, s in zip(weights, source, strict=True)],
            [beta * h for h in head])


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

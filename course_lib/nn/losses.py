"""Loss functions with gradients (document 000 §4, document 002 §4.2).

Each loss is an object: ``loss(y_true, y_pred) -> float`` (the mean over the batch, Keras's
``"sum_over_batch_size"`` reduction) and ``loss.gradient(y_true, y_pred)`` -> dL/dy_pred with
the shape of ``y_pred``. ``value_and_grad`` returns both in one pass (used by ``Sequential.fit``).

Stability: logits go through log-sum-exp (fine for logits of +-1e4); probabilities are clipped
to ``[EPSILON, 1 - EPSILON]`` with Keras's ``EPSILON = 1e-7``, so exact 0 and 1 give finite values.
"""

from __future__ import annotations

import numpy as np

from course_lib.nn import checks
from course_lib.nn.activations import log_softmax, sigmoid, softmax

EPSILON = 1e-7



def _check_non_negative_scores(y_pred: np.ndarray) -> None:
    """Categorical losses without ``from_logits`` take probabilities (or scores that are >= 0)."""
    if y_pred.size and y_pred.min() < 0:
        raise ValueError(
            f"`y_pred` (shape {y_pred.shape}) must hold probabilities (or pass from_logits=True)"
        )

class Loss:
    """Base class: subclasses implement ``_value_and_grad(y_true, y_pred)`` on validated arrays."""

    name = "loss"

    def __call__(self, y_true, y_pred) -> float:
        return self.value_and_grad(y_true, y_pred)[0]

    def gradient(self, y_true, y_pred) -> np.ndarray:
        """dL/dy_pred, same shape as ``y_pred``."""
        return self.value_and_grad(y_true, y_pred)[1]

    def value_and_grad(self, y_true, y_pred, *, validate: bool = True) -> tuple[float, np.ndarray]:
        """(mean loss, dL/dy_pred). ``validate=False`` skips the input checks (hot loops)."""
        if validate:
            y_true, y_pred = self.validate(y_true, y_pred)
        return self._value_and_grad(y_true, y_pred)

    def validate(self, y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
        """Check shapes/dtypes/ranges; return arrays ready for ``_value_and_grad``."""
        y_pred = checks.as_float_array("y_pred", y_pred, ndim=(1, 2, 3))
        y_true = checks.as_float_array("y_true", np.asarray(y_true, dtype=y_pred.dtype))
        if y_true.shape != y_pred.shape and y_true.shape == y_pred.shape[:-1] \
                and y_pred.shape[-1] == 1:
            y_true = y_true[..., None]
        checks.check_same_shape("y_true", y_true, "y_pred", y_pred)
        return y_true, y_pred

    def _value_and_grad(self, y_true, y_pred):
        raise NotImplementedError


class MeanSquaredError(Loss):
    """mean((y_true - y_pred)^2) over all entries. y_true, y_pred: (batch, outputs)."""

    name = "mean_squared_error"

    def _value_and_grad(self, y_true, y_pred):
        diff = y_pred - y_true
        return float(np.mean(diff * diff)), (2.0 / diff.size) * diff


class BinaryCrossentropy(Loss):
    """-mean(y log p + (1 - y) log(1 - p)). y_true in [0, 1], y_pred: probabilities or logits.

    ``from_logits=True``: p = sigmoid(z), computed as max(z, 0) - z y + log(1 + exp(-|z|)).
    """

    name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = from_logits

    def validate(self, y_true, y_pred):
        y_true, y_pred = super().validate(y_true, y_pred)
        if y_true.size and (y_true.min() < 0 or y_true.max() > 1):
            raise ValueError(
                f"`y_true` must lie in [0, 1] for binary cross-entropy, got min {y_true.min()} "
                f"and max {y_true.max()} (shape {y_true.shape})"
            )
        if not self.from_logits and y_pred.size and (y_pred.min() < 0 or y_pred.max() > 1):
            raise ValueError(
                f"`y_pred` must hold probabilities in [0, 1] (or pass from_logits=True), got "
                f"min {y_pred.min()} and max {y_pred.max()} (shape {y_pred.shape})"
            )
        return y_true, y_pred

    def _value_and_grad(self, y_true, y_pred):
        n = y_pred.size
        if self.from_logits:
            z = y_pred
            losses = np.maximum(z, 0) - z * y_true + np.log1p(np.exp(-np.abs(z)))
            return float(np.mean(losses)), (sigmoid(z) - y_true) / n
        p = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
        losses = -(y_true * np.log(p) + (1.0 - y_true) * np.log(1.0 - p))
        inside = (y_pred >= EPSILON) & (y_pred <= 1.0 - EPSILON)  # clipping stops the gradient
        grad = (p - y_true) / (p * (1.0 - p)) * inside / n
        return float(np.mean(losses)), grad.astype(y_pred.dtype)


class CategoricalCrossentropy(Loss):
    """-mean over the batch of sum_k y_k log p_k. y_true: one-hot (batch, classes).

    ``from_logits=True``: log p = z - logsumexp(z) and the gradient is (softmax(z) - y) / batch.
    ``from_logits=False``: as Keras, y_pred is renormalised to sum 1 and clipped to
    [EPSILON, 1 - EPSILON].
    """

    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = from_logits

    def validate(self, y_true, y_pred):
        y_pred = checks.as_float_array("y_pred", y_pred, ndim=2)
        y_true = checks.as_float_array("y_true", np.asarray(y_true, dtype=y_pred.dtype), ndim=2)
        checks.check_same_shape("y_true", y_true, "y_pred", y_pred)
        if y_true.size and y_true.min() < 0:
            raise ValueError(f"`y_true` (shape {y_true.shape}) must be non-negative (one-hot)")
        if not self.from_logits:
            _check_non_negative_scores(y_pred)
        return y_true, y_pred

    def _value_and_grad(self, y_true, y_pred):
        batch = y_pred.shape[0]
        if self.from_logits:
            logp = log_softmax(y_pred)
            loss = -np.sum(y_true * logp) / batch
            grad = softmax(y_pred) * y_true.sum(axis=-1, keepdims=True) - y_true
            return float(loss), grad / batch
        total = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / total
        qc = np.clip(q, EPSILON, 1.0 - EPSILON)
        loss = -np.sum(y_true * np.log(qc)) / batch
        dq = -y_true / qc * ((q >= EPSILON) & (q <= 1.0 - EPSILON))
        grad = (dq - np.sum(dq * q, axis=-1, keepdims=True)) / total
        return float(loss), (grad / batch).astype(y_pred.dtype)


class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy with integer labels. y_true: (batch,) ints in [0, classes);
    y_pred: (batch, classes) logits (``from_logits=True``) or probabilities."""

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = from_logits
        self._dense = CategoricalCrossentropy(from_logits=from_logits)

    def validate(self, y_true, y_pred):
        y_pred = checks.as_float_array("y_pred", y_pred, ndim=2)
        y_true = np.asarray(y_true)
        if y_true.ndim == 2 and y_true.shape[1] == 1:
            y_true = y_true[:, 0]
        y_true = checks.as_index_array("y_true", y_true, upper=y_pred.shape[1], ndim=1)
        checks.check_same_length("y_true", y_true, "y_pred", y_pred)
        if not self.from_logits:
            _check_non_negative_scores(y_pred)
        return y_true, y_pred

    def _value_and_grad(self, y_true, y_pred):
        batch = y_pred.shape[0]
        rows = np.arange(batch)
        if self.from_logits:
            z = y_pred - y_pred.max(axis=1, keepdims=True)
            e = np.exp(z)
            total = e.sum(axis=1, keepdims=True)
            loss = np.sum(np.log(total[:, 0]) - z[rows, y_true]) / batch
            grad = e / total
            grad[rows, y_true] -= 1.0
            grad /= batch
            return float(loss), grad
        one_hot = np.zeros_like(y_pred)
        one_hot[rows, y_true] = 1.0
        return self._dense._value_and_grad(one_hot, y_pred)


_ALIASES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def get(loss: str | Loss) -> Loss:
    """A loss object from a name (probabilities, as Keras's string names) or a ``Loss`` instance."""
    if isinstance(loss, Loss):
        return loss
    if loss not in _ALIASES:
        raise ValueError(f"`loss` must be a Loss or one of {sorted(_ALIASES)}, got {loss!r}")
    return _ALIASES[loss]()

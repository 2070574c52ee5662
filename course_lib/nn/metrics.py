"""Classification metrics: accuracy, confusion matrix, precision, recall, F1 (document 001 §3).

Labels are integer class ids. ``y_pred`` may be labels (same shape as ``y_true``) or scores /
probabilities of shape (n, classes), turned into labels with argmax. Per-class precision,
recall and F1 are 0 where undefined (no predicted / no true samples of that class).
"""

from __future__ import annotations

import numpy as np

from course_lib.nn import checks


def _labels(y_true, y_pred, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    y_pred = np.asarray(y_pred)
    y_true_arr = np.asarray(y_true)
    if y_pred.ndim == 2 and y_true_arr.ndim == 1:
        scores = checks.as_float_array("y_pred", y_pred, ndim=2)
        if num_classes is not None and scores.shape[1] != num_classes:
            raise ValueError(
                f"`y_pred` scores must have {num_classes} columns, got shape {scores.shape}"
            )
        num_classes = scores.shape[1]
        y_pred = scores.argmax(axis=1)
    y_true_arr = checks.as_index_array("y_true", y_true_arr, upper=num_classes, ndim=1)
    y_pred = checks.as_index_array("y_pred", y_pred, upper=num_classes, ndim=1)
    checks.check_same_shape("y_true", y_true_arr, "y_pred", y_pred)
    if num_classes is None:
        num_classes = int(max(y_true_arr.max(initial=-1), y_pred.max(initial=-1))) + 1
    return y_true_arr, y_pred, num_classes


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted label equals the true label.
    y_true: (n,) ints; y_pred: (n,) labels or (n, classes) scores."""
    y_true, y_pred, _ = _labels(y_true, y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else 0.0


def binary_accuracy(y_true, y_prob, threshold: float = 0.5) -> float:
    """Fraction of samples with (y_prob > threshold) == y_true. y_true, y_prob: (n,) or (n, 1)."""
    y_prob = checks.as_float_array("y_prob", y_prob, ndim=(1, 2)).reshape(-1)
    y_true = checks.as_index_array("y_true", np.asarray(y_true).reshape(-1), upper=2)
    checks.check_same_shape("y_true", y_true, "y_prob", y_prob)
    return float(np.mean((y_prob > threshold) == y_true))


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """(classes, classes) int64 counts: row = true class, column = predicted class."""
    y_true, y_pred, num_classes = _labels(y_true, y_pred, num_classes)
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    return precision, recall


def _average(values: np.ndarray, average: str | None):
    checks.check_choice("average", average, ("macro", None))
    return float(values.mean()) if average == "macro" else values


def precision(y_true, y_pred, num_classes: int | None = None,
              average: str | None = "macro") -> float | np.ndarray:
    """TP / (TP + FP) per class; ``average="macro"``: their unweighted mean, None: the array."""
    return _average(_per_class(confusion_matrix(y_true, y_pred, num_classes))[0], average)


def recall(y_true, y_pred, num_classes: int | None = None,
           average: str | None = "macro") -> float | np.ndarray:
    """TP / (TP + FN) per class; ``average="macro"``: their unweighted mean, None: the array."""
    return _average(_per_class(confusion_matrix(y_true, y_pred, num_classes))[1], average)


def f1_score(y_true, y_pred, num_classes: int | None = None,
             average: str | None = "macro") -> float | np.ndarray:
    """2 P R / (P + R) per class; ``average="macro"``: their unweighted mean, None: the array."""
    p, r = _per_class(confusion_matrix(y_true, y_pred, num_classes))
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    return _average(f1, average)

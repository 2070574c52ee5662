"""Exercise 01 (chapter 01): activations and losses with their gradients.

Replace every `raise NotImplementedError` with your code (plain NumPy). Check your work
from a notebook with `course_lib.grading.check("ex01")`, or from a terminal with
`course grade`. Shapes are given in each docstring: match them exactly.
"""

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic sigmoid, element-wise. z: any shape -> same shape, values in (0, 1)."""
    raise NotImplementedError


def sigmoid_grad(z: np.ndarray) -> np.ndarray:
    """d sigmoid(z) / dz = s (1 - s), element-wise. z: any shape -> same shape."""
    raise NotImplementedError


def tanh_grad(z: np.ndarray) -> np.ndarray:
    """d tanh(z) / dz = 1 - tanh(z)^2, element-wise. z: any shape -> same shape."""
    raise NotImplementedError


def relu(z: np.ndarray) -> np.ndarray:
    """max(0, z), element-wise. z: any shape -> same shape."""
    raise NotImplementedError


def relu_grad(z: np.ndarray) -> np.ndarray:
    """1 where z > 0, else 0 (the convention at z = 0 is 0). z: any shape -> same shape."""
    raise NotImplementedError


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable. z: (batch, classes) -> (batch, classes), rows sum to 1."""
    raise NotImplementedError


def mse(y_pred: np.ndarray, y_true: np.ndarray) -> float:
    """Mean squared error over all entries. y_pred, y_true: (batch, outputs) -> float."""
    raise NotImplementedError


def mse_grad(y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """d mse / d y_pred. y_pred, y_true: (batch, outputs) -> (batch, outputs)."""
    raise NotImplementedError


def binary_cross_entropy(p: np.ndarray, y: np.ndarray, eps: float = 1e-12) -> float:
    """Mean binary cross-entropy. p: (batch,) probabilities, y: (batch,) in {0, 1} -> float.

    p is clipped to [eps, 1 - eps] so that log(0) never happens.
    """
    raise NotImplementedError


def binary_cross_entropy_grad_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d BCE(sigmoid(z), y) / dz = (sigmoid(z) - y) / batch. z, y: (batch,) -> (batch,)."""
    raise NotImplementedError


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean categorical cross-entropy of softmax(logits), computed with log-sum-exp.

    logits: (batch, classes) floats; labels: (batch,) integer class ids -> float.
    """
    raise NotImplementedError


def softmax_cross_entropy_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d softmax_cross_entropy / d logits = (softmax(logits) - onehot(labels)) / batch.

    logits: (batch, classes); labels: (batch,) integer class ids -> (batch, classes).
    """
    raise NotImplementedError

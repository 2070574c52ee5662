"""Reference solution for exercises/ex01_foundations.py: activations and losses with their gradients."""

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic sigmoid, element-wise. z: any shape -> same shape, values in (0, 1)."""
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def sigmoid_grad(z: np.ndarray) -> np.ndarray:
    """d sigmoid(z) / dz = s (1 - s), element-wise. z: any shape -> same shape."""
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh_grad(z: np.ndarray) -> np.ndarray:
    """d tanh(z) / dz = 1 - tanh(z)^2, element-wise. z: any shape -> same shape."""
    return 1.0 - np.tanh(z) ** 2


def relu(z: np.ndarray) -> np.ndarray:
    """max(0, z), element-wise. z: any shape -> same shape."""
    return np.maximum(z, 0.0)


def relu_grad(z: np.ndarray) -> np.ndarray:
    """1 where z > 0, else 0 (the convention at z = 0 is 0). z: any shape -> same shape."""
    return (z > 0).astype(np.float64)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable. z: (batch, classes) -> (batch, classes), rows sum to 1."""
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def mse(y_pred: np.ndarray, y_true: np.ndarray) -> float:
    """Mean squared error over all entries. y_pred, y_true: (batch, outputs) -> float."""
    return float(np.mean((y_pred - y_true) ** 2))


def mse_grad(y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """d mse / d y_pred. y_pred, y_true: (batch, outputs) -> (batch, outputs)."""
    return 2.0 * (y_pred - y_true) / y_pred.size


def binary_cross_entropy(p: np.ndarray, y: np.ndarray, eps: float = 1e-12) -> float:
    """Mean binary cross-entropy. p: (batch,) probabilities, y: (batch,) in {0, 1} -> float.

    p is clipped to [eps, 1 - eps] so that log(0) never happens.
    """
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def binary_cross_entropy_grad_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d BCE(sigmoid(z), y) / dz = (sigmoid(z) - y) / batch. z, y: (batch,) -> (batch,)."""
    return (sigmoid(z) - y) / z.shape[0]


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean categorical cross-entropy of softmax(logits), computed with log-sum-exp.

    logits: (batch, classes) floats; labels: (batch,) integer class ids -> float.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-np.mean(log_probs[np.arange(len(labels)), labels]))


def softmax_cross_entropy_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d softmax_cross_entropy / d logits = (softmax(logits) - onehot(labels)) / batch.

    logits: (batch, classes); labels: (batch,) integer class ids -> (batch, classes).
    """
    grad = softmax(logits)
    grad[np.arange(len(labels)), labels] -= 1.0
    return grad / len(labels)

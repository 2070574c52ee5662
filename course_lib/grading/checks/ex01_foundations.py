"""Checks for exercises/ex01_foundations.py: activations and losses with their gradients.

Every input (values, labels, the batch sizes of the losses) is drawn from the check's ``rng``.
"""

import numpy as np

from course_lib.grading.spec import check


def _mixed(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Values of both signs and large magnitude, so that returning z unchanged is wrong."""
    return 4.0 * rng.standard_normal(shape)


def _scalar(value) -> np.ndarray:
    """A loss as a 0-d float array: an array of shape (batch,) or a non-number is rejected."""
    return np.asarray(value, dtype=np.float64)


@check(points=1)
def sigmoid_values(module, rng):
    """sigmoid(z) = 1 / (1 + exp(-z)) element-wise, same shape as z, stable for z around -50
    and +50."""
    z = _mixed(rng, (3, 4))
    z[0, :2] = rng.uniform(45.0, 55.0, 2) * [-1.0, 1.0]
    return {"sigmoid": module.sigmoid(z)}


@check(points=1)
def relu_values(module, rng):
    """relu(z) = max(0, z) element-wise, same shape as z (negative entries become 0)."""
    return {"relu": module.relu(_mixed(rng, (4, 3)))}


@check(points=2)
def activation_derivatives(module, rng):
    """sigmoid_grad = s(1 - s), tanh_grad = 1 - tanh(z)^2, relu_grad = 1 where z > 0 else 0;
    each has the shape of z."""
    z = _mixed(rng, (5, 3))
    return {
        "sigmoid_grad": module.sigmoid_grad(z),
        "tanh_grad": module.tanh_grad(z),
        "relu_grad": module.relu_grad(z),
    }


@check(points=2)
def softmax_rows(module, rng):
    """softmax(z) normalises each row of z (batch, classes) to probabilities; it must stay finite
    for logits like 1000 (subtract the row maximum first)."""
    z = _mixed(rng, (4, 5))
    z[1] += 1000.0
    return {"softmax": module.softmax(z)}


@check(points=2)
def mse_and_gradient(module, rng):
    """mse is the mean of (y_pred - y_true)^2 over all entries (a float); mse_grad has the
    shape of y_pred and equals 2 (y_pred - y_true) / y_pred.size."""
    y_pred = rng.standard_normal((6, 2))
    y_true = rng.standard_normal((6, 2))
    return {
        "mse": _scalar(module.mse(y_pred, y_true)),
        "mse_grad": module.mse_grad(y_pred, y_true),
    }


@check(points=2)
def binary_cross_entropy_and_gradient(module, rng):
    """binary_cross_entropy(p, y) = -mean(y log p + (1 - y) log(1 - p)) (a float);
    binary_cross_entropy_grad_logits(z, y) = (sigmoid(z) - y) / batch, shape (batch,)
    (batch 6-10)."""
    batch = int(rng.integers(6, 11))
    p = rng.uniform(0.05, 0.95, size=batch)
    y = rng.integers(0, 2, batch).astype(np.float64)
    z = _mixed(rng, (1, batch))[0]
    return {
        "bce": _scalar(module.binary_cross_entropy(p, y)),
        "bce_grad_logits": module.binary_cross_entropy_grad_logits(z, y),
    }


@check(points=2)
def softmax_cross_entropy_and_gradient(module, rng):
    """softmax_cross_entropy(logits, labels) is the mean of -log softmax(logits)[label] (a float,
    finite even for logits near 1000: use log-sum-exp); its gradient is
    (softmax(logits) - onehot(labels)) / batch with shape (batch, classes) (batch 4-7, 3-6
    classes)."""
    batch, classes = int(rng.integers(4, 8)), int(rng.integers(3, 7))
    logits = _mixed(rng, (batch, classes))
    logits[2] += 1000.0
    labels = rng.integers(0, classes, batch)
    return {
        "loss": _scalar(module.softmax_cross_entropy(logits, labels)),
        "grad": module.softmax_cross_entropy_grad(logits, labels),
    }

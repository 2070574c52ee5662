"""Reference solution for exercises/ex03_backpropagation.py: gradient checking and backprop by hand.

The 2-layer network of this exercise: x (batch, n_in) -> Dense + tanh (n_hidden) -> Dense (1)
-> sigmoid -> mean binary cross-entropy against labels y (batch,) in {0, 1}.
"""

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Central differences (f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for every entry i of x.

    x: float64 array of any shape; f maps such an array to a float. Returns an array of x's shape.
    x must be unchanged afterwards.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        f_plus = f(x)
        x[i] = old - eps
        f_minus = f(x)
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||) with Euclidean norms over all entries; 0.0 when both are zero."""
    denominator = np.linalg.norm(a) + np.linalg.norm(b)
    if denominator == 0.0:
        return 0.0
    return float(np.linalg.norm(a - b) / denominator)


def dense_backward(
    x: np.ndarray, W: np.ndarray, grad_z: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of z = x W + b.

    x: (batch, n_in), W: (n_in, n_out), grad_z = dL/dz: (batch, n_out).
    Returns (dx, dW, db) with shapes (batch, n_in), (n_in, n_out), (n_out,).
    """
    return grad_z @ W.T, x.T @ grad_z, grad_z.sum(axis=0)


def two_layer_loss_and_grads(
    x: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray]
) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients of the tanh/sigmoid network described at the top of this file.

    x: (batch, n_in); y: (batch,) in {0, 1};
    params: {"W1": (n_in, n_hidden), "b1": (n_hidden,), "W2": (n_hidden, 1), "b2": (1,)}.
    Returns (loss, grads): the mean binary cross-entropy (float) and {"W1", "b1", "W2", "b2"}
    with the parameters' shapes.
    """
    batch = len(y)
    a1 = x @ params["W1"] + params["b1"]
    h1 = np.tanh(a1)
    z2 = (h1 @ params["W2"] + params["b2"])[:, 0]
    # mean BCE of sigmoid(z2), written with logaddexp: log(1 + e^z) - y z
    loss = float(np.mean(np.logaddexp(0.0, z2) - y * z2))
    p = 1.0 / (1.0 + np.exp(-z2))
    dz2 = ((p - y) / batch)[:, None]               # delta of the output layer, (batch, 1)
    dh1, dW2, db2 = dense_backward(h1, params["W2"], dz2)
    da1 = dh1 * (1.0 - h1**2)                      # delta of the hidden layer: tanh'(a1)
    _, dW1, db1 = dense_backward(x, params["W1"], da1)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

"""Exercise 03 (chapter 03): gradient checking and backprop of a 2-layer network by hand.

The 2-layer network of this exercise: x (batch, n_in) -> Dense + tanh (n_hidden) -> Dense (1)
-> sigmoid -> mean binary cross-entropy against labels y (batch,) in {0, 1}.

Replace every `raise NotImplementedError` with your code (plain NumPy). Check your work
from a notebook with `course_lib.grading.check("ex03")`, or from a terminal with
`course grade`. Shapes are given in each docstring: match them exactly.
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
    raise NotImplementedError


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||) with Euclidean norms over all entries; 0.0 when both are zero."""
    raise NotImplementedError


def dense_backward(
    x: np.ndarray, W: np.ndarray, grad_z: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of z = x W + b.

    x: (batch, n_in), W: (n_in, n_out), grad_z = dL/dz: (batch, n_out).
    Returns (dx, dW, db) with shapes (batch, n_in), (n_in, n_out), (n_out,).
    """
    raise NotImplementedError


def two_layer_loss_and_grads(
    x: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray]
) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients of the tanh/sigmoid network described at the top of this file.

    x: (batch, n_in); y: (batch,) in {0, 1};
    params: {"W1": (n_in, n_hidden), "b1": (n_hidden,), "W2": (n_hidden, 1), "b2": (1,)}.
    Returns (loss, grads): the mean binary cross-entropy (float) and {"W1", "b1", "W2", "b2"}
    with the parameters' shapes.
    """
    raise NotImplementedError

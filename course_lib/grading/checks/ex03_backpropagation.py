"""Checks for exercises/ex03_backpropagation.py: gradient checking and backprop by hand.

Every input (shapes, values, labels) is drawn from the check's ``rng``.
"""

import numpy as np

from course_lib.grading.spec import check


def _params(rng: np.random.Generator, n_in: int = 4, n_hidden: int = 5) -> dict:
    return {
        "W1": rng.standard_normal((n_in, n_hidden)),
        "b1": rng.standard_normal(n_hidden),
        "W2": rng.standard_normal((n_hidden, 1)),
        "b2": rng.standard_normal(1),
    }


@check(points=3, rtol=1e-5, atol=1e-7)
def numerical_gradient_matches(module, rng):
    """numerical_gradient(f, x) returns central differences with the shape of x (here 2-4 by
    2-5) and leaves x unchanged."""
    shape = (int(rng.integers(2, 5)), int(rng.integers(2, 6)))
    x = rng.standard_normal(shape)
    c = rng.standard_normal(shape)
    x_before = x.copy()

    def f(v):
        return float(np.sum(np.sin(v) * c) + 0.5 * np.sum(v**3))

    grad = module.numerical_gradient(f, x)
    return {"grad": grad, "x_unchanged": bool(np.array_equal(x, x_before))}


@check(points=1)
def relative_error_values(module, rng):
    """relative_error(a, b) = ||a - b|| / (||a|| + ||b||) (a float), and 0.0 for two zero arrays."""
    shape = (int(rng.integers(2, 6)), int(rng.integers(1, 4)))
    a = rng.standard_normal(shape)
    b = a + 1e-3 * rng.standard_normal(shape)
    zeros = np.zeros(int(rng.integers(2, 7)))
    return {
        "close": np.asarray(module.relative_error(a, b), dtype=np.float64),
        "far": np.asarray(module.relative_error(a, -a), dtype=np.float64),
        "zeros": np.asarray(module.relative_error(zeros, zeros.copy()), dtype=np.float64),
    }


@check(points=2)
def dense_layer_backward(module, rng):
    """dense_backward(x, W, grad_z) returns (dx, dW, db) = (grad_z W^T, x^T grad_z, sum of grad_z
    over the batch) with shapes (batch, n_in), (n_in, n_out), (n_out,) (batch 3-8, n_in 2-6,
    n_out 2-5)."""
    batch, n_in, n_out = (int(v) for v in rng.integers([3, 2, 2], [9, 7, 6]))
    x = rng.standard_normal((batch, n_in))
    W = rng.standard_normal((n_in, n_out))
    grad_z = rng.standard_normal((batch, n_out))
    dx, dW, db = module.dense_backward(x, W, grad_z)
    return {"dx": dx, "dW": dW, "db": db}


@check(points=4)
def two_layer_gradients(module, rng):
    """two_layer_loss_and_grads(x, y, params) returns the mean binary cross-entropy and the
    gradients {"W1", "b1", "W2", "b2"} (each with its parameter's shape) of the tanh/sigmoid
    network; output delta (sigmoid(z2) - y) / batch, hidden delta (delta W2^T) * (1 - h1^2)
    (batch 5-9, n_in 3-5, hidden 3-6)."""
    batch, n_in, n_hidden = (int(v) for v in rng.integers([5, 3, 3], [10, 6, 7]))
    x = rng.standard_normal((batch, n_in))
    y = rng.integers(0, 2, batch).astype(np.float64)
    loss, grads = module.two_layer_loss_and_grads(x, y, _params(rng, n_in, n_hidden))
    out = {name: grads[name] for name in ("W1", "b1", "W2", "b2")}
    out["loss"] = np.asarray(loss, dtype=np.float64)
    return out

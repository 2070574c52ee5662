"""Chapter 01 helpers: a 2-D loss surface, optimizer trajectories, errata demos.

The optimizers (``course_lib.nn`` or ``keras.optimizers``) move one point ``w: (2,)`` on a 2-D
surface so that their paths can be drawn (document 003, section 4.1 names momentum and Adam).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# An elongated bowl: curvature 1 along w1 and 20 along w2, minimum at (0, 0).
CURVATURE = np.array([1.0, 20.0])
START = np.array([-4.0, 1.5])


def bowl_loss(w: np.ndarray) -> np.ndarray:
    """L(w) = 0.5 (w1^2 + 20 w2^2). w: (..., 2) -> (...): works on grids for contour plots."""
    return 0.5 * np.sum(CURVATURE * np.asarray(w) ** 2, axis=-1)


def bowl_grad(w: np.ndarray) -> np.ndarray:
    """dL/dw = (w1, 20 w2). w: (2,) -> (2,)."""
    return CURVATURE * w


def trajectory(optimizer, steps: int = 50, start: np.ndarray = START,
               grad: Callable[[np.ndarray], np.ndarray] = bowl_grad) -> np.ndarray:
    """Positions visited by a ``course_lib.nn`` optimizer (SGD, Adam, ...), start included.

    The point ``w: (2,)`` is updated in place by ``optimizer.apply_gradients([(grad(w), w)])``.
    Returns (steps + 1, 2).
    """
    w = np.array(start, dtype=np.float64)
    path = [w.copy()]
    for _ in range(steps):
        optimizer.apply_gradients([(grad(w), w)])
        path.append(w.copy())
    return np.array(path)


def keras_trajectory(optimizer, steps: int = 50, start: np.ndarray = START) -> np.ndarray:
    """The same walk with a Keras optimizer: (steps + 1, 2). The gradient comes from bowl_grad."""
    import keras

    w = keras.Variable(np.array(start, dtype="float32"))
    path = [keras.ops.convert_to_numpy(w).astype(np.float64)]
    for _ in range(steps):
        g = bowl_grad(keras.ops.convert_to_numpy(w).astype(np.float64)).astype("float32")
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g), w)])
        path.append(keras.ops.convert_to_numpy(w).astype(np.float64))
    return np.array(path)


def bce_terms_as_written_in_document_001(y: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    """Document 001 section 3's cross-entropy terms, with y_hat a predicted *label* as it says.

    y, y_hat: (batch,). Returns the per-example terms -(y log y_hat + (1 - y) log(1 - y_hat)),
    unclipped: with hard labels in {0, 1} a wrong label gives inf and a right one nan (0 log 0).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(y * np.log(y_hat) + (1 - y) * np.log(1 - y_hat))


def circles(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A toy 2-D data set no single neuron can separate: x (n, 2), y (n,) 1 inside radius 1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, size=(n, 2))
    y = (np.sum(x**2, axis=1) < 1.5).astype(np.int64)
    return x, y

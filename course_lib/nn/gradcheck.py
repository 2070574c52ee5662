"""Central-difference gradient checking in float64 (document 000 §4: backpropagation).

``gradient_check(f, params)`` compares analytic gradients with numerical ones,
(f(theta + h) - f(theta - h)) / 2h entry by entry, and returns the relative error
||g_analytic - g_numeric|| / (||g_analytic|| + ||g_numeric||) per parameter.
Below 1e-6 means the backward pass is right (for float64 and h = 1e-6).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.nn import checks


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences; ``x`` (float64) is perturbed in place and restored."""
    if x.dtype != np.float64:
        raise ValueError(
            f"`x` must be float64 for a gradient check, got {x.dtype} (shape {x.shape})"
        )
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: x must be contiguous
    if not np.shares_memory(flat, x):
        raise ValueError(f"`x` must be a contiguous array, got strides {x.strides}")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = f()
        flat[i] = old - h
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||); 0 when both are zero."""
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def gradient_check(f: Callable[[], tuple[float, dict[str, np.ndarray]]],
                   params: dict[str, np.ndarray], h: float = 1e-6) -> dict[str, float]:
    """Relative error between analytic and numerical gradients, per parameter.

    f: called with no arguments; returns ``(loss, grads)`` where ``grads[name]`` is the analytic
       dloss/dparams[name] for the current values of ``params``.
    params: name -> float64 array, perturbed in place by the check (and restored).
    """
    for name, p in params.items():
        checks.as_float_array(f"params[{name!r}]", p)
    _, analytic = f()
    analytic = {name: np.array(g, dtype=np.float64) for name, g in analytic.items()}
    errors = {}
    for name, p in params.items():
        numeric = numerical_gradient(lambda: float(f()[0]), p, h)
        if analytic[name].shape != p.shape:
            raise ValueError(
                f"grads[{name!r}] has shape {analytic[name].shape}, params[{name!r}] {p.shape}"
            )
        errors[name] = relative_error(analytic[name], numeric)
    return errors


def layer_gradient_check(layer, x: np.ndarray, *, training: bool = False, seed: int = 0,
                         h: float = 1e-6) -> dict[str, float]:
    """Gradient check of a layer (float64) for its parameters and its input ``"x"``.

    The scalar checked is sum(forward(x) * r) for a fixed random r, so dL/dout = r.
    Layers with random behaviour (Dropout) must draw the same mask on every call: pass a
    layer with a fixed ``seed``; integer inputs (Embedding) get no ``"x"`` entry.
    """
    rng = np.random.default_rng(seed)
    out = layer.forward(x, training=training)
    r = rng.standard_normal(out.shape)
    check_input = np.issubdtype(x.dtype, np.floating)

    def f():
        if hasattr(layer, "reset_rng"):
            layer.reset_rng()
        y = layer.forward(x, training=training)
        grad_x = layer.backward(r)
        grads = dict(layer.grads)
        if check_input:
            grads["x"] = grad_x
        return float(np.sum(y * r)), grads

    params = dict(layer.params)
    if check_input:
        params["x"] = x
    return gradient_check(f, params, h)

"""Activation functions and their derivatives (document 000 §4, document 001 §3).

Every function works elementwise on arrays of any shape, except softmax, which normalises
along ``axis`` (default: the last one, the class axis of ``(batch, classes)`` scores).
The ``*_grad`` functions return the elementwise derivative f'(x); ``softmax_backward``
returns the vector-Jacobian product, because softmax is not elementwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2: no overflow for large |x|."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """sigma'(x) = sigma(x) (1 - sigma(x))."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent."""
    return np.tanh(x)


def tanh_grad(x: np.ndarray) -> np.ndarray:
    """tanh'(x) = 1 - tanh(x)^2."""
    return 1.0 - np.tanh(x) ** 2


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0)."""
    return np.maximum(x, 0)


def relu_grad(x: np.ndarray) -> np.ndarray:
    """1 where x > 0, else 0 (the derivative at 0 is taken as 0, as in Keras)."""
    return (x > 0).astype(np.result_type(x, np.float32))


def leaky_relu(x: np.ndarray, negative_slope: float = 0.2) -> np.ndarray:
    """x for x > 0, negative_slope * x otherwise (Keras ``activations.leaky_relu`` default 0.2)."""
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_grad(x: np.ndarray, negative_slope: float = 0.2) -> np.ndarray:
    """1 for x > 0, negative_slope otherwise."""
    return np.where(x > 0, 1.0, negative_slope).astype(np.result_type(x, np.float32))


def linear(x: np.ndarray) -> np.ndarray:
    """Identity."""
    return x


def linear_grad(x: np.ndarray) -> np.ndarray:
    """Derivative of the identity: ones."""
    return np.ones_like(x)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)) along ``axis``; the maximum is subtracted first (stable for
    |x| ~ 1e4)."""
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(x)) computed as x - logsumexp(x), without taking log of a small number."""
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def softmax_backward(s: np.ndarray, grad_out: np.ndarray, axis: int = -1) -> np.ndarray:
    """Vector-Jacobian product of softmax: given s = softmax(x) and dL/ds, return dL/dx.

    dL/dx_i = s_i (g_i - sum_j g_j s_j).
    """
    return s * (grad_out - np.sum(grad_out * s, axis=axis, keepdims=True))


# name -> (function, elementwise derivative); softmax is handled separately by the layers.
ELEMENTWISE: dict[str, tuple[Callable, Callable]] = {
    "linear": (linear, linear_grad),
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "leaky_relu": (leaky_relu, leaky_relu_grad),
}

NAMES = (*ELEMENTWISE, "softmax")


def get(name: str | None) -> str:
    """Validate an activation name (``None`` means ``"linear"``) and return it."""
    name = "linear" if name is None else name
    if name not in NAMES:
        raise ValueError(f"`activation` must be one of {list(NAMES)}, got {name!r}")
    return name

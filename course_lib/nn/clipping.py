"""Gradient clipping (used against exploding gradients in recurrent networks, document 004 §4)."""

from __future__ import annotations

import numpy as np


def global_norm(grads: list[np.ndarray]) -> float:
    """sqrt(sum of squares of all entries of all arrays)."""
    return float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)))


def clip_by_global_norm(grads: list[np.ndarray], max_norm: float) -> float:
    """Scale all ``grads`` in place by max_norm / global_norm when the norm exceeds ``max_norm``
    (as ``keras.optimizers.*(global_clipnorm=...)``). Returns the norm before clipping."""
    if max_norm <= 0:
        raise ValueError(f"`max_norm` must be positive, got {max_norm!r}")
    norm = global_norm(grads)
    if norm > max_norm:
        for g in grads:
            g *= g.dtype.type(max_norm / norm)
    return norm


def clip_by_norm(grad: np.ndarray, max_norm: float) -> None:
    """Scale one array in place so that its norm is at most ``max_norm`` (Keras ``clipnorm``)."""
    clip_by_global_norm([grad], max_norm)

"""Reference solution for exercises/ex05_recurrent_networks.py: an RNN and BPTT by hand.

h_t = tanh(x_t Wx + h_{t-1} Wh + b), one example per row; x_t (batch, n_in), h_t (batch, hidden).
"""

import numpy as np


def rnn_step_forward(
    x_t: np.ndarray, h_prev: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, tuple]:
    """One step: h_t = tanh(x_t Wx + h_prev Wh + b).

    x_t: (batch, n_in), h_prev: (batch, hidden), Wx: (n_in, hidden), Wh: (hidden, hidden),
    b: (hidden,). Returns (h_t, cache): h_t (batch, hidden) and whatever rnn_step_backward needs.
    """
    h_t = np.tanh(x_t @ Wx + h_prev @ Wh + b)
    return h_t, (x_t, h_prev, Wx, Wh, h_t)


def rnn_step_backward(
    dh_t: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of one step, given dh_t = dL/dh_t (batch, hidden) and the step's cache.

    Returns (dx_t, dh_prev, dWx, dWh, db) with shapes (batch, n_in), (batch, hidden),
    (n_in, hidden), (hidden, hidden), (hidden,).
    """
    x_t, h_prev, Wx, Wh, h_t = cache
    da = dh_t * (1.0 - h_t**2)          # through tanh
    return da @ Wx.T, da @ Wh.T, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


def rnn_forward(
    x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, list]:
    """The whole sequence: x (batch, steps, n_in), h0 (batch, hidden), weights as above.

    Returns (h, cache): h (batch, steps, hidden) with h[:, t] the state after step t + 1.
    """
    batch, steps, _ = x.shape
    h = np.zeros((batch, steps, Wh.shape[0]))
    caches = []
    h_t = h0
    for t in range(steps):
        h_t, step_cache = rnn_step_forward(x[:, t], h_t, Wx, Wh, b)
        h[:, t] = h_t
        caches.append(step_cache)
    return h, caches


def rnn_backward(
    dh: np.ndarray, cache: list
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time. dh (batch, steps, hidden): dL/dh[:, t] from above.

    Returns (dx, dh0, dWx, dWh, db) with shapes (batch, steps, n_in), (batch, hidden),
    (n_in, hidden), (hidden, hidden), (hidden,).
    """
    x_0, _, Wx, Wh, _ = cache[0]
    batch, steps, _ = dh.shape
    dx = np.zeros((batch, steps, x_0.shape[1]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[0])
    dh_next = np.zeros((batch, Wh.shape[0]))      # what flows back from step t + 1
    for t in reversed(range(steps)):
        dx[:, t], dh_next, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dh_next, cache[t])
        dWx += dWx_t                              # shared weights: sum over the steps
        dWh += dWh_t
        db += db_t
    return dx, dh_next, dWx, dWh, db


def clip_by_global_norm(
    grads: dict[str, np.ndarray], max_norm: float
) -> tuple[dict[str, np.ndarray], float]:
    """Gradient clipping by the global norm (as Keras's ``global_clipnorm``).

    Returns (clipped, norm): a new dict with the same keys and shapes, and the norm before
    clipping (a float). The arrays in grads are not changed.
    """
    norm = float(np.sqrt(sum(np.sum(g**2) for g in grads.values())))
    scale = max_norm / norm if norm > max_norm else 1.0
    return {name: g * scale for name, g in grads.items()}, norm

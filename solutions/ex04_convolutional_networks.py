"""Reference solution for exercises/ex04_convolutional_networks.py: convolution and max pooling,
forward and backward, in NumPy.

Layout as Keras: images x (batch, height, width, channels), kernels (kh, kw, channels_in,
filters), biases (filters,). The convolution is the cross-correlation every framework computes:
out[n, i, j, f] = bias[f] + sum_{u, v, c} kernel[u, v, c, f] * x_padded[n, i*s + u, j*s + v, c].
"""

import math

import numpy as np


def padding_amounts(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """Zeros added (before, after) along one axis (given: nothing to do here).

    "valid": none. "same" (TensorFlow/Keras): out = ceil(size / stride) outputs, total padding
    max((out - 1) * stride + kernel - size, 0), the odd one after (bottom/right).
    """
    if padding == "valid":
        return 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def output_size(size: int, kernel: int, stride: int = 1, padding: str = "valid") -> int:
    """Number of outputs along one axis: "valid": floor((size - kernel) / stride) + 1;
    "same": ceil(size / stride)."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - kernel) // stride + 1


def _pad(x: np.ndarray, kh: int, kw: int, stride: int, padding: str) -> np.ndarray:
    top, bottom = padding_amounts(x.shape[1], kh, stride, padding)
    left, right = padding_amounts(x.shape[2], kw, stride, padding)
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def _window(a: np.ndarray, u: int, v: int, oh: int, ow: int, stride: int) -> np.ndarray:
    """The (batch, oh, ow, c) pixels that kernel entry (u, v) meets, as a strided view of a."""
    return a[:, u:u + stride * (oh - 1) + 1:stride, v:v + stride * (ow - 1) + 1:stride, :]


def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int = 1,
                   padding: str = "valid") -> np.ndarray:
    """x: (batch, h, w, cin); kernel: (kh, kw, cin, filters); bias: (filters,).
    Returns (batch, out_h, out_w, filters)."""
    kh, kw, _, filters = kernel.shape
    oh = output_size(x.shape[1], kh, stride, padding)
    ow = output_size(x.shape[2], kw, stride, padding)
    xp = _pad(x, kh, kw, stride, padding)
    out = np.zeros((x.shape[0], oh, ow, filters)) + bias
    for u in range(kh):
        for v in range(kw):
            out += _window(xp, u, v, oh, ow, stride) @ kernel[u, v]
    return out


def conv2d_backward(x: np.ndarray, kernel: np.ndarray, grad_out: np.ndarray, stride: int = 1,
                    padding: str = "valid") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss L given grad_out = dL/dout (batch, out_h, out_w, filters).
    Returns (dx, dkernel, dbias) with the shapes of x, kernel and the bias (filters,)."""
    kh, kw = kernel.shape[:2]
    oh, ow = grad_out.shape[1:3]
    xp = _pad(x, kh, kw, stride, padding)
    dxp = np.zeros(xp.shape)
    dkernel = np.zeros(kernel.shape)
    for u in range(kh):
        for v in range(kw):
            window = _window(xp, u, v, oh, ow, stride)
            dkernel[u, v] = np.einsum("nijc,nijf->cf", window, grad_out)
            _window(dxp, u, v, oh, ow, stride)[...] += grad_out @ kernel[u, v].T
    top, _ = padding_amounts(x.shape[1], kh, stride, padding)
    left, _ = padding_amounts(x.shape[2], kw, stride, padding)
    dx = dxp[:, top:top + x.shape[1], left:left + x.shape[2], :]
    return dx, dkernel, grad_out.sum(axis=(0, 1, 2))


def maxpool_forward(x: np.ndarray, pool: int = 2, stride: int | None = None) -> np.ndarray:
    """Max pooling with "valid" windows of pool x pool pixels, stride ``stride`` (None: pool).
    x: (batch, h, w, c) -> (batch, out_h, out_w, c)."""
    stride = pool if stride is None else stride
    oh, ow = output_size(x.shape[1], pool, stride), output_size(x.shape[2], pool, stride)
    out = np.full((x.shape[0], oh, ow, x.shape[3]), -np.inf)
    for u in range(pool):
        for v in range(pool):
            out = np.maximum(out, _window(x, u, v, oh, ow, stride))
    return out


def maxpool_backward(x: np.ndarray, grad_out: np.ndarray, pool: int = 2,
                     stride: int | None = None) -> np.ndarray:
    """dL/dx from grad_out (batch, out_h, out_w, c): each window's gradient goes to the position
    of its maximum (the first in row-major window order on ties); overlapping windows add up.
    Returns an array of x's shape."""
    stride = pool if stride is None else stride
    oh, ow = grad_out.shape[1:3]
    out = maxpool_forward(x, pool, stride)
    dx = np.zeros(x.shape)
    taken = np.zeros(out.shape, dtype=bool)
    for u in range(pool):
        for v in range(pool):
            winner = (_window(x, u, v, oh, ow, stride) == out) & ~taken
            taken |= winner
            _window(dx, u, v, oh, ow, stride)[...] += np.where(winner, grad_out, 0.0)
    return dx

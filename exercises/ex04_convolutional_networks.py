"""Exercise 04 (chapter 04): convolution and max pooling, forward and backward, in NumPy.

Layout as Keras: images x (batch, height, width, channels), kernels (kh, kw, channels_in,
filters), biases (filters,). The convolution is the cross-correlation every framework computes:
out[n, i, j, f] = bias[f] + sum_{u, v, c} kernel[u, v, c, f] * x_padded[n, i*s + u, j*s + v, c].

Replace every `raise NotImplementedError` with your code (plain NumPy; loops are fine: the checks
use small arrays). Check your work from a notebook with `course_lib.grading.check("ex04")`, or
from a terminal with `course grade ex04`. Shapes are given in each docstring: match them exactly.
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
    raise NotImplementedError


def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int = 1,
                   padding: str = "valid") -> np.ndarray:
    """x: (batch, h, w, cin); kernel: (kh, kw, cin, filters); bias: (filters,).
    Returns (batch, out_h, out_w, filters), out_h = output_size(h, kh, stride, padding).

    Hint: pad x with padding_amounts (np.pad) first; then out[n, i, j, f] is the sum of
    x_padded[n, i*s:i*s+kh, j*s:j*s+kw, :] * kernel[:, :, :, f], plus bias[f].
    """
    raise NotImplementedError


def conv2d_backward(x: np.ndarray, kernel: np.ndarray, grad_out: np.ndarray, stride: int = 1,
                    padding: str = "valid") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss L given grad_out = dL/dout (batch, out_h, out_w, filters).
    Returns (dx, dkernel, dbias) with the shapes of x, kernel and the bias (filters,).

    Hint: every output pixel out[n, i, j, f] used the window x_padded[n, i*s:i*s+kh,
    j*s:j*s+kw, :] and the kernel[:, :, :, f]. So grad_out[n, i, j, f] times that window adds to
    dkernel[:, :, :, f], times kernel[:, :, :, f] adds to the same window of dx_padded, and
    dbias[f] is the sum of grad_out[..., f]. Finally cut the padding off dx_padded.
    """
    raise NotImplementedError


def maxpool_forward(x: np.ndarray, pool: int = 2, stride: int | None = None) -> np.ndarray:
    """Max pooling with "valid" windows of pool x pool pixels, stride ``stride`` (None: pool).
    x: (batch, h, w, c) -> (batch, out_h, out_w, c), out_h = output_size(h, pool, stride):
    out[n, i, j, c] = max of x[n, i*s:i*s+pool, j*s:j*s+pool, c]."""
    raise NotImplementedError


def maxpool_backward(x: np.ndarray, grad_out: np.ndarray, pool: int = 2,
                     stride: int | None = None) -> np.ndarray:
    """dL/dx from grad_out (batch, out_h, out_w, c): each window's gradient goes to the position
    of its maximum (the first in row-major window order on ties); overlapping windows add up.
    Returns an array of x's shape."""
    raise NotImplementedError

"""Flatten and ZeroPadding2D (NHWC, as Keras)."""

from __future__ import annotations

import numpy as np

from course_lib.nn.layers.base import Layer


class Flatten(Layer):
    """Reshape each sample to a vector: (batch, d1, d2, ...) -> (batch, d1 * d2 * ...), row-major
    as Keras (NHWC order). No weights; backward reshapes the gradient back."""

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def _forward(self, x, training):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def _backward(self, grad_out):
        return grad_out.reshape(self._shape)


def _padding_amounts(padding) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras's forms: p, (ph, pw) or ((top, bottom), (left, right)) -> ((t, b), (l, r))."""
    def amount(value) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"`padding` must hold non-negative integers, got {padding!r}")
        return int(value)

    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p = amount(padding)
        return (p, p), (p, p)
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        if all(isinstance(v, (tuple, list)) and len(v) == 2 for v in padding):
            (t, b), (left, right) = padding
            return (amount(t), amount(b)), (amount(left), amount(right))
        ph, pw = (amount(v) for v in padding)
        return (ph, ph), (pw, pw)
    raise ValueError("`padding` must be an int, a pair of ints or a pair of pairs "
                     f"((top, bottom), (left, right)), got {padding!r}")


class ZeroPadding2D(Layer):
    """Zeros around each image: (batch, h, w, c) -> (batch, t + h + b, l + w + r, c).

    padding: p (every side), (ph, pw) (top and bottom ph, left and right pw) or
    ((top, bottom), (left, right)), as Keras. No weights; backward cuts the border off.
    """

    input_ndim = 4

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = _padding_amounts(padding)

    def output_shape(self, input_shape):
        (t, b), (left, right) = self.padding
        return (input_shape[0] + t + b, input_shape[1] + left + right, input_shape[2])

    def _forward(self, x, training):
        return np.pad(x, ((0, 0), *self.padding, (0, 0)))

    def _backward(self, grad_out):
        (t, b), (left, right) = self.padding
        return grad_out[:, t:grad_out.shape[1] - b, left:grad_out.shape[2] - right, :]

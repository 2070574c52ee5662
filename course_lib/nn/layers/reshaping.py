"""Flatten: (batch, d1, d2, ...) -> (batch, d1 * d2 * ...), as Keras (row-major, NHWC order)."""

from __future__ import annotations

import numpy as np

from course_lib.nn.layers.base import Layer


class Flatten(Layer):
    """Reshape each sample to a vector. No weights; backward reshapes the gradient back."""

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def _forward(self, x, training):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def _backward(self, grad_out):
        return grad_out.reshape(self._shape)

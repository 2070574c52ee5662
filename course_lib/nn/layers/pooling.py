"""Max pooling, NHWC (document 003 §3).

Each output pixel is the maximum of its pool window; backward sends the gradient to the
position of that maximum (the first one on ties, in row-major window order). Vectorised as a
loop over the ph * pw window offsets, each a strided slice of the whole batch.
"""

from __future__ import annotations

import numpy as np

from course_lib.nn import checks
from course_lib.nn.layers.base import Layer
from course_lib.nn.layers.conv import _pair, conv_output_size, window_offsets


class MaxPool2D(Layer):
    """MaxPool2D(pool_size=2, strides=None (= pool_size), padding="valid").

    x: (batch, h, w, c) -> (batch, out_h, out_w, c); "same" padding as TensorFlow (padded
    pixels never win the max). No weights.
    """

    input_ndim = 4

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair("pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _pair("strides", strides)
        checks.check_choice("padding", padding, ("valid", "same"))
        self.padding = padding

    def build(self, input_shape):
        super().build(input_shape)
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        oh, top, bottom = conv_output_size(input_shape[0], ph, sh, self.padding)
        ow, left, right = conv_output_size(input_shape[1], pw, sw, self.padding)
        self._pads = ((0, 0), (top, bottom), (left, right), (0, 0))
        self._out_hw = (oh, ow)

    def output_shape(self, input_shape):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return (conv_output_size(input_shape[0], ph, sh, self.padding)[0],
                conv_output_size(input_shape[1], pw, sw, self.padding)[0], input_shape[2])

    def _forward(self, x, training):
        ph, pw = self.pool_size
        padded = any(p != (0, 0) for p in self._pads)
        xp = np.pad(x, self._pads, constant_values=-np.inf) if padded else x
        out = None
        argmax = np.zeros((x.shape[0], *self._out_hw, x.shape[3]), dtype=np.int16)
        for i, j, view in window_offsets(xp, ph, pw, self.strides, self._out_hw):
            if out is None:
                out = view.copy()
                continue
            better = view > out
            np.copyto(out, view, where=better)
            argmax[better] = i * pw + j
        self._argmax = argmax
        self._xp_shape = xp.shape
        return out

    def _backward(self, grad_out):
        ph, pw = self.pool_size
        dxp = np.zeros(self._xp_shape, dtype=grad_out.dtype)
        for i, j, view in window_offsets(dxp, ph, pw, self.strides, self._out_hw):
            view += np.where(self._argmax == i * pw + j, grad_out, 0)
        (_, _), (top, bottom), (left, right), _ = self._pads
        return dxp[:, top:dxp.shape[1] - bottom, left:dxp.shape[2] - right, :]


MaxPooling2D = MaxPool2D

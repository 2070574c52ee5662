"""2-D convolution, NHWC, vectorised with im2col (document 003 §3-§4).

x: (batch, height, width, channels_in); kernel: (kh, kw, channels_in, filters); bias: (filters,)
-- Keras's layout. Forward: gather every kh x kw window into one row of a matrix ``cols``
(batch * out_h * out_w, kh * kw * cin) and multiply by the kernel as a (kh * kw * cin, filters)
matrix. Backward: kernel gradient cols^T @ g; input gradient ("col2im"): for each kernel
offset (i, j), g @ kernel[i, j]^T is added back into the input pixels that offset met (one
matrix product and one strided addition per offset).

Padding "same" follows TensorFlow: out = ceil(in / stride), total padding
max((out - 1) * stride + k - in, 0), with the odd pixel on the bottom/right.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from course_lib.nn import activations, checks
from course_lib.nn.layers.base import Layer, glorot_uniform
from course_lib.nn.layers.dense import _activation_backward, _activation_forward


def _pair(name: str, value) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"`{name}` must be an int or a pair of ints, got {value!r}")
    return (checks.check_positive_int(name, pair[0]), checks.check_positive_int(name, pair[1]))


def conv_output_size(size: int, k: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(output size, padding before, padding after) along one axis, as TensorFlow computes them."""
    if padding == "valid":
        if size < k:
            raise ValueError(
                f"input size {size} is smaller than the window {k} with padding 'valid'"
            )
        return (size - k) // stride + 1, 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2, total - total // 2


def window_offsets(x_padded: np.ndarray, kh: int, kw: int, stride: tuple[int, int],
                   out_hw: tuple[int, int]):
    """Yield (i, j, view): for each kernel offset, the (batch, out_h, out_w, c) strided view of
    the input pixels that meet kernel entry (i, j)."""
    sh, sw = stride
    oh, ow = out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, x_padded[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]


def im2col(x_padded: np.ndarray, kh: int, kw: int, stride: tuple[int, int],
           out_hw: tuple[int, int]) -> np.ndarray:
    """Every kh x kw window of x_padded (batch, h, w, c) as one row: (batch * out_h * out_w,
    kh * kw * c), entries in the kernel's (kh, kw, c) order."""
    n, c = x_padded.shape[0], x_padded.shape[3]
    oh, ow = out_hw
    if c >= 4:  # one copy of all windows (channels innermost): fastest for several channels
        windows = sliding_window_view(x_padded, (kh, kw), axis=(1, 2))  # (n, h', w', c, kh, kw)
        windows = windows[:, ::stride[0], ::stride[1]][:, :oh, :ow].transpose(0, 1, 2, 4, 5, 3)
        return np.ascontiguousarray(windows).reshape(n * oh * ow, kh * kw * c)
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x_padded.dtype)  # one copy per kernel offset
    for i, j, view in window_offsets(x_padded, kh, kw, stride, out_hw):
        cols[:, :, :, i, j, :] = view
    return cols.reshape(n * oh * ow, kh * kw * c)


class Conv2D(Layer):
    """Conv2D(filters, kernel_size, strides=1, padding="valid", activation=None).

    x: (batch, h, w, cin) -> (batch, out_h, out_w, filters). Weights (Keras order):
    [kernel (kh, kw, cin, filters), bias (filters,)].
    """

    input_ndim = 4
    weight_names = ("kernel", "bias")

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 activation: str | None = None, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = checks.check_positive_int("filters", filters)
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.strides = _pair("strides", strides)
        checks.check_choice("padding", padding, ("valid", "same"))
        self.padding = padding
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        if not use_bias:
            self.weight_names = ("kernel",)
        self._ones: np.ndarray | None = None  # (batch * out_h * out_w,), for the bias gradient

    def build(self, input_shape):
        super().build(input_shape)
        kh, kw = self.kernel_size
        cin = input_shape[-1]
        self.params["kernel"] = glorot_uniform(
            self.rng, (kh, kw, cin, self.filters), kh * kw * cin, kh * kw * self.filters, self.dtype
        )
        if self.use_bias:
            self.params["bias"] = np.zeros(self.filters, self.dtype)
        self._geometry(input_shape)

    def _geometry(self, input_shape):
        h, w = input_shape[0], input_shape[1]
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        oh, top, bottom = conv_output_size(h, kh, sh, self.padding)
        ow, left, right = conv_output_size(w, kw, sw, self.padding)
        self._pads = ((0, 0), (top, bottom), (left, right), (0, 0))
        self._out_hw = (oh, ow)

    def output_shape(self, input_shape):
        h, w = input_shape[0], input_shape[1]
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        return (conv_output_size(h, kh, sh, self.padding)[0],
                conv_output_size(w, kw, sw, self.padding)[0], self.filters)

    def _forward(self, x, training):
        kh, kw = self.kernel_size
        n, cin = x.shape[0], x.shape[3]
        oh, ow = self._out_hw
        xp = np.pad(x, self._pads) if any(p != (0, 0) for p in self._pads) else x
        self._xp_shape = xp.shape
        self._cols = im2col(xp, kh, kw, self.strides, self._out_hw)
        z = self._cols @ self.params["kernel"].reshape(kh * kw * cin, self.filters)
        if self.use_bias:
            z += self.params["bias"]
        z = z.reshape(n, oh, ow, self.filters)
        if self.activation == "relu":  # in place; relu'(z) = (z > 0) = (out > 0)
            self._z = self._out = np.maximum(z, 0, out=z)
        else:
            self._z = z
            self._out = _activation_forward(self.activation, z)
        return self._out

    def _backward(self, grad_out):
        g = _activation_backward(self.activation, self._z, self._out, grad_out)
        g2 = g.reshape(-1, self.filters)
        kernel = self.params["kernel"]
        self.grads["kernel"][...] = (self._cols.T @ g2).reshape(kernel.shape)
        if self.use_bias:  # a sum over rows, as a matrix product: much faster than np.sum
            if self._ones is None or len(self._ones) != len(g2):
                self._ones = np.ones(len(g2), dtype=g2.dtype)
            np.matmul(self._ones, g2, out=self.grads["bias"])
        if not self.compute_input_grad:
            return None
        # col2im: each kernel entry (i, j) sends g @ kernel[i, j]^T back to the input pixels
        # it met, one matrix product and one strided addition per kernel offset.
        n, oh, ow = g.shape[:3]
        dxp = np.zeros(self._xp_shape, dtype=g.dtype)
        for i, j, view in window_offsets(dxp, *self.kernel_size, self.strides, self._out_hw):
            view += (g2 @ kernel[i, j].T).reshape(n, oh, ow, -1)
        (_, _), (top, bottom), (left, right), _ = self._pads
        return dxp[:, top:dxp.shape[1] - bottom, left:dxp.shape[2] - right, :]

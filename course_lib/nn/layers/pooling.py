"""Pooling layers, NHWC (document 003 §2.2, §4.2): max, average and global average pooling.

- ``MaxPool2D``: each output pixel is the maximum of its pool window; backward sends the
  gradient to the position of that maximum (the first one on ties, in row-major window order).
- ``AveragePooling2D``: the mean of the window; with "same" padding the padded pixels are not
  counted (as TensorFlow); backward spreads the gradient evenly over the window.
- ``GlobalAveragePooling2D``: the mean of each channel over the whole image, (batch, c).

Two code paths give the same results. Windows that tile the image (strides == pool_size, no
padding: the usual pool 2, stride 2) need no padded copy and no arg-max map: max pooling takes
the maximum of the ph * pw strided slices (one per window offset) and finds the winners again
in backward; average pooling is a reshape (batch, out_h, ph, out_w, pw, c) and a mean. Other
windows (overlapping, or padded) loop over the window offsets too, on a padded copy.
"""

from __future__ import annotations

import numpy as np

from course_lib.nn import checks
from course_lib.nn.layers.base import Layer
from course_lib.nn.layers.conv import _pair, conv_output_size, window_offsets


class _Pool2D(Layer):
    """Window geometry shared by max and average pooling (no weights)."""

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
        self._tiled = self.strides == self.pool_size and (top, bottom, left, right) == (0,) * 4

    def output_shape(self, input_shape):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return (conv_output_size(input_shape[0], ph, sh, self.padding)[0],
                conv_output_size(input_shape[1], pw, sw, self.padding)[0], input_shape[2])

    def _tiles(self, x: np.ndarray) -> np.ndarray:
        """(batch, oh, ph, ow, pw, c) view of the windows (rows/columns past the last one cut)."""
        (ph, pw), (oh, ow) = self.pool_size, self._out_hw
        n, c = x.shape[0], x.shape[3]
        return x[:, :oh * ph, :ow * pw].reshape(n, oh, ph, ow, pw, c)

    def _untile(self, d6: np.ndarray, x_shape: tuple) -> np.ndarray:
        """The input gradient from window gradients (batch, oh, ph, ow, pw, c)."""
        (ph, pw), (oh, ow) = self.pool_size, self._out_hw
        d = d6.reshape(x_shape[0], oh * ph, ow * pw, x_shape[3])
        if d.shape == tuple(x_shape):
            return d
        dx = np.zeros(x_shape, dtype=d6.dtype)  # cut rows/columns get no gradient
        dx[:, :oh * ph, :ow * pw] = d
        return dx

    def _unpad(self, dxp: np.ndarray) -> np.ndarray:
        (_, _), (top, bottom), (left, right), _ = self._pads
        return dxp[:, top:dxp.shape[1] - bottom, left:dxp.shape[2] - right, :]


class MaxPool2D(_Pool2D):
    """MaxPool2D(pool_size=2, strides=None (= pool_size), padding="valid").

    x: (batch, h, w, c) -> (batch, out_h, out_w, c); "same" padding as TensorFlow (padded
    pixels never win the max). No weights.
    """

    def _forward(self, x, training):
        self._x_shape = x.shape
        ph, pw = self.pool_size
        if self._tiled:  # the maximum of ph * pw strided slices, one per window offset
            views = [view for _, _, view in window_offsets(x, ph, pw, self.strides,
                                                             self._out_hw)]
            out = views[0].copy()
            for view in views[1:]:
                np.maximum(out, view, out=out)
            self._x, self._out = x, out
            return out
        xp = np.pad(x, self._pads, constant_values=-np.inf) if self.padding == "same" else x
        views = window_offsets(xp, ph, pw, self.strides, self._out_hw)
        out = next(views)[2].copy()
        argmax = np.zeros(out.shape, dtype=np.min_scalar_type(ph * pw - 1))
        for i, j, view in views:
            better = view > out
            np.maximum(out, view, out=out)
            np.copyto(argmax, i * pw + j, where=better)
        self._argmax = argmax
        self._xp_shape = xp.shape
        return out

    def _backward(self, grad_out):
        ph, pw = self.pool_size
        if self._tiled:
            # Winners: entries equal to their window's max, keeping the first one on ties. The
            # windows tile the image: each pixel gets a value, except rows/columns cut off.
            (oh, ow), (h, w) = self._out_hw, self._x_shape[1:3]
            cut = (oh * ph, ow * pw) != (h, w)
            dx = (np.zeros if cut else np.empty)(self._x_shape, dtype=grad_out.dtype)
            seen = None
            offsets = window_offsets(self._x, ph, pw, self.strides, self._out_hw)
            targets = window_offsets(dx, ph, pw, self.strides, self._out_hw)
            for (_, _, view), (_, _, target) in zip(offsets, targets, strict=True):
                winner = view == self._out
                if seen is None:
                    seen = winner.copy()
                else:
                    np.greater(winner, seen, out=winner)  # winner and not seen before
                    seen |= winner
                np.multiply(grad_out, winner, out=target)  # faster than np.where
            return dx
        dxp = np.zeros(self._xp_shape, dtype=grad_out.dtype)
        for i, j, view in window_offsets(dxp, ph, pw, self.strides, self._out_hw):
            view += np.where(self._argmax == i * pw + j, grad_out, 0)
        return self._unpad(dxp)


class AveragePooling2D(_Pool2D):
    """AveragePooling2D(pool_size=2, strides=None (= pool_size), padding="valid").

    x: (batch, h, w, c) -> (batch, out_h, out_w, c): the mean of each window; with "same"
    padding the mean is over the window's real pixels only (TensorFlow's rule). No weights.
    """

    def build(self, input_shape):
        super().build(input_shape)
        if not self._tiled:  # real pixels per window: (out_h, out_w, 1)
            ph, pw = self.pool_size
            ones = np.pad(np.ones((1, *input_shape[:2], 1)), self._pads)
            counts = sum(view for _, _, view in
                         window_offsets(ones, ph, pw, self.strides, self._out_hw))
            self._counts = counts[0].astype(self.dtype)

    def _forward(self, x, training):
        self._x_shape = x.shape
        if self._tiled:
            return self._tiles(x).mean(axis=(2, 4), dtype=x.dtype)
        ph, pw = self.pool_size
        xp = np.pad(x, self._pads) if self.padding == "same" else x
        total = np.zeros((x.shape[0], *self._out_hw, x.shape[3]), dtype=x.dtype)
        for _, _, view in window_offsets(xp, ph, pw, self.strides, self._out_hw):
            total += view
        self._xp_shape = xp.shape
        return total / self._counts

    def _backward(self, grad_out):
        ph, pw = self.pool_size
        if self._tiled:
            share = grad_out / grad_out.dtype.type(ph * pw)
            d6 = np.broadcast_to(share[:, :, None, :, None, :],
                                 (share.shape[0], share.shape[1], ph, share.shape[2], pw,
                                  share.shape[3]))
            return self._untile(np.ascontiguousarray(d6), self._x_shape)
        share = grad_out / self._counts
        dxp = np.zeros(self._xp_shape, dtype=grad_out.dtype)
        for _, _, view in window_offsets(dxp, ph, pw, self.strides, self._out_hw):
            view += share
        return self._unpad(dxp)


class GlobalAveragePooling2D(Layer):
    """The mean of each channel over height and width: (batch, h, w, c) -> (batch, c).

    Backward gives every pixel of channel k the share dL/dout_k / (h * w). No weights.
    """

    input_ndim = 4

    def output_shape(self, input_shape):
        return (input_shape[2],)

    def _forward(self, x, training):
        self._x_shape = x.shape
        return x.mean(axis=(1, 2), dtype=x.dtype)

    def _backward(self, grad_out):
        n, h, w, c = self._x_shape
        dx = np.empty(self._x_shape, dtype=grad_out.dtype)
        dx[...] = (grad_out / grad_out.dtype.type(h * w))[:, None, None, :]
        return dx


MaxPooling2D = MaxPool2D
AvgPool2D = AveragePooling2D

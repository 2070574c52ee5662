"""Fully connected layer and activation layer (document 000 §4, document 001 §3).

Dense: out = act(x @ kernel + bias), x: (batch, in) (or (batch, steps, in): applied per step),
kernel: (in, units), bias: (units,) -- Keras's layout.
"""

from __future__ import annotations

import numpy as np

from course_lib.nn import activations, checks
from course_lib.nn.layers.base import Layer, glorot_uniform


def _activation_forward(name: str, z: np.ndarray) -> np.ndarray:
    if name == "softmax":
        return activations.softmax(z)
    if name == "linear":
        return z
    return activations.ELEMENTWISE[name][0](z)


def _activation_backward(name: str, z: np.ndarray, out: np.ndarray,
                         grad_out: np.ndarray) -> np.ndarray:
    """dL/dz from dL/dout, given the pre-activation z and the activation output."""
    if name == "linear":
        return grad_out
    if name == "relu":
        return grad_out * (z > 0)
    if name == "sigmoid":
        return grad_out * out * (1 - out)
    if name == "tanh":
        return grad_out * (1 - out * out)
    if name == "softmax":
        return activations.softmax_backward(out, grad_out)
    return grad_out * activations.ELEMENTWISE[name][1](z)


class Dense(Layer):
    """Fully connected layer: out = activation(x @ kernel + bias).

    units: output size. activation: None/"linear", "relu", "sigmoid", "tanh", "leaky_relu",
    "softmax". Weights (Keras order): [kernel (in, units), bias (units,)]; kernel init
    Glorot-uniform, bias zeros (Keras defaults).
    """

    input_ndim = (2, 3)
    weight_names = ("kernel", "bias")
    variable_steps = True

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.units = checks.check_positive_int("units", units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        if not use_bias:
            self.weight_names = ("kernel",)

    def build(self, input_shape):
        super().build(input_shape)
        fan_in = input_shape[-1]
        self.params["kernel"] = glorot_uniform(
            self.rng, (fan_in, self.units), fan_in, self.units, self.dtype
        )
        if self.use_bias:
            self.params["bias"] = np.zeros(self.units, self.dtype)

    def output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def _forward(self, x, training):
        self._x = x
        z = x @ self.params["kernel"]
        if self.use_bias:
            z += self.params["bias"]
        self._z = z
        self._out = z if self.activation == "linear" else _activation_forward(self.activation, z)
        return self._out

    def _backward(self, grad_out):
        g = _activation_backward(self.activation, self._z, self._out, grad_out)
        x = self._x
        if x.ndim == 3:
            x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
        else:
            x2, g2 = x, g
        np.matmul(x2.T, g2, out=self.grads["kernel"])
        if self.use_bias:
            np.sum(g2, axis=0, out=self.grads["bias"])
        if not self.compute_input_grad:
            return None
        return g @ self.params["kernel"].T


class Activation(Layer):
    """Applies an activation elementwise (softmax: along the last axis). No weights."""

    def __init__(self, activation: str, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def _forward(self, x, training):
        self._z = x
        self._out = _activation_forward(self.activation, x)
        return self._out

    def _backward(self, grad_out):
        return _activation_backward(self.activation, self._z, self._out, grad_out)

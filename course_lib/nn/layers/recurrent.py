"""Recurrent layers with backpropagation through time (document 004 §4).

x: (batch, steps, features); the state starts at zero. ``return_sequences=False`` returns the
last hidden state (batch, units), True returns all of them (batch, steps, units).
The input projection x_t @ kernel + bias is computed for all steps in one matrix product;
only the recurrent part runs step by step.
"""

from __future__ import annotations

import numpy as np

from course_lib.nn import checks
from course_lib.nn.activations import sigmoid
from course_lib.nn.clipping import clip_by_global_norm
from course_lib.nn.layers.base import Layer, glorot_uniform, orthogonal


class _Recurrent(Layer):
    input_ndim = 3
    variable_steps = True
    gates = 1

    def __init__(self, units: int, return_sequences: bool = False,
                 clipnorm: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units = checks.check_positive_int("units", units)
        self.return_sequences = return_sequences
        if clipnorm is not None and clipnorm <= 0:
            raise ValueError(f"`clipnorm` must be positive or None, got {clipnorm!r}")
        self.clipnorm = clipnorm

    def build(self, input_shape):
        super().build(input_shape)
        n_in, width = input_shape[-1], self.gates * self.units
        self.params["kernel"] = glorot_uniform(self.rng, (n_in, width), n_in, width, self.dtype)
        self.params["recurrent_kernel"] = np.concatenate(
            [orthogonal(self.rng, (self.units, self.units), self.dtype) for _ in range(self.gates)],
            axis=1,
        )
        self.params["bias"] = np.zeros(width, self.dtype)

    def output_shape(self, input_shape):
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    def _input_grads(self, dz_all: np.ndarray) -> np.ndarray | None:
        """From dL/d(x_t kernel + bias) for all steps, fill kernel/bias grads; return dL/dx."""
        x = self._x
        flat = dz_all.reshape(-1, dz_all.shape[-1])
        self.grads["kernel"][...] = x.reshape(-1, x.shape[-1]).T @ flat
        self.grads["bias"][...] = flat.sum(axis=0)
        if self.clipnorm is not None:
            clip_by_global_norm(list(self.grads.values()), self.clipnorm)
        if not self.compute_input_grad:
            return None
        return dz_all @ self.params["kernel"].T

    def _step_grad(self, grad_out: np.ndarray, t: int) -> np.ndarray | None:
        if self.return_sequences:
            return grad_out[:, t]
        return grad_out if t == self._steps - 1 else None


class SimpleRNN(_Recurrent):
    """h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias).

    Weights (Keras order): [kernel (features, units), recurrent_kernel (units, units),
    bias (units,)]. ``clipnorm``: clip the global norm of this layer's weight gradients
    after backpropagation through time.
    """

    weight_names = ("kernel", "recurrent_kernel", "bias")

    def _forward(self, x, training):
        batch, steps, _ = x.shape
        self._x, self._steps = x, steps
        xk = x @ self.params["kernel"] + self.params["bias"]
        u = self.params["recurrent_kernel"]
        hs = np.empty((batch, steps + 1, self.units), x.dtype)  # hs[:, 0] = initial state
        hs[:, 0] = 0
        for t in range(steps):
            hs[:, t + 1] = np.tanh(xk[:, t] + hs[:, t] @ u)
        self._hs = hs
        return hs[:, 1:].copy() if self.return_sequences else hs[:, -1].copy()

    def _backward(self, grad_out):
        u = self.params["recurrent_kernel"]
        hs = self._hs
        dz_all = np.empty((hs.shape[0], self._steps, self.units), grad_out.dtype)
        du = np.zeros_like(u)
        dh_next = np.zeros((hs.shape[0], self.units), grad_out.dtype)
        for t in reversed(range(self._steps)):
            g = self._step_grad(grad_out, t)
            dh = dh_next if g is None else dh_next + g
            h = hs[:, t + 1]
            dz = dh * (1 - h * h)
            du += hs[:, t].T @ dz
            dh_next = dz @ u.T
            dz_all[:, t] = dz
        self.grads["recurrent_kernel"][...] = du
        return self._input_grads(dz_all)


class LSTM(_Recurrent):
    """Long short-term memory, Keras's formulation and gate order (i, f, c, o):

    z = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias, split in four blocks of ``units``:
    i = sigmoid(z_i), f = sigmoid(z_f), g = tanh(z_c), o = sigmoid(z_o);
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t).
    Weights (Keras order): [kernel (features, 4 units), recurrent_kernel (units, 4 units),
    bias (4 units,)]; bias init has ones for the forget gate (Keras ``unit_forget_bias=True``).
    """

    gates = 4
    weight_names = ("kernel", "recurrent_kernel", "bias")

    def build(self, input_shape):
        super().build(input_shape)
        self.params["bias"][self.units:2 * self.units] = 1.0

    def _forward(self, x, training):
        batch, steps, _ = x.shape
        n = self.units
        self._x, self._steps = x, steps
        xk = x @ self.params["kernel"] + self.params["bias"]
        u = self.params["recurrent_kernel"]
        hs = np.zeros((batch, steps + 1, n), x.dtype)
        cs = np.zeros((batch, steps + 1, n), x.dtype)
        acts = np.empty((batch, steps, 4 * n), x.dtype)  # i, f, g, o after their activations
        for t in range(steps):
            z = xk[:, t] + hs[:, t] @ u
            a = acts[:, t]
            a[:, :2 * n] = sigmoid(z[:, :2 * n])      # input and forget gates
            a[:, 2 * n:3 * n] = np.tanh(z[:, 2 * n:3 * n])  # candidate cell
            a[:, 3 * n:] = sigmoid(z[:, 3 * n:])      # output gate
            i, f, g, o = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
            cs[:, t + 1] = f * cs[:, t] + i * g
            hs[:, t + 1] = o * np.tanh(cs[:, t + 1])
        self._hs, self._cs, self._acts = hs, cs, acts
        return hs[:, 1:].copy() if self.return_sequences else hs[:, -1].copy()

    def _backward(self, grad_out):
        n = self.units
        u = self.params["recurrent_kernel"]
        hs, cs, acts = self._hs, self._cs, self._acts
        batch = hs.shape[0]
        dz_all = np.empty((batch, self._steps, 4 * n), grad_out.dtype)
        du = np.zeros_like(u)
        dh_next = np.zeros((batch, n), grad_out.dtype)
        dc_next = np.zeros((batch, n), grad_out.dtype)
        for t in reversed(range(self._steps)):
            g_out = self._step_grad(grad_out, t)
            dh = dh_next if g_out is None else dh_next + g_out
            a = acts[:, t]
            i, f, g, o = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
            tc = np.tanh(cs[:, t + 1])
            dc = dc_next + dh * o * (1 - tc * tc)
            dz = dz_all[:, t]
            dz[:, :n] = dc * g * i * (1 - i)
            dz[:, n:2 * n] = dc * cs[:, t] * f * (1 - f)
            dz[:, 2 * n:3 * n] = dc * i * (1 - g * g)
            dz[:, 3 * n:] = dh * tc * o * (1 - o)
            dc_next = dc * f
            du += hs[:, t].T @ dz
            dh_next = dz @ u.T
        self.grads["recurrent_kernel"][...] = du
        return self._input_grads(dz_all)

"""Recurrent layers with backpropagation through time (document 004 §4; chapter 05).

x: (batch, steps, features). ``return_sequences=False`` returns the last hidden state
(batch, units), True returns all of them (batch, steps, units). As in Keras:

- ``forward(x, mask=m)``: m (batch, steps) booleans, False for padded steps. A masked step
  leaves the state unchanged and repeats the previous output (zeros before the first real
  step), so with right-padded sequences the last output is the state after the last real
  token. (This is Keras's TensorFlow backend; its JAX backend differs only at masked steps
  before the first real one, where it outputs the initial state instead of zeros.)
- ``forward(x, initial_state=s)``: s (batch, units), or a list of them (LSTM: [h0, c0]);
  default zeros. After ``backward``, ``initial_state_grads`` holds dL/ds (a list, same order).
- ``return_state=True``: ``forward`` returns ``[output, h_T]`` (LSTM: ``[output, h_T, c_T]``)
  and ``backward`` takes a list of the same length (``None`` entries mean zero gradient).
  Such a layer is used on its own, not inside ``Sequential``.

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
    n_states = 1  # LSTM: 2 (h and c)

    def __init__(self, units: int, return_sequences: bool = False, return_state: bool = False,
                 clipnorm: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units = checks.check_positive_int("units", units)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        if clipnorm is not None and clipnorm <= 0:
            raise ValueError(f"`clipnorm` must be positive or None, got {clipnorm!r}")
        self.clipnorm = clipnorm
        self.initial_state_grads: list[np.ndarray] | None = None

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

    # -- checked entry points ---------------------------------------------------------------
    def forward(self, x, training: bool = False, *, mask=None, initial_state=None):
        """Outputs for x (batch, steps, features); see the module docstring for ``mask``,
        ``initial_state`` and ``return_state``."""
        x = self._check_input(x)
        self.ensure_built(x.shape[1:])
        self.check_input_shape(x.shape)
        mask = self._check_mask(mask, x.shape)
        states = self._check_initial_state(initial_state, len(x))
        out = self._forward(x, training, mask=mask, initial_state=states)
        self._out_shape = out[0].shape if self.return_state else out.shape
        return out

    __call__ = forward

    def backward(self, grad_out) -> np.ndarray | None:
        """dL/dx from dL/d(output) (a list ``[d_output, d_h_T(, d_c_T)]`` when
        ``return_state``); fills ``grads`` and ``initial_state_grads``."""
        if not self.return_state:
            return super().backward(grad_out)
        if getattr(self, "_out_shape", None) is None:
            raise ValueError(f"layer {self.name!r}: call forward before backward")
        if not isinstance(grad_out, list | tuple) or len(grad_out) != 1 + self.n_states:
            raise ValueError(
                f"`grad_out` must be a list of {1 + self.n_states} arrays (or None) for layer "
                f"{self.name!r} with return_state=True, got {type(grad_out).__name__}"
            )
        batch = self._out_shape[0]
        shapes = [self._out_shape] + [(batch, self.units)] * self.n_states
        grads = []
        for i, (g, shape) in enumerate(zip(grad_out, shapes, strict=True)):
            g = np.zeros(shape, self.dtype) if g is None else np.asarray(g)
            if g.shape != shape:
                raise ValueError(f"`grad_out[{i}]` must have shape {shape}, got {g.shape}")
            grads.append(g.astype(self.dtype, copy=False))
        return self._backward(grads[0], grads[1:])

    def _check_mask(self, mask, shape) -> np.ndarray | None:
        if mask is None:
            return None
        m = np.asarray(mask)
        if m.shape != tuple(shape[:2]):
            raise ValueError(
                f"`mask` must have shape (batch, steps) = {tuple(shape[:2])} for `x` of shape "
                f"{tuple(shape)}, got {m.shape}"
            )
        if m.dtype != bool:
            if not np.issubdtype(m.dtype, np.integer) or not np.isin(m, (0, 1)).all():
                raise ValueError(
                    f"`mask` must hold booleans (True for real steps), got dtype {m.dtype}"
                )
            m = m.astype(bool)
        return m

    def _check_initial_state(self, initial_state, batch: int) -> list[np.ndarray] | None:
        if initial_state is None:
            return None
        states = list(initial_state) if isinstance(initial_state, list | tuple) \
            else [initial_state]
        if len(states) != self.n_states:
            raise ValueError(
                f"`initial_state` must be a list of {self.n_states} arrays (batch, units) for "
                f"layer {self.name!r}, got {len(states)}"
            )
        checked = []
        for i, s in enumerate(states):
            s = checks.as_float_array(f"initial_state[{i}]", s, ndim=2)
            if s.shape != (batch, self.units):
                raise ValueError(
                    f"`initial_state[{i}]` must have shape (batch, units) = "
                    f"{(batch, self.units)}, got {s.shape}"
                )
            checked.append(s.astype(self.dtype, copy=False))
        return checked

    # -- shared pieces of the forward and backward passes -------------------------------------
    def _start(self, x, mask, initial_state) -> np.ndarray:
        """Cache x, the mask (batch, steps, 1) and step count; return the states array
        (batch, steps + 1, units) whose entry 0 is the initial state."""
        batch, steps, _ = x.shape
        self._x, self._steps = x, steps
        self._mask = None if mask is None else mask[:, :, None]
        # seen[:, t]: some real step came at or before t (the output is zeros until then)
        self._seen = None if mask is None else np.logical_or.accumulate(self._mask, axis=1)
        hs = np.zeros((batch, steps + 1, self.units), x.dtype)
        if initial_state is not None:
            hs[:, 0] = initial_state[0]
        return hs

    def _carry(self, new: np.ndarray, old: np.ndarray, t: int) -> np.ndarray:
        """The state after step t: the cell's new value, or the old one on masked steps."""
        return new if self._mask is None else np.where(self._mask[:, t], new, old)

    def _split_masked(self, dh: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        """dL/d(state after step t) -> (part through the cell, part passed straight back)."""
        if self._mask is None:
            return dh, 0.0
        m = self._mask[:, t]
        return dh * m, dh * ~m

    def _outputs(self, states: list[np.ndarray]):
        hs = states[0]
        out = hs[:, 1:].copy() if self.return_sequences else hs[:, -1].copy()
        if self._seen is not None:
            out *= self._seen if self.return_sequences else self._seen[:, -1]
        if self.return_state:
            return [out] + [s[:, -1].copy() for s in states]
        return out

    def _input_bias_grad(self) -> np.ndarray:
        return self.grads["bias"]

    def _input_grads(self, dz_all: np.ndarray) -> np.ndarray | None:
        """From dL/d(x_t kernel + bias) for all steps, fill kernel/bias grads; return dL/dx."""
        x = self._x
        flat = dz_all.reshape(-1, dz_all.shape[-1])
        self.grads["kernel"][...] = x.reshape(-1, x.shape[-1]).T @ flat
        self._input_bias_grad()[...] = flat.sum(axis=0)
        if self.clipnorm is not None:
            clip_by_global_norm(list(self.grads.values()), self.clipnorm)
        if not self.compute_input_grad:
            return None
        return dz_all @ self.params["kernel"].T

    def _step_grad(self, grad_out: np.ndarray, t: int) -> np.ndarray | None:
        """dL/d(output at step t) as a gradient on the state after step t (or None)."""
        if self.return_sequences:
            g = grad_out[:, t]
        elif t == self._steps - 1:
            g = grad_out
        else:
            return None
        return g if self._seen is None else g * self._seen[:, t]

    def _start_backward(self, grad_states) -> list[np.ndarray]:
        batch = self._x.shape[0]
        if grad_states is None:
            return [np.zeros((batch, self.units), self.dtype) for _ in range(self.n_states)]
        return [g.copy() for g in grad_states]


class SimpleRNN(_Recurrent):
    """h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias).

    Weights (Keras order): [kernel (features, units), recurrent_kernel (units, units),
    bias (units,)]. ``clipnorm``: clip the global norm of this layer's weight gradients
    after backpropagation through time.
    """

    weight_names = ("kernel", "recurrent_kernel", "bias")

    def _forward(self, x, training, mask=None, initial_state=None):
        hs = self._start(x, mask, initial_state)
        xk = x @ self.params["kernel"] + self.params["bias"]
        u = self.params["recurrent_kernel"]
        cell = np.empty((x.shape[0], x.shape[1], self.units), x.dtype)  # tanh outputs
        for t in range(x.shape[1]):
            cell[:, t] = np.tanh(xk[:, t] + hs[:, t] @ u)
            hs[:, t + 1] = self._carry(cell[:, t], hs[:, t], t)
        self._hs, self._cell = hs, cell
        return self._outputs([hs])

    def _backward(self, grad_out, grad_states=None):
        u = self.params["recurrent_kernel"]
        hs = self._hs
        dz_all = np.empty((hs.shape[0], self._steps, self.units), grad_out.dtype)
        du = np.zeros_like(u)
        (dh_next,) = self._start_backward(grad_states)
        for t in reversed(range(self._steps)):
            g = self._step_grad(grad_out, t)
            dh = dh_next if g is None else dh_next + g
            dh_cell, dh_skip = self._split_masked(dh, t)
            h = self._cell[:, t]
            dz = dh_cell * (1 - h * h)
            du += hs[:, t].T @ dz
            dh_next = dz @ u.T + dh_skip
            dz_all[:, t] = dz
        self.grads["recurrent_kernel"][...] = du
        self.initial_state_grads = [dh_next]
        return self._input_grads(dz_all)


class LSTM(_Recurrent):
    """Long short-term memory, Keras's formulation and gate order (i, f, c, o):

    z = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias, split in four blocks of ``units``:
    i = sigmoid(z_i), f = sigmoid(z_f), g = tanh(z_c), o = sigmoid(z_o);
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t).
    Weights (Keras order): [kernel (features, 4 units), recurrent_kernel (units, 4 units),
    bias (4 units,)]; bias init has ones for the forget gate (Keras ``unit_forget_bias=True``).
    States: [h, c], both (batch, units).
    """

    gates = 4
    n_states = 2
    weight_names = ("kernel", "recurrent_kernel", "bias")

    def build(self, input_shape):
        super().build(input_shape)
        self.params["bias"][self.units:2 * self.units] = 1.0

    def _forward(self, x, training, mask=None, initial_state=None):
        batch, steps, _ = x.shape
        n = self.units
        hs = self._start(x, mask, initial_state)
        cs = np.zeros_like(hs)
        if initial_state is not None:
            cs[:, 0] = initial_state[1]
        xk = x @ self.params["kernel"] + self.params["bias"]
        u = self.params["recurrent_kernel"]
        acts = np.empty((batch, steps, 4 * n), x.dtype)  # i, f, g, o after their activations
        tanh_c = np.empty((batch, steps, n), x.dtype)     # tanh of the cell's new c
        for t in range(steps):
            z = xk[:, t] + hs[:, t] @ u
            a = acts[:, t]
            a[:, :2 * n] = sigmoid(z[:, :2 * n])      # input and forget gates
            a[:, 2 * n:3 * n] = np.tanh(z[:, 2 * n:3 * n])  # candidate cell
            a[:, 3 * n:] = sigmoid(z[:, 3 * n:])      # output gate
            i, f, g, o = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
            c_new = f * cs[:, t] + i * g
            tanh_c[:, t] = np.tanh(c_new)
            cs[:, t + 1] = self._carry(c_new, cs[:, t], t)
            hs[:, t + 1] = self._carry(o * tanh_c[:, t], hs[:, t], t)
        self._hs, self._cs, self._acts, self._tanh_c = hs, cs, acts, tanh_c
        return self._outputs([hs, cs])

    def _backward(self, grad_out, grad_states=None):
        n = self.units
        u = self.params["recurrent_kernel"]
        hs, cs, acts = self._hs, self._cs, self._acts
        dz_all = np.empty((hs.shape[0], self._steps, 4 * n), grad_out.dtype)
        du = np.zeros_like(u)
        dh_next, dc_next = self._start_backward(grad_states)
        for t in reversed(range(self._steps)):
            g_out = self._step_grad(grad_out, t)
            dh = dh_next if g_out is None else dh_next + g_out
            dh_cell, dh_skip = self._split_masked(dh, t)
            dc_in, dc_skip = self._split_masked(dc_next, t)
            a = acts[:, t]
            i, f, g, o = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
            tc = self._tanh_c[:, t]
            dc = dc_in + dh_cell * o * (1 - tc * tc)
            dz = dz_all[:, t]
            dz[:, :n] = dc * g * i * (1 - i)
            dz[:, n:2 * n] = dc * cs[:, t] * f * (1 - f)
            dz[:, 2 * n:3 * n] = dc * i * (1 - g * g)
            dz[:, 3 * n:] = dh_cell * tc * o * (1 - o)
            dc_next = dc * f + dc_skip
            du += hs[:, t].T @ dz
            dh_next = dz @ u.T + dh_skip
        self.grads["recurrent_kernel"][...] = du
        self.initial_state_grads = [dh_next, dc_next]
        return self._input_grads(dz_all)


class GRU(_Recurrent):
    """Gated recurrent unit, Keras's default formulation (``reset_after=True``), gates (z, r, h):

    x_z, x_r, x_h = x_t @ kernel + bias[0];  u_z, u_r, u_h = h_{t-1} @ recurrent_kernel + bias[1]
    z = sigmoid(x_z + u_z) (update), r = sigmoid(x_r + u_r) (reset),
    hh = tanh(x_h + r * u_h) (candidate: the reset gate acts *after* the matrix product),
    h_t = z * h_{t-1} + (1 - z) * hh.
    Weights (Keras order): [kernel (features, 3 units), recurrent_kernel (units, 3 units),
    bias (2, 3 units): row 0 the input bias, row 1 the recurrent bias].
    """

    gates = 3
    weight_names = ("kernel", "recurrent_kernel", "bias")

    def build(self, input_shape):
        super().build(input_shape)
        self.params["bias"] = np.zeros((2, 3 * self.units), self.dtype)

    def _input_bias_grad(self):
        return self.grads["bias"][0]

    def _forward(self, x, training, mask=None, initial_state=None):
        batch, steps, _ = x.shape
        n = self.units
        hs = self._start(x, mask, initial_state)
        xk = x @ self.params["kernel"] + self.params["bias"][0]
        u, b_rec = self.params["recurrent_kernel"], self.params["bias"][1]
        gates = np.empty((batch, steps, 3 * n), x.dtype)  # z, r, hh after their activations
        u_h = np.empty((batch, steps, n), x.dtype)        # h_{t-1} @ U_h + b_h (before reset)
        for t in range(steps):
            h_prev = hs[:, t]
            uk = h_prev @ u + b_rec
            zr = sigmoid(xk[:, t, :2 * n] + uk[:, :2 * n])
            z, r = zr[:, :n], zr[:, n:]
            u_h[:, t] = uk[:, 2 * n:]
            hh = np.tanh(xk[:, t, 2 * n:] + r * u_h[:, t])
            gates[:, t, :2 * n], gates[:, t, 2 * n:] = zr, hh
            hs[:, t + 1] = self._carry(z * h_prev + (1 - z) * hh, h_prev, t)
        self._hs, self._gates, self._u_h = hs, gates, u_h
        return self._outputs([hs])

    def _backward(self, grad_out, grad_states=None):
        n = self.units
        u = self.params["recurrent_kernel"]
        hs, gates = self._hs, self._gates
        batch = hs.shape[0]
        dx_all = np.empty((batch, self._steps, 3 * n), grad_out.dtype)  # d(x_t kernel + b0)
        du_all = np.empty((batch, self._steps, 3 * n), grad_out.dtype)  # d(h_{t-1} U + b1)
        dU = np.zeros_like(u)
        (dh_next,) = self._start_backward(grad_states)
        for t in reversed(range(self._steps)):
            g = self._step_grad(grad_out, t)
            dh = dh_next if g is None else dh_next + g
            dh_cell, dh_skip = self._split_masked(dh, t)
            h_prev = hs[:, t]
            z, r, hh = gates[:, t, :n], gates[:, t, n:2 * n], gates[:, t, 2 * n:]
            d_hh = dh_cell * (1 - z) * (1 - hh * hh)     # d(pre-activation of hh)
            d_r = d_hh * self._u_h[:, t] * r * (1 - r)
            d_z = dh_cell * (h_prev - hh) * z * (1 - z)
            dx = dx_all[:, t]
            dx[:, :n], dx[:, n:2 * n], dx[:, 2 * n:] = d_z, d_r, d_hh
            du = du_all[:, t]
            du[:, :n], du[:, n:2 * n], du[:, 2 * n:] = d_z, d_r, d_hh * r
            dU += h_prev.T @ du
            dh_next = du @ u.T + dh_cell * z + dh_skip
        self.grads["recurrent_kernel"][...] = dU
        self.grads["bias"][1] = du_all.reshape(-1, 3 * n).sum(axis=0)
        self.initial_state_grads = [dh_next]
        return self._input_grads(dx_all)

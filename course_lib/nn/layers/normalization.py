"""Batch normalisation over the last (feature/channel) axis, as Keras's BatchNormalization.

training=True:  xhat = (x - mean_B) / sqrt(var_B + epsilon), out = gamma * xhat + beta, with the
                batch mean/variance (biased) over all axes but the last; then
                moving = momentum * moving + (1 - momentum) * batch statistic.
training=False: the same with the moving mean and variance.
x: (batch, features) or (batch, h, w, channels).
"""

from __future__ import annotations

import numpy as np

from course_lib.nn.layers.base import Layer


class BatchNormalization(Layer):
    """BatchNormalization(momentum=0.99, epsilon=1e-3) (Keras defaults).

    Weights (Keras order): [gamma, beta, moving_mean, moving_variance], each (features,);
    gamma and beta are trained, the moving statistics are state.
    """

    input_ndim = (2, 3, 4)
    weight_names = ("gamma", "beta", "moving_mean", "moving_variance")

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"`momentum` must be in [0, 1], got {momentum!r}")
        if epsilon <= 0:
            raise ValueError(f"`epsilon` must be positive, got {epsilon!r}")
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape):
        super().build(input_shape)
        c = input_shape[-1]
        self.params["gamma"] = np.ones(c, self.dtype)
        self.params["beta"] = np.zeros(c, self.dtype)
        self.state["moving_mean"] = np.zeros(c, self.dtype)
        self.state["moving_variance"] = np.ones(c, self.dtype)

    def _forward(self, x, training):
        axes = tuple(range(x.ndim - 1))
        if training:
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            m = self.momentum
            self.state["moving_mean"][...] = m * self.state["moving_mean"] + (1 - m) * mean
            self.state["moving_variance"][...] = m * self.state["moving_variance"] + (1 - m) * var
        else:
            mean, var = self.state["moving_mean"], self.state["moving_variance"]
        self._training = training
        self._inv_std = (1.0 / np.sqrt(var + self.epsilon)).astype(x.dtype)
        self._xhat = (x - mean) * self._inv_std
        return self.params["gamma"] * self._xhat + self.params["beta"]

    def _backward(self, grad_out):
        axes = tuple(range(grad_out.ndim - 1))
        xhat = self._xhat
        self.grads["gamma"][...] = np.sum(grad_out * xhat, axis=axes)
        self.grads["beta"][...] = np.sum(grad_out, axis=axes)
        if not self.compute_input_grad:
            return None
        dxhat = grad_out * self.params["gamma"]
        if not self._training:
            return dxhat * self._inv_std
        n = grad_out.size // grad_out.shape[-1]
        return self._inv_std / n * (
            n * dxhat - dxhat.sum(axis=axes) - xhat * np.sum(dxhat * xhat, axis=axes)
        )

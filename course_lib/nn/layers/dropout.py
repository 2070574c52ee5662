"""Inverted dropout (document 001 §3): zero a fraction ``rate`` of the inputs during training
and scale the rest by 1 / (1 - rate), so inference is the identity (as Keras's Dropout)."""

from __future__ import annotations

import numpy as np

from course_lib.nn.layers.base import Layer


class Dropout(Layer):
    """Dropout(rate): training: out = x * mask / (1 - rate), mask ~ Bernoulli(1 - rate);
    inference: out = x. ``seed`` makes the masks reproducible."""

    def __init__(self, rate: float, *, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed

    def reset_rng(self) -> None:
        """Restart the mask generator from ``seed`` (gradient checks need the same mask twice)."""
        self.rng = np.random.default_rng(self.seed)

    def _forward(self, x, training):
        if not training or self.rate == 0.0:
            self._scale = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.rate
        self._scale = keep.astype(x.dtype) / x.dtype.type(1.0 - self.rate)
        return x * self._scale

    def _backward(self, grad_out):
        return grad_out if self._scale is None else grad_out * self._scale

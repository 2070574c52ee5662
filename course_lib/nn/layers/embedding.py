"""Embedding: integer token ids -> rows of a trainable table (document 004 §4)."""

from __future__ import annotations

import numpy as np

from course_lib.nn import checks
from course_lib.nn.layers.base import Layer


class Embedding(Layer):
    """Embedding(input_dim, output_dim): x (batch, steps) ints in [0, input_dim) ->
    (batch, steps, output_dim). Weights: [embeddings (input_dim, output_dim)], init
    U(-0.05, 0.05) as Keras. Backward adds each output gradient into the row it came from;
    there is no input gradient (``backward`` returns None)."""

    input_ndim = (1, 2)
    weight_names = ("embeddings",)

    def __init__(self, input_dim: int, output_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = checks.check_positive_int("input_dim", input_dim)
        self.output_dim = checks.check_positive_int("output_dim", output_dim)

    def build(self, input_shape):
        super().build(input_shape)
        self.params["embeddings"] = self.rng.uniform(
            -0.05, 0.05, (self.input_dim, self.output_dim)
        ).astype(self.dtype)

    def output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def _check_input(self, x):
        return checks.as_index_array("x", x, upper=self.input_dim, ndim=self.input_ndim)

    def check_input_shape(self, shape):
        """Any batch of id sequences of the built rank works."""
        if len(shape) - 1 != len(self.input_shape):
            raise ValueError(
                f"`x` must have rank {len(self.input_shape) + 1} for layer {self.name!r}, "
                f"got shape {tuple(shape)}"
            )

    def _forward(self, x, training):
        self._ids = x
        return self.params["embeddings"][x]

    def _backward(self, grad_out):
        grad = self.grads["embeddings"]
        grad[...] = 0
        np.add.at(grad, self._ids.reshape(-1), grad_out.reshape(-1, self.output_dim))
        return None

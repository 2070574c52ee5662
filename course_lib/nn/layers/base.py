"""The common layer interface and Keras-style weight initialisers.

A layer is built lazily on its first ``forward`` (it then knows the input size), like Keras.

- ``forward(x, training=False) -> out``: caches what ``backward`` needs.
- ``backward(grad_out) -> grad_in``: fills ``grads`` (same keys and shapes as ``params``) and
  returns dL/dx; returns ``None`` when ``compute_input_grad`` is False (the first layer of a
  model needs no input gradient) or the input is not differentiable (Embedding indices).
- ``params`` / ``grads``: name -> array; optimizers update ``params`` arrays in place.
- ``get_weights()`` / ``set_weights(list)``: arrays in Keras's order and layout, so weights copy
  both ways with ``keras_layer.get_weights()`` / ``set_weights()``.
"""

from __future__ import annotations

import numpy as np

from course_lib.nn import checks


class Layer:
    """Base class for all layers."""

    def __init__(self, *, dtype=np.float32, seed: int | None = None, name: str | None = None):
        self.dtype = np.dtype(dtype)
        if not np.issubdtype(self.dtype, np.floating):
            raise ValueError(f"`dtype` must be a floating-point dtype, got {self.dtype}")
        self.rng = np.random.default_rng(seed)
        self.name = name or type(self).__name__.lower()
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}  # non-trainable weights (BatchNorm moving stats)
        self.built = False
        self.compute_input_grad = True
        self.input_shape: tuple | None = None  # without the batch axis

    # -- building -------------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        """Create parameters for inputs of shape ``(batch, *input_shape)``."""
        self.input_shape = tuple(input_shape)
        self.built = True

    def ensure_built(self, input_shape: tuple) -> None:
        """Build (weights and zero gradients) for ``input_shape`` (no batch axis) unless built."""
        if not self.built:
            self.build(tuple(input_shape))
            self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output (without the batch axis) for an input shape (without batch)."""
        return tuple(input_shape)

    # -- computation ----------------------------------------------------------------------
    input_ndim: int | tuple[int, ...] | None = None  # allowed rank(s) of x, batch axis included

    def forward(self, x, training: bool = False) -> np.ndarray:
        """Validate ``x``, build on first use, and return the layer output."""
        x = self._check_input(x)
        self.ensure_built(x.shape[1:])
        self.check_input_shape(x.shape)
        out = self._forward(x, training)
        self._out_shape = out.shape
        return out

    def backward(self, grad_out) -> np.ndarray | None:
        """dL/dx from dL/dout (shape of the last forward output); fills ``grads``."""
        expected = getattr(self, "_out_shape", None)
        if expected is None:
            raise ValueError(f"layer {self.name!r}: call forward before backward")
        grad_out = np.asarray(grad_out)
        if grad_out.shape != expected:
            raise ValueError(
                f"`grad_out` must have the shape of the last forward output {expected}, "
                f"got {grad_out.shape}"
            )
        return self._backward(grad_out.astype(self.dtype, copy=False))

    __call__ = forward

    # Sequence layers accept any number of steps: only the feature axis is fixed once built.
    variable_steps = False

    def check_input_shape(self, shape: tuple) -> None:
        """Raise ``ValueError`` unless inputs of ``shape`` (with batch) fit the built layer."""
        if self.variable_steps:
            ok = len(shape) - 1 == len(self.input_shape) and shape[-1] == self.input_shape[-1]
            dims = ["steps"] * (len(self.input_shape) - 1) + [str(self.input_shape[-1])]
            wanted = f"(batch, {', '.join(dims)})"
        else:
            ok = tuple(shape[1:]) == self.input_shape
            wanted = f"(batch, {', '.join(map(str, self.input_shape))})"
        if not ok:
            raise ValueError(
                f"`x` must have shape {wanted} for layer {self.name!r}, got {tuple(shape)}"
            )

    def _check_input(self, x) -> np.ndarray:
        x = checks.as_float_array("x", x, ndim=self.input_ndim)
        return x.astype(self.dtype, copy=False)

    # Unchecked versions, used by Sequential after it validated the data once.
    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    # -- weights --------------------------------------------------------------------------
    weight_names: tuple[str, ...] = ()  # Keras order; entries live in params or state

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in Keras's order and layout."""
        return [self._weight(n).copy() for n in self.weight_names]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Copy ``weights`` (Keras order and layout) into this (built) layer, in place."""
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet: call forward once first")
        if len(weights) != len(self.weight_names):
            raise ValueError(
                f"`weights` must be a list of {len(self.weight_names)} arrays "
                f"{list(self.weight_names)} for layer {self.name!r}, got {len(weights)}"
            )
        for name, w in zip(self.weight_names, weights, strict=True):
            target = self._weight(name)
            w = np.asarray(w)
            if w.shape != target.shape:
                raise ValueError(
                    f"weight {name!r} of layer {self.name!r} has shape {target.shape}, "
                    f"got {w.shape}"
                )
            target[...] = w

    def _weight(self, name: str) -> np.ndarray:
        return self.params[name] if name in self.params else self.state[name]

    def count_params(self) -> int:
        """Number of trainable scalars."""
        return int(sum(p.size for p in self.params.values()))


# -- initialisers (Keras defaults) ----------------------------------------------------------
def glorot_uniform(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int,
                   dtype) -> np.ndarray:
    """U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)) (Keras's default kernel init)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def orthogonal(rng: np.random.Generator, shape: tuple, dtype) -> np.ndarray:
    """A random orthogonal matrix (Keras's default recurrent kernel init)."""
    a = rng.standard_normal(shape)
    q, r = np.linalg.qr(a if shape[0] >= shape[1] else a.T)
    q *= np.sign(np.diag(r))
    return (q if shape[0] >= shape[1] else q.T).astype(dtype)

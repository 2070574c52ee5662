"""A small Keras-like ``Sequential`` model for the NumPy layers (document 000 §4).

    model = Sequential([Dense(128, activation="relu"), Dense(10)])
    model.compile(optimizer=SGD(0.1), loss=SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=5, batch_size=128)   # progress bar; verbose=0: none
    plt.plot(history.history["loss"])

The data are validated once per ``fit``/``evaluate``/``predict`` call; the batch loop then calls
the layers' unchecked ``_forward``/``_backward`` so the library costs little over a bare loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from course_lib.nn import checks, losses, optimizers
from course_lib.nn.layers.base import Layer
from course_lib.progress import progress_bar


@dataclass
class History:
    """Per-epoch results of ``fit``: ``history["loss"]``, ``history["accuracy"]``,
    ``history["val_loss"]``... (lists, one value per epoch), and ``epoch`` (0, 1, ...)."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)


class Sequential:
    """A stack of layers applied in order. layers: list of ``Layer`` objects."""

    def __init__(self, layers: list[Layer] | None = None):
        self.layers: list[Layer] = []
        self.loss: losses.Loss | None = None
        self.optimizer: optimizers.Optimizer | None = None
        self.metrics: list[str] = []
        self._pairs: list[tuple[np.ndarray, np.ndarray]] | None = None  # (grad, param), built
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Layer) -> None:
        """Append a layer."""
        if not isinstance(layer, Layer):
            raise ValueError(f"`layer` must be a course_lib.nn Layer, got {type(layer).__name__}")
        self.layers.append(layer)
        self._pairs = None  # rebuilt on next use

    def compile(self, optimizer: str | optimizers.Optimizer = "sgd",
                loss: str | losses.Loss = "mse", metrics: list[str] | tuple = ()) -> None:
        """Choose optimizer, loss and metrics (only ``"accuracy"`` is supported in fit)."""
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        for m in metrics:
            checks.check_choice("metrics", m, ("accuracy",))
        self.metrics = list(metrics)

    # -- building and plain passes -----------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        """Create all weights for inputs of shape ``(batch, *input_shape)``."""
        shape = tuple(input_shape)
        for layer in self.layers:
            layer.ensure_built(shape)
            shape = layer.output_shape(shape)
        self.output_shape = shape
        # The first layer needs no input gradient (skips one matrix product per batch).
        for i, layer in enumerate(self.layers):
            layer.compute_input_grad = i > 0
        self._pairs = [(layer.grads[k], layer.params[k])
                       for layer in self.layers for k in layer.params]

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        for layer in self.layers:
            x = layer._forward(x, training)
        return x

    def _backward(self, grad: np.ndarray) -> None:
        for layer in reversed(self.layers):
            grad = layer._backward(grad)

    def _prepare_x(self, x) -> np.ndarray:
        if not self.layers:
            raise ValueError("the model has no layers: add some first")
        first = self.layers[0]
        x = first._check_input(x)
        if x.ndim < 2:
            raise ValueError(f"`x` must have a batch axis, got shape {x.shape}")
        if self._pairs is None:
            self.build(x.shape[1:])
        first.check_input_shape(x.shape)
        return x

    def _prepare_xy(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        if self.loss is None:
            raise ValueError("call compile(optimizer, loss) before fit or evaluate")
        x = self._prepare_x(x)
        y = np.asarray(y)
        checks.check_same_length("x", x, "y", y)
        out_shape = x.shape[1:]
        for layer in self.layers:
            out_shape = layer.output_shape(out_shape)
        dummy = np.broadcast_to(np.zeros(1, self.layers[-1].dtype), (len(x), *out_shape))
        y, _ = self.loss.validate(y, dummy)
        return x, y

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Outputs for ``x`` (inference mode), computed in batches. x: (n, *input_shape)."""
        x = self._prepare_x(x)
        batch_size = checks.check_positive_int("batch_size", batch_size)
        outs = [self._forward(x[i:i + batch_size], False) for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, *self.output_shape), x.dtype)

    # -- training ------------------------------------------------------------------------------
    def _correct(self, y: np.ndarray, out: np.ndarray) -> int:
        """Number of correct predictions in a batch (the "accuracy" metric)."""
        if out.ndim == 2 and out.shape[1] > 1:
            pred = out.argmax(axis=1)
            target = y if y.ndim == 1 else y.argmax(axis=1)
            return int(np.count_nonzero(pred == target))
        logits = getattr(self.loss, "from_logits", False)
        pred = out > (0.0 if logits else 0.5)
        return int(np.count_nonzero(pred == (y > 0.5)))

    def evaluate(self, x, y, batch_size: int = 256) -> dict[str, float]:
        """Mean loss (and metrics) over ``(x, y)`` in inference mode, e.g. {"loss", "accuracy"}."""
        x, y = self._prepare_xy(x, y)
        return self._evaluate(x, y, checks.check_positive_int("batch_size", batch_size))

    def _evaluate(self, x, y, batch_size):
        total_loss, correct = 0.0, 0
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            out = self._forward(xb, False)
            total_loss += self.loss._value_and_grad(yb, out)[0] * len(xb)
            if self.metrics:
                correct += self._correct(yb, out)
        logs = {"loss": total_loss / len(x)}
        if self.metrics:
            logs["accuracy"] = correct / len(x)
        return logs

    def input_gradient(self, x, y, *, training: bool = False) -> tuple[float, np.ndarray]:
        """The loss and its gradient with respect to the input: ``(loss, dL/dx)``.

        x: (batch, *input_shape) floats; y: targets in the format of the compiled loss.
        Returns the mean loss over the batch (a float) and dL/dx with the shape of ``x`` (in the
        layers' dtype): the gradient of that *mean*, so row i is 1/batch times the gradient of
        example i's own loss (adversarial attacks use only its sign). ``training=False``: the
        model as deployed (dropout off, BatchNorm's moving statistics). The parameter gradients
        (``layer.grads``) are overwritten; no parameter changes.
        """
        x, y = self._prepare_xy(x, y)
        out = self._forward(x, training)
        loss, grad = self.loss._value_and_grad(y, out)
        first = self.layers[0]
        saved = first.compute_input_grad
        first.compute_input_grad = True  # build() switches it off: training never needs it
        try:
            for layer in reversed(self.layers):
                grad = layer._backward(grad)
        finally:
            first.compute_input_grad = saved
        if grad is None:
            raise ValueError(
                f"the first layer {first.name!r} takes integer inputs: there is no input gradient"
            )
        return float(loss), grad

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """One gradient step on a batch (no validation); returns (loss, outputs)."""
        out = self._forward(x, True)
        loss, grad = self.loss._value_and_grad(y, out)
        self._backward(grad)
        self.optimizer.apply_gradients(self._pairs)
        return loss, out

    def fit(self, x, y, *, epochs: int = 1, batch_size: int = 32, validation_data=None,
            shuffle: bool = True, verbose: int = 1, seed: int | None = None) -> History:
        """Train with mini-batch gradient descent; returns a ``History``.

        x: (n, *input_shape) floats; y: targets for the loss. validation_data: (x_val, y_val),
        evaluated after each epoch. verbose=1: a progress bar per epoch (course_lib.progress), updated
        about 20 times per epoch; 0: silent.
        """
        x, y = self._prepare_xy(x, y)
        epochs = checks.check_positive_int("epochs", epochs)
        batch_size = checks.check_positive_int("batch_size", batch_size)
        if validation_data is not None:
            x_val, y_val = self._prepare_xy(*validation_data)
        rng = np.random.default_rng(seed)
        n = len(x)
        n_batches = -(-n // batch_size)
        refresh = max(1, n_batches // 20)
        history = History()
        for epoch in range(epochs):
            order = rng.permutation(n) if shuffle else None
            bar = None
            if verbose:  # to stdout, as Keras's bar: notebooks keep no stderr output
                bar = progress_bar(total=n_batches, desc=f"epoch {epoch + 1}/{epochs}")
            total_loss, correct = 0.0, 0
            for b in range(n_batches):
                rows = slice(b * batch_size, (b + 1) * batch_size)
                if order is None:
                    xb, yb = x[rows], y[rows]
                else:
                    idx = order[rows]
                    xb, yb = x[idx], y[idx]
                loss, out = self.train_on_batch(xb, yb)
                total_loss += loss * len(xb)
                if self.metrics:
                    correct += self._correct(yb, out)
                if bar is not None and ((b + 1) % refresh == 0 or b + 1 == n_batches):
                    seen = min((b + 1) * batch_size, n)
                    bar.update(b + 1 - bar.n)
                    bar.set_postfix(loss=f"{total_loss / seen:.4f}", refresh=False)
            logs = {"loss": total_loss / n}
            if self.metrics:
                logs["accuracy"] = correct / n
            if validation_data is not None:
                val = self._evaluate(x_val, y_val, max(batch_size, 256))
                logs.update({f"val_{k}": v for k, v in val.items()})
            if bar is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
                bar.close()
            history.append(epoch, logs)
        return history

    # -- weights ------------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """All layers' weights, in order (each layer in Keras order)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Copy weights (as returned by ``get_weights`` or a Keras model's) into the layers."""
        weights = list(weights)
        expected = sum(len(layer.weight_names) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"`weights` must hold {expected} arrays, got {len(weights)}")
        for layer in self.layers:
            k = len(layer.weight_names)
            layer.set_weights(weights[:k])
            weights = weights[k:]

    def count_params(self) -> int:
        """Number of trainable scalars."""
        return sum(layer.count_params() for layer in self.layers)

"""Gradient-descent optimizers, updating NumPy arrays in place (document 002 §4.1).

``optimizer.apply_gradients([(grad, param), ...])`` mirrors Keras's call. Per-parameter state
(velocities, moments) is keyed by the parameter array, so always update the same arrays (the
layers do: ``set_weights`` copies into them).

Each optimizer reproduces the ``keras.optimizers`` class of the same name step for step
(tests/nn/test_optimizers.py, 100 steps, tolerance 1e-5), with these formulations:

- SGD:      v = momentum * v - lr * g;  theta += v, or with nesterov
            theta += momentum * v - lr * g        (== keras SGD(momentum, nesterov)).
- RMSprop:  s = rho * s + (1 - rho) * g^2;  theta -= lr * g / sqrt(s + epsilon)
            epsilon INSIDE the square root; centered=False; momentum=0 (keras defaults).
- Adam:     m += (1 - beta_1)(g - m);  v += (1 - beta_2)(g^2 - v);
            theta -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)
            ("epsilon hat": epsilon added to sqrt(v), not to the bias-corrected sqrt(v_hat));
            epsilon=1e-7 and amsgrad=False (keras defaults).
- AdamW:    theta -= lr * weight_decay * theta (decoupled, before the Adam step)
            (== keras AdamW(weight_decay=...)).

``weight_decay`` on SGD/RMSprop/Adam is L2 weight decay as in document 002 §4.1: the gradient
becomes g + lambda * theta, so plain SGD does theta <- theta - eta * grad - eta * lambda * theta.
For plain SGD this equals keras ``SGD(weight_decay=lambda)``; with momentum or adaptive methods
Keras's ``weight_decay`` is the decoupled kind (use AdamW here) and L2 equals Keras fed with
gradients g + lambda * theta.
"""

from __future__ import annotations

import numpy as np

from course_lib.nn.clipping import clip_by_global_norm, clip_by_norm


class Optimizer:
    """Base class. learning_rate: eta; weight_decay: L2 lambda (coupled, see module doc);
    clipnorm / global_clipnorm: gradient clipping as the Keras options of the same names."""

    def __init__(self, learning_rate: float, *, weight_decay: float = 0.0,
                 clipnorm: float | None = None, global_clipnorm: float | None = None):
        if not learning_rate > 0:
            raise ValueError(f"`learning_rate` must be positive, got {learning_rate!r}")
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}")
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.clipnorm = clipnorm
        self.global_clipnorm = global_clipnorm
        self.iterations = 0
        self._slots: dict[int, dict[str, np.ndarray]] = {}

    def apply_gradients(self, grads_and_params) -> None:
        """Update each ``param`` in place from its ``grad`` (pairs ``(grad, param)``, as Keras)."""
        pairs = list(grads_and_params)
        if self.clipnorm is not None or self.global_clipnorm is not None:
            pairs = [(g.copy(), p) for g, p in pairs]  # clip copies, not the layers' arrays
            if self.clipnorm is not None:
                for g, _ in pairs:
                    clip_by_norm(g, self.clipnorm)
            if self.global_clipnorm is not None:
                clip_by_global_norm([g for g, _ in pairs], self.global_clipnorm)
        self.iterations += 1
        for grad, param in pairs:
            if grad.shape != param.shape:
                raise ValueError(
                    f"`grad` must have the shape of its parameter {param.shape}, got {grad.shape}"
                )
            if self.weight_decay:
                grad = grad + self.weight_decay * param
            slots = self._slots.get(id(param))
            if slots is None:
                slots = self._slots[id(param)] = self._make_slots(param)
            self._update(param, grad, slots, param.dtype.type(self.learning_rate))

    def _make_slots(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {}

    def _update(self, param, grad, slots, lr) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """SGD(learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0) (Keras defaults).

    momentum=0: theta -= lr * g.  momentum > 0: v = momentum * v - lr * g, theta += v.
    nesterov=True: theta += momentum * v - lr * g (the look-ahead step, Keras's formulation).
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1), got {momentum!r}")
        self.momentum = momentum
        self.nesterov = nesterov

    def _make_slots(self, param):
        return {"velocity": np.zeros_like(param)} if self.momentum else {}

    def _update(self, param, grad, slots, lr):
        if not self.momentum:
            param -= lr * grad
            return
        m = param.dtype.type(self.momentum)
        v = slots["velocity"]
        v *= m
        v -= lr * grad
        if self.nesterov:
            param += m * v - lr * grad
        else:
            param += v


class RMSprop(Optimizer):
    """RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-7) (Keras defaults, centered=False).

    s = rho * s + (1 - rho) * g^2;  theta -= lr * g / sqrt(s + epsilon).
    """

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, epsilon: float = 1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def _make_slots(self, param):
        return {"velocity": np.zeros_like(param)}

    def _update(self, param, grad, slots, lr):
        s = slots["velocity"]
        rho = param.dtype.type(self.rho)
        s *= rho
        s += (1 - rho) * grad * grad
        param -= lr * grad / np.sqrt(s + param.dtype.type(self.epsilon))


class Adam(Optimizer):
    """Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7) (Keras defaults).

    m += (1 - beta_1)(g - m); v += (1 - beta_2)(g^2 - v);
    theta -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon).
    """

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def _make_slots(self, param):
        return {"m": np.zeros_like(param), "v": np.zeros_like(param)}

    def _update(self, param, grad, slots, lr):
        t = self.iterations
        dt = param.dtype.type
        alpha = dt(lr * np.sqrt(1 - dt(self.beta_2) ** t) / (1 - dt(self.beta_1) ** t))
        m, v = slots["m"], slots["v"]
        m += (grad - m) * dt(1 - self.beta_1)
        v += (grad * grad - v) * dt(1 - self.beta_2)
        param -= alpha * m / (np.sqrt(v) + dt(self.epsilon))


class AdamW(Adam):
    """Adam with decoupled weight decay: theta -= lr * weight_decay * theta, then the Adam step
    on the loss gradient alone (Keras's AdamW, default weight_decay=0.004)."""

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}")
        self.decoupled_weight_decay = float(weight_decay)

    def _update(self, param, grad, slots, lr):
        param -= param * param.dtype.type(self.decoupled_weight_decay) * lr
        super()._update(param, grad, slots, lr)


_NAMES = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def get(optimizer: str | Optimizer) -> Optimizer:
    """An optimizer from a name ("sgd", "rmsprop", "adam", "adamw"; Keras defaults) or instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if optimizer not in _NAMES:
        raise ValueError(
            f"`optimizer` must be an Optimizer or one of {list(_NAMES)}, got {optimizer!r}"
        )
    return _NAMES[optimizer]()

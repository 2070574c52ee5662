"""L2-SP (Li, Grandvalet and Davoine, *Explicit inductive bias for transfer learning with
convolutional networks*, ICML 2018): fine-tuning regularised toward the source weights.

    J(W) = mean_i loss(f_W(x_i), y_i) + alpha/2 ||W - W_s||^2 + beta/2 ||W_head||^2

The NumPy reference (:func:`l2sp_penalty`, :func:`l2sp_gradient`), the backend-agnostic Keras
regulariser (:class:`L2SP`) and :func:`apply_l2sp`, which attaches it to a transferred backbone
(``toward="zero"``: the plain-L2 baseline of the paper). Chapter 07, section 5.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from course_lib.nn import checks


def l2sp_penalty(weights: Sequence[np.ndarray], source: Sequence[np.ndarray], alpha: float,
                 head: Sequence[np.ndarray] = (), beta: float = 0.0) -> float:
    """NumPy reference of the L2-SP penalty
    ``alpha/2 * sum ||w - w_source||^2 + beta/2 * sum ||h||^2``.

    weights, source: matching lists of arrays (the transferred parameters and their source
    values, same shapes); head: the new parameters that have no source value (decayed to 0).
    """
    weights, source, head = _l2sp_arrays(weights, source, head)
    return float(0.5 * alpha * sum(np.sum((w - s) ** 2) for w, s in zip(weights, source, strict=True))
                 + 0.5 * beta * sum(np.sum(h ** 2) for h in head))


def l2sp_gradient(weights: Sequence[np.ndarray], source: Sequence[np.ndarray], alpha: float,
                  head: Sequence[np.ndarray] = (),
                  beta: float = 0.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The gradient of :func:`l2sp_penalty`: ``alpha (w - w_source)`` for each transferred array
    and ``beta h`` for each head array, as two lists shaped like ``weights`` and ``head``."""
    weights, source, head = _l2sp_arrays(weights, source, head)
    return ([alpha * (w - s) for w, s in zip(weights, source, strict=True)], [beta * h for h in head])


def _l2sp_arrays(weights, source, head):
    weights = [checks.as_float_array(f"weights[{i}]", w) for i, w in enumerate(weights)]
    source = [checks.as_float_array(f"source[{i}]", s) for i, s in enumerate(source)]
    head = [checks.as_float_array(f"head[{i}]", h) for i, h in enumerate(head)]
    if len(weights) != len(source):
        raise ValueError(f"`weights` and `source` must be lists of the same length, got "
                         f"{len(weights)} and {len(source)} arrays")
    for i, (w, s) in enumerate(zip(weights, source, strict=True)):
        checks.check_same_shape(f"weights[{i}]", w, f"source[{i}]", s)
    return weights, source, head


class L2SP(keras.regularizers.Regularizer):
    """``alpha/2 * ||w - reference||^2`` for one variable (``reference``: its source value).

    A Keras regulariser, so it works on every backend: attach it to a variable with
    ``variable.regularizer = L2SP(alpha, value)`` (what :func:`apply_l2sp` does) and Keras adds
    it to the loss while the variable is trainable. With ``reference`` zeros it is plain L2
    (``alpha/2 ||w||^2``, half of ``keras.regularizers.L2(alpha)``'s ``alpha ||w||^2``).
    """

    def __init__(self, alpha: float, reference: np.ndarray):
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"`alpha` must be a finite number >= 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.reference = np.array(reference, dtype=np.float32)

    def __call__(self, x):
        reference = keras.ops.convert_to_tensor(self.reference, dtype=x.dtype)
        return 0.5 * self.alpha * keras.ops.sum(keras.ops.square(x - reference))

    def get_config(self) -> dict:
        return {"alpha": self.alpha, "reference": self.reference.tolist()}


def apply_l2sp(backbone: keras.layers.Layer, alpha: float, head: keras.layers.Layer | None = None,
               beta: float = 0.0, toward: str = "source") -> int:
    """Regularise every trainable-capable variable of ``backbone`` (kernels, batch-norm scales
    and offsets; not the moving statistics) toward its current value, so call it right after
    loading the source weights; and the variables of ``head`` toward 0 with ``beta``. Returns
    the number of parameters regularised.

    The training objective becomes
    ``J(W) = mean_i loss(f_W(x_i), y_i) + alpha/2 ||W - W_s||^2 + beta/2 ||W_head||^2``.
    ``toward="zero"`` gives the baseline L2-SP is compared with in the paper, plain L2 on the
    transferred weights: ``alpha/2 ||W||^2`` (weight decay toward 0, which forgets ``W_s``).
    Keras adds a regulariser only while its variable is trainable, so frozen layers add
    nothing. Compile the model afterwards.
    """
    checks.check_choice("toward", toward, ["source", "zero"])
    capable = capable_variables(backbone)
    for variable in capable:
        reference = keras.ops.convert_to_numpy(variable)
        variable.regularizer = L2SP(alpha, reference if toward == "source"
                                    else np.zeros_like(reference))
    if head is not None:
        for variable in head.trainable_weights:
            variable.regularizer = (L2SP(beta, np.zeros(variable.shape, np.float32))
                                    if beta else None)
    return int(sum(int(np.prod(v.shape)) for v in capable))


def _walk(layer):
    yield layer
    for inner in getattr(layer, "layers", ()):
        yield from _walk(inner)


def remove_regularizers(model: keras.layers.Layer) -> None:
    """Take every weight regulariser off ``model`` (e.g. the L2-SP of an earlier run)."""
    for variable in model.weights:
        variable.regularizer = None


def capable_variables(backbone: keras.layers.Layer) -> list:
    """The variables of ``backbone`` that can train (kernels, batch-norm scales and offsets; not
    the moving statistics), whatever is frozen now; the trainable flags are left as they were.
    (Every nested layer is unfrozen one by one: on TensorFlow, ``backbone.trainable = True``
    does nothing when the outer flag is already True, even if inner layers are frozen.)"""
    nested = list(_walk(backbone))                 # outer layers before the layers inside them
    before = [layer.trainable for layer in nested]
    for layer in nested:
        layer.trainable = True
    capable = list(backbone.trainable_weights)
    for layer, flag in zip(nested, before, strict=True):
        layer.trainable = flag
    return capable

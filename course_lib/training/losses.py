"""Cross-entropy on integer labels with label smoothing (Keras's sparse loss has no smoothing)."""

from __future__ import annotations

import keras
from keras import ops


class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy between integer labels y (batch,) and logits (batch, classes).

    The one-hot target is smoothed: (1 - smoothing) on the true class plus smoothing / classes
    everywhere (Szegedy et al. 2016). ``smoothing=0`` is the plain sparse cross-entropy.
    """

    def __init__(self, smoothing: float = 0.1, name: str = "smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got smoothing={smoothing}")
        self.smoothing = float(smoothing)

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        one_hot = ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=True, label_smoothing=self.smoothing
        )

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}

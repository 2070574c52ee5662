"""On-device image augmentation written with ``keras.ops`` / ``keras.random``.

``RandomCropFlip`` is a layer: put it at the top of the model and it runs on the accelerator
with the rest of the training step (no host work per batch). It only moves pixels inside each
image, so the order of the batch, and therefore the alignment with the labels, is unchanged.
At inference (``training=False``) it is the identity.
"""

from __future__ import annotations

import keras
from keras import ops


class RandomCropFlip(keras.layers.Layer):
    """Random crop after zero padding, plus an optional random horizontal flip, per image.

    Input and output: ``(batch, height, width, channels)``, any dtype (uint8 works: keep the
    data small on the device and rescale after this layer).

    Args:
        pad: pixels of zero padding on each side; the crop is the original size, so each image
            is shifted by up to ``pad`` pixels in each direction. 0 disables the crop.
        flip: flip each image left-right with probability 1/2 (not for digits or text).
        seed: seed of the layer's random generator.
    """

    def __init__(self, pad: int = 4, flip: bool = True, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got pad={pad}")
        self.pad = int(pad)
        self.flip = bool(flip)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False

    def call(self, images, training=None):
        if not training or (self.pad == 0 and not self.flip):
            return images
        shape = ops.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        p = self.pad
        padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]]) if p else images
        dy = keras.random.randint((batch, 1), 0, 2 * p + 1, seed=self.seed_generator)
        dx = keras.random.randint((batch, 1), 0, 2 * p + 1, seed=self.seed_generator)
        rows = dy + ops.arange(height, dtype="int32")[None, :]  # (batch, height)
        cols = dx + ops.arange(width, dtype="int32")[None, :]  # (batch, width)
        if self.flip:
            coin = keras.random.randint((batch, 1), 0, 2, seed=self.seed_generator)
            flipped = dx + (width - 1) - ops.arange(width, dtype="int32")[None, :]
            cols = ops.where(coin == 1, flipped, cols)
        channels = ops.shape(padded)[3]
        padded_width = ops.shape(padded)[2]
        row_index = ops.broadcast_to(
            rows[:, :, None, None], (batch, height, padded_width, channels)
        )
        out = ops.take_along_axis(padded, row_index, axis=1)  # (batch, height, W+2p, C)
        col_index = ops.broadcast_to(cols[:, None, :, None], (batch, height, width, channels))
        return ops.take_along_axis(out, col_index, axis=2)  # (batch, height, width, C)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pad": self.pad, "flip": self.flip, "seed": self.seed}

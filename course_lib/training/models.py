"""Small, fast models built with the functional API.

Both take raw pixels (uint8 or float, 0..255) and rescale inside the model, so the input
pipeline can keep uint8 data on the device. Both return logits (float32 even under a
mixed-precision policy). ``augment`` is an optional layer (e.g. ``RandomCropFlip``) placed
right after the input, so augmentation runs on the accelerator, in training only.
"""

from __future__ import annotations

import keras
from keras import layers

# Channel statistics of the CIFAR-10 training set, 0..1 scale (the JPEG copy agrees to 3 decimals).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def mnist_cnn(num_classes: int = 10, augment: layers.Layer | None = None) -> keras.Model:
    """The Keras "simple MNIST convnet": images (batch, 28, 28) -> logits (batch, classes).

    conv 32 -> max-pool -> conv 64 -> max-pool -> flatten -> dropout 0.5 -> dense.
    About 35k parameters.
    """
    inputs = keras.Input((28, 28))
    x = layers.Reshape((28, 28, 1))(inputs)
    if augment is not None:
        x = augment(x)
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(num_classes, dtype="float32")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def _conv_bn(x, filters: int, bn_momentum: float):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    return layers.ReLU()(x)


def cifar_resnet(
    num_classes: int = 10,
    widths: tuple[int, int, int, int] = (64, 128, 256, 512),
    augment: layers.Layer | None = None,
    bn_momentum: float = 0.9,
    logit_scale: float = 0.125,
) -> keras.Model:
    """ResNet-9 style CIFAR-10 network (Page's DAWNBench model): (batch, 32, 32, 3) -> logits.

    prep conv(w0) -> [conv(w1), pool, residual(2 convs)] -> [conv(w2), pool]
    -> [conv(w3), pool, residual(2 convs)] -> global max-pool -> dense (no bias) x logit_scale.
    Every conv is 3x3 conv -> batch norm -> ReLU. The default widths give 6.6M parameters;
    ``widths=(32, 64, 128, 256)`` is 4x cheaper. Input: uint8 or float pixels 0..255.
    """
    inputs = keras.Input((32, 32, 3))
    x = inputs
    if augment is not None:
        x = augment(x)
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Normalization(mean=CIFAR10_MEAN, variance=[s * s for s in CIFAR10_STD])(x)
    x = _conv_bn(x, widths[0], bn_momentum)
    for stage, filters in enumerate(widths[1:]):
        x = _conv_bn(x, filters, bn_momentum)
        x = layers.MaxPooling2D()(x)
        if stage != 1:
            skip = x
            x = _conv_bn(x, filters, bn_momentum)
            x = _conv_bn(x, filters, bn_momentum)
            x = layers.Add()([x, skip])
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dense(num_classes, use_bias=False)(x)
    outputs = layers.Rescaling(logit_scale, dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cifar_resnet")

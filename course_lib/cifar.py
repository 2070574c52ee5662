"""CIFAR-10 as chapters 07 and 08 use it: the source and target tasks (two disjoint halves of the
ten classes) and the small convolutional backbone that both chapters pre-train and transfer.

    x_src, y_src = cifar_task("source", "train")     # airplane automobile bird cat deer -> 0..4
    x_tgt, y_tgt = cifar_task("target", "train")     # dog frog horse ship truck         -> 0..4
    model = classifier(cifar_backbone(**BACKBONE), num_classes=5)

:func:`cifar_backbone` maps pixels ``(batch, 32, 32, 3)`` (uint8 or float, 0..255) to features
``(batch, widths[-1])``, with blocks named ``block1`` ... ``block4`` so that
:func:`block_features` can take any block's output. Freezing, training and feature extraction
are in :mod:`course_lib.finetuning`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

from course_lib.nn import checks

# The source and target tasks (document 003, section 2.4: a source task whose knowledge serves a
# *different* target task) are two halves of CIFAR-10 with no class in common.
# Labels of CIFAR-10: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog, 7 horse,
# 8 ship, 9 truck. Each target class has a visual cousin among the source classes (dog ~ cat,
# horse ~ deer, frog ~ bird, ship ~ airplane, truck ~ automobile), yet no target class is ever
# seen with a label during pre-training: a real transfer, not the same task twice.
TASK_CLASSES: dict[str, tuple[int, ...]] = {"source": (0, 1, 2, 3, 4), "target": (5, 6, 7, 8, 9)}
_CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
                  "dog", "frog", "horse", "ship", "truck")


def task_class_names(task: str) -> list[str]:
    """The CIFAR-10 class names of ``task`` ("source" or "target"), indexed by the task's label."""
    checks.check_choice("task", task, list(TASK_CLASSES))
    return [_CIFAR10_NAMES[c] for c in TASK_CLASSES[task]]


def select_classes(x: np.ndarray, y: np.ndarray,
                   classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``(x, y)`` whose label is in ``classes``, relabelled ``0..len(classes)-1`` in
    the order of ``classes``; the order of the rows is kept. x: (n, ...), y: (n,) int labels."""
    y = checks.as_index_array("y", y, ndim=1)
    checks.check_same_length("x", np.asarray(x), "y", y)
    classes = [int(c) for c in classes]
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"`classes` must be distinct labels, got {classes}")
    relabel = np.full(max(int(y.max(initial=0)), max(classes)) + 1, -1, dtype=np.int64)
    relabel[classes] = np.arange(len(classes))
    keep = relabel[y] >= 0
    return np.asarray(x)[keep], relabel[y[keep]]


def cifar_task(task: str, split: str = "train", *,
               sample: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the source or target task: CIFAR-10 images uint8 ``(n, 32, 32, 3)`` of the
    task's five classes (:data:`TASK_CLASSES`) and labels int64 ``(n,)`` in 0..4.

    ``split``: "train" or "test"; ``sample``: as in ``course_lib.data.load`` (None: the shipped
    sample in fast mode, 200 train / 50 test images per class; else the full data, 5000 / 1000).
    """
    from course_lib import data

    checks.check_choice("task", task, list(TASK_CLASSES))
    x, y = data.load("cifar10", split, sample=sample)
    return select_classes(x, y, TASK_CLASSES[task])


# Channel statistics of the CIFAR-10 training set, 0..1 scale (as in course_lib.training.models).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
BLOCKS = ("block1", "block2", "block3", "block4")


# The network of the course's source models (chapter 08 pre-trains the same one).
BACKBONE = {"widths": [16, 32, 64, 128], "convs_per_block": 1}


def cifar_backbone(widths: Sequence[int] = (16, 32, 64, 128), convs_per_block: int = 1,
                   bn_momentum: float = 0.9, name: str = "cifar_backbone") -> keras.Model:
    """A functional CNN from pixels to a feature vector, for pre-training and transfer.

    Input ``(batch, 32, 32, 3)``, uint8 or float pixels 0..255 (rescaled and normalised inside,
    so every user feeds raw images); output ``(batch, widths[-1])`` float32 features.

    Block ``i`` (1-based) is ``convs_per_block`` x [3x3 conv (no bias) -> batch norm -> ReLU],
    then 2x2 max-pooling; its layers are named ``block{i}_conv{j}``, ``block{i}_bn{j}``,
    ``block{i}_relu{j}`` and the block's output (the pooling layer) is named ``block{i}``, so
    ``model.get_layer("block2").output`` is block 2's feature map (see :func:`block_features`).
    After the last block: global average pooling, named ``features``. With the default four
    blocks the maps are 16x16, 8x8, 4x4 and 2x2, and the network has 98k parameters (about
    4M multiply-adds per image: cheap enough to pre-train on 2 CPU cores in minutes). The
    default is the network of the course's source models (:data:`BACKBONE`).

    For fine-tuning, freeze its batch-norm layers (``finetuning.set_trainable`` does unless
    asked otherwise): a frozen batch-norm layer runs in inference mode, with its pre-trained
    statistics, even inside ``fit``. Calling the backbone with ``training=False`` is not enough
    in a functional model once its layers are trainable (chapter 07 measures this).
    """
    widths = [checks.check_positive_int("widths", int(w)) for w in widths]
    if not 1 <= len(widths) <= 5:
        raise ValueError(f"`widths` must give 1 to 5 blocks for 32x32 images, got {widths}")
    convs_per_block = checks.check_positive_int("convs_per_block", convs_per_block)
    inputs = keras.Input((32, 32, 3), name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = layers.Normalization(mean=CIFAR10_MEAN, variance=[s * s for s in CIFAR10_STD],
                             name="normalize")(x)
    for i, filters in enumerate(widths, start=1):
        for j in range(1, convs_per_block + 1):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              name=f"block{i}_conv{j}")(x)
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"block{i}_bn{j}")(x)
            x = layers.ReLU(name=f"block{i}_relu{j}")(x)
        x = layers.MaxPooling2D(name=f"block{i}")(x)
    outputs = layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inputs, outputs, name=name)


def block_names(backbone: keras.Model) -> list[str]:
    """The names of the blocks of a :func:`cifar_backbone`, bottom to top ("block1", ...)."""
    return [layer.name for layer in backbone.layers
            if layer.name.startswith("block") and layer.name[5:].isdigit()]


def block_features(backbone: keras.Model, block: str) -> keras.Model:
    """A model sharing ``backbone``'s layers (and weights) from its input to the output of
    ``block`` (e.g. "block2"), global-average-pooled: pixels (batch, 32, 32, 3) -> (batch,
    channels of that block). For probing what each block has learned."""
    names = block_names(backbone)
    if block not in names:
        raise ValueError(f"`block` must be one of {names}, got {block!r}")
    pooled = layers.GlobalAveragePooling2D(name=f"{block}_pooled")(backbone.get_layer(block).output)
    return keras.Model(backbone.input, pooled, name=f"{backbone.name}_{block}")


def classifier(backbone: keras.Model, num_classes: int, *, augment: layers.Layer | None = None,
               dropout: float = 0.0, name: str = "classifier") -> keras.Model:
    """``backbone`` with a new dense head: pixels (batch, 32, 32, 3) -> logits (batch, classes).

    ``augment`` (e.g. ``RandomCropFlip``) runs before the backbone, in training only. The head
    is a Dense layer named ``head`` (with ``dropout`` before it). Freeze or unfreeze parts of
    the backbone with :func:`course_lib.finetuning.set_trainable`, which keeps batch norm in
    inference mode.
    """
    num_classes = checks.check_positive_int("num_classes", num_classes)
    inputs = keras.Input(backbone.input_shape[1:], name="images")
    x = augment(inputs) if augment is not None else inputs
    x = backbone(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="head", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)

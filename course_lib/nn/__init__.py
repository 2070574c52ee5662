"""NumPy reference implementations of the course's neural-network pieces (NumPy only).

    from course_lib.nn import Dense, Sequential, SGD, SparseCategoricalCrossentropy
    from course_lib.nn import activations, losses, metrics, gradient_check

Layers use Keras's weight layouts (``get_weights``/``set_weights`` copy both ways) and are
checked against Keras and against central-difference gradients in ``tests/nn``.
"""

from course_lib.nn import activations, checks, clipping, losses, metrics, optimizers
from course_lib.nn.clipping import clip_by_global_norm
from course_lib.nn.gradcheck import (
    gradient_check,
    layer_gradient_check,
    numerical_gradient,
    relative_error,
)
from course_lib.nn.layers import (
    GRU,
    LSTM,
    Activation,
    AveragePooling2D,
    AvgPool2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling2D,
    Layer,
    MaxPool2D,
    MaxPooling2D,
    MultiHeadAttention,
    SimpleRNN,
    ZeroPadding2D,
    scaled_dot_product_attention,
)
from course_lib.nn.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    Loss,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
)
from course_lib.nn.model import History, Sequential
from course_lib.nn.optimizers import SGD, Adam, AdamW, Optimizer, RMSprop

__all__ = [
    "GRU", "LSTM", "SGD", "Activation", "Adam", "AdamW", "BatchNormalization", "BinaryCrossentropy",
    "CategoricalCrossentropy", "Conv2D", "Dense", "Dropout", "Embedding", "Flatten", "History",
    "Layer", "Loss", "MaxPool2D", "MaxPooling2D", "MeanSquaredError", "Optimizer", "RMSprop",
    "Sequential", "SimpleRNN", "SparseCategoricalCrossentropy", "activations", "checks",
    "clip_by_global_norm", "clipping", "gradient_check", "layer_gradient_check", "losses",
    "metrics", "numerical_gradient", "optimizers", "relative_error",
    "MultiHeadAttention", "scaled_dot_product_attention",
    "AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D", "ZeroPadding2D",
]

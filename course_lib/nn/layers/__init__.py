"""NumPy layers with forward and backward passes, in Keras's weight layouts."""

from course_lib.nn.layers.attention import MultiHeadAttention, scaled_dot_product_attention
from course_lib.nn.layers.base import Layer
from course_lib.nn.layers.conv import Conv2D
from course_lib.nn.layers.dense import Activation, Dense
from course_lib.nn.layers.dropout import Dropout
from course_lib.nn.layers.embedding import Embedding
from course_lib.nn.layers.normalization import BatchNormalization
from course_lib.nn.layers.pooling import (
    AveragePooling2D,
    AvgPool2D,
    GlobalAveragePooling2D,
    MaxPool2D,
    MaxPooling2D,
)
from course_lib.nn.layers.recurrent import GRU, LSTM, SimpleRNN
from course_lib.nn.layers.reshaping import Flatten, ZeroPadding2D

__all__ = [
    "GRU", "LSTM", "Activation", "BatchNormalization", "Conv2D", "Dense", "Dropout", "Embedding",
    "Flatten", "Layer", "MaxPool2D", "MaxPooling2D", "MultiHeadAttention", "SimpleRNN",
    "scaled_dot_product_attention",
    "AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D", "ZeroPadding2D",
]

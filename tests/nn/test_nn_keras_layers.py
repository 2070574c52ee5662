"""Every NumPy layer against its Keras counterpart with the same weights (float32):
forward max abs difference < 1e-5, weight and input gradients (Keras autodiff) < 1e-4."""

import numpy as np
import pytest
from nn_keras_helpers import keras, keras_output_and_grads

from course_lib import nn

FWD_TOL, GRAD_TOL = 1e-5, 1e-4

CASES = {
    # name: (NumPy layer, Keras layer, input shape)
    "dense": (lambda: nn.Dense(6, seed=1), lambda: keras.layers.Dense(6), (5, 7)),
    "dense_relu": (lambda: nn.Dense(6, activation="relu", seed=1),
                   lambda: keras.layers.Dense(6, activation="relu"), (5, 7)),
    "dense_softmax": (lambda: nn.Dense(6, activation="softmax", seed=1),
                      lambda: keras.layers.Dense(6, activation="softmax"), (5, 7)),
    "dense_sigmoid": (lambda: nn.Dense(6, activation="sigmoid", seed=1),
                      lambda: keras.layers.Dense(6, activation="sigmoid"), (5, 7)),
    "dense_tanh": (lambda: nn.Dense(6, activation="tanh", seed=1),
                   lambda: keras.layers.Dense(6, activation="tanh"), (5, 7)),
    "dense_leaky_relu": (lambda: nn.Dense(6, activation="leaky_relu", seed=1),
                         lambda: keras.layers.Dense(6, activation="leaky_relu"), (5, 7)),
    "activation_softmax": (lambda: nn.Activation("softmax"),
                           lambda: keras.layers.Activation("softmax"), (5, 7)),
    "activation_tanh": (lambda: nn.Activation("tanh"), lambda: keras.layers.Activation("tanh"),
                        (5, 7)),
    "conv_valid_s1": (lambda: nn.Conv2D(4, 3, seed=1),
                      lambda: keras.layers.Conv2D(4, 3), (2, 8, 7, 3)),
    "conv_same_s1": (lambda: nn.Conv2D(4, 3, padding="same", seed=1),
                     lambda: keras.layers.Conv2D(4, 3, padding="same"), (2, 8, 7, 3)),
    "conv_valid_s2": (lambda: nn.Conv2D(4, 3, strides=2, seed=1),
                      lambda: keras.layers.Conv2D(4, 3, strides=2), (2, 8, 7, 3)),
    "conv_same_s2": (lambda: nn.Conv2D(4, 3, strides=2, padding="same", seed=1),
                     lambda: keras.layers.Conv2D(4, 3, strides=2, padding="same"), (2, 8, 7, 3)),
    "conv_same_s2_even_kernel": (
        lambda: nn.Conv2D(4, (2, 4), strides=2, padding="same", activation="relu", seed=1),
        lambda: keras.layers.Conv2D(4, (2, 4), strides=2, padding="same", activation="relu"),
        (2, 7, 8, 3)),
    "maxpool_valid": (lambda: nn.MaxPool2D(2), lambda: keras.layers.MaxPooling2D(2),
                      (2, 7, 6, 3)),
    "maxpool_same": (lambda: nn.MaxPool2D(2, padding="same"),
                     lambda: keras.layers.MaxPooling2D(2, padding="same"), (2, 7, 5, 3)),
    "maxpool_overlap": (lambda: nn.MaxPool2D(3, strides=2, padding="same"),
                        lambda: keras.layers.MaxPooling2D(3, strides=2, padding="same"),
                        (2, 7, 6, 3)),
    "maxpool_tiled_cut": (lambda: nn.MaxPool2D((2, 3)), lambda: keras.layers.MaxPooling2D((2, 3)),
                          (2, 7, 8, 3)),
    "avgpool_valid": (lambda: nn.AveragePooling2D(2), lambda: keras.layers.AveragePooling2D(2),
                      (2, 7, 6, 3)),
    "avgpool_same": (lambda: nn.AveragePooling2D(2, padding="same"),
                     lambda: keras.layers.AveragePooling2D(2, padding="same"), (2, 7, 5, 3)),
    "avgpool_overlap": (lambda: nn.AveragePooling2D(3, strides=2, padding="same"),
                        lambda: keras.layers.AveragePooling2D(3, strides=2, padding="same"),
                        (2, 7, 6, 3)),
    "global_avgpool": (lambda: nn.GlobalAveragePooling2D(),
                       lambda: keras.layers.GlobalAveragePooling2D(), (2, 5, 4, 3)),
    "zero_padding": (lambda: nn.ZeroPadding2D((1, 2)), lambda: keras.layers.ZeroPadding2D((1, 2)),
                     (2, 3, 4, 2)),
    "zero_padding_asymmetric": (lambda: nn.ZeroPadding2D(((0, 2), (1, 0))),
                                lambda: keras.layers.ZeroPadding2D(((0, 2), (1, 0))),
                                (2, 3, 4, 2)),
    "flatten": (lambda: nn.Flatten(), lambda: keras.layers.Flatten(), (2, 3, 4, 2)),
    "batchnorm_features": (lambda: nn.BatchNormalization(),
                           lambda: keras.layers.BatchNormalization(), (8, 5)),
    "batchnorm_images": (lambda: nn.BatchNormalization(momentum=0.9, epsilon=1e-5),
                         lambda: keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
                         (4, 3, 3, 2)),
    "simple_rnn": (lambda: nn.SimpleRNN(5, seed=1), lambda: keras.layers.SimpleRNN(5),
                   (3, 6, 4)),
    "simple_rnn_sequences": (lambda: nn.SimpleRNN(5, return_sequences=True, seed=1),
                             lambda: keras.layers.SimpleRNN(5, return_sequences=True),
                             (3, 6, 4)),
    "lstm": (lambda: nn.LSTM(5, seed=1), lambda: keras.layers.LSTM(5), (3, 6, 4)),
    "lstm_sequences": (lambda: nn.LSTM(5, return_sequences=True, seed=1),
                       lambda: keras.layers.LSTM(5, return_sequences=True), (3, 6, 4)),
    "gru": (lambda: nn.GRU(5, seed=1), lambda: keras.layers.GRU(5), (3, 6, 4)),
    "gru_sequences": (lambda: nn.GRU(5, return_sequences=True, seed=1),
                      lambda: keras.layers.GRU(5, return_sequences=True), (3, 6, 4)),
}


def _randomise(layer, g):
    """Random weights (also biases, BN statistics) so that every term matters."""
    weights = []
    for name, w in zip(layer.weight_names, layer.get_weights(), strict=True):
        new = (w + 0.3 * g.standard_normal(w.shape)).astype(np.float32)
        if name == "moving_variance":
            new = g.uniform(0.5, 2.0, w.shape).astype(np.float32)
        weights.append(new)
    layer.set_weights(weights)


def compare(np_layer, k_layer, x, training, input_grad=True):
    g = np.random.default_rng(1)
    out = np_layer.forward(x, training=training)
    _randomise(np_layer, g)
    k_layer.build(x.shape)
    k_layer.set_weights(np_layer.get_weights())
    out = np_layer.forward(x, training=training)
    r = g.standard_normal(out.shape).astype(np.float32)
    grad_x = np_layer.backward(r)
    k_out, k_grads, k_grad_x = keras_output_and_grads(k_layer, x, r, training, input_grad)
    assert np.abs(out - k_out).max() < FWD_TOL
    assert set(k_grads) == set(np_layer.params)
    for name, kg in k_grads.items():
        assert np.abs(np_layer.grads[name] - kg).max() < GRAD_TOL, name
    if input_grad:
        assert np.abs(grad_x - k_grad_x).max() < GRAD_TOL
    # Weights (including BatchNorm's moving statistics) agree after the step.
    for ours, theirs in zip(np_layer.get_weights(), k_layer.get_weights(), strict=True):
        assert np.abs(ours - theirs).max() < FWD_TOL


# Both modes where they differ (BatchNorm) plus a few others; training mode everywhere.
MODES = [(case, True) for case in sorted(CASES)] + [
    (case, False) for case in ("batchnorm_features", "batchnorm_images", "dense", "conv_same_s2",
                               "lstm")]


@pytest.mark.parametrize(("case", "training"), MODES)
def test_layer_matches_keras(case, training):
    make_np, make_k, shape = CASES[case]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    compare(make_np(), make_k(), x, training)


def test_weights_copy_from_keras_to_numpy():
    k_layer = keras.layers.LSTM(4)
    x = np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)
    k_out = np.asarray(k_layer(x))
    ours = nn.LSTM(4)
    ours.forward(x)
    ours.set_weights(k_layer.get_weights())
    assert np.abs(ours.forward(x) - k_out).max() < FWD_TOL


def test_embedding_matches_keras():
    ids = np.random.default_rng(0).integers(0, 9, (3, 5))
    ours, theirs = nn.Embedding(9, 4, seed=1), keras.layers.Embedding(9, 4)
    compare(ours, theirs, ids, training=True, input_grad=False)


def test_dropout_matches_keras():
    x = np.random.default_rng(0).uniform(0.5, 1.5, (64, 32)).astype(np.float32)
    k_layer = keras.layers.Dropout(0.25, seed=0)
    ours = nn.Dropout(0.25, seed=0)
    # Inference: both are the identity.
    assert np.array_equal(ours.forward(x), x)
    assert np.array_equal(np.asarray(k_layer(x, training=False)), x)
    # Training: the same survivors are scaled by 1 / (1 - rate) (masks differ by RNG,
    # so ours is given Keras's mask); the keep fraction is about 1 - rate in both.
    k_out = np.asarray(k_layer(x, training=True))
    out = ours.forward(x, training=True)
    assert abs((out != 0).mean() - 0.75) < 0.03 and abs((k_out != 0).mean() - 0.75) < 0.03
    ours._scale = (k_out != 0).astype(np.float32) / np.float32(0.75)
    assert np.abs(x * ours._scale - k_out).max() < FWD_TOL
    r = np.ones_like(x)
    assert np.array_equal(ours.backward(r), ours._scale)


@pytest.mark.parametrize(("pool", "shape"), [(2, (2, 6, 6, 3)), (2, (2, 5, 5, 3)),
                                             ((3, 2), (2, 7, 6, 3))])
def test_maxpool_ties_go_to_the_first_maximum_as_in_keras(pool, shape):
    """0/1 images have many tied maxima: both code paths (tiled windows, padded windows) send
    the gradient to the first one in row-major order, as Keras does."""
    g = np.random.default_rng(0)
    x = g.integers(0, 2, shape).astype(np.float32)
    ours = nn.MaxPool2D(pool, padding="same")
    out = ours.forward(x)
    r = g.standard_normal(out.shape).astype(np.float32)
    k_out, _, k_grad_x = keras_output_and_grads(keras.layers.MaxPooling2D(pool, padding="same"),
                                                x, r)
    assert np.array_equal(out, k_out)
    assert np.abs(ours.backward(r) - k_grad_x).max() < FWD_TOL

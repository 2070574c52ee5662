"""Losses and activations against Keras, and their numerical stability."""

import numpy as np
import pytest
from nn_keras_helpers import keras, keras_loss_and_grad

from course_lib import nn
from course_lib.nn import activations

G = np.random.default_rng(0)
LABELS = G.integers(0, 5, 8)
ONE_HOT = np.eye(5, dtype=np.float32)[LABELS]
LOGITS = G.standard_normal((8, 5)).astype(np.float32) * 3
PROBS = activations.softmax(LOGITS)
BIN = G.integers(0, 2, (8, 1)).astype(np.float32)
BIN_LOGITS = G.standard_normal((8, 1)).astype(np.float32) * 3

CASES = {
    "mse": (nn.MeanSquaredError(), keras.losses.MeanSquaredError(), ONE_HOT, PROBS),
    "bce": (nn.BinaryCrossentropy(), keras.losses.BinaryCrossentropy(), BIN,
            activations.sigmoid(BIN_LOGITS)),
    "bce_logits": (nn.BinaryCrossentropy(from_logits=True),
                   keras.losses.BinaryCrossentropy(from_logits=True), BIN, BIN_LOGITS),
    "cce": (nn.CategoricalCrossentropy(), keras.losses.CategoricalCrossentropy(), ONE_HOT,
            PROBS * 1.3),
    "cce_logits": (nn.CategoricalCrossentropy(from_logits=True),
                   keras.losses.CategoricalCrossentropy(from_logits=True), ONE_HOT, LOGITS),
    "sparse": (nn.SparseCategoricalCrossentropy(),
               keras.losses.SparseCategoricalCrossentropy(), LABELS, PROBS),
    "sparse_logits": (nn.SparseCategoricalCrossentropy(from_logits=True),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True), LABELS,
                      LOGITS),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_matches_keras(case):
    ours, theirs, y, pred = CASES[case]
    value, grad = ours.value_and_grad(y, pred)
    k_value, k_grad = keras_loss_and_grad(theirs, y, pred)
    assert abs(value - k_value) < 1e-5 * max(1.0, abs(k_value))
    assert np.abs(grad - k_grad).max() < 1e-4
    assert ours(y, pred) == value and np.array_equal(ours.gradient(y, pred), grad)


EXTREME = {
    "bce_logits": (nn.BinaryCrossentropy(from_logits=True),
                   keras.losses.BinaryCrossentropy(from_logits=True),
                   np.array([[0], [1], [1], [0]], np.float32),
                   np.array([[1e4], [-1e4], [1e4], [-1e4]], np.float32)),
    "bce_probs_0_1": (nn.BinaryCrossentropy(), keras.losses.BinaryCrossentropy(),
                      np.array([[0], [1], [1], [0]], np.float32),
                      np.array([[1], [0], [1], [0]], np.float32)),
    "cce_logits": (nn.CategoricalCrossentropy(from_logits=True),
                   keras.losses.CategoricalCrossentropy(from_logits=True),
                   np.eye(3, dtype=np.float32)[[0, 2]],
                   np.array([[-1e4, 1e4, 0], [1e4, -1e4, 1e4]], np.float32)),
    "cce_probs_0_1": (nn.CategoricalCrossentropy(), keras.losses.CategoricalCrossentropy(),
                      np.eye(3, dtype=np.float32)[[0, 2]],
                      np.array([[0, 1, 0], [0, 0, 1]], np.float32)),
    "sparse_logits": (nn.SparseCategoricalCrossentropy(from_logits=True),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      np.array([0, 2]), np.array([[-1e4, 1e4, 0], [1e4, -1e4, 1e4]], np.float32)),
    "sparse_probs_0_1": (nn.SparseCategoricalCrossentropy(),
                         keras.losses.SparseCategoricalCrossentropy(),
                         np.array([0, 2]), np.array([[0, 1, 0], [0, 0, 1]], np.float32)),
}


@pytest.mark.parametrize("case", sorted(EXTREME))
def test_loss_is_stable_at_extremes(case):
    ours, theirs, y, pred = EXTREME[case]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad = ours.value_and_grad(y, pred)
    assert np.isfinite(value) and np.isfinite(grad).all()
    k_value, k_grad = keras_loss_and_grad(theirs, y, pred)
    assert abs(value - k_value) <= 1e-5 * max(1.0, abs(k_value))
    assert np.abs(grad - k_grad).max() < 1e-4


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "softmax"])
def test_activation_matches_keras(name):
    x = np.concatenate([G.standard_normal((4, 6)), [[1e4, -1e4, 80, -80, 0, 1]]]).astype(np.float32)
    fn = activations.softmax if name == "softmax" else activations.ELEMENTWISE[name][0]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ours = fn(x)
    theirs = np.asarray(getattr(keras.activations, name)(x))
    assert np.isfinite(ours).all()
    assert np.abs(ours - theirs).max() < 1e-6


def test_log_softmax_is_finite_for_huge_logits():
    out = activations.log_softmax(np.array([[1e4, -1e4, 0.0]]))
    assert np.allclose(out, [[0.0, -2e4, -1e4]])

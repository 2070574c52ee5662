"""Each optimizer against keras.optimizers: 100 steps on the same least-squares problem, float32,
parameters equal to 1e-5. The Keras options that make them equal are the ones spelled out here
(see the course_lib.nn.optimizers docstring)."""

import numpy as np
import pytest
from nn_keras_helpers import keras

from course_lib import nn

G = np.random.default_rng(0)
X = G.standard_normal((16, 5)).astype(np.float32)
Y = G.standard_normal((16, 3)).astype(np.float32)
W0 = G.standard_normal((5, 3)).astype(np.float32)
B0 = G.standard_normal(3).astype(np.float32)
L2 = 0.05


def loss_grads(w, b, l2=0.0):
    """Gradients of mean((X w + b - Y)^2) (+ L2 term l2 * theta added to the gradient)."""
    err = X @ w + b - Y
    gw = (2.0 / err.size) * X.T @ err
    gb = (2.0 / err.size) * err.sum(axis=0)
    return [gw + l2 * w, gb + l2 * b]


CASES = {
    "sgd": (lambda: nn.SGD(0.1), lambda: keras.optimizers.SGD(0.1), 0.0),
    "sgd_momentum": (lambda: nn.SGD(0.05, momentum=0.9),
                     lambda: keras.optimizers.SGD(0.05, momentum=0.9), 0.0),
    "sgd_nesterov": (lambda: nn.SGD(0.05, momentum=0.9, nesterov=True),
                     lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True), 0.0),
    # Document 002 §4.1: theta <- theta - eta grad - eta lambda theta == Keras SGD(weight_decay).
    "sgd_l2": (lambda: nn.SGD(0.1, weight_decay=L2),
               lambda: keras.optimizers.SGD(0.1, weight_decay=L2), 0.0),
    # L2 with momentum == Keras SGD(momentum) fed with g + lambda theta.
    "sgd_momentum_l2": (lambda: nn.SGD(0.05, momentum=0.9, weight_decay=L2),
                        lambda: keras.optimizers.SGD(0.05, momentum=0.9), L2),
    "rmsprop": (lambda: nn.RMSprop(0.002), lambda: keras.optimizers.RMSprop(
        0.002, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False), 0.0),
    "adam": (lambda: nn.Adam(0.02), lambda: keras.optimizers.Adam(
        0.02, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False), 0.0),
    "adam_l2": (lambda: nn.Adam(0.02, weight_decay=L2), lambda: keras.optimizers.Adam(0.02), L2),
    "adamw": (lambda: nn.AdamW(0.02, weight_decay=0.1),
              lambda: keras.optimizers.AdamW(0.02, weight_decay=0.1), 0.0),
    "sgd_global_clipnorm": (lambda: nn.SGD(0.1, global_clipnorm=0.5),
                            lambda: keras.optimizers.SGD(0.1, global_clipnorm=0.5), 0.0),
    "sgd_clipnorm": (lambda: nn.SGD(0.1, clipnorm=0.3),
                     lambda: keras.optimizers.SGD(0.1, clipnorm=0.3), 0.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizer_matches_keras_over_100_steps(case):
    make_ours, make_keras, keras_l2 = CASES[case]
    ours, theirs = make_ours(), make_keras()
    params = [W0.copy(), B0.copy()]
    variables = [keras.Variable(W0.copy()), keras.Variable(B0.copy())]
    for _ in range(100):
        ours.apply_gradients(zip(loss_grads(*params), params, strict=True))
        k_params = [np.asarray(v) for v in variables]
        theirs.apply_gradients(zip(loss_grads(*k_params, keras_l2), variables, strict=True))
    for p, v in zip(params, variables, strict=True):
        assert np.abs(p - np.asarray(v)).max() < 1e-5
    assert not np.allclose(params[0], W0)  # it did move


def test_l2_weight_decay_is_the_document_formula():
    """Document 002 §4.1: theta <- theta - eta * grad - eta * lambda * theta."""
    theta = np.array([1.0, -2.0])
    grad = np.array([0.5, 0.25])
    nn.SGD(0.1, weight_decay=0.01).apply_gradients([(grad, theta)])
    assert np.allclose(theta, [1.0 - 0.1 * 0.5 - 0.1 * 0.01 * 1.0,
                               -2.0 - 0.1 * 0.25 - 0.1 * 0.01 * -2.0])


def test_clip_by_global_norm():
    grads = [np.array([3.0, 0.0]), np.array([0.0, 4.0])]
    assert nn.clip_by_global_norm(grads, 1.0) == 5.0
    assert np.allclose(grads[0], [0.6, 0.0]) and np.allclose(grads[1], [0.0, 0.8])


def test_simple_rnn_clipnorm_bounds_the_gradient_norm():
    layer = nn.SimpleRNN(4, clipnorm=0.01, seed=0)
    x = np.random.default_rng(0).standard_normal((3, 5, 2)).astype(np.float32)
    layer.backward(np.ones_like(layer.forward(x)))
    assert abs(nn.clipping.global_norm(list(layer.grads.values())) - 0.01) < 1e-6

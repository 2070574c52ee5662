"""Float64 central-difference gradient checks of every activation, loss and layer:
relative error < 1e-6."""

import numpy as np
import pytest

from course_lib import nn
from course_lib.nn import (
    LSTM,
    Activation,
    BatchNormalization,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    MaxPool2D,
    MeanSquaredError,
    SimpleRNN,
    SparseCategoricalCrossentropy,
    activations,
    gradient_check,
    layer_gradient_check,
    numerical_gradient,
)

TOL = 1e-6
F64 = {"dtype": np.float64}


def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "linear"])
def test_elementwise_activation_derivatives(name):
    f, df = activations.ELEMENTWISE[name]
    x = rng().standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the ReLU kink
    numeric = numerical_gradient(lambda: float(np.sum(f(x))), x)
    assert np.abs(numeric - df(x)).max() < TOL


def test_softmax_backward():
    g = rng()
    x, r = g.standard_normal((3, 6)), g.standard_normal((3, 6))
    numeric = numerical_gradient(lambda: float(np.sum(activations.softmax(x) * r)), x)
    analytic = activations.softmax_backward(activations.softmax(x), r)
    assert np.abs(numeric - analytic).max() < TOL


def _loss_check(loss, y_true, y_pred):
    def f():
        value, grad = loss.value_and_grad(y_true, y_pred)
        return value, {"y_pred": grad}

    errors = gradient_check(f, {"y_pred": y_pred})
    assert errors["y_pred"] < TOL, errors


def test_mse_gradient():
    g = rng()
    _loss_check(MeanSquaredError(), g.standard_normal((5, 3)), g.standard_normal((5, 3)))


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_crossentropy_gradient(from_logits):
    g = rng()
    y = g.integers(0, 2, (6, 1)).astype(np.float64)
    pred = g.standard_normal((6, 1)) if from_logits else g.uniform(0.05, 0.95, (6, 1))
    _loss_check(BinaryCrossentropy(from_logits=from_logits), y, pred)


@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_crossentropy_gradient(from_logits):
    g = rng()
    y = np.eye(4)[g.integers(0, 4, 5)]
    pred = g.standard_normal((5, 4)) if from_logits else g.uniform(0.1, 1.0, (5, 4))
    _loss_check(CategoricalCrossentropy(from_logits=from_logits), y, pred)


@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_categorical_crossentropy_gradient(from_logits):
    g = rng()
    y = g.integers(0, 4, 5)
    pred = g.standard_normal((5, 4)) if from_logits else g.uniform(0.1, 1.0, (5, 4))
    _loss_check(SparseCategoricalCrossentropy(from_logits=from_logits), y, pred)


LAYER_CASES = {
    "dense_linear": (lambda: Dense(4, seed=1, **F64), (3, 5)),
    "dense_relu": (lambda: Dense(4, activation="relu", seed=1, **F64), (3, 5)),
    "dense_sigmoid": (lambda: Dense(4, activation="sigmoid", seed=1, **F64), (3, 5)),
    "dense_tanh": (lambda: Dense(4, activation="tanh", seed=1, **F64), (3, 5)),
    "dense_leaky_relu": (lambda: Dense(4, activation="leaky_relu", seed=1, **F64), (3, 5)),
    "dense_softmax": (lambda: Dense(4, activation="softmax", seed=1, **F64), (3, 5)),
    "dense_sequence": (lambda: Dense(3, seed=1, **F64), (2, 3, 4)),
    "activation_softmax": (lambda: Activation("softmax", **F64), (3, 5)),
    "conv_valid_s1": (lambda: Conv2D(3, 3, padding="valid", seed=1, **F64), (2, 6, 5, 2)),
    "conv_same_s1": (lambda: Conv2D(3, 3, padding="same", seed=1, **F64), (2, 6, 5, 2)),
    "conv_valid_s2": (lambda: Conv2D(3, 3, strides=2, padding="valid", seed=1, **F64),
                      (2, 7, 6, 2)),
    "conv_same_s2": (lambda: Conv2D(3, (3, 2), strides=2, padding="same", seed=1, **F64),
                     (2, 6, 7, 2)),
    "conv_relu": (lambda: Conv2D(2, 2, activation="relu", seed=1, **F64), (2, 4, 4, 1)),
    "maxpool_valid": (lambda: MaxPool2D(2, **F64), (2, 4, 5, 2)),
    "maxpool_same_s1": (lambda: MaxPool2D(3, strides=1, padding="same", **F64), (2, 4, 5, 2)),
    "maxpool_same_s2": (lambda: MaxPool2D(2, padding="same", **F64), (2, 5, 5, 2)),
    "maxpool_tiled_cut": (lambda: MaxPool2D((2, 3), **F64), (2, 5, 7, 2)),
    "avgpool_valid": (lambda: nn.AveragePooling2D(2, **F64), (2, 5, 4, 2)),
    "avgpool_same_s1": (lambda: nn.AveragePooling2D(3, strides=1, padding="same", **F64),
                        (2, 4, 5, 2)),
    "avgpool_same_s2": (lambda: nn.AveragePooling2D(2, padding="same", **F64), (2, 5, 5, 2)),
    "global_avgpool": (lambda: nn.GlobalAveragePooling2D(**F64), (2, 3, 4, 2)),
    "zero_padding": (lambda: nn.ZeroPadding2D(((1, 0), (2, 1)), **F64), (2, 3, 2, 2)),
    "flatten": (lambda: Flatten(**F64), (2, 3, 2, 2)),
    "batchnorm_2d": (lambda: BatchNormalization(**F64), (6, 3)),
    "batchnorm_4d": (lambda: BatchNormalization(**F64), (3, 2, 2, 3)),
    "simple_rnn_last": (lambda: SimpleRNN(3, seed=1, **F64), (2, 4, 3)),
    "simple_rnn_sequences": (lambda: SimpleRNN(3, return_sequences=True, seed=1, **F64),
                             (2, 4, 3)),
    "lstm_last": (lambda: LSTM(3, seed=1, **F64), (2, 4, 3)),
    "lstm_sequences": (lambda: LSTM(3, return_sequences=True, seed=1, **F64), (2, 4, 3)),
    "gru_last": (lambda: nn.GRU(3, seed=1, **F64), (2, 4, 3)),
    "gru_sequences": (lambda: nn.GRU(3, return_sequences=True, seed=1, **F64), (2, 4, 3)),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
@pytest.mark.parametrize("training", [False, True])
def test_layer_gradients(case, training):
    make, shape = LAYER_CASES[case]
    layer = make()
    x = rng().standard_normal(shape)
    layer.forward(x)
    for p in layer.params.values():  # non-trivial biases / BN scales
        p += 0.1 * np.random.default_rng(7).standard_normal(p.shape)
    errors = layer_gradient_check(layer, x, training=training)
    assert set(errors) == set(layer.params) | {"x"}
    assert max(errors.values()) < TOL, errors


def test_batchnorm_inference_uses_moving_statistics():
    layer = BatchNormalization(**F64)
    x = rng().standard_normal((6, 3))
    layer.forward(x)
    layer.state["moving_mean"][...] = [0.5, -0.2, 0.1]
    layer.state["moving_variance"][...] = [2.0, 0.5, 1.5]
    assert max(layer_gradient_check(layer, x, training=False).values()) < TOL


def test_dropout_gradient_with_fixed_mask():
    layer = Dropout(0.4, seed=3, **F64)
    x = rng().standard_normal((4, 6))
    errors = layer_gradient_check(layer, x, training=True)
    assert errors["x"] < TOL


def test_embedding_gradient():
    layer = Embedding(7, 3, seed=1, **F64)
    ids = np.array([[1, 2, 1], [6, 0, 1]])
    errors = layer_gradient_check(layer, ids)
    assert set(errors) == {"embeddings"} and errors["embeddings"] < TOL


def test_gradient_check_detects_a_wrong_gradient():
    w = rng().standard_normal(3)
    errors = gradient_check(lambda: (float(np.sum(w ** 2)), {"w": 3 * w}), {"w": w})
    assert errors["w"] > 0.1


def test_sequential_backpropagation_through_all_layers():
    """The model's chained backward pass (first layer skips its input gradient) is exact."""
    model = nn.Sequential([Conv2D(2, 3, padding="same", activation="tanh", seed=0, **F64),
                           BatchNormalization(**F64), MaxPool2D(2, **F64), Flatten(**F64),
                           Dense(3, seed=1, **F64)])
    model.compile(nn.SGD(), SparseCategoricalCrossentropy(from_logits=True))
    g = rng()
    x, y = g.standard_normal((4, 4, 4, 1)), g.integers(0, 3, 4)
    model.build(x.shape[1:])
    assert model.layers[0].compute_input_grad is False

    def f():
        loss, grad = model.loss.value_and_grad(y, model._forward(x, True))
        model._backward(grad)
        return loss, {f"{i}/{k}": v for i, layer in enumerate(model.layers)
                      for k, v in layer.grads.items()}

    params = {f"{i}/{k}": v for i, layer in enumerate(model.layers)
              for k, v in layer.params.items()}
    errors = gradient_check(f, params)
    assert max(errors.values()) < TOL, errors

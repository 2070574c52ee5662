"""Sequential.input_gradient: dL/dx against central differences (float64, relative error < 1e-6),
no side effects on the weights or the training path, clear errors."""

import numpy as np
import pytest

from course_lib import nn

TOL = 1e-6
F64 = {"dtype": np.float64}


def mlp64():
    model = nn.Sequential([nn.Flatten(**F64), nn.Dense(7, activation="tanh", seed=0, **F64),
                           nn.Dropout(0.5, seed=0, **F64),
                           nn.Dense(4, activation="softmax", seed=1, **F64)])
    model.compile(nn.SGD(0.1), nn.SparseCategoricalCrossentropy())
    return model


def cnn64():
    model = nn.Sequential([
        nn.Conv2D(3, 3, activation="tanh", seed=0, **F64),
        nn.BatchNormalization(**F64),
        nn.MaxPool2D(2, **F64),
        nn.Flatten(**F64),
        nn.Dense(5, seed=1, **F64),
    ])
    model.compile(nn.Adam(0.01), nn.SparseCategoricalCrossentropy(from_logits=True))
    return model


def mean_loss(model, x, y):
    return model.loss(y, model.predict(x))


@pytest.mark.parametrize(("build", "shape", "classes"), [(mlp64, (5, 3, 4), 4),
                                                          (cnn64, (4, 6, 6, 2), 5)])
def test_input_gradient_matches_central_differences(build, shape, classes):
    g = np.random.default_rng(0)
    model = build()
    x = g.uniform(0, 1, shape)
    y = g.integers(0, classes, shape[0])
    model.build(shape[1:])
    if isinstance(model.layers[1], nn.BatchNormalization):  # non-trivial moving statistics
        bn = model.layers[1]
        bn.state["moving_mean"][...] = g.standard_normal(3) * 0.1
        bn.state["moving_variance"][...] = g.uniform(0.5, 2.0, 3)
    loss, grad = model.input_gradient(x, y)
    assert grad.shape == x.shape and grad.dtype == np.float64
    assert loss == pytest.approx(mean_loss(model, x, y), rel=1e-12)
    numeric = nn.numerical_gradient(lambda: mean_loss(model, x, y), x)
    assert nn.relative_error(grad, numeric) < TOL


def test_input_gradient_is_the_gradient_of_the_mean():
    """Row i of dL/dx is (1 / batch) x the gradient of example i's own loss."""
    g = np.random.default_rng(1)
    model = mlp64()
    x, y = g.uniform(0, 1, (6, 3, 4)), g.integers(0, 4, 6)
    _, grad = model.input_gradient(x, y)
    _, alone = model.input_gradient(x[2:3], y[2:3])
    np.testing.assert_allclose(grad[2] * 6, alone[0], rtol=1e-10)


def test_input_gradient_changes_no_weights_and_keeps_training_fast_path():
    g = np.random.default_rng(2)
    model = mlp64()
    x, y = g.uniform(0, 1, (8, 3, 4)), g.integers(0, 4, 8)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, seed=0)
    before = [w.copy() for w in model.get_weights()]
    model.input_gradient(x, y)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.layers[0].compute_input_grad is False  # restored: training skips dL/dx
    assert model.optimizer.iterations == 2


def test_training_mode_uses_dropout():
    g = np.random.default_rng(3)
    model = mlp64()
    x, y = g.uniform(0, 1, (8, 3, 4)), g.integers(0, 4, 8)
    _, inference = model.input_gradient(x, y)
    _, training = model.input_gradient(x, y, training=True)
    assert not np.allclose(inference, training)


def test_float32_model_returns_float32_gradient():
    model = nn.Sequential([nn.Dense(3, activation="relu", seed=0), nn.Dense(2, seed=1)])
    model.compile("sgd", nn.SparseCategoricalCrossentropy(from_logits=True))
    _, grad = model.input_gradient(np.ones((2, 4), np.float32), np.array([0, 1]))
    assert grad.shape == (2, 4) and grad.dtype == np.float32


def test_input_gradient_errors_name_the_problem():
    model = mlp64()
    x, y = np.zeros((3, 3, 4)), np.array([0, 1, 2])
    with pytest.raises(ValueError, match="same number of samples"):
        model.input_gradient(x, y[:2])
    with pytest.raises(ValueError, match="NaN"):
        model.input_gradient(np.full((3, 3, 4), np.nan), y)
    model.input_gradient(x, y)
    with pytest.raises(ValueError, match=r"\(batch, 3, 4\)"):
        model.input_gradient(np.zeros((3, 4, 3)), y)
    uncompiled = nn.Sequential([nn.Dense(2)])
    with pytest.raises(ValueError, match="compile"):
        uncompiled.input_gradient(np.zeros((2, 3)), np.array([0, 1]))
    text = nn.Sequential([nn.Embedding(10, 3, seed=0), nn.Flatten(), nn.Dense(2, seed=1)])
    text.compile("sgd", nn.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="integer inputs"):
        text.input_gradient(np.array([[1, 2], [3, 4]]), np.array([0, 1]))

"""course_lib.backprop: the chapter 03 helpers, and NumPy gradients against Keras autodiff."""

import numpy as np
import pytest

from course_lib import backprop, foundations, mlp, nn


def test_scalar_graph_matches_central_differences():
    params = {"w": np.array([-0.5]), "b": np.array([0.3])}
    graph = backprop.scalar_graph(2.0, -0.5, 0.3, 1.0)
    for name in ("w", "b"):
        numeric = nn.numerical_gradient(
            lambda: backprop.scalar_graph(2.0, params["w"][0], params["b"][0], 1.0)["L"], params[name])
        assert graph[f"dL/d{name}"] == pytest.approx(numeric[0], rel=1e-7)
    assert graph["dL/dz"] == pytest.approx(graph["p"] - 1.0)


def test_document_000_corrected_gradients_match_and_document_formula_does_not():
    params = backprop.doc000_params()
    x, y = np.linspace(-1, 1, 5), np.eye(3)[0]
    correct = backprop.doc000_correct_grads(x, y, params)
    for name, p in params.items():
        numeric = nn.numerical_gradient(lambda: backprop.doc000_loss(x, y, params), p)
        assert correct[name].shape == p.shape
        assert nn.relative_error(correct[name], numeric) < 1e-7
    assert backprop.doc000_document_grad_b2(x, y, params).shape != params["b2"].shape


def test_document_003_and_001_formulas_are_wrong_and_corrections_right():
    net = backprop.doc003_network()
    fw = backprop.doc003_forward(net)
    delta2 = (fw["a2"] - net["y"]) * float(fw["z2"] > 0)
    numeric_w2 = nn.numerical_gradient(lambda: backprop.doc003_loss(net), net["w2"])
    np.testing.assert_allclose(delta2 * fw["a1"], numeric_w2, rtol=1e-6)
    assert not np.allclose(np.full(2, delta2), numeric_w2)

    a = np.array([0.3, 0.8])
    w = np.array([1.5, -2.0])
    np.testing.assert_allclose(backprop.correct_hidden_delta(0.5, w, a), 0.5 * w * a * (1 - a))
    assert not np.allclose(backprop.doc001_hidden_delta(0.5, w, a),
                           backprop.correct_hidden_delta(0.5, w, a))


def test_model_loss_and_grads_pass_a_gradient_check():
    model = nn.Sequential([nn.Dense(4, activation="tanh", dtype=np.float64, seed=0),
                           nn.Dense(3, activation="softmax", dtype=np.float64, seed=1)])
    model.build((5,))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 5)), np.eye(3)[[0, 1, 2, 0, 1, 2]]
    loss = nn.CategoricalCrossentropy()
    errors = nn.gradient_check(lambda: backprop.model_loss_and_grads(model, x, y, loss),
                               backprop.model_params(model))
    assert set(errors) == {"0.kernel", "0.bias", "1.kernel", "1.bias"}
    assert max(errors.values()) < 1e-6


def test_keras_agrees_with_numpy_losses_gradients_and_optimizers():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (10 * 16, 784)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 10 * 16)]

    keras_model = mlp.keras_mlp(hidden=16, lr=0.1)
    numpy_model = mlp.numpy_mlp(hidden=16, lr=0.1)
    grads = backprop.keras_gradients(keras_model, x[:16], y[:16],
                                     keras.losses.CategoricalCrossentropy())
    numpy_model.set_weights(keras_model.get_weights())
    _, numpy_grads = backprop.model_loss_and_grads(numpy_model, x[:16], y[:16],
                                                   nn.CategoricalCrossentropy())
    for k, n in zip(grads, numpy_grads.values(), strict=True):
        assert nn.relative_error(k, n) < 1e-4

    a = mlp.numpy_step_losses(numpy_model, x, y, steps=10, batch_size=16)
    b = mlp.keras_step_losses(keras_model, x, y, steps=10, batch_size=16)
    assert np.max(np.abs(a - b)) < 1e-4

    path = foundations.keras_trajectory(keras.optimizers.Adam(learning_rate=0.3), steps=10)
    expected = foundations.trajectory(nn.Adam(learning_rate=0.3), steps=10)
    np.testing.assert_allclose(path, expected, atol=1e-4)

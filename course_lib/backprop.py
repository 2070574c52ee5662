"""Chapter 03 helpers: a scalar computational graph, the documents' backprop formulas (to test
them), a whole-model gradient check and Keras's automatic differentiation.

Column conventions follow the documents where a formula is quoted from them; everything else
uses the course's row convention (one example per row, kernels ``(n_in, n_out)``).
"""

from __future__ import annotations

import numpy as np

from course_lib import nn


def sigmoid(z):
    """Logistic function (the stable form of ``course_lib.nn.activations``)."""
    return nn.activations.sigmoid(z)


# -- a scalar computational graph ----------------------------------------------------------------
def scalar_graph(x: float, w: float, b: float, y: float) -> dict[str, float]:
    """Forward and backward pass of L = BCE(sigmoid(w x + b), y), node by node.

    Returns the forward values u = w x, z = u + b, p = sigmoid(z), L, and the backward values
    dL/dp, dL/dz, dL/du, dL/dw, dL/db, dL/dx, each the upstream gradient times a local one.
    """
    u = w * x
    z = u + b
    p = float(sigmoid(np.array(z)))
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    dp = -y / p + (1 - y) / (1 - p)           # local: dL/dp
    dz = dp * p * (1 - p)                     # local: dp/dz = p (1 - p)
    du = dz * 1.0                             # local: dz/du = 1
    return {"u": u, "z": z, "p": p, "L": float(loss), "dL/dp": dp, "dL/dz": dz, "dL/du": du,
            "dL/db": dz * 1.0, "dL/dw": du * x, "dL/dx": du * w}


# -- the two-layer network of document 000 section 4.2 (column vectors, as written there) ------
def doc000_params(n_in: int = 5, n_hidden: int = 4, n_out: int = 3, seed: int = 0) -> dict:
    """W1 (n_hidden, n_in), b1 (n_hidden,), W2 (n_out, n_hidden), b2 (n_out,) for
    z = W2 sigma(W1 x + b1) + b2 with sigma the logistic function."""
    rng = np.random.default_rng(seed)
    return {"W1": rng.standard_normal((n_hidden, n_in)), "b1": rng.standard_normal(n_hidden),
            "W2": rng.standard_normal((n_out, n_hidden)), "b2": rng.standard_normal(n_out)}


def doc000_logits(x: np.ndarray, params: dict) -> np.ndarray:
    """z = W2 sigma(W1 x + b1) + b2. x: (n_in,) -> (n_out,)."""
    return params["W2"] @ sigmoid(params["W1"] @ x + params["b1"]) + params["b2"]


def doc000_loss(x: np.ndarray, y: np.ndarray, params: dict) -> float:
    """Cross-entropy of softmax(z) against a one-hot y (n_out,). x: (n_in,)."""
    return float(-np.sum(y * nn.activations.log_softmax(doc000_logits(x, params))))


def doc000_correct_grads(x: np.ndarray, y: np.ndarray, params: dict) -> dict[str, np.ndarray]:
    """The correct gradients of doc000_loss: delta2 = p - y, dW2 = delta2 h^T,
    delta1 = (W2^T delta2) * sigma'(a1), dW1 = delta1 x^T; db = delta."""
    a1 = params["W1"] @ x + params["b1"]
    h = sigmoid(a1)
    p = nn.activations.softmax(params["W2"] @ h + params["b2"])
    delta2 = p - y
    delta1 = (params["W2"].T @ delta2) * h * (1 - h)
    return {"W1": np.outer(delta1, x), "b1": delta1, "W2": np.outer(delta2, h), "b2": delta2}


def doc000_document_grad_b2(x: np.ndarray, y: np.ndarray, params: dict) -> np.ndarray:
    """Document 000 section 4.2's dL/dw = (f - y) / sigma(z) (W2^T dz/dw), for w = b2.

    For the bias dz/db2 is the identity, so the formula reads ((f - y) / sigma(z)) * W2^T
    (NumPy broadcasting, the only way to multiply the pieces); returns what that gives.
    """
    z = doc000_logits(x, params)
    f = nn.activations.softmax(z)
    return (f - y) / sigmoid(z) * (params["W2"].T @ np.eye(len(z)))


# -- the 3-2-1 example of document 003 section 4.5.1 (with the corrected shapes) ---------------
def doc003_network(seed: int = 3) -> dict:
    """x (3,), y scalar, W1 (2, 3), b1 (2,), w2 (2,), b2 scalar; ReLU hidden and output,
    J = 0.5 (a2 - y)^2 (column convention, as in the document)."""
    rng = np.random.default_rng(seed)
    return {"x": rng.uniform(0.5, 1.5, 3), "y": 0.2, "W1": rng.uniform(0.1, 1.0, (2, 3)),
            "b1": rng.uniform(0.1, 0.5, 2), "w2": rng.uniform(0.1, 1.0, 2), "b2": 0.1}


def doc003_forward(net: dict) -> dict[str, np.ndarray]:
    """z1 = W1 x + b1, a1 = relu(z1), z2 = w2 . a1 + b2, a2 = relu(z2), J = 0.5 (a2 - y)^2."""
    z1 = net["W1"] @ net["x"] + net["b1"]
    a1 = np.maximum(z1, 0)
    z2 = float(net["w2"] @ a1 + net["b2"])
    a2 = max(z2, 0.0)
    return {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "J": 0.5 * (a2 - net["y"]) ** 2}


def doc003_loss(net: dict) -> float:
    """J of the network (for numerical gradients)."""
    return float(doc003_forward(net)["J"])


# -- document 001 section 3: the delta recursion -------------------------------------------------
def doc001_hidden_delta(delta_out: float, w_out: np.ndarray, a_hidden: np.ndarray) -> np.ndarray:
    """Document 001's delta_j = sum_i delta_i w_i a_j (one output unit, sigmoid hidden layer):
    the activation value a_j where the derivative f'(z_j) belongs."""
    return delta_out * w_out * a_hidden


def correct_hidden_delta(delta_out: float, w_out: np.ndarray, a_hidden: np.ndarray) -> np.ndarray:
    """delta_j = f'(z_j) sum_k w_kj delta_k; for a sigmoid hidden layer f'(z_j) = a_j (1 - a_j)."""
    return delta_out * w_out * a_hidden * (1 - a_hidden)


# -- whole-model gradient check and Keras autodiff -------------------------------------------------
def model_loss_and_grads(model: nn.Sequential, x: np.ndarray, y: np.ndarray,
                         loss: nn.Loss) -> tuple[float, dict[str, np.ndarray]]:
    """Forward and backward pass through every layer of ``model`` (built, float64).

    x: (batch, n_in); y: targets for ``loss``. Returns the loss and the gradients, keyed
    "<layer index>.<param name>" (e.g. "0.kernel").
    """
    out = x
    for layer in model.layers:
        out = layer.forward(out)
    value, grad = loss.value_and_grad(y, out)
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
    return value, {f"{i}.{name}": g.copy() for i, layer in enumerate(model.layers)
                   for name, g in layer.grads.items()}


def model_params(model: nn.Sequential) -> dict[str, np.ndarray]:
    """The model's parameter arrays (not copies), keyed like ``model_loss_and_grads``."""
    return {f"{i}.{name}": p for i, layer in enumerate(model.layers)
            for name, p in layer.params.items()}


def keras_gradients(model, x: np.ndarray, y: np.ndarray, loss_fn) -> list[np.ndarray]:
    """Gradients of ``loss_fn(y, model(x))`` for ``model.trainable_variables``, by the backend's
    automatic differentiation (TensorFlow or JAX), as NumPy arrays in Keras weight order."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss_fn(y, model(x))
        grads = tape.gradient(value, model.trainable_variables)
    elif backend == "jax":
        import jax

        def loss_of(trainable):
            out, _ = model.stateless_call(trainable, model.non_trainable_variables, x)
            return loss_fn(y, out)

        grads = jax.grad(loss_of)([v.value for v in model.trainable_variables])
    else:
        raise ValueError(f"keras_gradients supports the tensorflow and jax backends, not {backend!r}")
    return [keras.ops.convert_to_numpy(g) for g in grads]

"""Reference solution for exercises/ex02_mlp_from_scratch.py: a one-hidden-layer MLP in NumPy.

The network: x (batch, n_in) -> Dense + ReLU (n_hidden) -> Dense (n_out) -> softmax,
trained with mean softmax cross-entropy and plain mini-batch SGD.
"""

import numpy as np


def init_params(n_in: int, n_hidden: int, n_out: int, seed: int = 0) -> dict[str, np.ndarray]:
    """He-normal weights, zero biases (given: nothing to do here).

    Returns {"W1": (n_in, n_hidden), "b1": (n_hidden,), "W2": (n_hidden, n_out), "b2": (n_out,)}.
    """
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.standard_normal((n_in, n_hidden)) * np.sqrt(2.0 / n_in),
        "b1": np.zeros(n_hidden),
        "W2": rng.standard_normal((n_hidden, n_out)) * np.sqrt(2.0 / n_hidden),
        "b2": np.zeros(n_out),
    }


def forward(x: np.ndarray, params: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """Forward pass.

    x: (batch, n_in). Returns (probs, cache): probs (batch, n_out) softmax probabilities;
    cache: whatever backward() needs (here x, the hidden pre-activation a1, the hidden output h1
    and probs).
    """
    a1 = x @ params["W1"] + params["b1"]
    h1 = np.maximum(a1, 0.0)
    z2 = h1 @ params["W2"] + params["b2"]
    z2 = z2 - z2.max(axis=1, keepdims=True)
    e = np.exp(z2)
    probs = e / e.sum(axis=1, keepdims=True)
    return probs, {"x": x, "a1": a1, "h1": h1, "probs": probs}


def loss(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy. probs: (batch, n_out); y: (batch,) integer labels -> float."""
    picked = probs[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.maximum(picked, 1e-12))))


def backward(params: dict[str, np.ndarray], cache: dict, y: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of the mean cross-entropy loss with respect to every parameter.

    y: (batch,) integer labels. Returns {"W1", "b1", "W2", "b2"} with the parameters' shapes.
    """
    batch = len(y)
    dz2 = cache["probs"].copy()
    dz2[np.arange(batch), y] -= 1.0
    dz2 /= batch                                   # dL/dz2 = (p - onehot(y)) / batch
    dW2 = cache["h1"].T @ dz2
    db2 = dz2.sum(axis=0)
    dh1 = dz2 @ params["W2"].T
    da1 = dh1 * (cache["a1"] > 0)                  # ReLU'(a1)
    dW1 = cache["x"].T @ da1
    db1 = da1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def sgd_step(
    params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float
) -> dict[str, np.ndarray]:
    """One plain SGD step: returns a new dict {name: params[name] - lr * grads[name]}."""
    return {name: params[name] - lr * grads[name] for name in params}


def train(
    x: np.ndarray,
    y: np.ndarray,
    n_hidden: int = 64,
    epochs: int = 10,
    lr: float = 0.2,
    batch_size: int = 32,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], list[float]]:
    """Mini-batch SGD on (x, y), starting from init_params(x.shape[1], n_hidden, 10, seed).

    Every epoch: shuffle the rows (np.random.default_rng(seed).permutation), then for each batch
    of batch_size rows run forward, loss, backward and sgd_step.
    x: (n, n_in) floats in [0, 1]; y: (n,) integer labels in 0..9.
    Returns (params, history): the trained parameters and the mean training loss of each epoch.
    """
    rng = np.random.default_rng(seed)
    params = init_params(x.shape[1], n_hidden, 10, seed=seed)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            probs, cache = forward(x[idx], params)
            losses.append(loss(probs, y[idx]))
            params = sgd_step(params, backward(params, cache, y[idx]), lr)
        history.append(float(np.mean(losses)))
    return params, history


def predict(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """Predicted class ids. x: (batch, n_in) -> (batch,) integers."""
    probs, _ = forward(x, params)
    return probs.argmax(axis=1)

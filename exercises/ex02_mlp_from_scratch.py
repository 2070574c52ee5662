"""Exercise 02 (chapter 02): an MLP from scratch: forward, backward, SGD, training.

The network: x (batch, n_in) -> Dense + ReLU (n_hidden) -> Dense (n_out) -> softmax,
trained with mean softmax cross-entropy and plain mini-batch SGD.

Replace every `raise NotImplementedError` with your code (plain NumPy). Check your work
from a notebook with `course_lib.grading.check("ex02")`, or from a terminal with
`course grade`. Shapes are given in each docstring: match them exactly.
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
    raise NotImplementedError


def loss(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy. probs: (batch, n_out); y: (batch,) integer labels -> float."""
    raise NotImplementedError


def backward(params: dict[str, np.ndarray], cache: dict, y: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of the mean cross-entropy loss with respect to every parameter.

    y: (batch,) integer labels. Returns {"W1", "b1", "W2", "b2"} with the parameters' shapes.
    """
    raise NotImplementedError


def sgd_step(
    params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float
) -> dict[str, np.ndarray]:
    """One plain SGD step: returns a new dict {name: params[name] - lr * grads[name]}."""
    raise NotImplementedError


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
    raise NotImplementedError


def predict(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """Predicted class ids. x: (batch, n_in) -> (batch,) integers."""
    raise NotImplementedError

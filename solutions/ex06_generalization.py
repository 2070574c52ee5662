"""Reference solution for exercises/ex06_generalization.py: inverted dropout, SGD with weight
decay, FGSM and PGD (chapter 06)."""

import numpy as np


def dropout_forward(
    x: np.ndarray, rate: float, rng: np.random.Generator, training: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Inverted dropout.

    x: any shape; rate: the fraction to drop, 0 <= rate < 1; rng: a NumPy Generator.
    training=True: keep each entry with probability 1 - rate (keep = rng.random(x.shape) >= rate)
    and scale the kept ones by 1 / (1 - rate): mask = keep / (1 - rate), out = x * mask.
    training=False: the identity, out = x and mask = all ones.
    Returns (out, mask), both with the shape of x.
    """
    if not training or rate == 0.0:
        return x.copy(), np.ones_like(x)
    keep = rng.random(x.shape) >= rate
    mask = keep / (1.0 - rate)
    return x * mask, mask


def dropout_backward(grad_out: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """dL/dx from dL/dout for out = x * mask. grad_out, mask: same shape -> that shape."""
    return grad_out * mask


def sgd_weight_decay_step(
    params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float, weight_decay: float
) -> dict[str, np.ndarray]:
    """Document 002, section 4.1: theta <- theta - lr * grad - lr * weight_decay * theta.

    Returns a new dict {name: new value} (the inputs stay unchanged), same keys and shapes.
    """
    return {name: p - lr * grads[name] - lr * weight_decay * p for name, p in params.items()}


def fgsm(x: np.ndarray, y: np.ndarray, loss_and_grad, eps: float) -> np.ndarray:
    """Fast gradient sign method: clip(x + eps * sign(dL/dx), 0, 1).

    x: (n, d) pixels in [0, 1]; y: (n,) labels; loss_and_grad(x, y) -> (loss, dL/dx (n, d)).
    Returns x_adv (n, d).
    """
    _, grad = loss_and_grad(x, y)
    return np.clip(x + eps * np.sign(grad), 0.0, 1.0)


def pgd(
    x: np.ndarray,
    y: np.ndarray,
    loss_and_grad,
    eps: float,
    step_size: float,
    steps: int,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Projected gradient descent (L-infinity ball of radius eps around x, pixels in [0, 1]).

    Start: x itself when rng is None, else x + rng.uniform(-eps, eps, x.shape) (random start),
    projected. Then `steps` times: x_adv <- x_adv + step_size * sign(dL/dx_adv), projected.
    Projection: clip to [x - eps, x + eps], then to [0, 1]. steps=0 returns the start.
    x: (n, d) in [0, 1]; y: (n,); returns x_adv (n, d).
    """
    x_adv = x.copy() if rng is None else x + rng.uniform(-eps, eps, x.shape)
    x_adv = np.clip(np.clip(x_adv, x - eps, x + eps), 0.0, 1.0)
    for _ in range(steps):
        _, grad = loss_and_grad(x_adv, y)
        x_adv = x_adv + step_size * np.sign(grad)
        x_adv = np.clip(np.clip(x_adv, x - eps, x + eps), 0.0, 1.0)
    return x_adv

"""Exercise 06 (chapter 06): inverted dropout, SGD with weight decay, FGSM and PGD.

Replace every `raise NotImplementedError` with your code (plain NumPy). Check your work from a
notebook with `course_lib.grading.check("ex06")`, or from a terminal with `course grade ex06`.
Shapes are given in each docstring: match them exactly.

The attacks get the model as a function: `loss_and_grad(x, y) -> (loss, dL/dx)`, where dL/dx
has the shape of x. You never see the model's weights, only this function (a "white-box"
attacker who can differentiate the model). Pixels live in [0, 1].
"""

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
    raise NotImplementedError


def dropout_backward(grad_out: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """dL/dx from dL/dout for out = x * mask. grad_out, mask: same shape -> that shape."""
    raise NotImplementedError


def sgd_weight_decay_step(
    params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float, weight_decay: float
) -> dict[str, np.ndarray]:
    """Document 002, section 4.1: theta <- theta - lr * grad - lr * weight_decay * theta.

    Returns a new dict {name: new value} (the inputs stay unchanged), same keys and shapes.
    """
    raise NotImplementedError


def fgsm(x: np.ndarray, y: np.ndarray, loss_and_grad, eps: float) -> np.ndarray:
    """Fast gradient sign method: clip(x + eps * sign(dL/dx), 0, 1).

    x: (n, d) pixels in [0, 1]; y: (n,) labels; loss_and_grad(x, y) -> (loss, dL/dx (n, d)).
    Returns x_adv (n, d).
    """
    raise NotImplementedError


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
    raise NotImplementedError

"""Exercise 05 (chapter 05): a recurrent network and backpropagation through time, by hand.

The network of this exercise is the vanilla RNN of chapter 05, one example per row:

    h_t = tanh(x_t Wx + h_{t-1} Wh + b),   t = 1 .. steps,   h_0 given

with x_t (batch, n_in), h_t (batch, hidden), Wx (n_in, hidden), Wh (hidden, hidden), b (hidden,).
The same Wx, Wh and b are used at every step, so their gradients are sums over the steps.

Replace every `raise NotImplementedError` with your code (plain NumPy, a loop over the steps is
fine). Check your work from a notebook with `course_lib.grading.check("ex05")`, or from a
terminal with `course grade ex05`. Shapes are given in each docstring: match them exactly.
Do not change the arrays you are given (compute new ones), and keep their dtype (float64): the
backward passes are compared with the reference to 1e-9.
"""

import numpy as np


def rnn_step_forward(
    x_t: np.ndarray, h_prev: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, tuple]:
    """One step: h_t = tanh(x_t Wx + h_prev Wh + b).

    x_t: (batch, n_in), h_prev: (batch, hidden), Wx: (n_in, hidden), Wh: (hidden, hidden),
    b: (hidden,). Returns (h_t, cache): h_t (batch, hidden) and whatever rnn_step_backward needs.
    """
    raise NotImplementedError


def rnn_step_backward(
    dh_t: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of one step, given dh_t = dL/dh_t (batch, hidden) and the step's cache.

    Returns (dx_t, dh_prev, dWx, dWh, db) with shapes (batch, n_in), (batch, hidden),
    (n_in, hidden), (hidden, hidden), (hidden,). Hint: tanh'(a) = 1 - tanh(a)^2.
    """
    raise NotImplementedError


def rnn_forward(
    x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, list]:
    """The whole sequence: x (batch, steps, n_in), h0 (batch, hidden), weights as above.

    Returns (h, cache): h (batch, steps, hidden) with h[:, t] the state after step t + 1
    (h0 not included), and what rnn_backward needs (e.g. the list of step caches).
    """
    raise NotImplementedError


def rnn_backward(
    dh: np.ndarray, cache: list
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time. dh (batch, steps, hidden): dL/dh[:, t] coming from above
    (for example from an output layer at every step; zeros where a step has no output).

    Returns (dx, dh0, dWx, dWh, db) with shapes (batch, steps, n_in), (batch, hidden),
    (n_in, hidden), (hidden, hidden), (hidden,). Walk the steps backwards: the gradient reaching
    h_t is dh[:, t] plus what flows back from step t + 1; the weights' gradients add up over
    the steps.
    """
    raise NotImplementedError


def clip_by_global_norm(
    grads: dict[str, np.ndarray], max_norm: float
) -> tuple[dict[str, np.ndarray], float]:
    """Gradient clipping by the global norm (as Keras's ``global_clipnorm``).

    norm = sqrt(sum of the squares of every entry of every array in grads). If norm > max_norm,
    every array is multiplied by max_norm / norm (the direction is kept); otherwise they are
    returned unchanged. Returns (clipped, norm): a new dict with the same keys and shapes, and
    the norm before clipping (a float). The arrays in grads must not change.
    """
    raise NotImplementedError

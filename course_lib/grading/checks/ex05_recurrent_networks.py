"""Checks for exercises/ex05_recurrent_networks.py: RNN step and sequence, BPTT, clipping.

The backward checks compare with the reference at a tight tolerance (a finite-difference
"backward" is not exact enough to pass them), and one check compares the student's BPTT, on a
sequence length used nowhere else, with numerical gradients that the grader computes itself.
Every input (values, that sequence length, the clipping norms) is drawn from the check's ``rng``.
"""

import numpy as np

from course_lib.grading.spec import check

GRADS = ("dx", "dh0", "dWx", "dWh", "db")
MAX_RELATIVE_ERROR = 1e-6


def _weights(rng: np.random.Generator, n_in: int, hidden: int) -> tuple:
    return (0.6 * rng.standard_normal((n_in, hidden)),
            (0.9 / np.sqrt(hidden)) * rng.standard_normal((hidden, hidden)),
            0.3 * rng.standard_normal(hidden))


def _sequence(rng: np.random.Generator, batch: int, steps: int, n_in: int, hidden: int) -> dict:
    Wx, Wh, b = _weights(rng, n_in, hidden)
    return {"x": rng.standard_normal((batch, steps, n_in)),
            "h0": 0.5 * rng.standard_normal((batch, hidden)), "Wx": Wx, "Wh": Wh, "b": b,
            "dh": rng.standard_normal((batch, steps, hidden))}


def _named(function: str, result, names: tuple) -> dict:
    """The returned tuple as a dict, with a clear message when it has the wrong length."""
    if not isinstance(result, tuple | list) or len(result) != len(names):
        got = f"{len(result)} values" if isinstance(result, tuple | list) else type(result).__name__
        raise ValueError(f"{function} must return {len(names)} arrays {names}, got {got}")
    return dict(zip(names, result, strict=True))


def _backward(module, s: dict) -> dict:
    _, cache = module.rnn_forward(s["x"], s["h0"], s["Wx"], s["Wh"], s["b"])
    return _named("rnn_backward", module.rnn_backward(s["dh"], cache), GRADS)


@check(points=2)
def step_forward_values(module, rng):
    """rnn_step_forward(x_t, h_prev, Wx, Wh, b) returns h_t = tanh(x_t Wx + h_prev Wh + b),
    shape (batch, hidden)."""
    Wx, Wh, b = _weights(rng, 3, 5)
    h_t, _ = module.rnn_step_forward(rng.standard_normal((4, 3)), rng.standard_normal((4, 5)),
                                     Wx, Wh, b)
    return {"h_t": h_t}


@check(points=3, rtol=1e-9, atol=1e-12)
def step_backward_gradients(module, rng):
    """rnn_step_backward(dh_t, cache) returns (dx_t, dh_prev, dWx, dWh, db) with shapes
    (batch, n_in), (batch, hidden), (n_in, hidden), (hidden, hidden), (hidden,); with
    da = dh_t (1 - h_t^2): dx_t = da Wx^T, dh_prev = da Wh^T, dWx = x_t^T da, dWh = h_prev^T da,
    db = sum of da over the batch."""
    Wx, Wh, b = _weights(rng, 3, 5)
    _, cache = module.rnn_step_forward(rng.standard_normal((4, 3)), rng.standard_normal((4, 5)),
                                       Wx, Wh, b)
    grads = module.rnn_step_backward(rng.standard_normal((4, 5)), cache)
    return _named("rnn_step_backward", grads, ("dx_t", "dh_prev", "dWx", "dWh", "db"))


@check(points=2)
def sequence_forward_states(module, rng):
    """rnn_forward(x, h0, Wx, Wh, b) returns every state h (batch, steps, hidden), h[:, t] after
    step t + 1, starting from h0."""
    s = _sequence(rng, 3, 6, 4, 5)
    h, _ = module.rnn_forward(s["x"], s["h0"], s["Wx"], s["Wh"], s["b"])
    return {"h": h}


@check(points=3, rtol=1e-9, atol=1e-12)
def bptt_gradients(module, rng):
    """rnn_backward(dh, cache) returns (dx, dh0, dWx, dWh, db) with the shapes of x, h0, Wx, Wh
    and b: backpropagation through time, with the shared weights' gradients summed over the
    steps (compared with the reference to 1e-9)."""
    return _backward(module, _sequence(rng, 3, 7, 4, 5))


def _forward(x, h0, Wx, Wh, b):
    h, states = h0, []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ Wx + h @ Wh + b)
        states.append(h)
    return np.stack(states, axis=1)


def _numerical_judge(student: dict, reference: dict) -> tuple[bool, str]:
    """In the grader: numerical gradients of sum(h * dh) on the reference's copy of the inputs,
    against the student's BPTT gradients."""
    from course_lib.nn import numerical_gradient, relative_error

    s = {k: np.array(v, dtype=np.float64) for k, v in reference["inputs"].items()}

    def loss() -> float:
        return float(np.sum(_forward(s["x"], s["h0"], s["Wx"], s["Wh"], s["b"]) * s["dh"]))

    errors = {}
    for name in GRADS:
        wrt = s[name[1:]]
        mine = student.get(name)
        if not isinstance(mine, np.ndarray) or mine.dtype.kind not in "fi":
            return False, f"{name}: expected a float array of shape {wrt.shape}"
        if mine.shape != wrt.shape:
            return False, f"{name}: expected shape {wrt.shape}, got shape {mine.shape}"
        if not np.all(np.isfinite(mine)):
            return False, f"{name}: contains NaN or inf"
        errors[name] = relative_error(mine.astype(np.float64), numerical_gradient(loss, wrt))
    worst = max(errors, key=errors.get)
    steps = s["x"].shape[1]
    text = (f"largest relative error against numerical gradients on a {steps}-step sequence: "
            f"{worst} {errors[worst]:.1e} (need < {MAX_RELATIVE_ERROR:g})")
    return errors[worst] < MAX_RELATIVE_ERROR, text


@check(points=4, judge=_numerical_judge)
def bptt_matches_numerical_gradients(module, rng):
    """rnn_backward on a longer sequence (a length used nowhere else) agrees with numerical
    gradients computed by the grader: relative error < 1e-6 for dx, dh0, dWx, dWh and db."""
    steps = int(rng.integers(9, 14))
    s = _sequence(rng, 2, steps, 3, 4)
    out = _backward(module, {k: v.copy() for k, v in s.items()})
    out["inputs"] = s
    return out


@check(points=2)
def clipping_by_global_norm(module, rng):
    """clip_by_global_norm(grads, max_norm) returns (clipped, norm): the global norm over all
    arrays, every array scaled by max_norm / norm when norm > max_norm (unchanged otherwise),
    and the input arrays left as they were (max_norm 0.5-2, below the norm, and 500-2000)."""
    grads = {"dWx": rng.standard_normal((4, 5)), "dWh": 3.0 * rng.standard_normal((5, 5)),
             "db": rng.standard_normal(5)}
    before = {k: v.copy() for k, v in grads.items()}
    big, big_norm = module.clip_by_global_norm(grads, float(rng.uniform(0.5, 2.0)))
    small, small_norm = module.clip_by_global_norm(grads, float(rng.uniform(500.0, 2000.0)))
    return {"clipped": {k: big[k] for k in grads}, "norm": np.asarray(big_norm, dtype=np.float64),
            "not_clipped": {k: small[k] for k in grads},
            "norm_again": np.asarray(small_norm, dtype=np.float64),
            "input_unchanged": bool(all(np.array_equal(grads[k], before[k]) for k in grads))}

"""Exercise 05 (an RNN step and sequence, backpropagation through time, gradient clipping) through
the real grader: see exercise_helpers."""

import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    assert_full_marks,
    assert_full_marks_on_fresh_inputs,
    assert_not_fooled,
    assert_stub_scores_zero,
)

NAME = "ex05_recurrent_networks"

# BPTT that forgets the gradient flowing back from later steps (only each step's own dh).
NO_FLOW_BACK = """
def rnn_backward(dh, cache):
    x_0, _, Wx, Wh, _ = cache[0]
    batch, steps, _ = dh.shape
    dx = np.zeros((batch, steps, x_0.shape[1]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[0])
    dh0 = None
    for t in reversed(range(steps)):
        dx[:, t], dh_prev, a, c, d = rnn_step_backward(dh[:, t], cache[t])
        dWx += a; dWh += c; db += d
        dh0 = dh_prev if t == 0 else dh0
    return dx, dh0, dWx, dWh, db
"""

# Gradients of the shared weights from the last step only (no sum over the steps).
LAST_STEP_ONLY = """
_rnn_backward = rnn_backward

def rnn_backward(dh, cache):
    dx, dh0, dWx, dWh, db = _rnn_backward(dh, cache)
    _, _, dWx, dWh, db = rnn_step_backward(dh[:, -1], cache[-1])
    return dx, dh0, dWx, dWh, db
"""

# A "backward pass" by finite differences of the student's own forward: not BPTT, and not exact.
FINITE_DIFFERENCES = """
def rnn_forward(x, h0, Wx, Wh, b):
    h, h_t = [], h0
    for t in range(x.shape[1]):
        h_t, _ = rnn_step_forward(x[:, t], h_t, Wx, Wh, b)
        h.append(h_t)
    return np.stack(h, axis=1), [x, h0, Wx, Wh, b]

def rnn_backward(dh, cache):
    arrays = [a.copy() for a in cache]
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + 1e-5
            plus = np.sum(rnn_forward(*arrays)[0] * dh)
            a[i] = old - 1e-5
            minus = np.sum(rnn_forward(*arrays)[0] * dh)
            a[i] = old
            g[i] = (plus - minus) / 2e-5
        grads.append(g)
    return tuple(grads)
"""

# (code appended to the reference solution, the check that must now fail)
FOOLS = [
    (ALWAYS_EQUAL + "def rnn_step_forward(x_t, h_prev, Wx, Wh, b):\n"
                    "    return AlwaysEqual(), None\n",
     "step_forward_values"),
    ("_step_backward = rnn_step_backward\n\n"
     "def rnn_step_backward(dh_t, cache):\n"
     "    dx, dh, dWx, dWh, db = _step_backward(dh_t, cache)\n"
     "    return dx, dh, dWx, dWh, db[None, :]\n",
     "step_backward_gradients"),
    ("def rnn_forward(x, h0, Wx, Wh, b):\n    return x, []\n", "sequence_forward_states"),
    ("_rnn_backward = rnn_backward\n\n"
     "def rnn_backward(dh, cache):\n    return _rnn_backward(dh, cache)[:4]\n", "bptt_gradients"),
    (NO_FLOW_BACK, "bptt_gradients"),
    (NO_FLOW_BACK, "bptt_matches_numerical_gradients"),
    (LAST_STEP_ONLY, "bptt_gradients"),
    (LAST_STEP_ONLY, "bptt_matches_numerical_gradients"),
    (FINITE_DIFFERENCES, "bptt_gradients"),
    ("def clip_by_global_norm(grads, max_norm):\n"
     "    return grads, float(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))\n",
     "clipping_by_global_norm"),
    ("def clip_by_global_norm(grads, max_norm):\n"  # per-array clipping is not global clipping
     "    out = {k: g * min(1.0, max_norm / np.linalg.norm(g)) for k, g in grads.items()}\n"
     "    return out, float(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))\n",
     "clipping_by_global_norm"),
    ("_clip = clip_by_global_norm\n\n"  # clips in place
     "def clip_by_global_norm(grads, max_norm):\n"
     "    out, norm = _clip(grads, max_norm)\n"
     "    for k in grads:\n"
     "        grads[k][...] = out[k]\n"
     "    return grads, norm\n",
     "clipping_by_global_norm"),
]


def test_reference_solution_scores_full_marks(grader):
    assert_full_marks(grader, NAME)


def test_reference_scores_full_marks_on_fresh_inputs(fresh_graders):
    """Instructor grading: fresh inputs of several run seeds, the reference still 100 %."""
    assert_full_marks_on_fresh_inputs(fresh_graders, NAME)


def test_untouched_stub_scores_zero(grader):
    assert_stub_scores_zero(grader, NAME)


@pytest.mark.parametrize(("patch", "check_name"), FOOLS)
def test_check_is_not_fooled(grader, patch, check_name):
    assert_not_fooled(grader, NAME, patch, check_name)


def test_wrong_number_of_gradients_gets_a_clear_reason(grader):
    from exercise_helpers import grade_source, reference_source

    patch = "_b = rnn_backward\n\ndef rnn_backward(dh, cache):\n    return _b(dh, cache)[:4]\n"
    result = grade_source(grader, NAME, reference_source(NAME) + "\n\n" + patch)
    reason = {c.name: c.reason for c in result.checks}["bptt_gradients"]
    assert "rnn_backward must return 5 arrays" in reason and "got 4 values" in reason


def test_finite_differences_pass_the_numerical_check_but_not_the_exact_one(grader):
    """The numerical-gradient check alone could be met without BPTT; the exact check cannot."""
    from exercise_helpers import grade_source, reference_source

    result = grade_source(grader, NAME, reference_source(NAME) + "\n\n" + FINITE_DIFFERENCES)
    verdict = {c.name: c.passed for c in result.checks}
    assert verdict["bptt_matches_numerical_gradients"] is True
    assert verdict["bptt_gradients"] is False

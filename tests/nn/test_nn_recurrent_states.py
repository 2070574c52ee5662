"""Recurrent layers with a mask, an initial state and return_state: float64 gradient checks
(parameters, input, initial states) and Keras parity (outputs, final states, all gradients)."""

import numpy as np
import pytest
from nn_keras_helpers import keras

from course_lib import nn
from course_lib.nn import gradient_check

TOL, FWD_TOL, GRAD_TOL = 1e-6, 1e-5, 1e-4
LAYERS = {"simple_rnn": (nn.SimpleRNN, "SimpleRNN"), "lstm": (nn.LSTM, "LSTM"),
          "gru": (nn.GRU, "GRU")}
# Right-padded, left-padded, holes, nothing masked. Keras's TensorFlow backend outputs zeros at
# masked steps before the first real one, its JAX backend the initial state (course_lib.nn does
# as TensorFlow): leading masked steps are compared with TensorFlow and a zero initial state only.
MASK = np.array([[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1]],
                bool)
MASK_NO_LEADING = np.array([[1, 1, 1, 0, 0, 0], [1, 0, 0, 1, 1, 1], [1, 1, 0, 1, 0, 1],
                            [1, 1, 1, 1, 1, 1]], bool)


def _layer(kind, dtype, **kwargs):
    layer = LAYERS[kind][0](3, seed=1, dtype=dtype, **kwargs)
    return layer


def _states(layer, g, dtype, zero=False):
    shape = (4, layer.units)
    return [np.zeros(shape, dtype) if zero else g.standard_normal(shape).astype(dtype)
            for _ in range(layer.n_states)]


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradients_with_mask_state_and_return_state(kind, return_sequences):
    g = np.random.default_rng(0)
    layer = _layer(kind, np.float64, return_sequences=return_sequences, return_state=True)
    x = g.standard_normal((4, 6, 2))
    layer.forward(x)
    for p in layer.params.values():
        p += 0.1 * g.standard_normal(p.shape)
    states = _states(layer, g, np.float64)
    outs = layer.forward(x, mask=MASK, initial_state=states)
    rs = [g.standard_normal(o.shape) for o in outs]

    def f():
        outs = layer.forward(x, mask=MASK, initial_state=states)
        grad_x = layer.backward(rs)
        grads = dict(layer.grads, x=grad_x)
        grads.update({f"s{i}": s for i, s in enumerate(layer.initial_state_grads)})
        return float(sum(np.sum(o * r) for o, r in zip(outs, rs, strict=True))), grads

    params = dict(layer.params, x=x, **{f"s{i}": s for i, s in enumerate(states)})
    errors = gradient_check(f, params)
    assert max(errors.values()) < TOL, errors


def test_masked_steps_keep_the_state():
    """A right-padded sequence ends in the state after its last real step, whatever the padding."""
    g = np.random.default_rng(1)
    layer = nn.GRU(4, seed=0)
    x = g.standard_normal((1, 7, 3)).astype(np.float32)
    short = layer.forward(x[:, :4])
    padded = np.concatenate([x[:, :4], g.standard_normal((1, 3, 3)).astype(np.float32)], axis=1)
    mask = np.array([[True] * 4 + [False] * 3])
    assert np.array_equal(layer.forward(padded, mask=mask), short)
    assert not np.allclose(layer.forward(padded), short)


def _keras_outputs_and_grads(layer, x, states, mask, rs):
    """Outputs and the gradients of sum_i(outputs_i * rs_i) w.r.t. weights, x and states."""
    backend = keras.backend.backend()
    names = [v.path.split("/")[-1] for v in layer.trainable_variables]
    if backend == "tensorflow":
        import tensorflow as tf

        xt, st = tf.constant(x), [tf.constant(s) for s in states]
        with tf.GradientTape() as tape:
            tape.watch([xt, *st])
            outs = layer(xt, initial_state=st, mask=tf.constant(mask), training=True)
            loss = tf.add_n([tf.reduce_sum(o * r) for o, r in zip(outs, rs, strict=True)])
        grads = tape.gradient(loss, [*layer.trainable_variables, xt, *st])
        grads = [np.asarray(tf.convert_to_tensor(gr)) for gr in grads]
        outs = [np.asarray(o) for o in outs]
    elif backend == "jax":
        import jax

        fixed = [v.value for v in layer.non_trainable_variables]

        def loss_fn(weights, xx, ss):
            outs, _ = layer.stateless_call(weights, fixed, xx, initial_state=ss, mask=mask,
                                           training=True)
            return sum((o * r).sum() for o, r in zip(outs, rs, strict=True)), outs

        (_, outs), (gw, gx, gs) = jax.value_and_grad(loss_fn, argnums=(0, 1, 2), has_aux=True)(
            [v.value for v in layer.trainable_variables], x, states)
        grads = [np.asarray(gr) for gr in (*gw, gx, *gs)]
        outs = [np.asarray(o) for o in outs]
    else:
        pytest.skip(f"no gradient helper for the {backend} backend")
    n = len(names)
    return outs, dict(zip(names, grads[:n], strict=True)), grads[n], grads[n + 1:]


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("zero_state", [False, True])
def test_mask_state_and_return_state_match_keras(kind, return_sequences, zero_state):
    g = np.random.default_rng(2)
    ours = _layer(kind, np.float32, return_sequences=return_sequences, return_state=True)
    x = g.standard_normal((4, 6, 2)).astype(np.float32)
    ours.forward(x)
    ours.set_weights([(w + 0.3 * g.standard_normal(w.shape)).astype(np.float32)
                      for w in ours.get_weights()])
    theirs = getattr(keras.layers, LAYERS[kind][1])(3, return_sequences=return_sequences,
                                                    return_state=True)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    states = _states(ours, g, np.float32, zero=zero_state)
    tf_backend = keras.backend.backend() == "tensorflow"
    mask = MASK if zero_state and tf_backend else MASK_NO_LEADING
    outs = ours.forward(x, mask=mask, initial_state=states)
    rs = [g.standard_normal(o.shape).astype(np.float32) for o in outs]
    grad_x = ours.backward(rs)
    k_outs, k_grads, k_grad_x, k_grad_states = _keras_outputs_and_grads(theirs, x, states, mask, rs)
    assert len(outs) == len(k_outs) == 1 + ours.n_states
    for a, b in zip(outs, k_outs, strict=True):
        assert np.abs(a - b).max() < FWD_TOL
    assert set(k_grads) == set(ours.params)
    for name, kg in k_grads.items():
        assert np.abs(ours.grads[name] - kg).max() < GRAD_TOL, name
    assert np.abs(grad_x - k_grad_x).max() < GRAD_TOL
    for a, b in zip(ours.initial_state_grads, k_grad_states, strict=True):
        assert np.abs(a - b).max() < GRAD_TOL


def test_gru_bias_layout_is_keras_reset_after():
    layer = nn.GRU(5)
    layer.forward(np.zeros((1, 2, 3), np.float32))
    k_layer = keras.layers.GRU(5)
    k_layer.build((1, 2, 3))
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in k_layer.get_weights()] \
        == [(3, 15), (5, 15), (2, 15)]
    assert k_layer.reset_after

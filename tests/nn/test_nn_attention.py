"""NumPy attention (course_lib.nn.layers.attention): the tests every NumPy layer has.

- float64 central-difference gradient check (relative error < 1e-6), with and without a mask;
- the same weights as ``keras.layers.MultiHeadAttention`` called as ``mha(x, x, attention_mask)``:
  forward < 1e-5, weight and input gradients (Keras autodiff) < 1e-4, float32;
- bad input raises ValueError naming the argument and the shapes.
"""

import numpy as np
import pytest
from nn_keras_helpers import keras

from course_lib import nn
from course_lib.nn import MultiHeadAttention, layer_gradient_check, scaled_dot_product_attention

FWD_TOL, GRAD_TOL, GRADCHECK_TOL = 1e-5, 1e-4, 1e-6


def _padding_mask(lengths, steps):
    """(batch, 1, steps): key positions past each sequence's length are masked."""
    return (np.arange(steps)[None, :] < np.asarray(lengths)[:, None])[:, None, :]


def _randomise(layer, seed=7):
    g = np.random.default_rng(seed)
    for p in layer.params.values():
        p += 0.3 * g.standard_normal(p.shape).astype(p.dtype)


# -- gradient checks ------------------------------------------------------------------------
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dims", [(2, 3, None), (3, 2, 4)])  # (heads, key_dim, value_dim)
def test_gradient_check(masked, dims):
    heads, key_dim, value_dim = dims
    layer = MultiHeadAttention(heads, key_dim, value_dim, seed=1, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 4, 5))
    mask = _padding_mask([4, 2], 4) if masked else None
    layer.forward(x, attention_mask=mask)
    _randomise(layer)
    # layer_gradient_check calls forward(x, training=...): bind the mask for it.
    forward = layer.forward
    layer.forward = lambda v, training=False: forward(v, training, attention_mask=mask)
    errors = layer_gradient_check(layer, x)
    assert set(errors) == set(layer.params) | {"x"}
    # The key bias adds q . b_k to every score of a query row, which the softmax ignores: its
    # true gradient is 0, so a relative error compares rounding noise. Check it is ~0 instead.
    assert np.abs(layer.grads["key_bias"]).max() < 1e-12
    del errors["key_bias"]
    assert max(errors.values()) < GRADCHECK_TOL, errors


def test_masked_keys_get_zero_weight_and_change_nothing():
    layer = MultiHeadAttention(2, 3, seed=0, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((1, 5, 4))
    mask = _padding_mask([3], 5)
    out = layer.forward(x, attention_mask=mask)
    assert np.all(layer.last_weights[..., 3:] == 0)
    np.testing.assert_allclose(layer.last_weights.sum(-1), 1.0)
    changed = x.copy()
    changed[:, 3:] += 10.0  # what sits at masked key positions must not matter
    out2 = layer.forward(changed, attention_mask=mask)
    np.testing.assert_allclose(out[:, :3], out2[:, :3], atol=1e-12)


def test_function_matches_the_layer_with_one_identity_head():
    g = np.random.default_rng(2)
    q, k, v = g.standard_normal((2, 3, 4)), g.standard_normal((2, 5, 4)), g.standard_normal((2, 5, 6))
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 6) and weights.shape == (2, 3, 5)
    expected = np.exp(q @ k.transpose(0, 2, 1) / 2.0)
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(weights, expected)
    np.testing.assert_allclose(out, expected @ v)
    # Huge scores stay finite (stable softmax).
    out, weights = scaled_dot_product_attention(1e4 * q, k, v)
    assert np.isfinite(out).all() and np.isfinite(weights).all()
    # A fully masked query row: uniform weights, as Keras.
    mask = np.ones((2, 3, 5), bool)
    mask[0, 1] = False
    _, weights = scaled_dot_product_attention(q, k, v, mask)
    np.testing.assert_allclose(weights[0, 1], 0.2)


# -- Keras equivalence ----------------------------------------------------------------------
def _keras_self_attention(mha, x, mask, r):
    """(output, {variable path: grad}, grad_x) of sum(mha(x, x, attention_mask=mask) * r).

    On JAX, Keras's fused path (``ops.dot_product_attention``) needs value_dim == key_dim;
    asking for the attention scores makes Keras take its explicit einsum path instead."""
    backend = keras.backend.backend()
    paths = [v.path for v in mha.trainable_variables]
    explicit = backend == "jax" and mha._value_dim != mha._key_dim
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = mha(xt, xt, attention_mask=mask)
            loss = tf.reduce_sum(y * r)
        grads = tape.gradient(loss, [xt, *mha.trainable_variables])
        return y.numpy(), dict(zip(paths, [g.numpy() for g in grads[1:]], strict=True)), \
            grads[0].numpy()
    if backend == "jax":
        import jax

        def loss_fn(weights, xx):
            y, _ = mha.stateless_call(weights, [], xx, xx, attention_mask=mask,
                                      return_attention_scores=explicit)
            y = y[0] if explicit else y
            return (y * r).sum(), y

        (_, y), (gw, gx) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
            [v.value for v in mha.trainable_variables], x)
        return np.asarray(y), dict(zip(paths, map(np.asarray, gw), strict=True)), np.asarray(gx)
    pytest.skip(f"no gradient helper for the {backend} backend")


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dims", [(2, 3, None), (3, 4, 2)])
def test_matches_keras_multi_head_attention(masked, dims):
    heads, key_dim, value_dim = dims
    g = np.random.default_rng(0)
    x = g.standard_normal((3, 6, 8)).astype(np.float32)
    mask = np.repeat(_padding_mask([6, 4, 1], 6), 6, axis=1) if masked else None
    ours = MultiHeadAttention(heads, key_dim, value_dim, seed=1)
    ours.forward(x)
    _randomise(ours)
    theirs = keras.layers.MultiHeadAttention(heads, key_dim, value_dim)
    theirs.build(x.shape, x.shape)
    assert [tuple(w.shape) for w in theirs.get_weights()] == [
        tuple(w.shape) for w in ours.get_weights()]
    theirs.set_weights(ours.get_weights())

    out = ours.forward(x, attention_mask=mask)
    r = g.standard_normal(out.shape).astype(np.float32)
    grad_x = ours.backward(r)
    k_out, k_grads, k_grad_x = _keras_self_attention(theirs, x, mask, r)
    assert np.abs(out - k_out).max() < FWD_TOL
    assert np.abs(grad_x - k_grad_x).max() < GRAD_TOL
    ours_by_order = [ours.grads[n] for n in ours.weight_names]
    assert len(k_grads) == len(ours_by_order)
    for (path, kg), mine in zip(k_grads.items(), ours_by_order, strict=True):
        assert np.abs(mine - kg).max() < GRAD_TOL, path


def test_weights_copy_from_keras_to_numpy():
    x = np.random.default_rng(3).standard_normal((2, 4, 6)).astype(np.float32)
    theirs = keras.layers.MultiHeadAttention(2, 3)
    k_out = np.asarray(theirs(x, x))
    ours = MultiHeadAttention(2, 3)
    ours.forward(x)
    ours.set_weights(theirs.get_weights())
    assert np.abs(ours.forward(x) - k_out).max() < FWD_TOL


# -- bad input ------------------------------------------------------------------------------
def test_bad_input_names_the_argument_and_shapes():
    with pytest.raises(ValueError, match=r"`num_heads` must be a positive integer, got 0"):
        MultiHeadAttention(0, 4)
    layer = MultiHeadAttention(2, 3)
    with pytest.raises(ValueError, match=r"`x` must have rank 3, got shape \(4, 5\)"):
        layer.forward(np.zeros((4, 5), np.float32))
    layer.forward(np.zeros((2, 4, 5), np.float32))
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch, steps, 5\).*\(2, 4, 6\)"):
        layer.forward(np.zeros((2, 4, 6), np.float32))
    with pytest.raises(ValueError, match=r"`x` must be a floating-point array, got dtype int64"):
        layer.forward(np.zeros((2, 4, 5), np.int64))
    with pytest.raises(ValueError, match=r"`x` \(shape \(2, 4, 5\)\) contains NaN"):
        layer.forward(np.full((2, 4, 5), np.nan, np.float32))
    x = np.zeros((2, 4, 5), np.float32)
    with pytest.raises(ValueError, match=r"`mask` must have shape \(2, 4, 4\).*got \(2, 3\)"):
        layer.forward(x, attention_mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"`mask` must be boolean.*float64"):
        layer.forward(x, attention_mask=np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match=r"`grad_out` must have the shape .*\(2, 4, 5\)"):
        layer.backward(np.zeros((2, 4, 4), np.float32))


def test_function_bad_input():
    q = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"do not fit: got shapes \(2, 3, 4\), \(2, 5, 3\)"):
        scaled_dot_product_attention(q, np.zeros((2, 5, 3)), np.zeros((2, 5, 6)))
    with pytest.raises(ValueError, match=r"same rank >= 2"):
        scaled_dot_product_attention(np.zeros(4), np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match=r"`mask` must have shape \(2, 3, 5\)"):
        scaled_dot_product_attention(q, np.zeros((2, 5, 4)), np.zeros((2, 5, 6)),
                                     np.ones((2, 5, 3), bool))
    assert nn.MultiHeadAttention is MultiHeadAttention

"""Reference values from Keras for the NumPy layers: outputs and autodiff gradients.

The scalar differentiated is sum(layer(x) * r) for a fixed r, as in
``course_lib.nn.layer_gradient_check``, so both sides see dL/dout = r.
Gradients come from the active Keras backend's autodiff (TensorFlow's GradientTape or jax.grad).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def keras_output_and_grads(layer: keras.layers.Layer, x: np.ndarray, r: np.ndarray,
                           training: bool = False, input_grad: bool = True):
    """(output, {weight name: grad}, grad_x) for sum(layer(x) * r). Names: the variables' paths'
    last component (kernel, bias, gamma, ...). Non-trainable weights get updated as Keras does."""
    backend = keras.backend.backend()
    names = [v.path.split("/")[-1] for v in layer.trainable_variables]
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            if input_grad:
                tape.watch(xt)
            y = layer(xt, training=training)
            loss = tf.reduce_sum(y * tf.constant(r, dtype=y.dtype))
        grads = tape.gradient(loss, [xt, *layer.trainable_variables])
        out = y.numpy()
        gx = grads[0].numpy() if input_grad else None
        weight_grads = {n: tf.convert_to_tensor(g).numpy()
                        for n, g in zip(names, grads[1:], strict=True)}
        return out, weight_grads, gx
    if backend == "jax":
        import inspect

        import jax

        kwargs = {"training": training} if "training" in inspect.signature(layer.call).parameters \
            else {}
        trainable = [v.value for v in layer.trainable_variables]
        fixed = [v.value for v in layer.non_trainable_variables]

        def loss_fn(tw, xx):
            y, new_fixed = layer.stateless_call(tw, fixed, xx, **kwargs)
            return (y * r).sum(), (y, new_fixed)

        argnums = (0, 1) if input_grad else 0
        (_, (y, new_fixed)), grads = jax.value_and_grad(
            loss_fn, argnums=argnums, has_aux=True)(trainable, x)
        gw, gx = grads if input_grad else (grads, None)
        for v, value in zip(layer.non_trainable_variables, new_fixed, strict=True):
            v.assign(value)
        return (np.asarray(y), {n: np.asarray(g) for n, g in zip(names, gw, strict=True)},
                np.asarray(gx) if input_grad else None)
    raise NotImplementedError(f"no gradient helper for the {backend} backend")


def keras_loss_and_grad(loss: keras.losses.Loss, y_true: np.ndarray, y_pred: np.ndarray):
    """(loss value, dloss/dy_pred) from Keras's autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        yp = tf.constant(y_pred)
        with tf.GradientTape() as tape:
            tape.watch(yp)
            value = loss(tf.constant(y_true), yp)
        return float(value.numpy()), tape.gradient(value, yp).numpy()
    if backend == "jax":
        import jax

        value, grad = jax.value_and_grad(lambda p: loss(y_true, p))(y_pred)
        return float(value), np.asarray(grad)
    raise NotImplementedError(f"no gradient helper for the {backend} backend")

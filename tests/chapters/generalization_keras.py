"""The Keras side of course_lib.generalization on the current backend; prints a JSON summary.

Run in-process by test_generalization.py on TensorFlow, and as a subprocess with
KERAS_BACKEND=jax (the backend is fixed per process). Not collected by pytest (no ``test_``).
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from course_lib import generalization as gen  # noqa: E402
from course_lib import nn  # noqa: E402


def twin_models(seed: int = 0):
    """The same MLP on (n, 3, 4) inputs in NumPy (float32) and in Keras, logits out."""
    numpy_model = nn.Sequential([nn.Flatten(), nn.Dense(6, activation="tanh", seed=seed),
                                 nn.Dense(3, seed=seed + 1)])
    numpy_model.compile("sgd", nn.SparseCategoricalCrossentropy(from_logits=True))
    numpy_model.build((3, 4))
    inputs = keras.Input((3, 4))
    h = keras.layers.Dense(6, activation="tanh")(keras.layers.Flatten()(inputs))
    keras_model = keras.Model(inputs, keras.layers.Dense(3)(h))
    keras_model.set_weights(numpy_model.get_weights())
    return numpy_model, keras_model


def input_gradient_summary() -> dict:
    """InputGradient against the NumPy model's input_gradient (scaled by the batch size)."""
    g = np.random.default_rng(0)
    x = g.uniform(0, 1, (7, 3, 4)).astype(np.float32)
    y = g.integers(0, 3, 7)
    numpy_model, keras_model = twin_models()
    gradient = gen.InputGradient(keras_model, batch_size=3)  # 3 batches: 3 + 3 + 1
    losses, grads = gradient(x, y)
    mean_loss, numpy_grad = numpy_model.input_gradient(x, y)
    errors = {}
    for bad, args in {"shape": (x[:, :2], y), "labels": (x, y + 3), "length": (x, y[:3]),
                      "nan": (np.full_like(x, np.nan), y)}.items():
        try:
            gradient(*args)
            errors[bad] = "no error"
        except ValueError as error:
            errors[bad] = str(error)
    return {
        "backend": keras.backend.backend(),
        "losses_shape": list(losses.shape),
        "grads_shape": list(grads.shape),
        "loss_error": float(abs(losses.mean() - mean_loss)),
        "grad_error": float(np.abs(grads - numpy_grad * len(x)).max()),
        "grad_scale": float(np.abs(grads).max()),
        "errors": errors,
    }


def training_summary() -> dict:
    """A tiny adversarial training on separable 8x8 images; the CNN builder's shapes."""
    keras.utils.set_random_seed(0)
    g = np.random.default_rng(0)
    y = g.integers(0, 2, 128)
    x = np.clip(g.uniform(0, 0.3, (128, 8, 8)) + 0.6 * y[:, None, None] * (
        np.arange(8) < 4)[None, None, :], 0, 1).astype(np.float32)  # class 1: bright left half
    inputs = keras.Input((8, 8))
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = gen.adversarial_fit(model, x, y, eps=0.05, epochs=3, batch_size=32,
                                  validation_data=(x[:32], y[:32]), val_steps=2, verbose=False)
    clean = gen.accuracy_under_attack(model, x, y, 0)
    fgsm_acc = gen.accuracy_under_attack(model, x, y, 0.05, attack="fgsm")
    gradient_fn, _ = gen.attack_functions(model)
    x_adv = gen.pgd(x[:8], y[:8], gradient_fn, 0.05, steps=3, seed=0)
    cnn = gen.mnist_cnn()
    return {
        "cnn_shapes": [list(cnn.input_shape), list(cnn.output_shape)],
        "cnn_logits_shape": list(np.asarray(cnn(np.zeros((2, 28, 28), "float32"))).shape),
        "history_lengths": {k: len(v) for k, v in history.items()},
        "clean": clean,
        "fgsm": fgsm_acc,
        "pgd_inside": bool(np.abs(x_adv - x[:8]).max() <= 0.05 + 1e-6
                           and x_adv.min() >= 0 and x_adv.max() <= 1),
        "same_gradient_object": gen.attack_functions(model)[0] is gradient_fn,
    }


def run_optimizers_summary() -> dict:
    """Keras's SGD(weight_decay) equals the document's rule; Adam(weight_decay) equals AdamW."""
    grad_fn, theta0 = gen.least_squares(seed=0)
    lr, lam, steps = 0.1, 0.05, 30
    document = [theta0]
    for _ in range(steps):
        document.append(gen.document_update(document[-1], grad_fn(document[-1]), lr, lam))
    keras_sgd = gen.run_optimizer(keras.optimizers.SGD(lr, weight_decay=lam), grad_fn, theta0,
                                  steps)
    keras_adam = gen.run_optimizer(keras.optimizers.Adam(0.01, weight_decay=lam), grad_fn,
                                   theta0, steps)
    numpy_adamw = gen.run_optimizer(nn.AdamW(0.01, weight_decay=lam), grad_fn, theta0, steps)
    return {"sgd": float(np.abs(keras_sgd - np.array(document)).max()),
            "adam": float(np.abs(keras_adam - numpy_adamw).max())}


if __name__ == "__main__":
    print(json.dumps({"gradient": input_gradient_summary(), "training": training_summary(),
                      "optimizers": run_optimizers_summary()}))

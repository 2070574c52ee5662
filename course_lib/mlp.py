"""Chapter 02 helpers: MNIST as vectors, the same MLP in NumPy and Keras, and their step-by-step
comparison (document 000, section 5.2; document 003, sections 4.5.1 and 9.5)."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from course_lib import nn

# Document 000, section 5.2, exactly as printed (only the comments are translated).
DOCUMENT_000_CODE = """
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense, Activation

# define the model
model = Sequential()
model.add(Dense(64, input_shape=(d,), activation='relu'))
model.add(Dense(K, activation='softmax'))
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])

# train the model
model.fit(x_train, y_train, epochs=10, batch_size=32, validation_data=(x_test, y_test))

# evaluate the model
loss, accuracy = model.evaluate(x_test, y_test)
print('Test loss:', loss)
print('Test accuracy:', accuracy)
"""


def run_code(code: str, namespace: dict | None = None) -> str:
    """Run ``code`` in a copy of ``namespace``, its printed output discarded; return "ok" or the
    error it raised as "Type: first line"."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(code, {} if namespace is None else dict(namespace))
    except Exception as error:  # the point is to show the error, whatever it is
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"{type(error).__name__}: {first_line}"
    return "ok"


def flatten_images(x: np.ndarray) -> np.ndarray:
    """uint8 images (n, 28, 28) -> float32 vectors (n, 784) scaled to [0, 1]."""
    return x.reshape(len(x), -1).astype(np.float32) / 255.0


def numpy_mlp(hidden: int = 128, lr: float = 0.1, seed: int = 0) -> nn.Sequential:
    """The NumPy MLP: Dense(hidden, relu) -> Dense(10, softmax), categorical cross-entropy,
    plain SGD; inputs (batch, 784), one-hot targets (batch, 10)."""
    model = nn.Sequential([nn.Dense(hidden, activation="relu", seed=seed),
                           nn.Dense(10, activation="softmax", seed=seed + 1)])
    model.compile(optimizer=nn.SGD(learning_rate=lr), loss=nn.CategoricalCrossentropy(),
                  metrics=["accuracy"])
    model.build((784,))
    return model


def keras_mlp(hidden: int = 128, lr: float = 0.1):
    """The same MLP in Keras (functional API): 784 -> Dense(hidden, relu) -> Dense(10, softmax)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(784,), name="pixels")
    h = layers.Dense(hidden, activation="relu", name="hidden")(inputs)
    outputs = layers.Dense(10, activation="softmax", name="digits")(h)
    model = keras.Model(inputs, outputs, name="mlp")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def numpy_step_losses(model: nn.Sequential, x: np.ndarray, y: np.ndarray, steps: int,
                      batch_size: int) -> np.ndarray:
    """Loss of each of the first ``steps`` SGD steps on consecutive batches (no shuffling).

    x: (n, 784) float32, y: (n, 10) one-hot, n >= steps * batch_size. Returns (steps,).
    """
    losses = []
    for step in range(steps):
        rows = slice(step * batch_size, (step + 1) * batch_size)
        loss, _ = model.train_on_batch(x[rows], y[rows].astype(x.dtype))
        losses.append(loss)
    return np.array(losses)


def keras_step_losses(model, x: np.ndarray, y: np.ndarray, steps: int,
                      batch_size: int) -> np.ndarray:
    """The same with Keras ``fit`` (one epoch over the first steps * batch_size rows, no shuffling).

    ``fit`` logs the running mean of the loss after each batch; the loss of step k is recovered
    as k m_k - (k - 1) m_(k-1). Returns (steps,).
    """
    import keras

    means = []

    class Recorder(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            means.append(float(logs["loss"]))

    n = steps * batch_size
    model.fit(x[:n], y[:n], batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              callbacks=[Recorder()])
    running = np.array(means, dtype=np.float64)
    k = np.arange(1, len(running) + 1)
    return k * running - np.concatenate([[0.0], (k[:-1]) * running[:-1]])


def misclassified(y_true: np.ndarray, y_pred: np.ndarray, n: int = 16) -> np.ndarray:
    """Indices of the first ``n`` examples with y_pred != y_true. y_true, y_pred: (N,)."""
    return np.flatnonzero(y_pred != y_true)[:n]


def document_003_parameters() -> dict[str, np.ndarray]:
    """The parameter sets of document 003, section 4.5.1 (a 3-2-1 network), with the sizes it
    prints: W1 = {w11, w12, w13}, W2 = {w21, w22}, b1 = {b11, b12, b13}, b2 = {b21, b22}."""
    rng = np.random.default_rng(0)
    return {"W1": rng.standard_normal(3), "W2": rng.standard_normal(2),
            "b1": rng.standard_normal(3), "b2": rng.standard_normal(2)}

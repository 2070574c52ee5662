"""Train a tiny CNN with the course utilities; print a JSON summary.

Run in-process by test_training_fit.py on TensorFlow, and as a subprocess with KERAS_BACKEND=jax
(the backend is fixed per process). Not collected by pytest (no ``test_`` prefix).
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from course_lib.training.recipes import CourseConfig, run_course, run_plain  # noqa: E402


def tiny_data(n_train=256, n_test=128, seed=0):
    """8x8 RGB uint8 noise images; class 0, 1, 2: that channel is bright; class 3: all grey."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n_train + n_test)
    colour = np.vstack([np.eye(3) * 180, np.full((1, 3), 90.0)])[y]  # (n, 3)
    x = (rng.integers(0, 40, (len(y), 8, 8, 3)) + colour[:, None, None, :]).astype("uint8")
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def tiny_model(augment=None):
    inputs = keras.Input((8, 8, 3))
    x = augment(inputs) if augment is not None else inputs
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, dtype="float32")(x)
    return keras.Model(inputs, outputs)


def train_tiny() -> dict:
    data = tiny_data()
    config = CourseConfig(
        batch_size=32, epochs=4, peak_lr=3e-2, warmup_fraction=0.25, label_smoothing=0.1,
        ema=True, ema_momentum=0.9, tta=True, crop_pad=1, flip=True, steps_per_execution=2,
    )
    course = run_course(tiny_model, data, target=1.01, config=config, verbose=False)
    plain = run_plain(tiny_model, data, target=1.01, max_epochs=1, verbose=False)
    return {
        "backend": keras.backend.backend(),
        "course_epochs": course.epochs,
        "course_accuracy": course.final_accuracy,
        "course_examples_per_second": course.examples_per_second,
        "course_precision": course.precision,
        "plain_epochs": plain.epochs,
        "plain_accuracy": plain.final_accuracy,
        "policy_after": keras.config.dtype_policy().name,
    }


if __name__ == "__main__":
    print(json.dumps(train_tiny()))

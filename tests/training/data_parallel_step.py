"""One seeded training step on 1 device and on 2 (JAX, virtual CPU devices); print JSON.

Run as a subprocess by test_training_distribution.py with
``XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax`` (the device count is
fixed when JAX starts). Not collected by pytest (no ``test_`` prefix).
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from course_lib.training import (  # noqa: E402
    RandomCropFlip,
    SmoothedSparseCrossentropy,
    plan_data_parallel,
    train_batches,
)
from course_lib.training.recipes import CourseConfig, run_course  # noqa: E402

GLOBAL_BATCH = 32


def build(augment):
    """uint8 images (batch, 8, 8, 3) -> logits (batch, 4): crop/flip, conv, batch norm, dense."""
    inputs = keras.Input((8, 8, 3))
    x = augment(inputs)
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4)(x)
    return keras.Model(inputs, outputs)


def one_step(devices: list[str]) -> dict:
    """Weights after one SGD step on the same global batch, on ``devices``.

    SGD, because its update is linear in the gradient: float rounding in the cross-device sum
    stays at rounding size. (Adam's first step is lr * g / (|g| + eps), about lr * sign(g), so
    a gradient component that is 0 up to rounding could move by 2 lr on either run.)
    """
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (GLOBAL_BATCH, 8, 8, 3)).astype("uint8")
    y = rng.integers(0, 4, GLOBAL_BATCH)
    plan = plan_data_parallel("on", devices=devices)
    with plan.scope():
        keras.utils.set_random_seed(0)
        model = build(RandomCropFlip(pad=1, flip=True, seed=0))
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss=SmoothedSparseCrossentropy(0.1),
        )
        history = model.fit(
            train_batches(x, y, GLOBAL_BATCH, shuffle=False), epochs=1, verbose=0
        )
        sharding = model.trainable_weights[0].value.sharding
    return {
        "replicas": plan.replicas,
        "mesh_devices": len(sharding.device_set),
        "loss": float(history.history["loss"][0]),
        "weights": [np.asarray(w).astype("float64") for w in model.weights],
    }


def recipe_on_two_devices() -> dict:
    """The course recipe end to end with data_parallel="on" (2 x 16 per step, tiny data)."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 320)
    x = (rng.integers(0, 40, (320, 8, 8, 3)) + 180 * np.eye(4)[y][:, None, None, :3]).astype("uint8")
    config = CourseConfig(
        batch_size=16, epochs=2, peak_lr=3e-2, tta=True, flip=True, crop_pad=1,
        data_parallel="on",
    )
    result = run_course(build, (x[:256], y[:256], x[256:], y[256:]), 1.01, config, verbose=False)
    return {"replicas": result.replicas, "epochs": result.epochs, "accuracy": result.final_accuracy}


def main() -> dict:
    devices = keras.distribution.list_devices()
    one, two = one_step(devices[:1]), one_step(devices[:2])
    diffs = [float(np.max(np.abs(a - b))) for a, b in zip(one["weights"], two["weights"], strict=True)]
    changed = [float(np.max(np.abs(a - b))) for a, b in zip(one["weights"], one_step_initial(), strict=True)]
    return {
        "devices": devices,
        "replicas": [one["replicas"], two["replicas"]],
        "mesh_devices": [one["mesh_devices"], two["mesh_devices"]],
        "loss": [one["loss"], two["loss"]],
        "max_weight_difference": max(diffs),
        "min_weight_change": min(changed),
        "recipe": recipe_on_two_devices(),
    }


def one_step_initial() -> list[np.ndarray]:
    """The seeded initial weights (to check that the step changed every weight)."""
    keras.utils.set_random_seed(0)
    model = build(RandomCropFlip(pad=1, flip=True, seed=0))
    return [np.asarray(w).astype("float64") for w in model.weights]


if __name__ == "__main__":
    print(json.dumps(main()))

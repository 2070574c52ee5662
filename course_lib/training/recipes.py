"""The two training recipes compared by ``benchmarks/time_to_accuracy.py``.

* ``run_plain``: what a typical Keras tutorial does: float32, ``model.fit(x, y, batch_size=128)``,
  Adam 1e-3, default ``compile``, host NumPy arrays, test accuracy checked after every epoch.
* ``run_course``: the same model family trained with this package: precision policy for the
  device, data on the device (or ``tf.data`` on TensorFlow), on-device augmentation, large
  batches, AdamW + warm-up/one-cycle, label smoothing, optional weight EMA and flip TTA,
  explicit ``jit_compile`` / ``steps_per_execution``.

Both stop as soon as the test accuracy reaches ``target`` and count wall time from before the
model is built (compilation included). Measured settings and figures (XLA and
``steps_per_execution`` on CPU, EMA, label smoothing) are in ``benchmarks/time_to_accuracy.py``.
Tested on TensorFlow and JAX (CPU); PyTorch is untested (not installed here).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from course_lib.training.augment import RandomCropFlip
from course_lib.training.callbacks import TrainingMonitor
from course_lib.training.devices import (
    PrecisionChoice,
    apply_precision,
    choose_precision,
    detect_device,
    wrap_optimizer,
)
from course_lib.training.losses import SmoothedSparseCrossentropy
from course_lib.training.pipeline import eval_batches, train_batches
from course_lib.training.schedules import OneCycle
from course_lib.training.tta import FlipTTAValidation

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_test, y_test
ModelBuilder = Callable[[keras.layers.Layer | None], keras.Model]


@dataclass
class CourseConfig:
    """Settings of the course recipe.

    ``epochs`` is the length of the one-cycle schedule (training may stop earlier at the target).
    ``jit_compile``/``steps_per_execution`` go to ``model.compile``; ``precision="auto"`` picks
    the policy with ``choose_precision``, else a policy name ("float32", "mixed_bfloat16", ...).
    """

    batch_size: int = 512
    epochs: int = 4
    peak_lr: float = 4e-3
    warmup_fraction: float = 0.2
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    ema: bool = False
    ema_momentum: float = 0.99
    tta: bool = False
    crop_pad: int = 0
    flip: bool = False
    jit_compile: bool | str = "auto"
    steps_per_execution: int = 1
    precision: str = "auto"
    seed: int = 0


@dataclass
class RecipeResult:
    """Outcome of one recipe. Times in seconds from before the model was built."""

    name: str
    seconds_to_target: float | None
    epochs_to_target: int | None
    final_accuracy: float
    epochs: int
    seconds: float
    precision: str
    examples_per_second: float

    def lines(self) -> list[str]:
        """``name: value`` lines for the benchmark output."""
        to_target = "not reached" if self.seconds_to_target is None else f"{self.seconds_to_target:.1f}"
        return [
            f"{self.name} seconds_to_target: {to_target}",
            f"{self.name} epochs_to_target: {self.epochs_to_target}",
            f"{self.name} final_accuracy: {self.final_accuracy:.4f}",
            f"{self.name} epochs_run: {self.epochs}",
            f"{self.name} total_seconds: {self.seconds:.1f}",
            f"{self.name} examples_per_second: {self.examples_per_second:,.0f}",
            f"{self.name} precision: {self.precision}",
        ]


def _result(name: str, monitor: TrainingMonitor, t0: float, precision: str) -> RecipeResult:
    last = monitor.records[-1]
    return RecipeResult(
        name=name,
        seconds_to_target=monitor.time_to_target,
        epochs_to_target=monitor.epochs_to_target,
        final_accuracy=last.get(monitor.monitor, float("nan")),
        epochs=len(monitor.records),
        seconds=time.perf_counter() - t0,
        precision=precision,
        examples_per_second=float(np.median([r["examples_per_second"] for r in monitor.records])),
    )


def run_plain(
    build_model: ModelBuilder,
    data: Data,
    target: float,
    max_epochs: int,
    batch_size: int = 128,
    verbose: bool = True,
) -> RecipeResult:
    """Tutorial recipe: float32 host arrays, Adam 1e-3, default compile, ``fit(batch_size=128)``."""
    x_train, y_train, x_test, y_test = data
    t0 = time.perf_counter()
    keras.config.set_dtype_policy("float32")
    model = build_model(None)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    monitor = TrainingMonitor(
        batch_size, target, stop_at_target=True, start_time=t0, verbose=verbose,
        examples_per_epoch=len(x_train),
    )
    model.fit(
        x_train.astype("float32"),
        y_train,
        batch_size=batch_size,
        epochs=max_epochs,
        validation_data=(x_test.astype("float32"), y_test),
        callbacks=[monitor],
        verbose=0,
    )
    return _result("plain", monitor, t0, "float32")


def run_course(
    build_model: ModelBuilder,
    data: Data,
    target: float,
    config: CourseConfig,
    verbose: bool = True,
) -> RecipeResult:
    """Course recipe (see the module docstring); restores the float32 policy afterwards."""
    x_train, y_train, x_test, y_test = data
    t0 = time.perf_counter()
    if config.precision == "auto":
        choice = choose_precision(detect_device())
    else:
        choice = PrecisionChoice(config.precision, config.precision == "mixed_float16", "forced")
    apply_precision(choice, verbose=verbose)
    try:
        keras.utils.set_random_seed(config.seed)
        augment = None
        if config.crop_pad or config.flip:
            augment = RandomCropFlip(config.crop_pad, config.flip, seed=config.seed)
        model = build_model(augment)
        train = train_batches(x_train, y_train, config.batch_size)
        steps_per_epoch = len(x_train) // config.batch_size
        schedule = OneCycle(config.peak_lr, config.epochs * steps_per_epoch, config.warmup_fraction)
        optimizer = keras.optimizers.AdamW(
            learning_rate=schedule,
            weight_decay=config.weight_decay,
            use_ema=config.ema,
            ema_momentum=config.ema_momentum,
        )
        model.compile(
            optimizer=wrap_optimizer(optimizer, choice),
            loss=SmoothedSparseCrossentropy(config.label_smoothing),
            metrics=["accuracy"],
            jit_compile=config.jit_compile,
            steps_per_execution=config.steps_per_execution,
        )
        callbacks: list[keras.callbacks.Callback] = []
        if config.ema:
            callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
        validation = None
        if config.tta:
            callbacks.append(FlipTTAValidation(x_test, y_test, batch_size=1000))
        else:
            validation = eval_batches(x_test, y_test, 1000)
        monitor = TrainingMonitor(
            config.batch_size, target, stop_at_target=True, start_time=t0, verbose=verbose
        )
        callbacks.append(monitor)
        model.fit(
            train,
            epochs=config.epochs,
            validation_data=validation,
            callbacks=callbacks,
            shuffle=False,  # the pipelines shuffle themselves
            verbose=0,
        )
    finally:
        keras.config.set_dtype_policy("float32")
    return _result("course", monitor, t0, choice.policy)

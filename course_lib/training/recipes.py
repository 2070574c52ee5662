"""The two training recipes compared by ``benchmarks/time_to_accuracy.py``.

* ``run_plain``: what a typical Keras tutorial does: float32, ``model.fit(x, y, batch_size=128)``,
  Adam 1e-3, default ``compile``, host NumPy arrays, test accuracy checked after every epoch.
* ``run_course``: the same model family trained with this package: precision policy for the
  device, data on the device (or ``tf.data`` on TensorFlow), on-device augmentation, large
  batches, AdamW + warm-up/one-cycle, label smoothing, optional weight EMA and flip TTA,
  explicit ``jit_compile`` / ``steps_per_execution``; data-parallel over several accelerators
  (``CourseConfig.data_parallel``, see ``course_lib.training.distribution``).

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
from course_lib.training.distribution import DataParallelPlan, plan_data_parallel
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

    ``data_parallel`` is the switch of ``plan_data_parallel`` ("auto": on with more than one
    accelerator on JAX). With N devices ``batch_size`` is per device (the global batch is
    N x ``batch_size``) and ``peak_lr`` is scaled to the global batch by ``lr_scaling``
    ("sqrt", for AdamW, or "linear"); on one device nothing changes.
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
    data_parallel: bool | str = "auto"
    lr_scaling: str = "sqrt"


@dataclass
class RecipeResult:
    """Outcome of one recipe. Times in seconds from before the model was built.

    ``first_epoch_seconds`` includes compilation; ``epoch_seconds`` is the median of the other
    epochs (nan after one epoch): their difference is about the compile time.
    """

    name: str
    seconds_to_target: float | None
    epochs_to_target: int | None
    final_accuracy: float
    epochs: int
    seconds: float
    precision: str
    examples_per_second: float
    replicas: int = 1
    stopped_by_time_limit: bool = False
    first_epoch_seconds: float = float("nan")
    epoch_seconds: float = float("nan")

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
            f"{self.name} replicas: {self.replicas}",
            f"{self.name} stopped_by_time_limit: {self.stopped_by_time_limit}",
            f"{self.name} first_epoch_seconds: {self.first_epoch_seconds:.1f}",
            f"{self.name} epoch_seconds: {self.epoch_seconds:.2f}",
        ]


def _result(
    name: str, monitor: TrainingMonitor, t0: float, precision: str, replicas: int = 1
) -> RecipeResult:
    last = monitor.records[-1]
    later = [r["epoch_seconds"] for r in monitor.records[1:]]
    return RecipeResult(
        name=name,
        seconds_to_target=monitor.time_to_target,
        epochs_to_target=monitor.epochs_to_target,
        final_accuracy=last.get(monitor.monitor, float("nan")),
        epochs=len(monitor.records),
        seconds=time.perf_counter() - t0,
        precision=precision,
        examples_per_second=float(np.median([r["examples_per_second"] for r in monitor.records])),
        replicas=replicas,
        stopped_by_time_limit=monitor.stopped_by_time_limit,
        first_epoch_seconds=monitor.records[0]["epoch_seconds"],
        epoch_seconds=float(np.median(later)) if later else float("nan"),
    )


def run_plain(
    build_model: ModelBuilder,
    data: Data,
    target: float,
    max_epochs: int,
    batch_size: int = 128,
    verbose: bool = True,
    time_limit: float | None = None,
) -> RecipeResult:
    """Tutorial recipe: float32 host arrays, Adam 1e-3, default compile, ``fit(batch_size=128)``.

    ``time_limit``: stop after the first epoch that ends past this many seconds (None: no limit).
    """
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
        examples_per_epoch=len(x_train), time_limit=time_limit,
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


def course_model(
    build_model: ModelBuilder,
    augment: keras.layers.Layer | None,
    config: CourseConfig,
    choice: PrecisionChoice,
    total_steps: int,
    peak_lr: float | None = None,
) -> keras.Model:
    """The course recipe's model, compiled: AdamW on a one-cycle schedule of ``total_steps``
    (peak ``peak_lr``, default ``config.peak_lr``), optional EMA, smoothed cross-entropy.
    Call after ``apply_precision(choice)`` and inside the data-parallel scope, if any."""
    model = build_model(augment)
    schedule = OneCycle(peak_lr or config.peak_lr, total_steps, config.warmup_fraction)
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
    return model


def run_course(
    build_model: ModelBuilder,
    data: Data,
    target: float,
    config: CourseConfig,
    verbose: bool = True,
    time_limit: float | None = None,
) -> RecipeResult:
    """Course recipe (see the module docstring); restores the float32 policy afterwards.

    ``time_limit``: stop after the first epoch that ends past this many seconds (None: no limit).
    """
    x_train, y_train, x_test, y_test = data
    t0 = time.perf_counter()
    plan = plan_data_parallel(config.data_parallel)
    batch_size = plan.global_batch_size(config.batch_size)
    peak_lr = plan.learning_rate(config.peak_lr, config.batch_size, config.lr_scaling)
    eval_batch = _eval_batch_size(len(x_test), plan)
    if verbose and plan.enabled:
        print(f"{plan.reason}: global batch {batch_size}, peak learning rate {peak_lr:.3g}")
    if config.precision == "auto":
        choice = choose_precision(detect_device())
    else:
        choice = PrecisionChoice(config.precision, config.precision == "mixed_float16", "forced")
    apply_precision(choice, verbose=verbose)
    try:
        with plan.scope():
            keras.utils.set_random_seed(config.seed)
            augment = None
            if config.crop_pad or config.flip:
                augment = RandomCropFlip(config.crop_pad, config.flip, seed=config.seed)
            train = train_batches(x_train, y_train, batch_size)
            total_steps = config.epochs * (len(x_train) // batch_size)
            model = course_model(build_model, augment, config, choice, total_steps, peak_lr)
            callbacks: list[keras.callbacks.Callback] = []
            if config.ema:
                callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
            validation = None
            if config.tta:
                callbacks.append(FlipTTAValidation(x_test, y_test, batch_size=eval_batch))
            else:
                validation = eval_batches(x_test, y_test, eval_batch)
            monitor = TrainingMonitor(
                batch_size, target, stop_at_target=True, start_time=t0, verbose=verbose,
                time_limit=time_limit,
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
    return _result("course", monitor, t0, choice.policy, plan.replicas)


def _eval_batch_size(n_test: int, plan: DataParallelPlan, preferred: int = 1000) -> int:
    """The largest multiple of the devices <= ``preferred``; every evaluation batch, the
    partial last one too, then splits evenly. ``ValueError`` when the test set cannot."""
    replicas = plan.replicas
    if n_test % replicas:
        raise ValueError(
            f"the test set has {n_test} examples, which do not split over the {replicas} "
            f"devices; use a multiple of {replicas} (or data_parallel='off')"
        )
    return max(preferred // replicas, 1) * replicas  # the remainder is a multiple too

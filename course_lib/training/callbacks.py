"""Training callbacks: throughput (examples/s), ETA and time to a target accuracy; TensorBoard.

    monitor = TrainingMonitor(batch_size=512, target=0.99)
    model.fit(..., validation_data=..., callbacks=[monitor])
    monitor.time_to_target, monitor.epochs_to_target   # None when the target was not reached
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path

import keras


class TrainingMonitor(keras.callbacks.Callback):
    """Print and record examples/s, ETA and the time to reach a target metric value.

    Per epoch it records (in ``self.records``, and adds ``examples_per_second`` to the logs):
    training examples per second (validation time excluded), epoch seconds, elapsed seconds
    since ``start_time`` (compilation included), and the ETA = remaining epochs x mean epoch time.

    Args:
        batch_size: examples per step (``params["steps"] * batch_size`` examples per epoch,
            unless ``examples_per_epoch`` is given).
        target: stop-watch target for ``monitor`` (e.g. 0.99 for 99% accuracy); None: no target.
        monitor: the log key compared with ``target`` (at the end of each epoch).
        stop_at_target: set ``model.stop_training`` once the target is reached.
        start_time: ``clock()`` value that elapsed times count from (e.g. taken before building
            the model, so compilation and set-up count); default: the start of ``fit``.
        examples_per_epoch: exact count when the last batch is partial.
        clock: a function returning seconds (tests pass a fake clock).
        verbose: print one line per epoch.
        time_limit: set ``model.stop_training`` at the end of the first epoch whose elapsed
            seconds reach this (a time cap for benchmarks; ``stopped_by_time_limit`` tells);
            None: no cap.
    """

    def __init__(
        self,
        batch_size: int,
        target: float | None = None,
        monitor: str = "val_accuracy",
        stop_at_target: bool = False,
        start_time: float | None = None,
        examples_per_epoch: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
        verbose: bool = True,
        time_limit: float | None = None,
    ):
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got batch_size={batch_size}")
        self.batch_size = batch_size
        self.target = target
        self.monitor = monitor
        self.stop_at_target = stop_at_target
        self.start_time = start_time
        self.examples_per_epoch = examples_per_epoch
        self.clock = clock
        self.verbose = verbose
        self.time_limit = time_limit
        self.stopped_by_time_limit = False
        self.records: list[dict] = []
        self.time_to_target: float | None = None
        self.epochs_to_target: int | None = None
        self._t0 = 0.0
        self._epoch_start: float | None = None
        self._train_end: float | None = None

    def on_train_begin(self, logs=None):
        self._t0 = self.clock() if self.start_time is None else self.start_time
        self.records = []
        self.time_to_target = None
        self.epochs_to_target = None
        self.stopped_by_time_limit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.clock()
        self._train_end = None

    def on_test_begin(self, logs=None):
        if self._epoch_start is not None and self._train_end is None:
            self._train_end = self.clock()  # validation inside fit starts: training part ends

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        now = self.clock()
        train_seconds = (self._train_end or now) - self._epoch_start
        examples = self.examples_per_epoch or self.params["steps"] * self.batch_size
        record = {
            "epoch": epoch + 1,
            "examples_per_second": examples / max(train_seconds, 1e-12),
            "epoch_seconds": now - self._epoch_start,
            "elapsed_seconds": now - self._t0,
        }
        mean_epoch = sum(r["epoch_seconds"] for r in self.records + [record]) / (
            len(self.records) + 1
        )
        record["eta_seconds"] = (self.params["epochs"] - epoch - 1) * mean_epoch
        value = logs.get(self.monitor)
        if value is not None:
            record[self.monitor] = float(value)
        self.records.append(record)
        self._epoch_start = None
        logs["examples_per_second"] = record["examples_per_second"]

        reached = self.target is not None and value is not None and float(value) >= self.target
        if reached and self.time_to_target is None:
            self.time_to_target = record["elapsed_seconds"]
            self.epochs_to_target = epoch + 1
            if self.stop_at_target:
                self.model.stop_training = True
        out_of_time = self.time_limit is not None and record["elapsed_seconds"] >= self.time_limit
        if out_of_time and not self.model.stop_training and epoch + 1 < self.params["epochs"]:
            self.stopped_by_time_limit = True
            self.model.stop_training = True
        if self.verbose:
            shown = f" {self.monitor} {value:.4f}" if value is not None else ""
            first = reached and self.epochs_to_target == epoch + 1
            hit = f" | target {self.target} reached at {self.time_to_target:.1f}s" if first else ""
            if self.stopped_by_time_limit:
                hit += f" | time limit {self.time_limit:g}s: stopped"
            print(
                f"epoch {epoch + 1}: {record['examples_per_second']:,.0f} examples/s, "
                f"{record['epoch_seconds']:.1f}s, elapsed {record['elapsed_seconds']:.1f}s, "
                f"ETA {record['eta_seconds']:.0f}s{shown}{hit}"
            )


def tensorboard(log_dir: str | Path = "logs", name: str = "run", **kwargs):
    """A ``keras.callbacks.TensorBoard`` writing to ``log_dir/name-YYYYmmdd-HHMMSS``.

    Logs once per epoch, no profiler. Keras writes the event files with TensorFlow's summary
    ops, so this needs ``tensorflow`` installed (any backend). View with
    ``tensorboard --logdir logs``.
    """
    if importlib.util.find_spec("tensorflow") is None:
        raise ImportError("TensorBoard logging needs tensorflow: pip install tensorflow-cpu")
    path = Path(log_dir) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    kwargs = {"update_freq": "epoch", "profile_batch": 0, **kwargs}
    return keras.callbacks.TensorBoard(log_dir=str(path), **kwargs)

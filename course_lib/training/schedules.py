"""Learning-rate schedules with warm-up, and learning-rate scaling for large batches.

Both schedules are ``keras.optimizers.schedules.LearningRateSchedule`` objects written with
``keras.ops``, so they run inside the compiled train step on every backend:

    lr = OneCycle(peak_lr=4e-3, total_steps=epochs * steps_per_epoch)
    optimizer = keras.optimizers.AdamW(learning_rate=lr)
"""

from __future__ import annotations

import math

import keras
from keras import ops


def scale_learning_rate(
    base_lr: float, batch_size: int, base_batch_size: int = 128, rule: str = "linear"
) -> float:
    """Learning rate for ``batch_size`` given one that works at ``base_batch_size``.

    ``rule="linear"`` (Goyal et al. 2017, for SGD) multiplies by ``batch_size / base_batch_size``;
    ``rule="sqrt"`` (often better for Adam) by its square root.
    """
    if batch_size <= 0 or base_batch_size <= 0:
        raise ValueError(
            f"batch sizes must be positive, got batch_size={batch_size}, "
            f"base_batch_size={base_batch_size}"
        )
    ratio = batch_size / base_batch_size
    if rule == "linear":
        return base_lr * ratio
    if rule == "sqrt":
        return base_lr * math.sqrt(ratio)
    raise ValueError(f"rule must be 'linear' or 'sqrt', got rule={rule!r}")


def _check_steps(total_steps: int, warmup_steps: int) -> None:
    if total_steps <= 0 or not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"need 0 <= warmup_steps < total_steps, got warmup_steps={warmup_steps}, "
            f"total_steps={total_steps}"
        )


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle schedule (Smith 2018): linear warm-up to ``peak_lr``, cosine anneal to ``end_lr``.

    lr(0) = peak_lr / div_factor, lr(warmup_steps) = peak_lr, lr(total_steps) = end_lr;
    steps past ``total_steps`` stay at ``end_lr``.

    Args:
        peak_lr: the highest learning rate.
        total_steps: length of the cycle in optimizer steps (epochs * steps_per_epoch).
        warmup_fraction: share of ``total_steps`` spent warming up.
        div_factor: start value is ``peak_lr / div_factor``.
        end_lr: final value (default ``peak_lr / 1e3``).
    """

    def __init__(
        self,
        peak_lr: float,
        total_steps: int,
        warmup_fraction: float = 0.25,
        div_factor: float = 25.0,
        end_lr: float | None = None,
    ):
        self.peak_lr = float(peak_lr)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)
        self.div_factor = float(div_factor)
        self.end_lr = self.peak_lr / 1e3 if end_lr is None else float(end_lr)
        self.warmup_steps = int(round(self.warmup_fraction * self.total_steps))
        _check_steps(self.total_steps, self.warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        start = self.peak_lr / self.div_factor
        warm = start + (self.peak_lr - start) * step / max(self.warmup_steps, 1)
        decay_steps = self.total_steps - self.warmup_steps
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        anneal = self.end_lr + (self.peak_lr - self.end_lr) * cosine
        return ops.where(step < self.warmup_steps, warm, anneal)

    def get_config(self):
        return {
            "peak_lr": self.peak_lr,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
            "div_factor": self.div_factor,
            "end_lr": self.end_lr,
        }


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak_lr`` over ``warmup_steps``, then linear decay to ``end_lr``.

    lr(0) = 0, lr(warmup_steps) = peak_lr, lr(total_steps) = end_lr; constant afterwards.
    """

    def __init__(self, peak_lr: float, total_steps: int, warmup_steps: int, end_lr: float = 0.0):
        self.peak_lr = float(peak_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.end_lr = float(end_lr)
        _check_steps(self.total_steps, self.warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.peak_lr * step / max(self.warmup_steps, 1)
        decay_steps = self.total_steps - self.warmup_steps
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        decay = self.peak_lr + (self.end_lr - self.peak_lr) * progress
        return ops.where(step < self.warmup_steps, warm, decay)

    def get_config(self):
        return {
            "peak_lr": self.peak_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "end_lr": self.end_lr,
        }

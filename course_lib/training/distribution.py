"""Data-parallel training over several devices with Keras's distribution API (JAX backend).

One switch, ``mode``: ``"auto"`` (the default) is on when the JAX backend sees more than one
accelerator (GPU or TPU) and off otherwise, so a laptop or a one-GPU machine trains exactly as
before; ``True`` asks for it (e.g. on virtual CPU devices), ``False`` turns it off.

    plan = plan_data_parallel()                     # "auto"
    batch_size = plan.global_batch_size(512)        # 512 per device -> 512 x replicas per step
    lr = plan.learning_rate(4e-3, per_device_batch_size=512)   # sqrt rule for Adam-type optimizers
    with plan.scope():                              # build, compile and fit inside the scope
        model = build_model()
        model.compile(...)
        model.fit(..., batch_size=batch_size)

Inside the scope every variable is replicated on every device and each batch is split along
its first axis (``keras.distribution.DataParallel``). JAX compiles one program for the global
batch, so batch-norm statistics, the loss and the gradients are those of the whole global
batch: one step on N devices gives the weights one step on one device gives for the same
batch (tested on 2 virtual CPU devices, ``tests/training/test_training_distribution.py``).

What this implies for the recipe: each device keeps its batch size, so the global batch grows
N-fold and an epoch has N times fewer steps; the learning rate is scaled for the larger batch
(``scale_learning_rate``: linear for SGD, square root for Adam/AdamW). The global batch must be
divisible by the number of devices (also every evaluation batch).

Several hosts (a TPU pod, a multi-node GPU cluster) need one more line per process before
anything else, ``keras.distribution.initialize()``; nothing else changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import keras

from course_lib.training.schedules import scale_learning_rate

_ON = {"on", "true", "yes", "1"}
_OFF = {"off", "false", "no", "0"}


@dataclass(frozen=True)
class DataParallelPlan:
    """Whether training is split over devices, over which ones, and why.

    Attributes:
        enabled: True when a ``keras.distribution.DataParallel`` is used.
        devices: the devices of the mesh, e.g. ("gpu:0", "gpu:1"); when disabled, the one
            device used (empty when turned off without looking).
        reason: one human-readable sentence.
    """

    enabled: bool
    devices: tuple[str, ...]
    reason: str

    @property
    def replicas(self) -> int:
        """Model copies that train side by side (1 when disabled)."""
        return len(self.devices) if self.enabled else 1

    def global_batch_size(self, per_device_batch_size: int) -> int:
        """Examples per step over all devices: ``per_device_batch_size x replicas``."""
        if per_device_batch_size <= 0:
            raise ValueError(
                f"per_device_batch_size must be positive, got {per_device_batch_size}"
            )
        return per_device_batch_size * self.replicas

    def check_batch_size(self, batch_size: int, name: str = "batch_size") -> None:
        """Raise ``ValueError`` unless ``batch_size`` splits evenly over the devices."""
        if batch_size <= 0 or batch_size % self.replicas:
            raise ValueError(
                f"{name}={batch_size} must be a positive multiple of the {self.replicas} "
                f"devices ({', '.join(self.devices)}): each device gets an equal share"
            )

    def learning_rate(
        self, base_lr: float, per_device_batch_size: int, rule: str = "sqrt"
    ) -> float:
        """``base_lr`` (tuned for one device at ``per_device_batch_size``) scaled to the
        global batch with ``scale_learning_rate`` (``rule`` "linear" or "sqrt")."""
        global_batch = self.global_batch_size(per_device_batch_size)
        return scale_learning_rate(base_lr, global_batch, per_device_batch_size, rule)

    def distribution(self) -> keras.distribution.Distribution | None:
        """The ``keras.distribution.DataParallel`` over ``devices``; None when disabled."""
        if not self.enabled:
            return None
        return keras.distribution.DataParallel(devices=list(self.devices))

    @contextlib.contextmanager
    def scope(self) -> Iterator[DataParallelPlan]:
        """Make the distribution current inside the block (nothing changes when disabled).

        Build the model, compile and fit inside the block: variables created outside it live
        on one device and cannot be mixed with replicated ones.
        """
        distribution = self.distribution()
        if distribution is None:
            yield self
            return
        with distribution.scope():
            yield self


def _parse_mode(mode: bool | str) -> bool | None:
    """True (asked), False (off) or None ("auto")."""
    if isinstance(mode, bool):
        return mode
    if isinstance(mode, str):
        text = mode.strip().lower()
        if text == "auto":
            return None
        if text in _ON:
            return True
        if text in _OFF:
            return False
    raise ValueError(f"mode must be 'auto', 'on', 'off', True or False, got mode={mode!r}")


def plan_data_parallel(
    mode: bool | str = "auto",
    devices: Sequence[str] | None = None,
    backend: str | None = None,
) -> DataParallelPlan:
    """Decide whether to train data-parallel.

    Args:
        mode: "auto" (on with more than one GPU/TPU on the JAX backend), "on"/True, "off"/False.
        devices: the devices to use, e.g. ["gpu:0", "gpu:1"]; default: all that
            ``keras.distribution.list_devices()`` returns (GPUs/TPUs when there are any, else
            CPUs).
        backend: backend name; default ``keras.backend.backend()``.

    Raises:
        ValueError: for an unknown ``mode``, or ``mode`` on with a backend other than JAX (the
            course uses Keras's distribution API on JAX only).
    """
    wanted = _parse_mode(mode)
    backend = backend or keras.backend.backend()
    if wanted is False:
        return DataParallelPlan(False, (), "data parallelism off (asked)")
    if backend != "jax":
        if wanted:
            raise ValueError(
                f"data parallelism needs the JAX backend (KERAS_BACKEND=jax), this is {backend}"
            )
        return DataParallelPlan(False, (), f"{backend} backend: one device")
    found = list(devices) if devices is not None else keras.distribution.list_devices()
    if not found:
        raise ValueError("devices is empty: name at least one device, e.g. ['gpu:0']")
    accelerators = all(not d.lower().startswith("cpu") for d in found)
    if len(found) == 1:
        return DataParallelPlan(False, tuple(found), f"one device ({found[0]})")
    if wanted is None and not accelerators:
        return DataParallelPlan(
            False, tuple(found[:1]), f"{len(found)} CPU devices: one device (ask with mode='on')"
        )
    how = "asked" if wanted else "auto: more than one accelerator"
    return DataParallelPlan(True, tuple(found), f"data parallel over {len(found)} devices ({how})")

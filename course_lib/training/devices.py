"""Accelerator detection and the mixed-precision policy that fits it.

The rule (what NVIDIA's tensor cores do well):

* GPU with compute capability >= 8.0 (Ampere A100, Ada, Hopper H100/H200): ``mixed_bfloat16``.
  bfloat16 has float32's exponent range, so no loss scaling is needed.
* Older GPU (Volta V100, Turing T4: capability 7.x): ``mixed_float16`` with loss scaling
  (``keras.optimizers.LossScaleOptimizer``), because float16 gradients underflow.
* CPU (or anything unknown): ``float32``. Reduced precision is slower on most CPUs.

Everything here works on every Keras backend; the backend library is imported only when asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras


@dataclass(frozen=True)
class DeviceInfo:
    """What the Keras backend runs on.

    Attributes:
        backend: "tensorflow", "jax" or "torch".
        platform: "gpu", "tpu" or "cpu".
        name: device name, e.g. "NVIDIA H200" (the CPU's platform name on CPU).
        compute_capability: (major, minor) for NVIDIA GPUs, else None.
    """

    backend: str
    platform: str
    name: str
    compute_capability: tuple[int, int] | None = None


@dataclass(frozen=True)
class PrecisionChoice:
    """The mixed-precision policy chosen for a device, and why.

    Attributes:
        policy: a Keras dtype policy name: "mixed_bfloat16", "mixed_float16" or "float32".
        loss_scaling: True when the optimizer must be wrapped in a LossScaleOptimizer.
        reason: one human-readable sentence.
    """

    policy: str
    loss_scaling: bool
    reason: str


def _parse_capability(value) -> tuple[int, int] | None:
    """"9.0", (9, 0) or None -> (9, 0) or None."""
    if value is None:
        return None
    if isinstance(value, str):
        major, _, minor = value.partition(".")
        return int(major), int(minor or 0)
    major, minor = value
    return int(major), int(minor)


def detect_device(backend: str | None = None) -> DeviceInfo:
    """Describe the first accelerator the Keras backend sees (or the CPU when there is none).

    Args:
        backend: backend name; defaults to ``keras.backend.backend()``.
    """
    backend = backend or keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        capability = _parse_capability(getattr(device, "compute_capability", None))
        return DeviceInfo(backend, device.platform, device.device_kind, capability)
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            capability = _parse_capability(details.get("compute_capability"))
            return DeviceInfo(backend, "gpu", details.get("device_name", gpus[0].name), capability)
        return DeviceInfo(backend, "cpu", "CPU")
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            capability = _parse_capability(torch.cuda.get_device_capability(0))
            return DeviceInfo(backend, "gpu", torch.cuda.get_device_name(0), capability)
        return DeviceInfo(backend, "cpu", "CPU")
    return DeviceInfo(backend, "cpu", "CPU")


def choose_precision(device: DeviceInfo) -> PrecisionChoice:
    """Pick the dtype policy for ``device`` (see the module docstring for the rule)."""
    if device.platform == "tpu":
        return PrecisionChoice("mixed_bfloat16", False, "TPU: bfloat16 is native")
    if device.platform != "gpu":
        return PrecisionChoice("float32", False, f"{device.platform.upper()}: float32")
    capability = device.compute_capability
    if capability is not None and capability >= (8, 0):
        major, minor = capability
        return PrecisionChoice(
            "mixed_bfloat16", False, f"{device.name} (compute {major}.{minor} >= 8.0): bfloat16"
        )
    shown = "unknown" if capability is None else f"{capability[0]}.{capability[1]}"
    return PrecisionChoice(
        "mixed_float16", True, f"{device.name} (compute {shown} < 8.0): float16 + loss scaling"
    )


def apply_precision(choice: PrecisionChoice, verbose: bool = True) -> PrecisionChoice:
    """Set the global Keras dtype policy (call before building the model) and report it."""
    keras.config.set_dtype_policy(choice.policy)
    if verbose:
        print(f"precision: {choice.policy} ({choice.reason})")
    return choice


def wrap_optimizer(
    optimizer: keras.optimizers.Optimizer, choice: PrecisionChoice
) -> keras.optimizers.Optimizer:
    """Wrap ``optimizer`` in a ``LossScaleOptimizer`` when the choice needs loss scaling.

    (``model.compile`` would do this by itself for a ``mixed_float16`` model; being explicit
    shows the step in the course.)
    """
    if choice.loss_scaling:
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer

"""Precision policy selection for mocked devices, and the optimizer wrapping it implies."""

import keras
import pytest

from course_lib.training.devices import (
    DeviceInfo,
    apply_precision,
    choose_precision,
    detect_device,
    wrap_optimizer,
)


@pytest.mark.parametrize(
    ("device", "policy", "loss_scaling"),
    [
        (DeviceInfo("jax", "gpu", "NVIDIA H200", (9, 0)), "mixed_bfloat16", False),
        (DeviceInfo("tensorflow", "gpu", "NVIDIA A100", (8, 0)), "mixed_bfloat16", False),
        (DeviceInfo("torch", "gpu", "Tesla T4", (7, 5)), "mixed_float16", True),
        (DeviceInfo("jax", "gpu", "Tesla V100", (7, 0)), "mixed_float16", True),
        (DeviceInfo("jax", "gpu", "unknown GPU", None), "mixed_float16", True),
        (DeviceInfo("jax", "tpu", "TPU v4", None), "mixed_bfloat16", False),
        (DeviceInfo("tensorflow", "cpu", "CPU", None), "float32", False),
    ],
)
def test_choose_precision(device, policy, loss_scaling):
    choice = choose_precision(device)
    assert (choice.policy, choice.loss_scaling) == (policy, loss_scaling)
    assert choice.reason


def test_wrap_optimizer_only_with_loss_scaling():
    t4 = choose_precision(DeviceInfo("jax", "gpu", "Tesla T4", (7, 5)))
    h200 = choose_precision(DeviceInfo("jax", "gpu", "NVIDIA H200", (9, 0)))
    wrapped = wrap_optimizer(keras.optimizers.Adam(), t4)
    assert isinstance(wrapped, keras.optimizers.LossScaleOptimizer)
    plain = keras.optimizers.Adam()
    assert wrap_optimizer(plain, h200) is plain


def test_apply_precision_sets_and_reports(capsys):
    choice = choose_precision(DeviceInfo("jax", "gpu", "NVIDIA H200", (9, 0)))
    try:
        apply_precision(choice)
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        assert "mixed_bfloat16" in capsys.readouterr().out
    finally:
        keras.config.set_dtype_policy("float32")


def test_detect_device_on_this_machine():
    device = detect_device()
    assert device.backend == keras.backend.backend()
    assert device.platform in {"cpu", "gpu", "tpu"}
    if device.platform == "cpu":
        assert choose_precision(device).policy == "float32"

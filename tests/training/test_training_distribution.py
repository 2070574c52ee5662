"""Data parallelism: the switch, the batch and learning-rate scaling, and one step on 1 vs 2
devices (JAX, 2 virtual CPU devices, in a subprocess with TensorFlow hidden as on the GPU
machine). Also the recipe's time limit."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from course_lib.training import DataParallelPlan, TrainingMonitor, plan_data_parallel
from course_lib.training.recipes import _eval_batch_size

SCRIPT = Path(__file__).with_name("data_parallel_step.py")
ROOT = Path(__file__).resolve().parents[2]


def test_auto_is_on_with_several_accelerators_only():
    two_gpus = plan_data_parallel("auto", devices=["gpu:0", "gpu:1"], backend="jax")
    assert two_gpus.enabled and two_gpus.replicas == 2 and "auto" in two_gpus.reason
    assert not plan_data_parallel("auto", devices=["gpu:0"], backend="jax").enabled
    two_cpus = plan_data_parallel("auto", devices=["cpu:0", "cpu:1"], backend="jax")
    assert not two_cpus.enabled and two_cpus.replicas == 1 and "ask" in two_cpus.reason
    assert not plan_data_parallel("auto", backend="tensorflow").enabled


def test_asked_and_off():
    asked = plan_data_parallel("on", devices=["cpu:0", "cpu:1"], backend="jax")
    assert asked.enabled and asked.devices == ("cpu:0", "cpu:1")
    assert plan_data_parallel(True, devices=["cpu:0", "cpu:1"], backend="jax").enabled
    assert not plan_data_parallel("off", devices=["gpu:0", "gpu:1"], backend="jax").enabled
    assert not plan_data_parallel(False).enabled


def test_bad_mode_backend_and_devices():
    with pytest.raises(ValueError, match="mode must be"):
        plan_data_parallel("sometimes", backend="jax")
    with pytest.raises(ValueError, match="JAX backend"):
        plan_data_parallel("on", backend="tensorflow")
    with pytest.raises(ValueError, match="devices is empty"):
        plan_data_parallel("on", devices=[], backend="jax")


def test_batch_and_learning_rate_scaling():
    plan = DataParallelPlan(True, ("gpu:0", "gpu:1", "gpu:2", "gpu:3"), "test")
    assert plan.global_batch_size(512) == 2048
    assert plan.learning_rate(4e-3, 512) == pytest.approx(8e-3)  # sqrt(4) = 2
    assert plan.learning_rate(0.1, 512, rule="linear") == pytest.approx(0.4)
    plan.check_batch_size(1000)
    with pytest.raises(ValueError, match="batch_size=1002 must be a positive multiple of the 4"):
        plan.check_batch_size(1002)
    with pytest.raises(ValueError, match="per_device_batch_size"):
        plan.global_batch_size(0)
    single = DataParallelPlan(False, ("cpu:0",), "test")
    assert single.global_batch_size(512) == 512 and single.learning_rate(4e-3, 512) == 4e-3
    assert single.distribution() is None


def test_evaluation_batches_split_over_devices():
    def plan(n):
        return DataParallelPlan(n > 1, tuple(f"gpu:{i}" for i in range(n)), "test")

    assert _eval_batch_size(10_000, plan(1)) == 1000
    assert _eval_batch_size(10_000, plan(8)) == 1000
    assert _eval_batch_size(9_999, plan(3)) == 999
    with pytest.raises(ValueError, match="do not split over the 8 devices"):
        _eval_batch_size(500, plan(8))


def test_disabled_scope_changes_nothing():
    import keras

    before = keras.distribution.distribution()
    with DataParallelPlan(False, ("cpu:0",), "test").scope() as plan:
        assert keras.distribution.distribution() is before
        assert plan.replicas == 1


def test_time_limit_stops_after_the_epoch_that_passes_it():
    clock = SimpleNamespace(now=0.0)
    monitor = TrainingMonitor(32, 0.99, time_limit=5.0, clock=lambda: clock.now, verbose=False)
    model = SimpleNamespace(stop_training=False)
    monitor.set_model(model)
    monitor.set_params({"epochs": 10, "steps": 4})
    monitor.on_train_begin()
    for epoch in range(3):
        monitor.on_epoch_begin(epoch)
        clock.now += 2.0
        monitor.on_epoch_end(epoch, {"val_accuracy": 0.5})
        if model.stop_training:
            break
    assert epoch == 2 and monitor.stopped_by_time_limit  # 6 s >= 5 s after epoch 3
    assert monitor.time_to_target is None


def test_one_step_on_one_and_two_devices_gives_the_same_weights(tmp_path):
    pytest.importorskip("jax")
    stub = tmp_path / "no_tf" / "tensorflow"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('TensorFlow hidden (as on the GPU machine)')\n")
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        # 2 virtual CPU devices; unoptimised code compiles faster (both runs alike)
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0",
        "PYTHONPATH": os.pathsep.join([str(stub.parent), str(ROOT)]),
    }
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["devices"] == ["cpu:0", "cpu:1"]
    assert summary["replicas"] == [1, 2] and summary["mesh_devices"] == [1, 2]
    assert math.isclose(*summary["loss"], rel_tol=1e-5)
    assert summary["min_weight_change"] > 1e-4  # the step moved every weight...
    assert summary["max_weight_difference"] < 1e-6  # ...by the same amount on 1 and 2 devices
    assert summary["recipe"]["replicas"] == 2 and summary["recipe"]["epochs"] == 2

"""The utilities train a tiny model a few steps: TensorFlow in-process, JAX in a subprocess."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("tiny_training.py")


def check(summary: dict, backend: str) -> None:
    assert summary["backend"] == backend
    assert summary["course_epochs"] == 4 and summary["plain_epochs"] == 1
    assert summary["course_accuracy"] >= 0.9  # brightness classes are easy; EMA + TTA scored
    assert 0.0 <= summary["plain_accuracy"] <= 1.0
    assert summary["course_examples_per_second"] > 0
    assert summary["course_precision"] == "float32"  # CPU
    assert summary["policy_after"] == "float32"


def load_tiny():
    spec = importlib.util.spec_from_file_location("tiny_training", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_training_tensorflow():
    pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("this process runs another backend")
    check(load_tiny().train_tiny(), "tensorflow")


def test_tiny_training_bfloat16_policy():
    """The GPU policy (mixed_bfloat16: bf16 compute, float32 weights and logits) also trains."""
    import keras

    from course_lib.training.recipes import CourseConfig, run_course

    tiny = load_tiny()
    config = CourseConfig(batch_size=32, epochs=4, peak_lr=3e-2, precision="mixed_bfloat16")
    result = run_course(tiny.tiny_model, tiny.tiny_data(), 1.01, config, verbose=False)
    assert result.precision == "mixed_bfloat16"
    assert result.final_accuracy >= 0.9
    assert keras.config.dtype_policy().name == "float32"  # restored


def test_tiny_training_jax():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    check(json.loads(result.stdout.strip().splitlines()[-1]), "jax")

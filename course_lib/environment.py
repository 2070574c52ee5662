"""Notebook set-up: seeds, quiet TensorFlow, plot defaults, version checks.

Every chapter's first code cell runs ``course_lib.setup()``.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import sys
import warnings

MIN_VERSIONS = {"numpy": (1, 26), "keras": (3, 8), "matplotlib": (3, 8)}
DEFAULT_SEED = 42


def fast_mode() -> bool:
    """True when ``COURSE_FAST`` is set to a true value (tests, ``course run --fast``)."""
    return os.environ.get("COURSE_FAST", "").strip().lower() in {"1", "true", "yes", "on"}


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ and Python log lines before TensorFlow is imported.

    TensorFlow writes start-up notices to stderr; inside a notebook they become
    stderr outputs, which nbval reports as "Missing output fields". Setting the
    variables must happen before the first ``import tensorflow``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # no oneDNN notice, bit-stable CPU maths
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "absl", "h5py", "jax._src.xla_bridge"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*(oneDNN|cuda|CUDA|GPU).*")
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")


def _parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_versions(modules: dict[str, object]) -> None:
    """Raise ``RuntimeError`` when an imported library is older than the course supports."""
    for name, module in modules.items():
        minimum = MIN_VERSIONS.get(name)
        version = getattr(module, "__version__", "0")
        if minimum and _parse_version(version) < minimum:
            wanted = ".".join(map(str, minimum))
            raise RuntimeError(
                f"{name} {version} is too old for this course (needs >= {wanted}). "
                "Run `make lab` again, or `pip install -e .` in the course folder."
            )


def seed_everything(seed: int = DEFAULT_SEED) -> None:
    """Seed Python, NumPy and (when imported) Keras/TensorFlow."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import numpy as np

    np.random.seed(seed)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(seed)


def plot_defaults() -> None:
    """Readable, compact figures that embed small in notebooks."""
    import matplotlib

    matplotlib.rcParams.update(
        {
            "figure.figsize": (6.4, 3.6),
            "figure.dpi": 72,
            "savefig.dpi": 72,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 10,
            "legend.frameon": False,
            "svg.hashsalt": "course",  # deterministic SVG ids
        }
    )


def accelerators() -> list[str]:
    """Names of the accelerators the Keras backend sees (empty list on CPU)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_physical_devices("GPU")]
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform != "cpu"]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # a broken driver must not stop the course
        return []
    return []


def summary_line(keras_module=None) -> str:
    """One line: Python, NumPy, Keras and backend, accelerator, fast mode."""
    import numpy as np

    parts = [f"Python {platform.python_version()}", f"NumPy {np.__version__}"]
    if keras_module is not None:
        parts.append(f"Keras {keras_module.__version__} ({keras_module.backend.backend()})")
        gpus = accelerators()
        parts.append(f"{len(gpus)} GPU" if gpus else "CPU only")
    parts.append("fast mode" if fast_mode() else "full mode")
    return " | ".join(parts)


def setup(seed: int = DEFAULT_SEED, keras: bool = True, deterministic: bool = True) -> None:
    """Prepare a notebook: quiet logs, versions, seeds, plot style. Prints one summary line.

    Args:
        seed: seed for Python, NumPy and Keras.
        keras: import Keras (and its backend) now; chapters that only use NumPy pass False.
        deterministic: ask TensorFlow for deterministic ops (same numbers every run).

    Prints the summary line and, when Keras finds no GPU, a hint on how to get one.
    """
    quiet_tensorflow()
    import matplotlib
    import numpy as np

    modules: dict[str, object] = {"numpy": np, "matplotlib": matplotlib}
    keras_module = None
    if keras:
        import keras as keras_module

        modules["keras"] = keras_module
        if deterministic and keras_module.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")
            tf.config.experimental.enable_op_determinism()
    check_versions(modules)
    seed_everything(seed)
    plot_defaults()
    print(summary_line(keras_module))
    if keras_module is not None and not accelerators():
        print("No GPU found: everything runs on the CPU (fine for this course; see README 'GPU set-up').")

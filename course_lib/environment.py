"""Notebook set-up: seeds, quiet TensorFlow, plot defaults, version checks.

Every chapter's first code cell runs ``course_lib.setup()``.
"""

from __future__ import annotations

import contextlib
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


def onednn_default() -> str:
    """The course's setting of ``TF_ENABLE_ONEDNN_OPTS`` when the user has none: "1" (oneDNN's
    fast CPU kernels, about twice TensorFlow's CPU speed: ``benchmarks/pretrain_onednn.py``) in
    full mode, what students run; "0" in fast mode, where the tests compare outputs bit for bit
    and oneDNN's results vary in the last bits from run to run."""
    return "0" if fast_mode() else "1"


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ and Python log lines before TensorFlow is imported, and choose
    its CPU kernels (:func:`onednn_default`, unless ``TF_ENABLE_ONEDNN_OPTS`` is set already).

    TensorFlow writes start-up notices to stderr; inside a notebook they become
    stderr outputs, which nbval reports as "Missing output fields". Setting the
    variables must happen before the first ``import tensorflow``; the oneDNN notice, which
    ignores them, is dropped by :func:`import_keras`.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", onednn_default())
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "absl", "h5py", "jax._src.xla_bridge"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*(oneDNN|cuda|CUDA|GPU).*")
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")


@contextlib.contextmanager
def _stderr_descriptor_silenced():
    """Send what C code writes to file descriptor 2 to /dev/null (Python's own errors still
    raise). TensorFlow's oneDNN start-up notice is written there by its C++ logger whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says; a notebook kernel would store it as a stderr output."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 (an embedded interpreter): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras():
    """``import keras`` (and its backend) after :func:`quiet_tensorflow`, with TensorFlow's
    start-up notices dropped; returns the module."""
    quiet_tensorflow()
    if "keras" in sys.modules:
        return sys.modules["keras"]
    with _stderr_descriptor_silenced():
        import keras
    return keras


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


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_cores() -> int:
    """CPU cores this process may use (its affinity where the OS tells, else ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def hardware() -> str:
    """One line for a results table or a model's metadata, e.g. "AMD EPYC, 2 CPU cores, no GPU"
    or "AMD EPYC, 16 CPU cores, GPU: NVIDIA H100 80GB HBM3" (GPUs only when Keras is imported)."""
    gpus = accelerators() if "keras" in sys.modules else []
    return (f"{cpu_name()}, {cpu_cores()} CPU cores, "
            + (f"GPU: {', '.join(gpus)}" if gpus else "no GPU"))


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


RUN_LOG_VARIABLE = "COURSE_RUN_LOG"


def record_run_event(event: str, **fields) -> None:
    """Append one JSON line ``{"event": event, **fields}`` to the file named by
    ``COURSE_RUN_LOG`` (set by ``course run`` / ``course publish`` for the notebook's kernel);
    nothing when it is unset. This is how a published run knows, from inside the kernel, its
    mode, backend and versions and which pre-trained models it loaded."""
    path = os.environ.get(RUN_LOG_VARIABLE)
    if not path:
        return
    import json

    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"event": event, **fields}, sort_keys=True) + "\n")


def _versions(keras_module=None) -> dict[str, str]:
    """Versions of the libraries a chapter's results depend on (those that are imported)."""
    import numpy as np

    versions = {"python": platform.python_version(), "numpy": np.__version__}
    if keras_module is not None:
        versions["keras"] = keras_module.__version__
    for name in ("tensorflow", "jax", "torch"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "__version__"):
            versions[name] = module.__version__
    return versions


def setup(seed: int = DEFAULT_SEED, keras: bool = True, deterministic: bool | None = None) -> None:
    """Prepare a notebook: quiet logs, versions, seeds, plot style. Prints one summary line.

    Args:
        seed: seed for Python, NumPy and Keras.
        keras: import Keras (and its backend) now; chapters that only use NumPy pass False.
        deterministic: ask TensorFlow for deterministic ops (the same numbers every run, about
            1.6x slower on a CPU: ``benchmarks/cpu_kernels.py``). Default: in fast mode only,
            where the tests compare outputs; full mode takes the fastest kernels (seeds stay
            fixed, the last digits of a result may differ from run to run).

    Prints the summary line and, when Keras finds no GPU, a hint on how to get one.
    """
    quiet_tensorflow()
    import matplotlib
    import numpy as np

    modules: dict[str, object] = {"numpy": np, "matplotlib": matplotlib}
    keras_module = None
    if keras:
        keras_module = import_keras()
        modules["keras"] = keras_module
        if deterministic is None:
            deterministic = fast_mode()
        if keras_module.backend.backend() == "tensorflow":
            import tensorflow as tf

            # TensorFlow's logger (re)sets its own level on import; its warnings (e.g. about
            # tf.function retracing) would become stored outputs.
            tf.get_logger().setLevel("ERROR")
            if deterministic:
                tf.config.experimental.enable_op_determinism()
    check_versions(modules)
    seed_everything(seed)
    plot_defaults()
    record_run_event(
        "setup", mode="fast" if fast_mode() else "full", hardware=hardware(),
        backend=keras_module.backend.backend() if keras_module is not None else "none",
        onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"), versions=_versions(keras_module))
    print(summary_line(keras_module))
    if keras_module is not None and not accelerators():
        print("No GPU found: everything runs on the CPU (fine for this course; see README 'GPU set-up').")

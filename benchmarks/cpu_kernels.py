"""TensorFlow's CPU kernel settings, measured on the course's own CIFAR network: what fast mode
(and the tests) use against what full mode uses.

    python benchmarks/cpu_kernels.py               # ~1-2 min on 2 cores
    python benchmarks/cpu_kernels.py --repeats 3   # interleaved repeats, median reported

Three settings, each in its own process (the variable must be set before TensorFlow is
imported), training ``cifar.classifier(cifar_backbone())`` on random images for one warm-up
epoch and one measured epoch:

- ``tests``: ``TF_ENABLE_ONEDNN_OPTS=0`` and ``enable_op_determinism()`` (fast mode: outputs
  are compared bit for bit);
- ``oneDNN + deterministic``: oneDNN's kernels, still deterministic ops;
- ``full mode``: oneDNN's kernels, no op determinism (``course_lib.setup()`` outside fast mode).

Prints ``name: value`` lines (examples/s per setting) and the ratios against ``tests``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SETTINGS = {  # name: (TF_ENABLE_ONEDNN_OPTS, deterministic ops)
    "tests": ("0", True),
    "oneDNN + deterministic": ("1", True),
    "full mode": ("1", False),
}


def measure(examples: int, deterministic: bool) -> float:
    """Examples/s of one epoch (after a warm-up epoch), in this process."""
    import keras
    import numpy as np
    import tensorflow as tf

    from course_lib import cifar, finetuning

    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (examples, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 5, examples)
    model = cifar.classifier(cifar.cifar_backbone(**cifar.BACKBONE), 5)
    finetuning.compile_classifier(model, 1e-3)
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    return examples / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=6144, help="images per epoch")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved runs per setting")
    parser.add_argument("--child", choices=["det", "nodet"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.examples, args.child == "det")))
        return 0
    speeds: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.repeats):
        for name, (onednn, deterministic) in SETTINGS.items():
            env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "3",
                   "KERAS_BACKEND": "tensorflow"}
            out = subprocess.run([sys.executable, __file__, "--examples", str(args.examples),
                                  "--child", "det" if deterministic else "nodet"],
                                 env=env, capture_output=True, text=True, check=True)
            speeds[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    medians = {name: statistics.median(values) for name, values in speeds.items()}
    for name, value in medians.items():
        print(f"{name} examples/s: {value:.0f}")
    for name in list(SETTINGS)[1:]:
        print(f"ratio {name}/tests: {medians[name] / medians['tests']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

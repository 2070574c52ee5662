"""Is the input pipeline the bottleneck? Steps/s of the course recipe's training step on
synthetic data vs the real CIFAR-10 (JPEG copy) through the course pipeline.

Four timings, all in this process, on the course recipe's model and compiled step
(``course_lib.training.recipes.course_model``, crop + flip inside the model):

* ``synthetic``: one batch made once, already on the device, fed again every step: the step
  alone, the ceiling;
* ``real``: CIFAR-10 through ``train_batches`` (``DeviceBatches`` on JAX: uint8 data on the
  device, shuffled batches gathered there; cached, prefetched ``tf.data`` on TensorFlow);
* ``host``: the plain recipe's path: float32 NumPy arrays, ``fit(x, y, batch_size)``, each
  batch sliced and copied from host memory;
* ``pipeline``: ``train_batches`` alone, no step (batches/s the pipeline can deliver).

    # CPU (a few minutes on 2 cores): a narrow model, small batches
    python benchmarks/profile_input_pipeline.py --widths 16,32,64,128 --batch-size 128 --steps 10
    KERAS_BACKEND=jax python benchmarks/profile_input_pipeline.py --widths 16,32,64,128 \\
        --batch-size 128 --steps 10
    # GPU (benchmarks/gpu_check.sh runs this): the recipe's model and batch
    KERAS_BACKEND=jax python benchmarks/profile_input_pipeline.py

Prints ``name: value`` lines and ratios against the synthetic step: ``ratio real/synthetic``
near 1 means the data path costs nothing; ``ratio pipeline/step`` is how many times faster the
pipeline delivers batches than the step consumes them.

Measured on the shared 2-core CPU machine (JAX, widths 16,32,64,128, batch 128, 20 steps x 3
repeats, under the CPU lock but with other jobs running, load 5-7): synthetic 1.14 steps/s,
real 0.97, host arrays 0.85, pipeline alone 655 batches/s; real/synthetic 0.854, host/synthetic
0.745, pipeline/step 575. The pipeline delivers batches ~500x faster than the step uses them, so
on a CPU the step dominates; the GPU figures come from ``benchmarks/gpu_check.sh``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if (ROOT.parent / "shared" / "data").is_dir():  # the course's offline copies, as in the tests
    os.environ.setdefault("COURSE_DATA_DIR", str(ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from course_lib import data as course_data  # noqa: E402
from course_lib.training import (  # noqa: E402
    PrecisionChoice,
    RandomCropFlip,
    apply_precision,
    choose_precision,
    cifar_resnet,
    detect_device,
    train_batches,
)
from course_lib.training.recipes import CourseConfig, course_model  # noqa: E402

# The course recipe of benchmarks/time_to_accuracy.py (GPU_COURSE) without what does not touch
# the step or the data path (schedule length, TTA) and without EMA: with use_ema=True, Keras
# 3.15 on JAX copies the averages into the weights at the end of fit, and the next fit call
# then fails ("Attempt to donate the same buffer twice"); EMA adds one multiply-add per weight.
RECIPE = CourseConfig(
    batch_size=512, peak_lr=4e-3, weight_decay=5e-4, label_smoothing=0.2, ema=False,
    crop_pad=4, flip=True, jit_compile="auto",  # XLA on GPUs (and always on JAX), off on a CPU TF
)


class SameBatch(keras.utils.PyDataset):
    """``steps`` times the same (x, y) batch, made once and held on the device (JAX, PyTorch;
    TensorFlow uses ``synthetic_batches``, since a PyDataset goes through a Python generator
    there)."""

    def __init__(self, x, y, steps: int):
        super().__init__()
        self.x, self.y, self.steps = ops.convert_to_tensor(x), ops.convert_to_tensor(y), steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int):
        return self.x, self.y


def synthetic_batches(x, y, steps: int):
    """The same (x, y) batch ``steps`` times, with no per-step input work on any backend."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.data.Dataset.from_tensors((x, y)).cache().repeat(steps)
    return SameBatch(x, y, steps)


def _sync(model: keras.Model) -> None:
    """Wait for the device to finish (JAX and TensorFlow GPU ops run asynchronously)."""
    np.asarray(ops.convert_to_numpy(model.trainable_weights[0].value)).sum()


def steps_per_second(model: keras.Model, fit_args: dict, steps: int, warmup: int = 0) -> float:
    """Steps/s of ``model.fit(**fit_args)`` over ``steps`` steps, after ``warmup`` untimed steps
    (the first call compiles the step for these inputs)."""
    if warmup:
        model.fit(**fit_args, epochs=1, steps_per_epoch=warmup, verbose=0)
    _sync(model)
    start = time.perf_counter()
    model.fit(**fit_args, epochs=1, steps_per_epoch=steps, verbose=0)
    _sync(model)
    return steps / (time.perf_counter() - start)


def pipeline_batches_per_second(dataset, batches: int) -> float:
    """Batches/s that ``train_batches`` delivers with no step consuming them."""
    if isinstance(dataset, keras.utils.PyDataset):
        ops.convert_to_numpy(dataset[0][0][:1])  # first gather compiled
        start = time.perf_counter()
        for index in range(batches):
            x, y = dataset[index % len(dataset)]
        ops.convert_to_numpy(x[:1])
        ops.convert_to_numpy(y[:1])
    else:  # tf.data
        iterator = iter(dataset.repeat())
        next(iterator)
        start = time.perf_counter()
        for _ in range(batches):
            x, y = next(iterator)
        np.asarray(x[:1])
    return batches / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,128,256,512", help="cifar_resnet widths")
    parser.add_argument("--batch-size", type=int, default=RECIPE.batch_size)
    parser.add_argument("--steps", type=int, default=50, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first, per input")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per input (median)")
    parser.add_argument("--limit", type=int, help="use only the first N training images")
    parser.add_argument("--sample", action="store_true", help="the shipped fast-mode sample")
    parser.add_argument("--precision", default="auto", help="auto or a Keras dtype policy")
    args = parser.parse_args(argv)
    widths = tuple(int(w) for w in args.widths.split(","))
    batch = args.batch_size

    device = detect_device()
    print(f"keras: {keras.__version__} backend: {keras.backend.backend()} device: {device.name}")
    t_load = time.perf_counter()
    x, y = course_data.load("cifar10", split="train", sample=args.sample)
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    print(f"data: cifar10 train {x.shape} load_seconds: {time.perf_counter() - t_load:.1f}")
    if len(x) < batch:
        parser.error(f"--batch-size {batch} is larger than the {len(x)} training images")

    if args.precision == "auto":
        choice = choose_precision(device)
    else:
        choice = PrecisionChoice(args.precision, args.precision == "mixed_float16", "asked")
    apply_precision(choice)
    keras.utils.set_random_seed(0)
    model = course_model(
        lambda augment: cifar_resnet(widths=widths, augment=augment),
        RandomCropFlip(RECIPE.crop_pad, RECIPE.flip, seed=0),
        RECIPE, choice, total_steps=10_000,
    )
    print(f"model: cifar_resnet widths {widths}, {model.count_params():,} parameters, "
          f"batch {batch}, steps {args.steps}")

    rng = np.random.default_rng(0)
    synthetic = synthetic_batches(
        rng.integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, batch),
        steps=args.steps + args.warmup,
    )
    real = train_batches(x, y, batch)
    if len(real) < max(args.steps, args.warmup):
        parser.error(f"{len(real)} batches of {batch} is fewer than --steps + --warmup")
    inputs = {
        "synthetic": {"x": synthetic, "shuffle": False},
        "real": {"x": real, "shuffle": False},
        "host": {"x": x.astype("float32"), "y": y, "batch_size": batch},
    }
    for fit_args in inputs.values():  # compile each input's step once
        steps_per_second(model, fit_args, 1, args.warmup)
    # The three in turn, --repeats times, median of each: a change of machine load during the
    # run hits all three alike.
    measured = {name: [] for name in inputs}
    for _ in range(args.repeats):
        for name, fit_args in inputs.items():
            measured[name].append(steps_per_second(model, fit_args, args.steps))
    rates = {name: statistics.median(values) for name, values in measured.items()}
    pipeline = pipeline_batches_per_second(train_batches(x, y, batch), 4 * args.steps)
    print(f"repeats: {args.repeats} (median of each)")
    for name, rate in rates.items():
        print(f"steps_per_second_{name}: {rate:.2f}")
        print(f"examples_per_second_{name}: {rate * batch:,.0f}")
    print(f"pipeline_batches_per_second: {pipeline:.1f}")
    print(f"ratio real/synthetic = {rates['real'] / rates['synthetic']:.3f}")
    print(f"ratio host/synthetic = {rates['host'] / rates['synthetic']:.3f}")
    print(f"ratio pipeline/step = {pipeline / rates['synthetic']:.1f}")
    keras.config.set_dtype_policy("float32")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

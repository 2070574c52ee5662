"""Time to a target test accuracy: the plain Keras tutorial recipe vs the course recipe.

Both recipes run in this process, on the same data, to the same target; wall time counts from
before the model is built (compilation included) and test accuracy is checked after every epoch.

    # GPU (any backend; the H200 numbers use KERAS_BACKEND=jax): CIFAR-10 to 94%
    KERAS_BACKEND=jax python benchmarks/time_to_accuracy.py
    # CPU: MNIST CNN to 99%, a few minutes on 2 cores
    python benchmarks/time_to_accuracy.py --cpu
    # smoke test of the GPU recipe on a CPU: a few steps on a slice of CIFAR-10
    python benchmarks/time_to_accuracy.py --limit 2048 --max-epochs 1 --course-epochs 1 \
        --widths 16,32,64,128
    # what benchmarks/gpu_check.sh runs on the GPU: time caps, the course recipe over 3 seeds
    python benchmarks/time_to_accuracy.py --time-limit 100 --seeds 0,1,2
    # try another setting of the course recipe without editing code
    python benchmarks/time_to_accuracy.py --recipes course --course-set weight_decay=0.05

Prints ``name: value`` lines and ``ratio plain/course = X`` (plain seconds / course seconds;
with several seeds, over the course recipe's median). ``--time-limit S`` stops a recipe after
the first epoch that ends past S seconds (a recipe that did not reach the target is reported so,
and the ratio becomes a lower bound). ``--data-parallel on`` trains the course recipe over all
devices (``course_lib.training.distribution``; "auto", the default, does so with several GPUs).

Measured on the shared 2-core CPU machine (MNIST CNN, examples/s after the first epoch; other
jobs were running, so +-20%):

* TensorFlow, ``jit_compile=True`` (XLA): 270-580 ex/s vs 5,200-6,200 without, plus 30-80 s of
  compilation: XLA's CPU convolutions are ~10x slower. Keras's default ("auto") already turns XLA
  off on a CPU-only TensorFlow; keep it off on CPU, on for GPUs.
* TensorFlow, ``steps_per_execution=8``: +5 to +25% in side-by-side runs under load
  (6,150-6,550 vs 5,200-6,230 ex/s); cached uint8 ``tf.data`` beat float32 NumPy arrays in
  ``fit`` there (5,200-6,200 vs 3,800-4,100 ex/s). In the light-load ``--cpu`` run both
  recipes ran at the same speed (plain 5,900-7,500, course 6,100-7,300 ex/s): on 2 cores the
  conv kernels dominate, and the CPU gain comes from needing fewer epochs.
* JAX (CPU), XLA-compiled step (Keras's default there), full ``--cpu`` run at light load:
  1,530-1,660 ex/s plain (host arrays), 1,430-1,610 course (``DeviceBatches``,
  ``steps_per_execution=8``): ~4x slower than TensorFlow's non-XLA CPU kernels for this CNN.
  ``steps_per_execution`` cannot help on JAX: Keras's JAX trainer loops the jitted step in
  Python (no fusion; callbacks see fewer batches); side by side under load: 317 vs 280 ex/s.
* Training tricks on MNIST, same seed, one run each (test accuracy after epoch 3): a 4-epoch
  one-cycle reaches 99.02% (no EMA) / 99.09% (EMA 0.99), a 3-epoch one reaches 98.93-98.96%;
  label smoothing 0.1 showed no gain (3-epoch cycle: 98.93% with it; 98.96% without it, with EMA).
  EMA's gain here is within run-to-run noise;
  Keras's ``use_ema=True`` costs no measurable throughput (6,600-8,000 vs 6,800-7,000 ex/s).
"""

from __future__ import annotations

import argparse
import dataclasses
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

from course_lib import data as course_data  # noqa: E402
from course_lib.training import cifar_resnet, detect_device, mnist_cnn  # noqa: E402
from course_lib.training.recipes import CourseConfig, run_course, run_plain  # noqa: E402

# MNIST on a CPU: same model; one-cycle AdamW over 4 epochs, weight EMA, tf.data / data on
# device. No XLA and batch 128: on 2 CPU cores XLA made the conv step ~10x slower and larger
# batches gave no more examples/s, so the gain here comes from needing fewer epochs.
CPU_COURSE = CourseConfig(
    batch_size=128, epochs=4, peak_lr=5e-3, warmup_fraction=0.2, label_smoothing=0.0,
    ema=True, ema_momentum=0.99, jit_compile="auto", steps_per_execution=8, precision="float32",
)
# CIFAR-10 on a GPU: ResNet-9 style model, crop+flip on the GPU, EMA, flip TTA, bf16.
GPU_COURSE = CourseConfig(
    batch_size=512, epochs=16, peak_lr=4e-3, warmup_fraction=0.2, weight_decay=5e-4,
    label_smoothing=0.2, ema=True, ema_momentum=0.99, tta=True, crop_pad=4, flip=True,
    jit_compile=True, steps_per_execution=1, precision="auto",
)


def load(name: str, limit: int | None, sample: bool = False, test_limit: int | None = None):
    """(x_train, y_train, x_test, y_test) of the full data set (or the shipped sample), or its
    first ``limit`` training images (and max(limit / 4, 1000) test images, or ``test_limit``)."""
    x_train, y_train = course_data.load(name, split="train", sample=sample)
    x_test, y_test = course_data.load(name, split="test", sample=sample)
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
        x_test, y_test = x_test[: max(limit // 4, 1000)], y_test[: max(limit // 4, 1000)]
    if test_limit:
        x_test, y_test = x_test[:test_limit], y_test[:test_limit]
    return x_train, y_train, x_test, y_test


def set_field(parser: argparse.ArgumentParser, config: CourseConfig, item: str) -> None:
    """Apply one ``FIELD=VALUE`` override, converted to the field's type."""
    name, _, text = item.partition("=")
    fields = {f.name: f for f in dataclasses.fields(config)}
    if name not in fields or not text:
        parser.error(f"--course-set takes FIELD=VALUE with FIELD one of {', '.join(fields)}")
    current = getattr(config, name)
    if text == "auto":  # jit_compile, precision, data_parallel
        value = "auto"
    elif isinstance(current, bool):
        value = text.lower() in {"1", "true", "yes", "on"}
    elif isinstance(current, (int, float)):
        value = type(current)(text)
    else:
        value = text
    setattr(config, name, value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="MNIST CNN to 99%% (CPU mode)")
    parser.add_argument("--target", type=float, help="test accuracy (default 0.99 / 0.94)")
    parser.add_argument("--max-epochs", type=int, help="epoch cap of the plain recipe")
    parser.add_argument("--course-epochs", type=int, help="one-cycle length of the course recipe")
    parser.add_argument("--limit", type=int, help="use only the first N training images")
    parser.add_argument("--widths", help="CIFAR model widths, e.g. 16,32,64,128 (smoke tests)")
    parser.add_argument("--test-limit", type=int, help="use only the first N test images")
    parser.add_argument("--sample", action="store_true", help="the shipped fast-mode sample")
    parser.add_argument("--time-limit", type=float, help="seconds cap of each recipe run")
    parser.add_argument("--seeds", default="0", help="course recipe seeds, e.g. 0,1,2 (median)")
    parser.add_argument("--recipes", default="plain,course", help="which recipes to run")
    parser.add_argument(
        "--course-set", action="append", default=[], metavar="FIELD=VALUE",
        help="override a CourseConfig field, e.g. weight_decay=0.05 (repeatable)",
    )
    parser.add_argument(
        "--data-parallel", default="auto", choices=["auto", "on", "off"],
        help="course recipe over several devices (default: auto)",
    )
    args = parser.parse_args(argv)
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    if not recipes or set(recipes) - {"plain", "course"}:
        parser.error(f"--recipes takes plain and/or course, got {args.recipes!r}")
    seeds = [int(seed) for seed in args.seeds.split(",")]

    if args.cpu:
        name, build, course = "mnist", (lambda aug: mnist_cnn(augment=aug)), CPU_COURSE
        target, max_epochs = 0.99, 15
    else:
        widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else (64, 128, 256, 512)
        name, course = "cifar10", GPU_COURSE
        build = lambda aug: cifar_resnet(widths=widths, augment=aug)  # noqa: E731
        target, max_epochs = 0.94, 50
    target = args.target or target
    max_epochs = args.max_epochs or max_epochs
    if args.course_epochs:
        course.epochs = args.course_epochs
    course.data_parallel = args.data_parallel
    for item in args.course_set:
        set_field(parser, course, item)

    device = detect_device()
    print(f"keras: {keras.__version__} backend: {keras.backend.backend()} device: {device.name}")
    print(f"task: {name} target: {target} plain_max_epochs: {max_epochs} course: {course}")
    t_load = time.perf_counter()
    data = load(name, args.limit, args.sample, args.test_limit)
    print(f"data: {name} train {data[0].shape} test {data[2].shape} "
          f"load_seconds: {time.perf_counter() - t_load:.1f}")

    plain = None
    if "plain" in recipes:
        keras.backend.clear_session()
        print("run: plain", flush=True)
        plain = run_plain(build, data, target, max_epochs, time_limit=args.time_limit)
        print("\n".join(plain.lines()), flush=True)
    runs = []
    for seed in seeds if "course" in recipes else []:
        keras.backend.clear_session()
        course.seed = seed
        print(f"run: course seed {seed}", flush=True)
        runs.append(run_course(build, data, target, course, time_limit=args.time_limit))
        print("\n".join(runs[-1].lines()), flush=True)
    course_seconds = [r.seconds_to_target for r in runs]
    if len(runs) > 1:
        reached = sum(t is not None for t in course_seconds)
        shown = ", ".join("not reached" if t is None else f"{t:.1f}" for t in course_seconds)
        print(f"course seconds_to_target_per_seed: {shown}")
        print(f"course reached_target: {reached}/{len(runs)}")
    median = None
    if runs and all(t is not None for t in course_seconds):
        median = float(statistics.median(course_seconds))
        print(f"course seconds_to_target_median: {median:.1f}")
    if plain is None or not runs:
        return 0
    if median is None:
        print("ratio plain/course = n/a (course recipe did not reach the target)")
    elif plain.seconds_to_target is None:
        print(f"ratio plain/course = >{plain.seconds / median:.2f} (plain did not reach the target)")
    else:
        print(f"ratio plain/course = {plain.seconds_to_target / median:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

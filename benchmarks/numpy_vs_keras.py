"""NumPy reference implementations (course_lib.nn) against Keras/TensorFlow on this machine.

Measures in one run, as ratios (same process, interleaved repeats, medians), so that a busy
shared machine affects both sides alike:

- one epoch of an MNIST MLP 784-128-10 (batch 128, float32, SGD): a bare 15-line NumPy loop,
  ``course_lib.nn.Sequential.fit`` and Keras ``fit`` (TensorFlow backend);
  bars: fit / Keras <= 0.35 and fit / bare <= 1.2;
- Conv2D forward + backward (3x3, 32 filters, batch 128 of 28x28x1, input and kernel gradients),
  NumPy vs a ``tf.function`` of ``tf.nn.conv2d`` and its gradient, paddings "valid" and "same";
  bar: NumPy / TensorFlow <= 1.3;
- the NumPy MLP's MNIST test accuracy after at most 30 s of training; bar: >= 0.975;
- a training step of the chapter 04 NumPy CNN (``course_lib.cnn.numpy_cnn``: conv 16 - pool -
  conv 32 - pool - dense 10, Adam, batch 128 and the chapter's 64) against Keras ``fit`` on the
  same model from the same weights; bar at batch 128: NumPy / Keras <= 1.5.

Prints ``name: value`` lines; exits with status 1 when a bar is missed.
Run: .venv/bin/python benchmarks/numpy_vs_keras.py [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

PARSER = argparse.ArgumentParser(description="NumPy reference implementations vs Keras.")
PARSER.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds")
PARSER.add_argument("--max-epochs", type=int, default=10, help="MNIST accuracy run")
PARSER.add_argument("--threads", type=int, default=None,
                    help="threads for OpenBLAS and TensorFlow alike (default: their defaults); "
                         "1 keeps a busy shared machine from stalling OpenBLAS's spinning threads")
ARGS = PARSER.parse_args()
if ARGS.threads is not None:  # must precede the NumPy import
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if SHARED_DATA.is_dir():
    os.environ.setdefault("COURSE_DATA_DIR", str(SHARED_DATA))

import numpy as np  # noqa: E402

from course_lib import nn  # noqa: E402

BATCH = 128
TRAIN_BUDGET_S = 30.0
BARS = {  # name: (comparison, limit)
    "mlp_fit_over_keras": ("<=", 0.35),
    "mlp_fit_over_bare": ("<=", 1.2),
    "conv_valid_numpy_over_tf": ("<=", 1.3),
    "conv_same_numpy_over_tf": ("<=", 1.3),
    "mnist_test_accuracy": (">=", 0.975),
    "mnist_train_s": ("<=", TRAIN_BUDGET_S),
    "cnn_step_numpy_over_keras": ("<=", 1.5),
}


def report(name: str, value) -> None:
    print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}", flush=True)


def load_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full MNIST as float32 (n, 784) in [0, 1] and int64 labels."""
    try:
        from course_lib import data

        (x, y), (xt, yt) = (data.load("mnist", s, sample=False) for s in ("train", "test"))
        source = "course_lib.data"
    except (ImportError, AttributeError):
        d = np.load(Path(os.environ["COURSE_DATA_DIR"]) / "mnist.npz")
        x, y, xt, yt = d["x_train"], d["y_train"], d["x_test"], d["y_test"]
        source = "mnist.npz"
    report("mnist_source", f"{source} (train {len(x)}, test {len(xt)})")

    def prep(images):
        return (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32)

    return prep(x), y.astype(np.int64), prep(xt), yt.astype(np.int64)


def init_weights(seed: int) -> list[np.ndarray]:
    """Glorot-uniform kernels and zero biases for 784-128-10, Keras order."""
    rng = np.random.default_rng(seed)
    l1, l2 = np.sqrt(6 / (784 + 128)), np.sqrt(6 / (128 + 10))
    return [rng.uniform(-l1, l1, (784, 128)).astype(np.float32), np.zeros(128, np.float32),
            rng.uniform(-l2, l2, (128, 10)).astype(np.float32), np.zeros(10, np.float32)]


def bare_epoch(x, y, weights, rng) -> None:
    """The bare 15-line NumPy loop: one epoch of SGD (rate 0.1) on softmax cross-entropy."""
    w1, b1, w2, b2 = weights
    lr = np.float32(0.1)
    order = rng.permutation(len(x))
    for i in range(0, len(x), BATCH):
        idx = order[i:i + BATCH]
        xb, yb = x[idx], y[idx]
        h = xb @ w1 + b1
        a = np.maximum(h, 0)
        z = a @ w2 + b2
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(yb)), yb] -= 1
        g = p / len(yb)
        ga = (g @ w2.T) * (h > 0)
        w2 -= lr * (a.T @ g)
        b2 -= lr * g.sum(axis=0)
        w1 -= lr * (xb.T @ ga)
        b1 -= lr * ga.sum(axis=0)


def numpy_mlp(optimizer) -> nn.Sequential:
    model = nn.Sequential([nn.Dense(128, activation="relu"), nn.Dense(10)])
    model.compile(optimizer, nn.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    model.build((784,))
    return model


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def mlp_epochs(x, y, repeats: int) -> None:
    import keras
    import tensorflow as tf

    if ARGS.threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(ARGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(ARGS.threads)

    weights = init_weights(0)
    bare_w = [w.copy() for w in weights]
    ours = numpy_mlp(nn.SGD(0.1))
    ours.set_weights(weights)
    theirs = keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, activation="relu"),
                               keras.layers.Dense(10)])
    theirs.set_weights(weights)
    theirs.compile(keras.optimizers.SGD(0.1),
                   keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                   metrics=["accuracy"])
    theirs.fit(x[:BATCH * 20], y[:BATCH * 20], batch_size=BATCH, epochs=1, verbose=0)  # trace
    rng = np.random.default_rng(0)
    times = {"bare": [], "fit": [], "keras": []}
    for r in range(repeats):
        times["bare"].append(timed(lambda: bare_epoch(x, y, bare_w, rng)))
        times["fit"].append(timed(
            lambda r=r: ours.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, seed=r)))
        times["keras"].append(timed(
            lambda: theirs.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)))
    for k, v in times.items():
        report(f"mlp_epoch_{k}_rounds_s", " ".join(f"{t:.3f}" for t in v))
    med = {k: float(np.median(v)) for k, v in times.items()}
    report("mlp_epoch_bare_s", med["bare"])
    report("mlp_epoch_numpy_fit_s", med["fit"])
    report("mlp_epoch_keras_fit_s", med["keras"])
    # Ratios per round (the rounds interleave the three), then the median.
    fit_over_keras = np.median(np.array(times["fit"]) / np.array(times["keras"]))
    fit_over_bare = np.median(np.array(times["fit"]) / np.array(times["bare"]))
    RESULTS["mlp_fit_over_keras"] = float(fit_over_keras)
    RESULTS["mlp_fit_over_bare"] = float(fit_over_bare)


def conv_times(padding: str, repeats: int) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 28, 28, 1)).astype(np.float32)
    layer = nn.Conv2D(32, 3, padding=padding, seed=0)
    layer.forward(x)
    layer.compute_input_grad = True
    g = rng.standard_normal((128, *layer.output_shape((28, 28, 1)))).astype(np.float32)
    kernel, xt, gt = tf.Variable(layer.params["kernel"]), tf.constant(x), tf.constant(g)

    @tf.function
    def tf_step():
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = tf.nn.conv2d(xt, kernel, 1, padding.upper())
        return tape.gradient(out, [xt, kernel], output_gradients=gt)

    def np_step():
        layer._forward(x, True)
        return layer._backward(g)

    dx_tf, _ = tf_step()
    assert np.abs(np_step() - dx_tf.numpy()).max() < 1e-3  # same computation
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(timed(np_step))
        theirs.append(timed(lambda: [t.numpy() for t in tf_step()]))
    report(f"conv_{padding}_numpy_s", float(np.median(ours)))
    report(f"conv_{padding}_tf_s", float(np.median(theirs)))
    RESULTS[f"conv_{padding}_numpy_over_tf"] = float(np.median(np.array(ours) / np.array(theirs)))


def accuracy_run(x, y, xt, yt, max_epochs: int) -> None:
    """Train the NumPy MLP (SGD with Nesterov momentum, batch 128) epoch by epoch while the
    next epoch still fits in the 30 s budget (judged from the last epoch's time, with a margin
    of 50% for a machine shared with others)."""
    model = numpy_mlp(nn.SGD(0.05, momentum=0.9, nesterov=True))
    model.set_weights(init_weights(1))
    spent, last, epochs = 0.0, 0.0, 0
    while epochs < max_epochs and spent + 1.5 * last <= TRAIN_BUDGET_S:
        last = timed(lambda e=epochs: model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0,
                                                seed=e))
        spent += last
        epochs += 1
    report("mnist_epochs", epochs)
    RESULTS["mnist_train_s"] = spent
    RESULTS["mnist_test_accuracy"] = model.evaluate(xt, yt)["accuracy"]


def cnn_steps(repeats: int, steps: int = 20) -> None:
    """Per-step time of ``steps`` training steps (one ``fit`` epoch, no shuffling) of the chapter
    04 NumPy CNN and of the same Keras model, started from the same weights, rounds interleaved;
    at batch 128 (the bar) and at the chapter's batch 64."""
    import tensorflow as tf

    if ARGS.threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(ARGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(ARGS.threads)
    for batch in (BATCH, 64):
        suffix = "" if batch == BATCH else f"_batch{batch}"
        times = cnn_step_times(batch, steps, repeats)
        for side, values in times.items():
            report(f"cnn_step_{side}{suffix}_ms", 1000 * float(np.median(values)))
        ratio = float(np.median(np.array(times["numpy"]) / np.array(times["keras"])))
        if batch == BATCH:
            RESULTS["cnn_step_numpy_over_keras"] = ratio
        else:
            report(f"cnn_step_numpy_over_keras{suffix}", ratio)


def cnn_step_times(batch: int, steps: int, repeats: int) -> dict[str, list[float]]:
    import keras

    from course_lib import cnn

    rng = np.random.default_rng(0)
    x = rng.random((steps * batch, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, steps * batch)
    ours = cnn.numpy_cnn((16, 32), lr=1e-3, seed=0)
    layers = keras.layers
    theirs = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
        layers.Dense(10)])
    theirs.set_weights(ours.get_weights())
    theirs.compile(keras.optimizers.Adam(1e-3),
                   keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # Same computation: the first step's loss agrees; then Keras traces its step function.
    ours_loss = ours.train_on_batch(x[:batch], y[:batch])[0]
    theirs_loss = float(theirs.train_on_batch(x[:batch], y[:batch]))
    assert abs(ours_loss - theirs_loss) < 1e-4, (ours_loss, theirs_loss)
    theirs.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    times: dict[str, list[float]] = {"numpy": [], "keras": []}
    for _ in range(repeats):
        times["numpy"].append(timed(lambda: ours.fit(x, y, epochs=1, batch_size=batch,
                                                     shuffle=False, verbose=0)) / steps)
        times["keras"].append(timed(lambda: theirs.fit(x, y, epochs=1, batch_size=batch,
                                                       shuffle=False, verbose=0)) / steps)
    return times


RESULTS: dict[str, float] = {}


def main() -> int:
    args = ARGS
    config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    report("numpy_blas", f"{config.get('name')} {config.get('version')}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        report(f"env_{var}", os.environ.get(var, "unset"))
    try:
        from threadpoolctl import threadpool_info

        pools = "; ".join(f"{p['internal_api']} {p['num_threads']} threads"
                          for p in threadpool_info())
    except ImportError:
        pools = "threadpoolctl not installed"
    report("threadpools", pools)
    report("threads_option", ARGS.threads if ARGS.threads is not None else "default")
    report("cpu_count", os.cpu_count())
    load_start = os.getloadavg()[0]
    report("load_average_1min_start", load_start)
    x, y, xt, yt = load_mnist()
    mlp_epochs(x, y, args.repeats)
    for padding in ("valid", "same"):
        conv_times(padding, 10 * args.repeats)
    accuracy_run(x, y, xt, yt, args.max_epochs)
    cnn_steps(args.repeats)
    report("load_average_1min_end", os.getloadavg()[0])
    if ARGS.threads is None and max(os.getloadavg()[0], load_start) > (os.cpu_count() or 1):
        report("note", "busy machine: multi-threaded OpenBLAS stalls when other processes hold "
                       "the cores; compare with --threads 1 (NumPy and TensorFlow alike)")
    missed = 0
    for name, (op, limit) in BARS.items():
        value = RESULTS[name]
        ok = value <= limit if op == "<=" else value >= limit
        missed += not ok
        report(name, value)
        report(f"bar_{name}", f"{'pass' if ok else 'MISSED'} ({value:.4f} {op} {limit})")
    report("bars_missed", missed)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

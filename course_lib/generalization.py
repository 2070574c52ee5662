"""Chapter 06 helpers: overfitting, L2 and weight decay, dropout, augmentation, adversarial
examples and adversarial training (document 002, sections 2.1-2.2, 3.2 and 4.1; document 004,
section 3.3).

NumPy parts (no Keras import): the chapter-02 MLP with optional dropout and L2, random shifts,
the regularisation table, the optimizers' weight-decay comparison, and the attacks (FGSM, PGD,
FGSM with a random start), which work on any ``gradient_fn(x, y) -> (loss, dL/dx)``.

Keras parts (imported on first use, backend-agnostic): ``InputGradient`` (the input gradient
Keras 3 does not offer across backends; TensorFlow and JAX), the MNIST CNN on [0, 1] pixels, and
``adversarial_fit`` (FGSM with a random start, "fast is better than free", Wong et al. 2020).
Images are ``(n, 28, 28)`` float32 in [0, 1] throughout, so an attack budget ``eps`` is in
pixel units (0.1 = a tenth of the black-to-white range).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from course_lib import nn
from course_lib.nn import checks

GradientFn = Callable[[np.ndarray, np.ndarray], "tuple[Any, np.ndarray]"]

# Published anchor: FGSM on a small MNIST CNN (LeNet with dropout), the PyTorch tutorial
# "Adversarial Example Generation" (pytorch.org/tutorials/beginner/fgsm_tutorial.html), test accuracy.
FGSM_TUTORIAL_ANCHOR = {0.0: 0.981, 0.05: 0.9426, 0.1: 0.851, 0.15: 0.6826, 0.2: 0.4301,
                        0.25: 0.2082, 0.3: 0.0869}

DOCUMENT_002_UPDATE = r"\theta \leftarrow \theta - \eta \nabla_{\theta}\mathcal{L}(\theta) - \eta\lambda\theta"


# -- data --------------------------------------------------------------------------------------
def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, 28, 28), 0..255 -> float32 (n, 28, 28) in [0, 1]."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"`images` must be uint8 pixels 0..255, got dtype {images.dtype} "
                         f"with shape {images.shape}")
    return images.astype(np.float32) / 255.0


def split(x: np.ndarray, y: np.ndarray, n_train: int, n_val: int, seed: int = 0):
    """A seeded random split of the *training* data: ``(x_tr, y_tr, x_val, y_val)``.

    x: (n, ...), y: (n,); needs n_train + n_val <= n. The test set is never touched here.
    """
    checks.check_same_length("x", np.asarray(x), "y", np.asarray(y))
    n_train = checks.check_positive_int("n_train", n_train)
    n_val = checks.check_positive_int("n_val", n_val)
    if n_train + n_val > len(x):
        raise ValueError(f"n_train + n_val = {n_train + n_val} exceeds the {len(x)} examples "
                         f"of `x` (shape {np.shape(x)})")
    order = np.random.default_rng(seed).permutation(len(x))
    tr, va = order[:n_train], order[n_train:n_train + n_val]
    return x[tr], y[tr], x[va], y[va]


# -- augmentation (NumPy) ----------------------------------------------------------------------
def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Move each image by (dy, dx), each uniform in [-max_shift, max_shift], filling with 0.

    images: (n, h, w) or (n, h, w, channels); returns the same shape and dtype. The batch order
    (and so the alignment with the labels) is unchanged.
    """
    images = np.asarray(images)
    checks.check_ndim("images", images, (3, 4))
    if isinstance(max_shift, bool) or not isinstance(max_shift, int | np.integer) or max_shift < 0:
        raise ValueError(f"`max_shift` must be an integer >= 0, got {max_shift!r}")
    if max_shift == 0:
        return images.copy()
    n, h, w = images.shape[:3]
    p = int(max_shift)
    pad = [(0, 0), (p, p), (p, p)] + [(0, 0)] * (images.ndim - 3)
    padded = np.pad(images, pad)
    rows = rng.integers(0, 2 * p + 1, n)[:, None] + np.arange(h)  # (n, h)
    cols = rng.integers(0, 2 * p + 1, n)[:, None] + np.arange(w)  # (n, w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def random_flip(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror each image left-right with probability 1/2. images: (n, h, w[, c]) -> same shape.

    Fine for photographs of cats; for digits it changes what the image shows (a mirrored 2, 3,
    4, 5, 7 or 9 is no digit), i.e. it breaks the label.
    """
    images = np.asarray(images)
    checks.check_ndim("images", images, (3, 4))
    flip = rng.random(len(images)) < 0.5
    out = images.copy()
    out[flip] = out[flip][:, :, ::-1]
    return out


# -- the chapter-02 MLP with regularisation knobs ------------------------------------------------
def mlp_classifier(hidden: int = 128, *, dropout: float = 0.0, weight_decay: float = 0.0,
                   lr: float = 0.1, seed: int = 0, dtype=np.float32) -> nn.Sequential:
    """The MLP of chapter 02 (``course_lib.mlp.numpy_mlp``) on images, with optional dropout
    and L2.

    images (batch, 28, 28) -> Flatten -> Dense(hidden, relu) [-> Dropout(dropout)] ->
    Dense(10, softmax); sparse categorical cross-entropy on integer labels; plain SGD with
    learning rate ``lr`` and L2 ``weight_decay`` (the gradient becomes g + lambda * theta:
    document 002 section 4.1's rule, for every parameter).
    """
    layers = [nn.Flatten(dtype=dtype), nn.Dense(hidden, activation="relu", seed=seed, dtype=dtype)]
    if dropout:
        layers.append(nn.Dropout(dropout, seed=seed + 2, dtype=dtype))
    layers.append(nn.Dense(10, activation="softmax", seed=seed + 1, dtype=dtype))
    model = nn.Sequential(layers)
    model.compile(optimizer=nn.SGD(learning_rate=lr, weight_decay=weight_decay),
                  loss=nn.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    model.build((28, 28))
    return model


@dataclass(frozen=True)
class Regulariser:
    """One row of the regularisation table: L2 ``weight_decay`` (lambda), ``dropout`` rate,
    ``shift``: random shifts of up to that many pixels, ``flip``: random left-right mirroring
    (both redrawn every epoch, on the training images only)."""

    name: str
    weight_decay: float = 0.0
    dropout: float = 0.0
    shift: int = 0
    flip: bool = False


def train_mlp(reg: Regulariser, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
              y_val: np.ndarray, *, epochs: int, hidden: int = 128, lr: float = 0.1,
              batch_size: int = 32, seed: int = 0, curves: bool = True) -> dict:
    """Train ``mlp_classifier`` with the regulariser ``reg``; augmentation only on training data.

    x_*: (n, 28, 28) floats in [0, 1]; y_*: (n,) integer labels. Every epoch the training images
    are freshly shifted (when ``reg.shift``), the model takes one epoch of SGD on them, and then
    it is evaluated in inference mode on the *unaugmented* training images and on the validation
    images (``curves=False``: after the last epoch only). Returns {"model", "history" (loss,
    accuracy, val_loss, val_accuracy per evaluated epoch), "train_accuracy", "val_accuracy",
    "gap" (train minus validation accuracy, last epoch)}.
    """
    epochs = checks.check_positive_int("epochs", epochs)
    model = mlp_classifier(hidden, dropout=reg.dropout, weight_decay=reg.weight_decay, lr=lr,
                           seed=seed)
    rng = np.random.default_rng(seed)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [],
                                       "val_accuracy": []}
    for epoch in range(epochs):
        x_epoch = random_shift(x_train, reg.shift, rng) if reg.shift else x_train
        x_epoch = random_flip(x_epoch, rng) if reg.flip else x_epoch
        model.fit(x_epoch, y_train, epochs=1, batch_size=batch_size, verbose=0,
                  seed=int(rng.integers(2**31)))
        if not curves and epoch < epochs - 1:
            continue
        train, val = model.evaluate(x_train, y_train), model.evaluate(x_val, y_val)
        for key, logs in (("", train), ("val_", val)):
            history[key + "loss"].append(logs["loss"])
            history[key + "accuracy"].append(logs["accuracy"])
    train_acc, val_acc = history["accuracy"][-1], history["val_accuracy"][-1]
    return {"model": model, "history": history, "train_accuracy": train_acc,
            "val_accuracy": val_acc, "gap": train_acc - val_acc}


def regularisation_table(regularisers: Sequence[Regulariser], x_train, y_train, x_val, y_val, *,
                         seeds: Sequence[int] = (0, 1, 2), **train_kwargs) -> list[dict]:
    """Train every regulariser with every seed (same data); one row per regulariser.

    Each row: name, val_mean, val_sd, gap_mean, gap_sd, train_mean (sample sd over the seeds)
    and "runs" (the ``train_mlp`` results, models included, evaluated after the last epoch).
    """
    if len(seeds) < 2:
        raise ValueError(f"`seeds` needs at least 2 seeds for a standard deviation, got {seeds!r}")
    rows = []
    for reg in regularisers:
        runs = [train_mlp(reg, x_train, y_train, x_val, y_val, seed=s, curves=False,
                          **train_kwargs)
                for s in seeds]
        val = np.array([r["val_accuracy"] for r in runs])
        gap = np.array([r["gap"] for r in runs])
        rows.append({"name": reg.name, "val_mean": val.mean(), "val_sd": val.std(ddof=1),
                     "gap_mean": gap.mean(), "gap_sd": gap.std(ddof=1),
                     "train_mean": float(np.mean([r["train_accuracy"] for r in runs])),
                     "runs": runs})
    return rows


def learning_curve(x_pool: np.ndarray, y_pool: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
                   sizes: Sequence[int], hidden: Sequence[int] = (128,),
                   seeds: Sequence[int] = (0, 1, 2), min_steps: int = 2000, min_epochs: int = 10,
                   max_epochs: int = 200, batch_size: int = 32) -> list[dict]:
    """Training and validation accuracy of the unregularised MLP against the number of training
    images, for each hidden width: the learning curve.

    For each seed the pool (x_pool (n, 28, 28) in [0, 1], y_pool (n,)) is shuffled once and the
    first ``size`` images train the model, so the subsets are nested (every larger set contains
    the smaller ones) and paired across widths. Every run takes at least ``min_steps`` SGD steps
    and ``min_epochs`` epochs (at most ``max_epochs``), so small sets are not under-trained
    merely for having few batches per epoch. Returns one record per (hidden, size, seed):
    hidden, size, seed, epochs, train_accuracy (on its own training images, in inference mode),
    val_accuracy, gap.
    """
    from course_lib.finetuning import epochs_for

    x_pool, y_pool = np.asarray(x_pool), np.asarray(y_pool)
    sizes = [checks.check_positive_int("size", n) for n in sizes]
    if max(sizes) > len(x_pool):
        raise ValueError(f"the largest size, {max(sizes)}, exceeds the pool of {len(x_pool)} images")
    records = []
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(len(x_pool))
        for width in hidden:
            for n in sizes:
                rows = order[:n]
                epochs = epochs_for(n, batch_size, min_steps, min_epochs, max_epochs)
                run = train_mlp(Regulariser("none"), x_pool[rows], y_pool[rows], x_val, y_val,
                                epochs=epochs, hidden=width, batch_size=batch_size, seed=seed,
                                curves=False)
                records.append({"hidden": width, "size": n, "seed": seed, "epochs": epochs,
                                "train_accuracy": run["train_accuracy"],
                                "val_accuracy": run["val_accuracy"], "gap": run["gap"]})
    return records


def format_table(rows: list[dict]) -> str:
    """The regularisation table as aligned text (accuracies in percent, mean ± sd)."""
    n = len(rows[0]["runs"]) if rows else 0
    lines = [f"{'regulariser':<14}{'train acc':>10}{f'val acc (mean ± sd, {n} seeds)':>32}"
             f"{'train - val gap':>22}"]
    for r in rows:
        lines.append(f"{r['name']:<14}{100 * r['train_mean']:>9.1f}%"
                     f"{100 * r['val_mean']:>24.1f}% ± {100 * r['val_sd']:.1f}"
                     f"{100 * r['gap_mean']:>15.1f} ± {100 * r['gap_sd']:.1f}")
    return "\n".join(lines)


def augmentation_leak(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                      copies: int = 8, max_shift: int = 1, val_fraction: float = 0.25,
                      epochs: int = 20, hidden: int = 128,
                      seeds: Sequence[int] = (0, 1, 2)) -> dict[str, dict[str, np.ndarray]]:
    """Augment-then-split against split-then-augment, with the same images and budget.

    "augment, then split": ``copies`` shifted versions of every image in (x, y), shuffled, then
    split into training and validation, so shifted twins of one digit land on both sides.
    "split, then augment": the originals are split first; only the training part gets its
    ``copies`` shifted versions; validation keeps untouched originals. Both train the same MLP
    for ``epochs`` on the same number of images, once per seed (split, shifts, initial weights).
    x: (n, 28, 28) in [0, 1]; y: (n,); x_test, y_test: a held-out set neither protocol sees.
    Returns {protocol: {"val_accuracy": (seeds,), "test_accuracy": (seeds,)}}.
    """
    copies = checks.check_positive_int("copies", copies)
    n_val = int(round(val_fraction * len(x)))
    results = {name: {"val_accuracy": [], "test_accuracy": []}
               for name in ("augment, then split", "split, then augment")}
    for seed in seeds:
        rng = np.random.default_rng(seed)

        def shifted_copies(images, labels, rng=rng):
            return (np.concatenate([random_shift(images, max_shift, rng) for _ in range(copies)]),
                    np.tile(labels, copies))

        x_aug, y_aug = shifted_copies(x, y)
        wrong = split(x_aug, y_aug, len(x_aug) - n_val * copies, n_val * copies, seed=seed)
        x_tr, y_tr, x_va, y_va = split(x, y, len(x) - n_val, n_val, seed=seed)
        right = (*shifted_copies(x_tr, y_tr), x_va, y_va)
        for name, (a, b, c, d) in (("augment, then split", wrong), ("split, then augment", right)):
            model = mlp_classifier(hidden, seed=seed)
            model.fit(a, b, epochs=epochs, batch_size=32, verbose=0, seed=seed)
            results[name]["val_accuracy"].append(model.evaluate(c, d)["accuracy"])
            results[name]["test_accuracy"].append(model.evaluate(x_test, y_test)["accuracy"])
    return {name: {k: np.array(v) for k, v in r.items()} for name, r in results.items()}


# -- L2 and weight decay -----------------------------------------------------------------------
def document_update(theta: np.ndarray, grad: np.ndarray, lr: float, lam: float) -> np.ndarray:
    """Document 002, section 4.1: theta - lr * grad - lr * lam * theta (a new array)."""
    return theta - lr * grad - lr * lam * theta


def least_squares(seed: int = 0, n: int = 32, d: int = 4):
    """A small least-squares problem: ``(grad_fn, theta0)`` with grad_fn(theta) = dL/dtheta of
    L = mean((A theta - b)^2) / 2, A: (n, d), theta: (d,) float32."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d)).astype(np.float32)
    b = (a @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)).astype(np.float32)

    def grad_fn(theta: np.ndarray) -> np.ndarray:
        return (a.T @ (a @ theta - b) / n).astype(np.float32)

    return grad_fn, rng.standard_normal(d).astype(np.float32)


def run_optimizer(optimizer, grad_fn: Callable[[np.ndarray], np.ndarray], theta0: np.ndarray,
                  steps: int) -> np.ndarray:
    """Parameters after each of ``steps`` steps: (steps + 1, d), row 0 = theta0.

    ``optimizer``: a ``course_lib.nn`` optimizer or a ``keras.optimizers`` one (any backend);
    ``grad_fn(theta) -> dL/dtheta`` in NumPy.
    """
    path = [np.array(theta0, dtype=np.float32)]
    if isinstance(optimizer, nn.Optimizer):
        theta = path[0].copy()
        for _ in range(steps):
            optimizer.apply_gradients([(grad_fn(theta), theta)])
            path.append(theta.copy())
        return np.array(path)
    import keras

    variable = keras.Variable(path[0])
    for _ in range(steps):
        grad = keras.ops.convert_to_tensor(grad_fn(keras.ops.convert_to_numpy(variable)))
        optimizer.apply_gradients([(grad, variable)])
        path.append(keras.ops.convert_to_numpy(variable).copy())
    return np.array(path)


# -- attacks (NumPy, any model with an input gradient) ----------------------------------------
def _check_attack_inputs(x, eps: float, clip: tuple[float, float]) -> np.ndarray:
    x = checks.as_float_array("x", x)
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating) or eps < 0:
        raise ValueError(f"`eps` must be a number >= 0, got {eps!r}")
    lo, hi = clip
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"`x` (shape {x.shape}) must lie in the pixel range [{lo}, {hi}] "
                         f"(got min {x.min():g}, max {x.max():g}); scale 0..255 images by 1/255")
    return x


def _gradient(gradient_fn: GradientFn, x: np.ndarray, y) -> np.ndarray:
    grad = np.asarray(gradient_fn(x, y)[1])
    if grad.shape != x.shape:
        raise ValueError(f"gradient_fn returned a gradient of shape {grad.shape} for `x` of "
                         f"shape {x.shape}: it must return (loss, dL/dx) with x's shape")
    return grad


def fgsm(x: np.ndarray, y, gradient_fn: GradientFn, eps: float, *,
         clip: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Fast gradient sign method: clip(x + eps * sign(dL/dx), *clip) (Goodfellow et al. 2015).

    x: (n, ...) in the ``clip`` range; y: labels in the format ``gradient_fn`` takes;
    gradient_fn(x, y) -> (loss, dL/dx). Returns x_adv with x's shape and dtype.
    """
    x = _check_attack_inputs(x, eps, clip)
    x_adv = x + eps * np.sign(_gradient(gradient_fn, x, y))
    return np.clip(x_adv, *clip).astype(x.dtype)


def project(x_adv: np.ndarray, x: np.ndarray, eps: float,
            clip: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """The nearest point to ``x_adv`` in the eps-ball around ``x`` (L-infinity) and the pixel
    range: clip to [x - eps, x + eps], then to ``clip`` (for x inside the range this is exact:
    both sets are boxes). x_adv, x: same shape."""
    return np.clip(np.clip(x_adv, x - eps, x + eps), *clip)


def pgd(x: np.ndarray, y, gradient_fn: GradientFn, eps: float, *, steps: int = 20,
        step_size: float | None = None, random_start: bool = True, seed: int | None = None,
        clip: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Projected gradient descent on the loss (Madry et al. 2018), L-infinity ball.

    Start at x (or, with ``random_start``, at x + U(-eps, eps) projected); then ``steps`` times
    x_adv <- project(x_adv + step_size * sign(dL/dx_adv)). step_size default: 2.5 eps / steps.
    x: (n, ...) in the ``clip`` range. Returns x_adv with x's shape and dtype.
    """
    x = _check_attack_inputs(x, eps, clip)
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
        raise ValueError(f"`steps` must be an integer >= 0, got {steps!r}")
    step_size = 2.5 * eps / max(steps, 1) if step_size is None else float(step_size)
    if random_start:
        rng = np.random.default_rng(seed)
        x_adv = project(x + rng.uniform(-eps, eps, x.shape).astype(x.dtype), x, eps, clip)
    else:
        x_adv = x.copy()
    for _ in range(steps):
        x_adv = project(x_adv + step_size * np.sign(_gradient(gradient_fn, x_adv, y)), x, eps,
                        clip)
    return x_adv.astype(x.dtype)


def fgsm_random_start(x: np.ndarray, y, gradient_fn: GradientFn, eps: float, *,
                      alpha: float | None = None, rng: np.random.Generator,
                      clip: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """The training attack of "fast is better than free" (Wong, Rice and Kolter 2020).

    delta ~ U(-eps, eps); one signed-gradient step of size alpha (default 1.25 eps) from
    x + delta; then projected to the eps-ball and the pixel range. One gradient per batch, like
    FGSM, but the random start avoids FGSM training's "catastrophic overfitting".
    x: (n, ...); returns x_adv with x's shape and dtype.
    """
    x = _check_attack_inputs(x, eps, clip)
    alpha = 1.25 * eps if alpha is None else float(alpha)
    start = project(x + rng.uniform(-eps, eps, x.shape).astype(x.dtype), x, eps, clip)
    x_adv = start + alpha * np.sign(_gradient(gradient_fn, start, y))
    return project(x_adv, x, eps, clip).astype(x.dtype)


# -- Keras: input gradients on TensorFlow and JAX ------------------------------------------------
class InputGradient:
    """Per-example losses and their input gradients for a Keras classifier, on TensorFlow and
    JAX (Keras 3 has no backend-independent input gradient).

        gradient = InputGradient(model)           # model: (n, *input_shape) -> (n, classes)
        losses, grads = gradient(x, y)            # x float32, y (n,) integer labels

    Returns NumPy arrays: losses (n,), the sparse categorical cross-entropy of each example, and
    grads with x's shape, grads[i] = d losses[i] / d x[i] (the gradient of the sum). The model
    runs in inference mode (dropout off). Compiled once (``tf.function`` / ``jax.jit``) and
    evaluated in batches of ``batch_size``; the current weights are used at every call.
    """

    def __init__(self, model, *, from_logits: bool = True, batch_size: int = 500):
        import keras

        self.backend = keras.backend.backend()
        if self.backend not in ("tensorflow", "jax"):
            raise ValueError(f"InputGradient supports the tensorflow and jax backends, "
                             f"got KERAS_BACKEND={self.backend!r}")
        if not isinstance(model, keras.Model):
            raise ValueError(f"`model` must be a keras.Model, got {type(model).__name__}")
        self.model = model
        self.from_logits = from_logits
        self.batch_size = checks.check_positive_int("batch_size", batch_size)
        self.input_shape = tuple(model.input_shape[1:])
        self.classes = int(model.output_shape[-1])
        self._step = self._tensorflow_step() if self.backend == "tensorflow" else self._jax_step()

    def _losses(self, y, outputs):
        import keras

        return keras.losses.sparse_categorical_crossentropy(y, outputs,
                                                            from_logits=self.from_logits)

    def _tensorflow_step(self):  # TensorFlow-only branch
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def step(x, y):
            with tf.GradientTape() as tape:
                tape.watch(x)
                losses = self._losses(y, self.model(x, training=False))
            return losses, tape.gradient(losses, x)

        return lambda x, y: step(tf.constant(x), tf.constant(y))

    def _jax_step(self):  # JAX-only branch
        import jax
        from keras import ops

        def total(x, trainable, non_trainable, y):
            outputs, _ = self.model.stateless_call(trainable, non_trainable, x, training=False)
            losses = self._losses(y, outputs)
            return ops.sum(losses), losses

        grad = jax.jit(jax.value_and_grad(total, has_aux=True))

        def step(x, y):
            trainable = [v.value for v in self.model.trainable_variables]
            non_trainable = [v.value for v in self.model.non_trainable_variables]
            (_, losses), g = grad(x, trainable, non_trainable, y)
            return losses, g

        return step

    def __call__(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        x = checks.as_float_array("x", x)
        if x.ndim < 1 or tuple(x.shape[1:]) != self.input_shape:
            wanted = ", ".join(str(d) for d in self.input_shape)
            raise ValueError(f"`x` must have shape (n, {wanted}) for this model, got {x.shape}")
        y = checks.as_index_array("y", y, upper=self.classes, ndim=1)
        checks.check_same_length("x", x, "y", y)
        x = x.astype(np.float32, copy=False)
        y = y.astype(np.int32)
        losses, grads = [], []
        for i in range(0, len(x), self.batch_size):
            loss, grad = self._step(x[i:i + self.batch_size], y[i:i + self.batch_size])
            losses.append(np.asarray(loss))
            grads.append(np.asarray(grad))
        if not losses:
            return np.zeros(0, np.float32), np.zeros_like(x)
        return np.concatenate(losses), np.concatenate(grads)


def attack_functions(model, *, from_logits: bool = True) -> tuple[GradientFn, Callable]:
    """``(gradient_fn, predict_labels)`` for a ``course_lib.nn.Sequential`` or a Keras model.

    gradient_fn(x, y) -> (loss, dL/dx); predict_labels(x) -> (n,) class ids (inference mode).
    For Keras the ``InputGradient`` is made once per model and reused (compiled once).
    """
    if isinstance(model, nn.Sequential):
        return model.input_gradient, lambda x: model.predict(x).argmax(axis=-1)
    cache = model.__dict__.setdefault("_course_input_gradients", {})  # past Keras's tracking
    if from_logits not in cache:
        cache[from_logits] = InputGradient(model, from_logits=from_logits)

    def predict_labels(x):
        return np.asarray(model.predict(x, batch_size=500, verbose=0)).argmax(axis=-1)

    return cache[from_logits], predict_labels


def accuracy_under_attack(model, x: np.ndarray, y: np.ndarray, eps: float, *,
                          attack: str = "pgd", steps: int = 20, step_size: float | None = None,
                          seed: int = 0, from_logits: bool = True) -> float:
    """Accuracy of ``model`` on adversarial versions of (x, y): attack "fgsm" or "pgd" (random
    start). eps = 0: clean accuracy. x: (n, 28, 28) in [0, 1]; y: (n,) integer labels."""
    checks.check_choice("attack", attack, ("fgsm", "pgd"))
    gradient_fn, predict_labels = attack_functions(model, from_logits=from_logits)
    y = np.asarray(y)
    if eps == 0:
        x_adv = x
    elif attack == "fgsm":
        x_adv = fgsm(x, y, gradient_fn, eps)
    else:
        x_adv = pgd(x, y, gradient_fn, eps, steps=steps, step_size=step_size, seed=seed)
    return float(np.mean(predict_labels(x_adv) == y))


def fgsm_curve(model, x: np.ndarray, y: np.ndarray, eps_values: Sequence[float], *,
               from_logits: bool = True) -> np.ndarray:
    """FGSM accuracy at each eps (the first is usually 0: clean accuracy). Returns (len(eps),)."""
    return np.array([accuracy_under_attack(model, x, y, e, attack="fgsm", from_logits=from_logits)
                     for e in eps_values])


# -- Keras: the CNN and adversarial training -------------------------------------------------------
def mnist_cnn():
    """The MNIST CNN of chapter 04 (``course_lib.cnn.keras_mnist_cnn``: conv 32, pool, conv 64,
    pool, dropout 0.5, dense; 34,826 parameters), on images without a channel axis.

    (batch, 28, 28) float pixels in [0, 1] -> logits (batch, 10), uncompiled.
    """
    import keras
    from keras import layers

    from course_lib.cnn import keras_mnist_cnn

    inputs = keras.Input((28, 28), name="pixels_0_1")
    outputs = keras_mnist_cnn()(layers.Reshape((28, 28, 1))(inputs))
    return keras.Model(inputs, outputs, name="mnist_cnn_0_1")


def adversarial_fit(model, x: np.ndarray, y: np.ndarray, *, eps: float, epochs: int,
                    alpha: float | None = None, batch_size: int = 128,
                    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
                    val_steps: int = 10, seed: int = 0, verbose: bool = True,
                    progress: bool = False) -> dict[str, list[float]]:
    """Adversarial training with FGSM and a random start (Wong et al. 2020), any backend.

    model: a compiled Keras classifier on [0, 1] images returning logits. x: (n, 28, 28) in
    [0, 1]; y: (n,) labels. Every step trains (``train_on_batch``) on
    ``fgsm_random_start(batch, eps, alpha)`` made with the current weights, so each step costs
    about two normal ones. After every epoch, on ``validation_data``: clean accuracy, FGSM and
    PGD-``val_steps`` (random start) accuracy at ``eps``; catastrophic overfitting shows as FGSM
    accuracy high while PGD accuracy collapses. verbose: one line per epoch; progress: a tqdm bar
    (stdout). Returns the history: loss, accuracy (on the adversarial batches), val_accuracy,
    val_fgsm_accuracy, val_pgd_accuracy, seconds (training time of each epoch).
    """
    epochs = checks.check_positive_int("epochs", epochs)
    batch_size = checks.check_positive_int("batch_size", batch_size)
    x = _check_attack_inputs(x, eps, (0.0, 1.0))
    y = checks.as_index_array("y", y, ndim=1)
    checks.check_same_length("x", x, "y", y)
    gradient_fn, _ = attack_functions(model)
    rng = np.random.default_rng(seed)
    keys = ["loss", "accuracy", "val_accuracy", "val_fgsm_accuracy", "val_pgd_accuracy",
            "seconds"]
    history: dict[str, list[float]] = {k: [] for k in keys}
    steps = -(-len(x) // batch_size)
    for epoch in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(x))
        bar = None
        if progress:
            from course_lib.progress import progress_bar

            bar = progress_bar(total=steps, desc=f"epoch {epoch + 1}/{epochs}", leave=False)
        sums = np.zeros(2)
        for b in range(steps):
            idx = order[b * batch_size:(b + 1) * batch_size]
            x_adv = fgsm_random_start(x[idx], y[idx], gradient_fn, eps, alpha=alpha, rng=rng)
            logs = model.train_on_batch(x_adv, y[idx], return_dict=True)
            sums += np.array([float(logs["loss"]), float(logs.get("accuracy", np.nan))]) * len(idx)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        history["seconds"].append(time.perf_counter() - start)
        history["loss"].append(sums[0] / len(x))
        history["accuracy"].append(sums[1] / len(x))
        line = (f"epoch {epoch + 1}/{epochs}: {history['seconds'][-1]:.1f}s, loss "
                f"{history['loss'][-1]:.3f}")
        if validation_data is not None:
            x_val, y_val = validation_data
            results = {
                "val_accuracy": accuracy_under_attack(model, x_val, y_val, 0),
                "val_fgsm_accuracy": accuracy_under_attack(model, x_val, y_val, eps,
                                                           attack="fgsm"),
                "val_pgd_accuracy": accuracy_under_attack(model, x_val, y_val, eps,
                                                          steps=val_steps, seed=seed + epoch),
            }
            for key, value in results.items():
                history[key].append(value)
            line += (f" | validation: clean {results['val_accuracy']:.3f}, FGSM "
                     f"{results['val_fgsm_accuracy']:.3f}, PGD-{val_steps} "
                     f"{results['val_pgd_accuracy']:.3f} (eps {eps:g})")
        if verbose:
            print(line)
    return history

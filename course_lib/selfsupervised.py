"""Chapter 08 helpers: self-supervised pre-training on unlabelled images.

The pretext task (Gidaris et al., "Unsupervised representation learning by predicting image
rotations", ICLR 2018): show every unlabelled image at 0, 90, 180 and 270 degrees and train the
network to say which; the label is made from the image itself, so no person labels anything.

* ``rotation_batch``: one batch of images in, all four rotations of each out, with the rotation
  labels aligned.
* ``RotationBatches``: the on-the-fly pipeline step for ``fit`` (unlabelled images in; each step
  augments a batch, rotates it four ways and yields ``(4 * batch_size)`` images and labels).
* ``fit_linear_probe`` / ``LinearProbe``: softmax regression on frozen features, in NumPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from course_lib import cifar, finetuning
from course_lib.nn import checks

ROTATIONS = 4  # 0, 90, 180, 270 degrees counter-clockwise (np.rot90's direction): labels 0..3
ROTATION_NAMES = ("0°", "90°", "180°", "270°")


def _check_images(name: str, images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(
            f"`{name}` must be square images (n, H, W, C) with H == W (a 90-degree rotation of "
            f"a non-square image has another shape), got shape {images.shape}"
        )
    if images.dtype.kind not in "uif":
        raise ValueError(f"`{name}` must be a numeric array, got dtype {images.dtype}")
    if images.dtype.kind == "f":
        checks.as_float_array(name, images)  # NaN/inf refused
    return images


def rotation_batch(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every image at each of the four rotations, exactly once, with its rotation label.

    images: (n, H, W, C) with H == W, any numeric dtype. Returns (rotated, labels): rotated
    (4n, H, W, C) with the dtype of ``images``, labels (4n,) int64, rotation-major:
    ``rotated[k * n + i]`` is image i rotated by k * 90 degrees counter-clockwise, labelled k.
    """
    images = _check_images("images", images)
    rotated = np.concatenate([np.rot90(images, k, axes=(1, 2)) for k in range(ROTATIONS)])
    return rotated, np.repeat(np.arange(ROTATIONS, dtype=np.int64), len(images))


def crop_flip(images: np.ndarray, pad: int, rng: np.random.Generator,
              flip: bool = True) -> np.ndarray:
    """Random crop after zero padding, and a random horizontal flip, per image (NumPy).

    images: (n, H, W, C), any dtype; each image is shifted by up to ``pad`` pixels each way (the
    uncovered border is zero) and mirrored left-right with probability 1/2 when ``flip``.
    Returns a new (n, H, W, C) array of the same dtype.
    """
    n, height, width = images.shape[:3]
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0))) if pad else images
    dy = rng.integers(0, 2 * pad + 1, size=(n, 1))
    dx = rng.integers(0, 2 * pad + 1, size=(n, 1))
    rows = dy + np.arange(height)                                  # (n, H)
    cols = dx + np.arange(width)                                   # (n, W)
    if flip:
        mirrored = rng.random(n) < 0.5
        cols[mirrored] = cols[mirrored, ::-1]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


class RotationBatches(keras.utils.PyDataset):
    """The rotation pretext task as an input pipeline for ``fit``: unlabelled images in, rotation
    batches out, made on the fly.

    Each step takes ``batch_size`` images (a new random order each epoch), augments them
    (random crop after ``crop_pad`` pixels of zero padding, random horizontal flip) — *before*
    rotating them, see chapter 08 — and yields ``(x, y)`` from :func:`rotation_batch`:
    x (4 * batch_size, H, W, C) with the images' dtype, y (4 * batch_size,) int64 rotation labels,
    rotation-major. There are no class labels anywhere: the pipeline never receives them.
    The work is plain NumPy on the host, a few milliseconds per step (copying and indexing);
    ``workers`` > 1 prepares batches in parallel threads.

    Args:
        images: (n, H, W, C) unlabelled images (uint8 stays uint8).
        batch_size: source images per step (the step sees 4x as many).
        crop_pad: pixels of padding for the random crop (0: no crop); flip: random flips.
        shuffle: new random order every epoch; seed: seed of the order and the augmentation.
        drop_remainder: drop the last partial batch (one step shape, one compilation).
    """

    def __init__(self, images, batch_size: int, crop_pad: int = 0, flip: bool = False,
                 shuffle: bool = True, seed: int = 0, drop_remainder: bool = True,
                 workers: int = 1):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.images = _check_images("images", images)
        self.batch_size = checks.check_positive_int("batch_size", batch_size)
        if crop_pad < 0:
            raise ValueError(f"`crop_pad` must be >= 0, got {crop_pad}")
        if drop_remainder and len(self.images) < batch_size:
            raise ValueError(f"drop_remainder needs at least batch_size={batch_size} images, "
                             f"got {len(self.images)}")
        self.crop_pad, self.flip = int(crop_pad), bool(flip)
        self.shuffle, self.drop_remainder = shuffle, drop_remainder
        self.seed, self.epoch = seed, 0
        self.order = np.arange(len(self.images))
        self.on_epoch_end()

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_remainder else math.ceil(n / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        batch = self.images[rows]
        if self.crop_pad or self.flip:   # a generator per (epoch, step): the same with threads
            rng = np.random.default_rng((self.seed, self.epoch, index))
            batch = crop_flip(batch, self.crop_pad, rng, self.flip)
        return rotation_batch(batch)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.images))
        self.epoch += 1


# ---------------------------------------------------------------- the linear probe (NumPy)


def probe_loss_and_grads(W: np.ndarray, b: np.ndarray, features: np.ndarray,
                         labels: np.ndarray, l2: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Softmax regression: L = -(1/n) sum_i log softmax(F W + b)[i, y_i] + (l2/2) ||W||^2.

    W: (d, k), b: (k,), features F: (n, d), labels: (n,) ints in 0..k-1. Returns (loss, dW, db)
    with dL/dZ = (P - onehot(y)) / n, dW = F^T dL/dZ + l2 W, db = sum_i dL/dZ[i] (stable
    log-sum-exp; b is not penalised).
    """
    n = len(features)
    z = features @ W + b
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_p[rows, labels].mean() + 0.5 * l2 * float(np.sum(W * W))
    grad_z = np.exp(log_p)
    grad_z[rows, labels] -= 1.0
    grad_z /= n
    return float(loss), features.T @ grad_z + l2 * W, grad_z.sum(axis=0)


def _largest_eigenvalue(x: np.ndarray, iterations: int = 50) -> float:
    """lambda_max(x^T x / n) by power iteration (x: (n, d)), times 1.05 so that it is an upper
    bound in practice (power iteration approaches it from below)."""
    v = np.ones(x.shape[1], dtype=np.float64) / np.sqrt(x.shape[1])
    value = 0.0
    for _ in range(iterations):
        w = x.T @ (x @ v) / len(x)
        value = float(np.linalg.norm(w))
        if value == 0.0:
            return 0.0
        v = w / value
    return 1.05 * value


@dataclass
class LinearProbe:
    """A trained linear probe: standardisation (mean, std of the training features) then
    softmax regression (W, b). ``scores(features)``: (n, d) -> (n, k) logits."""

    W: np.ndarray
    b: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    l2: float

    def scores(self, features: np.ndarray) -> np.ndarray:
        features = checks.as_float_array("features", np.asarray(features, dtype=np.float64), ndim=2)
        if features.shape[1] != len(self.mean):
            raise ValueError(f"`features` must have {len(self.mean)} columns (the probe's "
                             f"input size), got shape {features.shape}")
        return ((features - self.mean) / self.std) @ self.W + self.b

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class ids (n,)."""
        return self.scores(features).argmax(axis=1)

    __call__ = scores


def fit_linear_probe(features: np.ndarray, labels: np.ndarray, num_classes: int | None = None,
                     l2: float = 1e-2, steps: int = 200) -> LinearProbe:
    """Softmax regression on frozen features, trained to (near) its optimum.

    features: (n, d) floats; labels: (n,) ints. The features are standardised with their own
    mean and standard deviation (then computed in float32); the objective (:func:`probe_loss_and_grads`, convex) is minimised
    by Nesterov's accelerated gradient with step 1/L, where L = lambda_max(F^T F / n) / 2 + l2
    bounds its curvature (softmax's Jacobian has eigenvalues at most 1/2), so it needs no
    learning rate. Deterministic (starts from zeros).
    """
    features = checks.as_float_array("features", features, ndim=2)
    labels = checks.as_index_array("labels", labels, ndim=1, upper=num_classes)
    checks.check_same_length("features", features, "labels", labels)
    if l2 < 0:
        raise ValueError(f"`l2` must be >= 0, got {l2}")
    k = int(num_classes if num_classes is not None else labels.max() + 1)
    mean = features.mean(axis=0, dtype=np.float64)
    std = features.std(axis=0, dtype=np.float64) + 1e-6
    f = ((features - mean) / std).astype(np.float32)   # float32: twice as fast, precise enough
    with_bias = np.hstack([f, np.ones((len(f), 1))])
    curvature = 0.5 * _largest_eigenvalue(with_bias) + l2
    step = 1.0 / curvature
    W, b = np.zeros((f.shape[1], k), np.float32), np.zeros(k, np.float32)
    W_prev, b_prev = W, b
    for t in range(1, steps + 1):
        momentum = (t - 1) / (t + 2)
        W_look = W + momentum * (W - W_prev)
        b_look = b + momentum * (b - b_prev)
        _, dW, db = probe_loss_and_grads(W_look, b_look, f, labels, l2)
        W_prev, b_prev = W, b
        W, b = W_look - step * dW, b_look - step * db
    return LinearProbe(W, b, mean, std, l2)


def _stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold id (n,) for each example, classes spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        where = rng.permutation(np.flatnonzero(labels == label))
        fold[where] = np.arange(len(where)) % folds
    return fold


def choose_probe_l2(features: np.ndarray, labels: np.ndarray,
                    grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0), folds: int = 3,
                    seed: int = 0, steps: int = 200) -> tuple[float, dict[float, float]]:
    """The L2 strength of :func:`fit_linear_probe` chosen by stratified k-fold cross-validation on
    the probe's own training data (features: (n, d), labels: (n,)); never on test data.
    Returns (best l2, {l2: mean validation accuracy}); ties go to the stronger penalty."""
    features = np.asarray(features, dtype=np.float64)
    labels = checks.as_index_array("labels", labels, ndim=1)
    k = int(labels.max()) + 1
    fold = _stratified_folds(labels, folds, seed)
    scores = {}
    for l2 in grid:
        correct = 0
        for f in range(folds):
            train, held = fold != f, fold == f
            probe = fit_linear_probe(features[train], labels[train], k, l2=l2, steps=steps)
            correct += int(np.sum(probe.predict(features[held]) == labels[held]))
        scores[l2] = correct / len(labels)
    best = max(sorted(grid, reverse=True), key=lambda l2: scores[l2])
    return best, scores


# ---------------------------------------------------------------- data: what each stage may see

SPLIT_SEED = 0
HELD_OUT = {"fast": 400, "full": 5000}  # training images kept out of pre-training


@dataclass
class CifarSplits:
    """CIFAR-10 as chapter 08 uses it (x uint8 (n, 32, 32, 3), y int64 (n,)).

    pool: the training images the networks pre-train on, *without* their labels; a few labels
        per class are drawn from it for the downstream task (``experiments.sample_per_class``).
    val: training images held out of pre-training (seeded): the pretext accuracy on unseen
        images, and every choice of a hyperparameter or a block.
    test: the official test images, used once, for the reported accuracies.
    """

    x_pool: np.ndarray
    y_pool: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def cifar_splits(fast: bool | None = None) -> CifarSplits:
    """The pool / val / test split (the shipped sample in fast mode, else the full data)."""
    from course_lib import data
    from course_lib.environment import fast_mode

    fast = fast_mode() if fast is None else fast
    x, y = data.load("cifar10", "train", sample=fast)
    x_test, y_test = data.load("cifar10", "test", sample=fast)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    held = HELD_OUT["fast" if fast else "full"]
    val, pool = np.sort(order[:held]), np.sort(order[held:])
    return CifarSplits(x[pool], y[pool], x[val], y[val], x_test, y_test)


def unlabelled_images(fast: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(pool images, held-out images) for pre-training: the labels are dropped here and never
    reach the pretext task (and the test images are not touched)."""
    splits = cifar_splits(fast)
    return splits.x_pool, splits.x_val


# ---------------------------------------------------------------- the rotation pretext model


def pretext_recipe(fast: bool, task: str, **settings) -> dict:
    """A pre-training recipe of this chapter (a ``pretrained`` cache key): what every pretext
    network shares (the held-out split, the backbone, AdamW with a one-cycle schedule, the
    seed), then ``task`` (what it learns from, said in words) and its own ``settings``."""
    return {"task": task, "fast": bool(fast), "held_out": HELD_OUT["fast" if fast else "full"],
            "split_seed": SPLIT_SEED, "backbone": dict(cifar.BACKBONE),
            "optimizer": "AdamW + one-cycle", "learning_rate": 3e-3, "weight_decay": 5e-4,
            "seed": 0, **settings}


def rotation_recipe(fast: bool) -> dict:
    """The recipe of the rotation-pretrained network (``pretrained`` cache key)."""
    return pretext_recipe(
        fast, "rotation prediction (0/90/180/270 degrees), CIFAR-10 training images, "
              "labels discarded, test images unused",
        augment="random crop (pad 4) and horizontal flip, before the rotation",
        batch_size=64 if fast else 128, epochs=2 if fast else 5)


def _backbone(recipe: dict, name: str = "cifar_backbone") -> keras.Model:
    return cifar.cifar_backbone(**recipe["backbone"], name=name)


def rotation_model(recipe: dict) -> keras.Model:
    """The pretext network: the backbone (named "cifar_backbone"; features (batch, widths[-1]),
    (batch, 128) with the course's backbone) and a 4-way rotation head:
    pixels (batch, 32, 32, 3) -> rotation logits (batch, 4)."""
    from keras import layers

    keras.utils.set_random_seed(recipe["seed"])
    inputs = keras.Input((32, 32, 3), name="pixels")
    features = _backbone(recipe)(inputs)
    logits = layers.Dense(ROTATIONS, name="rotation", dtype="float32")(features)
    return keras.Model(inputs, logits, name="rotation_pretext")


def pretext_accuracy(model: keras.Model, images: np.ndarray, batch_size: int = 500) -> dict:
    """Rotation accuracy of ``model`` on every image of ``images`` at each rotation.

    images: (n, 32, 32, 3). Returns {"accuracy": float, "per_rotation": [4 floats],
    "confusion": (4, 4) list (rows: true rotation, columns: predicted)}.
    """
    rotated, labels = rotation_batch(images)
    predicted = model.predict(rotated, batch_size=batch_size, verbose=0).argmax(axis=1)
    confusion = np.zeros((ROTATIONS, ROTATIONS), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    return {"accuracy": float(np.mean(predicted == labels)),
            "per_rotation": (confusion.diagonal() / confusion.sum(axis=1)).tolist(),
            "confusion": confusion.tolist()}


def _one_cycle_adamw(recipe: dict, total_steps: int):
    from course_lib.training import OneCycle

    return keras.optimizers.AdamW(OneCycle(recipe["learning_rate"], total_steps),
                                  weight_decay=recipe["weight_decay"])


def train_rotation(model: keras.Model, recipe: dict, verbose: bool = True) -> dict:
    """Pre-train ``model`` (:func:`rotation_model`) on the unlabelled pool with
    :class:`RotationBatches`, then measure its pretext accuracy on the held-out images."""
    from course_lib.training import TrainingMonitor

    x_pool, x_held = unlabelled_images(recipe["fast"])
    batches = RotationBatches(x_pool, recipe["batch_size"], crop_pad=4, flip=True,
                              seed=recipe["seed"])
    model.compile(optimizer=_one_cycle_adamw(recipe, len(batches) * recipe["epochs"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    monitor = TrainingMonitor(batch_size=ROTATIONS * recipe["batch_size"], monitor="accuracy",
                              verbose=verbose)
    history = model.fit(batches, epochs=recipe["epochs"], verbose=0, callbacks=[monitor])
    held = pretext_accuracy(model, x_held)
    return {"pretext_accuracy_held_out": held["accuracy"],
            "pretext_accuracy_per_rotation": held["per_rotation"],
            "pretext_accuracy_train_last_epoch": float(history.history["accuracy"][-1]),
            "pretraining_images": int(len(x_pool)), "held_out_images": int(len(x_held))}


def rotation_spec():
    """``pretrained.REGISTRY["cifar_rotation"]``: the rotation-pretrained backbone."""
    from course_lib.pretrained import PretrainSpec

    return PretrainSpec("cifar_rotation",
                        "CIFAR-10 backbone pre-trained by rotation prediction, no labels (ch. 08)",
                        rotation_recipe, rotation_model, train_rotation, data=("cifar10",))


# ---------------------------------------------------------------- a second pretext: denoising


def denoising_recipe(fast: bool) -> dict:
    """The recipe of the denoising autoencoder (the same backbone as encoder)."""
    return pretext_recipe(
        fast, "denoising autoencoder: reconstruct the clean image from one with half of its "
              "pixels masked; CIFAR-10 training images, labels discarded, test images unused",
        mask_rate=0.5, decoder_widths=[64, 32, 16, 16], batch_size=64 if fast else 128,
        epochs=2 if fast else 4)


class PixelMask(keras.layers.Layer):
    """Masking noise (Vincent et al., 2008): in training, every pixel (all its channels) is set to
    0 with probability ``rate``; the identity at inference. (batch, H, W, C) -> same shape."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or self.rate == 0.0:
            return images
        shape = ops.shape(images)
        keep = keras.random.uniform((shape[0], shape[1], shape[2], 1), seed=self.seed_generator)
        return images * ops.cast(keep >= self.rate, images.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def mask_pixels(images: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """NumPy masking noise: each pixel of images (n, H, W, C) set to 0 with probability ``rate``."""
    keep = rng.random(images.shape[:3] + (1,)) >= rate
    return (images * keep).astype(images.dtype)


def pixel_mse(y_true, y_pred):
    """Mean squared error between uint8 targets (rescaled to 0..1) and 0..1 reconstructions,
    per image: y_true (batch, 32, 32, 3) 0..255, y_pred (batch, 32, 32, 3) 0..1 -> (batch,)."""
    target = ops.cast(y_true, y_pred.dtype) / 255.0
    return ops.mean(ops.square(target - y_pred), axis=(1, 2, 3))


def denoising_model(recipe: dict) -> keras.Model:
    """Masked pixels -> the backbone's blocks (the encoder, named "encoder") -> a transposed-conv
    decoder -> the clean image, 0..1 (batch, 32, 32, 3). The masking is applied in training
    only (``PixelMask``)."""
    from keras import layers

    keras.utils.set_random_seed(recipe["seed"])
    backbone = _backbone(recipe)
    last = cifar.block_names(backbone)[-1]
    encoder = keras.Model(backbone.inputs, backbone.get_layer(last).output, name="encoder")
    inputs = keras.Input((32, 32, 3), name="pixels")
    x = layers.Rescaling(1.0, name="to_float")(inputs)
    x = encoder(PixelMask(recipe["mask_rate"], seed=recipe["seed"], name="mask")(x))
    for i, width in enumerate(recipe["decoder_widths"], start=1):
        x = layers.Conv2DTranspose(width, 3, strides=2, padding="same", use_bias=False,
                                   name=f"up{i}")(x)
        x = layers.BatchNormalization(name=f"up{i}_bn")(x)
        x = layers.ReLU(name=f"up{i}_relu")(x)
    outputs = layers.Conv2D(3, 3, padding="same", activation="sigmoid", dtype="float32",
                            name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="denoising_autoencoder")


def train_denoising(model: keras.Model, recipe: dict, verbose: bool = True) -> dict:
    """Train the autoencoder on the unlabelled pool; report the held-out mean squared error
    (0..1 pixels) of the masked input itself, of its reconstruction, and of the clean input's."""
    from course_lib.training import TrainingMonitor

    x_pool, x_held = unlabelled_images(recipe["fast"])
    steps = len(x_pool) // recipe["batch_size"] * recipe["epochs"]
    model.compile(optimizer=_one_cycle_adamw(recipe, steps), loss=pixel_mse)
    monitor = TrainingMonitor(batch_size=recipe["batch_size"], monitor="loss", verbose=verbose)
    model.fit(x_pool, x_pool, batch_size=recipe["batch_size"], epochs=recipe["epochs"],
              verbose=0, callbacks=[monitor])
    masked = mask_pixels(x_held, recipe["mask_rate"], np.random.default_rng(recipe["seed"]))
    target = x_held / 255.0
    return {"masked_input_mse_held_out": float(np.mean((masked / 255.0 - target) ** 2)),
            "denoised_mse_held_out": float(np.mean(
                (model.predict(masked, batch_size=500, verbose=0) - target) ** 2)),
            "clean_input_mse_held_out": float(np.mean(
                (model.predict(x_held, batch_size=500, verbose=0) - target) ** 2)),
            "pretraining_images": int(len(x_pool)), "held_out_images": int(len(x_held))}


def denoising_spec():
    """``pretrained.REGISTRY["cifar_denoising"]``: the denoising autoencoder."""
    from course_lib.pretrained import PretrainSpec

    return PretrainSpec("cifar_denoising",
                        "CIFAR-10 denoising autoencoder (same backbone), no labels (ch. 08)",
                        denoising_recipe, denoising_model, train_denoising,
                        data=("cifar10",))


# ---------------------------------------------------------------- frozen features, per block


def block_feature_model(network: keras.Model, blocks: list[str] | None = None,
                        grid: int = 2) -> keras.Model:
    """A model sharing ``network``'s layers (a ``cifar.cifar_backbone``, or any model with
    layers named "block1", ...) from pixels to each block's output, average-pooled to a
    ``grid`` x ``grid`` map and flattened: pixels (batch, 32, 32, 3) -> one (batch, grid * grid *
    channels) array per block. (Global pooling, grid=1, would leave block 1 with only its 16 channels.)
    """
    from keras import layers

    names = [layer.name for layer in network.layers
             if layer.name.startswith("block") and layer.name[5:].isdigit()]
    blocks = names if blocks is None else list(blocks)
    unknown = [b for b in blocks if b not in names]
    if unknown:
        raise ValueError(f"`blocks` must be among {names}, got {unknown}")
    outputs = []
    for block in blocks:
        feature_map = network.get_layer(block).output
        size = feature_map.shape[1]
        if size % grid:
            raise ValueError(f"{block}'s map is {size}x{size}, not divisible by grid={grid}")
        pooled = layers.AveragePooling2D(size // grid, name=f"{block}_pool")(feature_map)
        outputs.append(layers.Flatten(name=f"{block}_flat")(pooled))
    return keras.Model(network.inputs, outputs, name=f"{network.name}_blocks")


def block_features(network: keras.Model, images: np.ndarray, blocks: list[str] | None = None,
                   grid: int = 2, batch_size: int = 500) -> dict[str, np.ndarray]:
    """Frozen features of ``images`` (n, 32, 32, 3) at every block, in inference mode (batch
    norm uses its stored statistics): {block: (n, grid * grid * channels) float32}."""
    model = block_feature_model(network, blocks, grid)
    outputs = model.predict(np.asarray(images), batch_size=batch_size, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    names = [name.removesuffix("_flat") for name in model.output_names]
    return dict(zip(names, outputs, strict=True))


def probe_per_block(train: dict[str, np.ndarray], y_train: np.ndarray,
                    held: dict[str, np.ndarray], y_held: np.ndarray,
                    l2: float = 1e-2) -> dict[str, float]:
    """Accuracy on ``held`` of a linear probe fitted on ``train``, for each block.

    train / held: {block: (n, d)} features (from :func:`block_features`); y: (n,) labels."""
    k = int(max(y_train.max(), y_held.max())) + 1
    return {block: float(np.mean(fit_linear_probe(train[block], y_train, k, l2=l2)
                                 .predict(held[block]) == y_held))
            for block in train}


# ---------------------------------------------------------------- downstream methods


def probe_method(grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0), folds: int = 3):
    """A ``label_efficiency`` method on frozen features: x_train (n, d) features, L2 chosen by
    cross-validation on the method's own training data, then a probe fitted on all of it."""

    def method(x_train: np.ndarray, y_train: np.ndarray, seed: int):
        l2, _ = choose_probe_l2(x_train, y_train, grid, folds, seed)
        return fit_linear_probe(x_train, y_train, int(y_train.max()) + 1, l2=l2)

    return method


@dataclass(frozen=True)
class FewLabelRecipe:
    """How a classifier is trained on few labels (the same for scratch and fine-tuning).

    steps: at least this many optimizer steps, whatever the number of labels (at most
    ``max_epochs`` epochs); batch_size: examples per step (all of them when fewer);
    learning_rate: Adam, cosine-decayed to 0 (``finetuning.compile_classifier``); augmentation:
    random crop (pad 4) and flip.
    """

    steps: int = 200
    batch_size: int = 64
    learning_rate: float = 1e-3
    max_epochs: int = 200


def _head_weights(probe: LinearProbe) -> list[np.ndarray]:
    """A probe's (W, b) with its standardisation folded in: logits = features @ W' + b'."""
    kernel = probe.W / probe.std[:, None]
    return [kernel.astype(np.float32), (probe.b - probe.mean @ kernel).astype(np.float32)]


def train_classifier(backbone: keras.Model, x: np.ndarray, y: np.ndarray, num_classes: int,
                     recipe: FewLabelRecipe, seed: int, pretrained: bool) -> keras.Model:
    """``backbone`` + a dense head (``cifar.classifier``), trained on x (n, 32, 32, 3), y (n,).

    pretrained=True (fine-tuning): the head starts as a linear probe fitted on the frozen
    backbone's features (so the first steps do not push random-head gradients into the
    pre-trained weights), then every layer trains except batch norm, which keeps its stored
    statistics (``finetuning.set_trainable``). pretrained=False (from scratch): every layer
    trains, batch norm included (a new network must learn its statistics).
    """
    from course_lib.training import RandomCropFlip

    keras.utils.set_random_seed(seed)
    model = cifar.classifier(backbone, num_classes,
                                augment=RandomCropFlip(4, flip=True, seed=seed))
    if pretrained:
        features = finetuning.extract_features(backbone, x)
        probe = fit_linear_probe(features, y, num_classes, l2=1e-2)
        model.get_layer("head").set_weights(_head_weights(probe))
    finetuning.set_trainable(backbone, True, batchnorm=not pretrained)
    order = _epochs_order(len(x), recipe, seed)
    batch = min(recipe.batch_size, len(x))
    finetuning.compile_classifier(model, recipe.learning_rate, total_steps=len(order) // batch)
    model.fit(x[order], y[order], batch_size=batch, epochs=1, shuffle=False, verbose=0)
    return model


def _epochs_order(n: int, recipe: FewLabelRecipe, seed: int) -> np.ndarray:
    """The example order of a whole run: one new permutation of the n examples per epoch, as
    many epochs as give ``recipe.steps`` steps (at most ``max_epochs``), laid end to end, so
    that ``fit`` runs them as a single epoch (Keras's fixed cost per epoch would dominate the
    few steps of a small budget)."""
    batch = min(recipe.batch_size, n)
    epochs = finetuning.epochs_for(n, batch, recipe.steps, 1, recipe.max_epochs)
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(n) for _ in range(epochs)])


def _predictor(model: keras.Model):
    return lambda x: model.predict(x, batch_size=500, verbose=0)


def scratch_method(backbone_config: dict, recipe: FewLabelRecipe):
    """A ``label_efficiency`` method: the backbone, freshly initialised (seeded), trained on the
    labelled images alone."""

    def method(x_train: np.ndarray, y_train: np.ndarray, seed: int):
        keras.utils.set_random_seed(seed)
        backbone = cifar.cifar_backbone(**backbone_config)
        return _predictor(train_classifier(backbone, x_train, y_train, int(y_train.max()) + 1,
                                           recipe, seed, pretrained=False))

    return method


def finetune_method(pretrained: keras.Model, backbone_config: dict, recipe: FewLabelRecipe):
    """A ``label_efficiency`` method: a copy of the ``pretrained`` backbone (its weights; the
    original is never changed), a head started from a linear probe, then every layer trained
    on the labelled images."""
    weights = pretrained.get_weights()

    def method(x_train: np.ndarray, y_train: np.ndarray, seed: int):
        backbone = cifar.cifar_backbone(**backbone_config)
        backbone.set_weights(weights)
        return _predictor(train_classifier(backbone, x_train, y_train, int(y_train.max()) + 1,
                                           recipe, seed, pretrained=True))

    return method


def pretext_accuracy_by_class(model: keras.Model, images: np.ndarray, labels: np.ndarray,
                              batch_size: int = 500) -> np.ndarray:
    """Rotation accuracy per object class: images (n, 32, 32, 3) with their class labels (n,)
    (used for this analysis only, never for training). Returns (classes,) accuracies."""
    labels = checks.as_index_array("labels", labels, ndim=1)
    checks.check_same_length("images", np.asarray(images), "labels", labels)
    rotated, rotation = rotation_batch(images)
    correct = model.predict(rotated, batch_size=batch_size, verbose=0).argmax(axis=1) == rotation
    classes = np.tile(labels, ROTATIONS)
    return np.array([correct[classes == c].mean() for c in range(int(labels.max()) + 1)])


def chapter_recipe(fast: bool) -> dict:
    """The downstream settings of chapter 08 (fixed before looking at any test accuracy).

    budgets: labelled examples per class; seeds: one labelled subset and initialisation each;
    few_label: :class:`FewLabelRecipe` for scratch and fine-tuning; probe_grid: the L2 values the
    probe's cross-validation chooses from; block_probe_per_class: labels per class for the
    per-block probes (scored on the held-out split, which also picks the block);
    target_trained_methods: whether the chapter-07 comparison also trains networks (scratch,
    fine-tuning) or only probes (fast mode); keras_probe_epochs: full-batch steps of the Keras probe.
    """
    return {
        "budgets": [10, 100],
        "seeds": [0] if fast else [0, 1, 2],
        "few_label": FewLabelRecipe(steps=12, batch_size=32) if fast else FewLabelRecipe(),
        "probe_grid": (1e-2, 1.0) if fast else (1e-3, 1e-2, 1e-1, 1.0),
        "block_probe_per_class": 50 if fast else 100,
        "target_trained_methods": not fast,
        "keras_probe_epochs": 30 if fast else 300,
    }

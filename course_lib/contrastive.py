"""Contrastive self-supervision (chapter 08, section 7): SimCLR on the course's CIFAR backbone.

SimCLR (Chen, Kornblith, Norouzi and Hinton, *A simple framework for contrastive learning of
visual representations*, ICML 2020) shows the network two random views of every image of a
batch and trains it to pick out, for each view, the other view of the same image among all the
views of the batch. The loss is NT-Xent (normalised temperature-scaled cross-entropy; the
InfoNCE loss of van den Oord et al., 2018, with cosine similarities):

    z = (n, 2, d) projections, row i of view 0 and row i of view 1 come from image i;
    u = z / ||z|| (each row), s_ab = u_a . u_b / tau for the 2n rows a, b;
    loss_a = -s_{a, pos(a)} + log sum_{b != a} exp(s_ab),   loss = mean over the 2n rows.

:func:`nt_xent` is the NumPy reference (value and gradient, checked by central differences),
:class:`NTXent` the Keras loss (``keras.ops``, every backend; checked against the reference),
:class:`SimCLRViews` the augmentation (random resized crop, flip, colour jitter, grayscale, as
``keras.ops``), :func:`simclr_model` the network and :func:`simclr_spec` the course's shipped
pre-trained copy (``pretrained.get_or_train("cifar_simclr")``).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from course_lib import cifar
from course_lib.nn import checks


def _check_projections(z: np.ndarray, temperature: float) -> np.ndarray:
    z = checks.as_float_array("z", z, ndim=3)
    if z.shape[1] != 2 or z.shape[0] < 1 or z.shape[2] < 1:
        raise ValueError(f"`z` must have shape (n, 2, d): two views of each of n images, "
                         f"got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("`z` contains NaN or infinite values")
    if np.any(np.linalg.norm(z, axis=2) == 0):
        raise ValueError("a projection in `z` is all zeros: its cosine similarity is undefined")
    if not temperature > 0:
        raise ValueError(f"`temperature` must be > 0, got {temperature}")
    return z


def nt_xent(z: np.ndarray, temperature: float = 0.5) -> tuple[float, np.ndarray]:
    """NT-Xent loss and its gradient, NumPy reference.

    z: (n, 2, d) projections (any float dtype; computed in float64 when z is float64);
    ``z[i, 0]`` and ``z[i, 1]`` are the two views of image i, every other row of the batch is a
    negative. Returns (mean loss over the 2n views, dloss/dz of shape (n, 2, d)).

    With U the (2n, d) unit rows and S = U U^T / tau (its diagonal excluded), the loss of row a
    is a cross-entropy whose "label" is the other view pos(a): G = dL/dS = (softmax(S) - P) /
    (2n), P the one-hot of the positives; dL/dU = (G + G^T) U / tau; and through the
    normalisation u = h / ||h||: dL/dh = (dL/du - u (u . dL/du)) / ||h||.
    """
    z = _check_projections(z, temperature)
    n, _, d = z.shape
    h = np.concatenate([z[:, 0], z[:, 1]])                      # (2n, d): view 0, then view 1
    norms = np.linalg.norm(h, axis=1, keepdims=True)
    u = h / norms
    s = u @ u.T / temperature
    np.fill_diagonal(s, -np.inf)                                  # a view is not its own negative
    positive = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    rows = np.arange(2 * n)
    top = s.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(s - top).sum(axis=1))   # stable log-sum-exp
    loss = float(np.mean(log_norm - s[rows, positive]))
    g = np.exp(s - log_norm[:, None])                             # softmax over b != a
    g[rows, positive] -= 1.0
    g /= 2 * n
    du = (g + g.T) @ u / temperature
    dh = (du - u * np.sum(u * du, axis=1, keepdims=True)) / norms
    return loss, np.stack([dh[:n], dh[n:]], axis=1)


class NTXent(keras.losses.Loss):
    """NT-Xent as a Keras loss: ``y_pred`` (batch, 2, d) projections of two views per image
    (``y_true`` is ignored: the labels are which rows are views of the same image). Returns the
    per-image loss (batch,), the mean of its two views' losses, so Keras's mean over the batch is
    :func:`nt_xent`'s mean over the 2n views."""

    def __init__(self, temperature: float = 0.5, name: str = "nt_xent", **kwargs):
        super().__init__(name=name, **kwargs)
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        n = ops.shape(y_pred)[0]
        h = ops.concatenate([y_pred[:, 0], y_pred[:, 1]], axis=0)
        # (the tiny floor only guards an all-zero projection against 0 / 0)
        u = h / ops.sqrt(ops.maximum(ops.sum(ops.square(h), axis=1, keepdims=True), 1e-24))
        s = ops.matmul(u, ops.transpose(u)) / self.temperature
        eye = ops.eye(2 * n, dtype="bool")
        s = ops.where(eye, float("-inf"), s)                       # exclude a view from its row
        positive = ops.concatenate([ops.arange(n, 2 * n), ops.arange(0, n)])
        picked = ops.take_along_axis(s, ops.expand_dims(positive, 1), axis=1)[:, 0]
        per_view = ops.logsumexp(s, axis=1) - picked
        return 0.5 * (per_view[:n] + per_view[n:])

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature}


class SimCLRViews(keras.layers.Layer):
    """SimCLR's augmentation, one random view per image per call (training only; the identity at
    inference): pixels (batch, 32, 32, 3), 0..255 -> float32, same shape, 0..255.

    1. random resized crop: a box of ``crop_scale`` of the area (uniform) and aspect ratio in
       [3/4, 4/3] (log-uniform), its sides clipped to the image (so wide or tall boxes near
       full area come out smaller and less elongated than drawn: about 16 % of them with the
       defaults), resized back to 32x32 (bilinear), flipped left-right with probability 1/2 (one
       ``ops.image.affine_transform`` per batch);
    2. colour jitter with probability 0.8: brightness, contrast and saturation factors uniform
       in [1 - jitter, 1 + jitter], in that order (SimCLR also jitters hue, in random order;
       left out here for speed);
    3. grayscale with probability 0.2.

    Calling it twice on the same batch gives two independent views (its seed generator moves
    on every call).
    """

    def __init__(self, crop_scale: tuple[float, float] = (0.2, 1.0), jitter: float = 0.4,
                 jitter_probability: float = 0.8, gray_probability: float = 0.2,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        low, high = (float(v) for v in crop_scale)
        if not 0 < low <= high <= 1:
            raise ValueError(f"`crop_scale` must satisfy 0 < low <= high <= 1, got {crop_scale}")
        if not 0 <= jitter < 1:
            raise ValueError(f"`jitter` must be in [0, 1), got {jitter}")
        for name, p in (("jitter_probability", jitter_probability),
                        ("gray_probability", gray_probability)):
            if not 0 <= p <= 1:
                raise ValueError(f"`{name}` must be in [0, 1], got {p}")
        self.crop_scale = (low, high)
        self.jitter = float(jitter)
        self.jitter_probability = float(jitter_probability)
        self.gray_probability = float(gray_probability)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, batch, low, high):
        return keras.random.uniform((batch, 1), low, high, seed=self.seed_generator)

    def call(self, images, training=None):
        x = ops.cast(images, "float32")
        if not training:
            return x
        batch = ops.shape(x)[0]
        size = 32.0
        area = self._uniform(batch, *self.crop_scale)
        log_ratio = self._uniform(batch, math.log(3 / 4), math.log(4 / 3))
        ratio = ops.exp(log_ratio)
        w = ops.minimum(ops.sqrt(area * ratio), 1.0) * size        # crop width, pixels
        h = ops.minimum(ops.sqrt(area / ratio), 1.0) * size
        ox = self._uniform(batch, 0.0, 1.0) * (size - w)
        oy = self._uniform(batch, 0.0, 1.0) * (size - h)
        flip = ops.cast(self._uniform(batch, 0.0, 1.0) < 0.5, "float32")
        transform = crop_transform(ox, oy, w, h, flip, size)
        x = ops.image.affine_transform(x, transform, interpolation="bilinear",
                                       fill_mode="nearest")
        weights = ops.convert_to_tensor([0.299, 0.587, 0.114], dtype="float32")
        jitter_on = ops.cast(self._uniform(batch, 0.0, 1.0) < self.jitter_probability, "float32")

        def factor():
            f = self._uniform(batch, 1 - self.jitter, 1 + self.jitter)
            return ops.reshape(1 + jitter_on * (f - 1), (-1, 1, 1, 1))

        x = x * factor()                                            # brightness
        gray_mean = ops.mean(ops.sum(x * weights, axis=-1), axis=(1, 2))
        mean = ops.reshape(gray_mean, (-1, 1, 1, 1))
        x = mean + (x - mean) * factor()                            # contrast
        gray = ops.sum(x * weights, axis=-1, keepdims=True)
        x = gray + (x - gray) * factor()                            # saturation
        x = ops.clip(x, 0.0, 255.0)
        to_gray = ops.reshape(ops.cast(self._uniform(batch, 0.0, 1.0) < self.gray_probability,
                                       "float32"), (-1, 1, 1, 1))
        gray = ops.sum(x * weights, axis=-1, keepdims=True)
        return to_gray * gray + (1 - to_gray) * x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "crop_scale": self.crop_scale, "jitter": self.jitter,
                "jitter_probability": self.jitter_probability,
                "gray_probability": self.gray_probability, "seed": self.seed}


def crop_transform(ox, oy, w, h, flip, size: float = 32.0):
    """The ``ops.image.affine_transform`` rows (batch, 8) that resize the box at (ox, oy) of
    w x h pixels to the whole ``size`` x ``size`` image, mirrored where ``flip`` is 1: output
    pixel x reads input x' = ox + (x + 0.5) w / size - 0.5 (pixel centres line up), or
    ox + w - (x + 0.5) w / size - 0.5 when flipped; likewise for y without the mirror.
    Every argument is (batch, 1), float."""
    sx, sy = w / size, h / size
    a0 = sx * (1 - 2 * flip)
    a2 = ox + 0.5 * sx - 0.5 + flip * (w - sx)
    b2 = oy + 0.5 * sy - 0.5
    zeros = ops.zeros_like(sx)
    return ops.concatenate([a0, zeros, a2, zeros, sy, b2, zeros, zeros], axis=1)


# ---------------------------------------------------------------- the pre-trained network


def simclr_recipe(fast: bool) -> dict:
    """The recipe of the SimCLR-pretrained backbone (``pretrained`` cache key)."""
    from course_lib.selfsupervised import pretext_recipe

    return pretext_recipe(
        fast, "SimCLR (two augmented views per image, NT-Xent), CIFAR-10 training images, "
              "labels discarded, test images unused",
        augment="random resized crop (scale 0.2-1) + flip, colour jitter 0.4 (p 0.8), "
                "grayscale (p 0.2)",
        projection=[128, 64], temperature=0.5, batch_size=64 if fast else 256,
        # 10 epochs x 2 views: as many images through the backbone as the rotation network's
        # 5 epochs x 4 rotations (a matched pre-training budget)
        epochs=2 if fast else 10)


def simclr_model(recipe: dict) -> keras.Model:
    """pixels (batch, 32, 32, 3) -> two views -> the backbone (named "cifar_backbone";
    features (batch, 128)) -> the projection head (Dense -> batch norm -> ReLU -> Dense,
    named "projection") -> (batch, 2, projection[-1]) projections for :class:`NTXent`.
    At inference the two "views" are the image itself (the augmentation is off)."""
    keras.utils.set_random_seed(recipe["seed"])
    backbone = cifar.cifar_backbone(**recipe["backbone"], name="cifar_backbone")
    hidden, out = recipe["projection"]
    head_in = keras.Input((backbone.output_shape[-1],))
    x = layers.Dense(hidden, use_bias=False, name="projection_dense1")(head_in)
    x = layers.BatchNormalization(name="projection_bn")(x)
    x = layers.ReLU(name="projection_relu")(x)
    z = layers.Dense(out, dtype="float32", name="projection_dense2")(x)
    projection = keras.Model(head_in, z, name="projection")
    views = SimCLRViews(seed=recipe["seed"], name="views")
    inputs = keras.Input((32, 32, 3), name="pixels")
    z1 = projection(backbone(views(inputs)))
    z2 = projection(backbone(views(inputs)))
    outputs = layers.Lambda(lambda pair: ops.stack(pair, axis=1), name="pair")([z1, z2])
    return keras.Model(inputs, outputs, name="simclr")


def contrastive_accuracy(model: keras.Model, images: np.ndarray, batch_size: int = 256,
                         seed: int = 0) -> float:
    """The pretext task's accuracy on ``images`` (n, 32, 32, 3): in batches of ``batch_size``,
    the share of views whose most similar other view in the batch is the other view of the same
    image (chance: 1 / (2 batch - 1)). The views are drawn with the training augmentation's
    settings by a new :class:`SimCLRViews` seeded with ``seed`` (the model's own is untouched);
    the network runs in inference mode, so its weights and statistics do not change."""
    trained = model.get_layer("views")
    views = SimCLRViews.from_config({**trained.get_config(), "seed": seed})
    backbone, projection = model.get_layer("cifar_backbone"), model.get_layer("projection")
    correct, total = 0, 0
    for start in range(0, len(images) - batch_size + 1, batch_size):
        batch = images[start:start + batch_size]
        # random views as in training, the network in inference mode (its statistics untouched)
        h = np.concatenate([keras.ops.convert_to_numpy(
            projection(backbone(views(batch, training=True), training=False), training=False))
            for _ in range(2)])
        u = h / np.linalg.norm(h, axis=1, keepdims=True)
        s = u @ u.T
        np.fill_diagonal(s, -np.inf)
        n = len(batch)
        positive = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
        correct += int(np.sum(s.argmax(axis=1) == positive))
        total += 2 * n
    return correct / total if total else float("nan")


def train_simclr(model: keras.Model, recipe: dict, verbose: bool = True) -> dict:
    """Pre-train ``model`` (:func:`simclr_model`) on the unlabelled pool: shuffled batches,
    NT-Xent, AdamW with a one-cycle schedule; then measure the held-out contrastive accuracy
    (:func:`contrastive_accuracy`). ``model.fit`` receives images and a dummy target only."""
    from course_lib.selfsupervised import _one_cycle_adamw, unlabelled_images
    from course_lib.training import TrainingMonitor

    x_pool, x_held = unlabelled_images(recipe["fast"])
    batch = recipe["batch_size"]
    steps = len(x_pool) // batch * recipe["epochs"]
    # unlike SimCLR, which normalises both views in one batch, the backbone's batch norm sees each
    # view's batch on its own (two calls of the backbone)
    model.compile(optimizer=_one_cycle_adamw(recipe, steps),
                  loss=NTXent(recipe["temperature"]))
    monitor = TrainingMonitor(batch_size=batch, monitor="loss", verbose=verbose)
    dummy = np.zeros((len(x_pool), 1), dtype="float32")
    history = model.fit(x_pool, dummy, batch_size=batch, epochs=recipe["epochs"], shuffle=True,
                        verbose=0, callbacks=[monitor])
    return {"loss_history": [round(float(v), 4) for v in history.history["loss"]],
            "contrastive_accuracy_held_out": contrastive_accuracy(model, x_held, batch),
            "chance_contrastive_accuracy": 1 / (2 * batch - 1),
            "pretraining_images": int(len(x_pool)), "held_out_images": int(len(x_held))}


def simclr_spec():
    """``pretrained.REGISTRY["cifar_simclr"]``: the SimCLR-pretrained backbone."""
    from course_lib.pretrained import PretrainSpec

    return PretrainSpec("cifar_simclr",
                        "CIFAR-10 backbone pre-trained by SimCLR (contrastive), no labels (ch. 08)",
                        simclr_recipe, simclr_model, train_simclr, data=("cifar10",))

"""Chapter 07 helpers: transfer learning and fine-tuning.

The source and target tasks and the backbone live in :mod:`course_lib.cifar`, the freezing and
training helpers in :mod:`course_lib.finetuning`, and the label-efficiency measurement with its
statistics in :mod:`course_lib.experiments` (chapters 08 and 09 use them too). This module holds
what is chapter 07's own: the source models the course pre-trains ("cifar_source",
"mnist_source" in :data:`course_lib.pretrained.REGISTRY`), the methods compared on the
label-efficiency curve (feature extraction, fine-tuning, from scratch), L2-SP and its L2
baseline, what fine-tuning does to the source task (:class:`FineTuneLog`), sources of
different quality (:func:`source_checkpoints`), a ``keras.applications`` backbone, and the
measured demonstrations of fine-tuning's silent bugs. The documents' errors have their
stand-ins in :mod:`course_lib.transfer_errata`.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from keras import layers

from course_lib.cifar import BACKBONE, block_names, cifar_backbone, cifar_task, classifier
from course_lib.experiments import Method, Predictor, sample_per_class
from course_lib.finetuning import (
    accuracy,
    compile_classifier,
    epochs_for,
    even_batch_size,
    extract_features,
    fit_classifier,
    is_batchnorm,
    linear_predictor,
    set_trainable,
    train_head,
    trainable_parameter_count,
)
from course_lib.l2sp import apply_l2sp, capable_variables, l2sp_gradient, l2sp_penalty
from course_lib.nn import checks

# --------------------------------------------------------------------------------------------
# The source models the course pre-trains (registered in course_lib.pretrained.REGISTRY).
# --------------------------------------------------------------------------------------------


def _source_recipe(task: str, fast: bool) -> dict:
    full_epochs = {"cifar_source": 15, "mnist_source": 3}[task]
    return {
        "data": {"cifar_source": "cifar10 train, source classes airplane automobile bird cat deer",
                 "mnist_source": "mnist train, the first 25000 digits (1000 of the shipped sample in "
                                 "fast mode) padded to 32x32x3"}[task]
                + (" (shipped sample)" if fast else ""),
        "sample": fast,
        "classes": 5 if task == "cifar_source" else 10,
        "backbone": BACKBONE,
        "augment": {"pad": 4, "flip": task == "cifar_source"},
        "epochs": (3 if task == "cifar_source" else 2) if fast else full_epochs,
        "batch_size": 128,
        "learning_rate": 2e-3,
        "optimizer": "adam",
        "seed": 0,
    }


def mnist_as_cifar(x: np.ndarray) -> np.ndarray:
    """MNIST digits uint8 (n, 28, 28) -> (n, 32, 32, 3): zero-padded by 2 pixels, grey in RGB."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"`x` must be MNIST images (n, 28, 28), got shape {x.shape}")
    return np.repeat(np.pad(x, ((0, 0), (2, 2), (2, 2)))[..., None], 3, axis=-1)


def source_data(name: str, split: str, sample: bool) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels a source model ("cifar_source", "mnist_source") learns from."""
    from course_lib import data

    if name == "cifar_source":
        return cifar_task("source", split, sample=sample)
    x, y = data.load("mnist", split, sample=sample)
    if split == "train":
        x, y = x[:1000 if sample else 25000], y[:1000 if sample else 25000]
    return mnist_as_cifar(x), y


def build_source(recipe: dict) -> keras.Model:
    """The untrained source model of ``recipe``: augmentation -> cifar_backbone -> head."""
    from course_lib.training import RandomCropFlip

    backbone = cifar_backbone(**recipe["backbone"])
    augment = RandomCropFlip(recipe["augment"]["pad"], flip=recipe["augment"]["flip"],
                             seed=recipe["seed"], name="augment")
    return classifier(backbone, recipe["classes"], augment=augment, name="source_model")


def _train_source(name: str):
    def train(model: keras.Model, recipe: dict, verbose: bool) -> dict:
        x, y = source_data(name, "train", recipe["sample"])
        x_test, y_test = source_data(name, "test", recipe["sample"])
        keras.utils.set_random_seed(recipe["seed"])
        start = time.perf_counter()
        fit_classifier(model, x, y, epochs=recipe["epochs"], batch_size=recipe["batch_size"],
                       learning_rate=recipe["learning_rate"], optimizer=recipe["optimizer"],
                       seed=recipe["seed"], monitor=verbose)
        seconds = time.perf_counter() - start
        return {"source_test_accuracy": accuracy(model, x_test, y_test),
                "train_images": int(len(y)), "fit_seconds": round(seconds, 1),
                "examples_per_second": round(recipe["epochs"] * len(y) / seconds, 1)}
    return train


def cifar_source_spec():
    """``pretrained`` entry "cifar_source": the backbone trained on the five source classes."""
    from course_lib.pretrained import PretrainSpec

    return PretrainSpec("cifar_source",
                        "cifar_backbone trained on CIFAR-10 airplane/automobile/bird/cat/deer",
                        lambda fast: _source_recipe("cifar_source", fast), build_source,
                        _train_source("cifar_source"), data=("cifar10",))


def mnist_source_spec():
    """``pretrained`` entry "mnist_source": the same backbone trained on MNIST digits (a source
    unrelated to the CIFAR-10 target, for negative transfer)."""
    from course_lib.pretrained import PretrainSpec

    return PretrainSpec("mnist_source", "cifar_backbone trained on MNIST digits (unrelated source)",
                        lambda fast: _source_recipe("mnist_source", fast), build_source,
                        _train_source("mnist_source"), data=("mnist",))


def source_backbone(source_model: keras.Model) -> keras.Model:
    """The ``cifar_backbone`` inside a source model from :func:`build_source`."""
    return source_model.get_layer("cifar_backbone")


def transferred_backbone(source_model: keras.Model, name: str = "cifar_backbone") -> keras.Model:
    """A new backbone with the source model's backbone weights (the source model is untouched)."""
    source = source_backbone(source_model)
    config = {"widths": [source.get_layer(f"{b}_conv1").filters for b in block_names(source)],
              "convs_per_block": sum(1 for la in source.layers if la.name.startswith("block1_conv"))}
    backbone = cifar_backbone(**config, name=name)
    backbone.set_weights(source.get_weights())
    return backbone


# --------------------------------------------------------------------------------------------
# A keras.applications backbone (ImageNet weights when available) for the same chapter code.
# --------------------------------------------------------------------------------------------

_APPLICATIONS = {
    # name: (no-top weights file of keras.applications, its md5, feature width)
    "MobileNetV3Small": ("weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
                         "d3e8ec802a04aa4fc771ee12a9a9b836", 576),
    "MobileNetV3Large": ("weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
                         "07fb09a5933dd0c8eaafa16978110389", 960),
}
_APPLICATIONS_ORIGIN = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"


class WeightsUnavailable(FileNotFoundError):
    """Pre-trained weights that can neither be found locally nor downloaded."""


def keras_weights_path(name: str = "MobileNetV3Small") -> Path:
    """Where Keras keeps (and looks for) the ImageNet weights of application ``name``:
    ``$KERAS_HOME/models/<file>`` (``KERAS_HOME`` defaults to ``~/.keras``)."""
    checks.check_choice("name", name, list(_APPLICATIONS))
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / _APPLICATIONS[name][0]


def _home_as_tilde(path: Path) -> str:
    home = str(Path.home())
    return "~" + str(path)[len(home):] if str(path).startswith(home + os.sep) else str(path)


def _imagenet_weights(name: str) -> Path:
    filename, md5, _ = _APPLICATIONS[name]
    target = keras_weights_path(name)
    if target.is_file():
        return target
    url = _APPLICATIONS_ORIGIN + filename
    try:  # get_file prints "Downloading data from ..." before it fails offline: keep it quiet
        with contextlib.redirect_stdout(io.StringIO()):
            found = keras.utils.get_file(filename, url, cache_dir=str(target.parent.parent),
                                         cache_subdir="models", file_hash=md5)
    except Exception as error:  # offline, firewall, proxy: every failure gets the same advice
        reason = (str(error).strip().splitlines() or [""])[0].split(" -- ")[-1]
        raise WeightsUnavailable(
            f"the ImageNet weights of {name} are not on this machine and could not be "
            f"downloaded ({type(error).__name__}: {reason[:100]}). Download\n  {url}\n"
            f"and save it as\n  {_home_as_tilde(target)}\n(or anywhere, and pass "
            f"weights='/path/to/{filename}'); "
            f"or use the course's own source model, which needs no download: "
            f"pretrained.get_or_train('cifar_source')."
        ) from None
    print(f"downloaded the ImageNet weights of {name} to {_home_as_tilde(Path(found))}")
    return Path(found)


def applications_backbone(name: str = "MobileNetV3Small", weights: str | Path | None = "imagenet",
                          image_size: int = 96) -> keras.Model:
    """A ``keras.applications`` network as a drop-in for :func:`cifar_backbone`: pixels
    ``(batch, 32, 32, 3)`` uint8 or float 0..255 -> features ``(batch, width)`` (576 for
    MobileNetV3Small, 960 for MobileNetV3Large).

    The images are resized to ``image_size`` (ImageNet networks expect larger inputs than
    32x32); the network's own preprocessing (MobileNetV3 rescales 0..255 to [-1, 1] inside,
    ``include_preprocessing=True``) comes next, then the network without its top
    (``include_top=False``) and global average pooling.

    ``weights``: "imagenet" (the Keras cache file, downloaded when missing and possible),
    the path of a local weights file (the Keras no-top ``.h5`` file, or a ``.weights.h5``
    saved from the same architecture), or None (random initialisation). When ImageNet weights
    are neither cached nor downloadable, :class:`WeightsUnavailable` says exactly which file to
    download and where to put it. A local file that does not fit raises ``ValueError``.
    """
    checks.check_choice("name", name, list(_APPLICATIONS))
    image_size = checks.check_positive_int("image_size", image_size)
    if image_size < 32:
        raise ValueError(f"`image_size` must be at least 32, got {image_size}")
    if weights == "imagenet":
        path = _imagenet_weights(name)
    elif weights is None:
        path = None
    else:
        path = Path(weights)
        if not path.is_file():
            raise WeightsUnavailable(f"weights file {path} not found (pass weights='imagenet', "
                                     f"None, or the path of an existing weights file)")
    application = getattr(keras.applications, name)(
        input_shape=(image_size, image_size, 3), include_top=False, weights=None,
        pooling="avg", include_preprocessing=True)
    if path is not None:
        try:
            with warnings.catch_warnings():   # Keras notes functional internals it skips
                warnings.filterwarnings("ignore", message="Skipping nested container")
                application.load_weights(str(path))
        except Exception as error:
            raise ValueError(f"the weights file {path} does not fit {name} without its top "
                             f"({type(error).__name__}: {str(error).splitlines()[0][:160]})"
                             ) from None
    inputs = keras.Input((32, 32, 3), name="pixels")
    x = layers.Resizing(image_size, image_size, name="resize")(inputs)
    outputs = application(x)
    return keras.Model(inputs, outputs, name=f"{name.lower()}_backbone")


# --------------------------------------------------------------------------------------------
# The methods compared by the label-efficiency curve.
# --------------------------------------------------------------------------------------------


def head_settings(config: dict, n_train: int) -> dict:
    """:func:`train_head` keyword arguments from a "head" config: ``{"iterations",
    "learning_rate", "prior"}`` gives ``l2 = prior / n_train`` (a penalty of fixed total
    strength, so the head is regularised less as labels grow: the objective is a mean over
    the examples); an explicit ``"l2"`` is used as it is."""
    settings = {k: v for k, v in config.items() if k != "prior"}
    if "prior" in config:
        settings["l2"] = config["prior"] / n_train
    return settings


def feature_extraction_method(config: dict) -> Method:
    """A method for :func:`label_efficiency` on *cached features* (x = frozen-backbone features
    (n, d), computed once for the whole pool and test set): a new head, nothing else trains.
    ``config``: the "head" part of :func:`chapter_recipe` (see :func:`head_settings`)."""
    def train(features, y, seed):
        return linear_predictor(train_head(features, y, int(y.max()) + 1, seed=seed,
                                           **head_settings(config, len(y))))
    return train


def _predictor(model: keras.Model) -> Predictor:
    return lambda x: model.predict(x, batch_size=500, verbose=0)


def scratch_method(config: dict, num_classes: int = 5) -> Method:
    """From scratch: a randomly initialised :func:`cifar_backbone` + head, with augmentation,
    trained on the labelled images only. ``config``: the "scratch" part of the recipe."""
    from course_lib.training import RandomCropFlip

    def train(x, y, seed):
        keras.utils.set_random_seed(seed)
        model = classifier(cifar_backbone(**BACKBONE), num_classes,
                           augment=RandomCropFlip(4, seed=seed))
        batch = even_batch_size(len(y), config["batch_size"])
        epochs = epochs_for(len(y), batch, config["min_steps"], config["min_epochs"],
                            config["max_epochs"])
        fit_classifier(model, x, y, epochs=epochs, batch_size=batch,
                       learning_rate=config["learning_rate"], optimizer=config["optimizer"],
                       seed=seed)
        return _predictor(model)
    return train


def fine_tune(source_model: keras.Model, x: np.ndarray, y: np.ndarray, seed: int, config: dict,
              head_config: dict, *, alpha: float = 0.0, beta: float = 0.0,
              toward: str = "source", batchnorm: bool = False,
              num_classes: int = 5) -> keras.Model:
    """Fine-tune a copy of the source backbone on (x, y); returns the trained classifier.

    1. New head trained on the frozen backbone's features (:func:`train_head`, cheap).
    2. Unfreeze ``config["blocks"]`` (block names, or True for every layer; batch norm stays
       frozen unless ``batchnorm``), attach the penalty when ``alpha`` or ``beta`` > 0
       (:func:`apply_l2sp`: toward the source weights, or toward zero with ``toward="zero"``;
       the head decays with ``beta``), **recompile** and train everything unfrozen with
       ``config["optimizer"]`` ("adam", or "sgd" with momentum 0.9) at
       ``config["learning_rate"]``, cosine-decayed, with augmentation, for :func:`epochs_for`
       epochs.
    """
    from course_lib.training import RandomCropFlip

    keras.utils.set_random_seed(seed)
    backbone = transferred_backbone(source_model)
    model = classifier(backbone, num_classes, augment=RandomCropFlip(4, seed=seed))
    return _fine_tune_model(model, backbone, x, y, seed, config, head_config, alpha=alpha,
                            beta=beta, toward=toward, batchnorm=batchnorm,
                            num_classes=num_classes)


def _fine_tune_model(model: keras.Model, backbone: keras.Model, x: np.ndarray, y: np.ndarray,
                     seed: int, config: dict, head_config: dict, *, alpha: float = 0.0,
                     beta: float = 0.0, toward: str = "source", batchnorm: bool = False,
                     num_classes: int = 5) -> keras.Model:
    """Steps 1-2 of :func:`fine_tune` on ``model`` (``backbone`` + a "head"), in place."""
    set_trainable(backbone, False)
    model.get_layer("head").set_weights(
        train_head(extract_features(backbone, x), y, num_classes, seed=seed,
                   **head_settings(head_config, len(y))))
    set_trainable(backbone, config["blocks"], batchnorm=batchnorm)
    if alpha or beta:
        apply_l2sp(backbone, alpha, head=model.get_layer("head"), beta=beta, toward=toward)
    batch = even_batch_size(len(y), config["batch_size"])
    epochs = epochs_for(len(y), batch, config["min_steps"], config["min_epochs"],
                        config["max_epochs"])
    fit_classifier(model, x, y, epochs=epochs, batch_size=batch,
                   learning_rate=config["learning_rate"], optimizer=config["optimizer"], seed=seed)
    return model


def fine_tune_method(source_model: keras.Model, config: dict, head_config: dict,
                     alpha: float | dict = 0.0, beta: float = 0.0, toward: str = "source",
                     log: FineTuneLog | None = None, name: str = "") -> Method:
    """:func:`fine_tune` as a method for :func:`label_efficiency` (``alpha`` > 0: L2-SP, or L2
    toward zero with ``toward="zero"``). ``alpha`` may map labels per class to a value (one
    chosen per budget). With a :class:`FineTuneLog`, every trained model is measured on the
    source task under ``name`` before it is returned."""
    def train(x, y, seed):
        per_class = len(y) // (int(np.max(y)) + 1)
        strength = alpha[per_class] if isinstance(alpha, dict) else alpha
        model = fine_tune(source_model, x, y, seed, config, head_config, alpha=strength,
                          beta=beta, toward=toward)
        if log is not None:
            log.measure(name, model, per_class, seed)
        return _predictor(model)
    return train


def applications_fine_tune_method(name: str, weights: str | Path, config: dict,
                                  head_config: dict, num_classes: int = 5) -> Method:
    """:func:`fine_tune`'s procedure on a fresh :func:`applications_backbone` (``name``,
    ``weights``: "imagenet" or a local file) for every run: head first, then
    ``config["blocks"]`` (True: every layer) unfrozen with batch norm frozen (nested layers
    included), recompiled, trained with ``config``'s optimizer and steps."""
    from course_lib.training import RandomCropFlip

    def train(x, y, seed):
        keras.utils.set_random_seed(seed)
        backbone = applications_backbone(name, weights)
        model = classifier(backbone, num_classes, augment=RandomCropFlip(4, seed=seed))
        return _predictor(_fine_tune_model(model, backbone, x, y, seed, config, head_config,
                                           num_classes=num_classes))
    return train


class FineTuneLog:
    """What fine-tuning did to the source network, one record per run: the source task's test
    accuracy with the **source head** put back on the fine-tuned backbone (catastrophic
    forgetting is the drop from ``before``, the source model's own accuracy measured the same
    way), and how far the backbone moved, ``||W - W_s|| / ||W_s||`` over its trainable-capable
    variables (batch-norm moving statistics excluded).

    source_model: a :func:`build_source` model (its backbone and its "head");
    x_source_test, y_source_test: the source task's test images (n, 32, 32, 3) and labels (n,).
    :meth:`forgetting` returns the source accuracies as an ``experiments.LabelEfficiency`` (so
    its tables and paired comparisons apply), :meth:`distances` the distances likewise.
    """

    def __init__(self, source_model: keras.Model, x_source_test: np.ndarray,
                 y_source_test: np.ndarray):
        self.head = [np.asarray(w) for w in source_model.get_layer("head").get_weights()]
        backbone = source_backbone(source_model)
        self.start = _named_capable(backbone)
        self.x, self.y = x_source_test, checks.as_index_array("y_source_test", y_source_test,
                                                              ndim=1)
        self.before = self._source_accuracy(backbone)
        self.records: list[dict] = []

    def _source_accuracy(self, backbone: keras.Model) -> float:
        predict = linear_predictor((self.head[0], self.head[1]))
        return float(np.mean(predict(extract_features(backbone, self.x)).argmax(1) == self.y))

    def measure(self, name: str, model: keras.Model, per_class: int, seed: int) -> None:
        """Record the source accuracy and the distance moved of ``model`` (a fine-tuned
        classifier whose backbone is named "cifar_backbone")."""
        backbone = model.get_layer("cifar_backbone")
        moved = _named_capable(backbone)
        if moved.keys() != self.start.keys():
            raise ValueError("the fine-tuned backbone does not have the source backbone's layers")
        distance = np.sqrt(sum(np.sum((moved[k] - w) ** 2) for k, w in self.start.items()))
        norm = np.sqrt(sum(np.sum(w ** 2) for w in self.start.values()))
        common = {"method": name, "per_class": per_class, "seed": int(seed),
                  "n_train": None, "seconds": 0.0}
        self.records.append({**common, "kind": "source accuracy", "n_test": int(len(self.y)),
                             "accuracy": self._source_accuracy(backbone)})
        self.records.append({**common, "kind": "distance", "accuracy": float(distance / norm)})

    def _select(self, kind: str):
        from course_lib.experiments import LabelEfficiency

        return LabelEfficiency([{k: v for k, v in r.items() if k != "kind"}
                                for r in self.records if r["kind"] == kind])

    def forgetting(self):
        """Source test accuracy (source head) per run, as a LabelEfficiency."""
        return self._select("source accuracy")

    def distances(self):
        """``||W - W_s|| / ||W_s||`` per run, as a LabelEfficiency (its "accuracy" column)."""
        return self._select("distance")


def _named_capable(backbone: keras.Model) -> dict[str, np.ndarray]:
    """``{"layer/variable": value}`` of the trainable-capable variables of ``backbone``."""
    capable = {id(v) for v in capable_variables(backbone)}
    return {f"{layer.name}/{v.name}": keras.ops.convert_to_numpy(v)
            for layer in backbone.layers for v in layer.weights if id(v) in capable}


def source_checkpoints(recipe: dict, epochs: Sequence[int], seed: int = 0) -> list[dict]:
    """Sources of different quality for the same target: a fresh source model of ``recipe``
    (the "cifar_source" recipe) trained for ``max(epochs)`` epochs (cosine-decayed rate over
    that run, not over the shipped model's 15 epochs), its weights kept after each epoch in
    ``epochs``. Returns one dict per checkpoint: ``{"epochs", "source_accuracy", "model"}``,
    the model a :func:`build_source` model with those weights."""
    epochs = sorted({checks.check_positive_int("epochs", int(e)) for e in epochs})
    x, y = source_data("cifar_source", "train", recipe["sample"])
    x_test, y_test = source_data("cifar_source", "test", recipe["sample"])
    keras.utils.set_random_seed(seed)
    model = build_source(recipe)
    kept = {}
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: kept.update(
            {epoch + 1: model.get_weights()} if epoch + 1 in epochs else {}))
    batches = int(np.ceil(len(y) / recipe["batch_size"]))
    compile_classifier(model, recipe["learning_rate"], total_steps=max(epochs) * batches,
                       optimizer=recipe["optimizer"])
    model.fit(x, y, epochs=max(epochs), batch_size=recipe["batch_size"], shuffle=True,
              verbose=0, callbacks=[keep])
    found = []
    for epoch in epochs:
        copy = build_source(recipe)
        copy.set_weights(kept[epoch])
        found.append({"epochs": epoch, "source_accuracy": accuracy(copy, x_test, y_test),
                      "model": copy})
    return found


# --------------------------------------------------------------------------------------------
# The two silent bugs of fine-tuning, measured.
# --------------------------------------------------------------------------------------------


def _backbone_change(before: list[np.ndarray], backbone: keras.Model) -> int:
    """How many weight arrays of ``backbone`` differ from ``before``."""
    after = [keras.ops.convert_to_numpy(w) for w in backbone.weights]
    return sum(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def trainable_without_recompile(source_model: keras.Model, x: np.ndarray, y: np.ndarray, *,
                                blocks: Sequence[str] = ("block3", "block4"),
                                learning_rate: float = 1e-3, batch_size: int = 32,
                                num_classes: int = 5) -> dict[str, str]:
    """What ``fit`` does when ``trainable`` changed after the model was trained once.

    Case "unfreeze": train the head on the frozen backbone (one epoch), unfreeze ``blocks``,
    call ``fit`` again *without* compiling; case "unfreeze + compile": the same with
    ``compile`` in between; case "freeze": train everything one epoch, freeze the backbone,
    ``fit`` again without compiling. Each case is a fresh model; returns, per case, how many of
    the backbone's weight arrays the second ``fit`` changed, or the error it raised.
    """
    def run(first: bool | Sequence[str], second: bool | Sequence[str], recompile: bool) -> str:
        backbone = transferred_backbone(source_model)
        model = classifier(backbone, num_classes)
        set_trainable(backbone, first)
        compile_classifier(model, learning_rate)
        model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)
        count = set_trainable(backbone, second) + trainable_parameter_count(model.get_layer("head"))
        if recompile:
            compile_classifier(model, learning_rate)
        before = [keras.ops.convert_to_numpy(w) for w in backbone.weights]
        try:
            model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)
        except Exception as error:  # JAX refuses; the point is to show what happens
            text = (str(error).strip().splitlines() or [""])[0]
            return (f"{count:,} parameters marked trainable; fit raised "
                    f"{type(error).__name__}: {text[:110]}...")
        changed = _backbone_change(before, backbone)
        return (f"{count:,} parameters marked trainable; fit changed {changed} of the "
                f"backbone's {len(before)} weight arrays")

    keras.utils.set_random_seed(0)
    return {"unfreeze, no compile": run(False, list(blocks), False),
            "unfreeze + compile": run(False, list(blocks), True),
            "freeze, no compile": run(list(blocks), False, False)}


def batchnorm_statistics(backbone: keras.Model) -> list[np.ndarray]:
    """The moving means and variances of every batch-norm layer of ``backbone``."""
    return [keras.ops.convert_to_numpy(w) for layer in backbone.layers if is_batchnorm(layer)
            for w in (layer.moving_mean, layer.moving_variance)]


def statistics_drift(before: list[np.ndarray], after: list[np.ndarray]) -> float:
    """How far batch norm's moving means moved, in the channels' own standard deviations:
    the mean over every channel of every layer of ``|mu_after - mu_before| / sigma_before``
    with ``sigma_before = sqrt(var_before + 1e-3)`` (batch norm's epsilon). ``before``,
    ``after``: :func:`batchnorm_statistics` lists (mean, variance, mean, variance, ...).
    0 means the statistics did not move; 1 that a channel's mean moved by one of its standard
    deviations on average (a relative change of the mean itself would explode for means near 0)."""
    if len(before) != len(after) or len(before) % 2:
        raise ValueError("`before` and `after` must be batchnorm_statistics lists of equal length "
                         f"(mean, variance pairs), got {len(before)} and {len(after)} arrays")
    shifts = [np.abs(np.asarray(after[i]) - np.asarray(before[i]))
              / np.sqrt(np.asarray(before[i + 1]) + 1e-3) for i in range(0, len(before), 2)]
    return float(np.concatenate([s.ravel() for s in shifts]).mean()) if shifts else 0.0


def inference_mode_is_not_freezing(source_model: keras.Model, x: np.ndarray, y: np.ndarray, *,
                                   batch_size: int = 32, num_classes: int = 5) -> dict:
    """The Keras guide's ``base(inputs, training=False)`` with the base unfrozen (batch norm
    included), one epoch of ``fit``. Returns ``{"weights_changed": bool, "statistics_drift":
    float}``: whether the base's kernels moved (inference mode is not freezing: only
    ``trainable = False`` freezes) and how far batch norm's moving statistics moved
    (:func:`statistics_drift`, in channel standard deviations; 0.0 would mean batch norm stayed
    in inference mode)."""
    backbone = transferred_backbone(source_model)
    backbone.trainable = True
    inputs = keras.Input((32, 32, 3))
    outputs = layers.Dense(num_classes)(backbone(inputs, training=False))
    model = keras.Model(inputs, outputs)
    compile_classifier(model, 1e-4)
    kernels = [keras.ops.convert_to_numpy(la.kernel) for la in backbone.layers
               if isinstance(la, layers.Conv2D)]
    before = batchnorm_statistics(backbone)
    model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)
    after = [keras.ops.convert_to_numpy(la.kernel) for la in backbone.layers
             if isinstance(la, layers.Conv2D)]
    return {"weights_changed": any(not np.array_equal(a, b)
                                   for a, b in zip(after, kernels, strict=True)),
            "statistics_drift": statistics_drift(before, batchnorm_statistics(backbone))}


def l2sp_agreement(source_model: keras.Model, alpha: float, x: np.ndarray, y: np.ndarray,
                   learning_rate: float = 0.1, seed: int = 0) -> dict[str, float]:
    """The Keras L2-SP regulariser against the NumPy reference, on the source backbone moved
    away from its source weights: the penalty Keras adds to the loss vs :func:`l2sp_penalty`,
    and the largest difference between (one SGD step without L2-SP) - (one step with it) and
    ``learning_rate * l2sp_gradient``. Batch norm is frozen, so both steps see the same
    network."""
    rng = np.random.default_rng(seed)
    models = []
    for regularised in (False, True):
        keras.utils.set_random_seed(seed)
        backbone = transferred_backbone(source_model)
        model = classifier(backbone, int(np.max(y)) + 1)
        set_trainable(backbone, True)
        source = [keras.ops.convert_to_numpy(v) for v in backbone.trainable_weights]
        if regularised:
            apply_l2sp(backbone, alpha)
        models.append((backbone, model))
    shift = [0.05 * rng.standard_normal(s.shape).astype(np.float32) for s in source]
    for backbone, _ in models:
        for variable, value, delta in zip(backbone.trainable_weights, source, shift, strict=True):
            variable.assign(value + delta)
    displaced = [s + d for s, d in zip(source, shift, strict=True)]
    keras_penalty = float(sum(keras.ops.convert_to_numpy(v) for v in models[1][1].losses))
    for _, model in models:
        compile_classifier(model, learning_rate, optimizer="sgd", momentum=0.0)
        model.train_on_batch(x, y)
    gradient, _ = l2sp_gradient(displaced, source, alpha)
    worst = max(float(np.max(np.abs(keras.ops.convert_to_numpy(p) - keras.ops.convert_to_numpy(q)
                                    - learning_rate * g)))
                for p, q, g in zip(models[0][0].trainable_weights, models[1][0].trainable_weights,
                                   gradient, strict=True))
    return {"keras_penalty": keras_penalty,
            "numpy_penalty": l2sp_penalty(displaced, source, alpha),
            "step_difference_error": worst,
            "largest_step_difference": float(max(np.max(np.abs(learning_rate * g))
                                                 for g in gradient))}


def first_step_change(source_model: keras.Model, x: np.ndarray, y: np.ndarray, *,
                      head: str = "trained", learning_rate: float = 0.01,
                      blocks: Sequence[str] = ("block3", "block4"), num_classes: int = 5,
                      seed: int = 0) -> float:
    """How far one SGD step on (x, y) moves the unfrozen backbone weights (the norm of the
    change, summed over arrays), starting from a new head that is "random" or "trained"
    first on the frozen features: why the head is trained before anything is unfrozen."""
    checks.check_choice("head", head, ["random", "trained"])
    keras.utils.set_random_seed(seed)
    backbone = transferred_backbone(source_model)
    model = classifier(backbone, num_classes)
    if head == "trained":
        set_trainable(backbone, False)
        model.get_layer("head").set_weights(
            train_head(extract_features(backbone, x), y, num_classes, seed=seed))
    set_trainable(backbone, list(blocks))
    before = [keras.ops.convert_to_numpy(w) for w in backbone.trainable_weights]
    compile_classifier(model, learning_rate, optimizer="sgd", momentum=0.0)
    model.train_on_batch(x, y)
    after = [keras.ops.convert_to_numpy(w) for w in backbone.trainable_weights]
    return float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(after, before, strict=True))))


# --------------------------------------------------------------------------------------------
# The chapter's experiment: data splits and recipe.
# --------------------------------------------------------------------------------------------


def validation_split(y: np.ndarray, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(pool, validation)`` indices of ``y``: ``per_class`` examples of every class drawn for
    validation (seeded), the rest (in their original order) is the pool that labelled subsets
    are drawn from. Validation data is for choosing hyperparameters, never the test set."""
    validation = sample_per_class(y, per_class, seed)
    pool = np.setdiff1d(np.arange(len(y)), validation)
    return pool, np.sort(validation)


def chapter_recipe(fast: bool) -> dict:
    """Budgets, seeds and hyperparameters of the chapter's label-efficiency experiment.

    The values were chosen on the validation split (``validation_per_class`` target training
    images per class, never the test set) while the chapter was written; the notebook re-tunes
    only the L2-SP strength ``alpha``. Fast mode: the shipped sample, two budgets, one seed,
    and step counts set for speed (its learning rates and head prior were checked on its own
    validation split; the numbers it gives are a smoke test, not results).

    The curve stops at 1,000 labels per class (of the pool's 4,500): the whole pool took about
    11 of the chapter's 20 minutes on 2 CPU cores. "fine_tune_all" (every layer but batch norm
    unfrozen, with scratch's batch size, steps and epochs: the matched budget) runs at
    ``all_layers_budgets``; its learning rate is fine-tuning's (1e-3), not tuned separately.
    """
    if fast:
        steps = {"min_steps": 16, "min_epochs": 1, "max_epochs": 8}
        scratch = {"batch_size": 32, "learning_rate": 2e-3, "optimizer": "adam", **steps}
        return {"budgets": [10, 50], "seeds": [0], "validation_per_class": 20,
                "negative_budgets": [10], "all_layers_budgets": [50],
                "head": {"iterations": 300, "learning_rate": 1e-2, "prior": 5.0},
                "fine_tune": {"blocks": ["block3", "block4"], "batch_size": 32,
                              "learning_rate": 3e-4, "optimizer": "adam", **steps},
                "fine_tune_all": {**scratch, "blocks": True, "learning_rate": 3e-4},
                "scratch": scratch,
                "penalty": {"budgets": [10], "alphas": [0.01, 0.1], "beta": 0.01,
                            "tune_seeds": [0], "fine_tune": {**steps, "blocks": True,
                            "batch_size": 32, "learning_rate": 0.01, "optimizer": "sgd"}},
                "source_epochs": [1]}
    scratch = {"batch_size": 64, "learning_rate": 3e-3, "optimizer": "adam",
               "min_steps": 300, "min_epochs": 15, "max_epochs": 100}
    return {"budgets": [10, 25, 100, 500, 1000], "seeds": [0, 1, 2], "validation_per_class": 500,
            "negative_budgets": [10, 100], "all_layers_budgets": [1000],
            "head": {"iterations": 300, "learning_rate": 1e-2, "prior": 20.0},
            "fine_tune": {"blocks": ["block3", "block4"], "batch_size": 32,
                          "learning_rate": 1e-3, "optimizer": "adam", "min_steps": 150,
                          "min_epochs": 3, "max_epochs": 40},
            "fine_tune_all": {**scratch, "blocks": True, "learning_rate": 1e-3},
            "scratch": scratch,
            # L2-SP as Li et al. (2018) run it: every layer (batch norm frozen), SGD with
            # momentum 0.9, the head decayed with beta = 0.01, alpha chosen per budget on the
            # validation split among `alphas` (penalty_sweep), for L2-SP and for L2 toward 0
            "penalty": {"budgets": [10, 100, 1000], "alphas": [0.001, 0.01, 0.1, 1.0],
                        "beta": 0.01, "tune_seeds": [0, 1],
                        "fine_tune": {"blocks": True, "batch_size": 32, "learning_rate": 0.01,
                                      "optimizer": "sgd", "min_steps": 150, "min_epochs": 3,
                                      "max_epochs": 40}},
            # sources of lower quality: the source recipe stopped after 1 and 3 epochs
            "source_epochs": [1, 3]}


PENALTIES = {"L2-SP": "source", "L2": "zero"}
PENALTY_SWEEP = Path(__file__).resolve().parent / "studies" / "l2sp_alpha.json"


def penalty_methods(source_model: keras.Model, recipe: dict,
                    alphas: dict[str, float | dict] | None = None,
                    log: FineTuneLog | None = None) -> dict[str, Method]:
    """The L2-SP comparison's methods (every layer but batch norm, SGD + momentum): "SGD, no
    penalty", and "SGD + L2-SP" / "SGD + L2" with ``alphas[penalty]`` (one value, or one per
    budget); without ``alphas``, one method per value of ``recipe["penalty"]["alphas"]``
    ("SGD + L2-SP, alpha=0.01", ...) for :func:`penalty_sweep`."""
    settings = recipe["penalty"]
    methods = {"SGD, no penalty": fine_tune_method(source_model, settings["fine_tune"],
                                                   recipe["head"], log=log,
                                                   name="SGD, no penalty")}
    for penalty, toward in PENALTIES.items():
        choices = ({f"SGD + {penalty}": alphas[penalty]} if alphas is not None else
                   {f"SGD + {penalty}, alpha={a}": a for a in settings["alphas"]})
        for label, alpha in choices.items():
            methods[label] = fine_tune_method(source_model, settings["fine_tune"], recipe["head"],
                                              alpha=alpha, beta=settings["beta"], toward=toward,
                                              log=log, name=label)
    return methods


def penalty_sweep(source_model: keras.Model, recipe: dict, x_pool: np.ndarray,
                  y_pool: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                  progress: bool = True):
    """Every alpha of ``recipe["penalty"]["alphas"]`` for L2-SP and for L2, at every budget of
    ``recipe["penalty"]["budgets"]`` and seed of its ``tune_seeds``, scored on the
    **validation** split (x_val, y_val); returns the ``experiments.LabelEfficiency``."""
    from course_lib.experiments import label_efficiency

    settings = recipe["penalty"]
    return label_efficiency(penalty_methods(source_model, recipe), x_pool, y_pool, x_val, y_val,
                            budgets=settings["budgets"], seeds=settings["tune_seeds"],
                            progress=progress)


def chosen_alphas(sweep, recipe: dict) -> dict[str, dict[int, float]]:
    """``{"L2-SP": {budget: alpha}, "L2": {...}}``: per penalty and budget, the alpha of the
    best mean validation accuracy over the tuning seeds (ties: the smaller alpha)."""
    settings = recipe["penalty"]
    return {penalty: {budget: max(sorted(settings["alphas"]), key=lambda a: round(
        sweep.mean_sd(f"SGD + {penalty}, alpha={a}", budget)[0], 6))
        for budget in settings["budgets"]} for penalty in PENALTIES}


def load_penalty_sweep(recipe: dict, path: Path | None = None):
    """The stored full-mode :func:`penalty_sweep` (``benchmarks/l2sp_alpha_sweep.py`` writes
    it), as an ``experiments.LabelEfficiency``; a clear error if it is missing, unreadable, or
    was made with another penalty recipe."""
    import json

    from course_lib.experiments import LabelEfficiency

    path = PENALTY_SWEEP if path is None else Path(path)
    try:
        stored = json.loads(path.read_text())
        records, made_with = stored["records"], stored["penalty"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"cannot read the stored alpha sweep {path.name} ({error}); make it "
                         f"again with `python benchmarks/l2sp_alpha_sweep.py`") from None
    if made_with != json.loads(json.dumps(recipe["penalty"])):
        raise ValueError(f"{path.name} was made with another penalty recipe; make it again "
                         f"with `python benchmarks/l2sp_alpha_sweep.py`")
    return LabelEfficiency(records)

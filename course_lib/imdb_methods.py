"""The methods chapter 09 compares on IMDB, all on the same labelled subsets.

Every method is a ``course_lib.experiments`` method on row numbers: ``method(rows, y, seed)``
trains on the label pool's reviews ``rows`` (labels ``y``) and returns a predictor of test row
numbers. Whatever a method chooses (the epoch to stop at, a probe's L2 strength) it chooses on
chapter 09's validation reviews (:mod:`course_lib.imdb_splits`), which no model trained or
pre-trained on; the test reviews only score the returned predictor.

- :func:`word_method`: chapter 05's models on word ids: bag of words (logistic regression on
  which words occur), the BiGRU, and the mean of word embeddings, each from a random embedding
  or from the course's skip-gram vectors (``course_lib.word_vectors``).
- :func:`encoder_method`: the masked-token encoder of ``course_lib.language`` reading the whole
  review as windows of ``max_len - 1`` tokens (their mean vector), as a linear probe on frozen
  features or fine-tuned after the probe (LP-FT: head first, then every layer), pre-trained or
  from scratch with the same recipe.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from course_lib.nn import checks

# Defaults of the training loop (chosen before any test number; see the chapter).
FIT = {"batch_size": 32, "small_batch_size": 16, "small_budget": 400, "min_steps": 300,
       "max_epochs": 50, "eval_steps": 60, "patience": 3}


def fit_with_validation(model, x, y, val: tuple, *, epochs: int, batch_size: int,
                        eval_every: int = 1, patience: int = 3, seed: int = 0) -> dict:
    """Train a compiled ``model`` for at most ``epochs`` epochs, measuring the validation
    accuracy every ``eval_every`` epochs, and keep the weights of the best measurement (stop
    after ``patience`` measurements without improvement). ``val``: (x_val, y_val).
    Returns {"epochs", "best_epoch", "best_val_accuracy", "val_history", "seconds"}."""
    import keras

    epochs = checks.check_positive_int("epochs", epochs)
    eval_every = checks.check_positive_int("eval_every", eval_every)
    keras.utils.set_random_seed(seed)
    best, best_weights, best_epoch, history, waited, done = -1.0, None, 0, [], 0, 0
    start = time.perf_counter()
    while done < epochs:
        chunk = min(eval_every, epochs - done)
        model.fit(x, y, batch_size=batch_size, epochs=chunk, verbose=0, shuffle=True)
        done += chunk
        accuracy = float(np.mean(predict_labels(model, val[0]) == np.asarray(val[1])))
        history.append((done, accuracy))
        if accuracy > best:
            best, best_weights, best_epoch, waited = accuracy, model.get_weights(), done, 0
        else:
            waited += 1
            if waited >= patience:
                break
    model.set_weights(best_weights)
    return {"epochs": done, "best_epoch": best_epoch, "best_val_accuracy": best,
            "val_history": history, "seconds": time.perf_counter() - start}


def predict_scores(model, x, batch_size: int = 256) -> np.ndarray:
    """``model``'s outputs for ``x`` (n, ...) (inference mode), through Keras's compiled
    ``predict`` (a recurrent model called eagerly is many times slower). ``x`` is padded with
    copies of its first row to a whole number of batches, so that every batch has one shape
    and the predict function is traced once per model (a short last batch, or validation and
    test sets of different sizes, would trace it again each time); the padding's outputs are
    dropped."""
    x = np.asarray(x)
    if not len(x):
        raise ValueError("no inputs to predict (an empty array)")
    n = len(x)
    padded = np.concatenate([x, np.repeat(x[:1], -n % batch_size, axis=0)])
    return np.asarray(model.predict(padded, batch_size=batch_size, verbose=0))[:n]


def predict_labels(model, x, batch_size: int = 256) -> np.ndarray:
    """Class ids: argmax of 2 logits, or logit > 0 for one."""
    scores = predict_scores(model, x, batch_size)
    return (scores[:, 0] > 0).astype(int) if scores.shape[1] == 1 else scores.argmax(axis=1)


class ModelPredictor:
    """A predictor of test row numbers backed by a Keras model: ``predictor(rows)`` gives the
    class ids of ``inputs[rows]``; ``predictor.model`` is the trained model."""

    def __init__(self, model, inputs: np.ndarray):
        self.model, self.inputs = model, inputs

    def __call__(self, rows) -> np.ndarray:
        return predict_labels(self.model, self.inputs[rows])


def schedule(n: int, settings: dict | None = None) -> dict:
    """Batch size, epochs and validation interval for ``n`` labelled reviews: a smaller batch
    under ``small_budget`` labels, at least ``min_steps`` optimizer steps (few labels would
    otherwise stop after a handful), validation every ``eval_steps`` steps or every epoch."""
    s = {**FIT, **(settings or {})}
    batch = s["small_batch_size"] if n <= s["small_budget"] else s["batch_size"]
    per_epoch = math.ceil(n / batch)
    epochs = int(np.clip(math.ceil(s["min_steps"] / per_epoch), 1, s["max_epochs"]))
    epochs = max(epochs, s.get("min_epochs", 1))
    eval_every = max(1, round(s["eval_steps"] / per_epoch))
    return {"batch_size": batch, "epochs": epochs, "eval_every": min(eval_every, epochs),
            "patience": s["patience"]}


# -- chapter 05's models on word ids -------------------------------------------------------
WORD_KINDS = ("bow", "bigru", "mean")


def word_method(kind: str, train_ids: np.ndarray, test_ids: np.ndarray, val: tuple, *,
                vocab_size: int, vectors: np.ndarray | None = None, embed_dim: int = 32,
                units: int = 32, embedding_dropout: float = 0.5, learning_rate: float = 1e-3,
                settings: dict | None = None, log: list | None = None):
    """A method on row numbers for chapter 05's models on word ids (n, steps).

    kind: "bow" (logistic regression on the bag of words), "bigru" (chapter 05's BiGRU, mean
    readout), "mean" (the mean of the word embeddings -> Dense). vectors: (vocab, embed_dim)
    initial embedding (skip-gram's), random when None. val: (ids, labels) of the validation
    reviews. ``log`` collects each run's schedule and validation accuracy.
    """
    from course_lib import rnn, word_vectors

    checks.check_choice("kind", kind, list(WORD_KINDS))
    if vectors is not None and kind == "bow":
        raise ValueError("a bag of words has no embedding to initialise")

    def method(rows, y, seed):
        import keras

        plan = schedule(len(y), settings)
        if kind == "mean":
            model = word_vectors.mean_embedding_model(vocab_size, embed_dim, train_ids.shape[1],
                                                      dropout=0.2, seed=seed)
        else:
            model = rnn.sentiment_model(kind, vocab_size, train_ids.shape[1], embed_dim=embed_dim,
                                        units=units, embedding_dropout=embedding_dropout,
                                        readout="mean", seed=seed)
        if vectors is not None:
            word_vectors.initial_embedding(model, vectors)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=keras.losses.BinaryCrossentropy(from_logits=True))
        run = fit_with_validation(model, train_ids[rows], np.asarray(y, np.float32), val,
                                  seed=seed, **plan)
        if log is not None:
            log.append({"kind": kind, "pretrained": vectors is not None, "n": len(y),
                        "seed": seed, **{k: v for k, v in run.items() if k != "val_history"},
                        **plan})
        return ModelPredictor(model, test_ids)

    return method


# -- the masked-token encoder on whole reviews ---------------------------------------------
def encode_review_windows(vocabulary, texts: Sequence[str], max_len: int,
                          windows: int) -> np.ndarray:
    """int32 (n, windows, max_len): each review's first ``windows`` windows of ``max_len - 1``
    tokens, each with [CLS] in front (as in pre-training); a review with fewer windows gets
    all-zero (empty) ones after its last."""
    from course_lib.language import CLS, standardize

    max_len = checks.check_positive_int("max_len", max_len)
    windows = checks.check_positive_int("windows", windows)
    width = max_len - 1
    out = np.zeros((len(texts), windows, max_len), np.int32)
    for row, text in enumerate(texts):
        tokens = [vocabulary.index.get(t, 1) for t in standardize(text)][:width * windows]
        for k in range(max(1, math.ceil(len(tokens) / width))):
            part = tokens[k * width:(k + 1) * width]
            out[row, k, 0] = CLS
            out[row, k, 1:1 + len(part)] = part
    return out


def review_classifier(config: dict, windows: int, encoder=None, dropout: float = 0.1,
                      num_classes: int = 2):
    """token ids (batch, windows, max_len) -> logits (batch, num_classes): the encoder reads
    each window, a window's vector is the mean of its token vectors (padding left out), the
    review's vector the mean over its non-empty windows, then Dropout and a Dense layer named
    "head". ``encoder``: a (pre-trained) ``language.build_encoder`` model, a new random one when
    None. Layers "window_vectors" (the per-window model) and "review_vector" expose the
    features."""
    import keras
    from keras import layers, ops

    from course_lib import language

    encoder = language.build_encoder(config) if encoder is None else encoder
    masked_mean = language.masked_mean_layer()
    ids = keras.Input((config["max_len"],), dtype="int32", name="window_ids")
    per_window = keras.Model(ids, masked_mean(name="mean_over_tokens")(encoder(ids), ids),
                             name="window_vectors")

    class PerWindow(layers.Layer):
        """(batch, windows, max_len) -> (batch, windows, dim): ``per_window`` on every window."""

        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

        def call(self, x):
            flat = ops.reshape(x, (-1, config["max_len"]))
            return ops.reshape(self.inner(flat), (-1, windows, config["dim"]))

    class WindowMean(layers.Layer):
        """(vectors (batch, windows, dim), ids (batch, windows, max_len)) -> (batch, dim): the
        mean over the windows that hold tokens."""

        def call(self, vectors, x):
            present = ops.cast(ops.not_equal(x[:, :, 0], 0), vectors.dtype)[..., None]
            return ops.sum(vectors * present, axis=1) / ops.maximum(ops.sum(present, axis=1), 1)

    x = keras.Input((windows, config["max_len"]), dtype="int32", name="review_windows")
    vectors = PerWindow(per_window, name="per_window")(x)
    review = WindowMean(name="review_vector")(vectors, x)
    logits = layers.Dense(num_classes, name="head")(layers.Dropout(dropout, name="dropout")(review))
    return keras.Model(x, logits, name="review_classifier")


def review_features(model, x: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """The review vectors (n, dim) of a :func:`review_classifier` in inference mode."""
    import keras

    features = keras.Model(model.input, model.get_layer("review_vector").output)
    return predict_scores(features, x, batch_size).astype(np.float32)


def choose_probe(features: np.ndarray, y: np.ndarray, val_features: np.ndarray,
                 val_y: np.ndarray, grid: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1),
                 seed: int = 0) -> tuple[tuple[np.ndarray, np.ndarray], float, float]:
    """A linear probe (``finetuning.train_head``, softmax regression) on frozen features, its
    L2 strength chosen on the validation features: ``((W, b), l2, validation accuracy)``."""
    from course_lib.finetuning import train_head

    best = None
    for l2 in grid:
        head = train_head(features, y, 2, iterations=300, learning_rate=1e-2, l2=l2, seed=seed)
        accuracy = float(np.mean((val_features @ head[0] + head[1]).argmax(1) == val_y))
        if best is None or accuracy > best[2]:
            best = (head, l2, accuracy)
    return best


def encoder_method(config: dict, encoder_weights: list | None, train_x: np.ndarray,
                   test_x: np.ndarray, val: tuple, *, mode: str = "lp-ft",
                   peak_lr: float = 3e-4, embedding: str = "trainable", dropout: float = 0.1,
                   settings: dict | None = None, log: list | None = None,
                   feature_cache: dict | None = None):
    """A method on row numbers for the encoder on whole reviews (``train_x``, ``test_x``:
    (n, windows, max_len) from :func:`encode_review_windows`; ``val``: (windows ids, labels)).

    mode "probe": a linear probe on the frozen encoder's review vectors (L2 chosen on
    validation). mode "lp-ft": that probe initialises the head, then every layer is fine-tuned
    with AdamW (warm-up, linear decay to 0, peak ``peak_lr``), early-stopped on validation;
    ``embedding="frozen"`` keeps the token and position embeddings fixed. ``encoder_weights``:
    the pre-trained encoder's, or None for the same encoder from a random start (the same
    recipe). ``feature_cache``: a dict that keeps the frozen features of fixed weights between
    calls (one pass over the pool, validation and test reviews serves every seed).
    """
    import keras

    from course_lib import language

    checks.check_choice("mode", mode, ["probe", "lp-ft"])
    checks.check_choice("embedding", embedding, ["trainable", "frozen"])
    windows = train_x.shape[1]

    def build(seed):
        keras.utils.set_random_seed(seed)
        encoder = language.build_encoder({**config, "dropout": dropout})
        if encoder_weights is not None:
            encoder.set_weights(encoder_weights)
        return review_classifier(config, windows, encoder, dropout=dropout)

    def frozen_features(model, seed, rows):
        """Features of the pool rows, validation and test (cached when the weights are fixed)."""
        key = "pretrained" if encoder_weights is not None else f"random-{seed}"
        cache = feature_cache if (feature_cache is not None and encoder_weights is not None) \
            else {}
        if key not in cache:
            cache[key] = {"val": review_features(model, val[0]), "pool": {}, "test": None}
        entry = cache[key]
        missing = [r for r in rows if r not in entry["pool"]]
        if missing:
            for r, f in zip(missing, review_features(model, train_x[missing]), strict=True):
                entry["pool"][r] = f
        return entry, np.stack([entry["pool"][r] for r in rows])

    def method(rows, y, seed):
        rows = [int(r) for r in rows]
        y = np.asarray(y)
        model = build(seed)
        entry, features = frozen_features(model, seed, rows)
        head, l2, probe_val = choose_probe(features, y, entry["val"], np.asarray(val[1]), seed=seed)
        record = {"mode": mode, "pretrained": encoder_weights is not None, "n": len(y),
                  "seed": seed, "probe_l2": l2, "probe_val_accuracy": probe_val}
        if mode == "probe":
            if entry["test"] is None:
                entry["test"] = review_features(model, test_x)
            test_features = entry["test"]
            if log is not None:
                log.append(record)
            return lambda test_rows: (test_features[test_rows] @ head[0] + head[1]).argmax(1)
        model.get_layer("head").set_weights([head[0], head[1]])
        encoder = model.get_layer("per_window").inner.get_layer("encoder")
        encoder.trainable = True
        if embedding == "frozen":
            encoder.get_layer("embedding").trainable = False
        plan = schedule(len(y), settings)
        steps = plan["epochs"] * math.ceil(len(y) / plan["batch_size"])
        model.compile(optimizer=language.adamw(peak_lr, steps),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        run = fit_with_validation(model, train_x[rows], y, val, seed=seed, **plan)
        if log is not None:
            log.append({**record, "peak_lr": peak_lr, "embedding": embedding,
                        **{k: v for k, v in run.items() if k != "val_history"}, **plan})
        return ModelPredictor(model, test_x)

    return method

"""Static word vectors: skip-gram with negative sampling (Mikolov et al., 2013), in NumPy and
Keras, trained on chapter 09's pre-training corpus, and the classifiers they initialise.

Skip-gram reads text as pairs (centre word ``w``, context word ``c``) taken within a window and
learns two tables, input vectors ``v`` and output vectors ``u``, so that ``u_c · v_w`` is large
for pairs that occur and small for ``k`` "negative" words ``n_1..n_k`` drawn from the unigram
distribution raised to the power 3/4. Per pair the loss is

    L(w, c) = -log σ(u_c · v_w) - Σ_j log σ(-u_{n_j} · v_w),

with gradients ``∂L/∂v_w = (σ(u_c·v_w) - 1) u_c + Σ_j σ(u_{n_j}·v_w) u_{n_j}``,
``∂L/∂u_c = (σ(u_c·v_w) - 1) v_w`` and ``∂L/∂u_{n_j} = σ(u_{n_j}·v_w) v_w``.
Frequent words are subsampled (a token of frequency ``f`` is kept with probability
``min(1, sqrt(t/f) + t/f)``), and the window is drawn uniformly in ``1..window`` for each centre,
as in word2vec. :func:`sgns_loss_and_grads` is the NumPy reference (gradient-checked);
:func:`train_sgns` trains the same objective with Keras.

Token ids come from any tokeniser with 0 = padding and 1 = unknown word (both never centres,
contexts or negatives): chapter 09 uses chapter 05's vectoriser, so the vectors can initialise
chapter 05's recurrent model (:func:`initial_embedding`). Registered in ``course_lib.pretrained``
as ``imdb_sgns``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from course_lib.nn import checks

PAD, UNK = 0, 1


# -- the NumPy reference ---------------------------------------------------------------------
def _sigmoid(z: np.ndarray) -> np.ndarray:
    """A numerically stable logistic function."""
    out = np.empty_like(z, dtype=np.float64)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    e = np.exp(z[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    """log σ(z) = -log(1 + e^{-z}), stable for large |z|."""
    return -np.logaddexp(0.0, -z)


def sgns_loss_and_grads(v: np.ndarray, u: np.ndarray, centers: np.ndarray, contexts: np.ndarray,
                        negatives: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The mean skip-gram negative-sampling loss over a batch of pairs and its gradients.

    v, u: input and output vectors (vocab, dim); centers, contexts: int (b,); negatives: int
    (b, k). Returns ``(loss, dv (vocab, dim), du (vocab, dim))``, gradients of the mean loss
    (rows of words absent from the batch are zero).
    """
    v = checks.as_float_array("v", v, ndim=2)
    u = checks.as_float_array("u", u, ndim=2)
    checks.check_same_shape("v", v, "u", u)
    centers = checks.as_index_array("centers", centers, ndim=1, upper=len(v))
    contexts = checks.as_index_array("contexts", contexts, ndim=1, upper=len(v))
    negatives = checks.as_index_array("negatives", negatives, ndim=2, upper=len(v))
    if not len(centers) == len(contexts) == len(negatives):
        raise ValueError(f"centers, contexts and negatives must have the same length, got "
                         f"{len(centers)}, {len(contexts)} and {len(negatives)}")
    b = len(centers)
    vw = v[centers]                                   # (b, d)
    uc = u[contexts]                                  # (b, d)
    un = u[negatives]                                 # (b, k, d)
    pos = np.sum(uc * vw, axis=1)                     # (b,)
    neg = np.einsum("bkd,bd->bk", un, vw)             # (b, k)
    loss = float(-(_log_sigmoid(pos).sum() + _log_sigmoid(-neg).sum()) / b)
    g_pos = (_sigmoid(pos) - 1.0) / b                 # ∂L/∂pos
    g_neg = _sigmoid(neg) / b                         # ∂L/∂neg
    dv = np.zeros_like(v)
    du = np.zeros_like(u)
    np.add.at(dv, centers, g_pos[:, None] * uc + np.einsum("bk,bkd->bd", g_neg, un))
    np.add.at(du, contexts, g_pos[:, None] * vw)
    np.add.at(du, negatives.ravel(), (g_neg[:, :, None] * vw[:, None, :]).reshape(-1, v.shape[1]))
    return loss, dv, du


# -- pairs from text -------------------------------------------------------------------------
def token_counts(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """How often each id occurs in ``ids`` (any shape; padding counted too): int64 (vocab,)."""
    return np.bincount(np.asarray(ids).ravel(), minlength=vocab_size)[:vocab_size]


def negative_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """word2vec's noise distribution: counts ** power, normalised; padding and [UNK] get 0."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    weights[[PAD, UNK]] = 0.0
    if weights.sum() <= 0:
        raise ValueError("no word to draw negatives from (every count is zero)")
    return weights / weights.sum()


def keep_probability(counts: np.ndarray, t: float = 1e-4) -> np.ndarray:
    """word2vec's subsampling: a token of frequency f is kept with min(1, sqrt(t/f) + t/f)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts[2:].sum()
    f = np.where(counts > 0, counts / max(total, 1.0), 1.0)
    return np.minimum(1.0, np.sqrt(t / f) + t / f)


def skipgram_pairs(ids: np.ndarray, window: int, rng: np.random.Generator,
                   keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(centres (m,), contexts (m,)) of every pair within a random window of each centre.

    ids: int (n, steps), 0 = padding, 1 = unknown (both dropped first); keep: per-id
    probability of keeping a token (subsampling, :func:`keep_probability`), None keeps all.
    Each centre draws its window size uniformly from 1..window (nearer words count more).
    """
    ids = np.asarray(ids)
    window = checks.check_positive_int("window", window)
    if ids.ndim != 2:
        raise ValueError(f"`ids` must be (reviews, steps), got shape {ids.shape}")
    alive = ids > UNK
    if keep is not None:
        alive &= rng.random(ids.shape) < keep[ids]
    # Compact each row: the kept tokens, in order, left-aligned (the window counts kept tokens).
    order = np.argsort(~alive, axis=1, kind="stable")
    packed = np.take_along_axis(ids, order, axis=1)
    lengths = alive.sum(axis=1)
    steps = packed.shape[1]
    position = np.arange(steps)[None, :]
    radius = rng.integers(1, window + 1, size=packed.shape)
    centres, contexts = [], []
    for offset in range(1, window + 1):
        for sign in (-1, 1):
            other = position + sign * offset
            ok = ((position < lengths[:, None]) & (other >= 0) & (other < lengths[:, None])
                  & (radius >= offset))
            rows, cols = np.nonzero(ok)
            centres.append(packed[rows, cols])
            contexts.append(packed[rows, cols + sign * offset])
    return np.concatenate(centres), np.concatenate(contexts)


# -- Keras -----------------------------------------------------------------------------------
def sgns_model(vocab_size: int, dim: int, negatives: int, seed: int = 0):
    """{"centre" (b,), "context" (b,), "negatives" (b, k)} -> logits (b, 1 + k): the score of
    the true context first, then of each negative. Trained with binary cross-entropy against
    targets [1, 0, ..., 0] it minimises the skip-gram loss. Layers "input_vectors" (v) and
    "output_vectors" (u); v starts uniform in ±0.5/dim and u at 0, as in word2vec."""
    import keras
    from keras import layers, ops

    vocab_size = checks.check_positive_int("vocab_size", vocab_size)
    dim = checks.check_positive_int("dim", dim)
    negatives = checks.check_positive_int("negatives", negatives)
    keras.utils.set_random_seed(seed)
    centre = keras.Input((), dtype="int32", name="centre")
    context = keras.Input((), dtype="int32", name="context")
    noise = keras.Input((negatives,), dtype="int32", name="negatives")
    v = layers.Embedding(vocab_size, dim, name="input_vectors",
                         embeddings_initializer=keras.initializers.RandomUniform(-0.5 / dim,
                                                                                 0.5 / dim))
    u = layers.Embedding(vocab_size, dim, name="output_vectors", embeddings_initializer="zeros")
    vw = v(centre)                                                  # (b, d)
    candidates = layers.Concatenate(axis=1)([ops.expand_dims(context, 1), noise])   # (b, 1 + k)
    scores = ops.einsum("bkd,bd->bk", u(candidates), vw)            # (b, 1 + k)
    return keras.Model({"centre": centre, "context": context, "negatives": noise}, scores,
                       name="skipgram")


def sgns_loss(targets, logits):
    """Sum over the 1 + k candidates of the binary cross-entropy (from logits), mean over pairs:
    the skip-gram negative-sampling loss of :func:`sgns_loss_and_grads`."""
    from keras import ops

    targets = ops.cast(targets, logits.dtype)
    per = ops.maximum(logits, 0) - logits * targets + ops.log1p(ops.exp(-ops.abs(logits)))
    return ops.sum(per, axis=-1)


def train_sgns(model, ids: np.ndarray, *, epochs: int, window: int, negatives: int,
               subsample: float, learning_rate: float, batch_size: int, seed: int = 0,
               chunk_reviews: int = 4000, verbose: bool = True) -> dict:
    """Train :func:`sgns_model` on token ids (reviews, steps): per epoch, pairs are drawn anew
    (random windows, subsampling, negatives) chunk by chunk of reviews, with Adam at a learning
    rate decaying linearly to 0. Returns {"loss_history", "pairs_per_epoch", "seconds",
    "pairs_per_second"}."""
    import keras

    from course_lib.progress import progress_bar

    vocab_size = model.get_layer("input_vectors").input_dim
    counts = token_counts(ids, vocab_size)
    noise = negative_distribution(counts)
    keep = keep_probability(counts, subsample)
    rng = np.random.default_rng(seed)
    expected = int(sum(len(skipgram_pairs(ids[i:i + 500], window, np.random.default_rng(seed),
                                           keep)[0]) for i in range(0, min(len(ids), 2000), 500))
                   * len(ids) / min(len(ids), 2000))
    total_steps = max(1, epochs * math.ceil(expected / batch_size))
    schedule = keras.optimizers.schedules.PolynomialDecay(learning_rate, total_steps,
                                                          end_learning_rate=learning_rate * 1e-3)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=sgns_loss)
    losses, pairs_seen, start = [], [], time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(ids))
        bar = progress_bar(total=len(ids), desc=f"skip-gram pass {epoch + 1}/{epochs}",
                           unit="review", disable=not verbose)
        total, weight, pairs = 0.0, 0, 0
        for first in range(0, len(ids), chunk_reviews):
            chunk = ids[order[first:first + chunk_reviews]]
            centres, contexts = skipgram_pairs(chunk, window, rng, keep)
            shuffle = rng.permutation(len(centres))
            centres, contexts = centres[shuffle], contexts[shuffle]
            noise_ids = rng.choice(vocab_size, size=(len(centres), negatives), p=noise)
            targets = np.zeros((len(centres), 1 + negatives), np.float32)
            targets[:, 0] = 1.0
            history = model.fit({"centre": centres, "context": contexts, "negatives": noise_ids},
                                targets, batch_size=batch_size, epochs=1, verbose=0,
                                shuffle=False)
            total += history.history["loss"][-1] * len(centres)
            weight += len(centres)
            pairs += len(centres)
            bar.update(len(chunk))
        bar.close()
        losses.append(total / max(weight, 1))
        pairs_seen.append(pairs)
        if verbose:
            print(f"  pass {epoch + 1}/{epochs}: loss {losses[-1]:.4f} over {pairs:,} pairs",
                  flush=True)
    seconds = time.perf_counter() - start
    return {"loss_history": [round(x, 5) for x in losses], "pairs_per_epoch": pairs_seen,
            "seconds": round(seconds, 1), "pairs_per_second": round(sum(pairs_seen) / seconds)}


def input_vectors(model) -> np.ndarray:
    """The learnt word vectors v (vocab, dim) of a :func:`sgns_model`."""
    return np.asarray(model.get_layer("input_vectors").get_weights()[0])


def nearest_words(vectors: np.ndarray, vocabulary: Sequence[str], word: str,
                  top: int = 5) -> list[tuple[str, float]]:
    """The ``top`` words whose vectors have the largest cosine similarity with ``word``'s."""
    vocabulary = list(vocabulary)
    if word not in vocabulary:
        raise ValueError(f"{word!r} is not in the vocabulary")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit[vocabulary.index(word)]
    similarity[[PAD, UNK, vocabulary.index(word)]] = -np.inf
    best = np.argsort(-similarity)[:top]
    return [(vocabulary[i], float(similarity[i])) for i in best]


# -- what the vectors initialise -------------------------------------------------------------
def mean_embedding_model(vocab_size: int, dim: int, sequence_length: int | None = None, *,
                         vectors: np.ndarray | None = None, trainable: bool = True,
                         dropout: float = 0.0, seed: int | None = None):
    """token ids (batch, steps) -> logit (batch, 1): the mean of the word vectors of the review's
    tokens (padding masked) -> Dropout -> Dense(1). ``vectors`` (vocab, dim): initial embedding
    (e.g. skip-gram's), random when None; ``trainable=False`` keeps it fixed (then the model is a
    logistic regression on the averaged pre-trained vectors)."""
    import keras
    from keras import layers

    if seed is not None:
        keras.utils.set_random_seed(seed)
    ids = keras.Input((sequence_length,), dtype="int32", name="token_ids")
    embedding = layers.Embedding(vocab_size, dim, mask_zero=True, name="embedding",
                                 trainable=trainable)
    h = layers.GlobalAveragePooling1D(name="mean_over_tokens")(embedding(ids))
    if dropout:
        h = layers.Dropout(dropout, name="dropout")(h)
    model = keras.Model(ids, layers.Dense(1, name="logit")(h), name="mean_embedding")
    if vectors is not None:
        vectors = checks.as_float_array("vectors", vectors, ndim=2)
        if vectors.shape != (vocab_size, dim):
            raise ValueError(f"`vectors` must be (vocab_size, dim) = {(vocab_size, dim)}, got "
                             f"{vectors.shape}")
        embedding.set_weights([vectors.astype(np.float32)])
    return model


def initial_embedding(model, vectors: np.ndarray, layer: str = "embedding") -> None:
    """Copy ``vectors`` (vocab, dim) into ``model``'s embedding layer (shapes must match)."""
    target = model.get_layer(layer)
    shape = tuple(target.get_weights()[0].shape)
    if tuple(np.shape(vectors)) != shape:
        raise ValueError(f"the vectors have shape {np.shape(vectors)}, the layer {layer!r} of "
                         f"{model.name!r} {shape}")
    target.set_weights([np.asarray(vectors, dtype=np.float32)])


# -- the course's own word vectors: pretrained.REGISTRY["imdb_sgns"] -----------------------
def sgns_recipe(fast: bool) -> dict:
    """The recipe of ``imdb_sgns``: skip-gram on chapter 09's pre-training corpus (the same
    reviews as ``imdb_mlm``: never a validation or test review), tokenised by chapter 05's
    vectoriser with a vocabulary counted on that corpus; 32-dimensional vectors, the size of
    chapter 05's embedding, so they can initialise its BiGRU."""
    from course_lib.imdb_splits import VALIDATION_PER_CLASS, VALIDATION_SEED

    return {
        "data": "imdb: the training reviews except chapter 09's 1,000 validation reviews, plus "
                "the 50,000 unlabelled reviews, without reviews whose text is also a test "
                "review; never a validation or test review",
        "validation": {"per_class": VALIDATION_PER_CLASS["fast" if fast else "full"],
                       "seed": VALIDATION_SEED},
        "sample": bool(fast),
        "tokenizer": "chapter 05's vectoriser (keras TextVectorization defaults), vocabulary "
                     "counted on the corpus",
        "vocab_size": 5000 if fast else 20000,
        "sequence_length": 1024,
        "dim": 16 if fast else 32,
        "window": 5,
        "negatives": 5,
        "subsample": 1e-4,
        "epochs": 2 if fast else 3,
        "learning_rate": 1e-2,
        "batch_size": 4096,
        "seed": 0,
    }


def _sgns_build(recipe: dict):
    return sgns_model(recipe["vocab_size"], recipe["dim"], recipe["negatives"], recipe["seed"])


def _sgns_train(model, recipe: dict, verbose: bool) -> dict:
    from course_lib import rnn
    from course_lib.imdb_splits import imdb_splits

    splits = imdb_splits(sample=recipe["sample"], seed=recipe["validation"]["seed"],
                         validation_per_class=recipe["validation"]["per_class"])
    texts = list(rnn.clean_reviews(splits.pretraining_texts()))
    vectorizer = rnn.make_vectorizer(texts, recipe["vocab_size"], recipe["sequence_length"])
    if vectorizer.vocab_size != recipe["vocab_size"]:
        raise ValueError(f"the corpus has only {vectorizer.vocab_size} distinct tokens, fewer "
                         f"than vocab_size={recipe['vocab_size']}")
    ids = vectorizer(texts)
    if verbose:
        print(f"  corpus: {len(texts):,} reviews, {int((ids > UNK).sum()):,} tokens in the "
              f"vocabulary of {vectorizer.vocab_size:,}", flush=True)
    result = train_sgns(model, ids, epochs=recipe["epochs"], window=recipe["window"],
                        negatives=recipe["negatives"], subsample=recipe["subsample"],
                        learning_rate=recipe["learning_rate"], batch_size=recipe["batch_size"],
                        seed=recipe["seed"], verbose=verbose)
    import hashlib

    return {**result, "reviews": len(texts),
            "vocabulary_sha256": hashlib.sha256("\n".join(vectorizer.vocabulary).encode())
            .hexdigest(),
            "vocabulary": vectorizer.vocabulary}


def sgns_spec():
    """``pretrained.REGISTRY["imdb_sgns"]``: the course's skip-gram word vectors."""
    from course_lib.pretrained import PretrainSpec

    return PretrainSpec("imdb_sgns",
                        "skip-gram word vectors (32-d) on IMDB's training (minus chapter 09's "
                        "validation) and unlabelled reviews", sgns_recipe, _sgns_build,
                        _sgns_train, data=("imdb",))


def pretrained_vectors(fast: bool | None = None, verbose: bool = True):
    """``(vectors (vocab, dim), vocabulary, meta)`` of the course's ``imdb_sgns`` (the cache,
    the shipped copy, or trained once); the vocabulary is checked against its fingerprint."""
    import hashlib

    from course_lib import pretrained

    model, meta = pretrained.get_or_train("imdb_sgns", fast=fast, verbose=verbose)
    vocabulary = meta["results"].get("vocabulary")
    if (not isinstance(vocabulary, list) or hashlib.sha256("\n".join(vocabulary).encode())
            .hexdigest() != meta["results"].get("vocabulary_sha256")):
        raise pretrained.CorruptModelError("the imdb_sgns model's stored vocabulary is missing "
                                           "or does not match its fingerprint; run `course "
                                           "pretrain imdb_sgns --force`")
    return input_vectors(model), vocabulary, meta

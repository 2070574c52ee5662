"""Chapter 09: a small BERT-style encoder, pre-trained by masked-token prediction on the IMDB
training reviews and fine-tuned for sentiment (document 002, sections 4.3 and 5).

- Tokens: :class:`Vocabulary` (words and punctuation, the most frequent ``size``; pure Python, so
  it runs on every Keras backend, unlike ``keras.layers.TextVectorization``, which needs
  TensorFlow) and :class:`WordPiece` (BERT's greedy longest-match-first sub-word split).
- The encoder, from Keras layers: :class:`TokenAndPositionEmbedding`, :func:`encoder_block`
  (multi-head self-attention, feed-forward, residuals, layer norm), :func:`build_encoder`.
- Masked-token pre-training: :func:`mask_tokens` (BERT's 15 % and 80/10/10 rule),
  :func:`build_pretraining_model` (output layer tied to the token embedding), on every window
  of each training review (:meth:`Vocabulary.encode_windows`), registered as ``imdb_mlm`` in
  ``course_lib.pretrained``.
- Fine-tuning: :func:`build_classifier` ([CLS] -> pooled -> logits), :func:`finetune_method`
  (AdamW with warm-up, early stopping on a validation split of the labelled data).
- A real checkpoint: :func:`keras_hub_classifier` (KerasHub preset or local folder).
- Errata stand-ins for document 002's PyTorch code.

Token ids: 0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP], 4 [MASK], then words by frequency. Ids below
``N_SPECIAL`` are never masked and never drawn as random replacements.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from course_lib.imdb_splits import VALIDATION_SEED
from course_lib.nn import checks

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(5)
N_SPECIAL = len(SPECIAL_TOKENS)

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


# -- tokenisation ---------------------------------------------------------------------------
def standardize(text: str) -> list[str]:
    """Lower-case words (with an apostrophe part: "don't") and single punctuation marks;
    the dataset's ``<br />`` tags become spaces."""
    if not isinstance(text, str):
        raise ValueError(f"`text` must be a str, got {type(text).__name__}")
    return _TOKEN.findall(text.replace("<br />", " ").lower())


def _texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise ValueError("`texts` must be a sequence of str (one per review), got one str")
    texts = list(texts)
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise ValueError(f"`texts` must hold only str, found {bad[0]} ({len(bad)} of {len(texts)})")
    return texts


class Vocabulary:
    """Word-level vocabulary: the special tokens, then the ``size - 5`` most frequent tokens
    (ties broken alphabetically, so the same texts always give the same ids)."""

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tuple(tokens[:N_SPECIAL]) != SPECIAL_TOKENS or len(set(tokens)) != len(tokens):
            raise ValueError(f"`tokens` must start with {SPECIAL_TOKENS} and hold no duplicates")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, texts: Iterable[str], size: int) -> Vocabulary:
        """Count the tokens of ``texts`` and keep the ``size`` most frequent (with the specials)."""
        size = checks.check_positive_int("size", size)
        if size <= N_SPECIAL:
            raise ValueError(f"`size` must exceed the {N_SPECIAL} special tokens, got {size}")
        counts = Counter()
        for text in _texts(texts):
            counts.update(standardize(text))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls([*SPECIAL_TOKENS, *(t for t, _ in ranked[:size - N_SPECIAL])])

    def __len__(self) -> int:
        return len(self.tokens)

    def sha256(self) -> str:
        """A fingerprint of the token list (stored with a pre-trained model)."""
        return hashlib.sha256("\n".join(self.tokens).encode()).hexdigest()

    def _ids(self, text: str) -> list[int]:
        return [self.index.get(t, UNK) for t in standardize(text)]

    @staticmethod
    def _rows(token_lists: Sequence[list[int]], max_len: int) -> np.ndarray:
        """int32 (len(token_lists), max_len): [CLS], the tokens, then [PAD] (0)."""
        ids = np.zeros((len(token_lists), max_len), np.int32)
        ids[:, 0] = CLS
        for row, tokens in enumerate(token_lists):
            ids[row, 1:1 + len(tokens)] = tokens
        return ids

    def encode(self, texts: Iterable[str], max_len: int) -> np.ndarray:
        """int32 ``(n, max_len)``: [CLS], the first ``max_len - 1`` tokens (unknown ones as
        [UNK]), then [PAD] (0) up to ``max_len``."""
        max_len = checks.check_positive_int("max_len", max_len)
        return self._rows([self._ids(text)[:max_len - 1] for text in _texts(texts)], max_len)

    def encode_windows(self, texts: Iterable[str], max_len: int, min_tokens: int = 1) -> np.ndarray:
        """int32 ``(windows, max_len)``: every review cut into consecutive windows of
        ``max_len - 1`` tokens, each with [CLS] in front and [PAD] after a short last window;
        a last window shorter than ``min_tokens`` is dropped (never a review's first one).
        Pre-training reads all of each review this way; :meth:`encode` keeps its beginning."""
        max_len = checks.check_positive_int("max_len", max_len)
        min_tokens = checks.check_positive_int("min_tokens", min_tokens)
        if max_len < 2:
            raise ValueError(f"`max_len` must leave room for [CLS] and a token, got {max_len}")
        width, windows = max_len - 1, []
        for text in _texts(texts):
            tokens = self._ids(text)
            windows.append(tokens[:width])
            windows += [tokens[start:start + width] for start in range(width, len(tokens), width)
                        if len(tokens) - start >= min_tokens]
        return self._rows(windows, max_len)

    def decode(self, ids: Iterable[int], skip_padding: bool = True) -> str:
        """The tokens of ``ids`` joined by spaces ([PAD] left out unless ``skip_padding=False``)."""
        return " ".join(self.tokens[int(i)] for i in ids if not (skip_padding and int(i) == PAD))


def lengths_in_tokens(texts: Iterable[str]) -> np.ndarray:
    """Number of tokens (words and punctuation) of each text, int64 ``(n,)``."""
    return np.array([len(standardize(t)) for t in _texts(texts)], dtype=np.int64)


class WordPiece:
    """BERT's sub-word tokenizer: each word is split greedily into the longest pieces found in
    the vocabulary, pieces after the first marked "##"; a word with no split becomes [UNK].

    ``WordPiece.build`` makes a small vocabulary by counting (frequent whole words, then
    frequent word beginnings and "##" endings of the rarer words); BERT's own 30,522 pieces
    were learnt on Wikipedia and books with a likelihood criterion, but split words the same way.
    """

    def __init__(self, pieces: Iterable[str], max_chars: int = 100):
        self.pieces = set(pieces)
        self.max_chars = max_chars

    @classmethod
    def build(cls, texts: Iterable[str], words: int = 3000, pieces: int = 1000) -> WordPiece:
        """Vocabulary: all single characters (and "##" + character), the ``words`` most frequent
        words, and the ``pieces`` most frequent beginnings / "##"endings (2-6 characters) of
        the other words."""
        counts = Counter()
        for text in _texts(texts):
            counts.update(standardize(text))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        whole = {w for w, _ in ranked[:words]}
        parts = Counter()
        for word, n in ranked[words:]:
            for size in range(2, min(6, len(word) - 1) + 1):
                parts[word[:size]] += n
                parts["##" + word[-size:]] += n
        chars = {c for w in counts for c in w}
        best = sorted(parts.items(), key=lambda item: (-item[1], item[0]))[:pieces]
        return cls(whole | chars | {"##" + c for c in chars} | {p for p, _ in best})

    def split_word(self, word: str) -> list[str]:
        """The pieces of one word, e.g. "unwatchable" -> ["un", "##watch", "##able"]."""
        if len(word) > self.max_chars:
            return ["[UNK]"]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.pieces:
                    break
                end -= 1
            if end == start:
                return ["[UNK]"]
            out.append(piece)
            start = end
        return out

    def tokenize(self, text: str) -> list[str]:
        """All pieces of ``text`` (standardised as :func:`standardize`)."""
        return [p for word in standardize(text) for p in self.split_word(word)]


def text_vectorization_layer(vocabulary: Vocabulary, max_len: int):
    """``keras.layers.TextVectorization`` with this vocabulary, for text standardised with
    :func:`standardize` and joined by spaces (TensorFlow only; it gives the ids of
    ``vocabulary.encode`` without the leading [CLS])."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise ImportError(
            "keras.layers.TextVectorization needs TensorFlow, which is not installed (on JAX "
            "or PyTorch use course_lib.language.Vocabulary, which gives the same ids)"
        ) from None
    import keras

    return keras.layers.TextVectorization(
        standardize=None, split="whitespace", output_sequence_length=max_len,
        vocabulary=vocabulary.tokens[2:])  # the layer puts "" (padding) and "[UNK]" at 0 and 1


# -- BERT's masking rule --------------------------------------------------------------------
def mask_tokens(ids, rng: np.random.Generator, vocab_size: int, rate: float = 0.15,
                n_special: int = N_SPECIAL, mask_id: int = MASK):
    """BERT's masked-token corruption of a batch of token ids.

    ids: int (batch, steps). In each row, ``k = max(1, floor(rate * n + 0.5))`` of its ``n``
    candidate positions (ids >= n_special; none when n = 0) are chosen uniformly without
    replacement. Each chosen position independently becomes ``mask_id`` (80 %), a token drawn
    uniformly from ``[n_special, vocab_size)`` (10 %), or stays as it is (10 %).
    Returns ``(inputs, labels, weights)``: the corrupted ids (batch, steps) int32, the original
    ids (batch, steps) int32 (the targets), and float32 weights (batch, steps), 1.0 at the
    chosen positions and 0.0 elsewhere, so the loss counts the chosen positions only.
    """
    ids = checks.as_index_array("ids", ids, upper=vocab_size, ndim=2)
    if not 0.0 < rate < 1.0:
        raise ValueError(f"`rate` must be in (0, 1), got {rate!r}")
    if not 0 <= mask_id < n_special < vocab_size:
        raise ValueError(f"need 0 <= mask_id < n_special < vocab_size, got {mask_id}, "
                         f"{n_special}, {vocab_size}")
    candidate = ids >= n_special
    n = candidate.sum(axis=1)
    k = np.where(n > 0, np.maximum(1, np.floor(rate * n + 0.5)), 0).astype(np.int64)
    keys = np.where(candidate, rng.random(ids.shape), np.inf)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)  # rank of each position's key in its row
    chosen = rank < k[:, None]
    action = rng.random(ids.shape)
    random_tokens = rng.integers(n_special, vocab_size, ids.shape)
    inputs = np.where(chosen & (action < 0.8), mask_id, ids)
    inputs = np.where(chosen & (action >= 0.8) & (action < 0.9), random_tokens, inputs)
    return inputs.astype(np.int32), ids.astype(np.int32), chosen.astype(np.float32)


def masked_positions(weights, max_predictions: int) -> np.ndarray:
    """int32 (batch, max_predictions): the columns where ``weights`` (batch, steps) is 1, in
    order, padded with 0 (their weight is 0: see :func:`gather_rows`)."""
    weights = checks.as_float_array("weights", weights, ndim=2)
    count = int((weights > 0).sum(axis=1).max(initial=0))
    if count > max_predictions:
        raise ValueError(f"a row has {count} masked positions, more than max_predictions="
                         f"{max_predictions}")
    order = np.argsort(weights <= 0, axis=1, kind="stable")[:, :max_predictions]
    taken = np.take_along_axis(weights, order, axis=1) > 0
    return np.where(taken, order, 0).astype(np.int32)


def max_predictions(max_len: int, rate: float) -> int:
    """The most positions :func:`mask_tokens` can choose in a row of ``max_len`` (one is [CLS])."""
    return max(1, math.floor(rate * (max_len - 1) + 0.5))


def pretraining_batch(ids, rng, vocab_size: int, rate: float, max_pred: int):
    """Inputs and targets of one pass of masked-token pre-training.

    Returns ``({"token_ids", "positions"}, labels, weights)`` with labels/weights
    (batch, max_pred): the original ids and 1.0 at the masked positions, 0.0 in the padding.
    """
    inputs, labels, weights = mask_tokens(ids, rng, vocab_size, rate)
    positions = masked_positions(weights, max_pred)
    return ({"token_ids": inputs, "positions": positions},
            np.take_along_axis(labels, positions, axis=1),
            np.take_along_axis(weights, positions, axis=1))


# -- the encoder, from Keras layers ---------------------------------------------------------
def _keras():
    import keras

    return keras


def _layers():
    keras = _keras()

    class TokenAndPositionEmbedding(keras.layers.Layer):
        """ids (batch, steps) -> token embedding + learnt position embedding (batch, steps, dim).

        ``reverse=True``: vectors (..., dim) -> their dot product with every token's embedding
        (..., vocab_size), the masked-token output layer tied to the input embedding (BERT's)."""

        def __init__(self, vocab_size: int, max_len: int, dim: int, **kwargs):
            super().__init__(**kwargs)
            self.vocab_size, self.max_len, self.dim = vocab_size, max_len, dim
            self.tokens = keras.layers.Embedding(vocab_size, dim, name="token_embedding")
            self.positions = keras.layers.Embedding(max_len, dim, name="position_embedding")

        def build(self, input_shape):
            self.tokens.build(input_shape)
            self.positions.build((None, self.max_len))

        def call(self, ids, reverse: bool = False):
            if reverse:  # vectors (..., dim) -> a score per token (..., vocab_size): x E^T
                return keras.ops.matmul(ids, keras.ops.transpose(self.tokens.embeddings))
            steps = keras.ops.shape(ids)[-1]
            return self.tokens(ids) + self.positions(keras.ops.arange(steps))[None]

        def get_config(self):
            return {**super().get_config(), "vocab_size": self.vocab_size,
                    "max_len": self.max_len, "dim": self.dim}

    class PaddingMask(keras.layers.Layer):
        """ids (batch, steps) -> bool (batch, 1, steps): True where the key is not [PAD]."""

        def call(self, ids):
            return keras.ops.expand_dims(keras.ops.not_equal(ids, PAD), axis=1)

    class GatherPositions(keras.layers.Layer):
        """(sequence (batch, steps, dim), positions (batch, P)) -> (batch, P, dim)."""

        def call(self, sequence, positions):
            steps = keras.ops.shape(sequence)[1]
            pick = keras.ops.one_hot(positions, steps, dtype=sequence.dtype)
            return keras.ops.einsum("bps,bsd->bpd", pick, sequence)

    class MaskedMean(keras.layers.Layer):
        """(sequence (batch, steps, dim), ids (batch, steps)) -> the mean of the vectors of the
        non-padding positions (batch, dim)."""

        def call(self, sequence, ids):
            keep = keras.ops.cast(keras.ops.not_equal(ids, PAD), sequence.dtype)[..., None]
            total = keras.ops.sum(sequence * keep, axis=1)
            return total / keras.ops.maximum(keras.ops.sum(keep, axis=1), 1.0)

    class OutputBias(keras.layers.Layer):
        """(..., units) + a learnt bias (units,): the bias of the tied output layer."""

        def build(self, input_shape):
            self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros",
                                        name="bias")

        def call(self, x):
            return x + self.bias

    return TokenAndPositionEmbedding, PaddingMask, GatherPositions, MaskedMean, OutputBias


def masked_mean_layer():
    """The layer class ``MaskedMean``: (sequence (batch, steps, dim), ids (batch, steps)) -> the
    mean of the vectors at the non-padding positions (batch, dim)."""
    return _layers()[3]


def encoder_block(x, mask, num_heads: int, ff_dim: int, dropout: float, name: str):
    """One post-layer-norm Transformer encoder block (as BERT), functional API.

    x: (batch, steps, dim); mask: bool (batch, 1, steps) (padding keys masked).
    a = MultiHeadAttention(x, x); x = LayerNorm(x + Dropout(a));
    f = Dense(dim)(Dense(ff_dim, gelu)(x)); x = LayerNorm(x + Dropout(f)).
    """
    layers = _keras().layers
    dim = x.shape[-1]
    if dim % num_heads:
        raise ValueError(f"the model width {dim} must be divisible by num_heads={num_heads}")
    attended = layers.MultiHeadAttention(num_heads, dim // num_heads, name=f"{name}_attention")(
        x, x, attention_mask=mask)
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_attention_norm")(
        layers.Add()([x, layers.Dropout(dropout)(attended)]))
    hidden = layers.Dense(ff_dim, activation="gelu", name=f"{name}_ff1")(x)
    hidden = layers.Dense(dim, name=f"{name}_ff2")(hidden)
    return layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ff_norm")(
        layers.Add()([x, layers.Dropout(dropout)(hidden)]))


ARCHITECTURE_KEYS = ("vocab_size", "max_len", "dim", "num_heads", "ff_dim", "num_layers",
                     "dropout")


def build_encoder(config: dict):
    """token ids (batch, max_len) int -> contextual vectors (batch, max_len, dim).

    config: vocab_size, max_len, dim, num_heads, ff_dim, num_layers, dropout.
    """
    keras = _keras()
    missing = [k for k in ARCHITECTURE_KEYS if k not in config]
    if missing:
        raise ValueError(f"`config` lacks {missing}")
    embedding, padding_mask, *_ = _layers()
    ids = keras.Input((config["max_len"],), dtype="int32", name="token_ids")
    x = embedding(config["vocab_size"], config["max_len"], config["dim"], name="embedding")(ids)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="embedding_norm")(x)
    x = keras.layers.Dropout(config["dropout"])(x)
    mask = padding_mask(name="padding_mask")(ids)
    for i in range(config["num_layers"]):
        x = encoder_block(x, mask, config["num_heads"], config["ff_dim"], config["dropout"],
                          name=f"block{i}")
    return keras.Model(ids, x, name="encoder")


def build_pretraining_model(config: dict):
    """Encoder + masked-token head: {"token_ids" (batch, max_len), "positions" (batch, P)} ->
    logits (batch, P, vocab_size) at the masked positions only (BERT computes the big output
    layer only where there is something to predict). The output layer is tied to the token
    embedding (its transpose, plus a bias), as in BERT. Its encoder uses
    ``config["pretrain_dropout"]`` when given (a dropout rate is not a weight: the fine-tuned
    encoder can use another one)."""
    keras = _keras()
    layers = keras.layers
    encoder = build_encoder({**config, "dropout": config.get("pretrain_dropout", config["dropout"])})
    _, _, gather, _, output_bias = _layers()
    ids = keras.Input((config["max_len"],), dtype="int32", name="token_ids")
    positions = keras.Input((config["max_pred"],), dtype="int32", name="positions")
    picked = gather(name="gather_masked")(encoder(ids), positions)
    hidden = layers.Dense(config["dim"], activation="gelu", name="mlm_transform")(picked)
    hidden = layers.LayerNormalization(epsilon=1e-6, name="mlm_norm")(hidden)
    # The output layer shares the input embedding table (as BERT's): scores = hidden E^T + b.
    scores = encoder.get_layer("embedding")(hidden, reverse=True)
    logits = output_bias(name="mlm_logits")(scores)
    return keras.Model({"token_ids": ids, "positions": positions}, logits, name="masked_lm")


def build_classifier(config: dict, encoder=None, num_classes: int = 2, pooling: str = "mean"):
    """token ids (batch, max_len) -> class logits (batch, num_classes):
    pooled = tanh(Dense(v)) (BERT's pooler), Dropout, Dense(num_classes), where v is the mean
    of the encoder's vectors over the non-padding positions (``pooling="mean"``) or the vector
    at [CLS] (``pooling="cls"``, BERT's choice, which relies on BERT's second pre-training task,
    next-sentence prediction, to train that vector; masked tokens alone never do).
    ``encoder``: a (pre-trained) encoder to fine-tune; a new random one when None."""
    keras = _keras()
    layers = keras.layers
    checks.check_choice("pooling", pooling, ["mean", "cls"])
    encoder = build_encoder(config) if encoder is None else encoder
    encoder.trainable = True  # fine-tuning trains every layer (compile after this)
    ids = keras.Input((config["max_len"],), dtype="int32", name="token_ids")
    sequence = encoder(ids)
    if pooling == "cls":
        summary = sequence[:, 0]
    else:
        summary = _layers()[3](name="mean_over_tokens")(sequence, ids)
    pooled = layers.Dense(config["dim"], activation="tanh", name="pooler")(summary)
    dropped = layers.Dropout(config["dropout"], name="pooler_dropout")(pooled)
    logits = layers.Dense(num_classes, name="classifier")(dropped)
    return keras.Model(ids, logits, name="classifier")


def warmup_schedule(peak_lr: float, total_steps: int, warmup_fraction: float = 0.1):
    """Learning rate rising linearly to ``peak_lr`` over ``warmup_fraction`` of the steps, then
    falling linearly to 0 at ``total_steps`` (BERT's schedule)."""
    from course_lib.training.schedules import WarmupLinearDecay

    warmup = max(1, int(warmup_fraction * total_steps))
    return WarmupLinearDecay(peak_lr, total_steps=max(total_steps, warmup + 1), warmup_steps=warmup)


def adamw(peak_lr: float, total_steps: int, warmup_fraction: float = 0.1,
          weight_decay: float = 0.01):
    """AdamW with :func:`warmup_schedule` and gradient norms clipped to 1; layer-norm scales and
    biases are not decayed."""
    keras = _keras()
    optimizer = keras.optimizers.AdamW(
        learning_rate=warmup_schedule(peak_lr, total_steps, warmup_fraction),
        weight_decay=weight_decay, clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


# -- pre-training ---------------------------------------------------------------------------
def pretraining_recipe(fast: bool) -> dict:
    """The recipe of ``imdb_mlm`` (fast: the shipped sample, a tiny model).

    Data: chapter 09's pre-training corpus (``course_lib.imdb_splits``): IMDB's training
    reviews except the chapter's 1,000 validation reviews, plus its 50,000 unlabelled reviews,
    without the reviews whose text is also a test review (73,847 reviews, about 20 M tokens);
    never a validation or test review. Every window of 127 tokens of each review is read
    (:meth:`Vocabulary.encode_windows`), 5 passes, no dropout while pre-training
    (``pretrain_dropout``; fine-tuning uses ``dropout``). After each pass the masked-token loss
    is measured on the validation reviews, text the model never trained on. The vocabulary is
    counted on the same corpus and stored with the model's results."""
    recipe = {
        "data": "imdb: the training reviews except chapter 09's 1,000 validation reviews, plus "
                "the 50,000 unlabelled reviews, without reviews whose text is also a test "
                "review; never a validation or test review",
        "validation": {"per_class": 50 if fast else 500, "seed": VALIDATION_SEED},
        "sample": bool(fast),
        "vocab_size": 2000 if fast else 10000,
        "max_len": 48 if fast else 128,
        "dim": 32 if fast else 128,
        "num_heads": 2 if fast else 4,
        "ff_dim": 64 if fast else 256,
        "num_layers": 1 if fast else 2,
        "dropout": 0.1,
        "pretrain_dropout": 0.0,
        "mask_rate": 0.15,
        "windows": "every window of max_len - 1 tokens of each review, the last kept if "
                   "it has at least min_window tokens",
        "min_window": 8 if fast else 32,
        "output_layer": "tied to the token embedding",
        "epochs": 2 if fast else 5,
        "batch_size": 32,
        "peak_lr": 3e-3 if fast else 1e-3,
        "seed": 0,
    }
    recipe["max_pred"] = max_predictions(recipe["max_len"], recipe["mask_rate"])
    return recipe


def recipe_splits(recipe: dict):
    """Chapter 09's splits (``course_lib.imdb_splits``) as a pre-training recipe names them."""
    from course_lib.imdb_splits import imdb_splits

    return imdb_splits(sample=recipe["sample"], seed=recipe["validation"]["seed"],
                       validation_per_class=recipe["validation"]["per_class"])


def training_reviews(recipe: dict) -> np.ndarray:
    """The reviews a recipe pre-trains on: chapter 09's pre-training corpus (never a
    validation or test review)."""
    return recipe_splits(recipe).pretraining_texts()


def vocabulary_for(recipe: dict) -> Vocabulary:
    """The vocabulary of a recipe, counted on its pre-training corpus (deterministic)."""
    return Vocabulary.build(training_reviews(recipe), recipe["vocab_size"])


def _train_mlm(model, recipe: dict, verbose: bool) -> dict:
    keras = _keras()
    splits = recipe_splits(recipe)
    texts = splits.pretraining_texts()
    vocabulary = Vocabulary.build(texts, recipe["vocab_size"])
    ids = vocabulary.encode_windows(texts, recipe["max_len"], recipe["min_window"])
    # Held-out text: the validation reviews (never pre-trained on), one fixed mask.
    held_ids = vocabulary.encode_windows(splits.validation_texts, recipe["max_len"],
                                         recipe["min_window"])
    held = pretraining_batch(held_ids, np.random.default_rng(recipe["seed"] + 1),
                             recipe["vocab_size"], recipe["mask_rate"], recipe["max_pred"])
    keras.utils.set_random_seed(recipe["seed"])
    rng = np.random.default_rng(recipe["seed"])
    steps = math.ceil(len(ids) / recipe["batch_size"]) * recipe["epochs"]
    model.compile(optimizer=adamw(recipe["peak_lr"], steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True, reduction="mean_with_sample_weight"))
    tokens = int((ids != PAD).sum())
    if verbose:
        print(f"  corpus: {len(texts):,} reviews, {len(ids):,} windows, {tokens:,} tokens per "
              f"pass; held out: {len(held_ids):,} windows of the {len(splits.validation_texts):,}"
              " validation reviews", flush=True)
    losses, held_losses, seconds = [], [], 0.0
    for epoch in range(recipe["epochs"]):
        # A fresh mask every epoch (dynamic masking), drawn with NumPy: no tf.data needed.
        x, y, w = pretraining_batch(ids, rng, recipe["vocab_size"], recipe["mask_rate"],
                                    recipe["max_pred"])
        order = rng.permutation(len(ids))
        start = time.perf_counter()
        history = model.fit({k: v[order] for k, v in x.items()}, y[order], sample_weight=w[order],
                            batch_size=recipe["batch_size"], epochs=1, verbose=0, shuffle=False)
        seconds += time.perf_counter() - start
        losses.append(float(history.history["loss"][-1]))
        held_losses.append(float(model.evaluate(held[0], held[1], sample_weight=held[2],
                                                batch_size=256, verbose=0)))
        if verbose:
            print(f"  pass {epoch + 1}/{recipe['epochs']}: masked-token loss {losses[-1]:.3f} "
                  f"(held-out {held_losses[-1]:.3f}), {tokens * (epoch + 1) / seconds:,.0f} "
                  f"tokens/s", flush=True)
    return {"loss_history": losses, "held_out_loss_history": held_losses,
            "tokens_per_second": round(tokens * len(losses) / seconds),
            "tokens_per_epoch": tokens, "reviews": len(texts), "windows": len(ids),
            "held_out_windows": len(held_ids), "dropped_duplicates": splits.dropped,
            "vocabulary_sha256": vocabulary.sha256(), "vocabulary": vocabulary.tokens}


def mlm_spec():
    """The ``imdb_mlm`` entry of ``course_lib.pretrained.REGISTRY``."""
    from course_lib.pretrained import PretrainSpec

    return PretrainSpec(
        name="imdb_mlm",
        description="BERT-style encoder, masked-token pre-training on IMDB's training (minus "
                    "chapter 09's validation) and unlabelled reviews",
        recipe=pretraining_recipe, build=build_pretraining_model, train=_train_mlm,
        data=("imdb",))


def pretrained_encoder(fast: bool | None = None, verbose: bool = True):
    """``(masked_lm_model, vocabulary, meta)``: the course's ``imdb_mlm`` (the cache, the
    shipped copy, or trained once). The vocabulary is the token list stored with the model,
    checked against its fingerprint."""
    from course_lib import pretrained

    model, meta = pretrained.get_or_train("imdb_mlm", fast=fast, verbose=verbose)
    tokens = meta["results"].get("vocabulary")
    try:
        vocabulary = Vocabulary(tokens)
    except (TypeError, ValueError):
        vocabulary = None
    if vocabulary is None or vocabulary.sha256() != meta["results"]["vocabulary_sha256"]:
        raise pretrained.CorruptModelError(
            "the imdb_mlm model's stored vocabulary is missing or does not match its "
            "fingerprint; run `course pretrain imdb_mlm --force`")
    return model, vocabulary, meta


def fill_masks(model, vocabulary: Vocabulary, text: str, max_len: int, top: int = 3,
               positions: Sequence[int] | None = None) -> list[tuple[str, list[tuple[str, float]]]]:
    """Mask words of ``text`` one at a time and ask the masked-token model for them.

    positions: token positions in the encoded text (1 = the first word); default: every
    fifth word. Returns, per masked word, ``(true word, [(guess, probability)] * top)``.
    """
    ids = vocabulary.encode([text], max_len)[0]
    length = int((ids != PAD).sum())
    positions = list(range(2, length, 5)) if positions is None else list(positions)
    bad = [p for p in positions if not 1 <= p < length]
    if bad:
        raise ValueError(f"`positions` must be in [1, {length}) for this text, got {bad}")
    batch = np.repeat(ids[None], len(positions), axis=0)
    batch[np.arange(len(positions)), positions] = MASK
    where = np.zeros((len(positions), model.input["positions"].shape[1]), np.int32)
    where[:, 0] = positions
    logits = np.asarray(model.predict({"token_ids": batch, "positions": where}, verbose=0))[:, 0]
    logits[:, :N_SPECIAL] = -np.inf  # never propose [PAD], [MASK], ...
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    out = []
    for row, p in enumerate(positions):
        best = np.argsort(-probs[row])[:top]
        out.append((vocabulary.tokens[ids[p]],
                    [(vocabulary.tokens[i], float(probs[row, i])) for i in best]))
    return out


# -- fine-tuning ----------------------------------------------------------------------------
def validation_split(y, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): ``fraction`` of each class (at least one) held
    out for validation, drawn with ``seed``."""
    y = checks.as_index_array("y", y, ndim=1)
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(y):
        where = rng.permutation(np.flatnonzero(y == label))
        val.append(where[:max(1, round(fraction * len(where)))])
    val = np.concatenate(val)
    return rng.permutation(np.setdiff1d(np.arange(len(y)), val)), np.sort(val)


FINETUNE = {"epochs": 6, "batch_size": 32, "peak_lr": 3e-4, "weight_decay": 0.01,
            "validation_fraction": 0.2, "patience": 2}


def finetune_method(config: dict, encoder_weights: list | None, settings: dict | None = None,
                    log: list | None = None):
    """A ``label_efficiency`` method: ``method(x, y, seed) -> predictor``.

    x: token ids (n, max_len); y: labels (n,). Builds the classifier on a new encoder (random
    when ``encoder_weights`` is None, else those pre-trained weights), holds out a validation
    split of (x, y), trains with AdamW + warm-up, and keeps the weights of the epoch with the
    best validation accuracy (early stopping). ``log``: each run's epochs and validation
    accuracy are appended to it.
    """
    keras = _keras()
    settings = {**FINETUNE, **(settings or {})}

    def method(x, y, seed):
        keras.utils.set_random_seed(seed)
        encoder = build_encoder(config)
        if encoder_weights is not None:
            encoder.set_weights(encoder_weights)
        model = build_classifier(config, encoder)
        train, val = validation_split(y, settings["validation_fraction"], seed)
        steps = math.ceil(len(train) / settings["batch_size"]) * settings["epochs"]
        model.compile(optimizer=adamw(settings["peak_lr"], steps,
                                      weight_decay=settings["weight_decay"]),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=settings["patience"],
                                             restore_best_weights=True)
        history = model.fit(x[train], y[train], validation_data=(x[val], y[val]),
                            batch_size=settings["batch_size"], epochs=settings["epochs"],
                            callbacks=[stop], verbose=0)
        if log is not None:
            log.append({"seed": seed, "n": len(y), "epochs": len(history.history["loss"]),
                        "best_val_accuracy": max(history.history["val_accuracy"])})
        return lambda inputs: predict_logits(model, inputs)

    return method


def predict_logits(model, ids: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """``model``'s outputs for ``ids`` (n, max_len), in batches, called directly (no traced
    predict function to build: for a model used once, that is most of the cost)."""
    ids = np.asarray(ids, dtype=np.int32)
    return np.concatenate([np.asarray(model(ids[i:i + batch_size], training=False))
                           for i in range(0, len(ids), batch_size)])


def finetune_settings(fast: bool) -> dict:
    """The fine-tuning recipe of the chapter (the same for the pre-trained and the random
    encoder): AdamW, peak learning rate 3e-4 after a 10 % warm-up, batch 32, at most 6 epochs
    (fast: 3), keeping the epoch with the best accuracy on the validation split (20 % of the
    labels)."""
    return {**FINETUNE, "epochs": 3 if fast else 6}


def on_rows(method, train_ids: np.ndarray, test_ids: np.ndarray):
    """Adapt a method on token ids to one on row numbers, so that models with different
    tokenisations (this chapter's, chapter 05's) see the same reviews in a label-efficiency
    comparison: ``wrapped(rows, y, seed)`` trains on ``train_ids[rows]``; its predictor takes
    test row numbers."""
    def wrapped(rows, y, seed):
        predict = method(train_ids[rows], y, seed)
        return lambda test_rows: predict(test_ids[test_rows])

    return wrapped


def recurrent_method(train_texts, test_texts, fast: bool, kind: str = "gru",
                     readout: str = "last"):
    """Chapter 05's recurrent sentiment model as a label-efficiency method on row numbers.

    Its own vectoriser (``rnn.make_vectorizer``, learnt on the training reviews only), model
    (``rnn.sentiment_model`` with ``kind`` and ``readout``) and recipe (``rnn.train_sentiment``:
    Adam, early stopping on validation accuracy) with chapter 05's sizes and settings
    (``rnn.chapter_recipe``); the validation split is this chapter's (:func:`validation_split`,
    20 % of the labels), so every method is chosen the same way.
    """
    from course_lib import rnn

    recipe = rnn.chapter_recipe(fast)
    steps = recipe["sequence_length"]
    vectorizer = rnn.make_vectorizer(list(train_texts), recipe["vocab_size"], steps)
    train_ids, test_ids = vectorizer(list(train_texts)), vectorizer(list(test_texts))

    def method(rows, y, seed):
        ids = train_ids[rows]
        fit, val = validation_split(y, FINETUNE["validation_fraction"], seed)
        model = rnn.sentiment_model(kind, vectorizer.vocab_size, steps,
                                    embed_dim=recipe["embed_dim"], units=recipe["units"],
                                    embedding_dropout=recipe["embedding_dropout"],
                                    readout=readout, seed=seed)
        rnn.train_sentiment(model, (ids[fit], y[fit]), (ids[val], y[val]), epochs=recipe["epochs"],
                            batch_size=recipe["batch_size"],
                            learning_rate=recipe["learning_rate"], seed=seed)
        return lambda test_rows: (rnn.predict_proba(model, test_ids[test_rows]) > 0.5).astype(int)

    return method


# -- a real pre-trained checkpoint ----------------------------------------------------------
class CheckpointUnavailable(RuntimeError):
    """A pre-trained checkpoint that cannot be loaded here (no package, no file, no network)."""


def keras_hub_classifier(preset: str = "bert_tiny_en_uncased", num_classes: int = 2):
    """A real pre-trained BERT with a new classification head, from KerasHub.

    preset: a KerasHub preset name (downloaded once, needs the internet) or a local folder
    holding a saved preset (``config.json``, weights, tokenizer files), for offline use.
    Raises :class:`CheckpointUnavailable` with what to do when keras_hub is not installed, the
    folder does not exist, or the preset cannot be loaded (e.g. no network).
    """
    try:
        import keras_hub
    except ImportError:
        raise CheckpointUnavailable(
            "keras_hub is not installed, so real pre-trained checkpoints cannot be loaded. "
            "Install it with `pip install keras-hub` (it is optional for this course); "
            "the chapter's own pre-trained encoder needs nothing extra."
        ) from None
    looks_like_path = any(sep in preset for sep in ("/", "\\")) or preset.startswith(".")
    if looks_like_path and not Path(preset).is_dir():
        raise CheckpointUnavailable(
            f"no preset folder at {preset!r}: save one where the internet is reachable with "
            "`keras_hub.models.BertTextClassifier.from_preset(name).save_to_preset(folder)` and "
            "copy the folder here")
    try:
        return keras_hub.models.BertTextClassifier.from_preset(preset, num_classes=num_classes)
    except Exception as error:
        raise CheckpointUnavailable(
            f"could not load the KerasHub preset {preset!r} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). Without internet access, "
            "pass a local preset folder instead of a preset name."
        ) from None


# -- document 002's PyTorch code: faithful NumPy stand-ins (errata) ---------------------------
def hf_style_encode(vocabulary: Vocabulary, text: str, max_length: int,
                    return_tensors: str | None = None) -> dict:
    """What ``tokenizer(text, truncation=True, padding='max_length', max_length=...)`` returns
    for ONE text: lists of ``max_length`` ids, or, with ``return_tensors``, arrays of shape
    (1, max_length): a tokenizer always returns a batch when asked for tensors."""
    ids = vocabulary.encode([text], max_length)
    mask = (ids != PAD).astype(np.int64)
    if return_tensors is None:
        return {"input_ids": ids[0].tolist(), "attention_mask": mask[0].tolist()}
    return {"input_ids": ids.astype(np.int64), "attention_mask": mask}


def default_collate(items: Sequence[dict]) -> dict:
    """PyTorch's ``default_collate`` for dict items: each key stacked on a new first axis."""
    return {key: np.stack([np.asarray(item[key]) for item in items]) for key in items[0]}


def bert_input_shape(input_ids) -> tuple[int, int]:
    """The first thing ``transformers``' ``BertModel.forward`` does with ``input_ids``:
    ``batch_size, seq_length = input_ids.size()``."""
    batch_size, seq_length = np.shape(input_ids)
    return batch_size, seq_length


DOCUMENT_002_LOOP = '''
epochs = 3
batch_size = 16

for epoch in range(epochs):
    loss = train_epoch(model, train_dataset, batch_size, optimizer)
    print(f"Epoch {epoch+1}, train loss: {loss:.3f}")

    print(f"Epoch {epoch+1}, dev accuracy: {evaluate(model, dev_dataset, batch_size)}")

print(f"Test accuracy: {evaluate(model, test_dataset, batch_size)}")
'''

DOCUMENT_002_REPORTED = """Accuracy on train set: 0.999
Accuracy on dev set: 0.983
Accuracy on test set: 0.983"""


def run_document_loop(names: dict) -> tuple[str, str | None]:
    """Run document 002's training loop (section 4.3 = 5.2) with ``names`` defined; returns
    ``(printed text, error or None)``."""
    import contextlib
    import io

    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(DOCUMENT_002_LOOP, dict(names))  # noqa: S102 - the document's own code
    except Exception as error:
        return printed.getvalue(), f"{type(error).__name__}: {error}"
    return printed.getvalue(), None

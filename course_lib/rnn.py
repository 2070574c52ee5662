"""Chapter 05 helpers: a recurrent network by hand, backpropagation through time, exploding and
vanishing gradients, gated cells, and sentiment analysis of IMDB reviews (document 003,
sections 2.3, 3.3, 4.3 and 4.5.3; document 002, section 4.3).

Arrays use one example per row, as Keras and ``course_lib.nn``: a sequence batch x is
(batch, steps, features) and h_t = tanh(x_t W_x + h_{t-1} W_h + b) with W_x (features, units),
W_h (units, units), b (units,).

The text pipeline is the API that later chapters reuse (chapter 09 compares its encoder with the
best recurrent model here):

    vectorizer = make_vectorizer(train_texts, vocab_size=20000, sequence_length=256)
    ids = vectorizer(texts)                          # int32 (n, 256), 0 = padding, 1 = unknown
    model = sentiment_model("gru", vocab_size=20000)  # uncompiled; logits (batch, 1)
    run = train_sentiment(model, (x_tr, y_tr), (x_val, y_val), test=(x_te, y_te), epochs=6)
    run.history["val_accuracy"], run.test_accuracy

Everything here runs on every Keras backend; ``keras.layers.TextVectorization`` (which needs
TensorFlow) is used when TensorFlow is installed, and a NumPy vectorizer that gives the same
vocabulary and the same ids otherwise.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from course_lib import nn
from course_lib.nn import checks
from course_lib.nn.layers.base import orthogonal

# ---------------------------------------------------------------------------------------------
# 1. Document 003, section 4.5.3: the worked example
# ---------------------------------------------------------------------------------------------
EXAMPLE_INPUTS = np.array([1.0, 2.0, 3.0])  # "输入序列为[1, 2, 3]": 3 steps of 1 feature


def document_003_parameters(seed: int = 0) -> dict[str, np.ndarray]:
    """The parameters of document 003, section 4.5.3, with the sizes it prints:
    W_x = {w_x1, w_x2}, W_h = {w_h1, w_h2}, b_h = {b_h1, b_h2}, W_y = {w_y1, w_y2},
    b_y = {b_y1, b_y2}: two numbers each."""
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-0.5, 0.5, 2) for name in ("W_x", "W_h", "b_h", "W_y", "b_y")}


def document_003_forward(params: dict[str, np.ndarray], xs: np.ndarray = EXAMPLE_INPUTS
                         ) -> tuple[list[np.ndarray], np.ndarray]:
    """The example's computation read literally with its shapes and its ReLU:
    h_t = relu(W_x x_t + W_h . h_{t-1} + b_h), y = relu(W_y . h_3 + b_y). Returns (h_1..h_T, y).

    With W_h a 2-vector, W_h . h_{t-1} is one number added to both hidden units; with b_y a
    2-vector, y has two values although the output has dimension 1."""
    h = np.zeros(2)
    hs = []
    for x_t in xs:
        h = np.maximum(0.0, params["W_x"] * x_t + params["W_h"] @ h + params["b_h"])
        hs.append(h)
    y = np.maximum(0.0, params["W_y"] @ h + params["b_y"])
    return hs, y


def example_parameters(seed: int = 0, units: int = 2, features: int = 1,
                       outputs: int = 1) -> dict[str, np.ndarray]:
    """Parameters of the example with the right shapes (row layout, as Keras):
    W_x (features, units), W_h (units, units), b_h (units,), W_y (units, outputs), b_y (outputs,)."""
    rng = np.random.default_rng(seed)
    return {
        "W_x": rng.uniform(-0.5, 0.5, (features, units)),
        "W_h": rng.uniform(-0.5, 0.5, (units, units)),
        "b_h": rng.uniform(-0.5, 0.5, units),
        "W_y": rng.uniform(-0.5, 0.5, (units, outputs)),
        "b_y": rng.uniform(-0.5, 0.5, outputs),
    }


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(0.0, a),
    "sigmoid": nn.activations.sigmoid,
    "linear": lambda a: a,
}


def unroll(x: np.ndarray, params: dict[str, np.ndarray], activation: str = "tanh",
           output_activation: str = "sigmoid") -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """The recurrence step by step: h_t = act(x_t W_x + h_{t-1} W_h + b_h), y = out(h_T W_y + b_y).

    x: (batch, steps, features); params as :func:`example_parameters`. Returns the list of steps
    (each {"x_t": (batch, features), "a_t": (batch, units), "h_t": (batch, units)}) and
    y (batch, outputs)."""
    checks.check_choice("activation", activation, list(ACTIVATIONS))
    checks.check_choice("output_activation", output_activation, list(ACTIVATIONS))
    x = checks.as_float_array("x", x, ndim=3)
    if x.shape[2] != params["W_x"].shape[0]:
        raise ValueError(
            f"`x` (shape {x.shape}) has {x.shape[2]} features, W_x has shape "
            f"{params['W_x'].shape}"
        )
    h = np.zeros((x.shape[0], params["W_h"].shape[0]))
    steps = []
    for t in range(x.shape[1]):
        a = x[:, t] @ params["W_x"] + h @ params["W_h"] + params["b_h"]
        h = ACTIVATIONS[activation](a)
        steps.append({"x_t": x[:, t], "a_t": a, "h_t": h})
    y = ACTIVATIONS[output_activation](h @ params["W_y"] + params["b_y"])
    return steps, y


# ---------------------------------------------------------------------------------------------
# 2. Backpropagation through time: a shared weight's gradient is a sum over the steps
# ---------------------------------------------------------------------------------------------
def _rnn_last_state(x, kernel, recurrent_kernels, bias):
    h = np.zeros((x.shape[0], kernel.shape[1]))
    for t, w_h in enumerate(recurrent_kernels):
        h = np.tanh(x[:, t] @ kernel + h @ w_h + bias)
    return h


def untied_step_gradients(x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
                          bias: np.ndarray, grad_last: np.ndarray, eps: float = 1e-6
                          ) -> np.ndarray:
    """Give every step its own copy of W_h (all equal to ``recurrent_kernel``) and return the
    numerical gradient of L = sum(h_T * grad_last) with respect to each copy: (steps, units, units).

    Their sum over the steps is dL/dW_h of the ordinary, tied network: how much each step
    contributes to the shared weight's gradient. x: (batch, steps, features) float64."""
    x = checks.as_float_array("x", x, ndim=3)
    steps = x.shape[1]
    copies = [np.array(recurrent_kernel, dtype=np.float64) for _ in range(steps)]
    grads = np.zeros((steps, *recurrent_kernel.shape))
    for t in range(steps):
        grads[t] = nn.numerical_gradient(
            lambda: float(np.sum(_rnn_last_state(x, kernel, copies, bias) * grad_last)),
            copies[t], eps)
    return grads


# ---------------------------------------------------------------------------------------------
# 3. Exploding and vanishing gradients
# ---------------------------------------------------------------------------------------------
def scaled_orthogonal(units: int, spectral_radius: float, seed: int = 0) -> np.ndarray:
    """``spectral_radius`` times a random orthogonal matrix: every eigenvalue has modulus
    ``spectral_radius`` (units, units)."""
    q = orthogonal(np.random.default_rng(seed), (units, units), np.float64)
    return spectral_radius * q


def gradient_norms_through_time(layer: nn.Layer, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """How strongly the last output depends on each input step: the mean over the batch of
    ||dL/dx_t|| with L = h_T . r (r a random unit vector per example), listed by steps back:
    entry k is for x_{T-1-k}. layer: a ``course_lib.nn`` recurrent layer with
    ``return_sequences=False``; x: (batch, steps, features). Returns (steps,)."""
    out = layer.forward(x)
    r = np.random.default_rng(seed).standard_normal(out.shape)
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    grad_x = layer.backward(r)
    return np.linalg.norm(grad_x, axis=2).mean(axis=0)[::-1]


# ---------------------------------------------------------------------------------------------
# 4. Gated cells, one step written out (Keras's weight layouts and gate orders)
# ---------------------------------------------------------------------------------------------
def lstm_step(x_t: np.ndarray, h: np.ndarray, c: np.ndarray, kernel: np.ndarray,
              recurrent_kernel: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step, gates in Keras's order (i, f, c, o). x_t: (batch, features); h, c:
    (batch, units); kernel (features, 4 units), recurrent_kernel (units, 4 units), bias (4 units,).
    Returns the new (h, c)."""
    sig = nn.activations.sigmoid
    z_i, z_f, z_c, z_o = np.split(x_t @ kernel + h @ recurrent_kernel + bias, 4, axis=-1)
    i, f, g, o = sig(z_i), sig(z_f), np.tanh(z_c), sig(z_o)
    c = f * c + i * g          # the additive cell path
    return o * np.tanh(c), c


def gru_step(x_t: np.ndarray, h: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
             bias: np.ndarray) -> np.ndarray:
    """One GRU step as Keras's default (``reset_after=True``), gates (z, r, h). x_t:
    (batch, features); h: (batch, units); kernel (features, 3 units), recurrent_kernel
    (units, 3 units), bias (2, 3 units) = [input bias, recurrent bias]. Returns the new h."""
    sig = nn.activations.sigmoid
    x_z, x_r, x_h = np.split(x_t @ kernel + bias[0], 3, axis=-1)
    u_z, u_r, u_h = np.split(h @ recurrent_kernel + bias[1], 3, axis=-1)
    z, r = sig(x_z + u_z), sig(x_r + u_r)
    candidate = np.tanh(x_h + r * u_h)
    return z * h + (1 - z) * candidate


def run_cell(kind: str, x: np.ndarray, weights: Sequence[np.ndarray]) -> np.ndarray:
    """Run :func:`lstm_step` or :func:`gru_step` over x (batch, steps, features) from zero states,
    with ``weights`` in Keras's order; returns the last h (batch, units)."""
    checks.check_choice("kind", kind, ["lstm", "gru"])
    kernel, recurrent_kernel, bias = weights
    units = recurrent_kernel.shape[0]
    h = np.zeros((x.shape[0], units))
    c = np.zeros_like(h)
    for t in range(x.shape[1]):
        if kind == "lstm":
            h, c = lstm_step(x[:, t], h, c, kernel, recurrent_kernel, bias)
        else:
            h = gru_step(x[:, t], h, kernel, recurrent_kernel, bias)
    return h


# ---------------------------------------------------------------------------------------------
# 5. Text as sequences
# ---------------------------------------------------------------------------------------------
# keras.layers.TextVectorization's defaults: standardize="lower_and_strip_punctuation" (ASCII
# lower case, this punctuation removed), split="whitespace"; index 0 = padding, 1 = [UNK].
PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
WHITESPACE = re.compile(r"[ \t\n\r\x0b\x0c]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def clean_reviews(texts: Sequence[str]) -> np.ndarray:
    """IMDB reviews contain HTML line breaks ``<br />``: replace them by spaces. Returns a 1-D
    array of str."""
    if isinstance(texts, str):
        raise ValueError("`texts` must be a sequence of strings, got one string")
    return np.array([str(t).replace("<br />", " ") for t in texts], dtype=object)


def tokenize(text: str) -> list[str]:
    """The tokens TextVectorization makes of ``text`` (its default standardize and split)."""
    return [t for t in WHITESPACE.split(PUNCTUATION.sub("", text.translate(_ASCII_LOWER))) if t]


def review_lengths(texts: Sequence[str]) -> np.ndarray:
    """Number of tokens of each text (int64, (n,))."""
    return np.array([len(tokenize(t)) for t in texts], dtype=np.int64)


class TextVectorizer:
    """Texts -> int32 token ids (n, sequence_length): the first ``sequence_length`` tokens, padded
    with 0 at the end (right padding); 1 for tokens outside the vocabulary.

    ``vocabulary``: the list of tokens by id (["", "[UNK]", "the", ...]); ``keras_layer``: the
    adapted ``keras.layers.TextVectorization`` when it was used, else None. Build it with
    :func:`make_vectorizer`."""

    def __init__(self, vocabulary: list[str], sequence_length: int, keras_layer=None):
        self.vocabulary = list(vocabulary)
        self.sequence_length = sequence_length
        self.keras_layer = keras_layer
        self._index = {token: i for i, token in enumerate(self.vocabulary) if i >= 2}

    @property
    def vocab_size(self) -> int:
        """Number of ids, padding and [UNK] included."""
        return len(self.vocabulary)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise ValueError("`texts` must be a sequence of strings, got one string")
        if self.keras_layer is not None:
            return np.asarray(self.keras_layer(np.asarray(list(texts), dtype=object)),
                              dtype=np.int32)
        ids = np.zeros((len(texts), self.sequence_length), np.int32)
        for row, text in enumerate(texts):
            tokens = tokenize(text)[:self.sequence_length]
            ids[row, :len(tokens)] = [self._index.get(t, 1) for t in tokens]
        return ids


def _numpy_vocabulary(texts: Sequence[str], vocab_size: int) -> list[str]:
    counts = Counter(token for text in texts for token in tokenize(text))
    counts.pop("", None)
    counts.pop("[UNK]", None)
    # TextVectorization's order: by count, ties by the token's UTF-8 bytes, both descending.
    ranked = sorted(counts, key=lambda t: (counts[t], t.encode("utf-8")), reverse=True)
    return ["", "[UNK]", *ranked[:vocab_size - 2]]


def _tensorflow_available() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def make_vectorizer(texts: Sequence[str], vocab_size: int, sequence_length: int,
                    backend: str = "auto") -> TextVectorizer:
    """A :class:`TextVectorizer` whose vocabulary (at most ``vocab_size`` ids, padding and [UNK]
    included) is learned from ``texts`` only: pass the training texts, never the test texts.

    backend: "keras" (``keras.layers.TextVectorization``, needs TensorFlow), "numpy" (the same
    standardisation, vocabulary order and ids without TensorFlow) or "auto" (keras when
    TensorFlow is installed)."""
    checks.check_choice("backend", backend, ["auto", "keras", "numpy"])
    vocab_size = checks.check_positive_int("vocab_size", vocab_size)
    sequence_length = checks.check_positive_int("sequence_length", sequence_length)
    if vocab_size < 3:
        raise ValueError(f"`vocab_size` must be at least 3 (padding, [UNK], a word), got {vocab_size}")
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("`texts` must be a non-empty sequence of strings")
    if backend == "auto":
        backend = "keras" if _tensorflow_available() else "numpy"
    if backend == "numpy":
        return TextVectorizer(_numpy_vocabulary(texts, vocab_size), sequence_length)
    import keras

    layer = keras.layers.TextVectorization(max_tokens=vocab_size,
                                           output_sequence_length=sequence_length)
    layer.adapt(np.asarray(list(texts), dtype=object))
    return TextVectorizer([str(t) for t in layer.get_vocabulary()], sequence_length, layer)


def padding_mask(ids: np.ndarray) -> np.ndarray:
    """True for real tokens, False for padding (id 0): (n, steps) bool."""
    return np.asarray(ids) != 0


def is_right_padded(mask: np.ndarray) -> bool:
    """True when every row of ``mask`` (n, steps) is some Trues followed only by Falses: the
    layout that cuDNN's recurrent kernels need for masked sequences."""
    mask = np.asarray(mask, dtype=bool)
    checks.check_ndim("mask", mask, 2)
    return bool(np.all(mask[:, :-1] >= mask[:, 1:]))


def left_pad(ids: np.ndarray) -> np.ndarray:
    """The same right-padded token rows (n, steps) with their padding moved to the front."""
    ids = np.asarray(ids)
    checks.check_ndim("ids", ids, 2)
    lengths = (ids != 0).sum(axis=1)
    out = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        if n:
            out[row, -n:] = ids[row, :n]
    return out


def train_val_split(n: int, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled indices (train, validation) of ``n`` examples, ``val_fraction`` of them for
    validation (seeded): the validation set comes out of the training data, never the test set."""
    n = checks.check_positive_int("n", n)
    if not 0 < val_fraction < 1:
        raise ValueError(f"`val_fraction` must lie strictly between 0 and 1, got {val_fraction!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# ---------------------------------------------------------------------------------------------
# 6. Sentiment models and the training recipe
# ---------------------------------------------------------------------------------------------
SENTIMENT_KINDS = ("bow", "lstm", "gru", "bigru")
EMBEDDING_DROPOUT = 0.5  # chapter 05's, chosen on the validation split


def chapter_recipe(fast: bool) -> dict:
    """Chapter 05's sizes and training recipe for the IMDB models, in one place (chapter 09's
    recurrent baseline uses it too). Full mode: 20 000 words, 512 steps (93 % of the training
    reviews whole), embedding 32 with embedding dropout 0.5, 32 units, at most 5 epochs of Adam at
    1e-3, batch 64: chosen on the validation split of the training reviews. fast: the shipped
    sample (800 training reviews): 64 steps, smaller sizes and a larger learning rate, so that
    3 epochs take seconds and still show something.

    The masking ablation trains on ``ablation_reviews`` training reviews read at
    ``ablation_length`` steps, without bucketing (padding is what it measures): in full mode
    4 000 reviews at 512 steps (93 % of them padded); in fast mode all 800 at 256 steps, so that
    most reviews carry padding there too (at 64 steps almost none would)."""
    if fast:
        return {"vocab_size": 5000, "sequence_length": 64, "embed_dim": 16, "units": 16,
                "embedding_dropout": EMBEDDING_DROPOUT, "epochs": 3, "batch_size": 32,
                "learning_rate": 1e-2, "ablation_reviews": 800, "ablation_length": 256}
    return {"vocab_size": 20000, "sequence_length": 512, "embed_dim": 32, "units": 32,
            "embedding_dropout": EMBEDDING_DROPOUT, "epochs": 5, "batch_size": 64,
            "learning_rate": 1e-3, "ablation_reviews": 4000, "ablation_length": 512}


def sentiment_model(kind: str, vocab_size: int, sequence_length: int | None = None, *,
                    embed_dim: int = 32, units: int = 32, dropout: float = 0.3,
                    embedding_dropout: float = 0.0, readout: str = "last", mask: bool = True,
                    seed: int | None = None, name: str | None = None):
    """An uncompiled functional Keras model: token ids (batch, sequence_length) int32 ->
    logits (batch, 1) for "positive review" (apply a sigmoid for a probability).

    kind: "bow" (bag of words: multi-hot over the vocabulary -> dropout -> Dense(1), i.e. logistic
    regression on which words occur), "lstm", "gru" or "bigru" (Embedding(vocab_size, embed_dim)
    -> LSTM / GRU / Bidirectional(GRU) with ``units`` -> dropout -> Dense(1)).
    embedding_dropout: recurrent kinds only, ``SpatialDropout1D`` on the embedded review (drops
    whole embedding channels for a review during training, a regulariser for the embedding
    table that carries most of the parameters; the mask passes through it).
    readout: what the classifier sees of a recurrent layer: "last" its last state, "mean" the
    mean of its states over the (unmasked) steps.
    mask: the Embedding gives the recurrent layer a mask from the padding id 0 (``mask_zero``);
    False only for the ablation that shows why it is needed. seed: set Keras's seed first (same
    initial weights on every run)."""
    import keras
    from keras import layers

    checks.check_choice("kind", kind, SENTIMENT_KINDS)
    checks.check_choice("readout", readout, ["last", "mean"])
    vocab_size = checks.check_positive_int("vocab_size", vocab_size)
    for arg, value in (("dropout", dropout), ("embedding_dropout", embedding_dropout)):
        if not 0 <= value < 1:
            raise ValueError(f"`{arg}` must lie in [0, 1), got {value!r}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")
    if kind == "bow":
        h = layers.CategoryEncoding(vocab_size, output_mode="multi_hot", name="bag_of_words")(inputs)
    else:
        h = layers.Embedding(vocab_size, checks.check_positive_int("embed_dim", embed_dim),
                             mask_zero=mask, name="embedding")(inputs)
        if embedding_dropout:
            h = layers.SpatialDropout1D(embedding_dropout, name="embedding_dropout")(h)
        units = checks.check_positive_int("units", units)
        sequences = readout == "mean"
        if kind == "lstm":
            h = layers.LSTM(units, return_sequences=sequences, name="lstm")(h)
        elif kind == "gru":
            h = layers.GRU(units, return_sequences=sequences, name="gru")(h)
        else:
            h = layers.Bidirectional(layers.GRU(units, return_sequences=sequences), name="bigru")(h)
        if sequences:  # averages over the real tokens only: the mask travels with h
            h = layers.GlobalAveragePooling1D(name="mean_over_steps")(h)
    h = layers.Dropout(dropout, name="dropout")(h)
    outputs = layers.Dense(1, name="logit")(h)
    return keras.Model(inputs, outputs, name=name or (kind if mask else f"{kind}_unmasked"))


@dataclass
class SentimentRun:
    """What :func:`train_sentiment` measured. model: the final model; history: per-epoch lists
    of the run on the training split ("loss", "accuracy", "val_loss", "val_accuracy",
    "examples_per_second"); best_epoch (from 1) and val_accuracy: the epoch chosen on the
    validation split and its accuracy; trained_on: training reviews; seconds: wall time of
    ``fit`` (validation and compilation included); examples_per_second: median training
    throughput over the epochs (validation excluded); test_accuracy: None unless a test set was
    given (the model with the best validation accuracy, measured once); test_correct: (n_test,)
    bool, which test reviews it got right (for paired comparisons between models on the same
    test set), None without a test set."""

    name: str
    model: object
    params: int
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    val_accuracy: float = float("nan")
    trained_on: int = 0
    seconds: float = 0.0
    examples_per_second: float = 0.0
    test_accuracy: float | None = None
    test_correct: np.ndarray | None = None


def compile_sentiment(model, learning_rate: float = 1e-3) -> None:
    """Adam, binary cross-entropy on logits, accuracy at logit 0 (probability 0.5)."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")])


def _check_xy(name: str, xy) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(xy, tuple | list) or len(xy) != 2:
        raise ValueError(f"`{name}` must be a pair (ids, labels)")
    x = checks.as_index_array(f"{name}[0]", xy[0], ndim=2).astype(np.int32)
    y = checks.as_index_array(f"{name}[1]", xy[1], upper=2, ndim=1)
    checks.check_same_length(f"{name}[0]", x, f"{name}[1]", y)
    return x, y.astype(np.float32)


def length_batches(ids: np.ndarray, labels: np.ndarray | None = None, *, batch_size: int = 64,
                   shuffle: bool = True, seed: int = 0, round_to: int = 32):
    """Batches of reviews of similar length, each cut to its longest review: a
    ``keras.utils.PyDataset`` for ``fit``, ``evaluate`` and ``predict``.

    ids: right-padded token ids (n, steps) int (0 = padding); labels: (n,) or None. The reviews
    are sorted by length (ties broken at random), cut into batches of ``batch_size``, and each
    batch is trimmed to its longest review rounded up to a multiple of ``round_to`` steps
    (a few distinct shapes, so the compiled step is traced a few times only). shuffle: the order
    of the batches and the tie-breaking are drawn anew every epoch from ``seed``; without it,
    batches follow the sorted order and ``order`` maps batch rows back to the rows of ``ids``.

    With a mask (``mask_zero=True``) and right padding the trimmed steps are padding that the
    recurrent layer skips anyway, so a model gives the same outputs on a trimmed batch; it only
    stops paying for them (the padded steps of a masked layer still cost compute).
    """
    import keras

    ids = checks.as_index_array("ids", ids, ndim=2).astype(np.int32)
    if not is_right_padded(padding_mask(ids)):
        raise ValueError("`ids` must be right-padded (real tokens first, then 0s): trimming a "
                         "batch cuts its trailing steps")
    if labels is not None:
        labels = np.asarray(labels, dtype=np.float32)
        checks.check_same_length("ids", ids, "labels", labels)
    batch_size = checks.check_positive_int("batch_size", batch_size)
    round_to = checks.check_positive_int("round_to", round_to)
    lengths = padding_mask(ids).sum(axis=1)

    class LengthBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self._arrange()

        def _arrange(self):
            ties = self.rng.random(len(lengths)) if shuffle else np.zeros(len(lengths))
            self.order = np.lexsort((ties, lengths))
            self.batches = [self.order[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
            if shuffle:
                self.batches = [self.batches[i] for i in self.rng.permutation(len(self.batches))]

        def __len__(self):
            return len(self.batches)

        def __getitem__(self, index):
            rows = self.batches[index]
            steps = min(ids.shape[1], max(round_to, -(-int(lengths[rows].max()) // round_to) * round_to))
            if labels is None:
                return (ids[rows, :steps],)
            return ids[rows, :steps], labels[rows]

        def on_epoch_end(self):
            if shuffle:
                self._arrange()

    return LengthBatches()


def _keras_input(batches):
    """What ``fit``/``predict`` get for :func:`length_batches`: the ``PyDataset`` itself, or on
    the TensorFlow backend a ``tf.data`` pipeline over it with a declared variable length.
    (Keras's TensorFlow adapter infers a ``PyDataset``'s shapes from its first two batches and
    refuses any later batch of another length; JAX and PyTorch take each batch as it comes.)"""
    import keras

    if keras.backend.backend() != "tensorflow":
        return batches
    import tensorflow as tf

    ids = tf.TensorSpec((None, None), tf.int32)
    signature = (ids,) if len(batches[0]) == 1 else (ids, tf.TensorSpec((None,), tf.float32))
    passes = []

    def generate():  # one pass per epoch; every pass after the first draws a new arrangement
        if passes:
            batches.on_epoch_end()
        passes.append(1)
        for index in range(len(batches)):
            yield batches[index]

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)


def _variable_length(model) -> bool:
    shape = getattr(model, "input_shape", None)
    return isinstance(shape, tuple) and len(shape) == 2 and shape[1] is None


def train_sentiment(model, train, val, *, test=None, epochs: int = 6, batch_size: int = 64,
                    learning_rate: float = 1e-3, patience: int = 2,
                    seed: int = 0, bucket: bool = False,
                    verbose: bool = False) -> SentimentRun:
    """The chapter's training recipe. train, val, test: (ids (n, steps) int, labels (n,) 0/1).

    Compiles ``model`` (:func:`compile_sentiment`), trains at most ``epochs`` epochs with Adam and
    keeps the weights of the epoch with the best validation accuracy (early stopping after
    ``patience`` epochs without improvement): the number of epochs is chosen on the validation
    set (the validation reviews are not trained on afterwards). If ``test`` is given, measure
    that model's test accuracy once. bucket: train and validate on :func:`length_batches`
    (batches of similar length, trimmed; the model must take any length: build it with
    ``sequence_length=None``): a fraction of the padded steps, but batches of similar lengths
    instead of random ones, which changes the training itself. verbose: one line per epoch.
    """
    import keras

    from course_lib.training import TrainingMonitor

    x_train, y_train = _check_xy("train", train)
    x_val, y_val = _check_xy("val", val)
    epochs = checks.check_positive_int("epochs", epochs)
    batch_size = checks.check_positive_int("batch_size", batch_size)
    keras.utils.set_random_seed(seed)
    compile_sentiment(model, learning_rate)
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=patience,
                                         restore_best_weights=True)
    monitor = TrainingMonitor(batch_size=batch_size, examples_per_epoch=len(x_train),
                              verbose=verbose)
    start = time.perf_counter()
    if bucket:
        if not _variable_length(model):
            raise ValueError("bucket=True trims every batch to its longest review: build the model "
                             "with sequence_length=None, got input shape "
                             f"{getattr(model, 'input_shape', None)}")
        fitted = model.fit(_keras_input(length_batches(x_train, y_train, batch_size=batch_size,
                                                       seed=seed)),
                           epochs=epochs, callbacks=[stop, monitor], verbose=0, shuffle=False,
                           validation_data=_keras_input(length_batches(x_val, y_val, batch_size=256,
                                                                       shuffle=False)))
    else:
        fitted = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs,
                           validation_data=(x_val, y_val), callbacks=[stop, monitor], verbose=0)
    seconds = time.perf_counter() - start
    history = {k: [float(v) for v in values] for k, values in fitted.history.items()}
    best = int(np.argmax(history["val_accuracy"]))
    run = SentimentRun(
        name=model.name, model=model, params=int(model.count_params()), history=history,
        best_epoch=best + 1, val_accuracy=history["val_accuracy"][best], trained_on=len(x_train),
        seconds=seconds, examples_per_second=float(np.median(history["examples_per_second"])))
    if test is not None:
        measure_test(run, test, batch_size)
    return run


def measure_test(run: SentimentRun, test, batch_size: int = 256) -> float:
    """Measure ``run.model`` on ``test`` (ids (n, steps), labels (n,)) once: sets
    ``run.test_correct`` (which reviews it got right) and ``run.test_accuracy``; returns the
    accuracy."""
    x_test, y_test = _check_xy("test", test)
    probs = predict_proba(run.model, x_test, max(batch_size, 256))
    run.test_correct = (probs > 0.5) == (y_test > 0.5)
    run.test_accuracy = float(np.mean(run.test_correct))
    return run.test_accuracy


def predict_proba(model, ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """P(positive) for each row of ``ids`` (n, steps): sigmoid of the model's logits, (n,).
    A model that takes any length (``sequence_length=None``) reads right-padded ``ids`` in
    :func:`length_batches` (trimmed batches, the rows put back in their order)."""
    import keras

    ids = np.asarray(ids, dtype=np.int32)
    if _variable_length(model) and ids.ndim == 2 and len(ids) and is_right_padded(padding_mask(ids)):
        batches = length_batches(ids, batch_size=batch_size, shuffle=False)
        logits = np.empty(len(ids), dtype=np.float64)
        logits[batches.order] = np.asarray(model.predict(_keras_input(batches),
                                                         verbose=0)).reshape(-1)
    else:
        logits = np.asarray(model.predict(ids, batch_size=batch_size, verbose=0)).reshape(-1)
    return np.asarray(keras.ops.sigmoid(logits), dtype=np.float64).reshape(-1)


def accuracy(model, ids: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of reviews whose predicted class (P(positive) > 0.5) is the label."""
    ids, labels = _check_xy("test", (ids, labels))
    return float(np.mean((predict_proba(model, ids) > 0.5) == (labels > 0.5)))


def confident_mistakes(probs: np.ndarray, labels: np.ndarray, n: int = 3) -> np.ndarray:
    """Indices of the ``n`` wrong predictions the model was most sure of. probs, labels: (n,)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    checks.check_same_shape("probs", probs, "labels", labels)
    wrong = np.flatnonzero((probs > 0.5) != (labels > 0.5))
    return wrong[np.argsort(-np.abs(probs[wrong] - 0.5), kind="stable")][:n]


def results_table(runs: Sequence[SentimentRun]) -> str:
    """A plain-text table: model, parameters, best epoch, validation accuracy, training reviews of
    the final model, test accuracy, fit seconds and training examples/s."""
    width = max([18] + [len(r.name) + 2 for r in runs])
    header = (f"{'model':<{width}}{'parameters':>11}{'best epoch':>11}{'val acc':>9}"
              f"{'trained on':>11}{'test acc':>10}{'fit s':>8}{'examples/s':>12}")
    lines = [header, "-" * len(header)]
    for r in runs:
        test = "-" if r.test_accuracy is None else f"{r.test_accuracy:.3f}"
        lines.append(f"{r.name:<{width}}{r.params:>11,}{r.best_epoch:>11}{r.val_accuracy:>9.3f}"
                     f"{r.trained_on:>11,}{test:>10}{r.seconds:>8.0f}"
                     f"{r.examples_per_second:>12,.0f}")
    return "\n".join(lines)

"""Reference solution for exercises/ex09_pretrained_language_models.py: scaled dot-product
attention and BERT's masking rule."""

import numpy as np


def scaled_dot_product_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """softmax(q k^T / sqrt(d_k)) v, for a batch.

    q: (batch, T, d_k) queries; k: (batch, S, d_k) keys; v: (batch, S, d_v) values.
    mask: None, or bool (batch, T, S): mask[b, t, s] False means query t may not look at
    key s, so its attention weight must be exactly 0 (set those scores to -1e9 before the
    softmax). Every query row has at least one True.
    Returns (out, weights): out (batch, T, d_v) and the attention weights (batch, T, S), each
    row summing to 1. The softmax must stay finite for scores in the thousands.
    """
    scores = q @ np.swapaxes(k, 1, 2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -1e9)
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v, weights


def mask_tokens(
    ids: np.ndarray,
    rng: np.random.Generator,
    vocab_size: int,
    rate: float = 0.15,
    n_special: int = 5,
    mask_id: int = 4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BERT's masked-token corruption of a batch of token ids.

    ids: int (batch, steps). Ids below n_special ([PAD], [UNK], [CLS], [SEP], [MASK]) are
    special: they are never chosen and never used as replacements.
    In each row, with n candidate positions (ids >= n_special), choose
    k = max(1, floor(rate * n + 0.5)) of them uniformly at random without replacement
    (k = 0 when n = 0). Each chosen position independently becomes
      - mask_id with probability 0.8,
      - a token drawn uniformly from [n_special, vocab_size) with probability 0.1,
      - its own token (unchanged) with probability 0.1.
    Use only `rng` (a numpy Generator) for randomness.
    Returns (inputs, labels, weights), each (batch, steps):
      inputs: the corrupted ids (int); labels: the original ids (int);
      weights: float, 1.0 at the chosen positions and 0.0 elsewhere (the loss is computed
      only where the weight is 1).
    """
    inputs = ids.copy()
    weights = np.zeros(ids.shape)
    for row in range(ids.shape[0]):
        candidates = np.flatnonzero(ids[row] >= n_special)
        if len(candidates) == 0:
            continue
        k = max(1, int(np.floor(rate * len(candidates) + 0.5)))
        for position in rng.choice(candidates, size=k, replace=False):
            weights[row, position] = 1.0
            action = rng.random()
            if action < 0.8:
                inputs[row, position] = mask_id
            elif action < 0.9:
                inputs[row, position] = rng.integers(n_special, vocab_size)
    return inputs, ids.copy(), weights

"""Exercise 09 (scaled dot-product attention, BERT's masking rule) through the real grader: see
exercise_helpers. The masking checks are judged in the grader from the returned arrays, so the
hostile cases below are the no-work and half-work versions of the rule."""

import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    assert_full_marks,
    assert_full_marks_on_fresh_inputs,
    assert_not_fooled,
    assert_stub_scores_zero,
)

NAME = "ex09_pretrained_language_models"

ATTENTION = "def scaled_dot_product_attention(q, k, v, mask=None):\n"
MASKING = "def mask_tokens(ids, rng, vocab_size, rate=0.15, n_special=5, mask_id=4):\n"

# (code appended to the reference solution, the check that must now fail)
FOOLS = [
    (ALWAYS_EQUAL + ATTENTION + "    return AlwaysEqual(), AlwaysEqual()\n",
     "attention_without_mask"),
    # returning the values unchanged (right shape when T == S)
    (ATTENTION + "    return v, np.ones(q.shape[:2] + k.shape[1:2]) / k.shape[1]\n",
     "attention_without_mask"),
    # weights (batch, 1, S): broadcasts against (batch, T, S)
    (ATTENTION + "    s = q @ np.swapaxes(k, 1, 2) / np.sqrt(q.shape[-1])\n"
     "    w = np.exp(s - s.max(-1, keepdims=True)); w /= w.sum(-1, keepdims=True)\n"
     "    return w @ v, w[:, :1]\n", "attention_without_mask"),
    # no 1/sqrt(d_k)
    (ATTENTION + "    s = q @ np.swapaxes(k, 1, 2)\n"
     "    w = np.exp(s - s.max(-1, keepdims=True)); w /= w.sum(-1, keepdims=True)\n"
     "    return w @ v, w\n", "attention_without_mask"),
    # the mask ignored
    (ATTENTION + "    s = q @ np.swapaxes(k, 1, 2) / np.sqrt(q.shape[-1])\n"
     "    w = np.exp(s - s.max(-1, keepdims=True)); w /= w.sum(-1, keepdims=True)\n"
     "    return w @ v, w\n", "attention_with_mask"),
    # the mask applied the wrong way round
    (ATTENTION + "    s = q @ np.swapaxes(k, 1, 2) / np.sqrt(q.shape[-1])\n"
     "    if mask is not None:\n        s = np.where(mask, -1e9, s)\n"
     "    w = np.exp(s - s.max(-1, keepdims=True)); w /= w.sum(-1, keepdims=True)\n"
     "    return w @ v, w\n", "attention_with_mask"),
    # an unstable softmax (no max subtracted)
    (ATTENTION + "    s = q @ np.swapaxes(k, 1, 2) / np.sqrt(q.shape[-1])\n"
     "    if mask is not None:\n        s = np.where(mask, s, -1e9)\n"
     "    w = np.exp(s); w /= w.sum(-1, keepdims=True)\n"
     "    return w @ v, w\n", "attention_is_numerically_stable"),
    # masking rule: nothing masked (the input returned unchanged)
    (MASKING + "    return ids, ids, np.zeros(ids.shape)\n", "masking_rule_structure"),
    (MASKING + "    return ids, ids, np.zeros(ids.shape)\n", "masking_rule_proportions"),
    # everything masked
    (MASKING + "    w = (ids >= n_special).astype(float)\n"
     "    return np.where(w > 0, mask_id, ids), ids, w\n", "masking_rule_structure"),
    # per-position coin flips: the right share on average, not k per row
    (MASKING + "    w = ((ids >= n_special) & (rng.random(ids.shape) < rate)).astype(float)\n"
     "    return np.where(w > 0, mask_id, ids), ids.copy(), w\n", "masking_rule_structure"),
    # special tokens may be chosen
    (MASKING + "    inputs, w = ids.copy(), np.zeros(ids.shape)\n"
     "    for r in range(len(ids)):\n"
     "        n = int((ids[r] >= n_special).sum())\n"
     "        if n:\n"
     "            k = max(1, int(np.floor(rate * n + 0.5)))\n"
     "            w[r, rng.choice(ids.shape[1], size=k, replace=False)] = 1.0\n"
     "    return np.where(w > 0, mask_id, ids), ids.copy(), w\n", "masking_rule_structure"),
    # always the first k candidates of a row (right counts and shares, no spread)
    (MASKING + "    inputs, w = ids.copy(), np.zeros(ids.shape)\n"
     "    for r in range(len(ids)):\n"
     "        c = np.flatnonzero(ids[r] >= n_special)\n"
     "        if len(c):\n"
     "            k = max(1, int(np.floor(rate * len(c) + 0.5)))\n"
     "            w[r, c[:k]] = 1.0\n"
     "            a = rng.random(k)\n"
     "            inputs[r, c[:k]] = np.where(a < 0.8, mask_id, np.where(\n"
     "                a < 0.9, rng.integers(n_special, vocab_size, k), ids[r, c[:k]]))\n"
     "    return inputs, ids.copy(), w\n", "masking_rule_proportions"),
    # every chosen position becomes [MASK] (no 80/10/10)
    (MASKING + "    inputs, labels, w = _reference_mask_tokens(ids, rng, vocab_size, rate,"
     " n_special, mask_id)\n"
     "    return np.where(w > 0, mask_id, ids), labels, w\n", "masking_rule_proportions"),
    # one fixed "random" token
    (MASKING + "    inputs, labels, w = _reference_mask_tokens(ids, rng, vocab_size, rate,"
     " n_special, mask_id)\n"
     "    swapped = (w > 0) & (inputs != mask_id) & (inputs != ids)\n"
     "    return np.where(swapped, n_special, inputs), labels, w\n",
     "masking_rule_proportions"),
    # numpy's global random state instead of the rng argument
    (MASKING + "    return _reference_mask_tokens(ids, np.random.default_rng(np.random.randint(9)),"
     " vocab_size, rate, n_special, mask_id)\n", "masking_uses_the_given_rng"),
]

KEEP_REFERENCE = "_reference_mask_tokens = mask_tokens\n"


def test_reference_solution_scores_full_marks(grader):
    assert_full_marks(grader, NAME)


def test_reference_scores_full_marks_on_fresh_inputs(fresh_graders):
    """Instructor grading: fresh inputs of several run seeds, the reference still 100 %."""
    assert_full_marks_on_fresh_inputs(fresh_graders, NAME)


def test_untouched_stub_scores_zero(grader):
    assert_stub_scores_zero(grader, NAME)


@pytest.mark.parametrize(("patch", "check_name"), FOOLS)
def test_check_is_not_fooled(grader, patch, check_name):
    assert_not_fooled(grader, NAME, KEEP_REFERENCE + patch, check_name)

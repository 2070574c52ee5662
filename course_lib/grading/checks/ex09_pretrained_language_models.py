"""Checks for exercises/ex09_pretrained_language_models.py: scaled dot-product attention (compared
with the reference) and BERT's masking rule (judged in the grader from the returned arrays).

The masking checks are property checks: a random rule cannot be compared draw for draw with
the reference, so the judge (in the grader) rebuilds the check's input ids from their seed (drawn
from the check's ``rng``; the judge reads it, and the rate, from the reference's run of the
check) and verifies, on the student's own output, every part of the rule: exactly k chosen
positions per row, none special, labels and weights, unchanged elsewhere, 80/10/10 proportions
and spread on a large input, and randomness drawn from the ``rng`` argument only. Every input
(shapes and values of the attention checks, token ids, rates, the generators given to
``mask_tokens``) is drawn from the check's ``rng``.
"""

import numpy as np

from course_lib.grading.spec import check

VOCAB, N_SPECIAL, MASK_ID = 1000, 5, 4
PAD, CLS = 0, 2


# -- attention ------------------------------------------------------------------------------
def _qkv(rng, t=3, s=5, d_k=4, d_v=6, batch=2):
    return (rng.standard_normal((batch, t, d_k)), rng.standard_normal((batch, s, d_k)),
            rng.standard_normal((batch, s, d_v)))


def _attention(module, q, k, v, mask=None):
    out, weights = module.scaled_dot_product_attention(q, k, v, mask)
    return {"out": out, "weights": weights}


@check(points=2)
def attention_without_mask(module, rng):
    """scaled_dot_product_attention(q, k, v) returns (out, weights): weights = softmax(q k^T /
    sqrt(d_k)) over the keys, shape (batch, T, S), out = weights v, shape (batch, T, d_v);
    here T = 2-4 queries, S = 5-7 keys, d_k and d_v 2-9, and a second case with T = S (2-6)."""
    t, s, d_k, d_v = (int(v) for v in rng.integers([2, 5, 2, 2], [5, 8, 10, 10]))
    result = _attention(module, *_qkv(rng, t=t, s=s, d_k=d_k, d_v=d_v))
    n, d_k, d_v = (int(v) for v in rng.integers([2, 2, 2], [7, 10, 10]))
    square = _attention(module, *_qkv(rng, t=n, s=n, d_k=d_k, d_v=d_v))
    return {"T_S": result, "T_equals_S": square}


@check(points=2)
def attention_with_mask(module, rng):
    """With a bool mask (batch, T, S), masked pairs (False) get weight exactly 0 and the other
    weights of the row still sum to 1 (a padding mask with lengths 1-6 and a random mask)."""
    q, k, v = _qkv(rng, t=4, s=6)
    lengths = rng.integers(1, 7, 2)
    padding = np.broadcast_to(np.arange(6)[None, None, :] < lengths[:, None, None], (2, 4, 6))
    random_mask = rng.random((2, 4, 6)) < 0.5
    random_mask[..., 0] = True  # every query may look at one key at least
    return {"padding": _attention(module, q, k, v, padding.copy()),
            "random": _attention(module, q, k, v, random_mask)}


@check(points=1)
def attention_is_numerically_stable(module, rng):
    """Scores in the thousands (q scaled by 500-2000) give finite weights and outputs: subtract
    the row maximum before exp (a plain exp overflows to inf and returns NaN)."""
    q, k, v = _qkv(rng)
    return _attention(module, float(rng.uniform(500.0, 2000.0)) * q, k, v)


# -- the masking rule -----------------------------------------------------------------------
def _ids(seed: int, batch: int, steps: int) -> np.ndarray:
    """Token ids like the chapter's: [CLS], words (some [UNK]), [PAD] after a random length;
    one row of specials only and one of a single word."""
    g = np.random.default_rng(seed)
    ids = g.integers(N_SPECIAL, VOCAB, (batch, steps))
    ids[g.random((batch, steps)) < 0.03] = 1  # [UNK]
    lengths = g.integers(2, steps + 1, batch)
    ids[np.arange(steps)[None, :] >= lengths[:, None]] = PAD
    ids[:, 0] = CLS
    ids[0, 1:] = PAD      # nothing to mask
    ids[1, 2:] = PAD      # one candidate
    return ids


SMALL, LARGE = (8, 20), (1000, 128)  # (batch, steps); the ids' seed is drawn by the check


def _expected_counts(ids: np.ndarray, rate: float) -> np.ndarray:
    n = (ids >= N_SPECIAL).sum(axis=1)
    return np.where(n > 0, np.maximum(1, np.floor(rate * n + 0.5)), 0).astype(int)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**63))


def _masking(module, ids, rng, rate=0.15):
    """mask_tokens on a copy of ``ids`` with a generator seeded from the check's ``rng``."""
    inputs, labels, weights = module.mask_tokens(
        ids.copy(), np.random.default_rng(_seed(rng)), VOCAB, rate=rate, n_special=N_SPECIAL,
        mask_id=MASK_ID)
    return {"inputs": inputs, "labels": labels, "weights": weights}


def _rule_violation(out: dict, ids: np.ndarray, rate: float) -> str | None:
    """None when ``out`` follows the rule's structure for ``ids``, else the reason."""
    for key in ("inputs", "labels", "weights"):
        value = out.get(key)
        if not isinstance(value, np.ndarray) or value.shape != ids.shape:
            shape = value.shape if isinstance(value, np.ndarray) else type(value).__name__
            return f"{key} must be an array of shape {ids.shape}, got {shape}"
        if value.dtype.kind not in "iuf" or not np.isfinite(value).all():
            return f"{key} must hold finite numbers, got dtype {value.dtype}"
    inputs, labels, weights = out["inputs"], out["labels"], out["weights"]
    if inputs.dtype.kind not in "iu" or labels.dtype.kind not in "iu":
        return f"inputs and labels must be integer arrays, got {inputs.dtype} and {labels.dtype}"
    if not np.array_equal(labels, ids):
        return "labels must be the original ids"
    if not np.isin(weights, (0.0, 1.0)).all():
        return "weights must be 1.0 at chosen positions and 0.0 elsewhere"
    chosen = weights == 1.0
    if (chosen & (ids < N_SPECIAL)).any():
        return "a special token ([PAD], [UNK], [CLS], ...) was chosen for masking"
    counts, expected = chosen.sum(axis=1), _expected_counts(ids, rate)
    if not np.array_equal(counts, expected):
        row = int(np.flatnonzero(counts != expected)[0])
        return (f"row {row}: {counts[row]} positions chosen, expected k = max(1, floor(rate * n + "
                f"0.5)) = {expected[row]} of its n = {int((ids[row] >= N_SPECIAL).sum())} "
                "candidates")
    if not np.array_equal(inputs[~chosen], ids[~chosen]):
        return "a position that was not chosen was changed"
    new = inputs[chosen]
    if not ((new == MASK_ID) | ((new >= N_SPECIAL) & (new < VOCAB))).all():
        return "a chosen position became something else than [MASK] or a non-special token"
    return None


def _structure_judge(student: dict, reference: dict) -> tuple[bool, str]:
    ids = _ids(int(reference["ids_seed"]), *SMALL)
    rates = [float(rate) for rate in reference["rates"]]
    for index, rate in enumerate(rates):
        reason = _rule_violation(student["outputs"][index], ids, rate)
        if reason:
            return False, f"rate {rate:.3f}: {reason}"
    shown = " and ".join(f"{rate:.3f}" for rate in rates)
    return True, f"the rule's structure holds (rates {shown})"


@check(points=2, judge=_structure_judge)
def masking_rule_structure(module, rng):
    """mask_tokens(ids, rng, vocab_size, rate, n_special, mask_id) on 8 padded rows returns
    (inputs, labels, weights) of shape (8, 20): exactly k = max(1, floor(rate n + 0.5)) chosen
    positions per row (0 if no candidate), never a special id; labels = the ids; weights 1.0
    at the chosen positions, 0.0 elsewhere; other positions unchanged; chosen ones [MASK] or
    a non-special id (rates 0.15 and one from 0.3-0.5)."""
    ids_seed = _seed(rng)
    ids = _ids(ids_seed, *SMALL)
    rates = [0.15, float(rng.uniform(0.3, 0.5))]
    return {"ids_seed": ids_seed, "rates": rates,
            "outputs": [_masking(module, ids, rng, rate) for rate in rates]}


def _within(name: str, value: float, target: float, tolerance: float) -> str | None:
    if abs(value - target) > tolerance:
        return f"{name} is {value:.3f}, expected {target:.3f} ± {tolerance}"
    return None


def _proportions_judge(student: dict, reference: dict) -> tuple[bool, str]:
    ids = _ids(int(reference["ids_seed"]), *LARGE)
    out = student["large"]
    reason = _rule_violation(out, ids, 0.15)
    if reason:
        return False, reason
    chosen = out["weights"] == 1.0
    original, new = ids[chosen], out["inputs"][chosen]
    masked = float(np.mean(new == MASK_ID))
    replaced = (new != MASK_ID) & (new != original)
    p_same = 1.0 / (VOCAB - N_SPECIAL)  # a random token can be the original one
    candidate = ids >= N_SPECIAL
    order = np.cumsum(candidate, axis=1)  # 1..n along each row's candidates
    first_half = candidate & (2 * order <= candidate.sum(axis=1, keepdims=True))
    distinct = len(np.unique(new[replaced]))
    checks = [
        _within("the [MASK] share of chosen positions", masked, 0.8, 0.025),
        _within("the random-token share", float(np.mean(replaced)), 0.1 * (1 - p_same), 0.02),
        _within("the unchanged share", float(np.mean(new == original)), 0.1 + 0.1 * p_same,
                0.02),
        _within("the chosen share of each row's first half",
                float(chosen[first_half].mean()), 0.15, 0.02),
        _within("the chosen share of each row's second half",
                float(chosen[candidate & ~first_half].mean()), 0.15, 0.02),
        None if distinct >= 400 else
        f"only {distinct} distinct random replacement tokens (draw them uniformly from "
        f"[{N_SPECIAL}, {VOCAB}))",
    ]
    failed = [c for c in checks if c]
    summary = (f"{int(chosen.sum())} chosen: {masked:.3f} [MASK], {np.mean(replaced):.3f} random, "
               f"{np.mean(new == original):.3f} unchanged")
    return (False, "; ".join(failed)) if failed else (True, summary)


@check(points=3, judge=_proportions_judge)
def masking_rule_proportions(module, rng):
    """On 1000 x 128 random token ids (vocabulary 1000), the chosen positions are spread over
    each row (15 % of the candidates in its first and in its second half), and of them about
    80 % become [MASK], 10 % a uniformly drawn non-special token, 10 % stay unchanged."""
    ids_seed = _seed(rng)
    return {"ids_seed": ids_seed, "large": _masking(module, _ids(ids_seed, *LARGE), rng)}


def _rng_judge(student: dict, reference: dict) -> tuple[bool, str]:
    same = all(np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(student["first"], student["again"], strict=True))
    if not same:
        return False, "the same rng seed must give the same masks"
    if np.array_equal(np.asarray(student["first"][2]), np.asarray(student["other"][2])):
        return False, "another rng seed chose the same positions: use the rng argument"
    if student["global_after"] != reference["global_after"]:
        return False, "mask_tokens used numpy's global random state: draw from `rng` only"
    return True, "randomness comes from the rng argument only"


@check(points=1, judge=_rng_judge)
def masking_uses_the_given_rng(module, rng):
    """mask_tokens draws every random number from its `rng` argument: the same seed gives the
    same result, another seed other positions, and numpy's global random state is untouched."""
    ids = _ids(_seed(rng), *SMALL)

    def run(seed):
        out = module.mask_tokens(ids.copy(), np.random.default_rng(seed), VOCAB, 0.15,
                                 N_SPECIAL, MASK_ID)
        return [np.asarray(a) for a in out]

    np.random.seed(int(rng.integers(2**32)))
    seed, other_seed = _seed(rng), _seed(rng)
    first, again, other = run(seed), run(seed), run(other_seed)
    return {"first": first, "again": again, "other": other,
            "global_after": float(np.random.random())}

"""Checks for exercises/ex06_generalization.py: inverted dropout, SGD with weight decay, FGSM, PGD.

The attacks get a small differentiable model (a tanh network with a softmax cross-entropy loss)
as ``loss_and_grad(x, y) -> (mean loss, dL/dx)``. PGD is compared exactly without a random start;
with one, the judge (in the grader) checks the eps-ball, the pixel range, the spread of the random
start and the loss the attack reaches, which it computes itself from the model's weights.
"""

import numpy as np

from course_lib.grading.spec import check

N, D, HIDDEN, CLASSES = 12, 20, 8, 3
DROP_RATE = 0.3


def _model(rng: np.random.Generator) -> dict:
    return {"W1": rng.standard_normal((D, HIDDEN)), "b1": 0.1 * rng.standard_normal(HIDDEN),
            "W2": rng.standard_normal((HIDDEN, CLASSES)), "b2": 0.1 * rng.standard_normal(CLASSES)}


def _loss_and_grad(params: dict):
    """The model as the student sees it: (x (n, D), y (n,)) -> (mean loss, dL/dx (n, D))."""
    w1, b1, w2, b2 = (np.asarray(params[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2"))

    def loss_and_grad(x, y):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        h = np.tanh(x @ w1 + b1)
        z = h @ w2 + b2
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = float(-np.mean(np.log(p[rows, y])))
        dz = p.copy()
        dz[rows, y] -= 1.0
        dz /= len(y)
        dx = ((dz @ w2.T) * (1.0 - h * h)) @ w1.T
        return loss, dx

    return loss_and_grad


def _pixels(rng: np.random.Generator, n: int = N, d: int = D) -> np.ndarray:
    """Pixel-like inputs in [0, 1]: about 30% exactly 0 (background), 10% exactly 1."""
    x = rng.uniform(0.0, 1.0, (n, d))
    u = rng.random((n, d))
    x[u < 0.3] = 0.0
    x[u > 0.9] = 1.0
    return x


def _problem(rng: np.random.Generator) -> tuple[dict, np.ndarray, np.ndarray]:
    params = _model(rng)
    return params, _pixels(rng), rng.integers(0, CLASSES, N)


# -- dropout -------------------------------------------------------------------------------------
def _dropout_judge(student: dict, reference: dict) -> tuple[bool, str]:
    """Inverted dropout's properties, on the reference's input (never the student's copy)."""
    x = np.asarray(reference["x"])
    out, mask = np.asarray(student["out"]), np.asarray(student["mask"])
    for name, value in (("out", out), ("mask", mask)):
        if value.shape != x.shape:
            return False, f"{name}: expected shape {x.shape}, got shape {value.shape}"
        if value.dtype.kind not in "biuf" or not np.all(np.isfinite(value)):
            return False, f"{name}: expected finite numbers"
    scale = 1.0 / (1.0 - DROP_RATE)
    kept = np.isclose(mask, scale, rtol=1e-9, atol=0)
    if not np.all(kept | (mask == 0)):
        bad = mask[~(kept | (mask == 0))][0]
        return False, (f"mask: every entry must be 0 (dropped) or 1/(1 - rate) = {scale:.6f} "
                       f"(kept and scaled: inverted dropout), got {bad:.6f}")
    if not np.allclose(out, x * mask, rtol=1e-9, atol=1e-12):
        return False, "out must equal x * mask"
    dropped = float(np.mean(mask == 0))
    if abs(dropped - DROP_RATE) > 0.03:
        return False, f"dropped a fraction {dropped:.3f} of the entries, expected about {DROP_RATE}"
    no_drop = np.asarray(student["out_rate_0"])
    if no_drop.shape != x.shape or not np.allclose(no_drop, x, rtol=1e-12, atol=0):
        return False, "with rate=0 the output must equal x"
    return True, f"dropped {dropped:.3f} of the entries (rate {DROP_RATE}), kept ones scaled by {scale:.4f}"


@check(points=2, judge=_dropout_judge)
def dropout_training(module, rng):
    """dropout_forward(x, rate=0.3, rng) in training drops about 30% of the entries and scales the
    rest by 1/(1 - rate); out = x * mask; rate=0 leaves x unchanged. x: (200, 50)."""
    x = rng.uniform(0.5, 1.5, (200, 50))
    out, mask = module.dropout_forward(x.copy(), DROP_RATE, np.random.default_rng(1))
    out_rate_0, _ = module.dropout_forward(x.copy(), 0.0, np.random.default_rng(2))
    return {"x": x, "out": out, "mask": mask, "out_rate_0": out_rate_0}


@check(points=1)
def dropout_inference(module, rng):
    """dropout_forward(x, rate, rng, training=False) returns (x, ones): inference is the identity."""
    x = rng.standard_normal((6, 7))
    out, mask = module.dropout_forward(x.copy(), 0.5, np.random.default_rng(0), training=False)
    return {"out": out, "mask": mask}


@check(points=1)
def dropout_gradient(module, rng):
    """dropout_backward(grad_out, mask) = grad_out * mask, shape (5, 8)."""
    keep = rng.random((5, 8)) >= 0.4
    mask = keep / 0.6
    return {"grad_x": module.dropout_backward(rng.standard_normal((5, 8)), mask)}


# -- SGD with weight decay -------------------------------------------------------------------------
@check(points=2)
def sgd_with_weight_decay(module, rng):
    """sgd_weight_decay_step(params, grads, lr=0.1, weight_decay=0.05) returns new arrays
    theta - lr * grad - lr * weight_decay * theta, and leaves params unchanged."""
    params = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3),
              "V": rng.standard_normal((3, 2))}
    grads = {name: rng.standard_normal(p.shape) for name, p in params.items()}
    before = {name: p.copy() for name, p in params.items()}
    new = module.sgd_weight_decay_step(params, grads, 0.1, 0.05)
    out = {name: new[name] for name in params}
    out["params_unchanged"] = all(np.array_equal(params[k], before[k]) for k in params)
    return out


# -- FGSM and PGD ------------------------------------------------------------------------------------
@check(points=2)
def fgsm_values(module, rng):
    """fgsm(x, y, loss_and_grad, eps=0.2) = clip(x + eps * sign(dL/dx), 0, 1), shape (12, 20)."""
    params, x, y = _problem(rng)
    return {"x_adv": module.fgsm(x.copy(), y, _loss_and_grad(params), 0.2)}


@check(points=3, rtol=0.0, atol=1e-7)
def pgd_without_random_start(module, rng):
    """pgd(x, y, loss_and_grad, eps=0.15, step_size=0.04, steps=8) with rng=None: 8 signed steps,
    each followed by the projection onto [x - eps, x + eps] and [0, 1]; shape (12, 20)."""
    params, x, y = _problem(rng)
    x_adv = module.pgd(x.copy(), y, _loss_and_grad(params), 0.15, 0.04, 8, rng=None)
    return {"x_adv": x_adv}


PGD_EPS = 0.1


def _pgd_judge(student: dict, reference: dict) -> tuple[bool, str]:
    """Constraints and strength of the random-start PGD, judged on the reference's inputs with
    the loss computed here, from the model's weights."""
    x = np.asarray(reference["x"], dtype=np.float64)
    y = np.asarray(reference["y"])
    loss_and_grad = _loss_and_grad(reference["params"])
    for key in ("x_adv", "x_start"):
        value = np.asarray(student[key])
        if value.shape != x.shape:
            return False, f"{key}: expected shape {x.shape}, got shape {value.shape}"
        if value.dtype.kind not in "biuf" or not np.all(np.isfinite(value)):
            return False, f"{key}: expected finite numbers"
        value = value.astype(np.float64)
        outside = float(np.max(np.abs(value - x)))
        if outside > PGD_EPS + 1e-9:
            return False, (f"{key} leaves the eps-ball: max |x_adv - x| = {outside:.4f} > "
                           f"eps = {PGD_EPS}")
        if value.min() < -1e-12 or value.max() > 1 + 1e-12:
            return False, (f"{key} leaves the pixel range [0, 1]: min {value.min():.4f}, "
                           f"max {value.max():.4f}")
    delta = np.asarray(student["x_start"], dtype=np.float64) - x
    inside = (x > PGD_EPS) & (x < 1 - PGD_EPS)  # pixels where the start is not clipped
    spread = float(np.mean(np.abs(delta[inside])) / PGD_EPS)
    if not 0.4 <= spread <= 0.6:
        return False, (f"the random start (steps=0) should be uniform in [-eps, eps]: mean "
                       f"|delta| / eps = {spread:.2f}, expected about 0.5")
    clean = loss_and_grad(x, y)[0]
    theirs = loss_and_grad(np.asarray(student["x_adv"], dtype=np.float64), y)[0]
    ours = loss_and_grad(np.asarray(reference["x_adv"], dtype=np.float64), y)[0]
    if theirs - clean < 0.8 * (ours - clean):
        return False, (f"the attack is too weak: loss {clean:.4f} -> {theirs:.4f}, the "
                       f"reference reaches {ours:.4f}")
    return True, (f"inside the eps-ball and [0, 1]; loss {clean:.4f} -> {theirs:.4f} "
                  f"(reference {ours:.4f})")


@check(points=3, judge=_pgd_judge)
def pgd_random_start_constraints(module, rng):
    """pgd with a random start (rng given), eps=0.1, step_size=0.025, steps=10: every pixel stays
    within eps of x and in [0, 1], the start (steps=0) is uniform in the eps-ball, and the loss
    rises at least 80% as much as with the reference PGD."""
    params, x, y = _problem(rng)
    f = _loss_and_grad(params)
    x_adv = module.pgd(x.copy(), y, f, PGD_EPS, 0.025, 10, rng=np.random.default_rng(3))
    x_start = module.pgd(x.copy(), y, f, PGD_EPS, 0.025, 0, rng=np.random.default_rng(4))
    return {"x": x, "y": y, "params": params, "x_adv": x_adv, "x_start": x_start}

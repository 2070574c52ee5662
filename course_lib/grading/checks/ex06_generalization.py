"""Checks for exercises/ex06_generalization.py: inverted dropout, SGD with weight decay, FGSM, PGD.

The attacks get a small differentiable model (a tanh network with a softmax cross-entropy loss)
as ``loss_and_grad(x, y) -> (mean loss, dL/dx)``. PGD is compared exactly without a random start;
with one, the judge (in the grader) checks the eps-ball, the pixel range, the spread of the random
start and the loss the attack reaches, which it computes itself from the model's weights.
Every input (the model, the data, the rates, eps, step sizes and the generators given to the
student's code) is drawn from the check's ``rng``; the judges read the inputs from the
reference's run of the check, never from the student's output.
"""

import numpy as np

from course_lib.grading.spec import check

N, D, HIDDEN, CLASSES = 12, 20, 8, 3


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
def _generator(rng: np.random.Generator) -> np.random.Generator:
    """A generator for the student's code, seeded from the check's ``rng``."""
    return np.random.default_rng(int(rng.integers(2**63)))


def _dropout_judge(student: dict, reference: dict) -> tuple[bool, str]:
    """Inverted dropout's properties, on the reference's input (never the student's copy)."""
    x, rate = np.asarray(reference["x"]), float(reference["rate"])
    out, mask = np.asarray(student["out"]), np.asarray(student["mask"])
    for name, value in (("out", out), ("mask", mask)):
        if value.shape != x.shape:
            return False, f"{name}: expected shape {x.shape}, got shape {value.shape}"
        if value.dtype.kind not in "biuf" or not np.all(np.isfinite(value)):
            return False, f"{name}: expected finite numbers"
    scale = 1.0 / (1.0 - rate)
    kept = np.isclose(mask, scale, rtol=1e-9, atol=0)
    if not np.all(kept | (mask == 0)):
        bad = mask[~(kept | (mask == 0))][0]
        return False, (f"mask: every entry must be 0 (dropped) or 1/(1 - rate) = {scale:.6f} "
                       f"(kept and scaled: inverted dropout), got {bad:.6f}")
    if not np.allclose(out, x * mask, rtol=1e-9, atol=1e-12):
        return False, "out must equal x * mask"
    dropped = float(np.mean(mask == 0))
    if abs(dropped - rate) > 0.03:
        return False, f"dropped a fraction {dropped:.3f} of the entries, expected about {rate:.3f}"
    no_drop = np.asarray(student["out_rate_0"])
    if no_drop.shape != x.shape or not np.allclose(no_drop, x, rtol=1e-12, atol=0):
        return False, "with rate=0 the output must equal x"
    return True, (f"dropped {dropped:.3f} of the entries (rate {rate:.3f}), kept ones scaled by "
                  f"{scale:.4f}")


@check(points=2, judge=_dropout_judge)
def dropout_training(module, rng):
    """dropout_forward(x, rate, rng) in training, with a rate from 0.2 to 0.5, drops about that
    share of the entries and scales the rest by 1/(1 - rate); out = x * mask; rate=0 leaves x
    unchanged. x: (200, 50)."""
    x = rng.uniform(0.5, 1.5, (200, 50))
    rate = float(rng.uniform(0.2, 0.5))
    out, mask = module.dropout_forward(x.copy(), rate, _generator(rng))
    out_rate_0, _ = module.dropout_forward(x.copy(), 0.0, _generator(rng))
    return {"x": x, "rate": rate, "out": out, "mask": mask, "out_rate_0": out_rate_0}


@check(points=1)
def dropout_inference(module, rng):
    """dropout_forward(x, rate, rng, training=False) returns (x, ones): inference is the identity."""
    x = rng.standard_normal((6, 7))
    out, mask = module.dropout_forward(x.copy(), float(rng.uniform(0.2, 0.7)), _generator(rng),
                                       training=False)
    return {"out": out, "mask": mask}


@check(points=1)
def dropout_gradient(module, rng):
    """dropout_backward(grad_out, mask) = grad_out * mask, shape (5, 8)."""
    rate = float(rng.uniform(0.2, 0.6))
    mask = (rng.random((5, 8)) >= rate) / (1.0 - rate)
    return {"grad_x": module.dropout_backward(rng.standard_normal((5, 8)), mask)}


# -- SGD with weight decay -------------------------------------------------------------------------
@check(points=2)
def sgd_with_weight_decay(module, rng):
    """sgd_weight_decay_step(params, grads, lr, weight_decay) (lr 0.05-0.5, weight_decay
    0.01-0.1) returns new arrays theta - lr * grad - lr * weight_decay * theta, and leaves params
    unchanged."""
    params = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3),
              "V": rng.standard_normal((3, 2))}
    grads = {name: rng.standard_normal(p.shape) for name, p in params.items()}
    before = {name: p.copy() for name, p in params.items()}
    new = module.sgd_weight_decay_step(params, grads, float(rng.uniform(0.05, 0.5)),
                                       float(rng.uniform(0.01, 0.1)))
    out = {name: new[name] for name in params}
    out["params_unchanged"] = all(np.array_equal(params[k], before[k]) for k in params)
    return out


# -- FGSM and PGD ------------------------------------------------------------------------------------
@check(points=2)
def fgsm_values(module, rng):
    """fgsm(x, y, loss_and_grad, eps) = clip(x + eps * sign(dL/dx), 0, 1) with eps 0.1-0.3,
    shape (12, 20)."""
    params, x, y = _problem(rng)
    return {"x_adv": module.fgsm(x.copy(), y, _loss_and_grad(params),
                                 float(rng.uniform(0.1, 0.3)))}


@check(points=3, rtol=0.0, atol=1e-7)
def pgd_without_random_start(module, rng):
    """pgd(x, y, loss_and_grad, eps, step_size, steps) with rng=None (eps 0.1-0.2, step_size
    0.3-0.45 eps, 8-10 steps): signed steps, each followed by the projection onto
    [x - eps, x + eps] and [0, 1]; shape (12, 20)."""
    params, x, y = _problem(rng)
    eps = float(rng.uniform(0.1, 0.2))
    step_size, steps = eps * float(rng.uniform(0.3, 0.45)), int(rng.integers(8, 11))
    x_adv = module.pgd(x.copy(), y, _loss_and_grad(params), eps, step_size, steps, rng=None)
    return {"x_adv": x_adv}


def _pgd_judge(student: dict, reference: dict) -> tuple[bool, str]:
    """Constraints and strength of the random-start PGD, judged on the reference's inputs with
    the loss computed here, from the model's weights."""
    x = np.asarray(reference["x"], dtype=np.float64)
    y = np.asarray(reference["y"])
    eps = float(reference["eps"])
    loss_and_grad = _loss_and_grad(reference["params"])
    for key in ("x_adv", "x_start"):
        value = np.asarray(student[key])
        if value.shape != x.shape:
            return False, f"{key}: expected shape {x.shape}, got shape {value.shape}"
        if value.dtype.kind not in "biuf" or not np.all(np.isfinite(value)):
            return False, f"{key}: expected finite numbers"
        value = value.astype(np.float64)
        outside = float(np.max(np.abs(value - x)))
        if outside > eps + 1e-9:
            return False, (f"{key} leaves the eps-ball: max |x_adv - x| = {outside:.4f} > "
                           f"eps = {eps:.4f}")
        if value.min() < -1e-12 or value.max() > 1 + 1e-12:
            return False, (f"{key} leaves the pixel range [0, 1]: min {value.min():.4f}, "
                           f"max {value.max():.4f}")
    delta = np.asarray(student["x_start"], dtype=np.float64) - x
    inside = (x > eps) & (x < 1 - eps)  # pixels where the start is not clipped
    spread = float(np.mean(np.abs(delta[inside])) / eps)
    # about 100 pixels: 0.5 +- 0.03 (fresh inputs: wide enough for every draw); no start gives 0
    if not 0.35 <= spread <= 0.65:
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
    """pgd with a random start (rng given), eps 0.08-0.15, step_size eps / 4, 9-12 steps: every
    pixel stays within eps of x and in [0, 1], the start (steps=0) is uniform in the eps-ball,
    and the loss rises at least 80% as much as with the reference PGD."""
    params, x, y = _problem(rng)
    f = _loss_and_grad(params)
    eps, steps = float(rng.uniform(0.08, 0.15)), int(rng.integers(9, 13))
    x_adv = module.pgd(x.copy(), y, f, eps, eps / 4, steps, rng=_generator(rng))
    x_start = module.pgd(x.copy(), y, f, eps, eps / 4, 0, rng=_generator(rng))
    return {"x": x, "y": y, "eps": eps, "params": params, "x_adv": x_adv, "x_start": x_start}

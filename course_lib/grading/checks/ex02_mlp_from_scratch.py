"""Checks for exercises/ex02_mlp_from_scratch.py: MLP forward, backward, SGD step, training.

Every input is drawn from the check's ``rng``: the layer sizes, values and labels, the learning
rate, and for training which 2000 of the shipped sample's 3000 training images ``train`` gets
and its ``seed``.
"""

import numpy as np

from course_lib.grading.spec import check

N_TRAIN = 2000   # images of the shipped MNIST training sample given to train(), drawn by rng
N_PREDICT = 200  # training images on which predict() must agree with the returned parameters
MIN_TRAIN_ACCURACY = 0.95
MIN_TEST_ACCURACY = 0.85
# On a hard draw (training images and seed differ in every instructor grading run) the bars are
# the reference parameters' own accuracies on the same images less these margins, when lower.
TRAIN_MARGIN, TEST_MARGIN = 0.02, 0.03


def _params(rng: np.random.Generator, n_in: int = 5, n_hidden: int = 6, n_out: int = 3) -> dict:
    return {
        "W1": rng.standard_normal((n_in, n_hidden)),
        "b1": rng.standard_normal(n_hidden),
        "W2": rng.standard_normal((n_hidden, n_out)),
        "b2": rng.standard_normal(n_out),
    }


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1).astype(np.float64) / 255.0


def _mnist(split: str, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The images ``rows`` (all when None) of the shipped MNIST sample, as (n, 784) floats."""
    from course_lib.data import load

    x, y = load("mnist", split, sample=True)
    if rows is not None:
        x, y = x[rows], y[rows]
    return _flat(x), np.asarray(y, dtype=np.int64)


def _sizes(rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(batch 3-6, n_in 3-7, n_hidden 4-8, n_out 2-5)."""
    return tuple(int(v) for v in rng.integers([3, 3, 4, 2], [7, 8, 9, 6]))


@check(points=2)
def forward_probabilities(module, rng):
    """forward(x, params) returns (probs, cache); probs = softmax(relu(x W1 + b1) W2 + b2),
    shape (batch, n_out), each row sums to 1 (batch 3-6, n_in 3-7, n_hidden 4-8, n_out 2-5)."""
    batch, n_in, n_hidden, n_out = _sizes(rng)
    x = rng.standard_normal((batch, n_in))
    probs, _ = module.forward(x, _params(rng, n_in, n_hidden, n_out))
    return {"probs": probs}


@check(points=1)
def loss_value(module, rng):
    """loss(probs, y) is the mean of -log probs[i, y[i]] over the batch (a float)."""
    batch, _, _, n_out = _sizes(rng)
    probs = rng.dirichlet(np.ones(n_out), size=batch)
    y = rng.integers(0, n_out, batch)
    return {"loss": np.asarray(module.loss(probs, y), dtype=np.float64)}


@check(points=3)
def backward_gradients(module, rng):
    """backward(params, cache, y) returns {"W1", "b1", "W2", "b2"}: the gradients of the mean
    cross-entropy, each with the shape of its parameter (dL/dz2 = (probs - onehot(y)) / batch)."""
    batch, n_in, n_hidden, n_out = _sizes(rng)
    x = rng.standard_normal((batch, n_in))
    params = _params(rng, n_in, n_hidden, n_out)
    y = rng.integers(0, n_out, batch)
    _, cache = module.forward(x, params)
    grads = module.backward(params, cache, y)
    return {name: grads[name] for name in ("W1", "b1", "W2", "b2")}


@check(points=1)
def sgd_update(module, rng):
    """sgd_step(params, grads, lr) returns new parameters params[name] - lr * grads[name]
    (lr drawn from 0.01-1)."""
    _, n_in, n_hidden, n_out = _sizes(rng)
    params = _params(rng, n_in, n_hidden, n_out)
    grads = {name: rng.standard_normal(value.shape) for name, value in params.items()}
    new = module.sgd_step(params, grads, float(rng.uniform(0.01, 1.0)))
    return {name: new[name] for name in ("W1", "b1", "W2", "b2")}


PARAM_SHAPES = {"W1": (784, 64), "b1": (64,), "W2": (64, 10), "b2": (10,)}
EPOCHS = 10


def _grader_predict(x: np.ndarray, params: dict) -> np.ndarray:
    """The grader's own evaluation of the student's parameters (never the student's code)."""
    hidden = np.maximum(x @ params["W1"] + params["b1"], 0.0)
    return np.argmax(hidden @ params["W2"] + params["b2"], axis=1)


def _trained_params(student: dict) -> tuple[dict | None, str]:
    params = student.get("params")
    if type(params) is not dict:
        return None, "train() must return a dict of parameters as its first value"
    found = {}
    for name, shape in PARAM_SHAPES.items():
        value = params.get(name)
        if type(value) is not np.ndarray or value.dtype.kind not in "fiu":
            return None, f"params[{name!r}] must be a numeric array, got {type(value).__name__}"
        if value.shape != shape:
            return None, f"params[{name!r}] has shape {value.shape}, expected {shape}"
        if not np.all(np.isfinite(value)):
            return None, f"params[{name!r}] contains NaN or inf"
        found[name] = value.astype(np.float64)
    return found, ""


def _training_judge(student: dict, reference: dict) -> tuple[bool, str]:
    """Evaluates the returned parameters in the grader: on the training images (which ones: from
    the reference's run of the check, never from the student's output) and on held-out images
    drawn here, at judging time, that the student's code never receives. The bars are
    MIN_TRAIN_ACCURACY and MIN_TEST_ACCURACY, or, where lower, the reference parameters'
    accuracies on the same images less TRAIN_MARGIN and TEST_MARGIN (SGD on some draws of
    images and seed ends lower)."""
    from course_lib.grading import heldout

    params, problem = _trained_params(student)
    if params is None:
        return False, problem
    history = np.asarray(student.get("history"), dtype=np.float64)
    if history.shape != (EPOCHS,) or not np.all(np.isfinite(history)):
        return False, f"history must hold {EPOCHS} finite per-epoch losses, got shape {history.shape}"
    if not history[-1] < history[0]:
        return False, f"the training loss did not go down: {history[0]:.3f} -> {history[-1]:.3f}"
    x_train, y_train = _mnist("train", np.asarray(reference["rows"], dtype=np.int64))
    x_pool, y_pool = _mnist("test")
    x_held, y_held = heldout.noisy_subset(heldout.fresh_rng(), x_pool, y_pool, noise=0.05)
    train_acc = heldout.accuracy(_grader_predict(x_train, params), y_train)
    held_acc = heldout.accuracy(_grader_predict(x_held, params), y_held)
    need_train, need_held = MIN_TRAIN_ACCURACY, MIN_TEST_ACCURACY
    ours, _ = _trained_params(reference)
    if ours is not None:
        need_train = min(need_train, heldout.accuracy(_grader_predict(x_train, ours), y_train)
                         - TRAIN_MARGIN)
        need_held = min(need_held, heldout.accuracy(_grader_predict(x_held, ours), y_held)
                        - TEST_MARGIN)
    text = (f"train accuracy {train_acc:.3f} (need {need_train:.3f}), held-out accuracy "
            f"{held_acc:.3f} on {len(y_held)} noisy test images (need {need_held:.3f})")
    passed = train_acc >= need_train and held_acc >= need_held
    predicted = np.asarray(student.get("predictions"))
    expected = _grader_predict(x_train[:N_PREDICT], params)
    if predicted.shape != expected.shape or np.mean(predicted == expected) < 0.99:
        passed = False
        text += (f"; but predict(x, params) disagrees with these parameters on the training "
                 f"images (returned shape {predicted.shape}, expected {expected.shape})")
    return passed, text


@check(points=3, judge=_training_judge)
def training_reaches_accuracy(module, rng):
    """train(x, y, n_hidden=64, epochs=10, lr=0.2, batch_size=32, seed=s) on 2000 MNIST sample
    images (drawn at random from the 3000, and the seed s too) returns parameters that the grader
    itself evaluates: >= 95% accuracy on those images and >= 85% on held-out test images (with
    fresh pixel noise) it never gives to your code (on a draw where the reference falls short,
    its accuracies less 2 and 3 points); the loss history (one value per epoch) must fall, and
    predict(x, params) must agree with it."""
    from course_lib.data import load

    pool = len(load("mnist", "train", sample=True)[1])
    rows = np.sort(rng.choice(pool, N_TRAIN, replace=False))
    x_train, y_train = _mnist("train", rows)
    params, history = module.train(x_train, y_train, n_hidden=64, epochs=EPOCHS, lr=0.2,
                                   batch_size=32, seed=int(rng.integers(2**31)))
    return {
        "params": {name: params[name] for name in PARAM_SHAPES},
        "history": [float(h) for h in history],
        "predictions": np.asarray(module.predict(x_train[:N_PREDICT], params)),
        "rows": rows,
    }

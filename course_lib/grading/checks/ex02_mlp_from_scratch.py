"""Checks for exercises/ex02_mlp_from_scratch.py: MLP forward, backward, SGD step, training."""

import numpy as np

from course_lib.grading.spec import check

N_TRAIN = 2000   # images of the shipped MNIST training sample given to train()
N_PREDICT = 200  # training images on which predict() must agree with the returned parameters
MIN_TRAIN_ACCURACY = 0.95
MIN_TEST_ACCURACY = 0.85


def _params(rng: np.random.Generator, n_in: int = 5, n_hidden: int = 6, n_out: int = 3) -> dict:
    return {
        "W1": rng.standard_normal((n_in, n_hidden)),
        "b1": rng.standard_normal(n_hidden),
        "W2": rng.standard_normal((n_hidden, n_out)),
        "b2": rng.standard_normal(n_out),
    }


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1).astype(np.float64) / 255.0


def _mnist(split: str, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` (all when None) images of the shipped MNIST sample, as (n, 784) floats."""
    from course_lib.data import load

    x, y = load("mnist", split, sample=True)
    return _flat(x[:n]), np.asarray(y[:n], dtype=np.int64)


@check(points=2)
def forward_probabilities(module, rng):
    """forward(x, params) returns (probs, cache); probs = softmax(relu(x W1 + b1) W2 + b2),
    shape (batch, n_out), each row sums to 1."""
    x = rng.standard_normal((4, 5))
    probs, _ = module.forward(x, _params(rng))
    return {"probs": probs}


@check(points=1)
def loss_value(module, rng):
    """loss(probs, y) is the mean of -log probs[i, y[i]] over the batch (a float)."""
    probs = rng.dirichlet(np.ones(3), size=6)
    y = np.array([0, 2, 1, 1, 0, 2])
    return {"loss": np.asarray(module.loss(probs, y), dtype=np.float64)}


@check(points=3)
def backward_gradients(module, rng):
    """backward(params, cache, y) returns {"W1", "b1", "W2", "b2"}: the gradients of the mean
    cross-entropy, each with the shape of its parameter (dL/dz2 = (probs - onehot(y)) / batch)."""
    x = rng.standard_normal((4, 5))
    params = _params(rng)
    y = np.array([2, 0, 1, 2])
    _, cache = module.forward(x, params)
    grads = module.backward(params, cache, y)
    return {name: grads[name] for name in ("W1", "b1", "W2", "b2")}


@check(points=1)
def sgd_update(module, rng):
    """sgd_step(params, grads, lr) returns new parameters params[name] - lr * grads[name]."""
    params = _params(rng)
    grads = {name: rng.standard_normal(value.shape) for name, value in params.items()}
    new = module.sgd_step(params, grads, 0.5)
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
    """Evaluates the returned parameters in the grader: on the training images and on held-out
    images drawn here, at judging time, that the student's code never receives."""
    from course_lib.grading import heldout

    params, problem = _trained_params(student)
    if params is None:
        return False, problem
    history = np.asarray(student.get("history"), dtype=np.float64)
    if history.shape != (EPOCHS,) or not np.all(np.isfinite(history)):
        return False, f"history must hold {EPOCHS} finite per-epoch losses, got shape {history.shape}"
    if not history[-1] < history[0]:
        return False, f"the training loss did not go down: {history[0]:.3f} -> {history[-1]:.3f}"
    x_train, y_train = _mnist("train", N_TRAIN)
    x_pool, y_pool = _mnist("test", None)
    x_held, y_held = heldout.noisy_subset(heldout.fresh_rng(), x_pool, y_pool, noise=0.05)
    train_acc = heldout.accuracy(_grader_predict(x_train, params), y_train)
    held_acc = heldout.accuracy(_grader_predict(x_held, params), y_held)
    text = (f"train accuracy {train_acc:.3f} (need {MIN_TRAIN_ACCURACY}), held-out accuracy "
            f"{held_acc:.3f} on {len(y_held)} noisy test images (need {MIN_TEST_ACCURACY})")
    passed = train_acc >= MIN_TRAIN_ACCURACY and held_acc >= MIN_TEST_ACCURACY
    predicted = np.asarray(student.get("predictions"))
    expected = _grader_predict(x_train[:N_PREDICT], params)
    if predicted.shape != expected.shape or np.mean(predicted == expected) < 0.99:
        passed = False
        text += (f"; but predict(x, params) disagrees with these parameters on the training "
                 f"images (returned shape {predicted.shape}, expected {expected.shape})")
    return passed, text


@check(points=3, judge=_training_judge)
def training_reaches_accuracy(module, rng):
    """train(x, y, n_hidden=64, epochs=10, lr=0.2, batch_size=32, seed=0) on 2000 MNIST sample
    images returns parameters that the grader itself evaluates: >= 95% accuracy on those images
    and >= 85% on held-out test images (with fresh pixel noise) it never gives to your code; the
    loss history (one value per epoch) must fall, and predict(x, params) must agree with it."""
    x_train, y_train = _mnist("train", N_TRAIN)
    params, history = module.train(
        x_train, y_train, n_hidden=64, epochs=EPOCHS, lr=0.2, batch_size=32, seed=0
    )
    return {
        "params": {name: params[name] for name in PARAM_SHAPES},
        "history": [float(h) for h in history],
        "predictions": np.asarray(module.predict(x_train[:N_PREDICT], params)),
    }

"""Checks for exercises/ex02_mlp_from_scratch.py: MLP forward, backward, SGD step, training."""

import numpy as np

from course_lib.grading.spec import check

N_TRAIN = 2000   # images of the shipped MNIST training sample used for training
N_TEST = 500     # images of the shipped MNIST test sample used as held-out data
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


def _mnist(split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
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


def _accuracy_judge(student: dict, reference: dict) -> tuple[bool, str]:
    """Accuracy from the returned predictions against labels loaded here, in the grader."""
    from course_lib.data import load

    _, y_train = load("mnist", "train", sample=True)
    _, y_test = load("mnist", "test", sample=True)
    results = []
    for key, labels, minimum in (
        ("train_predictions", y_train[:N_TRAIN], MIN_TRAIN_ACCURACY),
        ("test_predictions", y_test[:N_TEST], MIN_TEST_ACCURACY),
    ):
        pred = np.asarray(student.get(key))
        if pred.shape != labels.shape:
            return False, f"{key} has shape {pred.shape}, expected {labels.shape}"
        results.append((key, float(np.mean(pred == labels)), minimum))
    history = np.asarray(student.get("history"), dtype=np.float64)
    if history.ndim != 1 or len(history) < 2 or not np.all(np.isfinite(history)):
        return False, "history must be a list of finite per-epoch losses"
    if not history[-1] < history[0]:
        return False, f"the training loss did not go down: {history[0]:.3f} -> {history[-1]:.3f}"
    text = ", ".join(f"{k.split('_')[0]} accuracy {a:.3f} (need {m})" for k, a, m in results)
    return all(a >= m for _, a, m in results), text


@check(points=3, judge=_accuracy_judge)
def training_reaches_accuracy(module, rng):
    """train(x, y, n_hidden=64, epochs=10, lr=0.2, batch_size=32, seed=0) on 2000 MNIST sample
    images reaches >= 95% accuracy on them and >= 85% on 500 held-out test images, with a
    falling loss history."""
    x_train, y_train = _mnist("train", N_TRAIN)
    x_test, _ = _mnist("test", N_TEST)
    params, history = module.train(
        x_train, y_train, n_hidden=64, epochs=10, lr=0.2, batch_size=32, seed=0
    )
    return {
        "train_predictions": np.asarray(module.predict(x_train, params), dtype=np.int64),
        "test_predictions": np.asarray(module.predict(x_test, params), dtype=np.int64),
        "history": [float(h) for h in history],
    }

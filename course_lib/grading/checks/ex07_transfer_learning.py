"""Checks for exercises/ex07_transfer_learning.py: freezing by name and by depth, the L2-SP penalty
and its gradient, and a linear head on frozen features judged on held-out features.

Every input (the models' depth, widths and frozen layers, the names and depths to unfreeze, the
arrays, strengths and labels) is drawn from the check's ``rng``."""

import numpy as np

from course_lib.grading.spec import check

# ----------------------------------------------------------------- part 1: freezing
# Stand-ins for Keras layers and models with the attributes the exercise uses: a frozen layer's
# trainable_weights is empty, batch norm's moving statistics are never trainable, and setting a
# model's `trainable` sets every layer's (as in Keras).


class _Weight:
    def __init__(self, shape):
        self.shape = tuple(shape)


class _Layer:
    def __init__(self, name, shapes=()):
        self.name = name
        self.trainable = True
        self._weights = [_Weight(s) for s in shapes]

    @property
    def weights(self):
        return list(self._weights)

    @property
    def trainable_weights(self):
        return list(self._weights) if self.trainable else []


class Conv2D(_Layer):
    pass


class Dense(_Layer):
    pass


class BatchNormalization(_Layer):
    def __init__(self, name, channels):
        super().__init__(name, [(channels,)] * 4)   # gamma, beta, moving mean, moving variance

    @property
    def trainable_weights(self):
        return self._weights[:2] if self.trainable else []


class _Model:
    def __init__(self, layers):
        self.layers = layers
        self._trainable = True

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = bool(value)

    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return ([w for layer in self.layers for w in layer.trainable_weights]
                if self._trainable else [])


def _backbone(rng: np.random.Generator, blocks: int = 4) -> _Model:
    """A cifar_backbone-like stand-in: input, rescaling, then per block conv -> bn -> relu ->
    pool, global pooling and a dense head; channel counts drawn from ``rng``."""
    layers = [_Layer("pixels"), _Layer("rescale")]
    channels = 3
    for i in range(1, blocks + 1):
        out = int(rng.integers(2, 9))
        layers += [Conv2D(f"block{i}_conv1", [(3, 3, channels, out)]),
                   BatchNormalization(f"block{i}_bn1", out),
                   _Layer(f"block{i}_relu1"), _Layer(f"block{i}")]
        channels = out
    layers += [_Layer("features"), Dense("head", [(channels, 5), (5,)])]
    return _Model(layers)


def _counts(counts) -> np.ndarray:
    """(trainable, non-trainable) as an int64 array of shape (2,) (a wrong shape fails)."""
    return np.asarray(counts, dtype=np.int64)


def _state(model: _Model, counts) -> dict:
    return {"count": _counts(counts),
            "trainable": np.array([layer.trainable for layer in model.layers if layer.weights],
                                  dtype=np.int64)}


@check(points=1)
def parameter_counts_of_a_model(module, rng):
    """parameter_counts(model) is (size of model.trainable_weights, size of the rest of
    model.weights): frozen layers and batch norm's moving statistics count as non-trainable
    (3-6 blocks, some layers frozen)."""
    model = _backbone(rng, blocks=int(rng.integers(3, 7)))
    for layer in model.layers:
        if layer.weights and rng.random() < 0.4:
            layer.trainable = False
    return {"counts": _counts(module.parameter_counts(model))}


@check(points=2)
def unfreeze_by_name_chooses_blocks(module, rng):
    """unfreeze_by_name(model, ["blockK", "head"]) (K from 2 to 9) makes only blockK_* and head
    trainable, batch norm frozen, on a model with 10-14 blocks, starting from a frozen model;
    then unfreeze_by_name(model, ["block1"]) must not choose "block10_conv1"; each returns
    parameter_counts(model)."""
    model = _backbone(rng, blocks=int(rng.integers(10, 15)))
    model.trainable = False
    chosen = f"block{int(rng.integers(2, 10))}"
    first = _state(model, module.unfreeze_by_name(model, [chosen, "head"]))
    second = _state(model, module.unfreeze_by_name(model, ["block1"]))
    return {"first_count": first["count"], "first_trainable": first["trainable"],
            "second_count": second["count"], "second_trainable": second["trainable"]}


@check(points=2)
def unfreeze_top_counts_layers_with_weights(module, rng):
    """unfreeze_top(model, n) makes the top n layers with weights trainable (batch norm stays
    frozen but counts among the n); tried with n drawn from 1 to all but one, with n = 0 and
    with all of them (3-6 blocks)."""
    model = _backbone(rng, blocks=int(rng.integers(3, 7)))
    with_weights = sum(1 for layer in model.layers if layer.weights)
    out = {}
    for label, n in (("n", int(rng.integers(1, with_weights))), ("0", 0),
                     ("all", with_weights)):
        state = _state(model, module.unfreeze_top(model, n))
        out[f"count_{label}"] = state["count"]
        out[f"trainable_{label}"] = state["trainable"]
    return out


# ----------------------------------------------------------------- part 2: L2-SP


def _strengths(rng: np.random.Generator) -> tuple[float, float]:
    """(alpha 0.1-1, beta 0.01-0.1)."""
    return float(rng.uniform(0.1, 1.0)), float(rng.uniform(0.01, 0.1))


def _l2sp_inputs(rng):
    """Target parameters by name (two transferred layers and a new head, in a shuffled order)
    and the source's (the same two layers and the source's own head, which the target
    dropped)."""
    shapes = {"block1_conv1/kernel": (3, 3, 2, 4), "block1_conv1/bias": (4,),
              "block2_conv1/kernel": (6, 5)}
    source = {name: rng.standard_normal(shape) for name, shape in shapes.items()}
    source["predictions/kernel"] = rng.standard_normal((5, 7))
    weights = {name: source[name] + 0.1 * rng.standard_normal(shape)
               for name, shape in shapes.items()}
    weights["head/kernel"] = rng.standard_normal((5, 3))
    weights["head/bias"] = rng.standard_normal(3)
    order = rng.permutation(sorted(weights))
    return {str(name): weights[str(name)] for name in order}, source


@check(points=1)
def l2sp_penalty_value(module, rng):
    """l2sp_penalty(weights, source, alpha, beta) = alpha/2 sum ||w - w_s||^2 over the names
    in both + beta/2 sum ||h||^2 over the names only in weights (the source's own head
    ignored) (alpha 0.1-1, beta 0.01-0.1); 0 at the source with beta = 0 and no head;
    ValueError when a source array's shape (1, 4) differs from its parameter's (4,)."""
    weights, source = _l2sp_inputs(rng)
    alpha, beta = _strengths(rng)
    transferred = {name: source[name] for name in weights if name in source}
    mismatched = dict(source, **{"block1_conv1/bias": source["block1_conv1/bias"][None, :]})
    try:
        module.l2sp_penalty(weights, mismatched, alpha, beta)
        raises = 0
    except ValueError:
        raises = 1
    return {"penalty": np.asarray(module.l2sp_penalty(weights, source, alpha, beta),
                                  dtype=np.float64),
            "at_source": np.asarray(module.l2sp_penalty(transferred, source, alpha, 0.0),
                                    dtype=np.float64),
            "mismatch_raises": np.int64(raises)}


@check(points=2)
def l2sp_gradient_arrays(module, rng):
    """l2sp_gradient returns a dict with exactly the names of weights: alpha (w - w_s) for a
    transferred array, beta h for a head array, each with exactly its parameter's shape."""
    weights, source = _l2sp_inputs(rng)
    grads = module.l2sp_gradient(weights, source, *_strengths(rng))
    if not isinstance(grads, dict):
        raise TypeError(f"l2sp_gradient must return a dict, got {type(grads).__name__}")
    out = {f"grad {name}": np.asarray(grads[name]) for name in weights if name in grads}
    out["names match"] = np.int64(sorted(map(str, grads)) == sorted(weights))
    return out


# ----------------------------------------------------------------- part 3: a linear head
# Features "as a frozen backbone would give them": non-negative, on different scales, one
# cluster per class. The distribution is fixed; every draw of examples is new.

N_CLASSES, N_FEATURES = 5, 32
N_TRAIN_PER_CLASS = 80
MIN_HELD_OUT_ACCURACY = 0.75
_NOISE = 2.5


def features_of(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` examples of every class: features (n, 32) float64, labels (n,) int64."""
    fixed = np.random.default_rng(7)
    means = fixed.gamma(2.0, 1.0, (N_CLASSES, N_FEATURES))
    scales = fixed.uniform(0.5, 4.0, N_FEATURES)
    offsets = 4.0 * fixed.uniform(0.0, 1.0, N_FEATURES)
    labels = rng.permutation(np.repeat(np.arange(N_CLASSES), per_class))
    noisy = means[labels] + _NOISE * rng.standard_normal((len(labels), N_FEATURES))
    return (np.maximum(noisy, 0.0) + offsets) * scales, labels.astype(np.int64)


@check(points=1)
def train_head_matches_the_recipe(module, rng):
    """train_head(features, labels, 3, epochs, lr, l2=1e-3) (15-25 epochs, lr 0.2-0.8) on a small
    problem (30 examples, 4 features) follows the docstring's recipe exactly: the returned
    (W', b') of shapes (d, 3) and (3,)."""
    features = rng.uniform(0.0, 5.0, (30, 4))
    labels = rng.permutation(np.arange(30) % 3)
    W, b = module.train_head(features, labels, 3, epochs=int(rng.integers(15, 26)),
                             lr=float(rng.uniform(0.2, 0.8)), l2=1e-3)
    return {"W": np.asarray(W), "b": np.asarray(b)}


def _head_params(student: dict):
    W, b = student.get("W"), student.get("b")
    for name, value, shape in (("W", W, (N_FEATURES, N_CLASSES)), ("b", b, (N_CLASSES,))):
        if type(value) is not np.ndarray or value.dtype.kind not in "fiu":
            return None, f"{name} must be a numeric array, got {type(value).__name__}"
        if value.shape != shape:
            return None, (f"{name} has shape {value.shape}, expected {shape} (the shapes must "
                          f"match exactly)")
        if not np.all(np.isfinite(value)):
            return None, f"{name} contains NaN or inf"
    return (W.astype(np.float64), b.astype(np.float64)), ""


def _head_judge(student: dict, reference: dict) -> tuple[bool, str]:
    """Scores the returned (W, b) in the grader, with its own code, on held-out features drawn
    here, at judging time, that the student's code never receives (the features predict_head
    was given: from the reference's run of the check)."""
    from course_lib.grading import heldout

    params, problem = _head_params(student)
    if params is None:
        return False, problem
    W, b = params
    x_held, y_held = features_of(heldout.fresh_rng(), 400)
    held = heldout.accuracy(np.argmax(x_held @ W + b, axis=1), y_held)
    text = (f"held-out accuracy {held:.3f} on {len(y_held)} new feature vectors "
            f"(need {MIN_HELD_OUT_ACCURACY})")
    passed = held >= MIN_HELD_OUT_ACCURACY
    predicted = np.asarray(student.get("predictions"))
    x_train = np.asarray(reference["x_check"], dtype=np.float64)
    expected = np.argmax(x_train @ W + b, axis=1)
    if predicted.shape != expected.shape or np.mean(predicted == expected) < 0.99:
        passed = False
        text += (f"; but predict_head(features, W, b) disagrees with argmax(features @ W + b) "
                 f"(returned shape {predicted.shape}, expected {expected.shape})")
    return passed, text


@check(points=3, judge=_head_judge)
def head_reaches_accuracy(module, rng):
    """train_head on 400 training feature vectors (5 classes, 32 features) returns (W, b) that
    the grader scores itself on 2000 new feature vectors from the same distribution, never
    given to your code: held-out accuracy >= 0.75 needed; predict_head must agree with
    argmax(features @ W + b)."""
    x_train, y_train = features_of(rng, N_TRAIN_PER_CLASS)
    W, b = module.train_head(x_train, y_train, N_CLASSES)
    return {"W": np.asarray(W), "b": np.asarray(b), "x_check": x_train[:100],
            "predictions": np.asarray(module.predict_head(x_train[:100], W, b))}

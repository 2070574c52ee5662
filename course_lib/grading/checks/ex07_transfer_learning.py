"""Checks for exercises/ex07_transfer_learning.py: freezing by name and by depth, the L2-SP penalty
and its gradient, a linear head on frozen features judged on held-out features, and a Keras
fine-tuning procedure judged on the weights it leaves and on held-out examples.

Every input (the models' depth, widths and frozen layers, the names and depths to unfreeze, the
arrays, strengths and labels, the fine-tuning task and its settings) is drawn from the check's
``rng``."""

import os

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


# ----------------------------------------------------------------- part 4: fine-tuning in Keras
# A small "pre-trained" classifier, built here deterministically from the check's rng: an input,
# a backbone sub-model "backbone" of dense blocks (block{i}_dense -> block{i}_bn ->
# block{i}_relu) called with training=False (the Keras guide's pattern), and a new Dense head
# "head" (logits). The backbone's batch-norm statistics are those of its source inputs (standard
# normal); the target inputs are shifted and rescaled, so a batch-norm layer left trainable
# moves them. The target labels come from a teacher: the backbone with its top block changed
# and a head of its own, so a head on the frozen backbone does fairly well and fine-tuning the
# top block does better. The judge reads the weights of the grader's own layer objects after
# the call and scores them itself, in NumPy, on new target examples.

FT_MIN_HELD_OUT_ACCURACY = 0.65
FT_TRAIN = 384
FT_HELD_OUT = 2000
_FT_WIDTH = 16
_FT_BN_EPSILON = 1e-3   # Keras's default for BatchNormalization


def _ft_forward(x: np.ndarray, blocks, head) -> np.ndarray:
    """Logits of the classifier in inference mode (batch norm with its stored statistics), in
    NumPy: ``blocks`` holds [kernel, bias, gamma, beta, moving mean, moving variance] per
    block, ``head`` [kernel, bias]."""
    h = np.asarray(x, dtype=np.float64)
    for kernel, bias, gamma, beta, mean, variance in blocks:
        h = (h @ kernel + bias - mean) / np.sqrt(np.asarray(variance, np.float64) + _FT_BN_EPSILON)
        h = np.maximum(gamma * h + beta, 0.0)
    return h @ head[0] + head[1]


def _ft_task(rng: np.random.Generator) -> dict:
    """Everything of one fine-tuning task, as plain data: the source backbone and the new head's
    initial weights (float32, as the model holds them), the target input distribution and its
    teacher, which blocks to unfreeze and the settings of the call. 3-4 blocks of 16 units on
    6-10 inputs, 3-4 classes; the top one or two blocks are unfrozen."""
    n_blocks, d, k = int(rng.integers(3, 5)), int(rng.integers(6, 11)), int(rng.integers(3, 5))
    blocks, h, fan_in = [], rng.standard_normal((4000, d)), d
    for _ in range(n_blocks):
        kernel = rng.standard_normal((fan_in, _FT_WIDTH)) * np.sqrt(2.0 / fan_in)
        bias = 0.1 * rng.standard_normal(_FT_WIDTH)
        gamma, beta = rng.uniform(0.8, 1.2, _FT_WIDTH), 0.1 * rng.standard_normal(_FT_WIDTH)
        pre = h @ kernel + bias
        mean, variance = pre.mean(axis=0), pre.var(axis=0)
        blocks.append([a.astype(np.float32) for a in (kernel, bias, gamma, beta, mean, variance)])
        h = np.maximum(gamma * (pre - mean) / np.sqrt(variance + _FT_BN_EPSILON) + beta, 0.0)
        fan_in = _FT_WIDTH
    teacher = [list(block) for block in blocks]
    teacher[-1][0] = teacher[-1][0] + 1.5 * np.sqrt(2.0 / _FT_WIDTH) * rng.standard_normal(
        (_FT_WIDTH, _FT_WIDTH))
    mu, sd = 0.75 * rng.standard_normal(d), rng.uniform(0.6, 1.6, d)
    mixing = rng.standard_normal((_FT_WIDTH, k))
    logits = _ft_forward(mu + sd * rng.standard_normal((4000, d)), teacher, (mixing, np.zeros(k)))
    centre, scale = logits.mean(axis=0), logits.std(axis=0)   # classes of similar sizes
    head = [(rng.standard_normal((_FT_WIDTH, k)) / np.sqrt(_FT_WIDTH)).astype(np.float32),
            np.zeros(k, dtype=np.float32)]
    top = int(rng.integers(1, 3))
    return {"blocks": blocks, "head": head, "mu": mu, "sd": sd, "teacher": teacher,
            "teacher_head": [mixing / scale, -centre / scale],
            "unfreeze": [f"block{i}" for i in range(n_blocks - top + 1, n_blocks + 1)],
            "settings": {"head_epochs": int(rng.integers(5, 7)),
                         "fine_tune_epochs": int(rng.integers(10, 13)),
                         "head_learning_rate": float(rng.uniform(0.01, 0.02)),
                         "fine_tune_learning_rate": float(rng.uniform(0.002, 0.004)),
                         "batch_size": 32}}


def _ft_examples(rng: np.random.Generator, task: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` target examples: inputs (n, d) float32 and the teacher's labels (n,) int64."""
    mu, sd = np.asarray(task["mu"]), np.asarray(task["sd"])
    x = (mu + sd * rng.standard_normal((n, len(mu)))).astype(np.float32)
    labels = np.argmax(_ft_forward(x, task["teacher"], task["teacher_head"]), axis=1)
    return x, labels.astype(np.int64)


def _ft_initial(task: dict) -> dict[str, list[np.ndarray]]:
    """The initial weights by layer name: block{i}_dense [kernel, bias], block{i}_bn [gamma,
    beta, moving mean, moving variance], head [kernel, bias]."""
    initial = {}
    for i, block in enumerate(task["blocks"], start=1):
        initial[f"block{i}_dense"], initial[f"block{i}_bn"] = list(block[:2]), list(block[2:])
    initial["head"] = list(task["head"])
    return initial


def _ft_model(task: dict):
    """The classifier (functional: input -> backbone(x, training=False) -> head) with the
    task's weights, and its layers with weights by name (the grader's own references)."""
    import keras
    from keras import layers

    d, k = task["blocks"][0][0].shape[0], task["head"][0].shape[1]
    backbone_input = keras.Input((d,), name="backbone_input")
    h = backbone_input
    for i in range(1, len(task["blocks"]) + 1):
        h = layers.Dense(_FT_WIDTH, name=f"block{i}_dense")(h)
        h = layers.BatchNormalization(name=f"block{i}_bn")(h)
        h = layers.ReLU(name=f"block{i}_relu")(h)
    backbone = keras.Model(backbone_input, h, name="backbone")
    inputs = keras.Input((d,), name="inputs")
    head = layers.Dense(k, name="head")
    model = keras.Model(inputs, head(backbone(inputs, training=False)), name="classifier")
    found = {name: backbone.get_layer(name) for name in _ft_initial(task) if name != "head"}
    found["head"] = head
    for name, weights in _ft_initial(task).items():
        found[name].set_weights(weights)
    return model, found


def _ft_one_thread(keras) -> None:
    """In the grader's child (capped at one core and a number of threads), TensorFlow with one
    thread per pool; elsewhere nothing changes."""
    if "COURSE_GRADER_MARKER" not in os.environ or keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:   # TensorFlow already started (the student's module ran an op)
        pass


def _ft_chosen(name: str, unfreeze) -> bool:
    return any(name == n or name.startswith(n + "_") for n in unfreeze)


def _ft_weights(student: dict, initial: dict) -> tuple[dict | None, str]:
    """The student's weights by layer name, each array of exactly its initial shape and
    finite; else None and why."""
    weights = student.get("weights")
    if type(weights) is not dict:
        return None, f"no weights to judge (got {type(weights).__name__})"
    found = {}
    for name, arrays in initial.items():
        got = weights.get(name)
        if type(got) is not list or len(got) != len(arrays):
            return None, f"{name}: expected {len(arrays)} weight arrays"
        for array, start in zip(got, arrays, strict=True):
            if type(array) is not np.ndarray or array.dtype.kind != "f":
                return None, f"{name}: a weight is not a float array ({type(array).__name__})"
            if array.shape != np.shape(start):
                return None, (f"{name}: a weight has shape {array.shape}, expected "
                              f"{np.shape(start)}")
            if not np.all(np.isfinite(array)):
                return None, f"the weights of {name} contain NaN or inf"
        found[name] = got
    return found, ""


def _ft_learning_rate_problem(student: dict, settings: dict) -> str:
    rate = student.get("learning_rate")
    head, fine = settings["head_learning_rate"], settings["fine_tune_learning_rate"]
    if type(rate) is not float or not np.isfinite(rate):
        return ("the model has no optimizer whose learning rate could be read (was it "
                f"compiled?): compile it for fine-tuning with fine_tune_learning_rate={fine:.4g}")
    if np.isclose(rate, head, rtol=1e-4):
        return (f"the model's optimizer has the head's learning rate {head:.4g}: after "
                f"unfreezing, compile again with the lower fine_tune_learning_rate={fine:.4g}")
    if rate > fine * (1 + 1e-4):
        return (f"the model was last compiled with learning rate {rate:.4g}, above "
                f"fine_tune_learning_rate={fine:.4g}: fine-tune with the lower rate")
    return ""


def _fine_tune_judge(student: dict, reference: dict) -> tuple[bool, str]:
    """Judges, from the weights of the grader's own layers after the call (initial weights,
    task and held-out examples from the grader, never from the student's output): frozen
    layers and batch norm bit-for-bit unchanged, the unfrozen blocks and the head changed, the
    lower learning rate, and the held-out accuracy, computed here in NumPy."""
    from course_lib.grading import heldout

    task = reference["task"]
    initial, unfreeze = _ft_initial(task), task["unfreeze"]
    problems = []
    if student.get("returned_model") != 1:
        problems.append(f"fine_tune must return the model it was given, trained in place (it "
                        f"returned an object of type {str(student.get('returned_type'))[:60]})")
    weights, problem = _ft_weights(student, initial)
    if weights is None:
        return False, "; ".join(problems + [problem])
    moved = {name: [not np.array_equal(a, b) for a, b in zip(weights[name], initial[name],
                                                                 strict=True)]
             for name in initial}
    trained = any(any(flags) for flags in moved.values())
    dense = [name for name in initial if name.endswith("_dense")]
    batchnorm = [name for name in initial if name.endswith("_bn")]
    frozen_moved = [name for name in dense if not _ft_chosen(name, unfreeze) and any(moved[name])]
    if frozen_moved:
        problems.append(f"layers that must stay frozen changed ({', '.join(frozen_moved)}): only "
                        f"the blocks named in unfreeze={unfreeze} may train, and only after "
                        f"the head")
    statistics = [name for name in batchnorm if any(moved[name][2:])]
    affine = [name for name in batchnorm if any(moved[name][:2]) and name not in statistics]
    if statistics:
        problems.append(f"batch-norm moving statistics changed ({', '.join(statistics)}): "
                        "BatchNormalization layers must stay frozen (trainable=False; a frozen "
                        "batch-norm layer always runs in inference mode); calling the backbone "
                        "with training=False is not enough once the layer is trainable, as "
                        "fit() overrides it with training=True")
    if affine:
        problems.append(f"batch-norm gamma/beta changed ({', '.join(affine)}): keep every "
                        "BatchNormalization layer frozen (trainable=False)")
    stuck = [name for name in dense if _ft_chosen(name, unfreeze) and not moved[name][0]]
    trainable = student.get("trainable")
    trainable = trainable if type(trainable) is dict else {}
    if not trained:
        problems.append("none of the model's weights changed: fine_tune must train the model "
                        "it is given, in place (the head first, then the unfrozen blocks)")
    elif stuck and all(trainable.get(name) == 1 for name in stuck):
        problems.append(f"the unfrozen blocks never changed ({', '.join(stuck)}) although they "
                        "are marked trainable: did you call compile() again after setting "
                        "trainable? Without it TensorFlow's fit() silently keeps training the "
                        "weights that were trainable when fit() first ran (JAX raises an error)")
    elif stuck:
        problems.append(f"the blocks named in unfreeze={unfreeze} never changed "
                        f"({', '.join(stuck)}) and are not trainable at the end: after the head, "
                        "set backbone.trainable = True, make those blocks' layers trainable "
                        "(batch norm excepted), compile again and fit")
    if trained and not any(moved["head"]):
        problems.append("the head never changed: train it first on the frozen backbone "
                        "(compile, then fit)")
    problem = _ft_learning_rate_problem(student, task["settings"])
    if problem:
        problems.append(problem)
    x_held, y_held = _ft_examples(heldout.fresh_rng(), task, FT_HELD_OUT)
    blocks = [weights[f"block{i}_dense"] + weights[f"block{i}_bn"]
              for i in range(1, len(task["blocks"]) + 1)]
    held = heldout.accuracy(np.argmax(_ft_forward(x_held, blocks, weights["head"]), axis=1),
                            y_held)
    text = (f"held-out accuracy {held:.3f} on {FT_HELD_OUT} new target examples "
            f"(need {FT_MIN_HELD_OUT_ACCURACY})")
    if held < FT_MIN_HELD_OUT_ACCURACY:
        problems.append(text)
    if problems:
        return False, "; ".join(problems)
    return True, (f"{text}; frozen layers and batch norm unchanged, {', '.join(unfreeze)} and "
                  f"the head fine-tuned")


@check(points=4, judge=_fine_tune_judge)
def fine_tune_procedure(module, rng):
    """fine_tune(model, x, y, ...) on a small pre-trained Keras classifier (3-4 dense blocks with
    batch norm, a new head; the top 1-2 blocks to unfreeze) and 384 target examples. From the
    weights the model holds afterwards the grader checks that the blocks not named in unfreeze
    and every batch-norm layer (moving statistics included) are bit-for-bit unchanged, that the
    named blocks and the head changed, that the model ends compiled with
    fine_tune_learning_rate, and scores it itself on 2000 new target examples, never given to
    your code: held-out accuracy >= 0.65 needed. fine_tune must return the model it was given."""
    import keras

    _ft_one_thread(keras)
    task = _ft_task(rng)
    x, y = _ft_examples(rng, task, FT_TRAIN)
    model, found = _ft_model(task)
    keras.utils.set_random_seed(int(rng.integers(2**31)))
    returned = module.fine_tune(model, x, y, unfreeze=list(task["unfreeze"]),
                                **task["settings"])
    try:
        rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:   # not compiled, or an optimizer without a readable rate
        rate = float("nan")
    return {"task": task, "returned_model": int(returned is model),
            "returned_type": type(returned).__name__,
            "weights": {name: [np.array(w) for w in layer.get_weights()]
                        for name, layer in found.items()},
            "trainable": {name: int(bool(layer.trainable)) for name, layer in found.items()},
            "learning_rate": rate}

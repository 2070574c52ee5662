"""Checks for exercises/ex08_self_supervised_learning.py: the rotation batch generator and a
linear probe on frozen features.

The probe's training check is judged on its result: the child returns the trained (W, b) as
plain arrays, and the judge, in the grader, measures their accuracy on features it draws itself
from a fresh random seed, from the same distribution as the training features (the same class
means), so they are never sent to the child (the rule in ``course_lib.grading.heldout``).
Every input (images and their shapes, features, labels, weights) is drawn from the check's
``rng``.
"""

from collections import Counter

import numpy as np

from course_lib.grading import heldout
from course_lib.grading.spec import check

# The "frozen features": 10 classes, 32 dimensions, one Gaussian cluster per class around fixed
# means (the same in the child and in the grader), unit noise. Linear; Bayes accuracy about 0.94.
NUM_CLASSES = 10
FEATURE_DIM = 32
MEANS_SEED = 8008
MEAN_SCALE = 0.6
TRAIN_PER_CLASS = 50
HELD_OUT_PER_CLASS = 300
MIN_HELD_OUT_ACCURACY = 0.80  # the reference reaches about 0.91; a probe that never trains, 0.10


def _probe_features(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """features (per_class * 10, 32) float64 and labels (per_class * 10,) int64, shuffled."""
    means = np.random.default_rng(MEANS_SEED).normal(0.0, MEAN_SCALE, (NUM_CLASSES, FEATURE_DIM))
    labels = rng.permutation(np.repeat(np.arange(NUM_CLASSES, dtype=np.int64), per_class))
    return means[labels] + rng.standard_normal((len(labels), FEATURE_DIM)), labels


@check(points=2)
def rotate_images_values(module, rng):
    """rotate_images(images, k) rotates every image of (n, H, W, C) by k * 90 degrees
    counter-clockwise (np.rot90's direction) for k = 0..3, keeping shape and dtype, and leaves the
    input unchanged (2-4 square uint8 images of 3-7 pixels a side, 1-3 channels)."""
    n, side, channels = (int(v) for v in rng.integers([2, 3, 1], [5, 8, 4]))
    images = rng.integers(0, 256, size=(n, side, side, channels), dtype=np.uint8)
    before = images.copy()
    out = {}
    for k in range(4):
        rotated = module.rotate_images(images, k)
        out[f"k{k}"] = rotated
        out[f"k{k}_dtype"] = str(np.asarray(rotated).dtype)
    out["input_unchanged"] = bool(np.array_equal(images, before))
    return out


def _rotation_judge(student: dict, reference: dict) -> tuple[bool, str]:
    """Every input image at each rotation exactly once, with its label, in any order; shapes and
    dtypes as the reference's; the input unchanged; ValueError for non-square images."""
    for name in ("uint8", "float32"):
        images = np.asarray(student[f"{name}_images"])
        labels = np.asarray(student[f"{name}_labels"])
        ref_images = reference[f"{name}_images"]
        ref_labels = reference[f"{name}_labels"]
        if images.shape != ref_images.shape:
            return False, f"{name} input: images have shape {images.shape}, expected {ref_images.shape}"
        if labels.shape != ref_labels.shape:
            return False, (f"{name} input: labels have shape {labels.shape}, expected "
                           f"{ref_labels.shape} (one label per image)")
        if student[f"{name}_dtype"] != reference[f"{name}_dtype"]:
            return False, (f"{name} input: images came back as {student[f'{name}_dtype']}; the "
                           f"dtype must be kept ({reference[f'{name}_dtype']})")
        if labels.dtype.kind not in "iu":
            return False, f"{name} input: labels must be integers, got dtype {labels.dtype}"
        pairs = Counter((int(k), img.tobytes()) for k, img in zip(labels, images, strict=True))
        wanted = Counter((int(k), img.tobytes()) for k, img in
                         zip(ref_labels, ref_images, strict=True))
        if pairs != wanted:
            missing = sum((wanted - pairs).values())
            return False, (f"{name} input: {missing} of the {len(ref_labels)} (rotated image, "
                           "label) pairs are missing or wrong: every image must appear once at "
                           "each rotation k = 0..3, labelled k")
    if not student["input_unchanged"]:
        return False, "rotation_batch changed its input array"
    if not student["non_square_raises"]:
        return False, "rotation_batch must raise ValueError for non-square images (H != W)"
    return True, "every image once at each rotation, labels aligned, shapes and dtypes kept"


@check(points=3, judge=_rotation_judge)
def rotation_batch_pairs(module, rng):
    """rotation_batch(images) returns (rotated (4n, H, W, C) with the input's dtype, labels (4n,)
    integers): each image exactly once at each rotation k = 0..3, labelled k (any order), for
    uint8 and float32 images (2-6 images of 3-7 pixels a side, 1-3 channels); raises ValueError
    for non-square images."""
    out = {}
    n, side, channels = (int(v) for v in rng.integers([2, 3, 1], [7, 8, 4]))
    m, side2, channels2 = (int(v) for v in rng.integers([2, 3, 1], [7, 8, 4]))
    for name, images in (
        ("uint8", rng.integers(0, 256, size=(n, side, side, channels), dtype=np.uint8)),
        ("float32", rng.standard_normal((m, side2, side2, channels2)).astype(np.float32)),
    ):
        before = images.copy()
        rotated, labels = module.rotation_batch(images)
        out[f"{name}_images"] = np.asarray(rotated)
        out[f"{name}_labels"] = np.asarray(labels)
        out[f"{name}_dtype"] = str(np.asarray(rotated).dtype)
        out.setdefault("input_unchanged", True)
        out["input_unchanged"] &= bool(np.array_equal(images, before))
    sides = [int(rng.integers(3, 7))]
    sides.append(sides[0] + int(rng.integers(1, 4)))
    height, width = rng.permutation(sides).tolist()
    try:
        module.rotation_batch(rng.integers(0, 256, size=(2, height, width, 3), dtype=np.uint8))
        out["non_square_raises"] = False
    except ValueError:
        out["non_square_raises"] = True
    return out


@check(points=3)
def probe_loss_and_gradients(module, rng):
    """probe_loss_and_grads(W, b, features, labels, l2) returns the mean cross-entropy plus
    (l2/2)||W||^2 and the gradients dW (d, classes), db (classes,) (l2 0.01-0.3); stable for
    large logits (W scaled by 200-400, l2 = 0)."""
    features = rng.standard_normal((8, 5))
    W = rng.standard_normal((5, 4))
    b = rng.standard_normal(4)
    labels = rng.integers(0, 4, size=8)
    loss, dW, db = module.probe_loss_and_grads(W, b, features, labels,
                                               float(rng.uniform(0.01, 0.3)))
    big_loss, big_dW, big_db = module.probe_loss_and_grads(W * float(rng.uniform(200.0, 400.0)),
                                                           b, features, labels, 0.0)
    return {"loss": np.asarray(loss, dtype=np.float64), "dW": dW, "db": db,
            "large_logits_loss": np.asarray(big_loss, dtype=np.float64),
            "large_logits_dW": big_dW, "large_logits_db": big_db}


def _probe_judge(student: dict, reference: dict) -> tuple[bool, str]:
    """Accuracy of the student's (W, b) on features drawn here, in the grader, never sent out."""
    for key in ("W", "b"):
        mine = np.asarray(student[key])
        if mine.shape != reference[key].shape:
            return False, f"{key} has shape {mine.shape}, expected {reference[key].shape}"
        if mine.dtype.kind not in "iuf" or not np.all(np.isfinite(mine)):
            return False, f"{key} must hold finite numbers"
    held_out, labels = _probe_features(heldout.fresh_rng(), HELD_OUT_PER_CLASS)

    def accuracy(params: dict) -> float:
        scores = held_out @ np.asarray(params["W"], dtype=np.float64) + np.asarray(params["b"])
        return float(np.mean(scores.argmax(axis=1) == labels))

    mine, theirs = accuracy(student), accuracy(reference)
    text = (f"accuracy {mine:.3f} on {len(labels)} held-out features your code never saw "
            f"(need {MIN_HELD_OUT_ACCURACY}; the reference probe scores {theirs:.3f})")
    return mine >= MIN_HELD_OUT_ACCURACY, text


@check(points=3, judge=_probe_judge)
def linear_probe_generalises(module, rng):
    """train_linear_probe(features, labels, 10) on 500 frozen features (32-D, 10 classes) returns
    (W (32, 10), b (10,)) that classify at least 80% of fresh held-out features correctly."""
    features, labels = _probe_features(rng, TRAIN_PER_CLASS)
    W, b = module.train_linear_probe(features, labels, NUM_CLASSES)
    return {"W": np.asarray(W), "b": np.asarray(b)}


@check(points=1)
def probe_predict_classes(module, rng):
    """probe_predict(features, W, b) returns argmax(features W + b) as (n,) integers."""
    features = rng.standard_normal((9, 5))
    W = rng.standard_normal((5, 3))
    b = rng.standard_normal(3)
    classes = np.asarray(module.probe_predict(features, W, b))
    return {"classes": classes, "integers": bool(classes.dtype.kind in "iu")}

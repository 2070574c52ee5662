"""Reference solution for exercises/ex08_self_supervised_learning.py: the rotation pretext task's
batch generator, and a linear probe on frozen features.

Part A. Rotation prediction (chapter 08, section 2): every unlabelled image is shown at 0, 90, 180
and 270 degrees, and the label is which rotation it was: k in {0, 1, 2, 3} for k * 90 degrees
counter-clockwise (the direction of ``np.rot90``).

Part B. A linear probe: softmax regression on features of a frozen network,
    P = softmax(F W + b),   L = -(1/n) sum_i log P[i, y_i] + (l2 / 2) ||W||^2   (b not penalised).
"""

import numpy as np


def rotate_images(images: np.ndarray, k: int) -> np.ndarray:
    """Rotate every image by k * 90 degrees counter-clockwise (k in 0, 1, 2, 3).

    images: (n, H, W, C) with H == W. Returns a new array of the same shape and dtype; the input
    is not modified.
    """
    return np.ascontiguousarray(np.rot90(images, k, axes=(1, 2)))


def rotation_batch(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pretext batch of ``images``: every image at each of the four rotations, exactly once.

    images: (n, H, W, C), any numeric dtype. Returns (rotated, labels): rotated (4n, H, W, C) with
    the dtype of ``images``; labels (4n,) int64, labels[j] = k when rotated[j] is an image rotated
    by k * 90 degrees. (Any order of the 4n pairs is accepted; here: rotation-major.) Raises
    ValueError when images is not 4-D or its images are not square (H != W), since a 90-degree
    rotation of a non-square image has another shape and could not be stacked.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be (n, H, W, C) with H == W, got shape {images.shape}")
    rotated = np.concatenate([rotate_images(images, k) for k in range(4)])
    labels = np.repeat(np.arange(4, dtype=np.int64), len(images))
    return rotated, labels


def probe_loss_and_grads(
    W: np.ndarray, b: np.ndarray, features: np.ndarray, labels: np.ndarray, l2: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss and gradients of the linear probe described at the top of this file.

    W: (d, classes), b: (classes,), features: (n, d), labels: (n,) ints in 0..classes-1.
    Returns (loss, dW, db): the mean cross-entropy plus (l2 / 2) ||W||^2 (a float), and the
    gradients with the shapes of W and b (dL/dZ = (P - onehot(y)) / n; dW gets + l2 W).
    Use a stable softmax (subtract each row's maximum).
    """
    n = len(features)
    z = features @ W + b
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), labels].mean() + 0.5 * l2 * np.sum(W * W)
    grad_z = np.exp(log_probs)
    grad_z[np.arange(n), labels] -= 1.0
    grad_z /= n
    return float(loss), features.T @ grad_z + l2 * W, grad_z.sum(axis=0)


def train_linear_probe(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    l2: float = 1e-3,
    lr: float = 0.5,
    epochs: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch gradient descent on the probe's loss, from W = 0 and b = 0.

    features: (n, d) floats (already standardised); labels: (n,) ints in 0..num_classes-1.
    Each of the ``epochs`` steps: (loss, dW, db) = probe_loss_and_grads(...), then
    W -= lr * dW, b -= lr * db. Returns (W, b) with shapes (d, num_classes), (num_classes,).
    The grader measures the accuracy of your (W, b) on features it draws itself, which your
    code never sees.
    """
    W = np.zeros((features.shape[1], num_classes))
    b = np.zeros(num_classes)
    for _ in range(epochs):
        _, dW, db = probe_loss_and_grads(W, b, features, labels, l2)
        W -= lr * dW
        b -= lr * db
    return W, b


def probe_predict(features: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Predicted classes argmax(features W + b). features: (n, d) -> (n,) integers."""
    return np.argmax(features @ W + b, axis=1)

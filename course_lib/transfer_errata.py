"""The transfer-learning documents' errors as small, exact, runnable stand-ins (chapter 07).

Document 003's L2-SP-like objective as printed beside the corrected one, the attributes of
``torch.nn.Linear`` that document 001's code touches, and the width torchvision's VGG16 hands
to its classifier: enough to run each erratum's cell without PyTorch.
"""

from __future__ import annotations

import numpy as np


def document_003_loss(delta_w: np.ndarray, w_s: np.ndarray, x: np.ndarray, y: np.ndarray,
                      lam: float) -> float:
    """Document 003, section 4.4, as printed: ``J = 1/2 sum_i ||W_s x_i - y_i||^2 +
    lambda sum_j ||Delta W_j||^2`` (the target weights being ``W_t = W_s + Delta W``).

    w_s, delta_w: (outputs, inputs); x: (n, inputs); y: (n, outputs)."""
    return float(0.5 * np.sum((x @ w_s.T - y) ** 2) + lam * np.sum(delta_w ** 2))


def corrected_transfer_loss(w_t: np.ndarray, w_s: np.ndarray, x: np.ndarray, y: np.ndarray,
                            alpha: float) -> float:
    """The objective the document means (L2-SP with a squared-error model, to stay close to
    it): ``J(W_t) = 1/n sum_i 1/2 ||W_t x_i - y_i||^2 + alpha/2 ||W_t - W_s||^2``; shapes as in
    :func:`document_003_loss`."""
    return float(0.5 * np.mean(np.sum((x @ w_t.T - y) ** 2, axis=1))
                 + 0.5 * alpha * np.sum((w_t - w_s) ** 2))


class TorchLinearStandIn:
    """The attributes of ``torch.nn.Linear(in_features, out_features)`` that document 001's code
    touches (``weight`` is ``(out_features, in_features)``, as in PyTorch); ``__call__``
    computes ``x @ weight.T`` and fails as PyTorch does when the widths do not match."""

    def __init__(self, in_features: int, out_features: int):
        self.in_features, self.out_features = in_features, out_features
        self.weight = np.zeros((out_features, in_features))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[-1] != self.in_features:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({x.shape[0]}x"
                               f"{x.shape[-1]} and {self.in_features}x{self.out_features})")
        return x @ self.weight.T


def vgg16_classifier_input(image_size: int = 32) -> int:
    """The width of the vector torchvision's VGG16 hands to ``model.classifier`` for square
    images of ``image_size`` pixels: five 2x2 poolings, then ``AdaptiveAvgPool2d((7, 7))``
    (which copies a 1x1 map 49 times for 32x32 inputs), then flatten: 512 * 7 * 7."""
    side = image_size
    for _ in range(5):
        side //= 2
    if side < 1:
        raise ValueError(f"`image_size` {image_size} is too small for VGG16's five poolings")
    return 512 * 7 * 7

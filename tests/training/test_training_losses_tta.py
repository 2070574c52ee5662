"""Label-smoothed sparse cross-entropy and flip test-time augmentation."""

import keras
import numpy as np
import pytest
from keras import ops

from course_lib.training.losses import SmoothedSparseCrossentropy
from course_lib.training.tta import accuracy, flip_tta_model


def test_smoothed_loss_matches_formula():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], "float32")
    labels = np.array([0, 2])
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    ours = SmoothedSparseCrossentropy(0.0)(labels, logits)
    np.testing.assert_allclose(ops.convert_to_numpy(ours), ops.convert_to_numpy(plain), rtol=1e-6)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    target = np.full((2, 3), 0.3 / 3) + 0.7 * np.eye(3)[labels]
    expected = -(target * log_p).sum(1).mean()
    got = ops.convert_to_numpy(SmoothedSparseCrossentropy(0.3)(labels, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="smoothing"):
        SmoothedSparseCrossentropy(1.0)


def test_flip_tta_averages_image_and_mirror():
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).standard_normal((5, 4, 4, 1)).astype("float32")
    tta = flip_tta_model(model)
    got = ops.convert_to_numpy(tta(x))
    softmax = lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)  # noqa: E731
    expected = (softmax(model.predict(x, verbose=0)) + softmax(model.predict(x[:, :, ::-1], verbose=0))) / 2
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert accuracy(got, got.argmax(1)) == 1.0
    with pytest.raises(ValueError, match="differ in length"):
        accuracy(got, np.zeros(4))

"""NT-Xent (SimCLR's loss): the NumPy reference against central differences and against the
Keras loss (value and autodiff gradient); SimCLR's augmentation layer."""

import numpy as np
import pytest
from nn_keras_helpers import keras, keras_loss_and_grad

from course_lib import contrastive
from course_lib.nn import gradient_check


@pytest.mark.parametrize(("n", "d", "temperature"), [(1, 3, 0.5), (4, 5, 0.1), (6, 8, 1.0)])
def test_nt_xent_gradient_check(n, d, temperature):
    z = np.random.default_rng(n).standard_normal((n, 2, d))

    def f():
        loss, grad = contrastive.nt_xent(z, temperature)
        return loss, {"z": grad}

    assert gradient_check(f, {"z": z})["z"] < 1e-6


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_nt_xent_matches_keras(temperature):
    z = np.random.default_rng(1).standard_normal((8, 2, 16)).astype(np.float32)
    loss, grad = contrastive.nt_xent(z.astype(np.float64), temperature)
    keras_loss, keras_grad = keras_loss_and_grad(contrastive.NTXent(temperature),
                                                 np.zeros((8, 1), np.float32), z)
    assert keras_loss == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(keras_grad, grad, atol=1e-6 * max(1.0, np.abs(grad).max()) * 10)


def test_nt_xent_by_hand_for_two_images():
    # two images, views identical to each other and orthogonal to the other image's: each view's
    # positive has similarity 1/tau, its two negatives 0
    e1, e2 = np.eye(2)
    z = np.array([[e1, e1], [e2, e2]])
    tau = 0.5
    expected = -1 / tau + np.log(np.exp(1 / tau) + 2.0)
    assert contrastive.nt_xent(z, tau)[0] == pytest.approx(expected)
    # the loss does not depend on the projections' lengths
    assert contrastive.nt_xent(3.0 * z, tau)[0] == pytest.approx(expected)


def test_nt_xent_is_stable_for_a_small_temperature():
    z = np.random.default_rng(0).standard_normal((4, 2, 3))
    loss, grad = contrastive.nt_xent(z, 1e-3)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))


@pytest.mark.parametrize(("z", "temperature", "message"), [
    (np.zeros((4, 3, 2)) + 1, 0.5, "shape"),
    (np.ones((4, 2)), 0.5, "z"),
    (np.full((2, 2, 3), np.nan), 0.5, "NaN"),
    (np.concatenate([np.zeros((1, 2, 3)), np.ones((1, 2, 3))]), 0.5, "all zeros"),
    (np.ones((2, 2, 3)), 0.0, "temperature"),
])
def test_nt_xent_rejects_bad_input(z, temperature, message):
    with pytest.raises(ValueError, match=message):
        contrastive.nt_xent(z, temperature)


def test_ntxent_rejects_a_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        contrastive.NTXent(-1.0)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_views_are_random_per_call_and_the_identity_at_inference():
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    views = contrastive.SimCLRViews(seed=0)
    first, second = _numpy(views(images, training=True)), _numpy(views(images, training=True))
    assert first.shape == images.shape and first.dtype == np.float32
    assert first.min() >= 0 and first.max() <= 255
    assert np.abs(first - second).mean() > 1.0
    np.testing.assert_array_equal(_numpy(views(images, training=False)), images)


def test_views_keep_a_constant_image_constant_without_colour_changes():
    images = np.full((4, 32, 32, 3), 100, np.uint8)
    views = contrastive.SimCLRViews(jitter=0.0, gray_probability=0.0, seed=1)
    np.testing.assert_allclose(_numpy(views(images, training=True)), 100.0, atol=1e-3)


def test_the_affine_transform_convention_the_crop_relies_on():
    # the affine map of the crop: output pixel x -> ox + (x + 0.5) w/32 - 0.5; for w = 32 and
    # ox = 0 that is x itself, and its mirror is 31 - x
    ramp = np.broadcast_to(np.arange(32, dtype=np.float32)[None, None, :, None] * 8,
                           (1, 32, 32, 3)).copy()
    flip = keras.ops.convert_to_tensor([[-1.0, 0, 31.0, 0, 1.0, 0, 0, 0]])
    mirrored = _numpy(keras.ops.image.affine_transform(ramp, flip, interpolation="bilinear"))
    np.testing.assert_allclose(mirrored[0, 0, :, 0], ramp[0, 0, ::-1, 0], atol=1e-4)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"crop_scale": (0.0, 1.0)}, "crop_scale"), ({"crop_scale": (0.8, 0.5)}, "crop_scale"),
    ({"jitter": 1.0}, "jitter"), ({"gray_probability": 1.5}, "gray_probability"),
])
def test_views_reject_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        contrastive.SimCLRViews(**kwargs)

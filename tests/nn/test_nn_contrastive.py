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


def _crop(image, ox, oy, w, h, flip):
    column = [[float(v)] for v in (ox, oy, w, h, flip)]
    rows = contrastive.crop_transform(*(keras.ops.convert_to_tensor([c], dtype="float32")
                                        for c in column))
    return _numpy(keras.ops.image.affine_transform(image, rows, interpolation="bilinear",
                                                   fill_mode="nearest"))


def test_crop_transform_whole_image_is_the_identity_and_its_mirror():
    image = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(_crop(image, 0, 0, 32, 32, 0), image, atol=1e-3)
    np.testing.assert_allclose(_crop(image, 0, 0, 32, 32, 1), image[:, :, ::-1], atol=1e-3)


def test_crop_transform_reads_inside_its_box():
    # a box of 8 x 16 pixels at (4, 10), resized to 32 x 32: the sampling positions span the
    # box's extent, so away from the outermost output pixels (which blend in the box's border
    # neighbours, as any half-pixel resize does) every value comes from inside the box
    image = np.zeros((1, 32, 32, 3), np.float32)
    image[:, 10:26, 4:12] = 200.0                     # rows (y) 10..25, columns (x) 4..11
    for flip in (0, 1):
        out = _crop(image, 4, 10, 8, 16, flip)
        np.testing.assert_allclose(out[:, 2:30, 2:30], 200.0, atol=1e-3)
        assert out.min() > 50.0                       # the border blends, never reads far off


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"crop_scale": (0.0, 1.0)}, "crop_scale"), ({"crop_scale": (0.8, 0.5)}, "crop_scale"),
    ({"jitter": 1.0}, "jitter"), ({"gray_probability": 1.5}, "gray_probability"),
])
def test_views_reject_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        contrastive.SimCLRViews(**kwargs)

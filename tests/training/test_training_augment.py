"""RandomCropFlip moves pixels inside each image only: labels stay aligned with their images."""

import numpy as np
import pytest
from keras import ops

from course_lib.training.augment import RandomCropFlip
from course_lib.training.pipeline import DeviceBatches


def labelled_images(n=64, size=16, seed=0):
    """Image i: pixel (r, c) = label * 1000 + r * size + c + 1 (no pixel is 0, padding is)."""
    labels = np.random.default_rng(seed).integers(0, 10, n)
    grid = np.arange(size * size, dtype="float32").reshape(size, size) + 1
    x = labels[:, None, None].astype("float32") * 1000 + grid[None]
    return x[..., None], labels


def test_crop_flip_keeps_labels_and_moves_pixels():
    x, labels = labelled_images()
    out = ops.convert_to_numpy(RandomCropFlip(pad=2, flip=True, seed=1)(x, training=True))
    assert out.shape == x.shape
    centre = out[:, 8, 8, 0]
    np.testing.assert_array_equal(centre // 1000, labels)  # label recoverable from each image
    nonzero = out[out > 0]
    assert np.all(nonzero // 1000 == np.repeat(labels, (out > 0).reshape(len(out), -1).sum(1)))
    same = np.all(out == x, axis=(1, 2, 3))
    assert not same.all()  # something moved
    # each output is a shifted (and maybe mirrored) copy: row/column steps are +-1 or +-size
    rows = np.diff(out[:, 6:10, 8, 0], axis=1)
    cols = np.diff(out[:, 8, 6:10, 0], axis=1)
    assert np.all(rows == 16)
    assert np.all(np.abs(cols) == 1) and (cols < 0).any() and (cols > 0).any()


def test_inference_is_identity_and_crop_only_does_not_flip():
    x, _ = labelled_images(8)
    layer = RandomCropFlip(pad=2, flip=False, seed=0)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=False)), x)
    cols = np.diff(ops.convert_to_numpy(layer(x, training=True))[:, 8, 6:10, 0], axis=1)
    assert np.all(cols == 1)


def test_uint8_images_and_device_batches_stay_aligned():
    labels = np.random.default_rng(1).integers(0, 10, 40)
    x = np.ones((40, 8, 8, 1), "uint8") * (labels + 1).astype("uint8")[:, None, None, None]
    layer = RandomCropFlip(pad=1, flip=True, seed=3)
    batches = DeviceBatches(x, labels, batch_size=16, seed=2)
    assert len(batches) == 2  # partial batch dropped
    for i in range(len(batches)):
        xb, yb = batches[i]
        out = ops.convert_to_numpy(layer(xb, training=True))
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out[:, 4, 4, 0], ops.convert_to_numpy(yb) + 1)


def test_negative_pad_raises():
    with pytest.raises(ValueError, match="pad"):
        RandomCropFlip(pad=-1)

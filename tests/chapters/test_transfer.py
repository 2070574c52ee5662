"""course_lib.transfer: the source/target split, the backbone, freezing, L2-SP, the
keras.applications path and the pre-trained source model (label efficiency has its own file)."""

import numpy as np
import pytest

from course_lib import transfer


def test_tasks_are_disjoint_halves_of_cifar10_relabelled():
    assert set(transfer.TASK_CLASSES["source"]).isdisjoint(transfer.TASK_CLASSES["target"])
    assert transfer.task_class_names("target") == ["dog", "frog", "horse", "ship", "truck"]
    x, y = transfer.cifar_task("target", "train", sample=True)
    assert x.shape == (1000, 32, 32, 3) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [200] * 5
    xs, ys = transfer.cifar_task("source", "test", sample=True)
    assert xs.shape == (250, 32, 32, 3) and set(ys.tolist()) == {0, 1, 2, 3, 4}


def test_select_classes_keeps_order_and_relabels():
    x = np.arange(6)[:, None]
    y = np.array([9, 2, 5, 2, 0, 9])
    xs, ys = transfer.select_classes(x, y, [9, 2])
    assert xs[:, 0].tolist() == [0, 1, 3, 5] and ys.tolist() == [0, 1, 1, 0]
    with pytest.raises(ValueError, match="distinct labels"):
        transfer.select_classes(x, y, [2, 2])
    with pytest.raises(ValueError, match="same number of samples"):
        transfer.select_classes(x[:3], y, [2])
    with pytest.raises(ValueError, match="`task` must be one of"):
        transfer.cifar_task("both")


def test_backbone_blocks_named_and_shapes():
    backbone = transfer.cifar_backbone(widths=(8, 16, 16, 32))
    assert transfer.block_names(backbone) == ["block1", "block2", "block3", "block4"]
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    assert tuple(backbone(images).shape) == (3, 32)
    shapes = [tuple(transfer.block_features(backbone, b)(images).shape)
              for b in transfer.BLOCKS]
    assert shapes == [(3, 8), (3, 16), (3, 16), (3, 32)]
    assert backbone.get_layer("block2").output.shape[1:] == (8, 8, 16)
    # uint8 and float pixels give the same features (rescaling happens inside)
    np.testing.assert_allclose(backbone(images), backbone(images.astype("float32")), rtol=1e-5)
    with pytest.raises(ValueError, match="`block` must be one of"):
        transfer.block_features(backbone, "block9")
    with pytest.raises(ValueError, match="1 to 5 blocks"):
        transfer.cifar_backbone(widths=(8,) * 6)


def _images(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_set_trainable_by_names_depth_and_batchnorm():
    backbone = transfer.cifar_backbone(widths=(8, 8, 16, 16))
    model = transfer.classifier(backbone, 5)
    conv4 = 3 * 3 * 16 * 16
    bn4 = 2 * 16
    head = 16 * 5 + 5
    assert transfer.set_trainable(backbone, ["block4"]) == conv4
    assert backbone.get_layer("block4_bn1").trainable is False
    assert transfer.trainable_parameter_count(model) == conv4 + head
    assert transfer.set_trainable(backbone, ["block4"], batchnorm=True) == conv4 + bn4
    assert transfer.set_trainable(backbone, 2) == conv4       # top 2 layers with weights: conv, bn
    assert transfer.set_trainable(backbone, False) == 0
    assert transfer.trainable_parameter_count(model) == head
    everything = transfer.set_trainable(backbone, True, batchnorm=True)
    assert everything == transfer.trainable_parameter_count(backbone) > conv4
    with pytest.raises(ValueError, match="no layer with weights .* is named \\['block7'\\]"):
        transfer.set_trainable(backbone, ["block7"])
    with pytest.raises(ValueError, match="a list of names"):
        transfer.set_trainable(backbone, "block4")
    with pytest.raises(ValueError, match="has 8 layers with weights"):
        transfer.set_trainable(backbone, 9)


def test_frozen_batchnorm_runs_in_inference_mode_in_training():
    backbone = transfer.cifar_backbone(widths=(8, 8, 8, 8))
    model = transfer.classifier(backbone, 5)
    images = _images()
    transfer.set_trainable(backbone, True)                    # convs trainable, batch norm frozen
    np.testing.assert_allclose(model(images, training=True), model(images, training=False),
                               rtol=1e-5, atol=1e-6)
    transfer.set_trainable(backbone, True, batchnorm=True)    # the bug: batch statistics
    assert not np.allclose(model(images, training=True), model(images, training=False), atol=1e-3)


def test_weights_fingerprint_changes_only_when_weights_change():
    backbone = transfer.cifar_backbone(widths=(8, 8, 8, 8))
    before = transfer.weights_fingerprint(backbone)
    assert before == transfer.weights_fingerprint(backbone) and len(before) == 16
    kernel = backbone.get_layer("block1_conv1").kernel
    kernel.assign(kernel + 1e-3)
    assert transfer.weights_fingerprint(backbone) != before

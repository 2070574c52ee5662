"""course_lib.transfer: the source/target split, the backbone, freezing, L2-SP, the
keras.applications path and the pre-trained source model (label efficiency has its own file)."""

import numpy as np
import pytest

from course_lib import cifar, finetuning, l2sp, transfer, transfer_errata


def test_tasks_are_disjoint_halves_of_cifar10_relabelled():
    assert set(cifar.TASK_CLASSES["source"]).isdisjoint(cifar.TASK_CLASSES["target"])
    assert cifar.task_class_names("target") == ["dog", "frog", "horse", "ship", "truck"]
    x, y = cifar.cifar_task("target", "train", sample=True)
    assert x.shape == (1000, 32, 32, 3) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [200] * 5
    xs, ys = cifar.cifar_task("source", "test", sample=True)
    assert xs.shape == (250, 32, 32, 3) and set(ys.tolist()) == {0, 1, 2, 3, 4}


def test_select_classes_keeps_order_and_relabels():
    x = np.arange(6)[:, None]
    y = np.array([9, 2, 5, 2, 0, 9])
    xs, ys = cifar.select_classes(x, y, [9, 2])
    assert xs[:, 0].tolist() == [0, 1, 3, 5] and ys.tolist() == [0, 1, 1, 0]
    with pytest.raises(ValueError, match="distinct labels"):
        cifar.select_classes(x, y, [2, 2])
    with pytest.raises(ValueError, match="same number of samples"):
        cifar.select_classes(x[:3], y, [2])
    with pytest.raises(ValueError, match="`task` must be one of"):
        cifar.cifar_task("both")


def test_backbone_blocks_named_and_shapes():
    backbone = cifar.cifar_backbone(widths=(8, 16, 16, 32))
    assert cifar.block_names(backbone) == ["block1", "block2", "block3", "block4"]
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    assert tuple(backbone(images).shape) == (3, 32)
    shapes = [tuple(cifar.block_features(backbone, b)(images).shape)
              for b in cifar.BLOCKS]
    assert shapes == [(3, 8), (3, 16), (3, 16), (3, 32)]
    assert backbone.get_layer("block2").output.shape[1:] == (8, 8, 16)
    # uint8 and float pixels give the same features (rescaling happens inside)
    np.testing.assert_allclose(backbone(images), backbone(images.astype("float32")), rtol=1e-5)
    with pytest.raises(ValueError, match="`block` must be one of"):
        cifar.block_features(backbone, "block9")
    with pytest.raises(ValueError, match="1 to 5 blocks"):
        cifar.cifar_backbone(widths=(8,) * 6)


def _images(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_set_trainable_by_names_depth_and_batchnorm():
    backbone = cifar.cifar_backbone(widths=(8, 8, 16, 16))
    model = cifar.classifier(backbone, 5)
    conv4 = 3 * 3 * 16 * 16
    bn4 = 2 * 16
    head = 16 * 5 + 5
    assert finetuning.set_trainable(backbone, ["block4"]) == conv4
    assert backbone.get_layer("block4_bn1").trainable is False
    assert finetuning.trainable_parameter_count(model) == conv4 + head
    assert finetuning.set_trainable(backbone, ["block4"], batchnorm=True) == conv4 + bn4
    assert finetuning.set_trainable(backbone, 2) == conv4       # top 2 layers with weights: conv, bn
    assert finetuning.set_trainable(backbone, False) == 0
    assert finetuning.trainable_parameter_count(model) == head
    everything = finetuning.set_trainable(backbone, True, batchnorm=True)
    assert everything == finetuning.trainable_parameter_count(backbone) > conv4
    with pytest.raises(ValueError, match="no layer with weights .* is named \\['block7'\\]"):
        finetuning.set_trainable(backbone, ["block7"])
    with pytest.raises(ValueError, match="a list of names"):
        finetuning.set_trainable(backbone, "block4")
    with pytest.raises(ValueError, match="has 8 layers with weights"):
        finetuning.set_trainable(backbone, 9)


def test_frozen_batchnorm_runs_in_inference_mode_in_training():
    backbone = cifar.cifar_backbone(widths=(8, 8, 8, 8))
    model = cifar.classifier(backbone, 5)
    images = _images()
    finetuning.set_trainable(backbone, True)                    # convs trainable, batch norm frozen
    np.testing.assert_allclose(model(images, training=True), model(images, training=False),
                               rtol=1e-5, atol=1e-6)
    finetuning.set_trainable(backbone, True, batchnorm=True)    # the bug: batch statistics
    assert not np.allclose(model(images, training=True), model(images, training=False), atol=1e-3)


def test_weights_fingerprint_changes_only_when_weights_change():
    backbone = cifar.cifar_backbone(widths=(8, 8, 8, 8))
    before = finetuning.weights_fingerprint(backbone)
    assert before == finetuning.weights_fingerprint(backbone) and len(before) == 16
    kernel = backbone.get_layer("block1_conv1").kernel
    kernel.assign(kernel + 1e-3)
    assert finetuning.weights_fingerprint(backbone) != before


# ---------------------------------------------------------------- L2-SP


def _arrays(seed, shapes=((3, 4), (4,), (2, 2, 3))):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def test_l2sp_numpy_gradient_matches_central_differences():
    from course_lib import nn

    weights, source, head = _arrays(0), _arrays(1), _arrays(2, ((4, 2),))
    alpha, beta = 0.3, 0.05
    grads, head_grads = l2sp.l2sp_gradient(weights, source, alpha, head, beta)
    for param, grad in zip(weights + head, grads + head_grads, strict=True):
        numeric = nn.numerical_gradient(
            lambda: l2sp.l2sp_penalty(weights, source, alpha, head, beta), param)
        assert grad.shape == param.shape
        assert nn.relative_error(grad, numeric) < 1e-6
    expected = 0.5 * alpha * sum(np.sum((w - s) ** 2) for w, s in zip(weights, source,
                                                                       strict=True))
    expected += 0.5 * beta * np.sum(head[0] ** 2)
    assert l2sp.l2sp_penalty(weights, source, alpha, head, beta) == pytest.approx(expected)
    assert l2sp.l2sp_penalty(source, source, alpha) == 0.0


def test_l2sp_numpy_bad_input():
    weights, source = _arrays(0), _arrays(1)
    with pytest.raises(ValueError, match=r"`weights\[1\]` and `source\[1\]` must have the same shape"):
        l2sp.l2sp_penalty(weights, [source[0], source[1][:2], source[2]], 0.1)
    with pytest.raises(ValueError, match="same length, got 3 and 2"):
        l2sp.l2sp_gradient(weights, source[:2], 0.1)
    with pytest.raises(ValueError, match=r"`weights\[0\]` .* NaN"):
        l2sp.l2sp_penalty([np.full((2,), np.nan)], [np.zeros(2)], 0.1)
    with pytest.raises(ValueError, match="`alpha` must be a finite number >= 0"):
        l2sp.L2SP(-1.0, np.zeros(2))


def _tiny_classifier(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    backbone = cifar.cifar_backbone(widths=(4, 4, 4, 4))
    model = cifar.classifier(backbone, 3)
    finetuning.set_trainable(backbone, True, batchnorm=True)
    return backbone, model


def _perturb(model, seed):
    import keras

    rng = np.random.default_rng(seed)
    for variable in model.trainable_weights:
        value = keras.ops.convert_to_numpy(variable)
        variable.assign(value + 0.1 * rng.standard_normal(value.shape).astype(value.dtype))


def test_l2sp_regularizer_adds_the_numpy_penalty_to_the_loss():
    import keras

    backbone, model = _tiny_classifier()
    source = [keras.ops.convert_to_numpy(v) for v in backbone.trainable_weights]
    count = l2sp.apply_l2sp(backbone, alpha=0.2, head=model.get_layer("head"), beta=0.05)
    assert count == sum(s.size for s in source)
    _perturb(model, seed=1)
    current = [keras.ops.convert_to_numpy(v) for v in backbone.trainable_weights]
    head = [keras.ops.convert_to_numpy(v) for v in model.get_layer("head").trainable_weights]
    expected = l2sp.l2sp_penalty(current, source, 0.2, head, 0.05)
    total = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
    assert total == pytest.approx(expected, rel=1e-5)
    finetuning.set_trainable(backbone, False)                    # frozen variables add nothing
    head_only = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
    assert head_only == pytest.approx(l2sp.l2sp_penalty([], [], 0.2, head, 0.05), rel=1e-5)
    l2sp.remove_regularizers(model)
    assert model.losses == []


# One SGD step with and without L2-SP from the same displaced weights: the difference of the
# two updates is exactly learning_rate * alpha * (w - w_source), the NumPy gradient. The same
# code runs on the current backend and, in a subprocess, on JAX.
L2SP_STEP = """
import numpy as np, keras
from course_lib import cifar, finetuning, l2sp

def models():
    keras.utils.set_random_seed(0)
    backbone = cifar.cifar_backbone(widths=(4, 4, 4, 4))
    model = cifar.classifier(backbone, 3)
    finetuning.set_trainable(backbone, True, batchnorm=True)
    return backbone, model

rng = np.random.default_rng(0)
x = rng.integers(0, 256, (8, 32, 32, 3)).astype("float32")
y = rng.integers(0, 3, 8)
plain_backbone, plain = models()
l2sp_backbone, regularised = models()
source = [keras.ops.convert_to_numpy(v) for v in l2sp_backbone.trainable_weights]
l2sp.apply_l2sp(l2sp_backbone, alpha=0.5)
shift = [0.1 * rng.standard_normal(s.shape).astype("float32") for s in source]
for backbone in (plain_backbone, l2sp_backbone):
    for variable, s, d in zip(backbone.trainable_weights, source, shift):
        variable.assign(s + d)
displaced = [s + d for s, d in zip(source, shift)]
for model in (plain, regularised):
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(x, y)
expected, _ = l2sp.l2sp_gradient(displaced, source, 0.5)
worst = 0.0
for p, q, g in zip(plain_backbone.trainable_weights, l2sp_backbone.trainable_weights, expected):
    step_difference = keras.ops.convert_to_numpy(p) - keras.ops.convert_to_numpy(q)
    worst = max(worst, float(np.max(np.abs(step_difference - 0.1 * g))))
print("WORST", worst)
"""


def _worst(output: str) -> float:
    return float(output.strip().splitlines()[-1].split()[-1])


def test_l2sp_training_step_matches_numpy_gradient(capsys):
    exec(L2SP_STEP, {})
    assert _worst(capsys.readouterr().out) < 1e-5


def test_l2sp_training_step_matches_numpy_gradient_on_jax():
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", L2SP_STEP], env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _worst(result.stdout) < 1e-5


# ---------------------------------------------------------------- heads and budgets


def test_train_head_learns_and_folds_the_standardisation():
    rng = np.random.default_rng(0)
    means = 3.0 * rng.standard_normal((4, 6))
    y = np.repeat(np.arange(4), 50)
    features = 100.0 + 20.0 * (means[y] + rng.standard_normal((200, 6)))   # far from 0, wide
    kernel, bias = finetuning.train_head(features, y, 4, iterations=300)
    assert kernel.shape == (6, 4) and bias.shape == (4,)
    scores = finetuning.linear_predictor((kernel, bias))(features)
    assert np.mean(scores.argmax(1) == y) > 0.95
    assert np.array_equal(finetuning.train_head(features, y, 4)[0],
                          finetuning.train_head(features, y, 4)[0])   # deterministic
    with pytest.raises(ValueError, match="out of range"):
        finetuning.train_head(features, y + 1, 4)


def test_epochs_for_gives_small_budgets_enough_steps():
    assert finetuning.epochs_for(50, 32, min_steps=100, min_epochs=2, max_epochs=40) == 40
    assert finetuning.epochs_for(500, 32, min_steps=100, min_epochs=2, max_epochs=40) == 7
    assert finetuning.epochs_for(20000, 32, min_steps=100, min_epochs=2, max_epochs=40) == 2


# ---------------------------------------------------------------- keras.applications


def test_applications_backbone_loads_a_local_weights_file(tmp_path):
    import keras

    application = keras.applications.MobileNetV3Small(
        input_shape=(48, 48, 3), include_top=False, weights=None, pooling="avg")
    path = tmp_path / "mobilenet.weights.h5"
    application.save_weights(path)
    backbone = transfer.applications_backbone("MobileNetV3Small", weights=path, image_size=48)
    assert all(np.array_equal(a, b) for a, b in zip(application.get_weights(),
                                                    backbone.get_weights(), strict=True))
    features = backbone(np.zeros((2, 32, 32, 3), dtype="uint8"))
    assert tuple(features.shape) == (2, 576)
    with pytest.raises(ValueError, match="does not fit MobileNetV3Large"):
        transfer.applications_backbone("MobileNetV3Large", weights=path, image_size=48)
    with pytest.raises(transfer.WeightsUnavailable, match="not found"):
        transfer.applications_backbone(weights=tmp_path / "missing.h5")


def test_applications_backbone_offline_names_the_file_to_download(tmp_path, monkeypatch, capsys):
    import keras

    def offline(*args, **kwargs):
        print("Downloading data from https://storage.googleapis.com/...")   # what Keras prints first
        raise Exception("URL fetch failure on https://example: -- [Errno -2] Name or service not known")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(keras.utils, "get_file", offline)
    expected = tmp_path / "keras" / "models" / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    assert transfer.keras_weights_path("MobileNetV3Small") == expected
    with pytest.raises(transfer.WeightsUnavailable) as error:
        transfer.applications_backbone("MobileNetV3Small", weights="imagenet")
    message = str(error.value)
    assert "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/" in message
    assert "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5" in message
    assert "Name or service not known" in message
    assert capsys.readouterr().out == ""                  # no "Downloading data from" before the advice


def test_statistics_drift_in_channel_standard_deviations():
    before = [np.array([0.0, 1.0]), np.array([4.0 - 1e-3, 1.0 - 1e-3]),     # sigma 2 and 1
              np.array([5.0]), np.array([1.0 - 1e-3])]
    after = [np.array([1.0, 1.0]), np.array([9.0, 9.0]), np.array([2.0]), np.array([0.5])]
    # channel shifts |d mu| / sigma: 1/2, 0, 3/1 -> mean 7/6; variances do not count
    assert transfer.statistics_drift(before, after) == pytest.approx(7 / 6)
    assert transfer.statistics_drift(before, before) == 0.0
    with pytest.raises(ValueError, match="mean, variance pairs"):
        transfer.statistics_drift(before, after[:2])


# ---------------------------------------------------------------- the source models


def test_source_models_are_registered_and_pretrain_into_the_cache(tmp_path, monkeypatch):
    from course_lib import pretrained

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    assert pretrained.REGISTRY["cifar_source"] == "course_lib.transfer:cifar_source_spec"
    spec = pretrained.spec("mnist_source")
    assert spec.recipe(False)["backbone"] == cifar.BACKBONE
    real = transfer._source_recipe

    def tiny(task, fast):
        return {**real(task, fast), "epochs": 1, "backbone": {"widths": [4, 4, 4, 4],
                                                                "convs_per_block": 1}}

    monkeypatch.setattr(transfer, "_source_recipe", tiny)
    model, meta = pretrained.get_or_train("cifar_source", fast=True, verbose=False)
    assert set(meta["results"]) == {"source_test_accuracy", "train_images", "fit_seconds",
                                    "examples_per_second"}
    assert meta["results"]["train_images"] == 1000 and meta["recipe"]["sample"] is True
    again, _ = pretrained.load("cifar_source", fast=True)
    backbone = transfer.transferred_backbone(again)
    assert all(np.array_equal(a, b) for a, b in zip(
        transfer.source_backbone(model).get_weights(), backbone.get_weights(), strict=True))


def test_mnist_as_cifar_pads_and_repeats():
    digits = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    images = transfer.mnist_as_cifar(digits)
    assert images.shape == (2, 32, 32, 3) and images[:, :2].max() == 0
    np.testing.assert_array_equal(images[:, 2:30, 2:30, 1], digits)
    with pytest.raises(ValueError, match=r"MNIST images \(n, 28, 28\)"):
        transfer.mnist_as_cifar(np.zeros((2, 32, 32)))


# ---------------------------------------------------------------- the silent bugs


def test_trainable_without_recompile_reports_what_keras_does():
    """Pins the behaviour the chapter describes (Keras 3.15): on TensorFlow an unfreeze without
    recompiling trains nothing new and a freeze keeps training; JAX raises. If a Keras release
    changes this, the chapter's text must change too."""
    import keras

    keras.utils.set_random_seed(0)
    source = transfer.build_source({**transfer._source_recipe("cifar_source", True),
                                    "backbone": {"widths": [4, 4, 4, 4], "convs_per_block": 1}})
    x = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    y = np.arange(16) % 5
    found = transfer.trainable_without_recompile(source, x, y, batch_size=8)
    assert "fit changed 2 of the backbone's 20 weight arrays" in found["unfreeze + compile"]
    if keras.backend.backend() == "tensorflow":
        assert "fit changed 0 of" in found["unfreeze, no compile"]
        assert "fit changed 2 of" in found["freeze, no compile"]
    elif keras.backend.backend() == "jax":
        assert "raised ValueError" in found["unfreeze, no compile"]
    found = transfer.inference_mode_is_not_freezing(source, x, y, batch_size=8)
    assert found["weights_changed"] is True             # training=False does not freeze
    assert found["statistics_drift"] > 1e-3             # and fit overrides it for batch norm


def test_l2sp_agreement_with_numpy():
    import keras

    keras.utils.set_random_seed(0)
    source = transfer.build_source({**transfer._source_recipe("cifar_source", True),
                                    "backbone": {"widths": [4, 4, 4, 4], "convs_per_block": 1}})
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    found = transfer.l2sp_agreement(source, 0.5, x, np.arange(8) % 5)
    assert found["keras_penalty"] == pytest.approx(found["numpy_penalty"], rel=1e-5)
    assert found["step_difference_error"] < 1e-5 < found["largest_step_difference"]


# ---------------------------------------------------------------- experiment helpers


def test_validation_split_is_disjoint_balanced_and_seeded():
    y = np.repeat(np.arange(3), 10)
    pool, validation = transfer.validation_split(y, 4, seed=0)
    assert len(validation) == 12 and len(pool) == 18
    assert set(pool.tolist()).isdisjoint(validation.tolist())
    assert np.bincount(y[validation]).tolist() == [4, 4, 4]
    np.testing.assert_array_equal(validation, transfer.validation_split(y, 4, seed=0)[1])


def test_even_batch_size_divides_when_it_can():
    assert finetuning.even_batch_size(50, 32) == 25
    assert finetuning.even_batch_size(22500, 64) == 60
    assert finetuning.even_batch_size(97, 32) == 32          # prime: keep the preferred size
    assert finetuning.even_batch_size(10, 32) == 10


def test_chapter_recipe_fast_is_smaller_and_full_meets_the_issue():
    fast, full = transfer.chapter_recipe(True), transfer.chapter_recipe(False)
    assert len(fast["seeds"]) == 1 and len(full["seeds"]) >= 3
    assert full["budgets"][-1] >= 1000 and full["budgets"][0] == 10       # 1,000 of 4,500 per class
    for recipe in (fast, full):                 # fine-tuning every layer gets scratch's budget
        assert set(recipe["all_layers_budgets"]) <= set(recipe["budgets"])
        assert recipe["fine_tune_all"]["blocks"] is True
        for key in ("batch_size", "min_steps", "min_epochs", "max_epochs", "optimizer"):
            assert recipe["fine_tune_all"][key] == recipe["scratch"][key]
    assert set(full["negative_budgets"]) <= set(full["budgets"])
    for recipe in (fast, full):                 # L2-SP as the paper runs it: SGD, every layer
        penalty = recipe["penalty"]
        assert penalty["fine_tune"]["optimizer"] == "sgd" and penalty["fine_tune"]["blocks"] is True
        assert set(penalty["budgets"]) <= set(recipe["budgets"]) and len(penalty["alphas"]) >= 2
    assert len(full["penalty"]["tune_seeds"]) >= 2 and len(full["penalty"]["budgets"]) >= 3
    assert set(fast["negative_budgets"]) <= set(fast["budgets"])


def test_document_003_loss_ignores_the_data_and_the_correction_does_not():
    from course_lib import nn

    rng = np.random.default_rng(0)
    x, w_s = rng.standard_normal((6, 3)), rng.standard_normal((2, 3))
    y = rng.standard_normal((6, 2))
    delta = 0.2 * rng.standard_normal((2, 3))
    numeric = nn.numerical_gradient(lambda: transfer_errata.document_003_loss(delta, w_s, x, y, 0.1), delta)
    np.testing.assert_allclose(numeric, 0.2 * delta, atol=1e-8)
    w_t = w_s.copy()
    numeric = nn.numerical_gradient(lambda: transfer_errata.corrected_transfer_loss(w_t, w_s, x, y, 0.1), w_t)
    analytic = ((x @ w_s.T - y).T @ x) / len(x)                 # the data gradient at W_t = W_s
    assert nn.relative_error(numeric, analytic) < 1e-6


def test_document_001_stand_ins():
    layer = transfer_errata.TorchLinearStandIn(4096, 1000)
    with pytest.raises(AttributeError):
        _ = layer.num_features
    assert transfer_errata.vgg16_classifier_input(32) == transfer_errata.vgg16_classifier_input(224) == 25088
    with pytest.raises(RuntimeError, match=r"64x25088 and 4096x512"):
        transfer_errata.TorchLinearStandIn(4096, 512)(np.zeros((64, 25088)))
    with pytest.raises(ValueError, match="too small"):
        transfer_errata.vgg16_classifier_input(16)


def test_first_step_is_smaller_from_a_trained_head():
    import keras

    keras.utils.set_random_seed(0)
    source = transfer.build_source({**transfer._source_recipe("cifar_source", True),
                                    "backbone": {"widths": [4, 4, 4, 4], "convs_per_block": 1}})
    x = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    y = np.arange(20) % 5
    moves = {head: transfer.first_step_change(source, x, y, head=head) for head in ("random", "trained")}
    assert moves["random"] > 0 and moves["trained"] > 0
    with pytest.raises(ValueError, match="`head` must be one of"):
        transfer.first_step_change(source, x, y, head="zeros")


def test_head_settings_turn_a_prior_into_an_l2_per_example():
    config = {"iterations": 10, "learning_rate": 0.1, "prior": 20.0}
    assert transfer.head_settings(config, 50) == {"iterations": 10, "learning_rate": 0.1, "l2": 0.4}
    assert transfer.head_settings({"l2": 0.3}, 50) == {"l2": 0.3}


def test_l2_toward_zero_is_the_penalty_with_a_zero_reference():
    import keras

    backbone, model = _tiny_classifier()
    l2sp.apply_l2sp(backbone, alpha=0.3, toward="zero")
    current = [keras.ops.convert_to_numpy(v) for v in backbone.trainable_weights]
    total = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
    assert total == pytest.approx(0.15 * sum(float(np.sum(w ** 2)) for w in current), rel=1e-5)
    with pytest.raises(ValueError, match="toward"):
        l2sp.apply_l2sp(backbone, 0.1, toward="origin")


def test_capable_variables_include_frozen_batchnorm_and_keep_the_flags():
    # on TensorFlow `backbone.trainable = True` is a no-op when the outer flag is already True:
    # the batch-norm scales frozen inside must still be found, and stay frozen
    backbone, _ = _tiny_classifier()
    finetuning.set_trainable(backbone, True, batchnorm=False)
    flags = [layer.trainable for layer in backbone.layers]
    found = l2sp.capable_variables(backbone)
    assert len(found) == 12                                  # 4 kernels + 4 gammas + 4 betas
    assert [layer.trainable for layer in backbone.layers] == flags


def test_chosen_alphas_take_the_best_mean_and_the_smaller_on_ties():
    from course_lib.experiments import LabelEfficiency

    recipe = {"penalty": {"budgets": [10, 100], "alphas": [0.01, 0.1, 1.0]}}
    scores = {("L2-SP", 10): [0.5, 0.6, 0.6], ("L2-SP", 100): [0.7, 0.65, 0.6],
              ("L2", 10): [0.4, 0.4, 0.3], ("L2", 100): [0.2, 0.3, 0.25]}
    records = [{"method": f"SGD + {penalty}, alpha={alpha}", "per_class": budget, "seed": seed,
                "accuracy": value + 0.01 * seed}
               for (penalty, budget), values in scores.items()
               for alpha, value in zip(recipe["penalty"]["alphas"], values, strict=True)
               for seed in (0, 1)]
    assert transfer.chosen_alphas(LabelEfficiency(records), recipe) == {
        "L2-SP": {10: 0.1, 100: 0.01}, "L2": {10: 0.01, 100: 0.1}}


def test_the_stored_sweep_is_refused_when_missing_broken_or_made_otherwise(tmp_path):
    import json

    recipe = transfer.chapter_recipe(False)
    with pytest.raises(ValueError, match="l2sp_alpha_sweep.py"):
        transfer.load_penalty_sweep(recipe, tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        transfer.load_penalty_sweep(recipe, broken)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"penalty": {**recipe["penalty"], "beta": 0.5}, "records": []}))
    with pytest.raises(ValueError, match="another penalty recipe"):
        transfer.load_penalty_sweep(recipe, other)


def test_the_shipped_sweep_matches_the_recipe_and_covers_it():
    recipe = transfer.chapter_recipe(False)
    sweep = transfer.load_penalty_sweep(recipe)
    penalty = recipe["penalty"]
    assert sorted(sweep.budgets) == sorted(penalty["budgets"])
    for budget in penalty["budgets"]:
        for name in ("L2-SP", "L2"):
            for alpha in penalty["alphas"]:
                assert len(sweep.accuracies(f"SGD + {name}, alpha={alpha}", budget)) == \
                    len(penalty["tune_seeds"])
    chosen = transfer.chosen_alphas(sweep, recipe)
    assert set(chosen) == {"L2-SP", "L2"}


def test_fine_tune_log_measures_forgetting_and_distance():
    import keras

    from course_lib.training import RandomCropFlip

    keras.utils.set_random_seed(0)
    recipe = {"backbone": {"widths": [4, 4, 4, 4], "convs_per_block": 1}, "classes": 3,
              "augment": {"pad": 4, "flip": True}, "seed": 0}
    source = transfer.build_source(recipe)
    x, y = _images(12), np.arange(12) % 3
    log = transfer.FineTuneLog(source, x, y)
    untouched = cifar.classifier(transfer.transferred_backbone(source), 3,
                                 augment=RandomCropFlip(4, seed=0))
    log.measure("copy", untouched, 4, 0)
    assert log.forgetting().accuracies("copy", 4)[0] == pytest.approx(log.before)
    assert log.distances().accuracies("copy", 4)[0] == 0.0
    moved = cifar.classifier(transfer.transferred_backbone(source), 3)
    _perturb(moved.get_layer("cifar_backbone"), seed=2)
    log.measure("moved", moved, 4, 0)
    assert log.distances().accuracies("moved", 4)[0] > 0.0
    assert log.forgetting().n_test == 12


def test_source_checkpoints_keep_the_asked_epochs(monkeypatch):
    tiny = {**transfer._source_recipe("cifar_source", True), "epochs": 1,
            "backbone": {"widths": [4, 4, 4, 4], "convs_per_block": 1}}
    found = transfer.source_checkpoints(tiny, [2, 1])
    assert [c["epochs"] for c in found] == [1, 2]
    assert all(0.0 <= c["source_accuracy"] <= 1.0 for c in found)
    first, second = (transfer.source_backbone(c["model"]).get_weights()[0] for c in found)
    assert not np.array_equal(first, second)


def test_set_trainable_keeps_nested_batchnorm_frozen():
    import keras

    application = keras.applications.MobileNetV3Small(
        input_shape=(48, 48, 3), include_top=False, weights=None, pooling="avg")
    outer = keras.Sequential([keras.Input((48, 48, 3)), application])
    finetuning.set_trainable(outer, True)
    inner_bn = [layer for layer in application.layers if finetuning.is_batchnorm(layer)]
    assert inner_bn and not any(layer.trainable for layer in inner_bn)
    assert any(layer.trainable for layer in application.layers if layer.weights)
    finetuning.set_trainable(outer, True, batchnorm=True)
    assert all(layer.trainable for layer in inner_bn)


def test_applications_fine_tune_method_trains_on_a_local_weights_file(tmp_path):
    import keras

    application = keras.applications.MobileNetV3Small(
        input_shape=(96, 96, 3), include_top=False, weights=None, pooling="avg")
    path = tmp_path / "mobilenet.weights.h5"
    application.save_weights(path)
    config = {"blocks": True, "batch_size": 10, "learning_rate": 1e-3, "optimizer": "adam",
              "min_steps": 1, "min_epochs": 1, "max_epochs": 1}
    method = transfer.applications_fine_tune_method("MobileNetV3Small", path, config,
                                                    {"iterations": 5, "learning_rate": 1e-2})
    x, y = _images(10), np.arange(10) % 5
    predictions = method(x, y, 0)(x)
    assert predictions.shape == (10, 5) and np.all(np.isfinite(predictions))

"""course_lib.selfsupervised: the rotation pretext pipeline, the NumPy linear probe, the data split,
the pre-trained models' specs, per-block features and the downstream methods (chapter 08).

Every Keras model here is tiny and trains for a few steps; the cache is a temporary folder.
"""

from collections import Counter

import keras
import numpy as np
import pytest

from course_lib import cifar, finetuning, pretrained, selfsupervised
from course_lib.nn import gradcheck


def _images(n=5, size=6, channels=3, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
    return rng.standard_normal((n, size, size, channels)).astype(dtype)


def _pairs(images, labels):
    return Counter((int(k), np.asarray(img).tobytes()) for k, img in zip(labels, images, strict=True))


# ------------------------------------------------------------------ rotation batches


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_rotation_batch_every_rotation_once_labels_aligned_dtype_kept(dtype):
    x = _images(dtype=dtype)
    rotated, labels = selfsupervised.rotation_batch(x)
    assert rotated.shape == (20, 6, 6, 3) and rotated.dtype == x.dtype
    assert labels.shape == (20,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [5, 5, 5, 5]
    expected = Counter()
    for i in range(5):
        for k in range(4):
            expected[(k, np.rot90(x[i], k).tobytes())] += 1
    assert _pairs(rotated, labels) == expected          # each image once at each rotation
    for k in range(4):                                  # rotation-major layout
        np.testing.assert_array_equal(rotated[k * 5:(k + 1) * 5], np.rot90(x, k, axes=(1, 2)))


def test_rotations_are_counter_clockwise_and_compose():
    x = np.arange(4, dtype=np.uint8).reshape(1, 2, 2, 1)      # [[0, 1], [2, 3]]
    rotated, _ = selfsupervised.rotation_batch(x)
    assert rotated[1, :, :, 0].tolist() == [[1, 3], [0, 2]]    # 90 degrees counter-clockwise
    twice, _ = selfsupervised.rotation_batch(rotated[1:2])
    np.testing.assert_array_equal(twice[1], rotated[2])        # 90 + 90 = 180
    np.testing.assert_array_equal(twice[3], x[0])              # 90 + 270 = 360


def test_a_flip_after_the_rotation_would_swap_90_and_270():
    """Why the augmentation's flip comes before the rotation: flip(rot90(x)) = rot270(flip(x)),
    so a flip applied after rotating turns a 90-degree image into a 270-degree one."""
    x = _images(1)[0]
    np.testing.assert_array_equal(np.fliplr(np.rot90(x, 1)), np.rot90(np.fliplr(x), 3))
    assert not np.array_equal(np.fliplr(np.rot90(x, 1)), np.rot90(np.fliplr(x), 1))


@pytest.mark.parametrize(("bad", "match"), [
    (np.zeros((2, 4, 6, 3), np.uint8), r"H == W.*\(2, 4, 6, 3\)"),
    (np.zeros((4, 4, 3), np.uint8), r"\(n, H, W, C\).*\(4, 4, 3\)"),
    (np.array([[[["a"]]]]), "numeric"),
    (np.full((1, 2, 2, 1), np.nan, np.float32), "NaN"),
])
def test_rotation_batch_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        selfsupervised.rotation_batch(bad)


def _epoch(batches):
    xs, ys = zip(*(batches[i] for i in range(len(batches))), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_rotation_batches_one_epoch_is_every_image_at_every_rotation_once():
    x = _images(12, 8)
    batches = selfsupervised.RotationBatches(x, batch_size=4, seed=1)
    assert len(batches) == 3
    first_x, first_y = batches[0]
    assert first_x.shape == (16, 8, 8, 3) and first_y.shape == (16,)
    images, labels = _epoch(batches)
    assert images.dtype == np.uint8 and labels.dtype == np.int64
    assert _pairs(images, labels) == _pairs(*selfsupervised.rotation_batch(x))
    order = batches.order.copy()
    batches.on_epoch_end()
    assert not np.array_equal(order, batches.order)            # a new order every epoch
    assert _pairs(*_epoch(batches)) == _pairs(*selfsupervised.rotation_batch(x))


def test_rotation_batches_augment_each_image_once_before_rotating():
    x = _images(8, 8)
    batches = selfsupervised.RotationBatches(x, 8, crop_pad=2, flip=True, shuffle=False)
    images, labels = batches[0]
    upright = images[:8]                                       # the augmented originals
    assert not np.array_equal(upright, x)                      # augmentation happened
    for k in range(4):                                         # same augmented image, rotated
        np.testing.assert_array_equal(images[k * 8:(k + 1) * 8], np.rot90(upright, k, axes=(1, 2)))
        assert set(labels[k * 8:(k + 1) * 8].tolist()) == {k}
    again, _ = batches[0]
    np.testing.assert_array_equal(again, images)               # seeded per (epoch, step)


def test_crop_flip_moves_pixels_within_each_image():
    x = _images(64, 8)
    rng = np.random.default_rng(0)
    out = selfsupervised.crop_flip(x, 2, rng, flip=True)
    assert out.shape == x.shape and out.dtype == x.dtype
    same = selfsupervised.crop_flip(x, 0, rng, flip=False)
    np.testing.assert_array_equal(same, x)
    flipped = selfsupervised.crop_flip(x[:1], 0, np.random.default_rng(3), flip=True)
    assert np.array_equal(flipped[0], x[0]) or np.array_equal(flipped[0], x[0, :, ::-1])
    for i in range(64):                                        # a shifted copy: a window of the
        padded = np.pad(x[i], ((2, 2), (2, 2), (0, 0)))        # padded image or its mirror
        windows = [padded[r:r + 8, c:c + 8] for r in range(5) for c in range(5)]
        assert any(np.array_equal(out[i], w) or np.array_equal(out[i], w[:, ::-1]) for w in windows)


def test_rotation_batches_remainder_and_bad_arguments():
    x = _images(10, 4)
    assert len(selfsupervised.RotationBatches(x, 4)) == 2
    assert len(selfsupervised.RotationBatches(x, 4, drop_remainder=False)) == 3
    with pytest.raises(ValueError, match="batch_size"):
        selfsupervised.RotationBatches(x, 0)
    with pytest.raises(ValueError, match="at least batch_size=16"):
        selfsupervised.RotationBatches(x, 16)
    with pytest.raises(ValueError, match="crop_pad"):
        selfsupervised.RotationBatches(x, 2, crop_pad=-1)
    with pytest.raises(ValueError, match="H == W"):
        selfsupervised.RotationBatches(np.zeros((4, 4, 5, 3), np.uint8), 2)


# ------------------------------------------------------------------ the linear probe


def _probe_problem(seed=0, n=30, d=4, k=3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((d, k)), rng.standard_normal(k), rng.standard_normal((n, d)),
            rng.integers(0, k, n))


def test_probe_gradients_pass_a_central_difference_check():
    W, b, f, y = _probe_problem()
    _, dW, db = selfsupervised.probe_loss_and_grads(W, b, f, y, 0.3)

    def loss():
        return selfsupervised.probe_loss_and_grads(W, b, f, y, 0.3)[0]

    num_W = gradcheck.numerical_gradient(loss, W)     # perturbs W in place, restores it
    num_b = gradcheck.numerical_gradient(loss, b)
    assert gradcheck.relative_error(dW, num_W) < 1e-6
    assert gradcheck.relative_error(db, num_b) < 1e-6


def test_probe_loss_is_stable_for_huge_logits():
    W, b, f, y = _probe_problem()
    loss, dW, db = selfsupervised.probe_loss_and_grads(W * 1e4, b, f, y, 0.0)
    assert np.isfinite(loss) and np.all(np.isfinite(dW)) and np.all(np.isfinite(db))


def _keras_probe_loss_and_grads(W, b, f, y, l2):
    """Keras: Dense(kernel W, bias b, L2(l2 / 2) on the kernel) + sparse cross-entropy on logits,
    differentiated by the backend's autodiff."""
    dense = keras.layers.Dense(W.shape[1], kernel_regularizer=keras.regularizers.L2(l2 / 2),
                               dtype="float64")
    dense.build((None, W.shape[0]))
    dense.set_weights([W, b])
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = ce(y, dense(f)) + tf.add_n(dense.losses)
        grads = tape.gradient(loss, dense.trainable_variables)
        return float(loss), grads[0].numpy(), grads[1].numpy()
    if backend == "jax":
        import jax

        def objective(kernel, bias):
            return ce(y, f @ kernel + bias) + l2 / 2 * (kernel**2).sum()

        loss, (gW, gb) = jax.value_and_grad(objective, argnums=(0, 1))(W, b)
        return float(loss), np.asarray(gW), np.asarray(gb)
    pytest.skip(f"no gradient helper for the {backend} backend")


def test_probe_loss_and_gradients_match_keras():
    W, b, f, y = _probe_problem(seed=1)
    loss, dW, db = selfsupervised.probe_loss_and_grads(W, b, f, y, 0.2)
    k_loss, k_dW, k_db = _keras_probe_loss_and_grads(W, b, f, y, 0.2)
    # TensorFlow differentiates in float64 here; JAX computes in float32 unless x64 is enabled.
    rtol, atol = (1e-6, 1e-10) if keras.backend.backend() == "tensorflow" else (1e-5, 1e-6)
    np.testing.assert_allclose(loss, k_loss, rtol=rtol)
    np.testing.assert_allclose(dW, k_dW, rtol=rtol, atol=atol)
    np.testing.assert_allclose(db, k_db, rtol=rtol, atol=atol)


def test_fit_linear_probe_reaches_the_optimum_and_separates_clusters():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    f = rng.standard_normal((120, 5)) * 3.0 + 10.0 * np.eye(3, 5)[y] + 50.0  # unscaled, offset
    probe = selfsupervised.fit_linear_probe(f, y, 3, l2=0.1, steps=500)
    standardised = (f - probe.mean) / probe.std
    _, dW, db = selfsupervised.probe_loss_and_grads(probe.W, probe.b, standardised, y, 0.1)
    assert np.linalg.norm(dW) + np.linalg.norm(db) < 1e-4     # a stationary point: the optimum
    assert np.mean(probe.predict(f) == y) == 1.0
    assert probe(f).shape == (120, 3)
    again = selfsupervised.fit_linear_probe(f, y, 3, l2=0.1, steps=500)
    np.testing.assert_array_equal(again.W, probe.W)            # deterministic


def test_fit_linear_probe_bad_input():
    f, y = np.zeros((6, 2)), np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="same number of samples"):
        selfsupervised.fit_linear_probe(f, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        selfsupervised.fit_linear_probe(np.full((6, 2), np.nan), y)
    with pytest.raises(ValueError, match="integer"):
        selfsupervised.fit_linear_probe(f, y.astype(str))
    with pytest.raises(ValueError, match="l2"):
        selfsupervised.fit_linear_probe(f, y, l2=-1.0)
    probe = selfsupervised.fit_linear_probe(f + np.arange(6)[:, None], y, 2)
    with pytest.raises(ValueError, match="2 columns"):
        probe.predict(np.zeros((3, 5)))


def test_choose_probe_l2_uses_only_its_own_data_and_prefers_strong_penalty_on_ties():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 12)
    f = rng.standard_normal((24, 3)) + 4.0 * y[:, None]        # easy: every l2 is perfect
    best, scores = selfsupervised.choose_probe_l2(f, y, grid=(1e-3, 1e-1, 1.0), folds=3)
    assert set(scores) == {1e-3, 1e-1, 1.0} and all(s == 1.0 for s in scores.values())
    assert best == 1.0
    folds = selfsupervised._stratified_folds(y, 3, seed=0)
    for fold in range(3):
        assert np.bincount(y[folds == fold]).tolist() == [4, 4]


# ------------------------------------------------------------------ data: who sees what


def test_cifar_splits_pool_and_held_out_are_disjoint_and_test_is_separate():
    splits = selfsupervised.cifar_splits(fast=True)
    assert splits.x_pool.shape == (1600, 32, 32, 3) and splits.x_val.shape == (400, 32, 32, 3)
    assert splits.x_test.shape == (500, 32, 32, 3)
    pool = {img.tobytes() for img in splits.x_pool}
    assert not pool & {img.tobytes() for img in splits.x_val}
    assert not pool & {img.tobytes() for img in splits.x_test}
    assert np.bincount(splits.y_pool).min() >= 100              # 100 labels per class possible
    x_pool, x_held = selfsupervised.unlabelled_images(fast=True)   # images only, no labels
    np.testing.assert_array_equal(x_pool, splits.x_pool)
    np.testing.assert_array_equal(x_held, splits.x_val)


# ------------------------------------------------------------------ the pre-trained models


@pytest.fixture
def tiny_pretraining(tmp_path, monkeypatch):
    """A temporary cache, eight random 'unlabelled' images per split, one short epoch."""
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    held = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    monkeypatch.setattr(selfsupervised, "unlabelled_images", lambda fast=None: (pool, held))
    for name, recipe in (("rotation_recipe", selfsupervised.rotation_recipe),
                         ("denoising_recipe", selfsupervised.denoising_recipe)):
        def tiny(fast, recipe=recipe):
            return {**recipe(fast), "epochs": 1, "batch_size": 8,
                    "backbone": {"widths": [4, 4, 8, 8], "convs_per_block": 1}}
        monkeypatch.setattr(selfsupervised, name, tiny)
    return held


def test_both_pretext_models_are_registered():
    for name in ("cifar_rotation", "cifar_denoising"):
        assert pretrained.spec(name).name == name
    recipe = selfsupervised.rotation_recipe(False)
    assert recipe["backbone"] == cifar.BACKBONE               # the network of chapter 07
    assert "labels discarded" in recipe["task"] and "test images unused" in recipe["task"]


def test_rotation_model_trains_caches_reloads_and_refuses_corruption(tiny_pretraining, capsys):
    model, meta = pretrained.get_or_train("cifar_rotation", fast=True)
    results = meta["results"]
    assert 0.0 <= results["pretext_accuracy_held_out"] <= 1.0
    assert len(results["pretext_accuracy_per_rotation"]) == 4
    assert results["pretraining_images"] == 16 and results["held_out_images"] == 8
    assert "epoch 1" in capsys.readouterr().out                 # progress shown
    assert model.output_shape == (None, 4)
    again, _ = pretrained.get_or_train("cifar_rotation", fast=True)
    rotated, _ = selfsupervised.rotation_batch(tiny_pretraining)
    np.testing.assert_allclose(again.predict(rotated, verbose=0),
                               model.predict(rotated, verbose=0), rtol=1e-5, atol=1e-6)
    weights = pretrained.model_dir("cifar_rotation", fast=True) / pretrained.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(pretrained.CorruptModelError):
        pretrained.load("cifar_rotation", fast=True)


def test_pretext_accuracy_counts_every_rotation(tiny_pretraining):
    model = selfsupervised.rotation_model(selfsupervised.rotation_recipe(True))
    result = selfsupervised.pretext_accuracy(model, tiny_pretraining)
    confusion = np.array(result["confusion"])
    assert confusion.shape == (4, 4) and confusion.sum(axis=1).tolist() == [8, 8, 8, 8]
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / 32)


def test_denoising_model_reconstructs_images_and_its_encoder_has_the_blocks(tiny_pretraining):
    model, meta = pretrained.get_or_train("cifar_denoising", fast=True, verbose=False)
    assert model.output_shape == (None, 32, 32, 3)
    out = model.predict(tiny_pretraining, verbose=0)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert meta["results"]["masked_input_mse_held_out"] > 0
    features = selfsupervised.block_features(model.get_layer("encoder"), tiny_pretraining)
    assert list(features) == ["block1", "block2", "block3", "block4"]


def test_pixel_mask_masks_whole_pixels_in_training_only():
    x = keras.ops.ones((4, 8, 8, 3))
    layer = selfsupervised.PixelMask(0.5, seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), 1.0)
    masked = keras.ops.convert_to_numpy(layer(x, training=True))
    assert 0.3 < (masked[..., 0] == 0).mean() < 0.7
    assert np.all(masked.min(axis=-1) == masked.max(axis=-1))   # all channels of a pixel alike
    np_masked = selfsupervised.mask_pixels(_images(4, 8), 0.5, np.random.default_rng(0))
    assert np_masked.dtype == np.uint8 and np.all((np_masked == 0).all(-1) | (np_masked != 0).any(-1))
    with pytest.raises(ValueError, match="rate"):
        selfsupervised.PixelMask(1.0)


def test_pixel_mse_matches_numpy():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    pred = rng.random((2, 4, 4, 3)).astype(np.float32)
    got = keras.ops.convert_to_numpy(selfsupervised.pixel_mse(target, keras.ops.convert_to_tensor(pred)))
    np.testing.assert_allclose(got, ((target / 255.0 - pred) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)


# ------------------------------------------------------------------ features and methods


def _tiny_backbone():
    keras.utils.set_random_seed(0)
    return cifar.cifar_backbone(widths=(4, 4, 8, 8))


def test_block_features_shapes_and_bad_block():
    x = _images(3, 32)
    features = selfsupervised.block_features(_tiny_backbone(), x)
    assert {k: v.shape for k, v in features.items()} == {
        "block1": (3, 16), "block2": (3, 16), "block3": (3, 32), "block4": (3, 32)}
    one = selfsupervised.block_features(_tiny_backbone(), x, blocks=["block2"], grid=1)
    assert one["block2"].shape == (3, 4)
    with pytest.raises(ValueError, match="block9"):
        selfsupervised.block_features(_tiny_backbone(), x, blocks=["block9"])


def test_probe_per_block_and_probe_method():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 10)
    feats = {"block1": rng.standard_normal((20, 3)), "block2": rng.standard_normal((20, 3))
             + 5.0 * y[:, None]}
    accuracy = selfsupervised.probe_per_block(feats, y, feats, y)
    assert accuracy["block2"] == 1.0 and accuracy["block1"] < 1.0
    predictor = selfsupervised.probe_method(grid=(0.1, 1.0))(feats["block2"], y, 0)
    assert predictor(feats["block2"]).shape == (20, 2)


def test_scratch_and_finetune_methods_train_copies_and_leave_the_pretrained_backbone_alone():
    x = _images(12, 32)
    y = np.repeat(np.arange(3), 4)
    pretrained_backbone = _tiny_backbone()
    before = finetuning.weights_fingerprint(pretrained_backbone)
    config = {"widths": [4, 4, 8, 8], "convs_per_block": 1}
    recipe = selfsupervised.FewLabelRecipe(steps=2, batch_size=4)
    for method in (selfsupervised.scratch_method(config, recipe),
                   selfsupervised.finetune_method(pretrained_backbone, config, recipe)):
        assert method(x, y, 0)(x[:5]).shape == (5, 3)
    assert finetuning.weights_fingerprint(pretrained_backbone) == before


def test_pretext_accuracy_by_class_and_chapter_recipe(tiny_pretraining):
    model = selfsupervised.rotation_model(selfsupervised.rotation_recipe(True))
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    per_class = selfsupervised.pretext_accuracy_by_class(model, tiny_pretraining, labels)
    overall = selfsupervised.pretext_accuracy(model, tiny_pretraining)["accuracy"]
    assert per_class.shape == (3,) and np.all((per_class >= 0) & (per_class <= 1))
    assert np.average(per_class, weights=[3, 3, 2]) == pytest.approx(overall)
    with pytest.raises(ValueError, match="same number of samples"):
        selfsupervised.pretext_accuracy_by_class(model, tiny_pretraining, labels[:-1])
    full, fast = selfsupervised.chapter_recipe(False), selfsupervised.chapter_recipe(True)
    assert full["budgets"] == [10, 100] and len(full["seeds"]) >= 3
    assert full["target_trained_methods"] and not fast["target_trained_methods"]


def test_simclr_model_is_registered_trains_and_leaves_its_statistics_alone(tiny_pretraining,
                                                                           monkeypatch):
    from course_lib import contrastive

    recipe = contrastive.simclr_recipe(False)
    assert pretrained.spec("cifar_simclr").name == "cifar_simclr"
    assert recipe["backbone"] == cifar.BACKBONE
    assert "labels discarded" in recipe["task"] and "test images unused" in recipe["task"]
    import json  # matched pre-training budget

    rotation = json.loads((pretrained.SHIPPED_DIR / "cifar_rotation.meta.json").read_text())
    assert recipe["epochs"] * 2 == rotation["recipe"]["epochs"] * selfsupervised.ROTATIONS
    real = contrastive.simclr_recipe
    monkeypatch.setattr(contrastive, "simclr_recipe", lambda fast: {
        **real(fast), "epochs": 1, "batch_size": 8,
        "backbone": {"widths": [4, 4, 8, 8], "convs_per_block": 1}})
    model, meta = pretrained.get_or_train("cifar_simclr", fast=True, verbose=False)
    results = meta["results"]
    assert model.output_shape == (None, 2, 64)
    assert len(results["loss_history"]) == 1 and np.isfinite(results["loss_history"][0])
    assert 0.0 <= results["contrastive_accuracy_held_out"] <= 1.0
    assert results["chance_contrastive_accuracy"] == pytest.approx(1 / 15)
    before = [keras.ops.convert_to_numpy(w) for w in model.weights]
    first = contrastive.contrastive_accuracy(model, tiny_pretraining, batch_size=8, seed=1)
    assert contrastive.contrastive_accuracy(model, tiny_pretraining, batch_size=8, seed=1) == first
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(b))          # inference mode only
               for a, b in zip(before, model.weights, strict=True))

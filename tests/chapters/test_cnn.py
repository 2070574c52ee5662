"""course_lib.cnn: the chapter 04 helpers (loops against the library layers, gradients, the
documents' formulas and code, the NumPy and Keras CNNs)."""

import numpy as np
import pytest

from course_lib import cnn, nn


def rng():
    return np.random.default_rng(0)


def test_output_size_formulas():
    assert cnn.output_size(28, 3, 1, "valid") == 26
    assert cnn.output_size(28, 3, 2, "same") == 14
    assert cnn.output_size(7, 2, 3, "same") == 3
    assert cnn.output_size(5, 3, 2, 1) == 3          # floor((5 + 2 - 3) / 2) + 1
    assert cnn.output_size(28, 5, 1, 2) == 28
    with pytest.raises(ValueError, match="smaller than the window 5"):
        cnn.output_size(2, 5, 1, 1)


@pytest.mark.parametrize(("strides", "padding"), [(1, "valid"), (2, "valid"), (1, "same"),
                                                   (2, "same"), (3, "same")])
def test_conv_loop_equals_the_im2col_layer(strides, padding):
    g = rng()
    x, kernel, bias = g.standard_normal((2, 7, 8, 3)), g.standard_normal((3, 2, 3, 4)), g.standard_normal(4)
    layer = nn.Conv2D(4, (3, 2), strides=strides, padding=padding, dtype=np.float64)
    layer.forward(x)
    layer.set_weights([kernel, bias])
    np.testing.assert_allclose(cnn.conv2d_loop(x, kernel, bias, strides, padding), layer.forward(x),
                               atol=1e-12)


def test_conv_loop_explicit_padding_equals_zero_padding_layer():
    g = rng()
    x, kernel = g.standard_normal((1, 5, 5, 2)), g.standard_normal((3, 3, 2, 2))
    padded = nn.ZeroPadding2D(1, dtype=np.float64).forward(x)
    np.testing.assert_allclose(cnn.conv2d_loop(x, kernel, padding=1, stride=2),
                               cnn.conv2d_loop(padded, kernel, stride=2), atol=1e-12)


def test_conv_loop_rejects_mismatched_channels():
    with pytest.raises(ValueError, match=r"`x` has 3 channels .* `kernel` expects 2"):
        cnn.conv2d_loop(np.zeros((1, 4, 4, 3)), np.zeros((3, 3, 2, 1)))
    with pytest.raises(ValueError, match="`x` must have rank 4"):
        cnn.conv2d_loop(np.zeros((4, 4)), np.zeros((3, 3, 1, 1)))


@pytest.mark.parametrize(("pool", "stride"), [(2, None), (3, 2), (2, 1)])
def test_maxpool_loop_equals_the_layer(pool, stride):
    x = rng().standard_normal((2, 7, 6, 3))
    layer = nn.MaxPool2D(pool, strides=stride, dtype=np.float64)
    np.testing.assert_array_equal(cnn.maxpool2d_loop(x, pool, stride), layer.forward(x))


def test_backward_formulas_equal_the_layer_gradients():
    g = rng()
    x = g.standard_normal((2, 6, 5, 3))
    layer = nn.Conv2D(4, 3, dtype=np.float64, seed=0)
    out = layer.forward(x)
    grad = g.standard_normal(out.shape)
    dx = layer.backward(grad)
    np.testing.assert_allclose(cnn.conv_input_gradient(grad, layer.params["kernel"]), dx, atol=1e-12)
    np.testing.assert_allclose(cnn.conv_kernel_gradient(x, grad, 3, 3), layer.grads["kernel"],
                               atol=1e-12)


def test_maxpool_gradient_map_marks_each_windows_maximum():
    image = np.array([[1, 2, 0, 1], [0, 1, 3, 1], [2, 1, 0, 0], [1, 0, 2, 3]], float)
    grad_map = cnn.maxpool_gradient_map(image[None, :, :, None])[0, :, :, 0]
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[1, 2] = expected[2, 0] = expected[3, 3] = 1
    np.testing.assert_array_equal(grad_map, expected)


def test_parameter_and_cost_counts():
    sizes = cnn.conv_and_dense_sizes(28, 28, 1, filters=32, kernel=3)
    assert sizes["conv"] == {"parameters": 320, "multiply_adds": 26 * 26 * 32 * 9, "outputs": 21632}
    assert sizes["dense"]["parameters"] == 784 * 21632 + 21632


def test_document_003_formulas_as_printed():
    f = np.arange(6.0).reshape(2, 3)
    image = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(cnn.document_003_convolution(f, image), f @ image[:3])
    np.testing.assert_array_equal(cnn.document_003_max_pool(image), [[12, 13, 14, 15]])
    f1, f2, row = [1.0, 0.0, -1.0], [0.5, 0.5, 0.5], np.arange(1.0, 6.0)
    doc = cnn.document_003_worked_example(f1, f2, 0.1, row)
    kernels = np.stack([f1, f2], axis=-1).reshape(1, 3, 1, 2)
    as_conv = cnn.conv2d_loop(row.reshape(1, 1, 5, 1), kernels, np.array([0.1, 0.1]))[0, 0].T
    np.testing.assert_allclose(doc["C"], as_conv)      # two 1 x 3 filters on a row of 5 pixels
    assert doc["z"] == doc["P"][0] * doc["P"][1] == 0.0


def test_document_003_code_fails_as_printed_and_runs_repaired():
    versions = cnn.document_003_versions()
    assert [label for label, _ in versions][0] == "as printed"
    assert len(versions) == len(cnn.DOCUMENT_003_REPAIRS) + 1
    results = dict(cnn.run_document_003())
    assert results["as printed"].startswith(("ValueError: No such layer: dense1",
                                              "ModuleNotFoundError", "ImportError"))  # no TF
    assert list(results.values())[-1] == "ok"
    assert all(r.startswith("ValueError") for r in list(results.values())[1:-1])


def test_data_helpers():
    x = np.full((3, 28, 28), 255, np.uint8)
    images = cnn.mnist_images(x)
    assert images.shape == (3, 28, 28, 1) and images.dtype == np.float32 and images.max() == 1.0
    with pytest.raises(ValueError, match=r"grey images .* got shape \(3, 784\)"):
        cnn.mnist_images(np.zeros((3, 784), np.uint8))
    xs, ys = np.arange(20)[:, None], np.arange(20) % 10
    a = cnn.split_validation(xs, ys, n_val=5, seed=1)
    b = cnn.split_validation(xs, ys, n_val=5, seed=1)
    assert [len(part) for part in a] == [15, 15, 5, 5]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert set(a[0][:, 0]).isdisjoint(a[2][:, 0])
    with pytest.raises(ValueError, match="`n_val` must be between 1 and 19"):
        cnn.split_validation(xs, ys, n_val=20)
    sub_x, sub_y = cnn.digit_subset(xs, ys, (5, 7))
    assert sub_x[:, 0].tolist() == [5, 7, 15, 17] and sub_y.tolist() == [0, 1, 0, 1]
    acc = cnn.per_class_accuracy(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 4)
    np.testing.assert_array_equal(acc[:3], [0.5, 1.0, 0.0])
    assert np.isnan(acc[3])


def test_numpy_cnn_shapes_and_keep_best():
    model = cnn.numpy_cnn(filters=(4, 8), seed=0)
    assert model.count_params() == (9 * 4 + 4) + (9 * 4 * 8 + 8) + (200 * 10 + 10)
    g = rng()
    x = g.uniform(0, 1, (64, 28, 28, 1)).astype(np.float32)
    y = np.arange(64) % 10
    run = cnn.fit_keep_best(model, x[:48], y[:48], x[48:], y[48:], epochs=3, batch_size=16,
                            verbose=False)
    assert len(run["history"]["val_accuracy"]) == 3 and 1 <= run["best_epoch"] <= 3
    best = max(run["history"]["val_accuracy"])
    assert model.evaluate(x[48:], y[48:])["accuracy"] == pytest.approx(best)
    assert model.predict(x[:2]).shape == (2, 10)
    assert cnn.feature_maps(model, x[:2], upto=2).shape == (2, 13, 13, 4)


def test_keras_builders():
    keras = pytest.importorskip("keras")
    mnist = cnn.keras_mnist_cnn()
    assert mnist.count_params() == 34826 and mnist.output_shape == (None, 10)
    doc = cnn.keras_document_cnn(10)
    assert doc.count_params() == 347146 and doc.get_layer("dense1").units == 64
    cifar = cnn.keras_cifar_cnn()
    out = cifar(np.zeros((2, 32, 32, 3), np.uint8), training=False)
    assert tuple(out.shape) == (2, 10) and cifar.count_params() == 24570
    assert cnn.keras_cifar_cnn(widths=(32, 64, 128)).count_params() == 95210
    assert keras.ops.convert_to_numpy(out).dtype == np.float32


def test_transfer_model_is_a_frozen_copy_and_leaves_the_source_alone():
    keras = pytest.importorskip("keras")
    source = cnn.keras_document_cnn(5)
    before = [w.copy() for w in source.get_weights()]
    target = cnn.transfer_model(source, 3)
    features = target.get_layer("features")
    assert features.trainable is False
    assert not any(a is b for a in features.layers for b in source.layers)
    assert all(np.array_equal(a, b) for a, b in
               zip(features.get_weights(), before[:len(features.get_weights())], strict=True))
    g = rng()
    x, y = g.uniform(0, 1, (16, 28, 28, 1)).astype(np.float32), np.arange(16) % 3
    features.trainable = True
    target.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    target.fit(x, y, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(source.get_weights(), before, strict=True))
    assert target.output_shape == (None, 3)


def test_transfer_run_reports_every_method():
    pytest.importorskip("keras")
    source = cnn.keras_document_cnn(5)
    g = rng()
    x, y = g.uniform(0, 1, (20, 28, 28, 1)).astype(np.float32), np.arange(20) % 5
    result = cnn.transfer_run(source, x, y, x[:10], y[:10], seed=0, epochs=1, fine_tune_epochs=1)
    assert set(result) == {"from scratch", "frozen features", "fine-tuned", "trainable, frozen",
                           "trainable, fine-tuned"}
    assert result["trainable, frozen"] == 64 * 5 + 5
    assert result["trainable, fine-tuned"] > result["trainable, frozen"]
    assert all(0.0 <= result[k] <= 1.0 for k in ("from scratch", "frozen features", "fine-tuned"))


def test_receptive_fields_agree_with_single_pixel_perturbations():
    """A linear network with positive weights and average pooling: the input pixels that move the
    centre unit of the last layer form exactly the square the formula predicts."""
    import keras
    from keras import layers

    inputs = keras.Input((24, 24, 1))
    h = layers.Conv2D(1, 3, use_bias=False, kernel_initializer="ones", name="c1")(inputs)
    h = layers.AveragePooling2D(2, name="p1")(h)
    h = layers.Conv2D(1, 3, strides=2, use_bias=False, kernel_initializer="ones", name="c2")(h)
    h = layers.Conv2D(1, 2, dilation_rate=2, use_bias=False, kernel_initializer="ones", name="c3")(h)
    model = keras.Model(inputs, h)
    rows = cnn.receptive_fields(model)
    assert [r["name"] for r in rows] == ["c1", "p1", "c2", "c3"]
    assert [(r["field"], r["jump"]) for r in rows] == [(3, 1), (4, 2), (8, 4), (16, 4)]
    out_size = rows[-1]["output"]
    base = model.predict(np.zeros((1, 24, 24, 1), np.float32), verbose=0)[0, :, :, 0]
    pokes = np.zeros((24 * 24, 24, 24, 1), np.float32)
    pokes[np.arange(24 * 24), np.arange(24 * 24) // 24, np.arange(24 * 24) % 24, 0] = 1.0
    moved = model.predict(pokes, verbose=0)[:, 0, 0, 0] != base[0, 0]
    rows_hit, cols_hit = np.nonzero(moved.reshape(24, 24))
    assert out_size >= 1
    assert rows_hit.max() - rows_hit.min() + 1 == 16 and cols_hit.max() - cols_hit.min() + 1 == 16


def test_receptive_fields_of_the_chapter_networks():
    mnist = cnn.receptive_fields(cnn.keras_mnist_cnn())
    assert [(r["name"], r["field"], r["jump"], r["output"]) for r in mnist] == [
        ("conv1", 3, 1, 26), ("pool1", 4, 2, 13), ("conv2", 8, 2, 11), ("pool2", 10, 4, 5)]
    assert cnn.receptive_fields(cnn.keras_cifar_cnn())[-1]["field"] == 22


def test_stack_gradient_norms_plain_vanishes_residual_does_not():
    norms = {kind: cnn.stack_gradient_norms(kind, depth=30) for kind in cnn.STACK_KINDS}
    for values in norms.values():
        assert values.shape == (31,) and np.all(np.isfinite(values))
    ratio = {kind: v[0] / v[-1] for kind, v in norms.items()}
    assert ratio["plain"] < 1e-3 and ratio["residual"] > 1e2 and 0.5 < ratio["scaled residual"] < 3
    with pytest.raises(ValueError, match="`kind` must be one of"):
        cnn.stack_gradient_norms("dense")


def test_stack_gradient_norms_match_autodiff():
    """The hand-written backward pass against central differences of the same scalar."""
    depth, width, n = 3, 5, 4
    for kind in cnn.STACK_KINDS:
        rng = np.random.default_rng(0)
        limit = np.sqrt(6.0 / (2 * width))
        weights = [rng.uniform(-limit, limit, (width, width)) for _ in range(depth)]
        scale = 1 / np.sqrt(depth) if kind == "scaled residual" else 1.0
        h0 = rng.standard_normal((n, width))
        r = rng.standard_normal((n, width)) / np.sqrt(n)

        def loss(h, weights=weights, scale=scale, kind=kind, r=r):
            for w in weights:
                branch = np.maximum(h @ w, 0.0)
                h = branch if kind == "plain" else h + scale * branch
            return float(np.sum(h * r))

        numeric = np.zeros_like(h0)
        for index in np.ndindex(h0.shape):
            up, down = h0.copy(), h0.copy()
            up[index] += 1e-6
            down[index] -= 1e-6
            numeric[index] = (loss(up) - loss(down)) / 2e-6
        norms = cnn.stack_gradient_norms(kind, depth=depth, width=width, n=n, seed=0)
        assert norms[0] == pytest.approx(np.linalg.norm(numeric), rel=1e-6)


def test_keras_deep_mlp_and_cifar_without_batchnorm():
    for kind in cnn.STACK_KINDS:
        model = cnn.keras_deep_mlp(kind, depth=3, width=8)
        assert model.output_shape == (None, 10)
        adds = [layer for layer in model.layers if type(layer).__name__ == "Add"]
        assert len(adds) == (0 if kind == "plain" else 3)
    plain = cnn.keras_cifar_cnn(batchnorm=False)
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in plain.layers)
    assert plain.count_params() == 24_234


def test_batch_statistics_accuracy_and_batchnorm_momentum():
    import keras

    model = cnn.keras_cifar_cnn(bn_momentum=0.9)
    momenta = [layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert momenta == [0.9, 0.9, 0.9]
    x = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3)).astype(np.float32)
    y = np.arange(12) % 10
    by_hand = np.asarray(model(x[:5], training=True)).argmax(axis=1)
    found = cnn.accuracy_with_batch_statistics(model, x, y, batch_size=5)
    assert 0.0 <= found <= 1.0
    assert np.array_equal(np.asarray(model(x[:5], training=True)).argmax(axis=1), by_hand)  # batch statistics only
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        cnn.accuracy_with_batch_statistics(model, x, y, batch_size=0)

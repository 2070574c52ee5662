"""course_lib.generalization: data split, augmentation, the regularisation table, L2 vs weight
decay, FGSM/PGD, and the Keras input gradient and adversarial training (TensorFlow in-process,
JAX in a subprocess)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course_lib import generalization as gen
from course_lib import nn

KERAS_SCRIPT = Path(__file__).with_name("generalization_keras.py")


def images(n=6, seed=0):
    g = np.random.default_rng(seed)
    x = np.zeros((n, 10, 10), np.float32)
    x[:, 3:7, 3:7] = g.uniform(0.2, 1.0, (n, 4, 4))  # content away from the border
    return x


# -- data and augmentation -------------------------------------------------------------------------
def test_to_unit_and_its_error():
    x = gen.to_unit(np.array([[[0, 255]]], np.uint8))
    assert x.dtype == np.float32 and x.tolist() == [[[0.0, 1.0]]]
    with pytest.raises(ValueError, match="uint8"):
        gen.to_unit(np.ones((2, 3, 3)))


def test_split_is_seeded_disjoint_and_checked():
    x, y = np.arange(20)[:, None] * np.ones((1, 3)), np.arange(20)
    a = gen.split(x, y, 12, 5, seed=1)
    b = gen.split(x, y, 12, 5, seed=1)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    x_tr, y_tr, x_val, y_val = a
    assert len(y_tr) == 12 and len(y_val) == 5 and not set(y_tr) & set(y_val)
    np.testing.assert_array_equal(x_tr[:, 0], y_tr)
    with pytest.raises(ValueError, match="exceeds the 20 examples"):
        gen.split(x, y, 16, 5)
    with pytest.raises(ValueError, match="same number of samples"):
        gen.split(x, y[:3], 2, 1)


def test_random_shift_moves_content_without_losing_it():
    x = images()
    out = gen.random_shift(x, 2, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_allclose(out.sum(axis=(1, 2)), x.sum(axis=(1, 2)), rtol=1e-6)
    moved = [not np.array_equal(a, b) for a, b in zip(out, x, strict=True)]
    assert any(moved)
    for a, b in zip(out, x, strict=True):  # each output is the input shifted by <= 2 pixels
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(np.roll(b, (dy, dx), axis=(0, 1)), a)]
        assert found
    np.testing.assert_array_equal(gen.random_shift(x, 0, np.random.default_rng(0)), x)
    with pytest.raises(ValueError, match="max_shift"):
        gen.random_shift(x, -1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="rank 3 or 4"):
        gen.random_shift(x[0], 1, np.random.default_rng(0))


def test_random_flip_mirrors_some_images():
    x = images(20)
    out = gen.random_flip(x, np.random.default_rng(0))
    flipped = [np.array_equal(a, b[:, ::-1]) and not np.array_equal(a, b)
               for a, b in zip(out, x, strict=True)]
    same = [np.array_equal(a, b) for a, b in zip(out, x, strict=True)]
    assert all(f or s for f, s in zip(flipped, same, strict=True)) and 0 < sum(flipped) < 20


# -- the MLP and the regularisation table ------------------------------------------------------------
def tiny_digits(n=120, seed=0):
    """Two classes of 28x28 images: a bright square top-left or bottom-right, plus noise."""
    g = np.random.default_rng(seed)
    y = g.integers(0, 2, n)
    x = g.uniform(0, 0.2, (n, 28, 28)).astype(np.float32)
    for i, label in enumerate(y):
        r = 4 if label == 0 else 16
        x[i, r:r + 8, r:r + 8] += 0.7
    return np.clip(x, 0, 1), y


def test_mlp_classifier_has_the_requested_regularisers():
    plain = gen.mlp_classifier(16)
    assert [type(layer).__name__ for layer in plain.layers] == ["Flatten", "Dense", "Dense"]
    assert plain.optimizer.weight_decay == 0.0
    reg = gen.mlp_classifier(16, dropout=0.3, weight_decay=1e-3)
    assert isinstance(reg.layers[2], nn.Dropout) and reg.layers[2].rate == 0.3
    assert reg.optimizer.weight_decay == 1e-3
    assert plain.predict(np.zeros((2, 28, 28), np.float32)).shape == (2, 10)


def test_train_mlp_reports_clean_train_accuracy_and_gap():
    x, y = tiny_digits()
    x_before = x.copy()
    result = gen.train_mlp(gen.Regulariser("all", 1e-3, 0.2, 2), x[:80], y[:80], x[80:], y[80:],
                           epochs=3, hidden=16, seed=0)
    np.testing.assert_array_equal(x, x_before)  # augmentation works on copies
    h = result["history"]
    assert all(len(v) == 3 for v in h.values())
    assert result["train_accuracy"] == h["accuracy"][-1]
    assert result["gap"] == pytest.approx(result["train_accuracy"] - result["val_accuracy"])
    assert result["model"].evaluate(x[:80], y[:80])["accuracy"] == result["train_accuracy"]
    assert result["val_accuracy"] > 0.9  # the task is easy


def test_regularisation_table_rows_and_format():
    x, y = tiny_digits()
    regs = [gen.Regulariser("none"), gen.Regulariser("dropout", dropout=0.3)]
    rows = gen.regularisation_table(regs, x[:80], y[:80], x[80:], y[80:], seeds=(0, 1), epochs=2,
                                    hidden=8)
    assert [r["name"] for r in rows] == ["none", "dropout"]
    for row in rows:
        val = [r["val_accuracy"] for r in row["runs"]]
        assert row["val_mean"] == pytest.approx(np.mean(val))
        assert row["val_sd"] == pytest.approx(np.std(val, ddof=1))
    text = gen.format_table(rows)
    assert "2 seeds" in text and "dropout" in text and "±" in text
    with pytest.raises(ValueError, match="at least 2 seeds"):
        gen.regularisation_table(regs, x, y, x, y, seeds=(0,), epochs=1)


def test_augmentation_leak_returns_both_protocols_per_seed():
    x, y = tiny_digits(80)
    result = gen.augmentation_leak(x[:60], y[:60], x[60:], y[60:], copies=2, epochs=1, hidden=8,
                                   seeds=(0, 1))
    assert set(result) == {"augment, then split", "split, then augment"}
    for protocol in result.values():
        assert protocol["val_accuracy"].shape == (2,) and protocol["test_accuracy"].shape == (2,)
        assert np.all((protocol["val_accuracy"] >= 0) & (protocol["val_accuracy"] <= 1))


# -- L2 and weight decay -----------------------------------------------------------------------------
def test_document_rule_is_l2_for_plain_sgd_but_not_for_adam():
    grad_fn, theta0 = gen.least_squares(seed=1)
    lr, lam, steps = 0.1, 0.05, 40
    document = [theta0]
    for _ in range(steps):
        document.append(gen.document_update(document[-1], grad_fn(document[-1]), lr, lam))
    l2_sgd = gen.run_optimizer(nn.SGD(lr, weight_decay=lam), grad_fn, theta0, steps)
    assert l2_sgd.shape == (steps + 1, 4)
    np.testing.assert_allclose(l2_sgd, np.array(document), atol=1e-6)
    l2_adam = gen.run_optimizer(nn.Adam(0.01, weight_decay=lam), grad_fn, theta0, steps)
    adamw = gen.run_optimizer(nn.AdamW(0.01, weight_decay=lam), grad_fn, theta0, steps)
    assert np.abs(l2_adam - adamw).max() > 1e-3


def test_document_rule_fixed_point_is_not_the_minimum():
    """On L = (theta - 3)^2 / 2 the rule converges to 3 / (1 + lambda), not argmin L = 3."""
    theta = np.array([0.0])
    for _ in range(500):
        theta = gen.document_update(theta, theta - 3.0, 0.1, 0.5)
    assert theta[0] == pytest.approx(2.0, abs=1e-9)


# -- attacks (NumPy) ---------------------------------------------------------------------------------
def linear_problem(seed=0, n=5, d=8):
    """loss = mean(x @ w) on pixels in [0, 1]: dL/dx = w / n, so sign(grad) = sign(w)."""
    g = np.random.default_rng(seed)
    w = g.standard_normal(d)
    x = g.uniform(0, 1, (n, d))
    x[0, :3] = [0.0, 1.0, 0.5]

    def gradient_fn(x_in, y):
        return float(np.mean(x_in @ w)), np.tile(w / len(x_in), (len(x_in), 1))

    return x, np.zeros(n, int), w, gradient_fn


def test_fgsm_steps_along_the_gradient_sign_and_clips():
    x, y, w, f = linear_problem()
    out = gen.fgsm(x, y, f, 0.1)
    np.testing.assert_allclose(out, np.clip(x + 0.1 * np.sign(w), 0, 1))
    assert out.dtype == x.dtype and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(gen.fgsm(x, y, f, 0.0), x)


def test_pgd_stays_in_the_ball_and_the_pixel_range():
    x, y, w, f = linear_problem()
    for random_start in (False, True):
        out = gen.pgd(x, y, f, 0.2, steps=9, step_size=0.05, random_start=random_start, seed=0)
        assert np.abs(out - x).max() <= 0.2 + 1e-12 and out.min() >= 0 and out.max() <= 1
        # a linear loss: enough steps reach the corner of the box, x + eps sign(w), clipped
        np.testing.assert_allclose(out, np.clip(x + 0.2 * np.sign(w), 0, 1), atol=1e-12)
    start = gen.pgd(x, y, f, 0.2, steps=0, seed=0)
    assert 0 < np.abs(start - x).max() <= 0.2 and start.min() >= 0
    np.testing.assert_array_equal(gen.pgd(x, y, f, 0.2, steps=0, random_start=False), x)


def test_fgsm_random_start_is_a_valid_training_perturbation():
    x, y, w, f = linear_problem()
    out = gen.fgsm_random_start(x, y, f, 0.1, rng=np.random.default_rng(0))
    assert np.abs(out - x).max() <= 0.1 + 1e-12 and out.min() >= 0 and out.max() <= 1
    moved = out - x
    interior = (x > 0.2) & (x < 0.8)
    # alpha = 1.25 eps > eps: every interior pixel ends on the side of sign(w)
    assert np.all(np.sign(moved[interior]) == np.broadcast_to(np.sign(w), x.shape)[interior])


def test_attack_errors_name_the_argument():
    x, y, w, f = linear_problem()
    with pytest.raises(ValueError, match="pixel range"):
        gen.fgsm(x * 255, y, f, 0.1)
    with pytest.raises(ValueError, match="eps"):
        gen.fgsm(x, y, f, -0.1)
    with pytest.raises(ValueError, match="steps"):
        gen.pgd(x, y, f, 0.1, steps=-1)
    with pytest.raises(ValueError, match=r"gradient of shape \(1, 8\)"):
        gen.fgsm(x, y, lambda a, b: (0.0, np.ones((1, 8))), 0.1)
    with pytest.raises(ValueError, match="NaN"):
        gen.pgd(np.full_like(x, np.nan), y, f, 0.1)


def test_numpy_model_attacks_lower_accuracy():
    x, y = tiny_digits(200)
    model = gen.train_mlp(gen.Regulariser("none"), x[:150], y[:150], x[150:], y[150:], epochs=5,
                          hidden=16)["model"]
    clean = gen.accuracy_under_attack(model, x[150:], y[150:], 0)
    assert clean == model.evaluate(x[150:], y[150:])["accuracy"]
    fgsm_acc = gen.accuracy_under_attack(model, x[150:], y[150:], 0.3, attack="fgsm")
    pgd_acc = gen.accuracy_under_attack(model, x[150:], y[150:], 0.3, steps=10)
    assert pgd_acc <= fgsm_acc < clean
    curve = gen.fgsm_curve(model, x[150:], y[150:], [0, 0.3])
    np.testing.assert_allclose(curve, [clean, fgsm_acc])
    with pytest.raises(ValueError, match="attack"):
        gen.accuracy_under_attack(model, x, y, 0.1, attack="cw")


# -- Keras: TensorFlow here, JAX in a subprocess ----------------------------------------------------
def check_summary(summary: dict, backend: str) -> None:
    grad = summary["gradient"]
    assert grad["backend"] == backend
    assert grad["losses_shape"] == [7] and grad["grads_shape"] == [7, 3, 4]
    assert grad["loss_error"] < 1e-5 and grad["grad_error"] < 1e-5 * max(1.0, grad["grad_scale"])
    errors = grad["errors"]
    assert "(n, 3, 4)" in errors["shape"] and "out of range" in errors["labels"]
    assert "same number of samples" in errors["length"] and "NaN" in errors["nan"]
    training = summary["training"]
    assert training["cnn_shapes"] == [[None, 28, 28], [None, 10]]
    assert training["cnn_logits_shape"] == [2, 10]
    assert set(training["history_lengths"].values()) == {3}
    assert training["clean"] >= 0.9 and 0 <= training["fgsm"] <= 1
    assert training["pgd_inside"] and training["same_gradient_object"]
    assert summary["optimizers"]["sgd"] < 1e-5 and summary["optimizers"]["adam"] < 1e-5


def load_keras_script():
    spec = importlib.util.spec_from_file_location("generalization_keras", KERAS_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_keras_parts_on_tensorflow():
    pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("this process runs another backend")
    script = load_keras_script()
    check_summary({"gradient": script.input_gradient_summary(),
                   "training": script.training_summary(),
                   "optimizers": script.run_optimizers_summary()}, "tensorflow")


def test_keras_parts_on_jax():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, str(KERAS_SCRIPT)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    check_summary(json.loads(result.stdout.strip().splitlines()[-1]), "jax")


def test_input_gradient_rejects_other_objects():
    pytest.importorskip("tensorflow")
    with pytest.raises(ValueError, match="keras.Model"):
        gen.InputGradient(gen.mlp_classifier(4))


def test_learning_curve_records_every_width_size_and_seed():
    rng = np.random.default_rng(0)
    x = rng.random((120, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 120)
    curve = gen.learning_curve(x[:100], y[:100], x[100:], y[100:], sizes=(10, 40), hidden=(4, 8),
                               seeds=(0, 1), min_steps=20, min_epochs=2, max_epochs=5, batch_size=10)
    assert len(curve) == 2 * 2 * 2
    assert {(r["hidden"], r["size"], r["seed"]) for r in curve} == {
        (h, n, s) for h in (4, 8) for n in (10, 40) for s in (0, 1)}
    epochs = {r["size"]: r["epochs"] for r in curve}
    assert epochs == {10: 5, 40: 5}                 # 20 steps: 20 epochs of 1 batch capped at 5; 5 of 4
    for r in curve:
        assert 0 <= r["val_accuracy"] <= 1 and r["gap"] == pytest.approx(r["train_accuracy"] - r["val_accuracy"])
    with pytest.raises(ValueError, match="exceeds the pool"):
        gen.learning_curve(x[:10], y[:10], x[100:], y[100:], sizes=(20,), seeds=(0,))

"""course_lib.mlp: the chapter 02 helpers (NumPy and Keras MLPs, document 000/003 demos)."""

import numpy as np

from course_lib import mlp


def test_flatten_images_shape_dtype_range():
    x = np.full((3, 28, 28), 255, dtype=np.uint8)
    flat = mlp.flatten_images(x)
    assert flat.shape == (3, 784) and flat.dtype == np.float32 and flat.max() == 1.0


def test_misclassified_returns_first_wrong_indices():
    y_true = np.array([0, 1, 2, 3, 4])
    y_pred = np.array([0, 2, 2, 1, 4])
    np.testing.assert_array_equal(mlp.misclassified(y_true, y_pred, n=5), [1, 3])


def test_document_000_code_fails_as_described():
    assert mlp.run_code(mlp.DOCUMENT_000_CODE).startswith("NameError: name 'd'")
    assert mlp.run_code("x = 1") == "ok"


def test_document_003_parameter_sizes_are_the_printed_ones():
    sizes = {name: p.size for name, p in mlp.document_003_parameters().items()}
    assert sizes == {"W1": 3, "W2": 2, "b1": 3, "b2": 2}


def test_numpy_mlp_step_losses_fall():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 784)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(64) % 10]
    model = mlp.numpy_mlp(hidden=8, lr=0.5)
    losses = np.concatenate([mlp.numpy_step_losses(model, x, y, steps=4, batch_size=16)
                             for _ in range(5)])
    assert losses.shape == (20,) and losses[-4:].mean() < losses[:4].mean()
